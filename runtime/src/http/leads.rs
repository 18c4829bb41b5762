//! Admin API of lead capture and the actions' settings: leads with their score and reasons,
//! the CRM delivery log (every signed webhook with every attempt), retrying a failed delivery,
//! and the tenant's action settings (the CRM secret is write-only: answers only say
//! `has_crm_secret`). Each route acts for the tenant of the request
//! ([`crate::auth::Scope`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::store::actions::{self, ActionSettingsUpdate, SettingsError};
use switchboard_core::store::{effects, leads};
use switchboard_core::ContactId;
use uuid::Uuid;

use super::agent::unprocessable;
use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;

#[derive(Debug, Deserialize)]
pub struct LeadsParams {
    /// Only leads scoring at least this (0–100; default 0).
    min_score: Option<i32>,
    /// At most this many (1–500; default 100).
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesParams {
    /// `pending`, `sending`, `done`, `failed` or `skipped`.
    status: Option<String>,
    limit: Option<i64>,
}

fn limit(l: Option<i64>) -> Result<i64, ApiError> {
    match l {
        None => Ok(100),
        Some(l) if (1..=500).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::bad_request(
            "invalid_limit",
            "`limit` must be between 1 and 500",
        )),
    }
}

fn id_param(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no {what} `{raw}`")))
}

/// `GET /api/v1/leads?tenant=…[&min_score=N][&limit=N]`: leads, best first.
pub async fn list(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<LeadsParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let min = p.min_score.unwrap_or(0);
    if !(0..=100).contains(&min) {
        return Err(ApiError::bad_request(
            "invalid_min_score",
            "`min_score` must be between 0 and 100",
        ));
    }
    let limit = limit(p.limit)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let list = leads::list(&mut tx, min, limit).await?;
    tx.commit().await?;
    Ok(Json(json!({"leads": list})))
}

/// `GET /api/v1/leads/{contact_id}?tenant=…`: one lead (fields, score, reasons, signals) and
/// its CRM deliveries with their attempts, newest first.
pub async fn show(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let contact = ContactId(id_param(&raw, "lead")?);
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let Some(lead) = leads::get(&mut tx, contact).await? else {
        return Err(ApiError::not_found(format!("no lead `{raw}`")));
    };
    let deliveries = leads::deliveries(&mut tx, Some(contact), None, 100).await?;
    tx.commit().await?;
    Ok(Json(json!({"lead": lead, "deliveries": deliveries})))
}

/// `GET /api/v1/crm/deliveries?tenant=…[&status=…][&limit=N]`: the CRM delivery log.
pub async fn deliveries(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<DeliveriesParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    const STATUSES: [&str; 5] = ["pending", "sending", "done", "failed", "skipped"];
    if let Some(s) = &p.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("`status` must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let limit = limit(p.limit)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let list = leads::deliveries(&mut tx, None, p.status.as_deref(), limit).await?;
    tx.commit().await?;
    Ok(Json(json!({"deliveries": list})))
}

/// `POST /api/v1/crm/deliveries/{id}/retry?tenant=…`: puts a failed (or skipped) delivery back
/// in the queue with a fresh attempt budget; 409 when it is not failed.
pub async fn retry(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let id = id_param(&raw, "delivery")?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    if leads::delivery(&mut tx, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no CRM delivery `{raw}`")));
    }
    if !effects::retry(&mut tx, id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            "only a failed or skipped delivery can be retried",
        ));
    }
    let delivery = leads::delivery(&mut tx, id).await?;
    tx.commit().await?;
    state.services.effects_kick.notify_one();
    Ok(Json(json!({"delivery": delivery})))
}

/// `GET /api/v1/actions/settings?tenant=…`: the tenant's action settings (defaults when it
/// never saved any). The CRM secret is never returned, only `has_crm_secret`.
pub async fn get_settings(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let s = actions::get(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({"settings": s})))
}

/// `PUT /api/v1/actions/settings?tenant=…` with any of the settings' fields, `crm_secret`
/// (write-only, 16–512 characters) and `clear_crm_secret`. Omitted fields keep their value;
/// invalid settings are refused whole with 422 and nothing is stored.
pub async fn put_settings(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(update): ApiJson<ActionSettingsUpdate>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let s = actions::put(&mut tx, state.services.embedders.master_key(), update)
        .await
        .map_err(|e| match e {
            SettingsError::Invalid(m) => unprocessable("invalid_settings", m),
            SettingsError::Db(e) => e.into(),
        })?;
    tx.commit().await?;
    Ok(Json(json!({"settings": s})))
}
