//! The agent's side of the pipeline: unfinished events of a conversation, attempt counting,
//! parking, and the single transaction that commits a turn.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, ConversationId, EventId, MessageId, OutboxId, TurnId};
use crate::model::ChannelKind;
use crate::store::usage::UsageRecord;

/// An inbound event still waiting for its answer.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub id: EventId,
    pub text: String,
    /// Attempts made before this one.
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
}

/// What a turn needs to know about its conversation.
#[derive(Clone, Debug)]
pub struct ConversationInfo {
    pub id: ConversationId,
    pub channel_id: ChannelId,
    pub channel_kind: ChannelKind,
    pub contact_external_id: String,
    pub tenant_name: String,
}

/// The columns [`info_from`] reads, joined from `conversations c`.
const INFO_COLUMNS: &str = "c.channel_id, ch.kind, k.external_id, t.name AS tenant_name";
const INFO_JOINS: &str = "JOIN channels ch ON ch.id = c.channel_id
           JOIN contacts k ON k.id = c.contact_id
           JOIN tenants t ON t.id = c.tenant_id";

fn info_from(id: ConversationId, r: &sqlx::postgres::PgRow) -> Result<ConversationInfo, DbError> {
    use sqlx::Row;
    let kind: String = r.try_get("kind")?;
    Ok(ConversationInfo {
        id,
        channel_id: ChannelId(r.try_get("channel_id")?),
        channel_kind: kind.parse().map_err(DbError::Invalid)?,
        contact_external_id: r.try_get("external_id")?,
        tenant_name: r.try_get("tenant_name")?,
    })
}

pub async fn conversation(
    tx: &mut TenantTx,
    id: ConversationId,
) -> Result<ConversationInfo, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {INFO_COLUMNS} FROM conversations c {INFO_JOINS} WHERE c.id = $1"
    ))
    .bind(id.0)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| DbError::NotFound(format!("conversation {id}")))?;
    info_from(id, &row)
}

/// Gives back an attempt of a turn that was cancelled (not failed) before committing.
pub async fn uncount_attempt(tx: &mut TenantTx, events: &[EventId]) -> Result<(), DbError> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    sqlx::query!(
        "UPDATE inbound_events SET attempts = greatest(attempts - 1, 0) WHERE id = ANY($1) AND status = 'pending'",
        &ids
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records the error of a failed attempt on its events (they stay pending).
pub async fn record_error(
    tx: &mut TenantTx,
    events: &[EventId],
    error: &str,
) -> Result<(), DbError> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    sqlx::query!(
        "UPDATE inbound_events SET last_error = $2 WHERE id = ANY($1) AND status = 'pending'",
        &ids,
        error
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// An event this transaction just parked, with the error of its last failed attempt (before
/// the parking note was appended), if one was recorded.
#[derive(Clone, Debug)]
pub struct ParkedNow {
    pub id: EventId,
    pub last_error: Option<String>,
}

/// Takes events out of the pipeline after too many failed attempts; admins see them parked.
/// Returns the events this call parked — those still pending, oldest first; an event another
/// worker finished or parked first is left alone and not returned. What the caller writes
/// because of the parking is keyed by the returned events, so it happens once.
pub async fn park(
    tx: &mut TenantTx,
    events: &[EventId],
    reason: &str,
) -> Result<Vec<ParkedNow>, DbError> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    // The old error is read from the locked row, so it is the one the update overwrites.
    let mut rows: Vec<(uuid::Uuid, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        r#"WITH old AS (
               SELECT id, last_error, received_at FROM inbound_events
                WHERE id = ANY($1) AND status = 'pending'
                ORDER BY id
                  FOR UPDATE)
           UPDATE inbound_events e
              SET status = 'parked', processed_at = now(),
                  last_error = COALESCE(old.last_error || ' | ', '') || $2
             FROM old
            WHERE e.id = old.id AND e.status = 'pending'
        RETURNING e.id, old.last_error, old.received_at"#,
    )
    .bind(&ids)
    .bind(reason)
    .fetch_all(tx.conn())
    .await?;
    rows.sort_by_key(|r| (r.2, r.0));
    Ok(rows
        .into_iter()
        .map(|(id, last_error, _)| ParkedNow {
            id: EventId(id),
            last_error,
        })
        .collect())
}

/// Everything one turn writes.
#[derive(Clone, Debug)]
pub struct TurnCommit<'a> {
    pub conversation: &'a ConversationInfo,
    pub events: &'a [EventId],
    pub reply: &'a str,
    pub responder: &'a str,
    pub intent: Option<&'a str>,
    pub metadata: serde_json::Value,
    /// The prompt version that produced the reply (model-backed turns).
    pub prompt_version_id: Option<uuid::Uuid>,
    /// The model calls the reply took; stored with the turn.
    pub usage: &'a [UsageRecord],
    /// Choices offered with the reply (`[{id, title}]`: reply buttons where the channel has
    /// them).
    pub choices: Option<&'a serde_json::Value>,
    /// The caller already holds the conversation's row lock in this transaction.
    pub conversation_locked: bool,
}

/// What a committed turn produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedTurn {
    pub turn_id: TurnId,
    pub message_id: MessageId,
    pub outbox_id: OutboxId,
    /// The reply is delivered by this very commit: a web chat reads its replies from the
    /// transcript, so its outbox row is written as sent and the caller only has to wake the
    /// session's streams ([`ChannelKind::delivers_from_transcript`]). Otherwise the row waits
    /// for the dispatcher.
    pub delivered: bool,
    /// The reply as a web-chat stream shows it, when the commit told where it goes in the
    /// transcript (the one-round-trip commits do); `None`: streams read the transcript.
    pub shown: Option<Box<super::messages::Appended>>,
}

/// Writes the reply, its outbox row and the "done" mark of every event in one go.
///
/// The conversation row is locked first so that two workers can never commit turns of one
/// conversation at the same time; if any event is no longer pending (another worker answered
/// it), nothing is written and `Conflict` is returned — the caller rolls back.
pub async fn commit(tx: &mut TenantTx, turn: TurnCommit<'_>) -> Result<CommittedTurn, DbError> {
    let tenant = tx.tenant_id();
    let conv = turn.conversation;
    if !turn.conversation_locked {
        sqlx::query!(
            "SELECT id FROM conversations WHERE id = $1 FOR UPDATE",
            conv.id.0
        )
        .fetch_one(tx.conn())
        .await?;
    }

    let turn_id = TurnId::new();
    sqlx::query!(
        r#"INSERT INTO turns (id, tenant_id, conversation_id, responder, intent, event_count)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
        turn_id.0,
        tenant.0,
        conv.id.0,
        turn.responder,
        turn.intent,
        turn.events.len() as i32
    )
    .execute(tx.conn())
    .await?;

    if let Some(version) = turn.prompt_version_id {
        sqlx::query("UPDATE turns SET prompt_version_id = $2 WHERE id = $1")
            .bind(turn_id.0)
            .bind(version)
            .execute(tx.conn())
            .await?;
    }

    let ids: Vec<uuid::Uuid> = turn.events.iter().map(|e| e.0).collect();
    let marked = sqlx::query!(
        r#"UPDATE inbound_events SET status = 'done', turn_id = $2, processed_at = now(), last_error = NULL
            WHERE id = ANY($1) AND status = 'pending' AND conversation_id = $3"#,
        &ids,
        turn_id.0,
        conv.id.0
    )
    .execute(tx.conn())
    .await?;
    if marked.rows_affected() != ids.len() as u64 {
        return Err(DbError::Conflict(format!(
            "only {} of {} events of conversation {} were still pending",
            marked.rows_affected(),
            ids.len(),
            conv.id
        )));
    }

    let (message_id, metadata, outbox_id, payload, delivered) = reply_rows(&turn);
    sqlx::query!(
        r#"INSERT INTO messages (id, tenant_id, conversation_id, role, text, turn_id, metadata)
           VALUES ($1, $2, $3, 'agent', $4, $5, $6)"#,
        message_id.0,
        tenant.0,
        conv.id.0,
        turn.reply,
        turn_id.0,
        metadata
    )
    .execute(tx.conn())
    .await?;

    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id, idempotency_key,
                             payload, status, sent_at, provider_ref)
         VALUES ($1, $2, $3, $4, $5, $6, $7,
                 CASE WHEN $8 THEN 'sent' ELSE 'pending' END,
                 CASE WHEN $8 THEN now() END,
                 CASE WHEN $8 THEN $5::text END)",
    )
    .bind(outbox_id.0)
    .bind(tenant.0)
    .bind(conv.channel_id.0)
    .bind(conv.id.0)
    .bind(message_id.0)
    .bind(format!("reply:{turn_id}"))
    .bind(payload)
    .bind(delivered)
    .execute(tx.conn())
    .await?;

    sqlx::query!(
        "UPDATE conversations SET last_message_at = now() WHERE id = $1",
        conv.id.0
    )
    .execute(tx.conn())
    .await?;
    super::usage::record(tx, Some(conv.id), Some(turn_id), turn.usage).await?;

    Ok(CommittedTurn {
        turn_id,
        message_id,
        outbox_id,
        delivered,
        shown: None,
    })
}

/// The rows a reply is written as: the message (its metadata carrying the choices, which the
/// web chat shows as buttons, also when the history is read again after a reload) and its outbox
/// row (payload, and whether this commit already delivers it).
fn reply_rows(
    turn: &TurnCommit<'_>,
) -> (
    MessageId,
    serde_json::Value,
    OutboxId,
    serde_json::Value,
    bool,
) {
    let conv = turn.conversation;
    let choices = turn
        .choices
        .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()));
    let mut metadata = turn.metadata.clone();
    if let (Some(c), Some(m)) = (choices, metadata.as_object_mut()) {
        m.insert("choices".into(), c.clone());
    }
    let message_id = MessageId::new();
    let mut payload = json!({
        "kind": "text",
        "to": conv.contact_external_id,
        "text": turn.reply,
        "message_id": message_id,
    });
    if let Some(c) = choices {
        payload["choices"] = c.clone();
    }
    let delivered = conv.channel_kind.delivers_from_transcript();
    (message_id, metadata, OutboxId::new(), payload, delivered)
}

/// How [`commit_bot_reply`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BotReply {
    Committed(CommittedTurn),
    /// A human owns the conversation now (or is being waited for): nothing was written.
    HumanOwns(super::handoff::HandoffState),
}

/// An ordinary bot reply, ready to be written by [`commit_bot_reply`] or, with others, by
/// [`commit_bot_replies`]: everything [`commit`] writes, owned (so that it can travel to a
/// group commit), with the ids the rows will have.
#[derive(Clone, Debug)]
pub struct BotReplyRow {
    pub tenant: crate::TenantId,
    pub conversation: ConversationId,
    pub events: Vec<uuid::Uuid>,
    /// The reply counts as a failure to answer.
    pub failed: bool,
    /// The customer's language, recorded on the conversation.
    pub lang: String,
    turn_id: TurnId,
    responder: String,
    intent: Option<String>,
    prompt_version_id: Option<uuid::Uuid>,
    message_id: MessageId,
    text: String,
    metadata: serde_json::Value,
    outbox_id: OutboxId,
    channel_id: ChannelId,
    payload: serde_json::Value,
    delivered: bool,
}

impl BotReplyRow {
    pub fn new(tenant: crate::TenantId, turn: &TurnCommit<'_>, failed: bool, lang: &str) -> Self {
        let (message_id, metadata, outbox_id, payload, delivered) = reply_rows(turn);
        Self {
            tenant,
            conversation: turn.conversation.id,
            events: turn.events.iter().map(|e| e.0).collect(),
            failed,
            lang: lang.to_owned(),
            turn_id: TurnId::new(),
            responder: turn.responder.to_owned(),
            intent: turn.intent.map(str::to_owned),
            prompt_version_id: turn.prompt_version_id,
            message_id,
            text: turn.reply.to_owned(),
            metadata,
            outbox_id,
            channel_id: turn.conversation.channel_id,
            payload,
            delivered,
        }
    }

    pub fn turn_id(&self) -> TurnId {
        self.turn_id
    }

    /// What the SQL functions answered for this row: its outcome and, once committed, where
    /// the reply went in the transcript.
    fn outcome(&self, r: &sqlx::postgres::PgRow) -> Result<BotReply, DbError> {
        use sqlx::Row;
        let outcome: String = r.try_get("o_outcome")?;
        match outcome.as_str() {
            "committed" => {
                let handoff = super::handoff::ContactHandoff {
                    state: super::handoff::HandoffState::Bot,
                    claimed_by: None,
                    pending: r.try_get::<Option<bool>, _>("o_pending")?.unwrap_or(false),
                };
                let shown = super::messages::Appended::from_row(
                    r,
                    self.message_id,
                    crate::model::Role::Agent,
                    &self.text,
                    crate::model::MessageChoice::from_metadata(self.metadata.get("choices")),
                    handoff,
                )?
                .map(Box::new);
                Ok(BotReply::Committed(CommittedTurn {
                    turn_id: self.turn_id,
                    message_id: self.message_id,
                    outbox_id: self.outbox_id,
                    delivered: self.delivered,
                    shown,
                }))
            }
            "conflict" => Err(DbError::Conflict(format!(
                "events of conversation {} were no longer pending",
                self.conversation
            ))),
            "not_found" => Err(DbError::NotFound(format!(
                "conversation {}",
                self.conversation
            ))),
            owner => Ok(BotReply::HumanOwns(super::handoff::HandoffState::parse(
                owner,
            )?)),
        }
    }
}

/// [`commit`] of an ordinary bot reply, as a transaction of its own in one round trip (the
/// `commit_bot_reply` function, which acts for the row's tenant): under the conversation's
/// lock, checks that the bot still owns it, resets or counts its failed answers and records the
/// customer's language, then writes what [`commit`] writes. With token usage to record, the
/// call and the usage rows share a transaction instead. Events that are no longer pending give
/// `Conflict`, and nothing is written.
pub async fn commit_bot_reply(
    db: &crate::Db,
    row: &BotReplyRow,
    usage: &[UsageRecord],
) -> Result<BotReply, DbError> {
    let call = sqlx::query(
        "SELECT * FROM commit_bot_reply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                        $14, $15, $16, $17)",
    )
    .bind(row.tenant.0)
    .bind(row.conversation.0)
    .bind(&row.events)
    .bind(row.failed)
    .bind(&row.lang)
    .bind(row.turn_id.0)
    .bind(&row.responder)
    .bind(&row.intent)
    .bind(row.prompt_version_id)
    .bind(row.message_id.0)
    .bind(&row.text)
    .bind(&row.metadata)
    .bind(row.outbox_id.0)
    .bind(row.channel_id.0)
    .bind(format!("reply:{}", row.turn_id))
    .bind(&row.payload)
    .bind(row.delivered);
    if usage.is_empty() {
        let r = call.fetch_one(db.pool()).await.map_err(bot_reply_error)?;
        return row.outcome(&r);
    }
    let mut tx = db.tenant(row.tenant).await?;
    let r = call.fetch_one(tx.conn()).await.map_err(bot_reply_error)?;
    let outcome = row.outcome(&r)?;
    if matches!(outcome, BotReply::Committed(_)) {
        super::usage::record(&mut tx, Some(row.conversation), Some(row.turn_id), usage).await?;
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Ordinary bot replies of many conversations in one statement and one transaction (the
/// `commit_bot_replies` function): a group commit, one WAL flush for all of them. Each row
/// fares exactly as [`commit_bot_reply`] (without usage) would have made it fare, and gets its
/// own result, in order: a row whose events another worker answered is `Conflict` and leaves
/// nothing behind, without disturbing the others. If the batch fails as a whole, nothing of it
/// was written and each row is committed again on its own.
pub async fn commit_bot_replies(
    db: &crate::Db,
    rows: &[BotReplyRow],
) -> Vec<Result<BotReply, DbError>> {
    if rows.len() > 1 {
        match commit_replies_together(db, rows).await {
            Ok(outcomes) => return outcomes,
            Err(e) => {
                tracing::warn!(error = %e, rows = rows.len(), "group commit failed; committing one by one")
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(commit_bot_reply(db, row, &[]).await);
    }
    out
}

/// All of `rows` in one call of `commit_bot_replies`, each with its own outcome; an error
/// means none was written (see [`commit_bot_replies`]).
pub async fn commit_replies_together(
    db: &crate::Db,
    rows: &[BotReplyRow],
) -> Result<Vec<Result<BotReply, DbError>>, DbError> {
    use sqlx::Row;
    // One lock order for every batch.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].conversation.0);
    let col = |f: &dyn Fn(&BotReplyRow) -> uuid::Uuid| -> Vec<uuid::Uuid> {
        order.iter().map(|&i| f(&rows[i])).collect()
    };
    let texts = |f: &dyn Fn(&BotReplyRow) -> Option<String>| -> Vec<Option<String>> {
        order.iter().map(|&i| f(&rows[i])).collect()
    };
    let events = serde_json::Value::Array(
        order
            .iter()
            .map(|&i| serde_json::json!(rows[i].events))
            .collect(),
    );
    let result = sqlx::query(
        "SELECT * FROM commit_bot_replies($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                          $14, $15, $16, $17)",
    )
    .bind(col(&|r| r.tenant.0))
    .bind(col(&|r| r.conversation.0))
    .bind(&events)
    .bind(order.iter().map(|&i| rows[i].failed).collect::<Vec<_>>())
    .bind(texts(&|r| Some(r.lang.clone())))
    .bind(col(&|r| r.turn_id.0))
    .bind(texts(&|r| Some(r.responder.clone())))
    .bind(texts(&|r| r.intent.clone()))
    .bind(
        order
            .iter()
            .map(|&i| rows[i].prompt_version_id)
            .collect::<Vec<_>>(),
    )
    .bind(col(&|r| r.message_id.0))
    .bind(texts(&|r| Some(r.text.clone())))
    .bind(order.iter().map(|&i| &rows[i].metadata).collect::<Vec<_>>())
    .bind(col(&|r| r.outbox_id.0))
    .bind(col(&|r| r.channel_id.0))
    .bind(texts(&|r| Some(format!("reply:{}", r.turn_id))))
    .bind(order.iter().map(|&i| &rows[i].payload).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| rows[i].delivered).collect::<Vec<_>>())
    .fetch_all(db.pool())
    .await?;
    if result.len() != rows.len() {
        return Err(DbError::Invalid(format!(
            "commit_bot_replies answered {} of {} rows",
            result.len(),
            rows.len()
        )));
    }
    let mut out: Vec<Option<Result<BotReply, DbError>>> = (0..rows.len()).map(|_| None).collect();
    for r in result {
        let k = r.try_get::<i32, _>("o_index")? as usize - 1;
        let i = *order
            .get(k)
            .ok_or_else(|| DbError::Invalid("commit_bot_replies: index".into()))?;
        out[i] = Some(rows[i].outcome(&r));
    }
    Ok(out
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(DbError::Invalid("commit_bot_replies skipped a row".into())))
        })
        .collect())
}

/// The errors `commit_bot_reply` raises on purpose, as [`DbError`]s.
fn bot_reply_error(e: sqlx::Error) -> DbError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("SB409") => {
            DbError::Conflict(d.message().to_owned())
        }
        sqlx::Error::Database(d) if d.code().as_deref() == Some("SB404") => {
            DbError::NotFound(d.message().to_owned())
        }
        _ => e.into(),
    }
}

/// Takes a turn's events out of the pipeline without a reply: a human owns the conversation
/// (or is about to), and the bot never talks over a human. The customer's messages stay in the
/// transcript for the human. Returns `None` (and writes nothing, not even the turn) when another
/// worker answered any of the events first.
pub async fn commit_silent(
    tx: &mut TenantTx,
    conversation: &ConversationInfo,
    events: &[EventId],
    reason: &str,
) -> Result<Option<TurnId>, DbError> {
    let tenant = tx.tenant_id();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    // Locked, so that what is counted here is what the update below marks.
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM inbound_events
                                WHERE id = ANY($1) AND status = 'pending' AND conversation_id = $2
                                  FOR UPDATE) p",
    )
    .bind(&ids)
    .bind(conversation.id.0)
    .fetch_one(tx.conn())
    .await?;
    if pending != ids.len() as i64 {
        return Ok(None);
    }
    let turn_id = TurnId::new();
    sqlx::query(
        "INSERT INTO turns (id, tenant_id, conversation_id, responder, intent, event_count)
         VALUES ($1, $2, $3, 'human', $4, $5)",
    )
    .bind(turn_id.0)
    .bind(tenant.0)
    .bind(conversation.id.0)
    .bind(reason)
    .bind(events.len() as i32)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE inbound_events SET status = 'done', turn_id = $2, processed_at = now(), last_error = NULL
          WHERE id = ANY($1) AND status = 'pending' AND conversation_id = $3",
    )
    .bind(&ids)
    .bind(turn_id.0)
    .bind(conversation.id.0)
    .execute(tx.conn())
    .await?;
    Ok(Some(turn_id))
}

/// A parked event as admins see it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParkedEvent {
    pub id: EventId,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
    pub text: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub received_at: DateTime<Utc>,
}

pub async fn parked(tx: &mut TenantTx, limit: i64) -> Result<Vec<ParkedEvent>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT e.id, e.conversation_id, e.channel_id, e.attempts, e.last_error, e.received_at,
                  COALESCE(m.text, '') AS "text!"
             FROM inbound_events e LEFT JOIN messages m ON m.inbound_event_id = e.id
            WHERE e.status = 'parked'
            ORDER BY e.received_at DESC
            LIMIT $1"#,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ParkedEvent {
            id: EventId(r.id),
            conversation_id: ConversationId(r.conversation_id),
            channel_id: ChannelId(r.channel_id),
            text: r.text,
            attempts: r.attempts,
            last_error: r.last_error,
            received_at: r.received_at,
        })
        .collect())
}

/// Puts a parked event back in the pipeline with a fresh attempt budget. Returns its
/// conversation so the caller can wake the agent, or `None` if no such parked event exists.
pub async fn retry_parked(
    tx: &mut TenantTx,
    event: EventId,
) -> Result<Option<ConversationId>, DbError> {
    let conv = sqlx::query_scalar!(
        r#"UPDATE inbound_events SET status = 'pending', attempts = 0, processed_at = NULL
            WHERE id = $1 AND status = 'parked' RETURNING conversation_id"#,
        event.0
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(conv.map(ConversationId))
}

/// Everything a turn reads about its conversation, in one statement (see [`gather`]).
#[derive(Clone, Debug)]
pub struct TurnState {
    pub info: ConversationInfo,
    pub owner: super::handoff::Ownership,
    /// The tenant's knowledge generation (`kb_generation()`, see that migration): equal
    /// generations mean the same searchable knowledge.
    pub knowledge_generation: i64,
    /// The conversation has an open booking offer (slots the customer may pick from).
    pub has_booking_offer: bool,
}

/// A turn's read of its conversation: the pending events, oldest first, each with its attempts
/// *before* this turn; the events that still have attempts left get this turn's attempt counted
/// by the same statement (`max_attempts`: events with that many are returned untouched, to be
/// parked). Plus the conversation, its ownership and the tenant's knowledge generation.
///
/// Two statements where a turn used to need six. The attempt is counted before any work
/// starts, so that an attempt that crashes the process or the actor still counts.
///
/// Unless events are to be parked (which tells the customer), the second statement also lets
/// the transaction commit without waiting for its WAL to reach the disk. Its loss in a crash of
/// PostgreSQL itself is harmless: the attempt count guards against an event that crashes the
/// *process* every time it is answered, and a process crash never loses it (the server has its
/// WAL and flushes it within `wal_writer_delay`); only a crash of the server in those few
/// milliseconds could, and then the event is simply tried once more. Messages, replies and every
/// other accepted change keep waiting for the disk.
pub async fn gather(
    tx: &mut TenantTx,
    conversation: ConversationId,
    max_attempts: i32,
) -> Result<(Vec<PendingEvent>, Option<TurnState>), DbError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "WITH counted AS (
            UPDATE inbound_events SET attempts = attempts + 1
             WHERE conversation_id = $1 AND status = 'pending' AND attempts < $2
            RETURNING id, attempts - 1 AS attempts, received_at),
          exhausted AS (
            SELECT id, attempts, received_at FROM inbound_events
             WHERE conversation_id = $1 AND status = 'pending' AND attempts >= $2),
          pending AS (SELECT * FROM counted UNION ALL SELECT * FROM exhausted)
         SELECT p.id, p.attempts, p.received_at, COALESCE(m.text, '') AS text
           FROM pending p LEFT JOIN messages m ON m.inbound_event_id = p.id
          ORDER BY p.received_at, p.id",
    )
    .bind(conversation.0)
    .bind(max_attempts)
    .fetch_all(tx.conn())
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(PendingEvent {
                id: EventId(r.try_get("id")?),
                text: r.try_get("text")?,
                attempts: r.try_get("attempts")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    if events.is_empty() {
        return Ok((events, None));
    }
    let relaxed = events.iter().all(|e| e.attempts < max_attempts);
    let r = sqlx::query(&format!(
        "SELECT {INFO_COLUMNS}, c.handoff_state, c.status, c.failed_answers, c.handback_note,
                kb_generation() AS generation, c.booking_offer IS NOT NULL AS has_offer,
                CASE WHEN $2 THEN set_config('synchronous_commit', 'off', true) END AS relaxed
           FROM conversations c {INFO_JOINS}
          WHERE c.id = $1"
    ))
    .bind(conversation.0)
    .bind(relaxed)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| DbError::NotFound(format!("conversation {conversation}")))?;
    Ok((
        events,
        Some(TurnState {
            info: info_from(conversation, &r)?,
            owner: super::handoff::ownership_from(&r)?,
            knowledge_generation: r.try_get("generation")?,
            has_booking_offer: r.try_get("has_offer")?,
        }),
    ))
}

/// Whether the sender of `events` is verified: unverified when any of them was marked so
/// ([`crate::model::InboundMessage::mark_unverified`]). Its own short transaction, for the
/// turns of channels that do not authenticate their senders themselves (email:
/// [`ChannelKind::authenticates_sender`]); the others never need it.
pub async fn sender_trust(
    db: &crate::Db,
    tenant: crate::TenantId,
    events: &[EventId],
) -> Result<crate::model::SenderTrust, DbError> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    let mut tx = db.tenant(tenant).await?;
    let unverified: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM inbound_events
                         WHERE id = ANY($1) AND payload->'{}' = 'false'::jsonb)",
        crate::model::SENDER_VERIFIED_KEY
    ))
    .bind(&ids)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(if unverified {
        crate::model::SenderTrust::Unverified
    } else {
        crate::model::SenderTrust::Verified
    })
}

/// What [`gather_turn`] found.
#[derive(Debug)]
pub enum TurnRead {
    /// Nothing is pending.
    NoWork,
    /// An event has used up its attempts: nothing was written, and the turn takes the long way
    /// ([`gather`] in a transaction of the caller's), which parks it.
    Exhausted,
    Read(Box<TurnReadRow>),
}

/// A turn's whole read (see [`gather_turn`]).
#[derive(Debug)]
pub struct TurnReadRow {
    /// The pending events, oldest first, each with its attempts before this turn.
    pub events: Vec<PendingEvent>,
    pub state: TurnState,
    pub settings: super::actions::ActionSettings,
    /// The tenant's agent provider (`offline`, `openai`); `None` when it saved no agent
    /// settings.
    pub agent_provider: Option<String>,
    /// The contact's lead, when asked for.
    pub lead: Option<super::leads::Lead>,
}

/// [`gather`] plus the tenant's action settings, its agent provider and (with `lead`) the
/// contact's lead, as a transaction of its own in one round trip (the `gather_turn` function,
/// which acts for `tenant`), where the same reads took a turn seven. Its commit does not wait
/// for the disk, for the reason [`gather`] gives.
pub async fn gather_turn(
    db: &crate::Db,
    tenant: crate::TenantId,
    conversation: ConversationId,
    max_attempts: i32,
    lead: bool,
) -> Result<TurnRead, DbError> {
    use sqlx::Row;
    let row = sqlx::query("SELECT * FROM gather_turn($1, $2, $3, $4)")
        .bind(tenant.0)
        .bind(conversation.0)
        .bind(max_attempts)
        .bind(lead)
        .fetch_optional(db.pool())
        .await
        .map_err(bot_reply_error)?;
    let Some(r) = row else {
        return Ok(TurnRead::NoWork);
    };
    if r.try_get::<bool, _>("o_exhausted")? {
        return Ok(TurnRead::Exhausted);
    }
    let ids: Vec<uuid::Uuid> = r.try_get("o_events")?;
    let attempts: Vec<i32> = r.try_get("o_attempts")?;
    let received: Vec<DateTime<Utc>> = r.try_get("o_received")?;
    let texts: Vec<String> = r.try_get("o_texts")?;
    if [attempts.len(), received.len(), texts.len()] != [ids.len(); 3] {
        return Err(DbError::Invalid("gather_turn: uneven event arrays".into()));
    }
    let events = ids
        .into_iter()
        .zip(attempts)
        .zip(received)
        .zip(texts)
        .map(|(((id, attempts), received_at), text)| PendingEvent {
            id: EventId(id),
            text,
            attempts,
            received_at,
        })
        .collect();
    let settings = if r.try_get::<bool, _>("a_found")? {
        super::actions::settings_from(&r)?
    } else {
        super::actions::ActionSettings::default()
    };
    let lead = if r.try_get::<bool, _>("l_found")? {
        Some(super::leads::lead_from(&r)?)
    } else {
        None
    };
    Ok(TurnRead::Read(Box::new(TurnReadRow {
        events,
        state: TurnState {
            info: info_from(conversation, &r)?,
            owner: super::handoff::ownership_from(&r)?,
            knowledge_generation: r.try_get("generation")?,
            has_booking_offer: r.try_get("has_offer")?,
        },
        settings,
        agent_provider: r.try_get("agent_provider")?,
        lead,
    })))
}
