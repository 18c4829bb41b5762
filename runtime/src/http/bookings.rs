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
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::booking::invite_writer;
use switchboard_core::availability::{Availability, AvailabilitySettings};
use switchboard_core::store::bookings::{
    self, BookOutcome, Booking, BookingFilter, CancelOutcome, NewBooking, RescheduleOutcome,
};
use switchboard_core::{DbError, TenantTx};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;

/// Filters are read as text and parsed here, so a bad value is a JSON 400 naming it.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SlotParams {
    limit: Option<String>,
    /// Slots after this instant (default: now).
    from: Option<String>,
}

use crate::auth::Scope;

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

fn view(b: &Booking) -> Value {
    let mut v = serde_json::to_value(b).expect("bookings serialize");
    v["local_start"] = json!(b.local_start().format("%Y-%m-%dT%H:%M:%S").to_string());
    v
}

/// `GET /api/v1/availability`: the settings, `null` when none.
pub async fn get_availability(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let a = bookings::availability(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"availability": a.as_ref().map(|a| a.settings())}),
    ))
}

/// `PUT /api/v1/availability`: replaces the settings (validated; a problem is a 422 naming it).
pub async fn put_availability(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AvailabilitySettings>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let a = match bookings::put_availability(&mut tx, body).await {
        Ok(a) => a,
        Err(DbError::Invalid(m)) => return Err(unprocessable("invalid_availability", m)),
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(Json(json!({"availability": a.settings()})))
}

/// `GET /api/v1/availability/slots`: the next free slots.
pub async fn list_slots(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<SlotParams>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "timezone": a.timezone_name(),
        "slots": slots.iter().map(|s| json!({
            "start": s.start,
            "end": s.end,
            "local_start": s.local_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/bookings`: by start time; `status`, `from`, `to` (RFC 3339), `limit`.
pub async fn list(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"bookings": list.iter().map(view).collect::<Vec<_>>()}),
    ))
}

/// `GET /api/v1/bookings/{id}`.
pub async fn show(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = booking_id(&id)?;
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let b = bookings::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no booking {id}")))?;
    tx.commit().await?;
    Ok(Json(json!({"booking": view(&b)})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
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
pub async fn create(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let start = parse_time("start", &body.start)?;
    if let Some(e) = &body.customer_email {
        if !switchboard_core::availability::plausible_email(e) {
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
    Ok((status, Json(json!({"booking": view(&b)}))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/bookings/{id}/cancel` (optional body `{"reason"}`): cancelling twice is
/// harmless (the second answers `already_cancelled: true` and sends nothing).
pub async fn cancel(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"booking": view(&b), "already_cancelled": already}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    start: String,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// `POST /api/v1/bookings/{id}/reschedule` with `{"start"}`: moves the booking (a new booking
/// replaces it, same calendar event, SEQUENCE + 1).
pub async fn reschedule(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RescheduleBody>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"booking": view(&b), "rescheduled_from": id})))
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
