-- Channels you configure: sealed credentials, health, delivery states and opt-outs.
--
-- * `channels.secrets_enc`: the channel's credentials (app secrets, tokens, passwords) as one JSON
--   object sealed with AES-256-GCM under the master key, the tenant id bound as associated data.
--   Public settings stay in `channels.config`.
-- * Health: when the channel last received a verified message, and the last error it reported
--   (a rejected webhook, a failed delivery), so admins can see a broken channel at a glance.
-- * `contacts.last_inbound_at`: the customer's last message, for WhatsApp's 24-hour window;
--   `contacts.opted_out_at`: set by SMS `STOP`, cleared by `START`; nothing is sent while set.
-- * `outbox.delivery_status`: what the provider reported after accepting a send (status
--   webhooks), separate from the dispatcher's own `status`.

ALTER TABLE channels
    ADD COLUMN secrets_enc     bytea,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_inbound_at timestamptz,
    ADD COLUMN last_error      text,
    ADD COLUMN last_error_at   timestamptz;

ALTER TABLE contacts
    ADD COLUMN last_inbound_at timestamptz,
    ADD COLUMN opted_out_at    timestamptz;

ALTER TABLE outbox
    ADD COLUMN delivery_status     text CHECK (delivery_status IN ('queued', 'sent', 'delivered', 'read', 'failed')),
    ADD COLUMN delivery_error      text,
    ADD COLUMN delivery_updated_at timestamptz;

-- Status webhooks name the provider's id of what we sent.
CREATE INDEX outbox_provider_ref ON outbox (channel_id, provider_ref) WHERE provider_ref IS NOT NULL;

-- Enabled channels of one kind, across tenants (ids only), for background work that is not
-- triggered by a request: Telegram long polling in local development.
CREATE FUNCTION platform_channels_of_kind(p_kind text)
    RETURNS TABLE (id uuid, tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT id, tenant_id FROM channels WHERE kind = p_kind AND enabled ORDER BY id $$;
REVOKE ALL ON FUNCTION platform_channels_of_kind(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_channels_of_kind(text) TO switchboard_app;
ALTER FUNCTION platform_channels_of_kind(text) OWNER TO switchboard_platform;
