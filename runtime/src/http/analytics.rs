//! Admin API of analytics: `GET /api/v1/analytics?tenant=…[&from=…][&to=…][&channel=ID]`.
//!
//! The figures and their definitions live in `switchboard_core::store::analytics`; this handler
//! reads the parameters, resolves the tenant and answers JSON. Parameters are read as text so
//! that a bad value is a JSON error naming it: a malformed time or channel id is a 400, an
//! empty, reversed or too long range a 422, a channel the tenant does not have a 404.

use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::store::analytics::{self, AnalyticsError, Range, RangeError};
use switchboard_core::ChannelId;

use super::agent::unprocessable;
use super::error::ApiError;
use super::AppState;
use crate::auth::Scope;

#[derive(Debug, Deserialize)]
pub struct Params {
    /// RFC 3339 time or `YYYY-MM-DD` (midnight UTC); default: 30 days before `to`.
    from: Option<String>,
    /// Exclusive; same forms; default: now.
    to: Option<String>,
    /// Only this channel of the tenant.
    channel: Option<String>,
}

/// `GET /api/v1/analytics?tenant=…[&from=…][&to=…][&channel=ID]`: the tenant's figures over
/// `[from, to)` in total and per channel.
pub async fn get(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let range =
        Range::resolve(p.from.as_deref(), p.to.as_deref(), Utc::now()).map_err(|e| match e {
            RangeError::InvalidTime { .. } => ApiError::bad_request("invalid_time", e.to_string()),
            RangeError::Empty => unprocessable("invalid_range", e.to_string()),
            RangeError::TooLong => unprocessable("range_too_long", e.to_string()),
        })?;
    let channel = match p.channel.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<ChannelId>().map_err(|_| {
            ApiError::bad_request("invalid_channel", "`channel` must be a channel id (a UUID)")
        })?),
    };
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let report = analytics::report(&mut tx, range, channel, &state.services.prices)
        .await
        .map_err(|e| match e {
            AnalyticsError::UnknownChannel(c) => ApiError::not_found(format!("no channel `{c}`")),
            AnalyticsError::Db(e) => e.into(),
        })?;
    tx.commit().await?;
    Ok(Json(json!({
        "tenant": {"id": tenant.id, "slug": tenant.slug},
        "currency": "USD",
        "range": report.range,
        "channel": report.channel,
        "totals": report.totals,
        "by_channel": report.by_channel,
    })))
}
