//! The inbox: list conversations, read a transcript, reply as a human (the reply leaves through
//! the customer's own channel), claim, hand back, close, and the escalations with their
//! notifications.
//!
//! The author of a reply, claim or hand-back is the caller — the signed-in person, the API key,
//! or the platform administrator — never a name in the body; the handoff state machine uses it
//! to tell colleagues apart (claiming someone else's conversation is a 409).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_actors::inbox::{ConversationReason, EscalationStatus, InboxEvent};
use switchboard_core::store::effects::{self, Attempt, EffectFilter, EffectKind};
use switchboard_core::store::handoff::{self, Escalation, EscalationItem, HandoffError};
use switchboard_core::store::inbox::{self, InboxFilter, InboxState};
use switchboard_core::{ChannelId, ConversationId, MessageId};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `bot`, `waiting` or `human`: the conversation's owner, open or closed.
    handoff_state: Option<String>,
    /// `bot`, `waiting` or `human` (open conversations with that owner) or `closed`.
    state: Option<String>,
    /// Only this channel (its id).
    channel: Option<String>,
    /// `me`: conversations whose open escalation is claimed by the caller (the name a claim
    /// records: a person's display name or email, an API key's label).
    assigned: Option<String>,
    /// The customer's language as the agent last detected it (`en`, `ar`).
    language: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<String>,
    /// Paging: only conversations whose `last_message_at` is before this RFC 3339 time (the
    /// last row's `last_message_at`).
    before: Option<String>,
    /// Paging, with `before`: the last row's `id`, so rows at the same instant are not skipped.
    before_id: Option<String>,
}

/// Conversations, newest activity first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
}

/// A conversation in the inbox list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationSummary {
    pub id: Uuid,
    pub channel_id: Uuid,
    /// The channel's kind.
    pub channel: String,
    pub channel_name: String,
    /// `open` or `closed`.
    pub status: String,
    /// `bot`, `waiting` or `human`.
    pub handoff_state: String,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub contact: ContactRef,
    /// The last customer, agent or human message (system notes are left out).
    pub last_message: Option<LastMessage>,
    /// When the open escalation started, while it waits for a human.
    pub waiting_since: Option<DateTime<Utc>>,
    /// The open escalation, if any.
    pub escalation: Option<EscalationRef>,
    /// Who handles the conversation: the name its claim recorded.
    pub assigned_to: Option<String>,
    /// The customer's language as the agent last detected it (`en`, `ar`); `null` before the
    /// agent's first turn.
    pub language: Option<String>,
}

/// The last message of a conversation, shortened.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessage {
    /// `customer`, `agent` or `human`.
    pub role: String,
    /// Its first 200 characters.
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A conversation's open escalation, as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationRef {
    pub id: Uuid,
    pub reason: String,
    /// `waiting` or `claimed`.
    pub status: String,
    /// The customer's lead score (0–100), when they are a lead.
    pub lead_score: Option<i32>,
}

/// The customer of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactRef {
    /// The customer's address on the channel (phone number, chat id, session id, …).
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// A conversation with its transcript and its open escalation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetail {
    pub id: ConversationId,
    pub channel: String,
    pub status: String,
    pub handoff_state: String,
    pub created_at: DateTime<Utc>,
    pub contact: ContactRef,
    /// The open escalation, if any.
    pub escalation: Option<Escalation>,
    /// Oldest first (at most 2000).
    pub messages: Vec<TranscriptMessage>,
}

/// One message of a transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct TranscriptMessage {
    pub id: Uuid,
    /// `customer`, `agent`, `human` or `system`.
    pub role: String,
    pub text: String,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    /// Human replies: who wrote it (the name the reply recorded).
    pub author: Option<String>,
    /// Outgoing messages: `queued` (not yet handed to the provider), `sent`, `delivered`,
    /// `read` (as the provider reports them) or `failed`.
    pub delivery: Option<String>,
    /// Why the delivery failed, when it did.
    pub delivery_error: Option<String>,
}

/// A human reply, queued for the customer's channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplyQueued {
    pub message_id: MessageId,
    /// True when this `client_message_id` was sent before: nothing new was queued.
    pub duplicate: bool,
    /// Always `human`: the bot stays silent until the conversation is handed back.
    pub handoff_state: &'static str,
}

/// Who owns the conversation now, and its escalation.
#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffChanged {
    /// `human` after a claim, `bot` after a hand-back.
    pub handoff_state: &'static str,
    pub escalation: Escalation,
}

/// A closed conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Closed {
    /// Always `closed`.
    pub status: &'static str,
    /// Always `bot`.
    pub handoff_state: &'static str,
}

/// Escalations, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationList {
    pub escalations: Vec<EscalationItem>,
}

/// An escalation with the notifications it sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationDetail {
    pub escalation: Escalation,
    pub notifications: Vec<Notification>,
}

/// A notification of the sales team (email, Telegram) and its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: EffectKind,
    pub purpose: String,
    pub status: String,
    pub attempts: Vec<Attempt>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse::<Uuid>()
        .map(ConversationId)
        .map_err(|_| ApiError::bad_request("invalid_id", "the conversation id is not a UUID"))
}

impl From<HandoffError> for ApiError {
    fn from(e: HandoffError) -> Self {
        match e {
            HandoffError::NotFound(m) => ApiError::not_found(m),
            HandoffError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "handoff_conflict", m),
            HandoffError::Db(e) => e.into(),
        }
    }
}

/// `GET /api/v1/conversations`: newest activity first, with who owns each.
#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    summary = "Lists conversations, newest activity first, with who owns each.",
    tag = "inbox",
    params(ListParams),
    responses(
        (status = 200, description = "Conversations, newest activity first", body = ConversationList),
        (status = 400, description = "`invalid_handoff_state`, `invalid_state`, `invalid_channel`, `invalid_assigned`, `invalid_language`, `invalid_limit` or `invalid_before`"),
    )
)]
pub async fn list(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<ConversationList>, ApiError> {
    let tenant = scope.tenant_id();
    let claimant = author(&scope);
    let filter = list_filter(&p, &claimant)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let rows = inbox::conversations(&mut tx, &filter).await?;
    tx.commit().await?;
    let list = rows
        .into_iter()
        .map(|r| {
            let escalation = r.escalation;
            ConversationSummary {
                id: r.id,
                channel_id: r.channel_id,
                channel: r.channel_kind,
                channel_name: r.channel_name,
                status: r.status,
                handoff_state: r.handoff_state,
                created_at: r.created_at,
                last_message_at: r.last_message_at,
                contact: ContactRef {
                    external_id: r.contact_external_id,
                    name: r.contact_name,
                    email: r.contact_email,
                },
                last_message: r
                    .last_message
                    .map(|(role, text, at)| LastMessage { role, text, at }),
                waiting_since: escalation
                    .as_ref()
                    .filter(|e| e.status == "waiting")
                    .map(|e| e.created_at),
                assigned_to: escalation.as_ref().and_then(|e| e.claimed_by.clone()),
                escalation: escalation.map(|e| EscalationRef {
                    id: e.id,
                    reason: e.reason,
                    status: e.status,
                    lead_score: r.lead_score,
                }),
                language: r.language,
            }
        })
        .collect();
    Ok(Json(ConversationList {
        conversations: list,
    }))
}

/// Reads the list's parameters; every malformed one is a 400 naming it.
fn list_filter<'a>(p: &'a ListParams, me: &'a str) -> Result<InboxFilter<'a>, ApiError> {
    let given = |v: &'a Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let handoff_state = given(&p.handoff_state);
    if handoff_state.is_some_and(|s| !["bot", "waiting", "human"].contains(&s)) {
        return Err(ApiError::bad_request(
            "invalid_handoff_state",
            "handoff_state is one of bot, waiting, human",
        ));
    }
    let state = given(&p.state)
        .map(|s| {
            InboxState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    "state is one of bot, waiting, human, closed",
                )
            })
        })
        .transpose()?;
    let channel = given(&p.channel)
        .map(|c| {
            c.parse::<ChannelId>().map_err(|_| {
                ApiError::bad_request("invalid_channel", "`channel` must be a channel id (a UUID)")
            })
        })
        .transpose()?;
    let claimed_by = match given(&p.assigned) {
        None => None,
        Some("me") => Some(me),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_assigned",
                "assigned accepts only `me`",
            ))
        }
    };
    let language = given(&p.language);
    if language
        .is_some_and(|l| l.len() > 16 || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(ApiError::bad_request(
            "invalid_language",
            "language is a language code such as en or ar",
        ));
    }
    let limit = match given(&p.limit) {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_limit", "limit is a whole number from 1 to 1000")
            })?,
    };
    let bad_before = || {
        ApiError::bad_request(
            "invalid_before",
            "before is an RFC 3339 time (a row's last_message_at) and before_id a conversation id",
        )
    };
    let before = match (given(&p.before), given(&p.before_id)) {
        (None, None) => None,
        (None, Some(_)) => return Err(bad_before()),
        (Some(t), id) => {
            let at = DateTime::parse_from_rfc3339(t)
                .map_err(|_| bad_before())?
                .with_timezone(&Utc);
            let id = id
                .map(|i| i.parse::<Uuid>().map_err(|_| bad_before()))
                .transpose()?;
            Some((at, id))
        }
    };
    Ok(InboxFilter {
        handoff_state,
        state,
        channel,
        claimed_by,
        language,
        before,
        limit,
    })
}

/// `GET /api/v1/conversations/{id}`: the conversation, its transcript (oldest first) and its
/// open escalation.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{conversation_id}",
    tag = "inbox",
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation, its transcript and its open escalation", body = ConversationDetail),
        (status = 400, description = "`invalid_id`: the id is not a UUID"),
        (status = 404, description = "No conversation has this id"),
    )
)]
pub async fn show(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let conv = inbox::conversation(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
    let messages = inbox::transcript(&mut tx, id, 2000).await?;
    let escalation = handoff::open_of(&mut tx, id).await?;
    tx.commit().await?;
    let transcript = messages
        .into_iter()
        .map(|m| TranscriptMessage {
            id: m.id,
            role: m.role,
            text: m.text,
            metadata: m.metadata,
            created_at: m.created_at,
            author: m.author,
            delivery: m.delivery,
            delivery_error: m.delivery_error,
        })
        .collect();
    Ok(Json(ConversationDetail {
        id,
        channel: conv.channel_kind,
        status: conv.status,
        handoff_state: conv.handoff_state,
        created_at: conv.created_at,
        contact: ContactRef {
            external_id: conv.contact_external_id,
            name: conv.contact_name,
            email: conv.contact_email,
        },
        escalation,
        messages: transcript,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanReply {
    /// 1 to 4000 characters.
    text: String,
    /// Makes a retried call harmless: the same id sends nothing new.
    #[serde(default)]
    client_message_id: Option<String>,
}

/// The hints of a handoff transition: the escalation's new status, and the conversation's new
/// owner.
fn handoff_hints(e: &Escalation, status: EscalationStatus) -> [InboxEvent; 2] {
    [
        InboxEvent::escalation(e.id, e.conversation_id, status),
        InboxEvent::conversation(e.conversation_id, ConversationReason::State),
    ]
}

/// Who acts, as transcripts name them: the signed-in person, the API key, or the platform
/// administrator — never a name the request makes up.
fn author(scope: &Scope) -> String {
    scope.caller.actor().label.chars().take(100).collect()
}

/// `POST /api/v1/conversations/{id}/messages`: a human's reply to the customer. Claims the
/// conversation if nobody had; the bot stays silent until it is handed back.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{conversation_id}/messages",
    tag = "inbox",
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    request_body = HumanReply,
    responses(
        (status = 202, description = "Queued for the customer's channel", body = ReplyQueued),
        (status = 200, description = "Sent before with this `client_message_id`: nothing new queued", body = ReplyQueued),
        (status = 400, description = "`invalid_id`: the id is not a UUID"),
        (status = 404, description = "No conversation has this id"),
        (status = 409, description = "`handoff_conflict`: a colleague owns the conversation, or it is closed"),
        (status = 422, description = "`invalid_text` or `invalid_client_message_id`"),
    )
)]
pub async fn reply(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HumanReply>,
) -> Result<(StatusCode, Json<ReplyQueued>), ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    let by = author(&scope);
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_text",
            "text must be 1 to 4000 characters",
        ));
    }
    if body
        .client_message_id
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 200)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_client_message_id",
            "client_message_id must be 1 to 200 characters",
        ));
    }
    let mut tx = state.services.db.tenant(tenant).await?;
    let replied =
        handoff::human_reply(&mut tx, id, &by, text, body.client_message_id.as_deref()).await?;
    tx.commit().await?;
    let (message, created) = (replied.message, replied.created);
    if created {
        state.services.outbox_kick.notify_one();
        let mut hints = vec![InboxEvent::conversation(id, ConversationReason::Message)];
        if let Some(e) = &replied.claimed {
            hints.extend(handoff_hints(e, EscalationStatus::Claimed));
        }
        state.services.inbox.publish_all(tenant, hints);
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ReplyQueued {
            message_id: message,
            duplicate: !created,
            handoff_state: "human",
        }),
    ))
}

/// An optional body; an empty one is the defaults.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ByWhom {
    /// Hand-back only: what the bot should know (without it, a digest of the exchange).
    #[serde(default)]
    note: Option<String>,
}

/// An optional JSON body: empty means the defaults.
fn by_whom(body: &[u8]) -> Result<ByWhom, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ByWhom::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })
}

/// `POST /api/v1/conversations/{id}/claim`: a human takes the conversation.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{conversation_id}/claim",
    tag = "inbox",
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    request_body(content = Option<ByWhom>, description = "Optional; empty is fine"),
    responses(
        (status = 200, description = "The caller owns the conversation", body = HandoffChanged),
        (status = 400, description = "`invalid_id` or `invalid_json`"),
        (status = 404, description = "No conversation has this id"),
        (status = 409, description = "`handoff_conflict`: a colleague owns it"),
    )
)]
pub async fn claim(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<HandoffChanged>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    by_whom(&body)?;
    let by = author(&scope);
    let mut tx = state.services.db.tenant(tenant).await?;
    let e = handoff::claim(&mut tx, id, &by).await?;
    tx.commit().await?;
    super::webchat::wake_conversation(&state, tenant, id).await;
    state
        .services
        .inbox
        .publish_all(tenant, handoff_hints(&e, EscalationStatus::Claimed));
    Ok(Json(HandoffChanged {
        handoff_state: "human",
        escalation: e,
    }))
}

/// `POST /api/v1/conversations/{id}/handback`: the bot takes over again, told what happened.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{conversation_id}/handback",
    tag = "inbox",
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    request_body(content = Option<ByWhom>, description = "Optional `note` for the bot (at most 2000 characters)"),
    responses(
        (status = 200, description = "The bot owns the conversation again", body = HandoffChanged),
        (status = 400, description = "`invalid_id` or `invalid_json`"),
        (status = 404, description = "No conversation has this id"),
        (status = 409, description = "`handoff_conflict`: the bot already owns it"),
        (status = 422, description = "`invalid_note`: the note is too long"),
    )
)]
pub async fn hand_back(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<HandoffChanged>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    let body = by_whom(&body)?;
    let by = author(&scope);
    if body
        .note
        .as_deref()
        .is_some_and(|n| n.chars().count() > 2000)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            "note must be at most 2000 characters",
        ));
    }
    let mut tx = state.services.db.tenant(tenant).await?;
    let e = handoff::hand_back(&mut tx, id, &by, body.note.as_deref()).await?;
    tx.commit().await?;
    super::webchat::wake_conversation(&state, tenant, id).await;
    state
        .services
        .inbox
        .publish_all(tenant, handoff_hints(&e, EscalationStatus::Resolved));
    Ok(Json(HandoffChanged {
        handoff_state: "bot",
        escalation: e,
    }))
}

/// `POST /api/v1/conversations/{id}/close`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{conversation_id}/close",
    summary = "Closes a conversation (its escalation is resolved).",
    tag = "inbox",
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    request_body(content = Option<ByWhom>, description = "Optional; empty is fine"),
    responses(
        (status = 200, description = "Closed; its escalation is resolved", body = Closed),
        (status = 400, description = "`invalid_id` or `invalid_json`"),
        (status = 404, description = "No conversation has this id"),
        (status = 409, description = "`handoff_conflict`"),
    )
)]
pub async fn close(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Closed>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    by_whom(&body)?;
    let by = author(&scope);
    let mut tx = state.services.db.tenant(tenant).await?;
    let resolved = handoff::close(&mut tx, id, &by).await?;
    tx.commit().await?;
    super::webchat::wake_conversation(&state, tenant, id).await;
    let mut hints: Vec<InboxEvent> = resolved
        .into_iter()
        .map(|e| InboxEvent::escalation(e, id, EscalationStatus::Resolved))
        .collect();
    hints.push(InboxEvent::conversation(id, ConversationReason::State));
    state.services.inbox.publish_all(tenant, hints);
    Ok(Json(Closed {
        status: "closed",
        handoff_state: "bot",
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EscalationParams {
    /// `waiting`, `claimed` or `resolved`.
    status: Option<String>,
    /// At most this many (default 100).
    limit: Option<i64>,
}

/// `GET /api/v1/escalations`: newest first (`status`: waiting, claimed, resolved).
#[utoipa::path(
    get,
    path = "/api/v1/escalations",
    summary = "Lists escalations, newest first.",
    tag = "inbox",
    params(EscalationParams),
    responses(
        (status = 200, description = "Escalations, newest first", body = EscalationList),
        (status = 400, description = "`invalid_status`"),
    )
)]
pub async fn list_escalations(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<EscalationParams>,
) -> Result<Json<EscalationList>, ApiError> {
    let tenant = scope.tenant_id();
    if let Some(s) = p.status.as_deref() {
        if !["waiting", "claimed", "resolved"].contains(&s) {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is one of waiting, claimed, resolved",
            ));
        }
    }
    let mut tx = state.services.db.tenant(tenant).await?;
    let list = handoff::list_items(&mut tx, p.status.as_deref(), p.limit.unwrap_or(100)).await?;
    tx.commit().await?;
    Ok(Json(EscalationList { escalations: list }))
}

/// `GET /api/v1/escalations/{id}`: one escalation with its notifications and their attempts.
#[utoipa::path(
    get,
    path = "/api/v1/escalations/{escalation_id}",
    tag = "inbox",
    params(("escalation_id" = String, Path, description = "The escalation's id")),
    responses(
        (status = 200, description = "The escalation, its notifications and their attempts", body = EscalationDetail),
        (status = 400, description = "`invalid_id`: the id is not a UUID"),
        (status = 404, description = "No escalation has this id"),
    )
)]
pub async fn show_escalation(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EscalationDetail>, ApiError> {
    let tenant = scope.tenant_id();
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "the escalation id is not a UUID"))?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let e = handoff::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no escalation {id}")))?;
    let all = effects::list(
        &mut tx,
        &EffectFilter {
            conversation: Some(e.conversation_id),
            limit: 200,
            ..Default::default()
        },
    )
    .await?;
    let prefix = format!("escalation:{id}:");
    let mut notifications = Vec::new();
    for n in all
        .into_iter()
        .filter(|n| n.idempotency_key.starts_with(&prefix))
    {
        let attempts = effects::attempts(&mut tx, n.id).await?;
        notifications.push(Notification {
            id: n.id,
            kind: n.kind,
            purpose: n.purpose,
            status: n.status,
            attempts,
            last_error: n.last_error,
            created_at: n.created_at,
            done_at: n.done_at,
        });
    }
    tx.commit().await?;
    Ok(Json(EscalationDetail {
        escalation: e,
        notifications,
    }))
}
