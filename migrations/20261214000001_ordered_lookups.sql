-- A conversation's newest message is found by walking its index `messages_conversation
-- (conversation_id, seq)` backwards and stopping at the first row. Four look-ups on the path of
-- every message do that: the ordinal trigger, the `after` placement that ingest_messages and
-- commit_bot_reply return, and the web chat's cursor in contact_messages. (And
-- contact_messages is rewritten below: it read the whole conversation whatever the plan.)
--
-- The planner only chooses that walk when its statistics say a conversation has many rows. On a
-- database whose tables were never analysed (a new install, the first minutes of a bench run,
-- a table that just grew), it estimates a few dozen and prefers a bitmap scan that ANDs the
-- conversation's index with the tenant's (row-level security adds the tenant to every query)
-- and sorts what comes out: every message of the conversation and of the tenant is read to find
-- one, at every insert. Measured on a table of 20,000 messages of one tenant, 10,000 in one
-- conversation, never analysed: 414 buffers and 8.9 ms for one look-up, against 3 buffers and
-- 0.08 ms for the walk; 2,000 inserts into one conversation took 1.5 to 7.3 s through the
-- trigger (more as the conversation grew) and 0.22 s with the settings below.
--
-- These functions do nothing a bitmap scan or a sort would serve better, so each runs with
-- both switched off: the ordered walk is then the only plan left, whatever the statistics say.
-- The settings hold only while the function runs.

ALTER FUNCTION messages_ordinal()
    SET enable_bitmapscan = off SET enable_sort = off;

ALTER FUNCTION ingest_messages(uuid[], uuid[], uuid[], text[], text[], uuid[], uuid[], text[],
                               jsonb[], uuid[], text[])
    SET enable_bitmapscan = off SET enable_sort = off;

ALTER FUNCTION commit_bot_reply(uuid, uuid, uuid[], boolean, text, uuid, text, text, uuid, uuid,
                                text, jsonb, uuid, uuid, text, jsonb, boolean)
    SET enable_bitmapscan = off SET enable_sort = off;

-- contact_messages, restated from 20261213000001_conversation_ordinals.sql with the same
-- signature and result. It was one query whose message scan took its lower `seq` bound from a
-- subquery over the conversation it joined: the planner could not use that bound in the index
-- and filtered the whole conversation (3,000 rows read to show the last 10; 71 buffers), and
-- the claimed escalation was looked up among all of the tenant's. Now the conversation, its
-- state and the bound are found first (a contact has one conversation: conversations are
-- unique per channel and contact), and the scan starts at the bound. The escalation comes from
-- `escalations_one_open` (at most one unresolved escalation per conversation).
CREATE OR REPLACE FUNCTION contact_messages(p_tenant uuid, p_channel uuid, p_external_id text,
                                            p_after bigint, p_limit bigint)
RETURNS TABLE (handoff_state text, claimed_by text, pending boolean, id uuid, seq bigint,
               role text, text text, created_at timestamptz, choices jsonb)
    LANGUAGE plpgsql
    SET enable_bitmapscan = off SET enable_sort = off AS $$
#variable_conflict use_column
DECLARE
    v_conv      uuid;
    v_state     text;
    v_claimed   text;
    v_pending   boolean;
    v_after_seq bigint := 0;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    SELECT c.id, c.handoff_state INTO v_conv, v_state
      FROM conversations c JOIN contacts k ON k.id = c.contact_id
     WHERE k.channel_id = p_channel AND k.external_id = p_external_id;
    IF v_conv IS NULL THEN
        RETURN;
    END IF;
    SELECT e.claimed_by INTO v_claimed FROM escalations e
     WHERE e.conversation_id = v_conv AND e.status <> 'resolved' AND e.status = 'claimed';
    v_pending := EXISTS (SELECT 1 FROM inbound_events i
                          WHERE i.conversation_id = v_conv AND i.status = 'pending');
    IF p_after > 0 THEN
        -- The messages after ordinal `p_after` are those after the newest message at or
        -- before it.
        v_after_seq := coalesce((SELECT b.seq FROM messages b
                                  WHERE b.conversation_id = v_conv AND b.ordinal <= p_after
                                  ORDER BY b.seq DESC LIMIT 1), 0);
    END IF;
    RETURN QUERY
    SELECT v_state, v_claimed, v_pending,
           m.id, m.ordinal, m.role, m.text, m.created_at, m.choices
      FROM (SELECT 1) AS one LEFT JOIN LATERAL (
           SELECT m.id, m.seq, m.ordinal, m.role, m.text, m.created_at,
                  m.metadata->'choices' AS choices
             FROM messages m
            WHERE m.conversation_id = v_conv AND m.seq > v_after_seq AND m.ordinal > p_after
              AND m.role <> 'system'
            ORDER BY m.seq
            LIMIT p_limit) m ON true
     ORDER BY m.seq;
END
$$;
