//! Reading conversation history.

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, MessageId};
use crate::model::{MessageView, Role};

/// Messages of the conversation of `external_id` on `channel` with `seq > after`, oldest first.
/// An unknown contact simply has no messages.
pub async fn for_contact(
    tx: &mut TenantTx,
    channel: ChannelId,
    external_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<MessageView>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT m.id, m.seq, m.role, m.text, m.created_at
             FROM messages m
             JOIN conversations c ON c.id = m.conversation_id
             JOIN contacts k ON k.id = c.contact_id
            WHERE k.channel_id = $1 AND k.external_id = $2 AND m.seq > $3 AND m.role <> 'system'
            ORDER BY m.seq
            LIMIT $4"#,
        channel.0,
        external_id,
        after,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MessageView {
            id: MessageId(r.id),
            seq: r.seq,
            role: Role::from_db(&r.role),
            text: r.text,
            created_at: r.created_at,
        })
        .collect())
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
