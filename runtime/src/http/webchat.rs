//! The public web-chat API used by the widget: post a message, read a session's history, and
//! follow it as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde::{Deserialize, Serialize};
use switchboard_actors::RootMsg;
use switchboard_channels::webchat::{self, PostMessage, Wake};
use switchboard_core::model::{ChannelKind, InboundMessage, MessageView, Recorded};
use switchboard_core::store::handoff::{self, ContactHandoff, HandoffState};
use switchboard_core::store::{channels, messages, platform};
use switchboard_core::{ChannelId, ConversationId, MessageId, TenantId};
use tracing::{info, instrument, warn, Instrument};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson};
use super::limits::Client;
use super::AppState;

/// Longest history returned by one request.
const HISTORY_LIMIT: i64 = 500;
/// A stream re-reads the database at least this often, even without a wake-up.
const STREAM_RECHECK: Duration = Duration::from_secs(10);

/// Resolves a web-chat channel id from the URL to its tenant; anything else is a 404.
async fn webchat_channel(state: &AppState, raw: &str) -> Result<(ChannelId, TenantId), ApiError> {
    let unknown = || ApiError::not_found(format!("no web-chat channel with id `{raw}`"));
    let channel: ChannelId = raw.parse().map_err(|_| unknown())?;
    let route = state
        .routes
        .resolve(state.services.db.pool(), channel)
        .await?
        .ok_or_else(unknown)?;
    if route.kind != ChannelKind::Webchat {
        return Err(unknown());
    }
    if !route.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "channel_disabled",
            "this chat is currently switched off",
        ));
    }
    Ok((channel, route.tenant_id))
}

/// A web-chat channel as the widget and the landing page show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebchatChannel {
    pub id: ChannelId,
    pub name: String,
    pub tenant_name: String,
}

/// The demo tenant's web-chat channels.
#[derive(Debug, Serialize, ToSchema)]
pub struct DemoChannels {
    pub channels: Vec<WebchatChannel>,
}

/// A customer message, stored (or recognised as a redelivery).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageAccepted {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    /// True when this `client_message_id` had been received before: nothing new was stored.
    pub duplicate: bool,
}

/// A session's messages, oldest first, and who is answering it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub messages: Vec<MessageView>,
    pub state: SessionState,
}

/// Who is answering a web-chat session, as its customer sees it: what the chat shows above the
/// messages ("A colleague will reply", "You are chatting with Layla") and whether the agent is
/// working on an answer. Sent with the history and as `state` events whenever it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SessionState {
    /// `bot`: the agent answers; `waiting`: escalated, a colleague will reply; `human`: a
    /// colleague has taken over.
    pub handoff_state: HandoffState,
    /// The first name of the colleague who took over, when the state is `human` and they have a
    /// display name (never an email address or an API key's name).
    pub human_name: Option<String>,
    /// The agent is working on an answer to the customer's last message (a typing indicator).
    pub agent_typing: bool,
}

impl SessionState {
    /// What the customer may see of the conversation's handoff state (a contact that has not
    /// written yet is talking to the bot).
    pub fn for_customer(handoff: Option<&ContactHandoff>) -> SessionState {
        let Some(h) = handoff else {
            return SessionState {
                handoff_state: HandoffState::Bot,
                human_name: None,
                agent_typing: false,
            };
        };
        SessionState {
            handoff_state: h.state,
            human_name: match h.state {
                HandoffState::Human => h.claimed_by.as_deref().and_then(first_name),
                _ => None,
            },
            agent_typing: h.state == HandoffState::Bot && h.pending,
        }
    }
}

/// The first name in a transcript label, when the label is a person's display name: an email
/// address, an API key or the bootstrap administrator is not shown to a customer.
fn first_name(label: &str) -> Option<String> {
    let label = label.trim();
    if label.is_empty()
        || label.contains('@')
        || label.starts_with("API key")
        || label.starts_with("platform admin")
    {
        return None;
    }
    label
        .split_whitespace()
        .next()
        .map(|w| w.chars().take(40).collect())
}

/// `GET /api/v1/webchat/{channel_id}`: what the widget shows in its header.
#[utoipa::path(
    get,
    path = "/api/v1/webchat/{channel_id}",
    tag = "webchat",
    params(("channel_id" = String, Path, description = "The web-chat channel's id")),
    responses(
        (status = 200, description = "The channel's name and its tenant's", body = WebchatChannel),
        (status = 403, description = "`channel_disabled`: the chat is switched off"),
        (status = 404, description = "No enabled web-chat channel has this id"),
    )
)]
pub async fn channel_info(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<WebchatChannel>, ApiError> {
    let (channel, tenant) = webchat_channel(&state, &raw).await?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let name = channels::list(&mut tx)
        .await?
        .into_iter()
        .find(|c| c.id == channel)
        .map(|c| c.name)
        .unwrap_or_default();
    let tenant_name = channels::tenant_name(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(WebchatChannel {
        id: channel,
        name,
        tenant_name,
    }))
}

/// `GET /api/v1/webchat-demo`: the demo tenant's web-chat channels, for the landing page.
#[utoipa::path(
    get,
    path = "/api/v1/webchat-demo",
    tag = "webchat",
    responses((status = 200, description = "The demo tenant's enabled web-chat channels (none without a demo tenant)", body = DemoChannels))
)]
pub async fn demo_channels(State(state): State<AppState>) -> Result<Json<DemoChannels>, ApiError> {
    let pool = state.services.db.pool();
    let mut out = Vec::new();
    if let Some(t) = platform::find_tenant(pool, crate::demo::DEMO_SLUG).await? {
        let mut tx = state.services.db.tenant(t.id).await?;
        for c in channels::list(&mut tx).await? {
            if c.kind == ChannelKind::Webchat && c.enabled {
                out.push(WebchatChannel {
                    id: c.id,
                    name: c.name,
                    tenant_name: t.name.clone(),
                });
            }
        }
        tx.commit().await?;
    }
    Ok(Json(DemoChannels { channels: out }))
}

/// `POST /api/v1/webchat/{channel_id}/messages`: commits the message, then acknowledges.
///
/// The message is committed to the database before the answer; a retry with the same
/// `client_message_id` stores nothing new (`duplicate: true`).
#[utoipa::path(
    post,
    path = "/api/v1/webchat/{channel_id}/messages",
    summary = "Posts a customer's message; it is committed before the answer.",
    tag = "webchat",
    params(("channel_id" = String, Path, description = "The web-chat channel's id")),
    request_body = PostMessage,
    responses(
        (status = 202, description = "Stored; the agent answers on the session's event stream", body = MessageAccepted),
        (status = 403, description = "`channel_disabled`: the chat is switched off"),
        (status = 404, description = "No web-chat channel has this id"),
        (status = 422, description = "`invalid_body`: a field is missing, empty or too long"),
    )
)]
#[instrument(skip_all, fields(channel_id = %raw, tenant_id, conversation_id))]
pub async fn post_message(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Client(client): Client,
    body: Result<ApiJson<PostMessage>, ApiError>,
) -> Result<(StatusCode, Json<MessageAccepted>), ApiError> {
    // An unknown channel is reported as such, whatever the body looks like.
    let (channel, tenant) = webchat_channel(&state, &raw).await?;
    let ApiJson(body) = body?;
    let session = body.session_id.clone();
    let msg = webchat::parse_post(channel, body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })?;
    // Counted once the post is well-formed, before anything is stored.
    state.limits.post(channel, &session, client)?;
    // Stored, and what follows the commit done, in a task of its own: a customer who hangs up
    // while the message waits for its group commit must not leave it stored but unannounced
    // (the agent would only find it at the next start).
    let accept =
        tokio::spawn(accept(state.clone(), tenant, channel, session, msg).in_current_span());
    let recorded = accept.await.map_err(|e| {
        warn!(error = %e, "the web-chat message's task failed");
        ApiError::unavailable("the message could not be stored; please send it again")
    })??;
    let span = tracing::Span::current();
    span.record("tenant_id", tracing::field::display(tenant));
    span.record(
        "conversation_id",
        tracing::field::display(recorded.conversation_id),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageAccepted {
            message_id: recorded.message_id,
            conversation_id: recorded.conversation_id,
            duplicate: recorded.duplicate,
        }),
    ))
}

/// Commits a customer's message with whatever other messages arrive at the same moment (a group
/// commit), then wakes the agent, the session's streams and the tenant's inbox.
async fn accept(
    state: AppState,
    tenant: TenantId,
    channel: ChannelId,
    session: String,
    msg: InboundMessage,
) -> Result<Recorded, ApiError> {
    let recorded = state.services.group.ingest(tenant, msg).await?;
    // Committed: from here on nothing can lose the message. Waking the agent is best effort —
    // a lost wake-up is repaired by the resume at the next start.
    if let Err(e) = state.root.send_message(RootMsg::Route {
        tenant,
        conversation: recorded.conversation_id,
    }) {
        warn!(error = %e, "could not wake the conversation agent");
    }
    let result = if recorded.duplicate {
        "duplicate"
    } else {
        "accepted"
    };
    state
        .services
        .metrics
        .inbound(tenant, ChannelKind::Webchat, result);
    if !recorded.duplicate {
        // The session's streams show the message, and the agent typing, without reading the
        // transcript; under a human owner they read (the colleague's name is not at hand).
        let hub = &state.services.outbound.webchat;
        match recorded.shown.clone() {
            Some(a) if a.handoff.state != HandoffState::Human => hub.append(channel, &session, a),
            _ => hub.notify(channel, &session),
        }
        state
            .services
            .inbox
            .publish(tenant, super::inbox::message_hint(&recorded));
        info!(conversation_id = %recorded.conversation_id, "web-chat message accepted");
    }
    Ok(recorded)
}

/// Wakes the event streams of a conversation's web-chat session (if it is one) after its
/// handoff state changed without a message to the customer (a claim, a hand-back, a close), so
/// the chat shows the change at once. Best effort: streams re-read their state every
/// [`STREAM_RECHECK`] anyway, which also covers streams served by another process.
pub async fn wake_conversation(state: &AppState, tenant: TenantId, conversation: ConversationId) {
    let address = async {
        let mut tx = state.services.db.tenant(tenant).await?;
        let a = handoff::customer_address(&mut tx, conversation).await?;
        tx.commit().await?;
        Ok::<_, switchboard_core::DbError>(a)
    };
    match address.await {
        Ok(Some((channel, session))) => state.services.outbound.webchat.notify(channel, &session),
        Ok(None) => {}
        Err(e) => warn!(error = ?e, "could not wake the web-chat session"),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterQuery {
    /// Only messages after this place in the conversation (a message's `seq`; default 0: all).
    after: Option<i64>,
}

/// The session's messages after `after`, then its state. The state is read second, so a reply
/// committed in between is never announced as "done" before the reply itself is listed.
async fn read_session(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
    session: &str,
    after: i64,
) -> Result<(Vec<MessageView>, SessionState), ApiError> {
    let (list, handoff) = messages::for_contact(
        &state.services.db,
        tenant,
        channel,
        session,
        after,
        HISTORY_LIMIT,
    )
    .await?;
    Ok((list, SessionState::for_customer(handoff.as_ref())))
}

fn check_session(session: &str) -> Result<(), ApiError> {
    webchat::validate_session_id(session)
        .map_err(|e| ApiError::bad_request("invalid_session", e.to_string()))
}

/// `GET …/sessions/{session_id}/messages`: the session's history, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/webchat/{channel_id}/sessions/{session_id}/messages",
    tag = "webchat",
    params(
        ("channel_id" = String, Path, description = "The web-chat channel's id"),
        ("session_id" = String, Path, description = "The browser's session id (the widget makes one)"),
        AfterQuery,
    ),
    responses(
        (status = 200, description = "Up to 500 messages, oldest first", body = History),
        (status = 400, description = "`invalid_session`: the session id is malformed"),
        (status = 403, description = "`channel_disabled`: the chat is switched off"),
        (status = 404, description = "No web-chat channel has this id"),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Path((raw, session)): Path<(String, String)>,
    Query(q): Query<AfterQuery>,
) -> Result<Json<History>, ApiError> {
    let (channel, tenant) = webchat_channel(&state, &raw).await?;
    check_session(&session)?;
    let (messages, session_state) =
        read_session(&state, tenant, channel, &session, q.after.unwrap_or(0)).await?;
    Ok(Json(History {
        messages,
        state: session_state,
    }))
}

/// `GET …/sessions/{session_id}/events`: server-sent events of new messages and of the
/// session's state. Resumes after `Last-Event-ID` (or `?after=`), so a reconnecting client
/// misses nothing; `state` events carry no id, so they never move that cursor.
#[utoipa::path(
    get,
    path = "/api/v1/webchat/{channel_id}/sessions/{session_id}/events",
    tag = "webchat",
    params(
        ("channel_id" = String, Path, description = "The web-chat channel's id"),
        ("session_id" = String, Path, description = "The browser's session id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (a message's `seq`, its place in the conversation); wins over `after`"),
        AfterQuery,
    ),
    responses(
        (status = 200, description = "A server-sent event stream: one `message` event per new message, its `id` the message's `seq` (its place in the conversation, never a platform-wide count) and its data a `MessageView` as JSON; a `state` event (no id, its data a `SessionState` as JSON) first and whenever the handoff state or the typing indicator changes; keep-alive comments every 15 s", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_session`: the session id is malformed"),
        (status = 403, description = "`channel_disabled`: the chat is switched off"),
        (status = 404, description = "No web-chat channel has this id"),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Path((raw, session)): Path<(String, String)>,
    Query(q): Query<AfterQuery>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (channel, tenant) = webchat_channel(&state, &raw).await?;
    check_session(&session)?;
    // Held by the response: the place is given back when the client goes away.
    let slot = state.limits.open_stream(channel, &session, client)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let cursor = last_event_id.or(q.after).unwrap_or(0);
    // Subscribe before the first read, so a message stored in between still wakes us.
    let wake = state.services.outbound.webchat.subscribe(channel, &session);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(stream_session(
        state, tenant, channel, session, cursor, wake, tx,
    ));
    Ok(Sse::new(futures::stream::unfold(
        (rx, slot),
        |(mut rx, slot)| async move { rx.recv().await.map(|e| (Ok(e), (rx, slot))) },
    ))
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn stream_session(
    state: AppState,
    tenant: TenantId,
    channel: ChannelId,
    session: String,
    mut cursor: i64,
    mut wake: tokio::sync::broadcast::Receiver<Wake>,
    out: tokio::sync::mpsc::Sender<Event>,
) {
    let mut shutdown = state.shutdown.clone();
    // The state last sent on this stream: a `state` event goes out first and on every change.
    let mut shown: Option<SessionState> = None;
    let mut next = Next::Read;
    loop {
        let (list, now) = match next {
            Next::Read => match read_session(&state, tenant, channel, &session, cursor).await {
                Ok((list, now)) => (list, Some(now)),
                Err(e) => {
                    warn!(error = ?e, "event stream could not read messages");
                    (Vec::new(), None)
                }
            },
            // A message committed right after what this stream has shown: no read needed.
            Next::Show(a) => (
                vec![a.message.clone()],
                Some(SessionState::for_customer(Some(&a.handoff))),
            ),
            Next::Wait => (Vec::new(), None),
        };
        let full_page = list.len() as i64 == HISTORY_LIMIT;
        for m in list {
            cursor = cursor.max(m.seq);
            let event = Event::default()
                .event("message")
                .id(m.seq.to_string())
                .json_data(&m)
                .expect("message views serialize");
            if out.send(event).await.is_err() {
                return; // The client went away.
            }
        }
        if full_page {
            next = Next::Read; // A long backlog: keep reading before waiting.
            continue;
        }
        if let Some(now) = now {
            if shown.as_ref() != Some(&now) {
                let event = Event::default()
                    .event("state")
                    .json_data(&now)
                    .expect("session states serialize");
                if out.send(event).await.is_err() {
                    return;
                }
                shown = Some(now);
            }
        }
        next = tokio::select! {
            r = wake.recv() => match r {
                Ok(w) => Next::after(w, cursor),
                // Missed wake-ups: whatever they announced is in the transcript.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Next::Read,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(STREAM_RECHECK) => Next::Read,
            _ = out.closed() => return,
            _ = shutdown.wait_for(|s| *s) => return,
        };
    }
}

/// What an event stream does next.
#[derive(Debug)]
enum Next {
    /// Read the session's new messages and state.
    Read,
    /// Show this message and state without reading.
    Show(Arc<messages::Appended>),
    /// Nothing new for this stream: wait again.
    Wait,
}

impl Next {
    /// After a wake-up, for a stream that has shown every message up to `cursor`.
    fn after(wake: Wake, cursor: i64) -> Next {
        match wake {
            Wake::Read => Next::Read,
            // Shown already (a read after the commit listed it).
            Wake::Appended(a) if a.message.seq <= cursor => Next::Wait,
            // Everything before it has been shown: it comes next.
            Wake::Appended(a) if a.after <= cursor => Next::Show(a),
            // A message before it has not been shown yet.
            Wake::Appended(_) => Next::Read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoff(state: HandoffState, claimed_by: Option<&str>, pending: bool) -> ContactHandoff {
        ContactHandoff {
            state,
            claimed_by: claimed_by.map(str::to_owned),
            pending,
        }
    }

    fn appended(after: i64, seq: i64) -> Wake {
        Wake::Appended(Arc::new(messages::Appended {
            after,
            message: MessageView {
                id: MessageId::new(),
                seq,
                role: switchboard_core::model::Role::Agent,
                text: "hi".into(),
                created_at: chrono::Utc::now(),
                choices: Vec::new(),
            },
            handoff: handoff(HandoffState::Bot, None, false),
        }))
    }

    #[test]
    fn a_stream_shows_a_pushed_reply_only_when_it_has_shown_everything_before_it() {
        // Shown up to the customer's message (seq 7), the reply follows it: no read.
        assert!(matches!(Next::after(appended(7, 9), 7), Next::Show(_)));
        // A stream further on (it read after the commit) has the reply already.
        assert!(matches!(Next::after(appended(7, 9), 9), Next::Wait));
        assert!(matches!(Next::after(appended(7, 9), 12), Next::Wait));
        // A message before the reply has not been shown: read, so nothing is skipped.
        assert!(matches!(Next::after(appended(7, 9), 5), Next::Read));
        assert!(matches!(Next::after(Wake::Read, 9), Next::Read));
    }

    #[test]
    fn a_new_session_talks_to_the_bot() {
        let s = SessionState::for_customer(None);
        assert_eq!(s.handoff_state, HandoffState::Bot);
        assert!(!s.agent_typing);
        assert_eq!(s.human_name, None);
    }

    #[test]
    fn the_agent_types_only_while_the_bot_owns_the_conversation() {
        let bot = SessionState::for_customer(Some(&handoff(HandoffState::Bot, None, true)));
        assert!(bot.agent_typing);
        let waiting = SessionState::for_customer(Some(&handoff(HandoffState::Waiting, None, true)));
        assert!(!waiting.agent_typing);
        assert_eq!(waiting.human_name, None);
    }

    #[test]
    fn a_customer_sees_a_colleagues_first_name_and_never_an_address_or_a_key() {
        let name = |label: &str| {
            SessionState::for_customer(Some(&handoff(HandoffState::Human, Some(label), false)))
                .human_name
        };
        assert_eq!(name("Layla Haddad").as_deref(), Some("Layla"));
        assert_eq!(name("ليلى حداد").as_deref(), Some("ليلى"));
        assert_eq!(name("layla@sahara.example"), None);
        assert_eq!(name("API key \"crm\""), None);
        assert_eq!(name("platform admin (bootstrap token)"), None);
        assert_eq!(name("  "), None);
        // Only a human owner is named.
        let waiting = SessionState::for_customer(Some(&handoff(
            HandoffState::Waiting,
            Some("Layla Haddad"),
            false,
        )));
        assert_eq!(waiting.human_name, None);
    }
}
