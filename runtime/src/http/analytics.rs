//! Admin API of analytics: `GET /api/v1/analytics?tenant=…[&from=…][&to=…][&channel=ID]`, and
//! the same figures over time, `GET /api/v1/analytics/series?…&bucket=day|hour`.
//!
//! The figures and their definitions live in `switchboard_core::store::analytics`; this handler
//! reads the parameters, resolves the tenant and answers JSON. Parameters are read as text so
//! that a bad value is a JSON error naming it: a malformed time or channel id is a 400, an
//! empty, reversed or too long range a 422, a channel the tenant does not have a 404.

use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use switchboard_core::store::analytics::{
    self, AnalyticsError, Bucket, Range, RangeError, Report, Series, SeriesError,
};
use switchboard_core::{ChannelId, TenantId};
use utoipa::{IntoParams, ToSchema};

use super::agent::unprocessable;
use super::error::ApiError;
use super::AppState;
use crate::auth::Scope;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// RFC 3339 time or `YYYY-MM-DD` (midnight UTC); default: 30 days before `to`.
    from: Option<String>,
    /// Exclusive; same forms; default: now.
    to: Option<String>,
    /// Only this channel of the tenant.
    channel: Option<String>,
}

/// A tenant's figures over a range, in total and per channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    pub tenant: TenantSlug,
    /// The currency of every cost figure (`USD`).
    pub currency: &'static str,
    #[serde(flatten)]
    pub report: Report,
}

/// A tenant's id and slug.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSlug {
    pub id: TenantId,
    pub slug: String,
}

/// `GET /api/v1/analytics?tenant=…[&from=…][&to=…][&channel=ID]`: the tenant's figures over
/// `[from, to)` in total and per channel.
#[utoipa::path(
    get,
    path = "/api/v1/analytics",
    tag = "analytics",
    params(Params),
    responses(
        (status = 200, description = "The figures over `[from, to)`, in total and per channel", body = Analytics),
        (status = 400, description = "`invalid_time` or `invalid_channel`: a parameter is malformed"),
        (status = 404, description = "The tenant has no such channel"),
        (status = 422, description = "`invalid_range` or `range_too_long`: the range is empty, reversed or too long"),
    )
)]
pub async fn get(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<Params>,
) -> Result<Json<Analytics>, ApiError> {
    let (range, channel) = range_and_channel(&p)?;
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let report = analytics::report(&mut tx, range, channel, &state.services.prices)
        .await
        .map_err(|e| match e {
            AnalyticsError::UnknownChannel(c) => ApiError::not_found(format!("no channel `{c}`")),
            AnalyticsError::Db(e) => e.into(),
        })?;
    tx.commit().await?;
    Ok(Json(Analytics {
        tenant: TenantSlug {
            id: tenant.id,
            slug: tenant.slug,
        },
        currency: "USD",
        report,
    }))
}

/// The range and the channel filter of both analytics routes.
fn range_and_channel(p: &Params) -> Result<(Range, Option<ChannelId>), ApiError> {
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
    Ok((range, channel))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// RFC 3339 time or `YYYY-MM-DD` (midnight UTC); default: 30 days before `to`. The buckets
    /// start here.
    from: Option<String>,
    /// Exclusive; same forms; default: now. The last bucket ends here.
    to: Option<String>,
    /// `day` (default) or `hour`; at most 400 buckets.
    bucket: Option<String>,
    /// Only this channel of the tenant.
    channel: Option<String>,
}

/// A tenant's figures over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsSeries {
    /// The currency of `cost` (`USD`).
    pub currency: &'static str,
    #[serde(flatten)]
    pub series: Series,
}

/// `GET /api/v1/analytics/series?from=…&to=…&bucket=day|hour[&channel=ID]`: the figures of
/// the analytics report per bucket, for charts.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/series",
    summary = "The analytics figures per day or hour, for charts.",
    tag = "analytics",
    params(SeriesParams),
    responses(
        (status = 200, description = "One point per bucket of `[from, to)`, oldest first, empty buckets included; each point's figures are those of the report over that bucket", body = AnalyticsSeries),
        (status = 400, description = "`invalid_time`, `invalid_channel` or `invalid_bucket`: a parameter is malformed; `too_many_buckets`: more than 400 buckets"),
        (status = 404, description = "The tenant has no such channel"),
        (status = 422, description = "`invalid_range` or `range_too_long`: the range is empty, reversed or too long"),
    )
)]
pub async fn series(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<SeriesParams>,
) -> Result<Json<AnalyticsSeries>, ApiError> {
    let bucket = match p.bucket.as_deref().map(str::trim) {
        None | Some("") => Bucket::Day,
        Some(b) => Bucket::parse(b)
            .ok_or_else(|| ApiError::bad_request("invalid_bucket", "bucket is `day` or `hour`"))?,
    };
    let (range, channel) = range_and_channel(&Params {
        from: p.from,
        to: p.to,
        channel: p.channel,
    })?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let series = analytics::series(&mut tx, range, bucket, channel, &state.services.prices)
        .await
        .map_err(|e| match e {
            SeriesError::TooManyBuckets(e) => {
                ApiError::bad_request("too_many_buckets", e.to_string())
            }
            SeriesError::Analytics(AnalyticsError::UnknownChannel(c)) => {
                ApiError::not_found(format!("no channel `{c}`"))
            }
            SeriesError::Analytics(AnalyticsError::Db(e)) => e.into(),
        })?;
    tx.commit().await?;
    Ok(Json(AnalyticsSeries {
        currency: "USD",
        series,
    }))
}
