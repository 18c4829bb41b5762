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
    // The id a new conversation gets: the statement returns it only when it created the row.
    let new_conversation = ConversationId::new();
    // One statement, one round trip: contact and conversation are upserted, the event is
    // inserted unless the provider id was seen before, and the customer's message is inserted
    // only when the event was. Foreign keys are checked at the end of the statement, so the
    // message may reference the event inserted by the same statement.
    let row = sqlx::query!(
        r#"WITH contact AS (
               INSERT INTO contacts (id, tenant_id, channel_id, external_id, display_name)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (channel_id, external_id)
               DO UPDATE SET display_name = COALESCE(EXCLUDED.display_name, contacts.display_name)
               RETURNING id
           ), conv AS (
               INSERT INTO conversations (id, tenant_id, channel_id, contact_id)
               SELECT $6, $2, $3, contact.id FROM contact
               ON CONFLICT (channel_id, contact_id) DO UPDATE SET last_message_at = now()
               RETURNING id
           ), ev AS (
               INSERT INTO inbound_events (id, tenant_id, channel_id, provider_message_id, conversation_id, payload)
               SELECT $7, $2, $3, $8, conv.id, $9 FROM conv
               ON CONFLICT (channel_id, provider_message_id) DO NOTHING
               RETURNING id, conversation_id
           ), msg AS (
               INSERT INTO messages (id, tenant_id, conversation_id, role, text, inbound_event_id)
               SELECT $10, $2, ev.conversation_id, 'customer', $11, ev.id FROM ev
               RETURNING id
           )
           SELECT (SELECT id FROM ev) AS "event_id?", (SELECT id FROM conv) AS "conversation_id!",
                  (SELECT id FROM msg) AS "message_id?""#,
        ContactId::new().0,
        tenant.0,
        msg.channel_id.0,
        msg.contact_external_id,
        msg.contact_display_name,
        new_conversation.0,
        EventId::new().0,
        msg.provider_message_id,
        msg.payload,
        MessageId::new().0,
        msg.text
    )
    .fetch_one(tx.conn())
    .await?;
    let Some((event, message)) = row.event_id.zip(row.message_id) else {
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
            conversation_created: false,
        });
    };
    Ok(Recorded {
        tenant_id: tenant,
        event_id: EventId(event),
        conversation_id: ConversationId(row.conversation_id),
        message_id: MessageId(message),
        duplicate: false,
        conversation_created: row.conversation_id == new_conversation.0,
    })
}
