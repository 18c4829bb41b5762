//! Admin API for channels: create (answering the webhook URL to paste into the provider), show,
//! change, delete, and a health check that asks the provider whether the credentials work.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchboard_channels::ChannelSettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::channels;
use switchboard_core::{ChannelId, TenantId};

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;
use crate::channels::ChannelConfigError;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    kind: String,
    name: String,
    #[serde(default)]
    config: Map<String, Value>,
}

/// `POST /api/v1/channels?tenant=<slug or id>`.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = &scope.tenant;
    let kind: ChannelKind = body.kind.parse().map_err(|e: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", e)
    })?;
    let conf = state.configurator();
    let record = conf
        .create(tenant.id, kind, &body.name, body.config)
        .await?;
    let mut out = json!({"channel": conf.view(&record)});
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
            out["webhook_registration"] = match result {
                Ok(()) => json!({"ok": true}),
                Err(detail) => json!({"ok": false, "detail": detail}),
            };
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
pub async fn show(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = record(&state, &scope, &raw).await?;
    Ok(Json(json!({"channel": state.configurator().view(&rec)})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchChannel {
    name: Option<String>,
    enabled: Option<bool>,
    config: Option<Map<String, Value>>,
}

/// `PATCH /api/v1/channels/{id}`: `name`, `enabled`, and `config` merged into the settings.
pub async fn patch(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PatchChannel>,
) -> Result<Json<Value>, ApiError> {
    let (id, tenant) = locate(&state, &scope, &raw).await?;
    let conf = state.configurator();
    let rec = conf
        .update(tenant, id, body.name.as_deref(), body.enabled, body.config)
        .await?;
    Ok(Json(json!({"channel": conf.view(&rec)})))
}

/// `DELETE /api/v1/channels/{id}`: the channel and its conversations.
pub async fn remove(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, tenant) = locate(&state, &scope, &raw).await?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let deleted = channels::delete(&mut tx, id).await?;
    tx.commit().await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no channel `{raw}`")))
    }
}

/// `GET /api/v1/channels/{id}/health`: whether the credentials work (asked of the provider),
/// when the last verified inbound request arrived, and the last error.
pub async fn health(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = record(&state, &scope, &raw).await?;
    let conf = state.configurator();
    let credentials = match conf.open(&rec) {
        Err(e) => json!({"ok": false, "detail": e.to_string()}),
        Ok(ChannelSettings::Webchat) => {
            json!({"ok": true, "detail": "web chat needs no credentials"})
        }
        Ok(settings) => match state.services.outbound.check(&settings).await {
            Ok(detail) => json!({"ok": true, "detail": detail}),
            Err(detail) => json!({"ok": false, "detail": detail}),
        },
    };
    Ok(Json(json!({
        "channel_id": rec.channel.id,
        "kind": rec.channel.kind,
        "enabled": rec.channel.enabled,
        "credentials": credentials,
        "last_inbound_at": rec.last_inbound_at,
        "last_error": rec.last_error,
        "last_error_at": rec.last_error_at,
        "webhook_url": conf.webhook_url(rec.channel.kind, rec.channel.id),
    })))
}
