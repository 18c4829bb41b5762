-- Foundation schema: tenants, channels, contacts, conversations, messages, inbound events,
-- turns and the outbox, with row-level security enabled and forced on every tenant table.
--
-- The application connects as (or switches to) the role `switchboard_app`, which owns nothing and
-- cannot bypass row-level security. Every tenant-scoped transaction sets `app.tenant_id` with
-- `set_config(..., true)`; a query that did not set it sees no rows at all.
-- Cross-tenant work the platform genuinely needs (routing a webhook to its tenant, resuming
-- unfinished work after a restart, claiming outbox rows) goes through a handful of narrow
-- SECURITY DEFINER functions at the end of this file, which return ids, never customer data.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_app') THEN
        CREATE ROLE switchboard_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    -- Owner of the platform functions below; nobody logs in as it.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_platform') THEN
        CREATE ROLE switchboard_platform NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- The migrating user must be able to SET ROLE switchboard_app when the deployment shares one
-- login between migrations and the application (external DATABASE_URL).
DO $$
BEGIN
    EXECUTE format('GRANT switchboard_app, switchboard_platform TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'could not grant switchboard_app to %: %', current_user, SQLERRM;
END
$$;

CREATE EXTENSION IF NOT EXISTS vector;

-- The tenant the current transaction acts for, or NULL when none was set.
CREATE FUNCTION app_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id               uuid PRIMARY KEY,
    slug             text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    default_language text NOT NULL DEFAULT 'en',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('webchat', 'cli', 'whatsapp', 'telegram', 'sms', 'voice', 'email')),
    name       text NOT NULL,
    enabled    boolean NOT NULL DEFAULT true,
    config     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX channels_tenant ON channels (tenant_id);

CREATE TABLE contacts (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id   uuid NOT NULL,
    external_id  text NOT NULL,
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (channel_id, external_id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE conversations (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id      uuid NOT NULL,
    contact_id      uuid NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    language        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (channel_id, contact_id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);

-- One row per provider delivery. The unique key (channel, provider message id) is what drops
-- redeliveries: the insert uses ON CONFLICT DO NOTHING, never a prior lookup.
CREATE TABLE inbound_events (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id          uuid NOT NULL,
    provider_message_id text NOT NULL CHECK (length(provider_message_id) BETWEEN 1 AND 256),
    conversation_id     uuid NOT NULL,
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'parked')),
    attempts            integer NOT NULL DEFAULT 0,
    last_error          text,
    turn_id             uuid,
    received_at         timestamptz NOT NULL DEFAULT now(),
    processed_at        timestamptz,
    UNIQUE (channel_id, provider_message_id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX inbound_events_pending ON inbound_events (conversation_id, received_at) WHERE status = 'pending';
CREATE INDEX inbound_events_parked ON inbound_events (tenant_id, received_at) WHERE status = 'parked';

-- A turn is one answer of the agent to one or more coalesced inbound events.
CREATE TABLE turns (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL,
    responder       text NOT NULL,
    intent          text,
    event_count     integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE inbound_events ADD FOREIGN KEY (turn_id) REFERENCES turns (id) ON DELETE SET NULL;

CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL,
    role             text NOT NULL CHECK (role IN ('customer', 'agent', 'human', 'system')),
    text             text NOT NULL,
    inbound_event_id uuid UNIQUE REFERENCES inbound_events (id) ON DELETE CASCADE,
    turn_id          uuid UNIQUE REFERENCES turns (id) ON DELETE CASCADE,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX messages_conversation ON messages (conversation_id, seq);

-- Transactional outbox: written in the same transaction as the reply, delivered by the
-- dispatcher. `idempotency_key` makes a second insert of the same effect impossible.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id      uuid NOT NULL,
    conversation_id uuid NOT NULL,
    message_id      uuid REFERENCES messages (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL UNIQUE,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    provider_ref    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Knowledge (minimal until the knowledge-base issue): documents and their searchable chunks.
CREATE TABLE documents (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title      text NOT NULL,
    language   text NOT NULL DEFAULT 'en',
    source     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

CREATE TABLE chunks (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id uuid NOT NULL,
    position    integer NOT NULL,
    text        text NOT NULL,
    -- Normalised text (Arabic letters unified, prefixes stripped) indexed with the 'simple'
    -- configuration so that English and Arabic both match without a per-language dictionary.
    search_text text NOT NULL,
    tsv         tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED,
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_tenant ON chunks (tenant_id);

-- Row-level security: enabled and forced everywhere, one policy per table.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['channels', 'contacts', 'conversations', 'inbound_events', 'turns',
                             'messages', 'outbox', 'documents', 'chunks']
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

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = app_tenant_id()) WITH CHECK (id = app_tenant_id());
CREATE POLICY platform_access ON tenants TO switchboard_platform USING (true);
GRANT SELECT, UPDATE ON tenants TO switchboard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO switchboard_platform;
GRANT EXECUTE ON FUNCTION app_tenant_id() TO switchboard_app;

-- ---------------------------------------------------------------------------------------------
-- Platform functions: the only cross-tenant doors. They are owned by `switchboard_platform`,
-- whose own policy sees every row; SECURITY DEFINER lets `switchboard_app` call exactly these
-- functions with that power and nothing else (it is not a member of `switchboard_platform`).
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION platform_create_tenant(p_id uuid, p_slug text, p_name text, p_language text)
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS $$ INSERT INTO tenants (id, slug, name, default_language) VALUES (p_id, p_slug, p_name, p_language) $$;

CREATE FUNCTION platform_list_tenants()
    RETURNS TABLE (id uuid, slug text, name text, default_language text, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT id, slug, name, default_language, created_at FROM tenants ORDER BY created_at, slug $$;

-- Resolves a channel id from a public URL to its tenant and kind; disabled channels resolve too
-- (the caller decides), unknown ones return no row.
CREATE FUNCTION platform_resolve_channel(p_channel_id uuid)
    RETURNS TABLE (tenant_id uuid, kind text, enabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT tenant_id, kind, enabled FROM channels WHERE id = p_channel_id $$;

-- Conversations with unfinished inbound events, for resuming work after a restart.
CREATE FUNCTION platform_pending_conversations()
    RETURNS TABLE (tenant_id uuid, conversation_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT DISTINCT tenant_id, conversation_id FROM inbound_events WHERE status = 'pending' $$;

-- Claims up to p_limit due outbox rows for p_lease, returning where each belongs. A row whose
-- lease expired (a dispatcher died mid-send) is due again; `redelivery` says so, because that
-- row may already have reached the provider.
CREATE FUNCTION platform_claim_outbox(p_limit integer, p_lease interval)
    RETURNS TABLE (id uuid, tenant_id uuid, channel_id uuid, conversation_id uuid, attempts integer,
                   redelivery boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS $$
        WITH due AS (
            SELECT c.id, c.status
              FROM outbox c
             WHERE (c.status = 'pending' AND c.next_attempt_at <= now())
                OR (c.status = 'sending' AND c.locked_until < now())
             ORDER BY c.next_attempt_at, c.id
             LIMIT p_limit
             FOR UPDATE SKIP LOCKED
        )
        UPDATE outbox o
           SET status = 'sending', locked_until = now() + p_lease, attempts = o.attempts + 1
          FROM due
         WHERE o.id = due.id
        RETURNING o.id, o.tenant_id, o.channel_id, o.conversation_id, o.attempts,
                  due.status = 'sending'
    $$;

-- Time of the earliest future outbox attempt, so the dispatcher can sleep exactly that long.
CREATE FUNCTION platform_next_outbox_due()
    RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT min(CASE WHEN status = 'pending' THEN next_attempt_at ELSE locked_until END)
            FROM outbox WHERE status IN ('pending', 'sending') $$;

REVOKE ALL ON FUNCTION platform_create_tenant(uuid, text, text, text), platform_list_tenants(),
    platform_resolve_channel(uuid), platform_pending_conversations(),
    platform_claim_outbox(integer, interval), platform_next_outbox_due() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_create_tenant(uuid, text, text, text), platform_list_tenants(),
    platform_resolve_channel(uuid), platform_pending_conversations(),
    platform_claim_outbox(integer, interval), platform_next_outbox_due() TO switchboard_app;

ALTER FUNCTION platform_create_tenant(uuid, text, text, text) OWNER TO switchboard_platform;
ALTER FUNCTION platform_list_tenants() OWNER TO switchboard_platform;
ALTER FUNCTION platform_resolve_channel(uuid) OWNER TO switchboard_platform;
ALTER FUNCTION platform_pending_conversations() OWNER TO switchboard_platform;
ALTER FUNCTION platform_claim_outbox(integer, interval) OWNER TO switchboard_platform;
ALTER FUNCTION platform_next_outbox_due() OWNER TO switchboard_platform;
