//! The admin API. Every route sits behind [`require_admin`]: there is no unauthenticated admin
//! surface. Until users and roles arrive, the credential is the bootstrap platform admin token.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::RootMsg;
use switchboard_core::model::Tenant;
use switchboard_core::store::{channels, platform, turns};
use switchboard_core::EventId;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::tenants;

/// Rejects requests without the admin bearer token (compared in constant time).
pub async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token)
            if constant_time_eq(
                token.as_bytes(),
                state.admin_token.expose_secret().as_bytes(),
            ) =>
        {
            Ok(next.run(req).await)
        }
        _ => Err(ApiError::unauthorized()),
    }
}

/// Equal-length comparison that does not stop at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn list_tenants(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = platform::list_tenants(state.services.db.pool()).await?;
    Ok(Json(json!({"tenants": list})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    slug: String,
    name: String,
    #[serde(default = "default_language")]
    default_language: String,
}

fn default_language() -> String {
    "en".into()
}

/// Creates a tenant with a web-chat channel, so it can be talked to at once.
pub async fn create_tenant(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (tenant, channel) = tenants::create_with_webchat(
        &state.services.db,
        &body.slug,
        &body.name,
        &body.default_language,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"tenant": tenant, "channels": [channel]})),
    ))
}

#[derive(Debug, Deserialize)]
pub struct TenantQuery {
    tenant: Option<String>,
}

async fn tenants_in_scope(state: &AppState, q: &TenantQuery) -> Result<Vec<Tenant>, ApiError> {
    let pool = state.services.db.pool();
    match &q.tenant {
        Some(t) => Ok(vec![platform::find_tenant(pool, t)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no tenant `{t}`")))?]),
        None => Ok(platform::list_tenants(pool).await?),
    }
}

/// `GET /api/v1/channels[?tenant=slug]`: channels with `id`, `kind`, public settings, webhook
/// URL and health.
pub async fn list_channels(
    State(state): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    let conf = state.configurator();
    for t in tenants_in_scope(&state, &q).await? {
        let mut tx = state.services.db.tenant(t.id).await?;
        out.extend(
            channels::list_records(&mut tx)
                .await?
                .iter()
                .map(|r| conf.view(r)),
        );
        tx.commit().await?;
    }
    Ok(Json(json!({"channels": out})))
}

/// `GET /api/v1/events/parked[?tenant=slug]`: events taken out of the pipeline after repeated
/// failures, with their last error.
pub async fn list_parked(
    State(state): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for t in tenants_in_scope(&state, &q).await? {
        let mut tx = state.services.db.tenant(t.id).await?;
        for e in turns::parked(&mut tx, 200).await? {
            out.push(json!({"tenant_id": t.id, "event": e}));
        }
        tx.commit().await?;
    }
    Ok(Json(json!({"parked": out})))
}

/// `POST /api/v1/events/{event_id}/retry?tenant=slug`: puts a parked event back in the pipeline.
pub async fn retry_parked(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let event: EventId = raw
        .parse()
        .map_err(|_| ApiError::not_found(format!("no parked event `{raw}`")))?;
    if q.tenant.is_none() {
        return Err(ApiError::bad_request(
            "missing_tenant",
            "pass ?tenant=<slug or id>",
        ));
    }
    let tenant = tenants_in_scope(&state, &q).await?.remove(0);
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let conversation = turns::retry_parked(&mut tx, event)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no parked event `{raw}`")))?;
    tx.commit().await?;
    let _ = state.root.send_message(RootMsg::Route {
        tenant: tenant.id,
        conversation,
    });
    Ok(Json(json!({"event_id": event, "status": "pending"})))
}
