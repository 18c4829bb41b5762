-- Lead capture (issue 6): the contact fields a sales team needs, the lead score with its
-- reasons, and what was last sent to the tenant's CRM.
--
-- `name` is `contacts.display_name` and `email` is `contacts.email` (both older). A contact is a
-- lead once it has a score (`lead_score IS NOT NULL`): it gave a detail or a buying signal.
-- `lead_signals` keeps every buying signal ever seen (asked about prices, a budget, a meeting,
-- urgency), because the score is recomputed from the fields and the signals, not from one
-- message.
--
-- CRM exactly-once: `crm_state_hash` is the fingerprint of the lead state last queued for the
-- CRM, and `crm_chain` chains the fingerprints of every state sent (hash of the previous chain
-- and the new state). The CRM effect's idempotency key is derived from the contact and the
-- chain, so a redone turn that reaches the same state finds the same key (no second call),
-- while a lead that changes and later changes back is still sent again.

ALTER TABLE contacts
    ADD COLUMN phone           text CHECK (phone IS NULL OR phone ~ '^\+?[0-9]{7,15}$'),
    ADD COLUMN company         text CHECK (company IS NULL OR length(company) BETWEEN 1 AND 200),
    ADD COLUMN interest        text CHECK (interest IS NULL OR length(interest) BETWEEN 1 AND 500),
    ADD COLUMN lead_notes      text CHECK (lead_notes IS NULL OR length(lead_notes) <= 2000),
    ADD COLUMN lead_signals    text[] NOT NULL DEFAULT ARRAY[]::text[]
        CHECK (lead_signals <@ ARRAY['meeting', 'budget', 'pricing', 'urgency']::text[]),
    ADD COLUMN lead_score      integer CHECK (lead_score IS NULL OR lead_score BETWEEN 0 AND 100),
    ADD COLUMN lead_reasons    jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(lead_reasons) = 'array'),
    ADD COLUMN lead_created_at timestamptz,
    ADD COLUMN lead_updated_at timestamptz,
    ADD COLUMN crm_state_hash  text,
    ADD COLUMN crm_chain       text,
    ADD COLUMN crm_queued_at   timestamptz;

-- The admins' lead list: best first, per tenant.
CREATE INDEX contacts_leads ON contacts (tenant_id, lead_score DESC, lead_updated_at DESC)
    WHERE lead_score IS NOT NULL;
