//! The outbox as the dispatcher sees it: load a claimed row, record the outcome.

use chrono::{DateTime, Utc};

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, ConversationId, OutboxId};
use crate::model::ChannelKind;

/// A claimed outbox row with what the channel adapter needs to deliver it.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    pub id: OutboxId,
    pub channel_id: ChannelId,
    pub channel_kind: ChannelKind,
    pub conversation_id: ConversationId,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub status: String,
    /// The channel's public settings and sealed credentials.
    pub channel_config: serde_json::Map<String, serde_json::Value>,
    pub channel_secrets_enc: Option<Vec<u8>>,
    /// When the customer last wrote, and whether they opted out.
    pub contact_last_inbound_at: Option<DateTime<Utc>>,
    pub contact_opted_out: bool,
    /// The payload of the conversation's latest inbound event (email threading).
    pub last_inbound_payload: Option<serde_json::Value>,
}

pub async fn load(tx: &mut TenantTx, id: OutboxId) -> Result<Option<OutboxItem>, DbError> {
    use sqlx::Row;
    let row = sqlx::query(
        r#"SELECT o.id, o.channel_id, ch.kind, o.conversation_id, o.payload, o.attempts, o.status,
                  ch.config, ch.secrets_enc, k.last_inbound_at, k.opted_out_at IS NOT NULL AS opted_out,
                  (SELECT e.payload FROM inbound_events e WHERE e.conversation_id = o.conversation_id
                    ORDER BY e.received_at DESC, e.id DESC LIMIT 1) AS last_inbound_payload
             FROM outbox o
             JOIN channels ch ON ch.id = o.channel_id
             JOIN conversations c ON c.id = o.conversation_id
             JOIN contacts k ON k.id = c.contact_id
            WHERE o.id = $1"#,
    )
    .bind(id.0)
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        let kind: String = r.try_get("kind")?;
        let config: serde_json::Value = r.try_get("config")?;
        Ok(OutboxItem {
            id: OutboxId(r.try_get("id")?),
            channel_id: ChannelId(r.try_get("channel_id")?),
            channel_kind: kind.parse().map_err(DbError::Invalid)?,
            conversation_id: ConversationId(r.try_get("conversation_id")?),
            payload: r.try_get("payload")?,
            attempts: r.try_get("attempts")?,
            status: r.try_get("status")?,
            channel_config: match config {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            channel_secrets_enc: r.try_get("secrets_enc")?,
            contact_last_inbound_at: r.try_get("last_inbound_at")?,
            contact_opted_out: r.try_get("opted_out")?,
            last_inbound_payload: r.try_get("last_inbound_payload")?,
        })
    })
    .transpose()
}

/// Puts a claimed row back without counting the attempt (a local rate limit said "not yet").
pub async fn mark_deferred(
    tx: &mut TenantTx,
    id: OutboxId,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE outbox SET status = 'pending', locked_until = NULL, next_attempt_at = $2,
                attempts = GREATEST(attempts - 1, 0)
          WHERE id = $1",
    )
    .bind(id.0)
    .bind(next_attempt_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Applies a provider's delivery report to the row it sent as `provider_ref`. States only move
/// forward (queued → sent → delivered → read), except `failed`, which always wins and is
/// recorded as the row's error. Returns the conversation of the updated row, `None` when no row
/// was updated.
pub async fn apply_delivery_status(
    tx: &mut TenantTx,
    channel: ChannelId,
    provider_ref: &str,
    state: &str,
    error: Option<&str>,
) -> Result<Option<ConversationId>, DbError> {
    let done: Option<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE outbox
            SET delivery_status = $3, delivery_updated_at = now(),
                delivery_error = COALESCE($4, delivery_error),
                last_error = CASE WHEN $3 = 'failed' THEN COALESCE($4, 'the provider reported a failed delivery') ELSE last_error END
          WHERE channel_id = $1 AND provider_ref = $2
            AND (delivery_status IS NULL OR $3 = 'failed'
                 OR array_position(ARRAY['queued','sent','delivered','read'], delivery_status)
                    < array_position(ARRAY['queued','sent','delivered','read'], $3::text))
          RETURNING conversation_id",
    )
    .bind(channel.0)
    .bind(provider_ref)
    .bind(state)
    .bind(error)
    .fetch_optional(tx.conn())
    .await?;
    Ok(done.map(ConversationId))
}

pub async fn mark_sent(
    tx: &mut TenantTx,
    id: OutboxId,
    provider_ref: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query!(
        r#"UPDATE outbox SET status = 'sent', sent_at = now(), locked_until = NULL, provider_ref = $2, last_error = NULL
            WHERE id = $1"#,
        id.0,
        provider_ref
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Schedules another attempt at `next_attempt_at`.
pub async fn mark_retry(
    tx: &mut TenantTx,
    id: OutboxId,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query!(
        r#"UPDATE outbox SET status = 'pending', locked_until = NULL, last_error = $2, next_attempt_at = $3
            WHERE id = $1"#,
        id.0,
        error,
        next_attempt_at
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Gives up on a row for good; the error stays visible.
pub async fn mark_failed(tx: &mut TenantTx, id: OutboxId, error: &str) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE outbox SET status = 'failed', locked_until = NULL, last_error = $2 WHERE id = $1",
        id.0,
        error
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
