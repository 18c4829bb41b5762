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
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use switchboard_core::store::effects::{self, EffectFilter};
use switchboard_core::store::handoff::{self, HandoffError};
use switchboard_core::{ConversationId, DbError};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    /// `bot`, `waiting` or `human`.
    handoff_state: Option<String>,
    limit: Option<i64>,
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
pub async fn list(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant_id();
    if let Some(s) = p.handoff_state.as_deref() {
        if !["bot", "waiting", "human"].contains(&s) {
            return Err(ApiError::bad_request(
                "invalid_handoff_state",
                "handoff_state is one of bot, waiting, human",
            ));
        }
    }
    let mut tx = state.services.db.tenant(tenant).await?;
    let rows = sqlx::query(
        "SELECT c.id, c.channel_id, ch.kind, c.status, c.handoff_state, c.created_at, c.last_message_at,
                k.external_id, k.display_name, k.email
           FROM conversations c JOIN channels ch ON ch.id = c.channel_id
           JOIN contacts k ON k.id = c.contact_id
          WHERE ($1::text IS NULL OR c.handoff_state = $1)
          ORDER BY c.last_message_at DESC, c.id DESC LIMIT $2",
    )
    .bind(p.handoff_state.as_deref())
    .bind(p.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    tx.commit().await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<Uuid, _>("id"),
                "channel_id": r.get::<Uuid, _>("channel_id"),
                "channel": r.get::<String, _>("kind"),
                "status": r.get::<String, _>("status"),
                "handoff_state": r.get::<String, _>("handoff_state"),
                "created_at": r.get::<chrono::DateTime<chrono::Utc>, _>("created_at"),
                "last_message_at": r.get::<chrono::DateTime<chrono::Utc>, _>("last_message_at"),
                "contact": {
                    "external_id": r.get::<String, _>("external_id"),
                    "name": r.get::<Option<String>, _>("display_name"),
                    "email": r.get::<Option<String>, _>("email"),
                },
            })
        })
        .collect();
    Ok(Json(json!({"conversations": list})))
}

/// `GET /api/v1/conversations/{id}`: the conversation, its transcript (oldest first) and its
/// open escalation.
pub async fn show(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let conv = sqlx::query(
        "SELECT c.id, ch.kind, c.status, c.handoff_state, c.created_at, k.external_id,
                k.display_name, k.email
           FROM conversations c JOIN channels ch ON ch.id = c.channel_id
           JOIN contacts k ON k.id = c.contact_id WHERE c.id = $1",
    )
    .bind(id.0)
    .fetch_optional(tx.conn())
    .await
    .map_err(DbError::from)?
    .ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
    let messages = sqlx::query(
        "SELECT m.id, m.role, m.text, m.metadata, m.created_at, o.status AS delivery
           FROM messages m LEFT JOIN outbox o ON o.message_id = m.id
          WHERE m.conversation_id = $1 ORDER BY m.seq LIMIT 2000",
    )
    .bind(id.0)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    let escalation = handoff::open_of(&mut tx, id).await?;
    tx.commit().await?;
    let transcript: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "id": m.get::<Uuid, _>("id"),
                "role": m.get::<String, _>("role"),
                "text": m.get::<String, _>("text"),
                "metadata": m.get::<Value, _>("metadata"),
                "created_at": m.get::<chrono::DateTime<chrono::Utc>, _>("created_at"),
                "delivery": m.get::<Option<String>, _>("delivery"),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "channel": conv.get::<String, _>("kind"),
        "status": conv.get::<String, _>("status"),
        "handoff_state": conv.get::<String, _>("handoff_state"),
        "created_at": conv.get::<chrono::DateTime<chrono::Utc>, _>("created_at"),
        "contact": {
            "external_id": conv.get::<String, _>("external_id"),
            "name": conv.get::<Option<String>, _>("display_name"),
            "email": conv.get::<Option<String>, _>("email"),
        },
        "escalation": escalation,
        "messages": transcript,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanReply {
    text: String,
    /// Makes a retried call harmless: the same id sends nothing new.
    #[serde(default)]
    client_message_id: Option<String>,
}

/// Who acts, as transcripts name them: the signed-in person, the API key, or the platform
/// administrator — never a name the request makes up.
fn author(scope: &Scope) -> String {
    scope.caller.actor().label.chars().take(100).collect()
}

/// `POST /api/v1/conversations/{id}/messages`: a human's reply to the customer. Claims the
/// conversation if nobody had; the bot stays silent until it is handed back.
pub async fn reply(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HumanReply>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let (message, created) =
        handoff::human_reply(&mut tx, id, &by, text, body.client_message_id.as_deref()).await?;
    tx.commit().await?;
    if created {
        state.services.outbox_kick.notify_one();
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"message_id": message, "duplicate": !created, "handoff_state": "human"})),
    ))
}

#[derive(Debug, Default, Deserialize)]
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
pub async fn claim(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    by_whom(&body)?;
    let by = author(&scope);
    let mut tx = state.services.db.tenant(tenant).await?;
    let e = handoff::claim(&mut tx, id, &by).await?;
    tx.commit().await?;
    Ok(Json(json!({"handoff_state": "human", "escalation": e})))
}

/// `POST /api/v1/conversations/{id}/handback`: the bot takes over again, told what happened.
pub async fn hand_back(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"handoff_state": "bot", "escalation": e})))
}

/// `POST /api/v1/conversations/{id}/close`.
pub async fn close(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant_id();
    let id = conversation_id(&id)?;
    by_whom(&body)?;
    let by = author(&scope);
    let mut tx = state.services.db.tenant(tenant).await?;
    handoff::close(&mut tx, id, &by).await?;
    tx.commit().await?;
    Ok(Json(json!({"status": "closed", "handoff_state": "bot"})))
}

#[derive(Debug, Deserialize)]
pub struct EscalationParams {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/escalations`: newest first (`status`: waiting, claimed, resolved).
pub async fn list_escalations(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<EscalationParams>,
) -> Result<Json<Value>, ApiError> {
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
    let list = handoff::list(&mut tx, p.status.as_deref(), p.limit.unwrap_or(100)).await?;
    tx.commit().await?;
    Ok(Json(json!({"escalations": list})))
}

/// `GET /api/v1/escalations/{id}`: one escalation with its notifications and their attempts.
pub async fn show_escalation(
    scope: Scope,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
        notifications.push(json!({
            "id": n.id, "kind": n.kind, "purpose": n.purpose, "status": n.status,
            "attempts": attempts, "last_error": n.last_error, "created_at": n.created_at,
            "done_at": n.done_at,
        }));
    }
    tx.commit().await?;
    Ok(Json(
        json!({"escalation": e, "notifications": notifications}),
    ))
}
