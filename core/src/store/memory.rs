//! What the agent remembers of a conversation: its recent messages, a rolling summary of the
//! older ones, and the contact it talks to. Everything is addressed through the conversation
//! id of the turn, never through ids a model could supply.

use serde::Serialize;

use crate::db::{DbError, TenantTx};
use crate::ids::{ConversationId, EventId};
use crate::model::Role;

/// The conversation's contact and summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConversationMemory {
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub summary: Option<String>,
    /// The summary covers messages up to this sequence number.
    pub summary_through_seq: Option<i64>,
    /// Messages after the summary, not counting the ones being answered.
    pub unsummarised: i64,
}

/// A message of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryMessage {
    pub seq: i64,
    pub role: Role,
    pub text: String,
}

type MemoryRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);

pub async fn memory(
    tx: &mut TenantTx,
    conversation: ConversationId,
    answering: &[EventId],
) -> Result<ConversationMemory, DbError> {
    let ids: Vec<uuid::Uuid> = answering.iter().map(|e| e.0).collect();
    let row: Option<MemoryRow> = sqlx::query_as(
        "SELECT k.display_name, k.email, c.summary, c.summary_through_seq,
                    (SELECT count(*) FROM messages m
                      WHERE m.conversation_id = c.id AND m.role <> 'system'
                        AND m.seq > COALESCE(c.summary_through_seq, 0)
                        AND (m.inbound_event_id IS NULL OR NOT m.inbound_event_id = ANY($2)))
               FROM conversations c JOIN contacts k ON k.id = c.contact_id
              WHERE c.id = $1",
    )
    .bind(conversation.0)
    .bind(&ids)
    .fetch_optional(tx.conn())
    .await?;
    let r = row.ok_or_else(|| DbError::NotFound(format!("conversation {conversation}")))?;
    Ok(ConversationMemory {
        contact_name: r.0,
        contact_email: r.1,
        summary: r.2,
        summary_through_seq: r.3,
        unsummarised: r.4,
    })
}

/// The newest `limit` messages after the summary, oldest first, leaving out the messages of
/// the events being answered (they are the turn's new input).
pub async fn recent(
    tx: &mut TenantTx,
    conversation: ConversationId,
    answering: &[EventId],
    after_seq: i64,
    limit: i64,
) -> Result<Vec<HistoryMessage>, DbError> {
    let ids: Vec<uuid::Uuid> = answering.iter().map(|e| e.0).collect();
    let mut rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, role, text FROM messages
          WHERE conversation_id = $1 AND role <> 'system' AND seq > $3
            AND (inbound_event_id IS NULL OR NOT inbound_event_id = ANY($2))
          ORDER BY seq DESC LIMIT $4",
    )
    .bind(conversation.0)
    .bind(&ids)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|(seq, role, text)| HistoryMessage {
            seq,
            role: Role::from_db(&role),
            text,
        })
        .collect())
}

/// Messages with `after < seq <= through`, oldest first (what a new summary must fold in).
pub async fn between(
    tx: &mut TenantTx,
    conversation: ConversationId,
    after: i64,
    through: i64,
) -> Result<Vec<HistoryMessage>, DbError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, role, text FROM messages
          WHERE conversation_id = $1 AND role <> 'system' AND seq > $2 AND seq <= $3
          ORDER BY seq",
    )
    .bind(conversation.0)
    .bind(after)
    .bind(through)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, role, text)| HistoryMessage {
            seq,
            role: Role::from_db(&role),
            text,
        })
        .collect())
}

/// Stores a new summary, unless another one already covers more (summaries only move forward).
pub async fn set_summary(
    tx: &mut TenantTx,
    conversation: ConversationId,
    summary: &str,
    through_seq: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE conversations SET summary = $2, summary_through_seq = $3
          WHERE id = $1 AND COALESCE(summary_through_seq, 0) < $3",
    )
    .bind(conversation.0)
    .bind(summary)
    .bind(through_seq)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the name and/or email of the contact of `conversation` — the only contact a turn may
/// touch. Returns the contact's fields after the change.
pub async fn set_contact_fields(
    tx: &mut TenantTx,
    conversation: ConversationId,
    name: Option<&str>,
    email: Option<&str>,
) -> Result<(Option<String>, Option<String>), DbError> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "UPDATE contacts k SET display_name = COALESCE($2, k.display_name),
                               email = COALESCE($3, k.email)
           FROM conversations c
          WHERE c.id = $1 AND k.id = c.contact_id
         RETURNING k.display_name, k.email",
    )
    .bind(conversation.0)
    .bind(name)
    .bind(email)
    .fetch_optional(tx.conn())
    .await?;
    row.ok_or_else(|| DbError::NotFound(format!("conversation {conversation}")))
}
