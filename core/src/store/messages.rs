//! Reading conversation history.

use sqlx::Row;

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, ConversationId, MessageId};
use crate::model::{MessageChoice, MessageView, Role};
use crate::store::handoff::{ContactHandoff, HandoffState};

/// A message just committed to a conversation's transcript, with what the web chat's event
/// streams need to show it without reading the transcript again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The place (`ordinal`, what [`MessageView::seq`] shows) of the conversation's previous
    /// message a customer sees (0: none). Every message of a conversation is written under its
    /// row lock, so none with a smaller place can commit later: a stream that has shown this
    /// one can show `message` next, and any other stream must read.
    pub after: i64,
    pub message: MessageView,
    /// Who owns the conversation, and whether a customer message waits for its answer, as of
    /// the commit.
    pub handoff: ContactHandoff,
}

impl Appended {
    /// The placement `ingest_messages` and `commit_bot_reply` return for a new message
    /// (`o_seq`, `o_after`, `o_created_at`), with what the caller knows of the message; `None`
    /// when the function placed nothing (a redelivery).
    pub(crate) fn from_row(
        r: &sqlx::postgres::PgRow,
        id: MessageId,
        role: Role,
        text: &str,
        choices: Vec<MessageChoice>,
        handoff: ContactHandoff,
    ) -> Result<Option<Appended>, DbError> {
        let seq: Option<i64> = r.try_get("o_seq")?;
        let after: Option<i64> = r.try_get("o_after")?;
        let created_at: Option<chrono::DateTime<chrono::Utc>> = r.try_get("o_created_at")?;
        let (Some(seq), Some(after), Some(created_at)) = (seq, after, created_at) else {
            return Ok(None);
        };
        Ok(Some(Appended {
            after,
            message: MessageView {
                id,
                seq,
                role,
                text: text.to_owned(),
                created_at,
                choices,
            },
            handoff,
        }))
    }
}

/// What the customer of `external_id` on `channel` sees (the web chat's history and event
/// stream): the messages of their conversation after place `after`, oldest first, at most
/// `limit`, and who owns the conversation. One round trip (the `contact_messages` function,
/// which acts for `tenant` in a transaction of its own). An unknown contact simply has no
/// messages and no owner.
pub async fn for_contact(
    db: &crate::Db,
    tenant: crate::TenantId,
    channel: ChannelId,
    external_id: &str,
    after: i64,
    limit: i64,
) -> Result<(Vec<MessageView>, Option<ContactHandoff>), DbError> {
    let rows = sqlx::query("SELECT * FROM contact_messages($1, $2, $3, $4, $5)")
        .bind(tenant.0)
        .bind(channel.0)
        .bind(external_id)
        .bind(after)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    let Some(first) = rows.first() else {
        return Ok((Vec::new(), None));
    };
    let state: String = first.try_get("handoff_state")?;
    let handoff = ContactHandoff {
        state: HandoffState::parse(&state)?,
        claimed_by: first.try_get("claimed_by")?,
        pending: first.try_get("pending")?,
    };
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(id) = r.try_get::<Option<uuid::Uuid>, _>("id")? else {
            continue; // No message after `after`: the one row carries the owner only.
        };
        let role: String = r.try_get("role")?;
        let choices: Option<serde_json::Value> = r.try_get("choices")?;
        list.push(MessageView {
            id: MessageId(id),
            seq: r.try_get("seq")?,
            role: Role::from_db(&role),
            text: r.try_get("text")?,
            created_at: r.try_get("created_at")?,
            choices: MessageChoice::from_metadata(choices.as_ref()),
        });
    }
    Ok((list, Some(handoff)))
}

/// The agent's reply to the inbound message with `provider_message_id` on `channel`, once the
/// turn that answered it has committed (synchronous channels such as voice wait for it).
pub async fn answer_to(
    tx: &mut TenantTx,
    channel: ChannelId,
    provider_message_id: &str,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT m.text FROM inbound_events e
           JOIN messages m ON m.turn_id = e.turn_id AND m.role = 'agent'
          WHERE e.channel_id = $1 AND e.provider_message_id = $2",
    )
    .bind(channel.0)
    .bind(provider_message_id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The newest `limit` messages of a conversation without system notes, oldest first, as
/// `(role, text)`: what a notification tells the sales team about the conversation so far.
pub async fn recent(
    tx: &mut TenantTx,
    conversation: ConversationId,
    limit: i64,
) -> Result<Vec<(String, String)>, DbError> {
    let mut rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT role, text FROM messages WHERE conversation_id = $1 AND role <> 'system'
          ORDER BY seq DESC LIMIT $2",
    )
    .bind(conversation.0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.reverse();
    Ok(rows)
}

/// The text of the customer's newest message in a conversation (to answer in their language).
pub async fn last_customer_text(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT text FROM messages WHERE conversation_id = $1 AND role = 'customer'
          ORDER BY seq DESC LIMIT 1",
    )
    .bind(conversation.0)
    .fetch_optional(tx.conn())
    .await?)
}
