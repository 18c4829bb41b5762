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
}

pub async fn load(tx: &mut TenantTx, id: OutboxId) -> Result<Option<OutboxItem>, DbError> {
    let row = sqlx::query!(
        r#"SELECT o.id, o.channel_id, ch.kind, o.conversation_id, o.payload, o.attempts, o.status
             FROM outbox o JOIN channels ch ON ch.id = o.channel_id
            WHERE o.id = $1"#,
        id.0
    )
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(OutboxItem {
            id: OutboxId(r.id),
            channel_id: ChannelId(r.channel_id),
            channel_kind: r.kind.parse().map_err(DbError::Invalid)?,
            conversation_id: ConversationId(r.conversation_id),
            payload: r.payload,
            attempts: r.attempts,
            status: r.status,
        })
    })
    .transpose()
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
