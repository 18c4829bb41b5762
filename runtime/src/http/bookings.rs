//! Admin API of meeting booking: the tenant's availability (read, replace, free slots) and its
//! bookings (list with filters, read, book, cancel, reschedule). Each route acts for the
//! tenant of the request ([`crate::auth::Scope`]).
//!
//! Status codes: malformed input (a time that is not RFC 3339, an unknown status) is a 400;
//! well-formed input that makes no sense (hours that overlap, an unknown time zone, a time
//! outside opening hours) is a 422; a time another booking holds is a 409 `slot_taken` — the
//! exclusion constraint decides, so two admins booking at once cannot both win. Changes made
//! here send the same calendar invitations as the agent's.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_actors::booking::invite_writer;
use switchboard_core::availability::{Availability, AvailabilitySettings};
use switchboard_core::store::bookings::{
    self, BookOutcome, Booking, BookingFilter, CancelOutcome, NewBooking, RescheduleOutcome,
};
use switchboard_core::{DbError, TenantTx};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;

/// Filters are read as text and parsed here, so a bad value is a JSON 400 naming it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `confirmed` or `cancelled`.
    status: Option<String>,
    /// Bookings starting at or after this time (RFC 3339).
    from: Option<String>,
    /// Bookings starting before this time (RFC 3339).
    to: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotParams {
    /// 1 to 200 (default 10).
    limit: Option<String>,
    /// Slots after this instant (default: now).
    from: Option<String>,
}

use crate::auth::{AuditDetail, Scope};

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

fn parse_time(name: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_time",
                format!("`{name}` must be an RFC 3339 time such as 2026-12-06T09:00:00+04:00"),
            )
        })
}

fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw {
        None => Ok(default),
        Some(r) => r
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("`limit` is 1 to {max}"))
            }),
    }
}

fn booking_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>()
        .map_err(|_| ApiError::bad_request("invalid_id", "the booking id is not a UUID"))
}

async fn require_availability(tx: &mut TenantTx) -> Result<Availability, ApiError> {
    bookings::availability(tx).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_availability",
            "this tenant has no availability; PUT /api/v1/availability first",
        )
    })
}

/// A booking with its start in the tenant's time zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    #[serde(flatten)]
    pub booking: Booking,
    /// The start in the tenant's time zone, `YYYY-MM-DDTHH:MM:SS`.
    pub local_start: String,
}

fn view(b: &Booking) -> BookingView {
    BookingView {
        booking: b.clone(),
        local_start: b.local_start().format("%Y-%m-%dT%H:%M:%S").to_string(),
    }
}

/// The tenant's availability.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityOne {
    /// `null` when the tenant has none.
    pub availability: Option<AvailabilitySettings>,
}

/// Free slots.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotList {
    /// The tenant's IANA time zone.
    pub timezone: String,
    pub slots: Vec<SlotView>,
}

/// A free slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The start in the tenant's time zone, `YYYY-MM-DDTHH:MM:SS`.
    pub local_start: String,
}

/// Bookings by start time.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingList {
    pub bookings: Vec<BookingView>,
}

/// One booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingOne {
    pub booking: BookingView,
}

/// A cancelled booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingCancelled {
    pub booking: BookingView,
    /// True when it had been cancelled before (nothing was sent this time).
    pub already_cancelled: bool,
}

/// A moved booking: a new booking replaces the old one.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingRescheduled {
    pub booking: BookingView,
    /// The id of the booking it replaces.
    pub rescheduled_from: Uuid,
}

/// `GET /api/v1/availability`: the settings, `null` when none.
#[utoipa::path(
    get,
    path = "/api/v1/availability",
    summary = "Shows the tenant's availability (`null` when none).",
    tag = "bookings",
    responses((status = 200, description = "The availability settings, `null` when none", body = AvailabilityOne))
)]
pub async fn get_availability(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<AvailabilityOne>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let a = bookings::availability(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(AvailabilityOne {
        availability: a.as_ref().map(|a| a.settings().clone()),
    }))
}

/// `PUT /api/v1/availability`: replaces the settings (validated; a problem is a 422 naming it).
#[utoipa::path(
    put,
    path = "/api/v1/availability",
    summary = "Replaces the tenant's availability (validated).",
    tag = "bookings",
    request_body = AvailabilitySettings,
    responses(
        (status = 200, description = "The settings as saved", body = AvailabilityOne),
        (status = 422, description = "`invalid_availability`: overlapping hours, an unknown time zone, …"),
    )
)]
pub async fn put_availability(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AvailabilitySettings>,
) -> Result<(Extension<AuditDetail>, Json<AvailabilityOne>), ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let before = bookings::availability(&mut tx).await?;
    let a = match bookings::put_availability(&mut tx, body).await {
        Ok(a) => a,
        Err(DbError::Invalid(m)) => return Err(unprocessable("invalid_availability", m)),
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    let detail = AuditDetail::new("availability.update", "tenant", tenant.id.to_string())
        .before_state(&before.as_ref().map(|b| b.settings()))
        .after_state(a.settings());
    Ok((
        Extension(detail),
        Json(AvailabilityOne {
            availability: Some(a.settings().clone()),
        }),
    ))
}

/// `GET /api/v1/availability/slots`: the next free slots.
#[utoipa::path(
    get,
    path = "/api/v1/availability/slots",
    summary = "Lists the next free slots.",
    tag = "bookings",
    params(SlotParams),
    responses(
        (status = 200, description = "The next free slots", body = SlotList),
        (status = 400, description = "`invalid_limit` or `invalid_time`"),
        (status = 404, description = "`no_availability`: the tenant has no availability yet"),
    )
)]
pub async fn list_slots(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<SlotParams>,
) -> Result<Json<SlotList>, ApiError> {
    let limit = parse_limit(p.limit.as_deref(), 10, 200)? as usize;
    let from = match p.from.as_deref() {
        Some(f) => parse_time("from", f)?,
        None => Utc::now(),
    };
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let a = require_availability(&mut tx).await?;
    let slots = bookings::free_slots(&mut tx, &a, from, limit).await?;
    tx.commit().await?;
    Ok(Json(SlotList {
        timezone: a.timezone_name().to_string(),
        slots: slots
            .iter()
            .map(|s| SlotView {
                start: s.start,
                end: s.end,
                local_start: s.local_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
            })
            .collect(),
    }))
}

/// `GET /api/v1/bookings`: by start time; `status`, `from`, `to` (RFC 3339), `limit`.
#[utoipa::path(
    get,
    path = "/api/v1/bookings",
    summary = "Lists bookings by start time, filtered by status and time.",
    tag = "bookings",
    params(ListParams),
    responses(
        (status = 200, description = "Bookings by start time", body = BookingList),
        (status = 400, description = "`invalid_status`, `invalid_time` or `invalid_limit`"),
    )
)]
pub async fn list(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<BookingList>, ApiError> {
    if let Some(s) = p.status.as_deref() {
        if s != "confirmed" && s != "cancelled" {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is `confirmed` or `cancelled`",
            ));
        }
    }
    let filter = BookingFilter {
        status: p.status.clone(),
        from: p
            .from
            .as_deref()
            .map(|f| parse_time("from", f))
            .transpose()?,
        to: p.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        contact: None,
        limit: parse_limit(p.limit.as_deref(), 100, 1000)?,
    };
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let list = bookings::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(Json(BookingList {
        bookings: list.iter().map(view).collect(),
    }))
}

/// `GET /api/v1/bookings/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/bookings/{booking_id}",
    tag = "bookings",
    params(("booking_id" = String, Path, description = "The booking's id")),
    responses(
        (status = 200, description = "The booking", body = BookingOne),
        (status = 400, description = "`invalid_id`: the id is not a UUID"),
        (status = 404, description = "No booking has this id"),
    )
)]
pub async fn show(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BookingOne>, ApiError> {
    let id = booking_id(&id)?;
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let b = bookings::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no booking {id}")))?;
    tx.commit().await?;
    Ok(Json(BookingOne { booking: view(&b) }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The meeting's start, RFC 3339 (inside opening hours, not in the past).
    #[schema(example = "2026-12-06T09:00:00+04:00")]
    start: String,
    #[serde(default)]
    customer_name: Option<String>,
    #[serde(default)]
    customer_email: Option<String>,
    /// `en` or `ar`: the language of the customer's invitation.
    #[serde(default)]
    lang: Option<String>,
    /// Repeating a request with the same key returns the booking it made.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// `POST /api/v1/bookings`: an admin books a meeting (any time inside opening hours).
#[utoipa::path(
    post,
    path = "/api/v1/bookings",
    tag = "bookings",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Booked; the calendar invitations are queued", body = BookingOne),
        (status = 200, description = "The booking an earlier request with the same `idempotency_key` made", body = BookingOne),
        (status = 400, description = "`invalid_time`: `start` is not RFC 3339"),
        (status = 404, description = "`no_availability`: the tenant has no availability yet"),
        (status = 409, description = "`slot_taken`: another booking holds that time"),
        (status = 422, description = "`in_the_past`, `outside_hours`, `invalid_email`, `invalid_lang` or `invalid_idempotency_key`"),
    )
)]
pub async fn create(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<BookingOne>), ApiError> {
    let start = parse_time("start", &body.start)?;
    if let Some(e) = &body.customer_email {
        if !switchboard_core::validate::email(e) {
            return Err(unprocessable(
                "invalid_email",
                format!("`{e}` is not an email address"),
            ));
        }
    }
    let lang = body.lang.as_deref().unwrap_or("en");
    if lang != "en" && lang != "ar" {
        return Err(unprocessable("invalid_lang", "lang is `en` or `ar`"));
    }
    let key = idempotency_key(body.idempotency_key.as_deref())?;
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let a = require_availability(&mut tx).await?;
    check_admin_time(&a, start)?;
    let writer = invite_writer(&tenant.name);
    let new = NewBooking {
        conversation: None,
        contact: None,
        start,
        idempotency_key: key,
        customer_name: body.customer_name.map(|n| n.chars().take(200).collect()),
        customer_email: body.customer_email,
        lang: lang.into(),
    };
    let (status, b) = match bookings::book(&mut tx, &a, &new, &writer).await? {
        BookOutcome::Booked(b) => (StatusCode::CREATED, b),
        BookOutcome::Existing(b) => (StatusCode::OK, b),
        BookOutcome::SlotTaken => {
            return Err(conflict(
                "slot_taken",
                "another booking holds that time (with its buffer)",
            ))
        }
    };
    tx.commit().await?;
    Ok((status, Json(BookingOne { booking: view(&b) })))
}

/// An optional body; an empty one is the defaults.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Told to the customer (default: "cancelled by an admin").
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/bookings/{id}/cancel` (optional body `{"reason"}`): cancelling twice is
/// harmless (the second answers `already_cancelled: true` and sends nothing).
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{booking_id}/cancel",
    summary = "Cancels a booking; cancelling twice is harmless (`already_cancelled: true`, nothing sent).",
    tag = "bookings",
    params(("booking_id" = String, Path, description = "The booking's id")),
    request_body(content = Option<CancelBody>, description = "Optional; an empty body cancels without a reason"),
    responses(
        (status = 200, description = "Cancelled (or already cancelled); the cancellations are queued", body = BookingCancelled),
        (status = 400, description = "`invalid_id`: the id is not a UUID"),
        (status = 404, description = "No booking has this id"),
        (status = 422, description = "`invalid_body`: the body is not the expected JSON"),
    )
)]
pub async fn cancel(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<BookingCancelled>, ApiError> {
    let id = booking_id(&id)?;
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| unprocessable("invalid_body", format!("cancel body: {e}")))?
    };
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let writer = invite_writer(&tenant.name);
    let reason = body
        .reason
        .unwrap_or_else(|| "cancelled by an admin".into());
    let (b, already) = match bookings::cancel(&mut tx, id, Some(&reason), &writer).await? {
        CancelOutcome::Cancelled(b) => (b, false),
        CancelOutcome::AlreadyCancelled(b) => (b, true),
    };
    tx.commit().await?;
    Ok(Json(BookingCancelled {
        booking: view(&b),
        already_cancelled: already,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    /// The new start, RFC 3339.
    start: String,
    /// Repeating a request with the same key returns the booking it made.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// `POST /api/v1/bookings/{id}/reschedule` with `{"start"}`: moves the booking (a new booking
/// replaces it, same calendar event, SEQUENCE + 1).
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{booking_id}/reschedule",
    summary = "Moves a booking: a new booking replaces it (same calendar event, SEQUENCE + 1).",
    tag = "bookings",
    params(("booking_id" = String, Path, description = "The booking's id")),
    request_body = RescheduleBody,
    responses(
        (status = 200, description = "The new booking that replaces this one", body = BookingRescheduled),
        (status = 400, description = "`invalid_id` or `invalid_time`"),
        (status = 404, description = "No booking has this id, or `no_availability`"),
        (status = 409, description = "`slot_taken`, or `not_confirmed`: only confirmed bookings move"),
        (status = 422, description = "`in_the_past`, `outside_hours` or `invalid_idempotency_key`"),
    )
)]
pub async fn reschedule(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RescheduleBody>,
) -> Result<Json<BookingRescheduled>, ApiError> {
    let id = booking_id(&id)?;
    let start = parse_time("start", &body.start)?;
    let key = idempotency_key(body.idempotency_key.as_deref())?;
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let a = require_availability(&mut tx).await?;
    check_admin_time(&a, start)?;
    let writer = invite_writer(&tenant.name);
    let b = match bookings::reschedule(&mut tx, &a, id, start, &key, &writer).await? {
        RescheduleOutcome::Rescheduled(b) | RescheduleOutcome::Existing(b) => b,
        RescheduleOutcome::SlotTaken => {
            return Err(conflict(
                "slot_taken",
                "another booking holds that time (with its buffer)",
            ))
        }
        RescheduleOutcome::NotConfirmed(_) => {
            return Err(conflict(
                "not_confirmed",
                "the booking is cancelled or was already moved; only confirmed bookings move",
            ))
        }
    };
    tx.commit().await?;
    Ok(Json(BookingRescheduled {
        booking: view(&b),
        rescheduled_from: id,
    }))
}

fn idempotency_key(raw: Option<&str>) -> Result<String, ApiError> {
    match raw.map(str::trim) {
        None => Ok(format!("admin:{}", Uuid::now_v7())),
        Some(k) if !k.is_empty() && k.len() <= 200 => Ok(format!("admin:{k}")),
        Some(_) => Err(unprocessable(
            "invalid_idempotency_key",
            "idempotency_key is 1 to 200 characters",
        )),
    }
}

/// Admins may book off the slot grid and at short notice, but not in the past nor outside
/// opening hours.
fn check_admin_time(a: &Availability, start: DateTime<Utc>) -> Result<(), ApiError> {
    if start <= Utc::now() {
        return Err(unprocessable("in_the_past", "the start time has passed"));
    }
    if !a.within_hours(start) {
        return Err(unprocessable(
            "outside_hours",
            format!(
                "a {}-minute meeting at that time does not fit inside the opening hours ({})",
                a.settings().slot_minutes,
                a.timezone_name()
            ),
        ));
    }
    Ok(())
}
