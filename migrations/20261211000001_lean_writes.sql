-- Fewer writes per message, and reads whose cost does not grow with the platform (issue 15).
--
-- 1. `messages.seq` loses its platform-wide unique index. The identity column already makes
--    every value unique, and every read orders a conversation's messages through
--    `messages_conversation (conversation_id, seq)`. With the global index present, the cached
--    generic plan of "a conversation's messages after seq N" walked the global index from N and
--    filtered by conversation: every message of every tenant since N (all of them for a new
--    widget session, whose cursor is 0). One index fewer is also one index write fewer per
--    message.
ALTER TABLE messages DROP CONSTRAINT messages_seq_key;

-- 2. Per-message tables drop their direct reference to `tenants`: each also references
--    `conversations (tenant_id, id)`, and a conversation references its tenant, so the tenant
--    exists by the same guarantee, and deleting a tenant still removes every row (the cascade
--    runs through the conversation). The direct check took a share lock on the tenant's row for
--    every row inserted: the hottest row of the tenant, locked by every transaction at once.
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_fkey;
ALTER TABLE inbound_events DROP CONSTRAINT inbound_events_tenant_id_fkey;
ALTER TABLE turns DROP CONSTRAINT turns_tenant_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_tenant_id_fkey;

-- 3. Queue-like tables are vacuumed sooner than the default (a fifth of the table dead): a
--    conversation's pending events are found through `inbound_events_pending`, whose entries
--    for answered events stay until a vacuum removes them, and every conversation row is
--    rewritten twice per message.
ALTER TABLE inbound_events SET (autovacuum_vacuum_scale_factor = 0.02,
                                autovacuum_vacuum_threshold = 500,
                                autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE conversations SET (autovacuum_vacuum_scale_factor = 0.02,
                               autovacuum_vacuum_threshold = 500,
                               autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.02,
                        autovacuum_vacuum_threshold = 500);

-- 4. `ingest_messages` looks a contact and a conversation up before it tries to create them.
--    The insert with ON CONFLICT DO NOTHING it started with waited for any transaction that had
--    just rewritten the conversation row (a reply's commit, another batch's touch) to commit,
--    since the new row version's unique-index entry was not yet visible: one batch waited for
--    another's disk flush. The insert now runs only for a contact or conversation not seen yet.
--
--    It also returns, for each new message, what a web-chat stream needs to show it without
--    reading the transcript again (as `commit_bot_reply` does for a reply): its `seq` and time,
--    the `seq` of the conversation's previous visible message, and who owns the conversation.
DROP FUNCTION ingest_messages(uuid[], uuid[], uuid[], text[], text[], uuid[], uuid[], text[],
                              jsonb[], uuid[], text[]);

CREATE FUNCTION ingest_messages(
    p_tenants       uuid[],
    p_contacts      uuid[],
    p_channels      uuid[],
    p_external_ids  text[],
    p_names         text[],
    p_conversations uuid[],
    p_events        uuid[],
    p_provider_ids  text[],
    p_payloads      jsonb[],
    p_messages      uuid[],
    p_texts         text[]
) RETURNS TABLE (o_index integer, o_event uuid, o_conversation uuid, o_message uuid,
                 o_duplicate boolean, o_seq bigint, o_after bigint, o_created_at timestamptz,
                 o_handoff text)
    LANGUAGE plpgsql AS $$
DECLARE
    n       integer := coalesce(cardinality(p_tenants), 0);
    convs   uuid[] := '{}';
    owners  text[] := '{}';
    contact uuid;
    conv    uuid;
    k       integer;
BEGIN
    -- 1. The contact and the conversation of every item.
    FOR k IN 1 .. n LOOP
        PERFORM set_config('app.tenant_id', p_tenants[k]::text, true);
        SELECT id INTO contact FROM contacts
         WHERE channel_id = p_channels[k] AND external_id = p_external_ids[k];
        IF contact IS NULL THEN
            INSERT INTO contacts (id, tenant_id, channel_id, external_id, display_name)
            VALUES (p_contacts[k], p_tenants[k], p_channels[k], p_external_ids[k], p_names[k])
            ON CONFLICT (channel_id, external_id) DO NOTHING
            RETURNING id INTO contact;
            IF contact IS NULL THEN
                -- Created by a concurrent batch since the look-up.
                SELECT id INTO contact FROM contacts
                 WHERE channel_id = p_channels[k] AND external_id = p_external_ids[k];
            END IF;
        ELSIF p_names[k] IS NOT NULL THEN
            UPDATE contacts SET display_name = p_names[k]
             WHERE id = contact AND display_name IS DISTINCT FROM p_names[k];
        END IF;
        SELECT id INTO conv FROM conversations
         WHERE channel_id = p_channels[k] AND contact_id = contact;
        IF conv IS NULL THEN
            INSERT INTO conversations (id, tenant_id, channel_id, contact_id)
            VALUES (p_conversations[k], p_tenants[k], p_channels[k], contact)
            ON CONFLICT (channel_id, contact_id) DO NOTHING
            RETURNING id INTO conv;
            IF conv IS NULL THEN
                SELECT id INTO conv FROM conversations
                 WHERE channel_id = p_channels[k] AND contact_id = contact;
            END IF;
        END IF;
        convs := convs || conv;
    END LOOP;
    -- 2. The conversations, locked in id order and touched.
    FOR k IN SELECT i FROM unnest(convs) WITH ORDINALITY AS c(id, i) ORDER BY id, i LOOP
        PERFORM set_config('app.tenant_id', p_tenants[k]::text, true);
        UPDATE conversations c SET last_message_at = now() WHERE c.id = convs[k]
        RETURNING c.handoff_state INTO o_handoff;
        owners[k] := o_handoff;
    END LOOP;
    -- 3. The events, and the customer's messages.
    FOR k IN 1 .. n LOOP
        PERFORM set_config('app.tenant_id', p_tenants[k]::text, true);
        o_index := k;
        o_conversation := convs[k];
        o_event := NULL;
        o_message := NULL;
        o_seq := NULL;
        o_after := NULL;
        o_created_at := NULL;
        o_handoff := owners[k];
        INSERT INTO inbound_events (id, tenant_id, channel_id, provider_message_id,
                                    conversation_id, payload)
        VALUES (p_events[k], p_tenants[k], p_channels[k], p_provider_ids[k], convs[k],
                p_payloads[k])
        ON CONFLICT (channel_id, provider_message_id) DO NOTHING
        RETURNING id INTO o_event;
        o_duplicate := o_event IS NULL;
        IF o_duplicate THEN
            -- A redelivery: what the first delivery created.
            SELECT e.id, e.conversation_id, m.id INTO o_event, o_conversation, o_message
              FROM inbound_events e LEFT JOIN messages m ON m.inbound_event_id = e.id
             WHERE e.channel_id = p_channels[k] AND e.provider_message_id = p_provider_ids[k];
        ELSE
            INSERT INTO messages AS m (id, tenant_id, conversation_id, role, text,
                                       inbound_event_id)
            VALUES (p_messages[k], p_tenants[k], convs[k], 'customer', p_texts[k], o_event)
            RETURNING m.id, m.seq, m.created_at INTO o_message, o_seq, o_created_at;
            o_after := coalesce((SELECT m.seq FROM messages m
                                  WHERE m.conversation_id = convs[k] AND m.seq < o_seq
                                    AND m.role <> 'system'
                                  ORDER BY m.seq DESC LIMIT 1), 0);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION ingest_messages(uuid[], uuid[], uuid[], text[], text[], uuid[], uuid[],
                                       text[], jsonb[], uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest_messages(uuid[], uuid[], uuid[], text[], text[], uuid[], uuid[],
                                          text[], jsonb[], uuid[], text[]) TO switchboard_app;

-- 5. `commit_bot_reply` locks and updates the conversation in one statement, where it took a
--    row lock and then an update (each a write to the row's page). The outcome is the same:
--    the update applies only while the bot owns the conversation; otherwise the owner is read
--    under the lock and returned, and nothing is written.
--
--    It also returns what a web-chat stream needs to show the reply without reading the
--    transcript again: the reply's `seq` and time, the `seq` of the conversation's previous
--    visible message (`o_after`; 0 for none), and whether a customer message still waits for
--    an answer. Every message of a conversation is inserted under its row lock, so no message
--    with a smaller `seq` can commit after this one: a stream that has shown `o_after` can
--    show this reply next.
DROP FUNCTION commit_bot_replies(uuid[], uuid[], jsonb, boolean[], text[], uuid[], text[],
                                 text[], uuid[], uuid[], text[], jsonb[], uuid[], uuid[],
                                 text[], jsonb[], boolean[]);
DROP FUNCTION commit_bot_reply(uuid, uuid, uuid[], boolean, text, uuid, text, text, uuid, uuid,
                               text, jsonb, uuid, uuid, text, jsonb, boolean);

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
) RETURNS TABLE (o_outcome text, o_seq bigint, o_after bigint, o_created_at timestamptz,
                 o_pending boolean)
    LANGUAGE plpgsql AS $$
DECLARE
    owner  text;
    marked integer;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    LOOP
        UPDATE conversations
           SET failed_answers = CASE WHEN p_failed THEN failed_answers + 1 ELSE 0 END,
               handback_note = NULL, status = 'open', language = p_lang,
               last_message_at = now()
         WHERE id = p_conversation AND handoff_state = 'bot';
        EXIT WHEN FOUND;
        SELECT c.handoff_state INTO owner FROM conversations c
         WHERE c.id = p_conversation FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation % not found', p_conversation USING ERRCODE = 'SB404';
        END IF;
        IF owner <> 'bot' THEN
            o_outcome := owner;
            RETURN NEXT;
            RETURN;
        END IF;
        -- Handed back to the bot between the two statements: the row is locked now.
    END LOOP;
    INSERT INTO turns (id, tenant_id, conversation_id, responder, intent, event_count,
                       prompt_version_id)
    VALUES (p_turn, app_tenant_id(), p_conversation, p_responder, p_intent,
            cardinality(p_events), p_prompt_version);
    UPDATE inbound_events e
       SET status = 'done', turn_id = p_turn, processed_at = now(), last_error = NULL
     WHERE e.id = ANY (p_events) AND e.status = 'pending'
       AND e.conversation_id = p_conversation;
    GET DIAGNOSTICS marked = ROW_COUNT;
    IF marked <> cardinality(p_events) THEN
        RAISE EXCEPTION 'only % of % events of conversation % were still pending',
            marked, cardinality(p_events), p_conversation USING ERRCODE = 'SB409';
    END IF;
    INSERT INTO messages AS m (id, tenant_id, conversation_id, role, text, turn_id, metadata)
    VALUES (p_message, app_tenant_id(), p_conversation, 'agent', p_text, p_turn, p_metadata)
    RETURNING m.seq, m.created_at INTO o_seq, o_created_at;
    INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id, idempotency_key,
                        payload, status, sent_at, provider_ref)
    VALUES (p_outbox, app_tenant_id(), p_channel, p_conversation, p_message, p_idempotency,
            p_payload,
            CASE WHEN p_delivered THEN 'sent' ELSE 'pending' END,
            CASE WHEN p_delivered THEN now() END,
            CASE WHEN p_delivered THEN p_message::text END);
    o_after := coalesce((SELECT m.seq FROM messages m
                          WHERE m.conversation_id = p_conversation AND m.seq < o_seq
                            AND m.role <> 'system'
                          ORDER BY m.seq DESC LIMIT 1), 0);
    o_pending := EXISTS (SELECT 1 FROM inbound_events e
                          WHERE e.conversation_id = p_conversation AND e.status = 'pending');
    o_outcome := 'committed';
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION commit_bot_reply(uuid, uuid, uuid[], boolean, text, uuid, text, text, uuid,
                                        uuid, text, jsonb, uuid, uuid, text, jsonb, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commit_bot_reply(uuid, uuid, uuid[], boolean, text, uuid, text, text,
                                           uuid, uuid, text, jsonb, uuid, uuid, text, jsonb,
                                           boolean)
    TO switchboard_app;

-- As before (see 20261210000001_group_commit.sql), with `commit_bot_reply`'s new columns.
CREATE FUNCTION commit_bot_replies(
    p_tenants         uuid[],
    p_conversations   uuid[],
    p_events          jsonb,
    p_failed          boolean[],
    p_langs           text[],
    p_turns           uuid[],
    p_responders      text[],
    p_intents         text[],
    p_prompt_versions uuid[],
    p_messages        uuid[],
    p_texts           text[],
    p_metadata        jsonb[],
    p_outboxes        uuid[],
    p_channels        uuid[],
    p_idempotency     text[],
    p_payloads        jsonb[],
    p_delivered       boolean[]
) RETURNS TABLE (o_index integer, o_outcome text, o_seq bigint, o_after bigint,
                 o_created_at timestamptz, o_pending boolean)
    LANGUAGE plpgsql AS $$
DECLARE
    k integer;
BEGIN
    FOR k IN 1 .. coalesce(cardinality(p_tenants), 0) LOOP
        o_index := k;
        o_seq := NULL;
        o_after := NULL;
        o_created_at := NULL;
        o_pending := NULL;
        BEGIN
            SELECT r.o_outcome, r.o_seq, r.o_after, r.o_created_at, r.o_pending
              INTO o_outcome, o_seq, o_after, o_created_at, o_pending
              FROM commit_bot_reply(
                p_tenants[k], p_conversations[k],
                ARRAY(SELECT jsonb_array_elements_text(p_events -> (k - 1)))::uuid[],
                p_failed[k], p_langs[k], p_turns[k], p_responders[k], p_intents[k],
                p_prompt_versions[k], p_messages[k], p_texts[k], p_metadata[k], p_outboxes[k],
                p_channels[k], p_idempotency[k], p_payloads[k], p_delivered[k]) r;
        EXCEPTION
            WHEN SQLSTATE 'SB409' THEN o_outcome := 'conflict';
            WHEN SQLSTATE 'SB404' THEN o_outcome := 'not_found';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION commit_bot_replies(uuid[], uuid[], jsonb, boolean[], text[], uuid[], text[],
                                          text[], uuid[], uuid[], text[], jsonb[], uuid[], uuid[],
                                          text[], jsonb[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commit_bot_replies(uuid[], uuid[], jsonb, boolean[], text[], uuid[],
                                             text[], text[], uuid[], uuid[], text[], jsonb[],
                                             uuid[], uuid[], text[], jsonb[], boolean[])
    TO switchboard_app;
