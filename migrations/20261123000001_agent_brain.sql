-- The agent's brain: per-tenant model settings (sealed key, budget, tool allow-list), versioned
-- prompts, token usage, admin alerts, conversation summaries, and the prompt version of each
-- turn. Every new tenant table has row-level security enabled and forced, like the others.

-- A tenant's model. No row: the platform default (OPENAI_API_KEY / OPENAI_BASE_URL) when one is
-- configured, else the offline responder.
CREATE TABLE agent_settings (
    tenant_id            uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- 'offline' (the deterministic responder) or 'openai' (any OpenAI-compatible endpoint).
    provider             text NOT NULL DEFAULT 'openai' CHECK (provider IN ('offline', 'openai')),
    base_url             text,
    model                text,
    fallback_model       text,
    -- AES-256-GCM with the tenant id as associated data; never returned by the API.
    api_key_enc          bytea,
    temperature          real CHECK (temperature IS NULL OR temperature BETWEEN 0 AND 2),
    max_tokens           integer CHECK (max_tokens IS NULL OR max_tokens BETWEEN 1 AND 32768),
    timeout_secs         integer CHECK (timeout_secs IS NULL OR timeout_secs BETWEEN 1 AND 300),
    -- Tokens (prompt + completion) a tenant may use per calendar month (UTC); NULL: unlimited.
    monthly_token_budget bigint CHECK (monthly_token_budget IS NULL OR monthly_token_budget >= 0),
    max_tool_steps       integer CHECK (max_tool_steps IS NULL OR max_tool_steps BETWEEN 0 AND 10),
    -- Tools the agent may call; NULL: every registered tool.
    allowed_tools        text[],
    -- Offset of the tenant's local time from UTC, for the `local_time` template variable.
    utc_offset_minutes   integer NOT NULL DEFAULT 0 CHECK (utc_offset_minutes BETWEEN -840 AND 840),
    -- Tokens of conversation history sent with each request.
    context_tokens       integer CHECK (context_tokens IS NULL OR context_tokens BETWEEN 200 AND 100000),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- What the agent says. Versions are immutable once published; a tenant has at most one
-- published version, any number of drafts, and archived history. Rollback publishes a copy.
CREATE TABLE prompt_versions (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version        integer NOT NULL CHECK (version >= 1),
    status         text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
    persona        text NOT NULL DEFAULT '' CHECK (length(persona) <= 8000),
    instructions   text NOT NULL DEFAULT '' CHECK (length(instructions) <= 16000),
    guardrails     text NOT NULL DEFAULT '' CHECK (length(guardrails) <= 8000),
    -- Channel kind -> style text, overriding the built-in style of that channel.
    channel_styles jsonb NOT NULL DEFAULT '{}'::jsonb,
    note           text,
    author         text NOT NULL DEFAULT 'admin',
    -- The version this one was copied from (rollback, or a draft started from a version).
    based_on       integer,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    UNIQUE (tenant_id, version),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX prompt_versions_one_published ON prompt_versions (tenant_id) WHERE status = 'published';

ALTER TABLE turns ADD COLUMN prompt_version_id uuid REFERENCES prompt_versions (id) ON DELETE SET NULL;

-- Tokens of every model call: a turn's reply steps, conversation summaries, and previews.
CREATE TABLE llm_usage (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id   uuid,
    -- NULL for previews and for turns that were cancelled or superseded (tokens were spent all
    -- the same, so they count against the budget).
    turn_id           uuid REFERENCES turns (id) ON DELETE SET NULL,
    purpose           text NOT NULL CHECK (purpose IN ('reply', 'summary', 'preview')),
    model             text NOT NULL,
    prompt_tokens     integer NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens integer NOT NULL CHECK (completion_tokens >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
-- The budget check sums the month's tokens before every turn: an index-only scan.
CREATE INDEX llm_usage_tenant_month ON llm_usage (tenant_id, created_at)
    INCLUDE (prompt_tokens, completion_tokens);
CREATE INDEX llm_usage_conversation ON llm_usage (conversation_id) WHERE conversation_id IS NOT NULL;

-- Things admins must know about (budget exhausted, …). `period` makes an alert happen once per
-- period: the insert is ON CONFLICT DO NOTHING.
CREATE TABLE admin_alerts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    period          text NOT NULL,
    message         text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    UNIQUE (tenant_id, kind, period)
);

-- Rolling summary of a long conversation: everything up to message `summary_through_seq`.
ALTER TABLE conversations ADD COLUMN summary text;
ALTER TABLE conversations ADD COLUMN summary_through_seq bigint;

-- Fields the agent may set on the current contact (name goes to display_name).
ALTER TABLE contacts ADD COLUMN email text CHECK (email IS NULL OR length(email) <= 320);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['agent_settings', 'prompt_versions', 'llm_usage', 'admin_alerts']
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
