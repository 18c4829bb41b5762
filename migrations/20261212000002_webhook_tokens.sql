-- Webhook tokens seen (issue 16, email authenticity): replay protection for provider signatures
-- that do not cover the body. Mailgun signs `timestamp + token` only, so a captured signed post
-- could be sent again within the accepted window with another body (another Message-Id, other
-- text). Each verified token is remembered here, with a SHA-256 of the fields it came with,
-- in the transaction that stores the webhook's messages: the same token with the same digest
-- is the provider's retry (its messages are duplicates), with another digest a replay, refused
-- before anything is stored.
--
-- `expires_at` is when the signature's window closes (its timestamp plus
-- `webhook_max_age_secs`); after that the signature is refused as stale anyway, and the row is
-- deleted by the next webhook of its channel (with a margin, see `store::webhook_tokens`).
CREATE TABLE webhook_tokens (
    tenant_id   uuid        NOT NULL,
    channel_id  uuid        NOT NULL,
    token       text        NOT NULL,
    body_sha256 bytea       NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id, token),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE
);

-- The pruning of a channel's expired tokens.
CREATE INDEX webhook_tokens_expiry ON webhook_tokens (channel_id, expires_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_tokens']
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
