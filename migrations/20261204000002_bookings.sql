-- Meeting booking (issue 6): a tenant's availability and its bookings.
--
-- The promise "two customers can never get the same slot, even concurrently" is kept by the
-- database, not by the code: `bookings.hold` is the time a confirmed booking keeps for itself
-- (the meeting plus the buffer after it, computed by the application), and an exclusion
-- constraint forbids two confirmed holds of one tenant from overlapping. Two transactions that
-- insert overlapping holds at the same moment are serialised by the GiST index: the second
-- fails with SQLSTATE 23P01 once the first commits.

-- Equality on uuid inside a GiST exclusion constraint needs btree_gist (a trusted extension
-- shipped with PostgreSQL's contrib modules).
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- One row per tenant. The application validates everything (time zone name, hours) before it
-- writes; the checks here are the last line against impossible values.
CREATE TABLE availability (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- IANA time zone name ('Asia/Dubai'); weekly hours and holidays are local to it.
    timezone           text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    -- {"mon": [["09:00", "17:00"]], "tue": [...], ...}: local opening windows per weekday.
    weekly_hours       jsonb NOT NULL,
    slot_minutes       integer NOT NULL DEFAULT 30 CHECK (slot_minutes BETWEEN 5 AND 480),
    -- Kept free after every meeting.
    buffer_minutes     integer NOT NULL DEFAULT 0 CHECK (buffer_minutes BETWEEN 0 AND 240),
    -- A slot starts at least this long after the moment it is offered or booked.
    min_notice_minutes integer NOT NULL DEFAULT 60 CHECK (min_notice_minutes BETWEEN 0 AND 43200),
    -- How far ahead customers may book.
    horizon_days       integer NOT NULL DEFAULT 14 CHECK (horizon_days BETWEEN 1 AND 365),
    holidays           date[] NOT NULL DEFAULT ARRAY[]::date[],
    salesperson_name   text CHECK (salesperson_name IS NULL OR length(salesperson_name) <= 200),
    salesperson_email  text CHECK (salesperson_email IS NULL OR length(salesperson_email) <= 320),
    meeting_title      text NOT NULL DEFAULT 'Consultation' CHECK (length(meeting_title) BETWEEN 1 AND 200),
    location           text CHECK (location IS NULL OR length(location) <= 500),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bookings (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- NULL for bookings made by an admin, or once the conversation is deleted.
    conversation_id   uuid,
    contact_id        uuid,
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    -- The meeting plus the buffer after it: what the exclusion constraint compares.
    hold              tstzrange NOT NULL,
    status            text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'cancelled')),
    -- The calendar event's UID and SEQUENCE: a reschedule is a new row that keeps the UID and
    -- increments the sequence, so calendars update the event instead of adding a second one.
    ics_uid           text NOT NULL,
    sequence          integer NOT NULL DEFAULT 0,
    -- Unique per tenant: the same request (a redone turn, a repeated API call) finds the booking
    -- it made instead of making another.
    idempotency_key   text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 300),
    -- Snapshots at booking time: invites and the admin list must not change when a contact or
    -- the availability is edited later.
    customer_name     text,
    customer_email    text,
    lang              text NOT NULL DEFAULT 'en',
    title             text NOT NULL,
    location          text,
    timezone          text NOT NULL,
    salesperson_name  text,
    salesperson_email text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    cancelled_at      timestamptz,
    cancel_reason     text CHECK (cancel_reason IS NULL OR length(cancel_reason) <= 500),
    -- The booking this one replaced (its status is 'cancelled', reason 'rescheduled').
    rescheduled_from  uuid,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    CHECK (ends_at > starts_at),
    CHECK (lower(hold) = starts_at AND upper(hold) >= ends_at),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE SET NULL (conversation_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
        ON DELETE SET NULL (contact_id),
    FOREIGN KEY (tenant_id, rescheduled_from) REFERENCES bookings (tenant_id, id),
    CONSTRAINT bookings_no_overlap
        EXCLUDE USING gist (tenant_id WITH =, hold WITH &&) WHERE (status = 'confirmed')
);
CREATE INDEX bookings_tenant_start ON bookings (tenant_id, starts_at);
CREATE INDEX bookings_contact ON bookings (contact_id, starts_at) WHERE status = 'confirmed';

-- The slots last offered to the customer in this conversation (so "2" or a button press means
-- the slot the customer saw), with what the offer was for (a new booking or a reschedule).
ALTER TABLE conversations ADD COLUMN booking_offer jsonb;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['availability', 'bookings']
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
