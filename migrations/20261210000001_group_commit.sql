-- Group commit (issue 15): many callers' writes in one statement and one WAL flush.
--
-- Both functions run as the caller, so row-level security applies to every row exactly as to
-- the single statements they batch; each item sets `app.tenant_id` for itself before it
-- writes, so one batch may carry several tenants' items and each is scoped to its own.

-- Inbound messages, as `core/src/store/ingest.rs::record` stores one: contact and conversation
-- found or created, the event inserted unless its provider id was seen before (then the first
-- delivery's ids are returned, `o_duplicate`), the customer's message inserted with it.
--
-- Locks are taken in one global order, so that batches running at once (and the batches of
-- bot replies, which lock conversations by id) cannot deadlock: contacts and conversations are
-- found or created without locking existing rows, in the caller's order (channel, contact,
-- provider id); then the batch's conversations are locked and touched in id order; then the
-- events and messages are inserted. Any error aborts the whole batch (nothing is written); the
-- caller then stores the items one by one, so one bad item fails alone.
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
                 o_duplicate boolean)
    LANGUAGE plpgsql AS $$
DECLARE
    n       integer := coalesce(cardinality(p_tenants), 0);
    convs   uuid[] := '{}';
    contact uuid;
    conv    uuid;
    k       integer;
BEGIN
    -- 1. The contact and the conversation of every item.
    FOR k IN 1 .. n LOOP
        PERFORM set_config('app.tenant_id', p_tenants[k]::text, true);
        contact := NULL;
        INSERT INTO contacts (id, tenant_id, channel_id, external_id, display_name)
        VALUES (p_contacts[k], p_tenants[k], p_channels[k], p_external_ids[k], p_names[k])
        ON CONFLICT (channel_id, external_id) DO NOTHING
        RETURNING id INTO contact;
        IF contact IS NULL THEN
            SELECT id INTO contact FROM contacts
             WHERE channel_id = p_channels[k] AND external_id = p_external_ids[k];
            IF p_names[k] IS NOT NULL THEN
                UPDATE contacts SET display_name = p_names[k]
                 WHERE id = contact AND display_name IS DISTINCT FROM p_names[k];
            END IF;
        END IF;
        conv := NULL;
        INSERT INTO conversations (id, tenant_id, channel_id, contact_id)
        VALUES (p_conversations[k], p_tenants[k], p_channels[k], contact)
        ON CONFLICT (channel_id, contact_id) DO NOTHING
        RETURNING id INTO conv;
        IF conv IS NULL THEN
            SELECT id INTO conv FROM conversations
             WHERE channel_id = p_channels[k] AND contact_id = contact;
        END IF;
        convs := convs || conv;
    END LOOP;
    -- 2. The conversations, locked in id order and touched.
    FOR k IN SELECT i FROM unnest(convs) WITH ORDINALITY AS c(id, i) ORDER BY id, i LOOP
        PERFORM set_config('app.tenant_id', p_tenants[k]::text, true);
        UPDATE conversations SET last_message_at = now() WHERE id = convs[k];
    END LOOP;
    -- 3. The events, and the customer's messages.
    FOR k IN 1 .. n LOOP
        PERFORM set_config('app.tenant_id', p_tenants[k]::text, true);
        o_index := k;
        o_conversation := convs[k];
        o_event := NULL;
        o_message := NULL;
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
            INSERT INTO messages (id, tenant_id, conversation_id, role, text, inbound_event_id)
            VALUES (p_messages[k], p_tenants[k], convs[k], 'customer', p_texts[k], o_event)
            RETURNING id INTO o_message;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION ingest_messages(uuid[], uuid[], uuid[], text[], text[], uuid[], uuid[],
                                       text[], jsonb[], uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest_messages(uuid[], uuid[], uuid[], text[], text[], uuid[], uuid[],
                                          text[], jsonb[], uuid[], text[]) TO switchboard_app;

-- Ordinary bot replies of many conversations, each as `commit_bot_reply` commits one, each in a
-- block of its own: an item whose events were answered by another worker (SB409) or whose
-- conversation is gone (SB404) leaves nothing behind and is reported as 'conflict' or
-- 'not_found'; the others commit together. Returns one outcome per item, in order:
-- 'committed', the owner ('waiting', 'human') when a human took over, 'conflict', 'not_found'.
-- The caller orders the items by conversation, so concurrent batches lock them in one order.
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
) RETURNS TABLE (o_index integer, o_outcome text)
    LANGUAGE plpgsql AS $$
DECLARE
    k integer;
BEGIN
    FOR k IN 1 .. coalesce(cardinality(p_tenants), 0) LOOP
        o_index := k;
        BEGIN
            o_outcome := commit_bot_reply(
                p_tenants[k], p_conversations[k],
                ARRAY(SELECT jsonb_array_elements_text(p_events -> (k - 1)))::uuid[],
                p_failed[k], p_langs[k], p_turns[k], p_responders[k], p_intents[k],
                p_prompt_versions[k], p_messages[k], p_texts[k], p_metadata[k], p_outboxes[k],
                p_channels[k], p_idempotency[k], p_payloads[k], p_delivered[k]);
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

-- A turn's whole read in one round trip and one transaction of its own (see
-- `core/src/store/turns.rs::gather_turn`): counts this turn's attempt on the conversation's
-- pending events and reads them, the conversation and who owns it, the knowledge generation,
-- the tenant's action settings and agent provider, and (with `p_lead`) the contact's lead.
-- With no pending event it returns no row. When an event has used up its attempts it writes
-- nothing and returns a row with `o_exhausted` only: parking takes the long way. The commit
-- does not wait for the disk (see `turns::gather`: a lost attempt count is harmless).
CREATE FUNCTION gather_turn(p_tenant uuid, p_conversation uuid, p_max_attempts integer,
                            p_lead boolean)
RETURNS TABLE (
    o_exhausted boolean, o_events uuid[], o_attempts integer[], o_received timestamptz[],
    o_texts text[],
    channel_id uuid, kind text, external_id text, tenant_name text,
    handoff_state text, status text, failed_answers integer, handback_note text,
    generation bigint, has_offer boolean,
    a_found boolean, enabled text[], handoff_keywords text[], max_failed_answers integer,
    lead_score_threshold integer, renotify_after_minutes integer, max_renotify integer,
    expected_wait_minutes integer, notify_emails text[], notify_telegram_chat_id text,
    notify_email_channel_id uuid, notify_telegram_channel_id uuid, crm_webhook_url text,
    crm_secret_enc bytea, updated_at timestamptz,
    agent_provider text,
    l_found boolean, id uuid, conversation_id uuid, channel text, display_name text,
    email text, phone text, company text, interest text, lead_notes text,
    lead_signals text[], lead_score integer, lead_reasons jsonb, lead_created_at timestamptz,
    lead_updated_at timestamptz, crm_queued_at timestamptz, crm_state_hash text,
    crm_chain text
)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    IF EXISTS (SELECT 1 FROM inbound_events e
                WHERE e.conversation_id = p_conversation AND e.status = 'pending'
                  AND e.attempts >= p_max_attempts) THEN
        o_exhausted := true;
        RETURN NEXT;
        RETURN;
    END IF;
    WITH counted AS (
        UPDATE inbound_events e SET attempts = e.attempts + 1
         WHERE e.conversation_id = p_conversation AND e.status = 'pending'
           AND e.attempts < p_max_attempts
        RETURNING e.id, e.attempts - 1 AS attempts, e.received_at)
    SELECT array_agg(c.id ORDER BY c.received_at, c.id),
           array_agg(c.attempts ORDER BY c.received_at, c.id),
           array_agg(c.received_at ORDER BY c.received_at, c.id),
           array_agg(COALESCE(m.text, '') ORDER BY c.received_at, c.id)
      INTO o_events, o_attempts, o_received, o_texts
      FROM counted c LEFT JOIN messages m ON m.inbound_event_id = c.id;
    IF o_events IS NULL THEN
        RETURN;
    END IF;
    o_exhausted := false;
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT c.channel_id, ch.kind, k.external_id, t.name, c.handoff_state, c.status,
           c.failed_answers, c.handback_note, kb_generation(), c.booking_offer IS NOT NULL
      INTO channel_id, kind, external_id, tenant_name, handoff_state, status, failed_answers,
           handback_note, generation, has_offer
      FROM conversations c
      JOIN channels ch ON ch.id = c.channel_id
      JOIN contacts k ON k.id = c.contact_id
      JOIN tenants t ON t.id = c.tenant_id
     WHERE c.id = p_conversation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % not found', p_conversation USING ERRCODE = 'SB404';
    END IF;
    SELECT true, a.enabled, a.handoff_keywords, a.max_failed_answers, a.lead_score_threshold,
           a.renotify_after_minutes, a.max_renotify, a.expected_wait_minutes, a.notify_emails,
           a.notify_telegram_chat_id, a.notify_email_channel_id, a.notify_telegram_channel_id,
           a.crm_webhook_url, a.crm_secret_enc, a.updated_at
      INTO a_found, enabled, handoff_keywords, max_failed_answers, lead_score_threshold,
           renotify_after_minutes, max_renotify, expected_wait_minutes, notify_emails,
           notify_telegram_chat_id, notify_email_channel_id, notify_telegram_channel_id,
           crm_webhook_url, crm_secret_enc, updated_at
      FROM action_settings a;
    a_found := coalesce(a_found, false);
    SELECT s.provider INTO agent_provider FROM agent_settings s WHERE s.tenant_id = p_tenant;
    l_found := false;
    IF p_lead THEN
        SELECT true, k.id, p_conversation, ch.kind, k.display_name, k.email, k.phone,
               k.company, k.interest, k.lead_notes, k.lead_signals, k.lead_score,
               k.lead_reasons, k.lead_created_at, k.lead_updated_at, k.crm_queued_at,
               k.crm_state_hash, k.crm_chain
          INTO l_found, id, conversation_id, channel, display_name, email, phone, company,
               interest, lead_notes, lead_signals, lead_score, lead_reasons, lead_created_at,
               lead_updated_at, crm_queued_at, crm_state_hash, crm_chain
          FROM contacts k JOIN channels ch ON ch.id = k.channel_id
         WHERE k.id = (SELECT c.contact_id FROM conversations c WHERE c.id = p_conversation);
        l_found := coalesce(l_found, false);
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION gather_turn(uuid, uuid, integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gather_turn(uuid, uuid, integer, boolean) TO switchboard_app;

-- What the customer of `p_external_id` on `p_channel` sees (the web chat's history and event
-- stream, read on every wake-up): the messages of their conversation with `seq > p_after`,
-- oldest first, at most `p_limit`, each row also carrying who owns the conversation, whether
-- it claimed the open escalation, and whether a message waits for its answer. An unknown
-- contact gives no row; a known one without new messages, one row with `id` NULL. Acts for
-- `p_tenant`, so it runs in a transaction of its own: one round trip instead of three.
CREATE FUNCTION contact_messages(p_tenant uuid, p_channel uuid, p_external_id text,
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
                        WHERE i.conversation_id = c.id AND i.status = 'pending') AS pending
          FROM conversations c JOIN contacts k ON k.id = c.contact_id
         WHERE k.channel_id = p_channel AND k.external_id = p_external_id)
    SELECT s.handoff_state, s.claimed_by, s.pending,
           m.id, m.seq, m.role, m.text, m.created_at, m.choices
      FROM s LEFT JOIN LATERAL (
           SELECT m.id, m.seq, m.role, m.text, m.created_at, m.metadata->'choices' AS choices
             FROM messages m
            WHERE m.conversation_id = s.id AND m.seq > p_after AND m.role <> 'system'
            ORDER BY m.seq
            LIMIT p_limit) m ON true
     ORDER BY m.seq;
END
$$;

REVOKE ALL ON FUNCTION contact_messages(uuid, uuid, text, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION contact_messages(uuid, uuid, text, bigint, bigint) TO switchboard_app;
