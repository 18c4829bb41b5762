//! Token usage of model calls and the admin alerts they can raise.
//!
//! Every model call is recorded: a turn's calls in the turn's own commit (with its `turn_id`),
//! calls of turns that were cancelled or superseded and of previews on their own (tokens were
//! spent all the same). The monthly budget compares the sum over the current UTC calendar month.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::{ConversationId, TurnId};

/// What a model call was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Answering a customer in a turn.
    Reply,
    /// Refreshing a long conversation's rolling summary.
    Summary,
    /// An admin's dry run in the playground.
    Preview,
}

impl Purpose {
    /// As stored in `llm_usage.purpose`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Reply => "reply",
            Purpose::Summary => "summary",
            Purpose::Preview => "preview",
        }
    }
}

/// One model call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageRecord {
    pub purpose: Purpose,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Stores `records` for the current tenant.
pub async fn record(
    tx: &mut TenantTx,
    conversation: Option<ConversationId>,
    turn: Option<TurnId>,
    records: &[UsageRecord],
) -> Result<(), DbError> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = records.iter().map(|_| Uuid::now_v7()).collect();
    let purposes: Vec<&str> = records.iter().map(|r| r.purpose.as_str()).collect();
    let models: Vec<&str> = records.iter().map(|r| r.model.as_str()).collect();
    let prompt: Vec<i32> = records
        .iter()
        .map(|r| r.prompt_tokens.min(i32::MAX as u32) as i32)
        .collect();
    let completion: Vec<i32> = records
        .iter()
        .map(|r| r.completion_tokens.min(i32::MAX as u32) as i32)
        .collect();
    sqlx::query(
        "INSERT INTO llm_usage (id, tenant_id, conversation_id, turn_id, purpose, model,
                                prompt_tokens, completion_tokens)
         SELECT u.id, $1, $2, $3, u.purpose, u.model, u.p, u.c
           FROM unnest($4::uuid[], $5::text[], $6::text[], $7::int[], $8::int[])
                AS u(id, purpose, model, p, c)",
    )
    .bind(tx.tenant_id().0)
    .bind(conversation.map(|c| c.0))
    .bind(turn.map(|t| t.0))
    .bind(&ids)
    .bind(&purposes)
    .bind(&models)
    .bind(&prompt)
    .bind(&completion)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Tokens used by the current tenant in the current UTC calendar month.
pub async fn month_total(tx: &mut TenantTx) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(sum(prompt_tokens + completion_tokens), 0)::bigint FROM llm_usage
          WHERE tenant_id = $1
            AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    )
    .bind(tx.tenant_id().0)
    .fetch_one(tx.conn())
    .await?)
}

/// Token totals of a scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

const TOTALS: &str = "count(*)::bigint AS calls,
    COALESCE(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
    COALESCE(sum(completion_tokens), 0)::bigint AS completion_tokens,
    COALESCE(sum(prompt_tokens + completion_tokens), 0)::bigint AS total_tokens";

/// Usage of one conversation (all time).
pub async fn conversation_totals(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Totals, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOTALS} FROM llm_usage WHERE conversation_id = $1"
    ))
    .bind(conversation.0)
    .fetch_one(tx.conn())
    .await?)
}

/// Usage of one turn.
pub async fn turn_totals(tx: &mut TenantTx, turn: TurnId) -> Result<Totals, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOTALS} FROM llm_usage WHERE turn_id = $1"
    ))
    .bind(turn.0)
    .fetch_one(tx.conn())
    .await?)
}

/// The tenant's usage this month, by purpose and by conversation (top 50).
pub async fn month_report(tx: &mut TenantTx) -> Result<Value, DbError> {
    let since = "created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'";
    let total: Totals = sqlx::query_as(&format!("SELECT {TOTALS} FROM llm_usage WHERE {since}"))
        .fetch_one(tx.conn())
        .await?;
    let by_purpose: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT purpose, count(*)::bigint, COALESCE(sum(prompt_tokens), 0)::bigint,
                COALESCE(sum(completion_tokens), 0)::bigint
           FROM llm_usage WHERE {since} GROUP BY purpose ORDER BY purpose"
    ))
    .fetch_all(tx.conn())
    .await?;
    let by_conversation: Vec<(Uuid, i64, i64)> = sqlx::query_as(&format!(
        "SELECT conversation_id, count(*)::bigint,
                COALESCE(sum(prompt_tokens + completion_tokens), 0)::bigint
           FROM llm_usage WHERE {since} AND conversation_id IS NOT NULL
          GROUP BY conversation_id ORDER BY 3 DESC LIMIT 50"
    ))
    .fetch_all(tx.conn())
    .await?;
    Ok(serde_json::json!({
        "total": total,
        "by_purpose": by_purpose.into_iter().map(|(p, n, pt, ct)| serde_json::json!({
            "purpose": p, "calls": n, "prompt_tokens": pt, "completion_tokens": ct,
            "total_tokens": pt + ct,
        })).collect::<Vec<_>>(),
        "by_conversation": by_conversation.into_iter().map(|(c, n, t)| serde_json::json!({
            "conversation_id": c, "calls": n, "total_tokens": t,
        })).collect::<Vec<_>>(),
    }))
}

/// An alert as admins see it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub id: Uuid,
    pub kind: String,
    pub period: String,
    pub message: String,
    pub details: Value,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// Raises an alert once per `(kind, period)`; true when this call raised it.
pub async fn raise_alert(
    tx: &mut TenantTx,
    kind: &str,
    period: &str,
    message: &str,
    details: Value,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO admin_alerts (id, tenant_id, kind, period, message, details)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, kind, period) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(tx.tenant_id().0)
    .bind(kind)
    .bind(period)
    .bind(message)
    .bind(details)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant's alerts, newest first.
pub async fn alerts(tx: &mut TenantTx, limit: i64) -> Result<Vec<Alert>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, kind, period, message, details, created_at, acknowledged_at
           FROM admin_alerts ORDER BY created_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}
