//! The handoff state machine of a conversation and its escalations.
//!
//! ```text
//!            escalate                 claim / human reply
//!   bot ───────────────► waiting ─────────────────────► human
//!    ▲                      │                              │
//!    └──────── hand back ───┴──────────── hand back ───────┘
//!   (close from any state: status = closed, open escalation resolved, back to bot)
//! ```
//!
//! Every transition locks the conversation row first, so a turn committing a bot reply and a
//! human claiming the conversation serialise: the turn re-reads the state under the lock and
//! stays silent if a human got there first. At most one escalation is open per conversation (a
//! partial unique index), and an escalation remembers the request that opened it
//! (`request_key`), so a redone turn finds it instead of opening — and notifying — twice.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::{ConversationId, MessageId, OutboxId};

/// Who owns a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    Bot,
    Waiting,
    Human,
}

impl HandoffState {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffState::Bot => "bot",
            HandoffState::Waiting => "waiting",
            HandoffState::Human => "human",
        }
    }
    pub(crate) fn parse(s: &str) -> Result<Self, DbError> {
        match s {
            "bot" => Ok(HandoffState::Bot),
            "waiting" => Ok(HandoffState::Waiting),
            "human" => Ok(HandoffState::Human),
            other => Err(DbError::Invalid(format!("unknown handoff state `{other}`"))),
        }
    }
}

/// What the turn needs to know about ownership.
#[derive(Clone, Debug)]
pub struct Ownership {
    pub state: HandoffState,
    pub closed: bool,
    pub failed_answers: i32,
    /// What a human did, told to the bot once when it resumes.
    pub handback_note: Option<String>,
}

/// Reads the conversation's ownership; `lock` takes the row lock (use it in the transaction
/// that commits a reply).
pub async fn ownership(
    tx: &mut TenantTx,
    conversation: ConversationId,
    lock: bool,
) -> Result<Ownership, DbError> {
    let sql = if lock {
        "SELECT handoff_state, status, failed_answers, handback_note FROM conversations WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT handoff_state, status, failed_answers, handback_note FROM conversations WHERE id = $1"
    };
    let r = sqlx::query(sql)
        .bind(conversation.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("conversation {conversation}")))?;
    ownership_from(&r)
}

/// An [`Ownership`] from a row with the conversation's `handoff_state`, `status`,
/// `failed_answers` and `handback_note`.
pub(crate) fn ownership_from(r: &sqlx::postgres::PgRow) -> Result<Ownership, DbError> {
    let state: String = r.try_get("handoff_state")?;
    let status: String = r.try_get("status")?;
    Ok(Ownership {
        state: HandoffState::parse(&state)?,
        closed: status == "closed",
        failed_answers: r.try_get("failed_answers")?,
        handback_note: r.try_get("handback_note")?,
    })
}

/// Who owns the conversation of a channel's contact, as its customer may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactHandoff {
    pub state: HandoffState,
    /// Who claimed the open escalation (a transcript label: a display name, an email, an API
    /// key's name); the caller decides what of it a customer may see.
    pub claimed_by: Option<String>,
    /// A customer message is waiting for its turn (the agent is working on an answer).
    pub pending: bool,
}

/// The channel and the customer's address of a conversation (to wake a web-chat session's
/// event streams after its handoff state changed).
pub async fn customer_address(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Option<(crate::ids::ChannelId, String)>, DbError> {
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT c.channel_id, k.external_id FROM conversations c JOIN contacts k ON k.id = c.contact_id
          WHERE c.id = $1",
    )
    .bind(conversation.0)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|(ch, to)| (crate::ids::ChannelId(ch), to)))
}

/// Records whether the bot's answer helped (for the repeated-failure rule), clears the
/// hand-back note once the bot has used it, reopens a closed conversation the customer wrote
/// to again, and keeps the customer's language as the turn detected it (`lang`, a code such as
/// `en`; the inbox filters on it). Returns the consecutive failures.
pub async fn after_bot_turn(
    tx: &mut TenantTx,
    conversation: ConversationId,
    failed: bool,
    lang: &str,
) -> Result<i32, DbError> {
    let n: i32 = sqlx::query_scalar(
        "UPDATE conversations
            SET failed_answers = CASE WHEN $2 THEN failed_answers + 1 ELSE 0 END,
                handback_note = NULL, status = 'open', language = $3
          WHERE id = $1 RETURNING failed_answers",
    )
    .bind(conversation.0)
    .bind(failed)
    .bind(lang)
    .fetch_one(tx.conn())
    .await?;
    Ok(n)
}

/// An escalation as admins see it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    pub id: Uuid,
    pub conversation_id: ConversationId,
    pub trigger: String,
    pub reason: String,
    pub summary: String,
    pub status: String,
    pub after_hours: bool,
    pub claimed_by: Option<String>,
    pub notifications: i32,
    pub next_reminder_at: Option<DateTime<Utc>>,
    pub handback_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, conversation_id, trigger, reason, summary, status, after_hours, \
    claimed_by, notifications, next_reminder_at, handback_note, created_at, claimed_at, resolved_at";

fn escalation_from(r: &sqlx::postgres::PgRow) -> Result<Escalation, DbError> {
    Ok(Escalation {
        id: r.try_get("id")?,
        conversation_id: ConversationId(r.try_get("conversation_id")?),
        trigger: r.try_get("trigger")?,
        reason: r.try_get("reason")?,
        summary: r.try_get("summary")?,
        status: r.try_get("status")?,
        after_hours: r.try_get("after_hours")?,
        claimed_by: r.try_get("claimed_by")?,
        notifications: r.try_get("notifications")?,
        next_reminder_at: r.try_get("next_reminder_at")?,
        handback_note: r.try_get("handback_note")?,
        created_at: r.try_get("created_at")?,
        claimed_at: r.try_get("claimed_at")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

/// A request to bring a human in.
#[derive(Clone, Debug)]
pub struct EscalationRequest<'a> {
    pub conversation: ConversationId,
    /// `customer`, `tool`, `keyword`, `failures`, `lead_score`, `technical_failure`, `admin`.
    pub trigger: &'a str,
    pub reason: &'a str,
    pub summary: &'a str,
    /// Identifies the request (a turn's first event): the same key never opens twice.
    pub request_key: &'a str,
    pub after_hours: bool,
    /// When to remind the team if nobody claims it (`None`: never).
    pub remind_at: Option<DateTime<Utc>>,
}

/// Opens an escalation and moves the conversation to `waiting`. Returns the escalation and
/// whether it is new: an open escalation of the conversation, or one opened earlier by the same
/// request, is returned as it is (and the caller must not notify again).
pub async fn open(
    tx: &mut TenantTx,
    req: &EscalationRequest<'_>,
) -> Result<(Escalation, bool), DbError> {
    let tenant = tx.tenant_id();
    sqlx::query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(req.conversation.0)
        .fetch_one(tx.conn())
        .await?;
    let existing = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM escalations
          WHERE (conversation_id = $1 AND status <> 'resolved') OR request_key = $2
          ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(req.conversation.0)
    .bind(req.request_key)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(r) = existing {
        return Ok((escalation_from(&r)?, false));
    }
    let row = sqlx::query(&format!(
        "INSERT INTO escalations (id, tenant_id, conversation_id, trigger, reason, summary,
                                  after_hours, next_reminder_at, request_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.0)
    .bind(req.conversation.0)
    .bind(req.trigger)
    .bind(req.reason.chars().take(2000).collect::<String>())
    .bind(req.summary)
    .bind(req.after_hours)
    .bind(req.remind_at)
    .bind(req.request_key)
    .fetch_one(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE conversations SET handoff_state = 'waiting', failed_answers = 0, status = 'open'
          WHERE id = $1",
    )
    .bind(req.conversation.0)
    .execute(tx.conn())
    .await?;
    Ok((escalation_from(&row)?, true))
}

/// Whether the conversation was ever escalated by `trigger` (rules fire once, never in a loop).
pub async fn ever_escalated_by(
    tx: &mut TenantTx,
    conversation: ConversationId,
    trigger: &str,
) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM escalations WHERE conversation_id = $1 AND trigger = $2)",
    )
    .bind(conversation.0)
    .bind(trigger)
    .fetch_one(tx.conn())
    .await?)
}

pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Option<Escalation>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM escalations WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(escalation_from).transpose()
}

/// The open escalation of a conversation, if any.
pub async fn open_of(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Option<Escalation>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM escalations WHERE conversation_id = $1 AND status <> 'resolved'"
    ))
    .bind(conversation.0)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(escalation_from).transpose()
}

/// Escalations, newest first, optionally of one status.
pub async fn list(
    tx: &mut TenantTx,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Escalation>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM escalations WHERE ($1::text IS NULL OR status = $1)
          ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(status)
    .bind(limit.clamp(1, 1000))
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(escalation_from).collect()
}

/// An escalation as the inbox lists it: with its conversation's channel and customer, the
/// customer's lead score, and how long the customer has waited.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationItem {
    #[serde(flatten)]
    pub escalation: Escalation,
    /// The channel's kind (`webchat`, `whatsapp`, …).
    pub channel: String,
    pub channel_name: String,
    pub contact_name: Option<String>,
    /// The customer's address on the channel.
    pub contact_external_id: String,
    /// The customer's lead score (0–100), when they are a lead.
    pub lead_score: Option<i32>,
    /// Open escalations: seconds the customer has waited — until now while `waiting`, until
    /// the claim once `claimed`. `null` once resolved.
    pub waiting_seconds: Option<i64>,
}

/// Escalations with their channel, customer and wait, newest first, optionally of one status.
pub async fn list_items(
    tx: &mut TenantTx,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<EscalationItem>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT e.*, ch.kind AS channel_kind, ch.name AS channel_name,
                k.display_name AS contact_name, k.external_id AS contact_external_id,
                k.lead_score,
                CASE e.status
                     WHEN 'waiting' THEN floor(extract(epoch FROM now() - e.created_at))::bigint
                     WHEN 'claimed' THEN floor(extract(epoch FROM e.claimed_at - e.created_at))::bigint
                END AS waiting_seconds
           FROM (SELECT {COLUMNS} FROM escalations WHERE ($1::text IS NULL OR status = $1)
                  ORDER BY created_at DESC, id DESC LIMIT $2) e
           JOIN conversations c ON c.id = e.conversation_id
           JOIN channels ch ON ch.id = c.channel_id
           JOIN contacts k ON k.id = c.contact_id
          ORDER BY e.created_at DESC, e.id DESC"
    ))
    .bind(status)
    .bind(limit.clamp(1, 1000))
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EscalationItem {
                escalation: escalation_from(r)?,
                channel: r.try_get("channel_kind")?,
                channel_name: r.try_get("channel_name")?,
                contact_name: r.try_get("contact_name")?,
                contact_external_id: r.try_get("contact_external_id")?,
                lead_score: r.try_get("lead_score")?,
                waiting_seconds: r.try_get("waiting_seconds")?,
            })
        })
        .collect()
}

/// Why a transition was refused.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for HandoffError {
    fn from(e: sqlx::Error) -> Self {
        HandoffError::Db(e.into())
    }
}

async fn lock_conversation(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<Ownership, HandoffError> {
    match ownership(tx, conversation, true).await {
        Ok(o) => Ok(o),
        Err(DbError::NotFound(_)) => Err(HandoffError::NotFound(format!(
            "no conversation {conversation}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A human takes the conversation: from `bot` (an admin steps in unasked: an escalation of
/// trigger `admin` is opened) or `waiting`. Claiming one's own claimed conversation again is a
/// no-op; claiming someone else's is a conflict.
pub async fn claim(
    tx: &mut TenantTx,
    conversation: ConversationId,
    by: &str,
) -> Result<Escalation, HandoffError> {
    lock_conversation(tx, conversation).await?;
    let current = open_of(tx, conversation).await?;
    let escalation = match current {
        Some(e) if e.status == "claimed" => {
            if e.claimed_by.as_deref() == Some(by) {
                return Ok(e);
            }
            return Err(HandoffError::Conflict(format!(
                "the conversation is already handled by {}",
                e.claimed_by.unwrap_or_default()
            )));
        }
        Some(e) => e,
        None => {
            let key = format!("admin:{}", Uuid::now_v7());
            let (e, _) = open(
                tx,
                &EscalationRequest {
                    conversation,
                    trigger: "admin",
                    reason: "a colleague took over the conversation",
                    summary: "",
                    request_key: &key,
                    after_hours: false,
                    remind_at: None,
                },
            )
            .await?;
            e
        }
    };
    let row = sqlx::query(&format!(
        "UPDATE escalations SET status = 'claimed', claimed_by = $2, claimed_at = now(),
                next_reminder_at = NULL
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(escalation.id)
    .bind(by)
    .fetch_one(tx.conn())
    .await?;
    sqlx::query("UPDATE conversations SET handoff_state = 'human', status = 'open' WHERE id = $1")
        .bind(conversation.0)
        .execute(tx.conn())
        .await?;
    Ok(escalation_from(&row)?)
}

/// What a human reply wrote.
#[derive(Clone, Debug)]
pub struct HumanReplied {
    pub message: MessageId,
    /// False when the client key was used before: nothing new was written.
    pub created: bool,
    /// The escalation the reply claimed, when the conversation was not yet the human's.
    pub claimed: Option<Escalation>,
}

/// A human reply: stored as a `human` message with its outbox row (it leaves through the
/// customer's own channel). A reply to a conversation that was not yet claimed claims it for
/// `by`. `client_key` makes a repeated API call harmless: the same key returns the first
/// message and sends nothing new.
pub async fn human_reply(
    tx: &mut TenantTx,
    conversation: ConversationId,
    by: &str,
    text: &str,
    client_key: Option<&str>,
) -> Result<HumanReplied, HandoffError> {
    let own = lock_conversation(tx, conversation).await?;
    let key = client_key.map(|k| format!("human:{conversation}:{k}"));
    if let Some(key) = &key {
        let existing: Option<Uuid> =
            sqlx::query_scalar("SELECT message_id FROM outbox WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(tx.conn())
                .await?
                .flatten();
        if let Some(m) = existing {
            return Ok(HumanReplied {
                message: MessageId(m),
                created: false,
                claimed: None,
            });
        }
    }
    let mut claimed = None;
    if own.state != HandoffState::Human {
        claimed = Some(claim(tx, conversation, by).await?);
    } else if let Some(e) = open_of(tx, conversation).await? {
        if e.claimed_by.as_deref().is_some_and(|c| c != by) {
            return Err(HandoffError::Conflict(format!(
                "the conversation is handled by {}",
                e.claimed_by.unwrap_or_default()
            )));
        }
    }
    let message = outgoing(
        tx,
        conversation,
        "human",
        text,
        json!({"author": by}),
        &key.unwrap_or_else(|| format!("human:{conversation}:{}", Uuid::now_v7())),
        None,
    )
    .await?;
    Ok(HumanReplied {
        message: message.0,
        created: true,
        claimed,
    })
}

/// Writes an outgoing message (agent, human or system role) with its outbox row addressed to
/// the conversation's customer. Returns `None` if `idempotency_key` was used before.
pub async fn outgoing(
    tx: &mut TenantTx,
    conversation: ConversationId,
    role: &str,
    text: &str,
    metadata: Value,
    idempotency_key: &str,
    choices: Option<&Value>,
) -> Result<(MessageId, Option<OutboxId>), DbError> {
    let tenant = tx.tenant_id();
    let r = sqlx::query(
        "SELECT c.channel_id, k.external_id FROM conversations c JOIN contacts k ON k.id = c.contact_id
          WHERE c.id = $1",
    )
    .bind(conversation.0)
    .fetch_one(tx.conn())
    .await?;
    let channel: Uuid = r.try_get("channel_id")?;
    let to: String = r.try_get("external_id")?;
    let choices = choices.filter(|c| c.as_array().is_some_and(|a| !a.is_empty()));
    let mut metadata = metadata;
    if let (Some(c), Some(m)) = (choices, metadata.as_object_mut()) {
        m.insert("choices".into(), c.clone());
    }
    let message_id = MessageId::new();
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, text, metadata)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(message_id.0)
    .bind(tenant.0)
    .bind(conversation.0)
    .bind(role)
    .bind(text)
    .bind(metadata)
    .execute(tx.conn())
    .await?;
    let outbox_id = OutboxId::new();
    let mut payload = json!({"kind": "text", "to": to, "text": text, "message_id": message_id});
    if let Some(c) = choices {
        payload["choices"] = c.clone();
    }
    let inserted = sqlx::query(
        "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id, idempotency_key, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(outbox_id.0)
    .bind(tenant.0)
    .bind(channel)
    .bind(conversation.0)
    .bind(message_id.0)
    .bind(idempotency_key)
    .bind(payload)
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DbError::Conflict(format!(
            "the message `{idempotency_key}` was already sent"
        )));
    }
    sqlx::query("UPDATE conversations SET last_message_at = now() WHERE id = $1")
        .bind(conversation.0)
        .execute(tx.conn())
        .await?;
    Ok((message_id, Some(outbox_id)))
}

/// `metadata.event` of the message that tells a customer the agent gave up on their message
/// after repeated technical failures.
pub const TECHNICAL_HOLDING_EVENT: &str = "technical_holding";

/// Like [`outgoing`], but once per `idempotency_key`: when the key was used before, nothing is
/// written and `None` is returned. Call it with the conversation row locked — every writer of
/// such keys does — so the check cannot race; the outbox's unique key stays the backstop.
pub async fn outgoing_once(
    tx: &mut TenantTx,
    conversation: ConversationId,
    role: &str,
    text: &str,
    metadata: Value,
    idempotency_key: &str,
) -> Result<Option<(MessageId, OutboxId)>, DbError> {
    let used: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = $1)")
            .bind(idempotency_key)
            .fetch_one(tx.conn())
            .await?;
    if used {
        return Ok(None);
    }
    let (message, outbox) = outgoing(
        tx,
        conversation,
        role,
        text,
        metadata,
        idempotency_key,
        None,
    )
    .await?;
    Ok(outbox.map(|o| (message, o)))
}

/// Whether the last thing said to the customer (by the agent or a human) is a technical
/// holding message: they were told of a failure and nobody has spoken to them since.
pub async fn told_of_technical_failure(
    tx: &mut TenantTx,
    conversation: ConversationId,
) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce((SELECT metadata->>'event' = $2 FROM messages
                           WHERE conversation_id = $1 AND role IN ('agent', 'human')
                           ORDER BY seq DESC LIMIT 1), false)",
    )
    .bind(conversation.0)
    .bind(TECHNICAL_HOLDING_EVENT)
    .fetch_one(tx.conn())
    .await?)
}

/// The human gives the conversation back to the bot. `note` (or, without one, a digest of what
/// was said while the human owned it) is recorded as a `system` message in the transcript and
/// told to the bot once when it resumes. Handing back a conversation the bot already owns is a
/// conflict, so a repeated call cannot loop.
pub async fn hand_back(
    tx: &mut TenantTx,
    conversation: ConversationId,
    by: &str,
    note: Option<&str>,
) -> Result<Escalation, HandoffError> {
    let own = lock_conversation(tx, conversation).await?;
    if own.state == HandoffState::Bot {
        return Err(HandoffError::Conflict(
            "the bot already owns this conversation".into(),
        ));
    }
    let Some(escalation) = open_of(tx, conversation).await? else {
        return Err(HandoffError::Conflict(
            "the conversation has no open escalation".into(),
        ));
    };
    let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("A colleague ({by}) handled the conversation and handed it back: {n}"),
        None => digest_since(tx, conversation, escalation.created_at, by).await?,
    };
    let note: String = note.chars().take(2000).collect();
    let row = sqlx::query(&format!(
        "UPDATE escalations SET status = 'resolved', resolved_at = now(), handback_note = $2,
                next_reminder_at = NULL
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(escalation.id)
    .bind(&note)
    .fetch_one(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE conversations SET handoff_state = 'bot', failed_answers = 0, handback_note = $2
          WHERE id = $1",
    )
    .bind(conversation.0)
    .bind(&note)
    .execute(tx.conn())
    .await?;
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, text, metadata)
         VALUES ($1, $2, $3, 'system', $4, $5)",
    )
    .bind(MessageId::new().0)
    .bind(tenant.0)
    .bind(conversation.0)
    .bind(&note)
    .bind(json!({"event": "handback", "by": by, "escalation_id": escalation.id}))
    .execute(tx.conn())
    .await?;
    Ok(escalation_from(&row)?)
}

/// A short account of the human part of the conversation, for the bot.
async fn digest_since(
    tx: &mut TenantTx,
    conversation: ConversationId,
    since: DateTime<Utc>,
    by: &str,
) -> Result<String, DbError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT role, text FROM messages
          WHERE conversation_id = $1 AND created_at >= $2 AND role IN ('customer', 'human')
          ORDER BY seq DESC LIMIT 6",
    )
    .bind(conversation.0)
    .bind(since)
    .fetch_all(tx.conn())
    .await?;
    let mut lines: Vec<String> = rows
        .into_iter()
        .rev()
        .map(|(role, text)| {
            let who = if role == "human" {
                "colleague"
            } else {
                "customer"
            };
            let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let t: String = t.chars().take(200).collect();
            format!("{who}: {t}")
        })
        .collect();
    if lines.is_empty() {
        lines.push("(no messages were exchanged)".into());
    }
    Ok(format!(
        "A colleague ({by}) handled the conversation and handed it back. Last exchange: {}",
        lines.join(" | ")
    ))
}

/// Closes the conversation: any open escalation is resolved and the bot owns it again (a new
/// customer message reopens it). Returns the escalations it resolved.
pub async fn close(
    tx: &mut TenantTx,
    conversation: ConversationId,
    by: &str,
) -> Result<Vec<Uuid>, HandoffError> {
    lock_conversation(tx, conversation).await?;
    let resolved: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE escalations SET status = 'resolved', resolved_at = now(), next_reminder_at = NULL,
                handback_note = COALESCE(handback_note, $2)
          WHERE conversation_id = $1 AND status <> 'resolved' RETURNING id",
    )
    .bind(conversation.0)
    .bind(format!("closed by {by}"))
    .fetch_all(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE conversations SET status = 'closed', handoff_state = 'bot', failed_answers = 0
          WHERE id = $1",
    )
    .bind(conversation.0)
    .execute(tx.conn())
    .await?;
    Ok(resolved)
}

/// Locks a waiting escalation whose reminder is due and counts the reminder; `None` when it was
/// claimed, resolved or reminded meanwhile. `next` is when to remind again (`None`: never).
///
/// The conversation's row is locked first, as every writer of a conversation's messages does
/// (and in the order [`open`] and [`claim`] take them): the reminder the caller writes to the
/// customer can then never commit after a later message of the conversation.
pub async fn take_reminder(
    tx: &mut TenantTx,
    id: Uuid,
    next: impl FnOnce(i32) -> Option<DateTime<Utc>>,
) -> Result<Option<Escalation>, DbError> {
    let locked = sqlx::query(
        "SELECT c.id FROM escalations e JOIN conversations c ON c.id = e.conversation_id
          WHERE e.id = $1 FOR UPDATE OF c",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM escalations
          WHERE id = $1 AND status = 'waiting' AND next_reminder_at <= now() FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let e = escalation_from(&row)?;
    let next_at = next(e.notifications);
    let row = sqlx::query(&format!(
        "UPDATE escalations SET notifications = notifications + 1, next_reminder_at = $2
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(next_at)
    .fetch_one(tx.conn())
    .await?;
    Ok(Some(escalation_from(&row)?))
}
