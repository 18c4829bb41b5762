-- The commit of an ordinary bot reply in one round trip: what a turn used to do in seven
-- statements (lock the conversation and check that the bot still owns it, reset or count its
-- failed answers, insert the turn, mark its events done — all of them still pending, or
-- nothing —, insert the reply and its outbox row, touch the conversation). Turns that open an
-- escalation or weigh the commit-time rules take the long way (see `actors/src/turn.rs`).
--
-- Runs as the caller, so row-level security applies exactly as to the statements it replaces;
-- it acts for `p_tenant` (it sets `app.tenant_id` for its transaction first), so it can run as
-- a transaction of its own: one round trip, and one WAL flush, for the whole commit.
-- Returns 'committed', or the owner ('waiting', 'human') when a human took the conversation
-- while the bot was thinking: then nothing is written, and the caller takes the long way, which
-- re-reads the owner under the lock. Events that are no longer pending (another worker answered
-- them) raise SQLSTATE SB409, which aborts everything the call wrote.
CREATE FUNCTION commit_bot_reply(
    p_tenant         uuid,
    p_conversation   uuid,
    p_events         uuid[],
    p_failed         boolean,
    p_lang           text,
    p_turn           uuid,
    p_responder      text,
    p_intent         text,
    p_prompt_version uuid,
    p_message        uuid,
    p_text           text,
    p_metadata       jsonb,
    p_outbox         uuid,
    p_channel        uuid,
    p_idempotency    text,
    p_payload        jsonb,
    p_delivered      boolean
) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    owner  text;
    marked integer;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    SELECT handoff_state INTO owner FROM conversations WHERE id = p_conversation FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % not found', p_conversation USING ERRCODE = 'SB404';
    END IF;
    IF owner <> 'bot' THEN
        RETURN owner;
    END IF;
    UPDATE conversations
       SET failed_answers = CASE WHEN p_failed THEN failed_answers + 1 ELSE 0 END,
           handback_note = NULL, status = 'open', language = p_lang, last_message_at = now()
     WHERE id = p_conversation;
    INSERT INTO turns (id, tenant_id, conversation_id, responder, intent, event_count,
                       prompt_version_id)
    VALUES (p_turn, app_tenant_id(), p_conversation, p_responder, p_intent,
            cardinality(p_events), p_prompt_version);
    UPDATE inbound_events
       SET status = 'done', turn_id = p_turn, processed_at = now(), last_error = NULL
     WHERE id = ANY (p_events) AND status = 'pending' AND conversation_id = p_conversation;
    GET DIAGNOSTICS marked = ROW_COUNT;
    IF marked <> cardinality(p_events) THEN
        RAISE EXCEPTION 'only % of % events of conversation % were still pending',
            marked, cardinality(p_events), p_conversation USING ERRCODE = 'SB409';
    END IF;
    INSERT INTO messages (id, tenant_id, conversation_id, role, text, turn_id, metadata)
    VALUES (p_message, app_tenant_id(), p_conversation, 'agent', p_text, p_turn, p_metadata);
    INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id, idempotency_key,
                        payload, status, sent_at, provider_ref)
    VALUES (p_outbox, app_tenant_id(), p_channel, p_conversation, p_message, p_idempotency,
            p_payload,
            CASE WHEN p_delivered THEN 'sent' ELSE 'pending' END,
            CASE WHEN p_delivered THEN now() END,
            CASE WHEN p_delivered THEN p_message::text END);
    RETURN 'committed';
END
$$;

REVOKE ALL ON FUNCTION commit_bot_reply(uuid, uuid, uuid[], boolean, text, uuid, text, text, uuid,
                                        uuid, text, jsonb, uuid, uuid, text, jsonb, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commit_bot_reply(uuid, uuid, uuid[], boolean, text, uuid, text, text,
                                           uuid, uuid, text, jsonb, uuid, uuid, text, jsonb,
                                           boolean)
    TO switchboard_app;
