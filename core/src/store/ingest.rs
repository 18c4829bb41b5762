//! Recording inbound messages: the first durable step of the pipeline.
//!
//! Contact, conversation, inbound event and the customer's message are written in one
//! transaction, by one statement ([`ingest`]) whether it stores one message or a group commit's
//! many. Redeliveries are recognised by the unique key on (channel, provider message id) with
//! `ON CONFLICT DO NOTHING`, never by a lookup first, so concurrent duplicates cannot race.

use crate::db::{DbError, TenantTx};
use crate::ids::{ContactId, ConversationId, EventId, MessageId, TenantId};
use crate::model::{InboundMessage, Recorded, Role};
use crate::store::handoff::{ContactHandoff, HandoffState};
use crate::store::messages::Appended;

/// Stores `msg` (unless it was stored before) and returns where it landed. The caller commits.
/// One round trip: the `ingest_messages` function with one item.
pub async fn record(tx: &mut TenantTx, msg: &InboundMessage) -> Result<Recorded, DbError> {
    let tenant = tx.tenant_id();
    let mut one = ingest(tx.conn(), &[(tenant, msg)]).await?;
    one.pop()
        .ok_or_else(|| DbError::Invalid("ingest_messages stored nothing".into()))
}

/// Stores many inbound messages, each for its tenant, in one statement and one transaction
/// (the `ingest_messages` function): a group commit, one WAL flush for all of them. Returns one
/// result per message, in order, each what [`record`] would have returned.
///
/// If the batch fails as a whole (an item breaks a constraint, a deadlock, a lost connection),
/// nothing of it was written and every message is stored again on its own, so one bad message
/// fails alone and the others are unaffected.
pub async fn record_batch(
    db: &crate::Db,
    items: &[(TenantId, InboundMessage)],
) -> Vec<Result<Recorded, DbError>> {
    if items.len() > 1 {
        match record_together(db, items).await {
            Ok(recorded) => return recorded.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(error = %e, items = items.len(), "group ingest failed; storing one by one")
            }
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (tenant, msg) in items {
        out.push(record_alone(db, *tenant, msg).await);
    }
    out
}

/// [`record`] in a transaction of its own.
pub async fn record_alone(
    db: &crate::Db,
    tenant: TenantId,
    msg: &InboundMessage,
) -> Result<Recorded, DbError> {
    let mut tx = db.tenant(tenant).await?;
    let recorded = record(&mut tx, msg).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// All of `items` in one call of `ingest_messages`, or nothing (see [`record_batch`]).
pub async fn record_together(
    db: &crate::Db,
    items: &[(TenantId, InboundMessage)],
) -> Result<Vec<Recorded>, DbError> {
    let items: Vec<(TenantId, &InboundMessage)> = items.iter().map(|(t, m)| (*t, m)).collect();
    ingest(db.pool(), &items).await
}

/// The one statement that stores inbound messages: contacts and conversations found or made,
/// events inserted unless their provider id was seen before (redeliveries are recognised by
/// the unique key on (channel, provider message id) with `ON CONFLICT DO NOTHING`, never by a
/// lookup first, so concurrent duplicates cannot race), and the customer's messages with them.
/// Results in the order of `items`.
async fn ingest<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    items: &[(TenantId, &InboundMessage)],
) -> Result<Vec<Recorded>, DbError> {
    use sqlx::Row;
    // One lock order for every batch: by channel, contact and provider id (the function then
    // locks conversations by id).
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (items[a].1, items[b].1);
        (
            x.channel_id.0,
            &x.contact_external_id,
            &x.provider_message_id,
        )
            .cmp(&(
                y.channel_id.0,
                &y.contact_external_id,
                &y.provider_message_id,
            ))
    });
    let text = |f: &dyn Fn(&InboundMessage) -> Option<String>| -> Vec<Option<String>> {
        order.iter().map(|&i| f(items[i].1)).collect()
    };
    let fresh =
        |new: fn() -> uuid::Uuid| -> Vec<uuid::Uuid> { order.iter().map(|_| new()).collect() };
    let n = items.len();
    // The ids new conversations get: a conversation is new when it has the id we gave.
    let conversations = fresh(|| ConversationId::new().0);
    let rows =
        sqlx::query("SELECT * FROM ingest_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(order.iter().map(|&i| items[i].0 .0).collect::<Vec<_>>())
            .bind(fresh(|| ContactId::new().0))
            .bind(
                order
                    .iter()
                    .map(|&i| items[i].1.channel_id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(text(&|m| Some(m.contact_external_id.clone())))
            .bind(text(&|m| m.contact_display_name.clone()))
            .bind(&conversations)
            .bind(fresh(|| EventId::new().0))
            .bind(text(&|m| Some(m.provider_message_id.clone())))
            .bind(
                order
                    .iter()
                    .map(|&i| &items[i].1.payload)
                    .collect::<Vec<_>>(),
            )
            .bind(fresh(|| MessageId::new().0))
            .bind(text(&|m| Some(m.text.clone())))
            .fetch_all(conn)
            .await?;
    if rows.len() != n {
        return Err(DbError::Invalid(format!(
            "ingest_messages stored {} of {n} messages",
            rows.len()
        )));
    }
    let mut out: Vec<Option<Recorded>> = vec![None; n];
    for r in rows {
        let k = r.try_get::<i32, _>("o_index")? as usize - 1;
        let duplicate: bool = r.try_get("o_duplicate")?;
        let conversation: uuid::Uuid = r.try_get("o_conversation")?;
        let message: Option<uuid::Uuid> = r.try_get("o_message")?;
        let i = *order
            .get(k)
            .ok_or_else(|| DbError::Invalid("ingest_messages: index".into()))?;
        let message_id = MessageId(message.unwrap_or_default());
        let owner: Option<String> = r.try_get("o_handoff")?;
        let shown = match owner {
            Some(owner) if !duplicate => Appended::from_row(
                &r,
                message_id,
                Role::Customer,
                &items[i].1.text,
                Vec::new(),
                ContactHandoff {
                    state: HandoffState::parse(&owner)?,
                    claimed_by: None,
                    // Its event was stored with it, waiting for its turn.
                    pending: true,
                },
            )?,
            _ => None,
        };
        out[i] = Some(Recorded {
            tenant_id: items[i].0,
            event_id: EventId(r.try_get("o_event")?),
            conversation_id: ConversationId(conversation),
            message_id,
            duplicate,
            conversation_created: !duplicate && conversation == conversations[k],
            shown,
        });
    }
    out.into_iter()
        .map(|r| r.ok_or_else(|| DbError::Invalid("ingest_messages skipped a message".into())))
        .collect()
}
