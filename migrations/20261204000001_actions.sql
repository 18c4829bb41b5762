-- Actions (issue 6): per-tenant action settings, the human-handoff state machine with its
-- escalations, and `effects` — the outbox of side effects that are not replies to the customer
-- (sales-team notifications by email and Telegram, calendar invites, CRM webhooks).
--
-- Exactly-once: an effect is inserted in the same transaction as the change that causes it
-- (an escalation, a booking, a lead update) under a unique idempotency key, so a redone turn
-- can never enqueue it twice; the effects worker alone retries, and every attempt is logged in
-- `effect_attempts` (the delivery log admins see).

CREATE TABLE action_settings (
    tenant_id                 uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- Actions the agent may take: 'booking', 'handoff', 'leads'.
    enabled                   text[] NOT NULL DEFAULT ARRAY['booking', 'handoff', 'leads'],
    -- Rules that escalate without the customer asking.
    handoff_keywords          text[] NOT NULL DEFAULT ARRAY[]::text[],
    -- Consecutive turns the agent could not answer before a human is brought in (0: never).
    max_failed_answers        integer NOT NULL DEFAULT 2 CHECK (max_failed_answers BETWEEN 0 AND 20),
    -- A lead scoring at least this escalates (NULL: never).
    lead_score_threshold      integer CHECK (lead_score_threshold IS NULL OR lead_score_threshold BETWEEN 1 AND 100),
    -- Minutes after which an unclaimed escalation is notified again.
    renotify_after_minutes    integer NOT NULL DEFAULT 15 CHECK (renotify_after_minutes BETWEEN 1 AND 10080),
    -- Reminders after the first notification (then it stays waiting, visible to admins).
    max_renotify              integer NOT NULL DEFAULT 3 CHECK (max_renotify BETWEEN 0 AND 20),
    -- Expected wait the customer is told about, in minutes.
    expected_wait_minutes     integer NOT NULL DEFAULT 15 CHECK (expected_wait_minutes BETWEEN 1 AND 10080),
    -- Where the sales team is told.
    notify_emails             text[] NOT NULL DEFAULT ARRAY[]::text[],
    notify_telegram_chat_id   text CHECK (notify_telegram_chat_id IS NULL OR length(notify_telegram_chat_id) <= 64),
    -- The email / Telegram channel whose credentials send the notifications (NULL: the
    -- tenant's first enabled channel of that kind).
    notify_email_channel_id   uuid,
    notify_telegram_channel_id uuid,
    -- The tenant's CRM: lead events are POSTed here, signed with HMAC-SHA256.
    crm_webhook_url           text CHECK (crm_webhook_url IS NULL OR crm_webhook_url ~ '^https?://'),
    -- AES-256-GCM with the tenant id as associated data; never returned by the API.
    crm_secret_enc            bytea,
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- Who owns the conversation: the bot, nobody yet (waiting for a human), or a human. A closed
-- conversation keeps `status = 'closed'`.
ALTER TABLE conversations
    ADD COLUMN handoff_state text NOT NULL DEFAULT 'bot'
        CHECK (handoff_state IN ('bot', 'waiting', 'human')),
    -- Consecutive turns without an answer from the knowledge (for the failure rule).
    ADD COLUMN failed_answers integer NOT NULL DEFAULT 0,
    -- Set at hand-back: the next bot turn tells the model what the human did.
    ADD COLUMN handback_note text;

CREATE TABLE escalations (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id   uuid NOT NULL,
    -- What brought the human in.
    trigger           text NOT NULL CHECK (trigger IN ('customer', 'tool', 'keyword', 'failures', 'lead_score', 'admin')),
    reason            text NOT NULL CHECK (length(reason) <= 2000),
    summary           text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'claimed', 'resolved')),
    -- Whether the escalation came outside business hours (the customer was told when to expect
    -- an answer).
    after_hours       boolean NOT NULL DEFAULT false,
    claimed_by        text,
    notifications     integer NOT NULL DEFAULT 1,
    next_reminder_at  timestamptz,
    handback_note     text,
    -- The idempotency key of the request that opened it (a redone turn finds it again).
    request_key       text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    claimed_at        timestamptz,
    resolved_at       timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, request_key),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
-- At most one open escalation per conversation: a second trigger finds the first.
CREATE UNIQUE INDEX escalations_one_open ON escalations (conversation_id) WHERE status <> 'resolved';
CREATE INDEX escalations_reminders ON escalations (next_reminder_at) WHERE status = 'waiting';
CREATE INDEX escalations_tenant ON escalations (tenant_id, created_at DESC);

CREATE TABLE effects (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id uuid,
    -- How it leaves: an email (SMTP), a Telegram message, a signed HTTP POST.
    kind            text NOT NULL CHECK (kind IN ('email', 'telegram', 'webhook')),
    -- Why it exists ('escalation', 'escalation_reminder', 'booking_invite', 'crm_lead', …).
    purpose         text NOT NULL CHECK (length(purpose) BETWEEN 1 AND 64),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 300),
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'done', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 8 CHECK (max_attempts BETWEEN 1 AND 50),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX effects_due ON effects (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX effects_tenant ON effects (tenant_id, purpose, created_at DESC);

-- The delivery log: one row per attempt.
CREATE TABLE effect_attempts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    effect_id   uuid NOT NULL,
    attempt     integer NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'transient', 'permanent', 'skipped')),
    -- The HTTP status of a webhook answer.
    status_code integer,
    detail      text NOT NULL DEFAULT '' CHECK (length(detail) <= 2000),
    duration_ms integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, effect_id) REFERENCES effects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX effect_attempts_effect ON effect_attempts (effect_id, attempt);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['action_settings', 'escalations', 'effects', 'effect_attempts']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant_id()) '
                       'WITH CHECK (tenant_id = app_tenant_id())', t);
        EXECUTE format('CREATE POLICY platform_access ON %I TO switchboard_platform USING (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO switchboard_app, switchboard_platform', t);
    END LOOP;
END
$$;

-- Claims up to p_limit due effects for p_lease (ids and tenants only). A row whose lease
-- expired (the worker died mid-send) is due again; `redelivery` says so.
CREATE FUNCTION platform_claim_effects(p_limit integer, p_lease interval)
    RETURNS TABLE (id uuid, tenant_id uuid, attempts integer, redelivery boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS $$
        WITH due AS (
            SELECT e.id, e.status
              FROM effects e
             WHERE (e.status = 'pending' AND e.next_attempt_at <= now())
                OR (e.status = 'sending' AND e.locked_until < now())
             ORDER BY e.next_attempt_at, e.created_at, e.id
             LIMIT p_limit
             FOR UPDATE SKIP LOCKED
        )
        UPDATE effects e
           SET status = 'sending', locked_until = now() + p_lease, attempts = e.attempts + 1
          FROM due
         WHERE e.id = due.id
        RETURNING e.id, e.tenant_id, e.attempts, due.status = 'sending'
    $$;

-- Time of the earliest future effect attempt, so the worker can sleep exactly that long.
CREATE FUNCTION platform_next_effect_due()
    RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT min(CASE WHEN status = 'pending' THEN next_attempt_at ELSE locked_until END)
            FROM effects WHERE status IN ('pending', 'sending') $$;

-- Waiting escalations whose reminder is due (ids and tenants only).
CREATE FUNCTION platform_due_escalation_reminders(p_limit integer)
    RETURNS TABLE (id uuid, tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT id, tenant_id FROM escalations
           WHERE status = 'waiting' AND next_reminder_at <= now()
           ORDER BY next_reminder_at LIMIT p_limit $$;

REVOKE ALL ON FUNCTION platform_claim_effects(integer, interval), platform_next_effect_due(),
    platform_due_escalation_reminders(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_claim_effects(integer, interval), platform_next_effect_due(),
    platform_due_escalation_reminders(integer) TO switchboard_app;
ALTER FUNCTION platform_claim_effects(integer, interval) OWNER TO switchboard_platform;
ALTER FUNCTION platform_next_effect_due() OWNER TO switchboard_platform;
ALTER FUNCTION platform_due_escalation_reminders(integer) OWNER TO switchboard_platform;
