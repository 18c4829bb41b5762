//! Effects: side effects that are not replies to the customer — notifications to the sales
//! team (email, Telegram), calendar invites, CRM webhooks — kept in their own outbox.
//!
//! An effect is enqueued in the *same transaction* as the change that causes it (an escalation,
//! a booking, a lead update), under an idempotency key unique per tenant: a redone turn, a
//! repeated API call or a crashed worker can never enqueue it twice ([`enqueue`] returns `None`
//! when the key exists). The effects worker (`switchboard_actors::effects`) claims due rows
//! through `platform_claim_effects`, performs them, and records every attempt in
//! `effect_attempts` — the delivery log admins read.
//!
//! Payloads by kind (the worker's contract):
//! - `email`: `{"to": ["a@b.example"], "subject", "text", "ics": {"method": "REQUEST"|"CANCEL",
//!   "content": "BEGIN:VCALENDAR…"}?, "channel_id"?}` — sent through the SMTP settings of the
//!   named email channel, else the tenant's notification channel, else its first email channel.
//! - `telegram`: `{"chat_id", "text", "channel_id"?}` — sent with the bot of the named Telegram
//!   channel, else the tenant's notification channel, else its first Telegram channel.
//! - `webhook`: `{"url", "event", "body": {…}}` — POSTed as JSON, signed with the tenant's CRM
//!   secret (HMAC-SHA256), with the idempotency key in a header so the receiver can de-duplicate.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::ConversationId;

/// How an effect leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    Email,
    Telegram,
    Webhook,
}

impl EffectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EffectKind::Email => "email",
            EffectKind::Telegram => "telegram",
            EffectKind::Webhook => "webhook",
        }
    }
}

impl std::str::FromStr for EffectKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(EffectKind::Email),
            "telegram" => Ok(EffectKind::Telegram),
            "webhook" => Ok(EffectKind::Webhook),
            other => Err(format!("unknown effect kind `{other}`")),
        }
    }
}

/// An effect to enqueue.
#[derive(Clone, Debug)]
pub struct NewEffect {
    pub conversation: Option<ConversationId>,
    pub kind: EffectKind,
    /// Why it exists (`escalation`, `booking_invite`, `crm_lead`, …).
    pub purpose: String,
    /// Unique per tenant; the same key never enqueues twice.
    pub idempotency_key: String,
    pub payload: Value,
    /// Attempts before the effect is marked failed (default 8).
    pub max_attempts: Option<i32>,
}

/// Enqueues `effect` unless its idempotency key exists. Returns the new id, or `None` when the
/// effect was already enqueued (by an earlier run of the same request).
pub async fn enqueue(tx: &mut TenantTx, effect: &NewEffect) -> Result<Option<Uuid>, DbError> {
    let tenant = tx.tenant_id();
    let id = Uuid::now_v7();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        r#"INSERT INTO effects (id, tenant_id, conversation_id, kind, purpose, idempotency_key,
                                payload, max_attempts)
           VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, 8))
           ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
           RETURNING id"#,
    )
    .bind(id)
    .bind(tenant.0)
    .bind(effect.conversation.map(|c| c.0))
    .bind(effect.kind.as_str())
    .bind(&effect.purpose)
    .bind(&effect.idempotency_key)
    .bind(&effect.payload)
    .bind(effect.max_attempts)
    .fetch_optional(tx.conn())
    .await?;
    Ok(inserted)
}

/// An effect as stored.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Effect {
    pub id: Uuid,
    pub conversation_id: Option<ConversationId>,
    pub kind: EffectKind,
    pub purpose: String,
    pub idempotency_key: String,
    pub payload: Value,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, conversation_id, kind, purpose, idempotency_key, payload, status, \
                       attempts, max_attempts, last_error, created_at, done_at";

fn effect_from(r: &sqlx::postgres::PgRow) -> Result<Effect, DbError> {
    let kind: String = r.try_get("kind")?;
    Ok(Effect {
        id: r.try_get("id")?,
        conversation_id: r
            .try_get::<Option<Uuid>, _>("conversation_id")?
            .map(ConversationId),
        kind: kind.parse().map_err(DbError::Invalid)?,
        purpose: r.try_get("purpose")?,
        idempotency_key: r.try_get("idempotency_key")?,
        payload: r.try_get("payload")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        done_at: r.try_get("done_at")?,
    })
}

pub async fn load(tx: &mut TenantTx, id: Uuid) -> Result<Option<Effect>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM effects WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(effect_from).transpose()
}

/// Which effects to list.
#[derive(Clone, Debug, Default)]
pub struct EffectFilter {
    /// Only this purpose (`crm_lead`, `escalation`, …).
    pub purpose: Option<String>,
    pub conversation: Option<ConversationId>,
    pub status: Option<String>,
    pub limit: i64,
}

/// Effects, newest first.
pub async fn list(tx: &mut TenantTx, filter: &EffectFilter) -> Result<Vec<Effect>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM effects
          WHERE ($1::text IS NULL OR purpose = $1)
            AND ($2::uuid IS NULL OR conversation_id = $2)
            AND ($3::text IS NULL OR status = $3)
          ORDER BY created_at DESC, id DESC
          LIMIT $4"
    ))
    .bind(filter.purpose.as_deref())
    .bind(filter.conversation.map(|c| c.0))
    .bind(filter.status.as_deref())
    .bind(filter.limit.clamp(1, 1000))
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(effect_from).collect()
}

/// One delivery attempt, as the log shows it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub attempt: i32,
    pub outcome: String,
    pub status_code: Option<i32>,
    pub detail: String,
    pub duration_ms: i32,
    pub created_at: DateTime<Utc>,
}

/// What one attempt achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Transient,
    Permanent,
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Transient => "transient",
            Outcome::Permanent => "permanent",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The attempts of an effect, oldest first.
pub async fn attempts(tx: &mut TenantTx, effect: Uuid) -> Result<Vec<Attempt>, DbError> {
    let rows = sqlx::query(
        "SELECT attempt, outcome, status_code, detail, duration_ms, created_at
           FROM effect_attempts WHERE effect_id = $1 ORDER BY attempt, created_at",
    )
    .bind(effect)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                attempt: r.try_get("attempt")?,
                outcome: r.try_get("outcome")?,
                status_code: r.try_get("status_code")?,
                detail: r.try_get("detail")?,
                duration_ms: r.try_get("duration_ms")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// The result of one attempt, to record.
#[derive(Clone, Debug)]
pub struct AttemptRecord<'a> {
    pub attempt: i32,
    pub outcome: Outcome,
    pub status_code: Option<i32>,
    pub detail: &'a str,
    pub duration_ms: i32,
    /// For a transient failure: when to try again (`None`: the effect is marked failed).
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records an attempt and moves the effect on: done, retried later, failed or skipped.
pub async fn record(tx: &mut TenantTx, effect: Uuid, a: &AttemptRecord<'_>) -> Result<(), DbError> {
    let tenant = tx.tenant_id();
    let detail: String = a.detail.chars().take(2000).collect();
    sqlx::query(
        "INSERT INTO effect_attempts (id, tenant_id, effect_id, attempt, outcome, status_code, detail, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.0)
    .bind(effect)
    .bind(a.attempt)
    .bind(a.outcome.as_str())
    .bind(a.status_code)
    .bind(&detail)
    .bind(a.duration_ms)
    .execute(tx.conn())
    .await?;
    let (status, error) = match (a.outcome, a.retry_at) {
        (Outcome::Ok, _) => ("done", None),
        (Outcome::Skipped, _) => ("skipped", Some(detail.as_str())),
        (Outcome::Transient, Some(_)) => ("pending", Some(detail.as_str())),
        (Outcome::Transient | Outcome::Permanent, _) => ("failed", Some(detail.as_str())),
    };
    sqlx::query(
        "UPDATE effects
            SET status = $2, last_error = $3, locked_until = NULL,
                next_attempt_at = COALESCE($4, next_attempt_at),
                done_at = CASE WHEN $2 IN ('done', 'failed', 'skipped') THEN now() END
          WHERE id = $1",
    )
    .bind(effect)
    .bind(status)
    .bind(error)
    .bind(a.retry_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Puts a failed effect back in the queue with a fresh attempt budget (admin "retry"). The
/// attempt count goes on, so the delivery log keeps numbering attempts in order.
pub async fn retry(tx: &mut TenantTx, effect: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE effects SET status = 'pending', next_attempt_at = now(), done_at = NULL,
                max_attempts = LEAST(attempts + 8, 50)
          WHERE id = $1 AND status IN ('failed', 'skipped') AND attempts < 50",
    )
    .bind(effect)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}
