//! Recording inbound messages: the first durable step of the pipeline.
//!
//! Contact, conversation, inbound event and the customer's message are written in one
//! transaction. Redeliveries are recognised by the unique key on (channel, provider message id)
//! with `ON CONFLICT DO NOTHING`, never by a lookup first, so concurrent duplicates cannot race.

use crate::db::{DbError, TenantTx};
use crate::ids::{ContactId, ConversationId, EventId, MessageId};
use crate::model::{InboundMessage, Recorded};

/// Stores `msg` (unless it was stored before) and returns where it landed. The caller commits.
pub async fn record(tx: &mut TenantTx, msg: &InboundMessage) -> Result<Recorded, DbError> {
    let tenant = tx.tenant_id();
    let contact = sqlx::query_scalar!(
        r#"INSERT INTO contacts (id, tenant_id, channel_id, external_id, display_name)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (channel_id, external_id)
           DO UPDATE SET display_name = COALESCE(EXCLUDED.display_name, contacts.display_name)
           RETURNING id"#,
        ContactId::new().0,
        tenant.0,
        msg.channel_id.0,
        msg.contact_external_id,
        msg.contact_display_name
    )
    .fetch_one(tx.conn())
    .await?;

    let conversation = sqlx::query_scalar!(
        r#"INSERT INTO conversations (id, tenant_id, channel_id, contact_id)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (channel_id, contact_id) DO UPDATE SET last_message_at = now()
           RETURNING id"#,
        ConversationId::new().0,
        tenant.0,
        msg.channel_id.0,
        contact
    )
    .fetch_one(tx.conn())
    .await?;

    let event = EventId::new();
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO inbound_events (id, tenant_id, channel_id, provider_message_id, conversation_id, payload)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (channel_id, provider_message_id) DO NOTHING
           RETURNING id"#,
        event.0,
        tenant.0,
        msg.channel_id.0,
        msg.provider_message_id,
        conversation,
        msg.payload
    )
    .fetch_optional(tx.conn())
    .await?;

    if inserted.is_none() {
        // A redelivery: report what the first delivery created.
        let prior = sqlx::query!(
            r#"SELECT e.id, e.conversation_id, m.id AS "message_id?"
                 FROM inbound_events e LEFT JOIN messages m ON m.inbound_event_id = e.id
                WHERE e.channel_id = $1 AND e.provider_message_id = $2"#,
            msg.channel_id.0,
            msg.provider_message_id
        )
        .fetch_one(tx.conn())
        .await?;
        return Ok(Recorded {
            tenant_id: tenant,
            event_id: EventId(prior.id),
            conversation_id: ConversationId(prior.conversation_id),
            message_id: MessageId(prior.message_id.unwrap_or_default()),
            duplicate: true,
        });
    }

    let message = MessageId::new();
    sqlx::query!(
        r#"INSERT INTO messages (id, tenant_id, conversation_id, role, text, inbound_event_id)
           VALUES ($1, $2, $3, 'customer', $4, $5)"#,
        message.0,
        tenant.0,
        conversation,
        msg.text,
        event.0
    )
    .execute(tx.conn())
    .await?;

    Ok(Recorded {
        tenant_id: tenant,
        event_id: event,
        conversation_id: ConversationId(conversation),
        message_id: message,
        duplicate: false,
    })
}
