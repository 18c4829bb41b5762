//! Admin API for channels: create (answering the webhook URL to paste into the provider), show,
//! change, delete, and a health check that asks the provider whether the credentials work.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_channels::ChannelSettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::channels;
use switchboard_core::{ChannelId, TenantId};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::{AuditDetail, Scope};
use crate::channels::{ChannelConfigError, ChannelView};

/// One channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelOne {
    pub channel: ChannelView,
}

/// A new channel, and whether its webhook was registered with the provider (Telegram).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelCreated {
    pub channel: ChannelView,
    /// Present for kinds whose provider has an API to register the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_registration: Option<Check>,
}

/// The outcome of asking a provider something.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub ok: bool,
    /// What the provider said (absent when a registration simply worked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Whether a channel works.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelHealth {
    pub channel_id: ChannelId,
    pub kind: ChannelKind,
    pub enabled: bool,
    /// Whether the provider accepts the credentials (asked now).
    pub credentials: Check,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub webhook_url: Option<String>,
}

impl From<ChannelConfigError> for ApiError {
    fn from(e: ChannelConfigError) -> Self {
        match e {
            ChannelConfigError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", m)
            }
            ChannelConfigError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// `webchat`, `whatsapp`, `telegram`, `sms`, `voice` or `email`.
    #[schema(example = "telegram")]
    kind: String,
    name: String,
    /// The kind's settings, credentials included (they are sealed and never shown again).
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Map<String, Value>,
}

/// `POST /api/v1/channels?tenant=<slug or id>`.
#[utoipa::path(
    post,
    path = "/api/v1/channels",
    summary = "Creates a channel and answers the webhook URL to give the provider.",
    tag = "channels",
    request_body = CreateChannel,
    responses(
        (status = 201, description = "The channel, with the webhook URL to give the provider", body = ChannelCreated),
        (status = 422, description = "`invalid_settings`: unknown kind, or settings the kind does not accept"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelCreated>), ApiError> {
    let tenant = &scope.tenant;
    let kind: ChannelKind = body.kind.parse().map_err(|e: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", e)
    })?;
    let conf = state.configurator();
    let record = conf
        .create(tenant.id, kind, &body.name, body.config)
        .await?;
    let mut out = ChannelCreated {
        channel: conf.view(&record),
        webhook_registration: None,
    };
    // Where the provider has an API for it (Telegram), register the webhook right away; the
    // channel exists either way and the answer says what happened.
    if let Some(url) = conf.webhook_url(kind, record.channel.id) {
        let result = match conf.open(&record) {
            Ok(settings) => {
                state
                    .services
                    .outbound
                    .register_webhook(&settings, &url)
                    .await
            }
            Err(e) => Some(Err(e.to_string())),
        };
        if let Some(result) = result {
            out.webhook_registration = Some(match result {
                Ok(()) => Check {
                    ok: true,
                    detail: None,
                },
                Err(detail) => Check {
                    ok: false,
                    detail: Some(detail),
                },
            });
        }
    }
    Ok((StatusCode::CREATED, Json(out)))
}

/// The channel id from the URL, if it is one of the request's tenant; anything else (another
/// tenant's channel included) is 404, as if it did not exist.
async fn locate(
    state: &AppState,
    scope: &Scope,
    raw: &str,
) -> Result<(ChannelId, TenantId), ApiError> {
    let unknown = || ApiError::not_found(format!("no channel `{raw}`"));
    let id: ChannelId = raw.parse().map_err(|_| unknown())?;
    let tenant = scope.tenant_id();
    let mut tx = state.services.db.tenant(tenant).await?;
    let found = channels::get(&mut tx, id).await?.is_some();
    tx.commit().await?;
    if !found {
        return Err(unknown());
    }
    Ok((id, tenant))
}

async fn record(
    state: &AppState,
    scope: &Scope,
    raw: &str,
) -> Result<channels::ChannelRecord, ApiError> {
    let (id, tenant) = locate(state, scope, raw).await?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let rec = channels::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no channel `{raw}`")))?;
    tx.commit().await?;
    Ok(rec)
}

/// `GET /api/v1/channels/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel_id}",
    summary = "Shows a channel: public settings, secrets set, webhook URL, health.",
    tag = "channels",
    params(("channel_id" = String, Path, description = "The channel's id")),
    responses(
        (status = 200, description = "The channel", body = ChannelOne),
        (status = 404, description = "The tenant has no channel with this id"),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<ChannelOne>, ApiError> {
    let rec = record(&state, &scope, &raw).await?;
    Ok(Json(ChannelOne {
        channel: state.configurator().view(&rec),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchChannel {
    name: Option<String>,
    enabled: Option<bool>,
    /// Merged into the settings; a `null` value removes a key.
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
}

/// `PATCH /api/v1/channels/{id}`: `name`, `enabled`, and `config` merged into the settings.
#[utoipa::path(
    patch,
    path = "/api/v1/channels/{channel_id}",
    summary = "Changes a channel's name, whether it is enabled, and its settings (merged).",
    tag = "channels",
    params(("channel_id" = String, Path, description = "The channel's id")),
    request_body = PatchChannel,
    responses(
        (status = 200, description = "The channel as changed", body = ChannelOne),
        (status = 404, description = "The tenant has no channel with this id"),
        (status = 422, description = "`invalid_settings`: settings the kind does not accept"),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PatchChannel>,
) -> Result<(Extension<AuditDetail>, Json<ChannelOne>), ApiError> {
    let before = record(&state, &scope, &raw).await?;
    let (id, tenant) = (before.channel.id, before.channel.tenant_id);
    let conf = state.configurator();
    let rec = conf
        .update(tenant, id, body.name.as_deref(), body.enabled, body.config)
        .await?;
    let view = conf.view(&rec);
    // The views name which secrets are set, never their values.
    let detail = AuditDetail::new("channel.update", "channel", id.to_string())
        .before_state(&conf.view(&before))
        .after_state(&view);
    Ok((Extension(detail), Json(ChannelOne { channel: view })))
}

/// `DELETE /api/v1/channels/{id}`: the channel and its conversations.
#[utoipa::path(
    delete,
    path = "/api/v1/channels/{channel_id}",
    summary = "Deletes a channel and its conversations.",
    tag = "channels",
    params(("channel_id" = String, Path, description = "The channel's id")),
    responses(
        (status = 204, description = "Deleted, with its conversations"),
        (status = 404, description = "The tenant has no channel with this id"),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetail>), ApiError> {
    let (id, tenant) = locate(&state, &scope, &raw).await?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let before = channels::get(&mut tx, id).await?;
    let deleted = channels::delete(&mut tx, id).await?;
    tx.commit().await?;
    match (deleted, before) {
        (true, Some(before)) => {
            let detail = AuditDetail::new("channel.delete", "channel", id.to_string())
                .before_state(&state.configurator().view(&before));
            Ok((StatusCode::NO_CONTENT, Extension(detail)))
        }
        _ => Err(ApiError::not_found(format!("no channel `{raw}`"))),
    }
}

/// `GET /api/v1/channels/{id}/health`: whether the credentials work (asked of the provider),
/// when the last verified inbound request arrived, and the last error.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel_id}/health",
    tag = "channels",
    params(("channel_id" = String, Path, description = "The channel's id")),
    responses(
        (status = 200, description = "The credentials check and the last inbound request and error", body = ChannelHealth),
        (status = 404, description = "The tenant has no channel with this id"),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<ChannelHealth>, ApiError> {
    let rec = record(&state, &scope, &raw).await?;
    let conf = state.configurator();
    let credentials = match conf.open(&rec) {
        Err(e) => Check {
            ok: false,
            detail: Some(e.to_string()),
        },
        Ok(ChannelSettings::Webchat) => Check {
            ok: true,
            detail: Some("web chat needs no credentials".into()),
        },
        Ok(settings) => match state.services.outbound.check(&settings).await {
            Ok(detail) => Check {
                ok: true,
                detail: Some(detail),
            },
            Err(detail) => Check {
                ok: false,
                detail: Some(detail),
            },
        },
    };
    Ok(Json(ChannelHealth {
        channel_id: rec.channel.id,
        kind: rec.channel.kind,
        enabled: rec.channel.enabled,
        credentials,
        webhook_url: conf.webhook_url(rec.channel.kind, rec.channel.id),
        last_inbound_at: rec.last_inbound_at,
        last_error: rec.last_error,
        last_error_at: rec.last_error_at,
    }))
}
