//! What the channels need to know about a contact: when they last wrote (WhatsApp's 24-hour
//! window) and whether they opted out (SMS `STOP`).

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, ContactId};

/// Notes that the contact `external_id` on `channel` just wrote.
pub async fn touch_inbound(
    tx: &mut TenantTx,
    channel: ChannelId,
    external_id: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET last_inbound_at = now() WHERE channel_id = $1 AND external_id = $2",
    )
    .bind(channel.0)
    .bind(external_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Opts the contact out (`true`) or back in (`false`); the contact is created if it never wrote
/// before, so a `STOP` is remembered even as the first message.
pub async fn set_opted_out(
    tx: &mut TenantTx,
    channel: ChannelId,
    external_id: &str,
    opted_out: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO contacts (id, tenant_id, channel_id, external_id, opted_out_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
         ON CONFLICT (channel_id, external_id)
         DO UPDATE SET opted_out_at = CASE WHEN $5 THEN COALESCE(contacts.opted_out_at, now()) END",
    )
    .bind(ContactId::new().0)
    .bind(tx.tenant_id().0)
    .bind(channel.0)
    .bind(external_id)
    .bind(opted_out)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The contact whose conversation owns any of `message_ids` on `channel` — as a message we
/// sent (the outbox's provider reference) or one we received — so a reply continues its thread
/// even when sent from another address.
pub async fn thread_owner(
    tx: &mut TenantTx,
    channel: ChannelId,
    message_ids: &[String],
) -> Result<Option<String>, DbError> {
    if message_ids.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "SELECT k.external_id FROM (
             SELECT o.conversation_id, o.created_at AS at FROM outbox o
              WHERE o.channel_id = $1 AND o.provider_ref = ANY($2)
             UNION ALL
             SELECT e.conversation_id, e.received_at FROM inbound_events e
              WHERE e.channel_id = $1 AND e.provider_message_id = ANY($2)
         ) t
         JOIN conversations c ON c.id = t.conversation_id
         JOIN contacts k ON k.id = c.contact_id
         ORDER BY t.at DESC LIMIT 1",
    )
    .bind(channel.0)
    .bind(message_ids)
    .fetch_optional(tx.conn())
    .await?)
}

/// Whether the contact opted out.
pub async fn is_opted_out(
    tx: &mut TenantTx,
    channel: ChannelId,
    external_id: &str,
) -> Result<bool, DbError> {
    let v: Option<bool> = sqlx::query_scalar(
        "SELECT opted_out_at IS NOT NULL FROM contacts WHERE channel_id = $1 AND external_id = $2",
    )
    .bind(channel.0)
    .bind(external_id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(v.unwrap_or(false))
}
