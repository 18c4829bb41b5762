-- Identity for the business side: people who sign in (users), what they may do in which tenant
-- (memberships with a role), their browser sessions, machine credentials (API keys, per tenant),
-- invitations and password resets, sign-in throttling, and the append-only audit log.
--
-- Tables about a tenant (memberships, API keys, invitations, the audit log) carry tenant_id with
-- row-level security like every other tenant table. Users, sessions, password resets and the
-- throttle are not a tenant's data (one person may belong to several tenants); the application
-- role reads them directly, and only ever joins users through a tenant's memberships when it
-- lists a tenant's people. Lookups by secret (an API key, an invitation link) must find their
-- tenant first, so they go through narrow platform functions that return the row's ids.
--
-- Secrets are never stored: passwords as argon2id PHC strings, every token as its SHA-256.

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254
                                             AND position('@' IN email) > 1),
    display_name        text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    -- argon2id in PHC form; NULL until the person sets a password (an invitation).
    password_hash       text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
    platform_admin      boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz,
    disabled_at         timestamptz
);
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE memberships (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('tenant_admin', 'sales_agent', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    -- Sent back by the browser in X-CSRF-Token on every state-changing request.
    csrf_token   text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    ip           text,
    user_agent   text CHECK (user_agent IS NULL OR length(user_agent) <= 512)
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role         text NOT NULL CHECK (role IN ('tenant_admin', 'sales_agent', 'viewer')),
    -- The first characters of the key, shown in lists so people can tell keys apart.
    prefix       text NOT NULL,
    key_sha256   bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    UNIQUE (tenant_id, id)
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email        text NOT NULL CHECK (email = lower(email)),
    role         text NOT NULL CHECK (role IN ('tenant_admin', 'sales_agent', 'viewer')),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    invited_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    revoked_at   timestamptz,
    UNIQUE (tenant_id, id)
);
-- One open invitation per person and tenant: inviting again replaces the link.
CREATE UNIQUE INDEX invitations_open ON invitations (tenant_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

CREATE TABLE password_resets (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- Failed sign-ins per key (`account:<email>` or `ip:<address>`) in the current window, and the
-- lock that follows too many. Shared by every process of a cluster.
CREATE TABLE auth_throttle (
    key          text PRIMARY KEY CHECK (length(key) <= 300),
    failures     integer NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);

-- Every change made through the API: who (a user, an API key or the bootstrap credential), when,
-- what, in which tenant, and the state before and after with secrets redacted. Append-only: the
-- application may insert and read, never update or delete, and a trigger refuses it to anyone.
CREATE TABLE audit_log (
    id            uuid PRIMARY KEY,
    -- NULL for platform changes (a tenant created, a platform user).
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_kind    text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'bootstrap', 'cli')),
    actor_id      uuid,
    actor_label   text NOT NULL,
    action        text NOT NULL CHECK (length(action) BETWEEN 1 AND 200),
    method        text,
    path          text,
    resource_type text,
    resource_id   text,
    status        integer,
    before        jsonb,
    after         jsonb,
    request_id    text,
    ip            text
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at DESC, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memberships', 'api_keys', 'invitations']
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

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
-- A tenant's transaction reads and writes its own entries; a transaction without a tenant writes
-- platform entries (tenant_id NULL) and reads nothing.
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id IS NOT DISTINCT FROM app_tenant_id());
CREATE POLICY platform_access ON audit_log TO switchboard_platform USING (true);
GRANT SELECT, INSERT ON audit_log TO switchboard_app;
GRANT SELECT ON audit_log TO switchboard_platform;

GRANT SELECT, INSERT, UPDATE ON users, sessions, password_resets TO switchboard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth_throttle TO switchboard_app;
GRANT SELECT ON users TO switchboard_platform;

-- ---------------------------------------------------------------------------------------------
-- Platform functions: lookups that must find the tenant from a secret or a person.
-- ---------------------------------------------------------------------------------------------

-- The API key with this SHA-256, wherever it belongs (revoked ones too: the caller refuses them).
CREATE FUNCTION platform_find_api_key(p_sha256 bytea)
    RETURNS TABLE (id uuid, tenant_id uuid, name text, role text, revoked boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT id, tenant_id, name, role, revoked_at IS NOT NULL
            FROM api_keys WHERE key_sha256 = p_sha256 $$;

-- Records a key's use, at most once a minute (a busy key does not write on every request).
CREATE FUNCTION platform_touch_api_key(p_id uuid)
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS $$ UPDATE api_keys SET last_used_at = now()
           WHERE id = p_id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') $$;

-- The tenants a person belongs to, with the role in each.
CREATE FUNCTION platform_user_memberships(p_user_id uuid)
    RETURNS TABLE (tenant_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT tenant_id, role FROM memberships WHERE user_id = p_user_id ORDER BY created_at, tenant_id $$;

-- The invitation behind a link.
CREATE FUNCTION platform_find_invitation(p_sha256 bytea)
    RETURNS TABLE (id uuid, tenant_id uuid, email text, role text, expires_at timestamptz,
                   accepted_at timestamptz, revoked_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT id, tenant_id, email, role, expires_at, accepted_at, revoked_at
            FROM invitations WHERE token_sha256 = p_sha256 $$;

-- One tenant by slug or id: every authenticated request names its tenant, and listing them all
-- to find one grows with the platform.
CREATE FUNCTION platform_find_tenant(p_ref text)
    RETURNS TABLE (id uuid, slug text, name text, default_language text, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT id, slug, name, default_language, created_at FROM tenants
           WHERE slug = p_ref
              -- CASE, not AND: only CASE guarantees the cast is never tried on a slug.
              OR id = CASE WHEN p_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                           THEN p_ref::uuid END $$;

REVOKE ALL ON FUNCTION platform_find_api_key(bytea), platform_touch_api_key(uuid),
    platform_user_memberships(uuid), platform_find_invitation(bytea),
    platform_find_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_find_api_key(bytea), platform_touch_api_key(uuid),
    platform_user_memberships(uuid), platform_find_invitation(bytea),
    platform_find_tenant(text) TO switchboard_app;
ALTER FUNCTION platform_find_tenant(text) OWNER TO switchboard_platform;
ALTER FUNCTION platform_find_api_key(bytea) OWNER TO switchboard_platform;
ALTER FUNCTION platform_touch_api_key(uuid) OWNER TO switchboard_platform;
ALTER FUNCTION platform_user_memberships(uuid) OWNER TO switchboard_platform;
ALTER FUNCTION platform_find_invitation(bytea) OWNER TO switchboard_platform;
