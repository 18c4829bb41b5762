-- A customer sees where a message sits in their own conversation, never the platform-wide
-- `messages.seq` (issue 16, item 6). The web chat's history and event stream numbered messages
-- by `seq`, an identity shared by every tenant: two event ids a minute apart told a customer how
-- many messages the whole platform had stored in that minute.
--
-- `ordinal` numbers a conversation's messages 1, 2, 3, … in `seq` order. A trigger gives every
-- new message the ordinal after its conversation's newest message. Every writer of a
-- conversation's messages holds the conversation's row lock (see 20261211000001_lean_writes.sql),
-- so no two messages of a conversation get the same ordinal, and ordinals grow with `seq`. The
-- customer-facing functions speak in ordinals; everything inside keeps ordering by `seq`, whose
-- index `messages_conversation (conversation_id, seq)` serves both (an ordinal is found by
-- walking that index backwards, which for a stream's cursor ends at the newest messages).

-- Row-level security is forced on `messages`; lift it for the backfill (as
-- 20261122000001_knowledge.sql does), so a non-superuser owner sees every row.
ALTER TABLE messages NO FORCE ROW LEVEL SECURITY;
ALTER TABLE messages ADD COLUMN ordinal bigint;
UPDATE messages m
   SET ordinal = n.ordinal
  FROM (SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY seq) AS ordinal
          FROM messages) n
 WHERE n.id = m.id;
ALTER TABLE messages ALTER COLUMN ordinal SET NOT NULL;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;

CREATE FUNCTION messages_ordinal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.ordinal := coalesce((SELECT m.ordinal FROM messages m
                              WHERE m.conversation_id = NEW.conversation_id
                              ORDER BY m.seq DESC LIMIT 1), 0) + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER messages_ordinal BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_ordinal();

-- The functions below are restated from 20261211000001_lean_writes.sql and
-- 20261210000001_group_commit.sql with one change each: what they tell the web chat (`o_seq`,
-- `o_after`, `seq`, `p_after`) is an ordinal.

CREATE OR REPLACE FUNCTION ingest_messages(
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
    v_seq   bigint;
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
            RETURNING m.id, m.seq, m.ordinal, m.created_at
                 INTO o_message, v_seq, o_seq, o_created_at;
            o_after := coalesce((SELECT m.ordinal FROM messages m
                                  WHERE m.conversation_id = convs[k] AND m.seq < v_seq
                                    AND m.role <> 'system'
                                  ORDER BY m.seq DESC LIMIT 1), 0);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION commit_bot_reply(
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
    v_seq  bigint;
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
    RETURNING m.seq, m.ordinal, m.created_at INTO v_seq, o_seq, o_created_at;
    INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id, idempotency_key,
                        payload, status, sent_at, provider_ref)
    VALUES (p_outbox, app_tenant_id(), p_channel, p_conversation, p_message, p_idempotency,
            p_payload,
            CASE WHEN p_delivered THEN 'sent' ELSE 'pending' END,
            CASE WHEN p_delivered THEN now() END,
            CASE WHEN p_delivered THEN p_message::text END);
    o_after := coalesce((SELECT m.ordinal FROM messages m
                          WHERE m.conversation_id = p_conversation AND m.seq < v_seq
                            AND m.role <> 'system'
                          ORDER BY m.seq DESC LIMIT 1), 0);
    o_pending := EXISTS (SELECT 1 FROM inbound_events e
                          WHERE e.conversation_id = p_conversation AND e.status = 'pending');
    o_outcome := 'committed';
    RETURN NEXT;
END
$$;

-- `p_after` and the `seq` returned are ordinals. The messages after ordinal `p_after` are those
-- after the newest message at or before it, found by walking the conversation's index back.
CREATE OR REPLACE FUNCTION contact_messages(p_tenant uuid, p_channel uuid, p_external_id text,
                                            p_after bigint, p_limit bigint)
RETURNS TABLE (handoff_state text, claimed_by text, pending boolean, id uuid, seq bigint,
               role text, text text, created_at timestamptz, choices jsonb)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    RETURN QUERY
    WITH s AS (
        SELECT c.id, c.handoff_state,
               (SELECT e.claimed_by FROM escalations e
                 WHERE e.conversation_id = c.id AND e.status = 'claimed'
                 ORDER BY e.created_at DESC LIMIT 1) AS claimed_by,
               EXISTS (SELECT 1 FROM inbound_events i
                        WHERE i.conversation_id = c.id AND i.status = 'pending') AS pending,
               CASE WHEN p_after <= 0 THEN 0
                    ELSE coalesce((SELECT b.seq FROM messages b
                                    WHERE b.conversation_id = c.id AND b.ordinal <= p_after
                                    ORDER BY b.seq DESC LIMIT 1), 0)
               END AS after_seq
          FROM conversations c JOIN contacts k ON k.id = c.contact_id
         WHERE k.channel_id = p_channel AND k.external_id = p_external_id)
    SELECT s.handoff_state, s.claimed_by, s.pending,
           m.id, m.ordinal, m.role, m.text, m.created_at, m.choices
      FROM s LEFT JOIN LATERAL (
           SELECT m.id, m.seq, m.ordinal, m.role, m.text, m.created_at,
                  m.metadata->'choices' AS choices
             FROM messages m
            WHERE m.conversation_id = s.id AND m.seq > s.after_seq AND m.ordinal > p_after
              AND m.role <> 'system'
            ORDER BY m.seq
            LIMIT p_limit) m ON true
     ORDER BY m.seq;
END
$$;
