//! Platform administration (tenants) and the operational views that span the pipeline: every
//! channel and every parked event, of one tenant or — for a platform administrator who names
//! none — of all. What each route needs is declared in the route table (`crate::http::router`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::RootMsg;
use switchboard_core::model::Tenant;
use switchboard_core::store::{channels, platform, turns};
use switchboard_core::EventId;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;
use crate::tenants;

/// `GET /api/v1/tenants`: every tenant (platform administrators).
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

/// The request's tenant, or every tenant for a platform administrator who named none.
async fn tenants_in_scope(state: &AppState, scope: Option<Scope>) -> Result<Vec<Tenant>, ApiError> {
    match scope {
        Some(s) => Ok(vec![s.tenant]),
        None => Ok(platform::list_tenants(state.services.db.pool()).await?),
    }
}

/// `GET /api/v1/channels[?tenant=slug]`: channels with `id`, `kind`, public settings, webhook
/// URL and health.
pub async fn list_channels(
    State(state): State<AppState>,
    scope: Option<Scope>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    let conf = state.configurator();
    for t in tenants_in_scope(&state, scope).await? {
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
    scope: Option<Scope>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for t in tenants_in_scope(&state, scope).await? {
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
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let event: EventId = raw
        .parse()
        .map_err(|_| ApiError::not_found(format!("no parked event `{raw}`")))?;
    let tenant = scope.tenant;
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
