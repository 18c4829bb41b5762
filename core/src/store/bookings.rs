//! Bookings: a tenant's availability, its meetings, and the calendar invitations they cause.
//!
//! The database guarantees what matters: the `bookings_no_overlap` exclusion constraint keeps
//! two confirmed holds of a tenant from overlapping however many turns book at once, and the
//! unique idempotency key makes a repeated request (a turn redone after a crash, an API call
//! sent twice) find the booking it made instead of making another. A violation of the
//! constraint aborts a PostgreSQL transaction, so every insert that may hit it runs inside a
//! SAVEPOINT: the caller gets [`BookOutcome::SlotTaken`] and can go on in the same transaction
//! (offer other slots, store the offer) — never an error 500.
//!
//! Each change enqueues its invitations ([`effects`]) in the same transaction: METHOD:REQUEST
//! when booked or moved, METHOD:CANCEL when cancelled, to the customer (when their email is
//! known) and to the salesperson, under keys `booking:{id}:{sequence}:customer|sales` — so an
//! invitation goes out once per change and recipient. The wording comes from the caller
//! ([`InviteWriter`]): this crate holds no customer-facing text.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::availability::{Availability, AvailabilitySettings, Slot};
use crate::db::{DbError, TenantTx};
use crate::ics;
use crate::ids::{ContactId, ConversationId};
use crate::store::effects::{self, EffectKind, NewEffect};

/// SQLSTATE of an exclusion-constraint violation.
const EXCLUSION_VIOLATION: &str = "23P01";

/// The tenant's availability, when it configured one (exact name: the handoff rule calls it).
pub async fn availability(tx: &mut TenantTx) -> Result<Option<Availability>, DbError> {
    let row = sqlx::query(
        "SELECT timezone, weekly_hours, slot_minutes, buffer_minutes, min_notice_minutes,
                horizon_days, holidays, salesperson_name, salesperson_email, meeting_title,
                location
           FROM availability",
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let weekly: Value = r.try_get("weekly_hours")?;
    let settings = AvailabilitySettings {
        timezone: r.try_get("timezone")?,
        weekly_hours: serde_json::from_value(weekly)
            .map_err(|e| DbError::Invalid(format!("stored weekly hours are unreadable: {e}")))?,
        slot_minutes: r.try_get::<i32, _>("slot_minutes")? as u32,
        buffer_minutes: r.try_get::<i32, _>("buffer_minutes")? as u32,
        min_notice_minutes: r.try_get::<i32, _>("min_notice_minutes")? as u32,
        horizon_days: r.try_get::<i32, _>("horizon_days")? as u32,
        holidays: r.try_get::<Vec<NaiveDate>, _>("holidays")?,
        salesperson_name: r.try_get("salesperson_name")?,
        salesperson_email: r.try_get("salesperson_email")?,
        meeting_title: r.try_get("meeting_title")?,
        location: r.try_get("location")?,
    };
    // Stored settings were validated on the way in; a failure here means the time zone
    // database lost a name, which an admin must fix by saving new settings.
    Availability::new(settings)
        .map(Some)
        .map_err(|e| DbError::Invalid(format!("stored availability is invalid: {e}")))
}

/// Validates and stores the tenant's availability (an error names the problem for the admin).
pub async fn put_availability(
    tx: &mut TenantTx,
    settings: AvailabilitySettings,
) -> Result<Availability, DbError> {
    let mut settings = settings;
    settings.meeting_title = settings.meeting_title.trim().to_owned();
    settings.holidays.sort_unstable();
    settings.holidays.dedup();
    let a = Availability::new(settings).map_err(|e| DbError::Invalid(e.0))?;
    let s = a.settings();
    let weekly = serde_json::to_value(&s.weekly_hours).expect("weekly hours serialize");
    sqlx::query(
        "INSERT INTO availability (tenant_id, timezone, weekly_hours, slot_minutes, buffer_minutes,
                                   min_notice_minutes, horizon_days, holidays, salesperson_name,
                                   salesperson_email, meeting_title, location, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
         ON CONFLICT (tenant_id) DO UPDATE SET
             timezone = EXCLUDED.timezone, weekly_hours = EXCLUDED.weekly_hours,
             slot_minutes = EXCLUDED.slot_minutes, buffer_minutes = EXCLUDED.buffer_minutes,
             min_notice_minutes = EXCLUDED.min_notice_minutes,
             horizon_days = EXCLUDED.horizon_days, holidays = EXCLUDED.holidays,
             salesperson_name = EXCLUDED.salesperson_name,
             salesperson_email = EXCLUDED.salesperson_email,
             meeting_title = EXCLUDED.meeting_title, location = EXCLUDED.location,
             updated_at = now()",
    )
    .bind(tx.tenant_id().0)
    .bind(&s.timezone)
    .bind(weekly)
    .bind(s.slot_minutes as i32)
    .bind(s.buffer_minutes as i32)
    .bind(s.min_notice_minutes as i32)
    .bind(s.horizon_days as i32)
    .bind(&s.holidays)
    .bind(&s.salesperson_name)
    .bind(&s.salesperson_email)
    .bind(&s.meeting_title)
    .bind(&s.location)
    .execute(tx.conn())
    .await?;
    Ok(a)
}

/// Up to `limit` free slots after `now`: the availability minus the confirmed holds.
pub async fn free_slots(
    tx: &mut TenantTx,
    availability: &Availability,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Slot>, DbError> {
    let until = now + Duration::days(i64::from(availability.settings().horizon_days) + 2);
    let busy: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT lower(hold), upper(hold) FROM bookings
          WHERE status = 'confirmed' AND hold && tstzrange($1, $2)",
    )
    .bind(now)
    .bind(until)
    .fetch_all(tx.conn())
    .await?;
    Ok(availability.free_slots(now, &busy, limit))
}

/// A booking as stored.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Booking {
    pub id: Uuid,
    pub conversation_id: Option<ConversationId>,
    pub contact_id: Option<ContactId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `confirmed` or `cancelled`.
    pub status: String,
    pub ics_uid: String,
    pub sequence: i32,
    pub idempotency_key: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub lang: String,
    pub title: String,
    pub location: Option<String>,
    pub timezone: String,
    pub salesperson_name: Option<String>,
    pub salesperson_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub rescheduled_from: Option<Uuid>,
}

impl Booking {
    /// The start on the wall clock of the time zone the booking was made in.
    pub fn local_start(&self) -> NaiveDateTime {
        match self.timezone.parse::<chrono_tz::Tz>() {
            Ok(tz) => self.starts_at.with_timezone(&tz).naive_local(),
            Err(_) => self.starts_at.naive_utc(),
        }
    }

    pub fn is_confirmed(&self) -> bool {
        self.status == "confirmed"
    }
}

const COLUMNS: &str = "id, conversation_id, contact_id, starts_at, ends_at, status, ics_uid, \
                       sequence, idempotency_key, customer_name, customer_email, lang, title, \
                       location, timezone, salesperson_name, salesperson_email, created_at, \
                       cancelled_at, cancel_reason, rescheduled_from";

fn booking_from(r: &PgRow) -> Result<Booking, DbError> {
    Ok(Booking {
        id: r.try_get("id")?,
        conversation_id: r
            .try_get::<Option<Uuid>, _>("conversation_id")?
            .map(ConversationId),
        contact_id: r.try_get::<Option<Uuid>, _>("contact_id")?.map(ContactId),
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        status: r.try_get("status")?,
        ics_uid: r.try_get("ics_uid")?,
        sequence: r.try_get("sequence")?,
        idempotency_key: r.try_get("idempotency_key")?,
        customer_name: r.try_get("customer_name")?,
        customer_email: r.try_get("customer_email")?,
        lang: r.try_get("lang")?,
        title: r.try_get("title")?,
        location: r.try_get("location")?,
        timezone: r.try_get("timezone")?,
        salesperson_name: r.try_get("salesperson_name")?,
        salesperson_email: r.try_get("salesperson_email")?,
        created_at: r.try_get("created_at")?,
        cancelled_at: r.try_get("cancelled_at")?,
        cancel_reason: r.try_get("cancel_reason")?,
        rescheduled_from: r.try_get("rescheduled_from")?,
    })
}

/// What changed, for the wording of an invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Booked,
    Rescheduled,
    Cancelled,
}

/// Who an invitation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Customer,
    Salesperson,
}

/// The human part of an invitation email.
#[derive(Clone, Debug)]
pub struct Invite {
    pub subject: String,
    pub text: String,
}

/// Words an invitation for a booking, a change and a recipient (supplied by the caller, which
/// knows the languages; see the module documentation).
pub type InviteWriter<'a> = &'a (dyn Fn(&Booking, Change, Audience) -> Invite + Sync);

/// A booking to make.
#[derive(Clone, Debug)]
pub struct NewBooking {
    pub conversation: Option<ConversationId>,
    pub contact: Option<ContactId>,
    pub start: DateTime<Utc>,
    /// Unique per tenant: the same key never books twice.
    pub idempotency_key: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// The customer's language (`en`, `ar`), for the invitation.
    pub lang: String,
}

/// How a booking attempt ended.
#[derive(Clone, Debug)]
pub enum BookOutcome {
    /// Booked now; invitations enqueued.
    Booked(Booking),
    /// This request had booked already (same idempotency key): nothing new happened.
    Existing(Booking),
    /// Another confirmed booking holds overlapping time. The transaction is still usable.
    SlotTaken,
}

/// Books `new.start` for one slot of `availability`. The caller checks that the start is one it
/// may offer ([`Availability::offers`] for customers, [`Availability::within_hours`] for admins).
pub async fn book(
    tx: &mut TenantTx,
    availability: &Availability,
    new: &NewBooking,
    invite: InviteWriter<'_>,
) -> Result<BookOutcome, DbError> {
    if let Some(b) = get_by_key(tx, &new.idempotency_key).await? {
        return Ok(BookOutcome::Existing(b));
    }
    let s = availability.settings();
    let id = Uuid::now_v7();
    let (h0, h1) = availability.hold(new.start);
    let sql = format!(
        "INSERT INTO bookings (id, tenant_id, conversation_id, contact_id, starts_at, ends_at,
                               hold, ics_uid, idempotency_key, customer_name, customer_email,
                               lang, title, location, timezone, salesperson_name,
                               salesperson_email)
         VALUES ($1, $2, $3, $4, $5, $6, tstzrange($7, $8), $9, $10, $11, $12, $13, $14, $15,
                 $16, $17, $18)
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    );
    let tenant = tx.tenant_id();
    let inserted = guarded(tx, || {
        sqlx::query(&sql)
            .bind(id)
            .bind(tenant.0)
            .bind(new.conversation.map(|c| c.0))
            .bind(new.contact.map(|c| c.0))
            .bind(new.start)
            .bind(new.start + availability.slot_length())
            .bind(h0)
            .bind(h1)
            .bind(format!("{id}@switchboard"))
            .bind(&new.idempotency_key)
            .bind(&new.customer_name)
            .bind(&new.customer_email)
            .bind(&new.lang)
            .bind(&s.meeting_title)
            .bind(&s.location)
            .bind(&s.timezone)
            .bind(&s.salesperson_name)
            .bind(&s.salesperson_email)
    })
    .await?;
    match inserted {
        Guarded::Taken => Ok(BookOutcome::SlotTaken),
        Guarded::Row(Some(r)) => {
            let b = booking_from(&r)?;
            enqueue_invites(tx, &b, Change::Booked, invite).await?;
            Ok(BookOutcome::Booked(b))
        }
        // The same request committed a booking while we were inserting: it is the one.
        Guarded::Row(None) => get_by_key(tx, &new.idempotency_key)
            .await?
            .map(BookOutcome::Existing)
            .ok_or_else(|| DbError::Conflict("the booking request is being processed".into())),
    }
}

/// How a cancellation ended.
#[derive(Clone, Debug)]
pub enum CancelOutcome {
    Cancelled(Booking),
    /// It was cancelled before (or moved): nothing new happened.
    AlreadyCancelled(Booking),
}

/// Cancels booking `id` and enqueues METHOD:CANCEL invitations. `NotFound` when it does not
/// exist (in this tenant).
pub async fn cancel(
    tx: &mut TenantTx,
    id: Uuid,
    reason: Option<&str>,
    invite: InviteWriter<'_>,
) -> Result<CancelOutcome, DbError> {
    let current = lock(tx, id).await?;
    if !current.is_confirmed() {
        return Ok(CancelOutcome::AlreadyCancelled(current));
    }
    let row = sqlx::query(&format!(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2,
                             sequence = sequence + 1
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reason.map(|r| r.chars().take(500).collect::<String>()))
    .fetch_one(tx.conn())
    .await?;
    let b = booking_from(&row)?;
    enqueue_invites(tx, &b, Change::Cancelled, invite).await?;
    Ok(CancelOutcome::Cancelled(b))
}

/// How a reschedule ended.
#[derive(Clone, Debug)]
pub enum RescheduleOutcome {
    /// The new booking (same calendar UID, next SEQUENCE); the old one is cancelled.
    Rescheduled(Booking),
    /// This request had moved it already (same idempotency key).
    Existing(Booking),
    /// The new time overlaps another booking; nothing changed.
    SlotTaken,
    /// The booking is cancelled (or was moved before): there is nothing to move.
    NotConfirmed(Booking),
}

/// Moves booking `id` to `new_start`, atomically: the old booking is cancelled and a new one
/// made in one step, or — when the new time is taken — nothing changes. The new booking keeps
/// the calendar UID with SEQUENCE + 1, so calendars update the event (an invitation goes out,
/// the old booking sends no CANCEL, which would remove the shared event).
pub async fn reschedule(
    tx: &mut TenantTx,
    availability: &Availability,
    id: Uuid,
    new_start: DateTime<Utc>,
    idempotency_key: &str,
    invite: InviteWriter<'_>,
) -> Result<RescheduleOutcome, DbError> {
    if let Some(b) = get_by_key(tx, idempotency_key).await? {
        return Ok(RescheduleOutcome::Existing(b));
    }
    let old = lock(tx, id).await?;
    if !old.is_confirmed() {
        return Ok(RescheduleOutcome::NotConfirmed(old));
    }
    let new_id = Uuid::now_v7();
    let (h0, h1) = availability.hold(new_start);
    // Both statements inside the savepoint: when the insert conflicts, the old booking's
    // cancellation is undone with it. A deadlock victim is retried (see `guarded`).
    let mut attempt = 0;
    loop {
        attempt += 1;
        sqlx::query("SAVEPOINT booking_move")
            .execute(tx.conn())
            .await?;
        let moved = async {
            sqlx::query(
                "UPDATE bookings SET status = 'cancelled', cancelled_at = now(),
                                     cancel_reason = 'rescheduled'
                  WHERE id = $1",
            )
            .bind(id)
            .execute(tx.conn())
            .await?;
            sqlx::query(&format!(
                "INSERT INTO bookings (id, tenant_id, conversation_id, contact_id, starts_at,
                                       ends_at, hold, ics_uid, sequence, idempotency_key,
                                       customer_name, customer_email, lang, title, location,
                                       timezone, salesperson_name, salesperson_email,
                                       rescheduled_from)
                 SELECT $1, tenant_id, conversation_id, contact_id, $2, $3, tstzrange($4, $5),
                        ics_uid, sequence + 1, $6, customer_name, customer_email, lang, title,
                        location, timezone, salesperson_name, salesperson_email, id
                   FROM bookings WHERE id = $7
                 RETURNING {COLUMNS}"
            ))
            .bind(new_id)
            .bind(new_start)
            .bind(new_start + availability.slot_length())
            .bind(h0)
            .bind(h1)
            .bind(idempotency_key)
            .bind(id)
            .fetch_one(tx.conn())
            .await
        }
        .await;
        match moved {
            Ok(row) => {
                sqlx::query("RELEASE SAVEPOINT booking_move")
                    .execute(tx.conn())
                    .await?;
                let b = booking_from(&row)?;
                enqueue_invites(tx, &b, Change::Rescheduled, invite).await?;
                return Ok(RescheduleOutcome::Rescheduled(b));
            }
            Err(e) if is_exclusion(&e) || (is_deadlock(&e) && attempt < DEADLOCK_RETRIES) => {
                sqlx::query("ROLLBACK TO SAVEPOINT booking_move")
                    .execute(tx.conn())
                    .await?;
                sqlx::query("RELEASE SAVEPOINT booking_move")
                    .execute(tx.conn())
                    .await?;
                if is_exclusion(&e) {
                    return Ok(RescheduleOutcome::SlotTaken);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One booking.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Option<Booking>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM bookings WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(booking_from).transpose()
}

/// Which bookings to list.
#[derive(Clone, Debug, Default)]
pub struct BookingFilter {
    /// `confirmed` or `cancelled`.
    pub status: Option<String>,
    /// Meetings starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Meetings starting before.
    pub to: Option<DateTime<Utc>>,
    pub contact: Option<ContactId>,
    pub limit: i64,
}

/// Bookings by start time.
pub async fn list(tx: &mut TenantTx, f: &BookingFilter) -> Result<Vec<Booking>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::timestamptz IS NULL OR starts_at >= $2)
            AND ($3::timestamptz IS NULL OR starts_at < $3)
            AND ($4::uuid IS NULL OR contact_id = $4)
          ORDER BY starts_at, id
          LIMIT $5"
    ))
    .bind(&f.status)
    .bind(f.from)
    .bind(f.to)
    .bind(f.contact.map(|c| c.0))
    .bind(f.limit.clamp(1, 1000))
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(booking_from).collect()
}

/// The contact's confirmed bookings that have not started, soonest first.
pub async fn upcoming_for_contact(
    tx: &mut TenantTx,
    contact: ContactId,
    now: DateTime<Utc>,
) -> Result<Vec<Booking>, DbError> {
    list(
        tx,
        &BookingFilter {
            status: Some("confirmed".into()),
            from: Some(now),
            contact: Some(contact),
            limit: 20,
            ..BookingFilter::default()
        },
    )
    .await
}

/// Who the customer of a conversation is, as a booking records them.
#[derive(Clone, Debug)]
pub struct Customer {
    pub contact: ContactId,
    pub name: Option<String>,
    /// The contact's email field, or their address when they write by email.
    pub email: Option<String>,
}

/// The customer of `conversation`.
pub async fn customer(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Option<Customer>, DbError> {
    let row: Option<(Uuid, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT k.id, k.display_name,
                COALESCE(k.email, CASE WHEN ch.kind = 'email' THEN k.external_id END)
           FROM conversations c
           JOIN contacts k ON k.id = c.contact_id
           JOIN channels ch ON ch.id = c.channel_id
          WHERE c.id = $1",
    )
    .bind(conversation.0)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|(id, name, email)| Customer {
        contact: ContactId(id),
        name,
        email: email.filter(|e| crate::validate::email(e)),
    }))
}

/// The slots last offered in a conversation, so that "2" or a button press means the slot
/// the customer saw, and what the offer was for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offer {
    /// `book` or `reschedule`.
    pub purpose: String,
    /// The booking to move (`reschedule`).
    #[serde(default)]
    pub booking_id: Option<Uuid>,
    pub slots: Vec<DateTime<Utc>>,
    pub offered_at: DateTime<Utc>,
    /// The language the slots were offered in (`en`, `ar`): a bare "2" has none of its own.
    #[serde(default)]
    pub lang: Option<String>,
}

pub async fn offer(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Option<Offer>, DbError> {
    let v: Option<Option<Value>> =
        sqlx::query_scalar("SELECT booking_offer FROM conversations WHERE id = $1")
            .bind(conversation.0)
            .fetch_optional(tx.conn())
            .await?;
    // An offer the code cannot read any more (an older shape) is as good as none.
    Ok(v.flatten().and_then(|v| serde_json::from_value(v).ok()))
}

/// Replaces (or with `None` clears) the conversation's offer.
pub async fn set_offer(
    tx: &mut TenantTx,
    conversation: ConversationId,
    offer: Option<&Offer>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE conversations SET booking_offer = $2 WHERE id = $1")
        .bind(conversation.0)
        .bind(offer.map(|o| serde_json::to_value(o).expect("offer serializes")))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The booking a request cancelled (its `cancel_reason`), so that a redone request finds it
/// instead of cancelling the customer's next booking.
pub async fn cancelled_with_reason(
    tx: &mut TenantTx,
    reason: &str,
) -> Result<Option<Booking>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE status = 'cancelled' AND cancel_reason = $1
          ORDER BY cancelled_at DESC LIMIT 1"
    ))
    .bind(reason)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(booking_from).transpose()
}

/// The booking made (or moved) by the request with idempotency `key`.
pub async fn get_by_key(tx: &mut TenantTx, key: &str) -> Result<Option<Booking>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(booking_from).transpose()
}

/// Locks booking `id` for a change (concurrent cancels and moves of one booking queue up).
async fn lock(tx: &mut TenantTx, id: Uuid) -> Result<Booking, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    match row {
        Some(r) => booking_from(&r),
        None => Err(DbError::NotFound(format!("no booking {id}"))),
    }
}

enum Guarded {
    Row(Option<PgRow>),
    Taken,
}

/// Runs the query `make` builds inside a savepoint; an exclusion violation rolls back to it and
/// says so. Two transactions inserting overlapping holds at the same instant can each wait for
/// the other inside the GiST index check; PostgreSQL's deadlock detector then aborts one
/// statement (40P01), which is retried: on the retry it simply waits for the other
/// transaction and sees its hold.
async fn guarded<'q, F>(tx: &mut TenantTx, make: F) -> Result<Guarded, DbError>
where
    F: Fn() -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        sqlx::query("SAVEPOINT booking_insert")
            .execute(tx.conn())
            .await?;
        let result = make().fetch_optional(tx.conn()).await;
        let outcome = match result {
            Ok(row) => Some(Ok(Guarded::Row(row))),
            Err(e) if is_exclusion(&e) => Some(Ok(Guarded::Taken)),
            Err(e) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => None,
            Err(e) => Some(Err(e)),
        };
        match outcome {
            Some(Ok(Guarded::Row(row))) => {
                sqlx::query("RELEASE SAVEPOINT booking_insert")
                    .execute(tx.conn())
                    .await?;
                return Ok(Guarded::Row(row));
            }
            Some(Err(e)) => return Err(e.into()),
            // Taken, or a deadlock victim to retry: undo the failed statement either way.
            other => {
                sqlx::query("ROLLBACK TO SAVEPOINT booking_insert")
                    .execute(tx.conn())
                    .await?;
                sqlx::query("RELEASE SAVEPOINT booking_insert")
                    .execute(tx.conn())
                    .await?;
                if let Some(Ok(taken)) = other {
                    return Ok(taken);
                }
            }
        }
    }
}

/// Attempts of a booking statement chosen as a deadlock victim (see [`guarded`]).
const DEADLOCK_RETRIES: u32 = 4;

fn is_deadlock(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01")
}

fn is_exclusion(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == EXCLUSION_VIOLATION)
}

/// Enqueues the invitations of `change` to booking `b`: customer (email known) and salesperson.
async fn enqueue_invites(
    tx: &mut TenantTx,
    b: &Booking,
    change: Change,
    invite: InviteWriter<'_>,
) -> Result<(), DbError> {
    let method = match change {
        Change::Cancelled => ics::Method::Cancel,
        Change::Booked | Change::Rescheduled => ics::Method::Request,
    };
    let organizer = match &b.salesperson_email {
        Some(e) => ics::Party {
            name: b.salesperson_name.clone(),
            email: e.clone(),
        },
        // iTIP requires an organizer; without a salesperson the invitation comes from the
        // calendar itself, at an address that cannot receive mail.
        None => ics::Party {
            name: Some(b.title.clone()),
            email: "bookings@switchboard.invalid".into(),
        },
    };
    let mut attendees = Vec::new();
    if let Some(e) = &b.customer_email {
        attendees.push(ics::Party {
            name: b.customer_name.clone(),
            email: e.clone(),
        });
    }
    let recipients = [
        (Audience::Customer, "customer", b.customer_email.as_ref()),
        (Audience::Salesperson, "sales", b.salesperson_email.as_ref()),
    ];
    for (audience, tag, to) in recipients {
        let Some(to) = to else { continue };
        let words = invite(b, change, audience);
        let content = ics::render(&ics::Event {
            method,
            uid: b.ics_uid.clone(),
            sequence: b.sequence,
            stamp: Utc::now(),
            start: b.starts_at,
            end: b.ends_at,
            summary: b.title.clone(),
            description: Some(words.text.clone()),
            location: b.location.clone(),
            organizer: organizer.clone(),
            attendees: attendees.clone(),
        });
        effects::enqueue(
            tx,
            &NewEffect {
                conversation: b.conversation_id,
                kind: EffectKind::Email,
                purpose: "booking_invite".into(),
                idempotency_key: format!("booking:{}:{}:{tag}", b.id, b.sequence),
                payload: json!({
                    "to": [to],
                    "subject": words.subject,
                    "text": words.text,
                    "ics": {"method": method.as_str(), "content": content},
                }),
                max_attempts: None,
            },
        )
        .await?;
    }
    Ok(())
}
