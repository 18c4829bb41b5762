//! The live inbox: `GET /api/v1/inbox/events`, a tenant's server-sent events saying which
//! conversations and escalations changed, so a console re-fetches them instead of polling.
//!
//! The hints come from `switchboard_actors::inbox::InboxHub`, published by every writer after
//! its commit (message ingest on every channel, the agent's replies, escalations, human
//! replies, claims, hand-backs, closes and delivery reports). A hint is never the only copy of
//! anything: a console loads the list when it connects and re-reads on hints.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use switchboard_actors::inbox::{ConversationReason, InboxEvent};
use switchboard_core::model::Recorded;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::AppState;
use crate::auth::Scope;

/// How often an idle stream sends a comment line, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The hint of a newly stored customer message: `created` when it opened its conversation.
pub fn message_hint(recorded: &Recorded) -> InboxEvent {
    let reason = if recorded.conversation_created {
        ConversationReason::Created
    } else {
        ConversationReason::Message
    };
    InboxEvent::conversation(recorded.conversation_id, reason)
}

fn ready() -> Event {
    Event::default().event("ready").data("{}")
}

/// `GET /api/v1/inbox/events`: the tenant's inbox hints as server-sent events.
#[utoipa::path(
    get,
    path = "/api/v1/inbox/events",
    summary = "Follows the tenant's inbox: which conversations and escalations changed.",
    tag = "inbox",
    responses(
        (status = 200, description = "A server-sent event stream. `ready` (data `{}`) right after connecting, and again when the stream fell behind (re-fetch everything); `conversation` with data `{\"conversation_id\", \"reason\"}` (`reason`: `message`, `state`, `delivery` or `created`) when a conversation got a message, changed owner or status, or a delivery status of its messages changed; `escalation` with data `{\"escalation_id\", \"conversation_id\", \"status\"}` (`waiting`, `claimed`, `resolved`) when an escalation opened or changed. A comment line every 15 s keeps it open. Events are hints to re-fetch, never the data itself.", content_type = "text/event-stream", body = String),
    )
)]
pub async fn events(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribed before `ready` is sent: whatever a console loads after `ready` is at least as
    // new as the hints that follow.
    let rx = state.services.inbox.subscribe(scope.tenant_id());
    let shutdown = state.shutdown.clone();
    let first = futures::stream::once(async { Ok(ready()) });
    let hints = futures::stream::unfold((rx, shutdown), |(mut rx, mut shutdown)| async move {
        let event = tokio::select! {
            r = rx.recv() => match r {
                Ok(hint) => Event::default()
                    .event(hint.name())
                    .json_data(hint.data())
                    .expect("hints serialize"),
                // Too slow to follow: the missed hints are gone, so say "re-fetch everything".
                Err(RecvError::Lagged(_)) => ready(),
                Err(RecvError::Closed) => return None,
            },
            _ = shutdown.wait_for(|s| *s) => return None,
        };
        Some((Ok(event), (rx, shutdown)))
    });
    Ok(Sse::new(futures::StreamExt::chain(first, hints))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
