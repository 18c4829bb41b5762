-- Two lookups that grew with the whole table instead of the conversation:
--
-- * Each delivery of a reply (WhatsApp, Telegram, SMS, email, voice) reads the conversation's
--   latest inbound event (email threading): only the partial index of *pending* events covered
--   `conversation_id`, so every delivery scanned all of `inbound_events`.
-- * `outbox.message_id` references `messages` with ON DELETE CASCADE and is joined by the inbox's
--   transcript: without an index, deleting a message or reading a transcript scanned the outbox.
CREATE INDEX inbound_events_conversation ON inbound_events (conversation_id, received_at DESC, id DESC);
CREATE INDEX outbox_message ON outbox (message_id);
