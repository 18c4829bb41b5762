//! The inbox list of a sales team: conversations with what a list row shows (last message, open
//! escalation, who handles it, the customer's lead score) and the filters people work with, in
//! one query — no per-row lookups — paged by a `(last_message_at, id)` cursor along the
//! `conversations_inbox` index.
//!
//! Who handles a conversation is the `claimed_by` of its open escalation: the name the claim
//! recorded for its author (a person's display name or email, an API key's label), the same
//! name the handoff state machine uses to tell colleagues apart.
//!
//! One conversation as the team opens it: its [`conversation`] header (channel, owner,
//! customer), also what escalation notices say about the customer, and its [`transcript`] with
//! each outgoing message's delivery as the provider reported it.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, ConversationId};

/// Where a conversation stands, as the inbox filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxState {
    /// Open, the bot answers.
    Bot,
    /// Open, escalated, nobody has claimed it.
    Waiting,
    /// Open, a human owns it.
    Human,
    /// Closed (whoever owned it).
    Closed,
}

impl InboxState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bot" => Some(InboxState::Bot),
            "waiting" => Some(InboxState::Waiting),
            "human" => Some(InboxState::Human),
            "closed" => Some(InboxState::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Bot => "bot",
            InboxState::Waiting => "waiting",
            InboxState::Human => "human",
            InboxState::Closed => "closed",
        }
    }
}

/// The filters of the list; `None` means "any".
#[derive(Clone, Debug, Default)]
pub struct InboxFilter<'a> {
    /// The conversation's `handoff_state` whatever its status (the older filter).
    pub handoff_state: Option<&'a str>,
    pub state: Option<InboxState>,
    pub channel: Option<ChannelId>,
    /// Only conversations whose open escalation is claimed by this name.
    pub claimed_by: Option<&'a str>,
    /// The customer's language as the agent last detected it (`en`, `ar`).
    pub language: Option<&'a str>,
    /// Only conversations whose last activity is before this cursor: `last_message_at`, and
    /// the id that breaks ties at that instant.
    pub before: Option<(DateTime<Utc>, Option<Uuid>)>,
    /// 1 to 1000.
    pub limit: i64,
}

/// One row of the list.
#[derive(Clone, Debug)]
pub struct InboxRow {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub channel_kind: String,
    pub channel_name: String,
    pub status: String,
    pub handoff_state: String,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub language: Option<String>,
    pub contact_external_id: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub lead_score: Option<i32>,
    /// The last customer, agent or human message: role, its first 200 characters, time.
    pub last_message: Option<(String, String, DateTime<Utc>)>,
    pub escalation: Option<OpenEscalation>,
}

/// The open escalation of a listed conversation.
#[derive(Clone, Debug)]
pub struct OpenEscalation {
    pub id: Uuid,
    pub reason: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
}

const LIST: &str = "
SELECT c.id, c.channel_id, ch.kind, ch.name AS channel_name, c.status, c.handoff_state,
       c.created_at, c.last_message_at, c.language,
       k.external_id, k.display_name, k.email, k.lead_score,
       lm.role AS last_role, lm.text AS last_text, lm.created_at AS last_at,
       e.id AS escalation_id, e.reason AS escalation_reason, e.status AS escalation_status,
       e.created_at AS escalation_created_at, e.claimed_by
  FROM conversations c
  JOIN channels ch ON ch.id = c.channel_id
  JOIN contacts k ON k.id = c.contact_id
  LEFT JOIN escalations e ON e.conversation_id = c.id AND e.status <> 'resolved'
  LEFT JOIN LATERAL (
        SELECT m.role, left(m.text, 200) AS text, m.created_at FROM messages m
         WHERE m.conversation_id = c.id AND m.role <> 'system'
         ORDER BY m.seq DESC LIMIT 1) lm ON true
 WHERE ($1::text IS NULL OR c.handoff_state = $1)
   AND ($2::uuid IS NULL OR c.channel_id = $2)
   AND ($3::text IS NULL
        OR ($3 = 'closed' AND c.status = 'closed')
        OR ($3 <> 'closed' AND c.status = 'open' AND c.handoff_state = $3))
   AND ($4::text IS NULL OR (e.status = 'claimed' AND e.claimed_by = $4))
   AND ($5::text IS NULL OR c.language = $5)
   AND ($6::timestamptz IS NULL OR c.last_message_at < $6
        OR ($7::uuid IS NOT NULL AND c.last_message_at = $6 AND c.id < $7))
 ORDER BY c.last_message_at DESC, c.id DESC
 LIMIT $8";

/// The conversations of the current tenant that pass `filter`, newest activity first.
pub async fn conversations(
    tx: &mut TenantTx,
    filter: &InboxFilter<'_>,
) -> Result<Vec<InboxRow>, DbError> {
    let rows = sqlx::query(LIST)
        .bind(filter.handoff_state)
        .bind(filter.channel.map(|c| c.0))
        .bind(filter.state.map(InboxState::as_str))
        .bind(filter.claimed_by)
        .bind(filter.language)
        .bind(filter.before.map(|b| b.0))
        .bind(filter.before.and_then(|b| b.1))
        .bind(filter.limit.clamp(1, 1000))
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| {
            let last_role: Option<String> = r.try_get("last_role")?;
            let escalation_id: Option<Uuid> = r.try_get("escalation_id")?;
            Ok(InboxRow {
                id: r.try_get("id")?,
                channel_id: r.try_get("channel_id")?,
                channel_kind: r.try_get("kind")?,
                channel_name: r.try_get("channel_name")?,
                status: r.try_get("status")?,
                handoff_state: r.try_get("handoff_state")?,
                created_at: r.try_get("created_at")?,
                last_message_at: r.try_get("last_message_at")?,
                language: r.try_get("language")?,
                contact_external_id: r.try_get("external_id")?,
                contact_name: r.try_get("display_name")?,
                contact_email: r.try_get("email")?,
                lead_score: r.try_get("lead_score")?,
                last_message: match last_role {
                    Some(role) => Some((role, r.try_get("last_text")?, r.try_get("last_at")?)),
                    None => None,
                },
                escalation: match escalation_id {
                    Some(id) => Some(OpenEscalation {
                        id,
                        reason: r.try_get("escalation_reason")?,
                        status: r.try_get("escalation_status")?,
                        created_at: r.try_get("escalation_created_at")?,
                        claimed_by: r.try_get("claimed_by")?,
                    }),
                    None => None,
                },
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// One conversation with its channel and customer.
#[derive(Clone, Debug)]
pub struct ConversationHeader {
    pub id: Uuid,
    pub channel_kind: String,
    /// `open` or `closed`.
    pub status: String,
    /// `bot`, `waiting` or `human`.
    pub handoff_state: String,
    pub created_at: DateTime<Utc>,
    pub contact_external_id: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
}

/// The conversation `id` of the current tenant, if it exists.
pub async fn conversation(
    tx: &mut TenantTx,
    id: ConversationId,
) -> Result<Option<ConversationHeader>, DbError> {
    let row = sqlx::query(
        "SELECT c.id, ch.kind, c.status, c.handoff_state, c.created_at, k.external_id,
                k.display_name, k.email
           FROM conversations c JOIN channels ch ON ch.id = c.channel_id
           JOIN contacts k ON k.id = c.contact_id WHERE c.id = $1",
    )
    .bind(id.0)
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(ConversationHeader {
        id: r.try_get("id")?,
        channel_kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        handoff_state: r.try_get("handoff_state")?,
        created_at: r.try_get("created_at")?,
        contact_external_id: r.try_get("external_id")?,
        contact_name: r.try_get("display_name")?,
        contact_email: r.try_get("email")?,
    }))
}

/// One message of a transcript.
#[derive(Clone, Debug)]
pub struct TranscriptEntry {
    pub id: Uuid,
    /// `customer`, `agent`, `human` or `system`.
    pub role: String,
    pub text: String,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Human replies: the name the reply recorded.
    pub author: Option<String>,
    /// Outgoing messages: `queued` (not yet handed to the provider), `sent`, `delivered`,
    /// `read` (as the provider reports them) or `failed`.
    pub delivery: Option<String>,
    /// Why the delivery failed, when it did.
    pub delivery_error: Option<String>,
}

/// The first `limit` messages of conversation `id`, oldest first.
pub async fn transcript(
    tx: &mut TenantTx,
    id: ConversationId,
    limit: i64,
) -> Result<Vec<TranscriptEntry>, DbError> {
    let rows = sqlx::query(
        "SELECT m.id, m.role, m.text, m.metadata, m.created_at,
                CASE WHEN m.role = 'human' THEN m.metadata->>'author' END AS author,
                CASE WHEN o.status = 'failed' THEN 'failed'
                     WHEN o.delivery_status IS NOT NULL THEN o.delivery_status
                     WHEN o.status IN ('pending', 'sending') THEN 'queued'
                     ELSE o.status END AS delivery,
                CASE WHEN o.status = 'failed' OR o.delivery_status = 'failed'
                     THEN COALESCE(o.delivery_error, o.last_error) END AS delivery_error
           FROM messages m LEFT JOIN outbox o ON o.message_id = m.id
          WHERE m.conversation_id = $1 ORDER BY m.seq LIMIT $2",
    )
    .bind(id.0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|m| {
            Ok(TranscriptEntry {
                id: m.try_get("id")?,
                role: m.try_get("role")?,
                text: m.try_get("text")?,
                metadata: m.try_get("metadata")?,
                created_at: m.try_get("created_at")?,
                author: m.try_get("author")?,
                delivery: m.try_get("delivery")?,
                delivery_error: m.try_get("delivery_error")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_as_written() {
        for s in ["bot", "waiting", "human", "closed"] {
            assert_eq!(InboxState::parse(s).map(InboxState::as_str), Some(s));
        }
        assert_eq!(InboxState::parse("open"), None);
        assert_eq!(InboxState::parse("Bot"), None);
    }
}
