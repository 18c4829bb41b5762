-- The live inbox: its list is read newest activity first within a tenant, and paged by
-- (last_message_at, id); this index serves both without a sort.
CREATE INDEX conversations_inbox ON conversations (tenant_id, last_message_at DESC, id DESC);
