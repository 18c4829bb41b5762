//! Platform administration (tenants) and the operational views that span the pipeline: every
//! channel and every parked event, of one tenant or — for a platform administrator who names
//! none — of all. What each route needs is declared in the route table (`crate::http::router`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_actors::RootMsg;
use switchboard_core::model::{Channel, Tenant};
use switchboard_core::store::turns::ParkedEvent;
use switchboard_core::store::{channels, platform, turns};
use switchboard_core::{EventId, TenantId};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;
use crate::channels::ChannelView;
use crate::tenants;

/// Every tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

/// A new tenant and the web-chat channel made with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: Tenant,
    pub channels: Vec<Channel>,
}

/// Channels of the request's tenant (or of every tenant).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
}

/// Events taken out of the pipeline after repeated failures.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedList {
    pub parked: Vec<ParkedItem>,
}

/// One parked event and its tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedItem {
    pub tenant_id: TenantId,
    pub event: ParkedEvent,
}

/// A parked event put back in the pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventRetried {
    pub event_id: EventId,
    /// Always `pending`.
    pub status: &'static str,
}

/// `GET /api/v1/tenants`: every tenant (platform administrators).
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    responses((status = 200, description = "Every tenant", body = TenantList))
)]
pub async fn list_tenants(State(state): State<AppState>) -> Result<Json<TenantList>, ApiError> {
    let list = platform::list_tenants(state.services.db.pool()).await?;
    Ok(Json(TenantList { tenants: list }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Lower-case letters, digits and hyphens; unique.
    slug: String,
    name: String,
    /// `en` (default) or another language code.
    #[serde(default = "default_language")]
    #[schema(default = "en")]
    default_language: String,
}

fn default_language() -> String {
    "en".into()
}

/// Creates a tenant with a web-chat channel, so it can be talked to at once.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The tenant and its web-chat channel", body = TenantCreated),
        (status = 400, description = "`invalid`: the slug or the name is not acceptable"),
        (status = 409, description = "`conflict`: the slug is taken"),
    )
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
    let (tenant, channel) = tenants::create_with_webchat(
        &state.services.db,
        &body.slug,
        &body.name,
        &body.default_language,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant,
            channels: vec![channel],
        }),
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
#[utoipa::path(
    get,
    path = "/api/v1/channels",
    tag = "channels",
    responses((status = 200, description = "The channels, with `id`, `kind`, public settings, webhook URL and health", body = ChannelList))
)]
pub async fn list_channels(
    State(state): State<AppState>,
    scope: Option<Scope>,
) -> Result<Json<ChannelList>, ApiError> {
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
    Ok(Json(ChannelList { channels: out }))
}

/// `GET /api/v1/events/parked[?tenant=slug]`: events taken out of the pipeline after repeated
/// failures, with their last error.
#[utoipa::path(
    get,
    path = "/api/v1/events/parked",
    tag = "inbox",
    responses((status = 200, description = "Up to 200 parked events per tenant, with their last error", body = ParkedList))
)]
pub async fn list_parked(
    State(state): State<AppState>,
    scope: Option<Scope>,
) -> Result<Json<ParkedList>, ApiError> {
    let mut out = Vec::new();
    for t in tenants_in_scope(&state, scope).await? {
        let mut tx = state.services.db.tenant(t.id).await?;
        for e in turns::parked(&mut tx, 200).await? {
            out.push(ParkedItem {
                tenant_id: t.id,
                event: e,
            });
        }
        tx.commit().await?;
    }
    Ok(Json(ParkedList { parked: out }))
}

/// `POST /api/v1/events/{event_id}/retry?tenant=slug`: puts a parked event back in the pipeline.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/retry",
    tag = "inbox",
    params(("event_id" = String, Path, description = "The parked event's id")),
    responses(
        (status = 200, description = "The event is pending again; its conversation is woken", body = EventRetried),
        (status = 404, description = "No parked event has this id"),
    )
)]
pub async fn retry_parked(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<EventRetried>, ApiError> {
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
    Ok(Json(EventRetried {
        event_id: event,
        status: "pending",
    }))
}
