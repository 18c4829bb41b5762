//! Admin API of lead capture and the actions' settings: leads with their score and reasons,
//! the CRM delivery log (every signed webhook with every attempt), retrying a failed delivery,
//! and the tenant's action settings (the CRM secret is write-only: answers only say
//! `has_crm_secret`). Each route acts for the tenant of the request
//! ([`crate::auth::Scope`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use switchboard_core::store::actions::{self, ActionSettings, ActionSettingsUpdate, SettingsError};
use switchboard_core::store::leads::{Delivery, Lead};
use switchboard_core::store::{effects, leads};
use switchboard_core::ContactId;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::agent::unprocessable;
use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::{AuditDetail, Scope};

/// Leads, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadList {
    pub leads: Vec<Lead>,
}

/// One lead and its CRM deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadOne {
    pub lead: Lead,
    pub deliveries: Vec<Delivery>,
}

/// CRM deliveries with their attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}

/// One CRM delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOne {
    pub delivery: Option<Delivery>,
}

/// The tenant's action settings (the CRM secret only as `has_crm_secret`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionSettingsOne {
    pub settings: ActionSettings,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadsParams {
    /// Only leads scoring at least this (0–100; default 0).
    min_score: Option<i32>,
    /// At most this many (1–500; default 100).
    limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesParams {
    /// `pending`, `sending`, `done`, `failed` or `skipped`.
    status: Option<String>,
    /// At most this many (1–500; default 100).
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
#[utoipa::path(
    get,
    path = "/api/v1/leads",
    tag = "leads",
    params(LeadsParams),
    responses(
        (status = 200, description = "Leads, best first", body = LeadList),
        (status = 400, description = "`invalid_min_score` or `invalid_limit`"),
    )
)]
pub async fn list(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<LeadsParams>,
) -> Result<Json<LeadList>, ApiError> {
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
    Ok(Json(LeadList { leads: list }))
}

/// `GET /api/v1/leads/{contact_id}?tenant=…`: one lead (fields, score, reasons, signals) and
/// its CRM deliveries with their attempts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/leads/{contact_id}",
    tag = "leads",
    params(("contact_id" = String, Path, description = "The lead's contact id")),
    responses(
        (status = 200, description = "The lead and its CRM deliveries", body = LeadOne),
        (status = 404, description = "No lead has this id"),
    )
)]
pub async fn show(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<LeadOne>, ApiError> {
    let tenant = scope.tenant.clone();
    let contact = ContactId(id_param(&raw, "lead")?);
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let Some(lead) = leads::get(&mut tx, contact).await? else {
        return Err(ApiError::not_found(format!("no lead `{raw}`")));
    };
    let deliveries = leads::deliveries(&mut tx, Some(contact), None, 100).await?;
    tx.commit().await?;
    Ok(Json(LeadOne { lead, deliveries }))
}

/// `GET /api/v1/crm/deliveries?tenant=…[&status=…][&limit=N]`: the CRM delivery log.
#[utoipa::path(
    get,
    path = "/api/v1/crm/deliveries",
    summary = "Lists the CRM delivery log.",
    tag = "leads",
    params(DeliveriesParams),
    responses(
        (status = 200, description = "The CRM delivery log, newest first, with every attempt", body = DeliveryList),
        (status = 400, description = "`invalid_status` or `invalid_limit`"),
    )
)]
pub async fn deliveries(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<DeliveriesParams>,
) -> Result<Json<DeliveryList>, ApiError> {
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
    Ok(Json(DeliveryList { deliveries: list }))
}

/// `POST /api/v1/crm/deliveries/{id}/retry?tenant=…`: puts a failed (or skipped) delivery back
/// in the queue with a fresh attempt budget; 409 when it is not failed.
#[utoipa::path(
    post,
    path = "/api/v1/crm/deliveries/{effect_id}/retry",
    tag = "leads",
    params(("effect_id" = String, Path, description = "The CRM delivery's id")),
    responses(
        (status = 200, description = "The delivery, queued again", body = DeliveryOne),
        (status = 404, description = "No CRM delivery has this id"),
        (status = 409, description = "`not_failed`: only a failed or skipped delivery can be retried"),
    )
)]
pub async fn retry(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<DeliveryOne>, ApiError> {
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
    Ok(Json(DeliveryOne { delivery }))
}

/// `GET /api/v1/actions/settings?tenant=…`: the tenant's action settings (defaults when it
/// never saved any). The CRM secret is never returned, only `has_crm_secret`.
#[utoipa::path(
    get,
    path = "/api/v1/actions/settings",
    tag = "leads",
    responses((status = 200, description = "The action settings (defaults when never saved)", body = ActionSettingsOne))
)]
pub async fn get_settings(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<ActionSettingsOne>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let s = actions::get(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(ActionSettingsOne { settings: s }))
}

/// `PUT /api/v1/actions/settings?tenant=…` with any of the settings' fields, `crm_secret`
/// (write-only, 16–512 characters) and `clear_crm_secret`. Omitted fields keep their value;
/// invalid settings are refused whole with 422 and nothing is stored.
#[utoipa::path(
    put,
    path = "/api/v1/actions/settings",
    summary = "Changes the tenant's action settings; omitted fields keep their value.",
    tag = "leads",
    request_body = ActionSettingsUpdate,
    responses(
        (status = 200, description = "The settings as saved", body = ActionSettingsOne),
        (status = 422, description = "`invalid_settings`: refused whole, nothing stored"),
    )
)]
pub async fn put_settings(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(update): ApiJson<ActionSettingsUpdate>,
) -> Result<(Extension<AuditDetail>, Json<ActionSettingsOne>), ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let before = actions::get(&mut tx).await?;
    let s = actions::put(&mut tx, state.services.embedders.master_key(), update)
        .await
        .map_err(|e| match e {
            SettingsError::Invalid(m) => unprocessable("invalid_settings", m),
            SettingsError::Db(e) => e.into(),
        })?;
    // A literal or local address is refused now; names are checked on every connection.
    if let Some(url) = &s.crm_webhook_url {
        state
            .services
            .outbound
            .egress
            .check_url(url)
            .map_err(|e| unprocessable("invalid_settings", format!("`crm_webhook_url`: {e}")))?;
    }
    tx.commit().await?;
    let detail = AuditDetail::new("actions.settings", "tenant", tenant.id.to_string())
        .before_state(&before)
        .after_state(&s);
    Ok((Extension(detail), Json(ActionSettingsOne { settings: s })))
}
