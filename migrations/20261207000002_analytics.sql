-- Analytics (issue 13): the figures of a tenant over a time range read its messages by creation
-- time (customer activity, message counts, customer waits, human messages). The only index on
-- `messages` was (conversation_id, seq), so every report scanned the messages of every tenant;
-- this one lets a report read just its tenant's range. The other tables analytics reads
-- already have an index led by `tenant_id` (escalations, bookings, contacts' leads, llm_usage).
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
