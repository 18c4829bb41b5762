//! The web-chat channel: a public JSON API used by the widget at `/chat/{channel_id}`.
//!
//! Inbound: [`parse_post`] validates the widget's request and produces an inbound message whose
//! provider id is the client's own message id, so a retried POST is recognised as a duplicate.
//! Outbound: replies are already in the database when the dispatcher runs, so "sending" means
//! waking the session's event streams through [`WebchatHub`]; each stream then reads what is new
//! from the database, or, for a reply committed right after what it has shown, takes the reply
//! from the wake-up itself ([`Wake::Appended`]). A stream that missed a wake-up (not connected
//! yet, lagging) loses nothing: it replays from its last sequence number on connect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use switchboard_core::model::InboundMessage;
use switchboard_core::store::messages::Appended;
use switchboard_core::ChannelId;
use tokio::sync::broadcast;

use crate::outbound::{OutboundMessage, SendError, SendReceipt};

/// Longest accepted message, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// The body of `POST /api/v1/webchat/{channel_id}/messages`.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    pub session_id: String,
    pub client_message_id: String,
    pub text: String,
}

/// A request the widget must fix; the message is shown to the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct Invalid {
    pub field: &'static str,
    pub problem: String,
}

/// The fewest characters of a session id. The id is the customer's only credential (whoever
/// knows it reads the conversation), so it must carry at least 128 bits: 32 hex digits, a UUID
/// (36 characters; the widget makes one with `crypto.randomUUID`), or more.
pub const MIN_SESSION_ID_CHARS: usize = 32;

/// Checks a session id: 32 to 128 characters of `[A-Za-z0-9_-]`.
pub fn validate_session_id(session_id: &str) -> Result<(), Invalid> {
    let ok_len = (MIN_SESSION_ID_CHARS..=128).contains(&session_id.len());
    let ok_chars = session_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(Invalid {
            field: "session_id",
            problem: "must be 32 to 128 characters of letters, digits, '-' or '_' (a random \
                      UUID, or at least 128 random bits)"
                .into(),
        })
    }
}

/// Validates a widget post and turns it into the common inbound message.
pub fn parse_post(channel_id: ChannelId, post: PostMessage) -> Result<InboundMessage, Invalid> {
    validate_session_id(&post.session_id)?;
    let cid = post.client_message_id.trim();
    if cid.is_empty() || cid.len() > 128 || cid.chars().any(char::is_control) {
        return Err(Invalid {
            field: "client_message_id",
            problem: "must be 1 to 128 printable characters".into(),
        });
    }
    // Normalise line endings and drop control characters other than newlines and tabs; keep
    // everything else (Arabic, emoji, bidi marks) exactly as typed.
    let text: String = post
        .text
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(Invalid {
            field: "text",
            problem: "must not be empty".into(),
        });
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Invalid {
            field: "text",
            problem: format!("is {chars} characters long; the limit is {MAX_TEXT_CHARS}"),
        });
    }
    Ok(InboundMessage {
        channel_id,
        provider_message_id: format!("{}:{}", post.session_id, cid),
        contact_external_id: post.session_id.clone(),
        contact_display_name: None,
        payload: serde_json::json!({
            "session_id": post.session_id,
            "client_message_id": cid,
        }),
        text,
    })
}

/// What wakes a session's event streams.
#[derive(Clone, Debug)]
pub enum Wake {
    /// Something changed: read the session again.
    Read,
    /// A message was committed: a stream that has shown everything up to
    /// [`Appended::after`] shows it as it is; any other reads.
    Appended(Arc<Appended>),
}

/// One wake-up sender per live (channel, session).
type Sessions = HashMap<(ChannelId, String), broadcast::Sender<Wake>>;

/// Wakes the event streams of web-chat sessions when something new was stored for them.
#[derive(Clone, Debug, Default)]
pub struct WebchatHub {
    sessions: Arc<Mutex<Sessions>>,
}

impl WebchatHub {
    /// Subscribes to wake-ups of one session.
    pub fn subscribe(&self, channel: ChannelId, session: &str) -> broadcast::Receiver<Wake> {
        let mut map = self.sessions.lock().expect("webchat hub lock poisoned");
        // Drop senders nobody listens to any more, so the map follows live streams.
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry((channel, session.to_owned()))
            .or_insert_with(|| broadcast::channel(16).0)
            .subscribe()
    }

    /// Wakes every stream of a session. Never fails: a session without a stream reads its
    /// history when it connects.
    pub fn notify(&self, channel: ChannelId, session: &str) {
        self.wake(channel, session, Wake::Read);
    }

    /// Wakes every stream of a session with a message just committed to its transcript.
    pub fn append(&self, channel: ChannelId, session: &str, appended: Appended) {
        self.wake(channel, session, Wake::Appended(Arc::new(appended)));
    }

    fn wake(&self, channel: ChannelId, session: &str, wake: Wake) {
        let map = self.sessions.lock().expect("webchat hub lock poisoned");
        if let Some(tx) = map.get(&(channel, session.to_owned())) {
            let _ = tx.send(wake);
        }
    }

    pub(crate) fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let channel = msg
            .channel_id
            .ok_or_else(|| SendError::Permanent("outbound message without channel".into()))?;
        self.notify(channel, &msg.to);
        Ok(SendReceipt {
            provider_ref: msg.message_id.map(|m| m.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_at_least_128_bits() {
        assert!(validate_session_id(&"a".repeat(31)).is_err());
        assert!(validate_session_id("abcd1234").is_err(), "the old minimum");
        assert!(validate_session_id(&"a".repeat(32)).is_ok());
        assert!(
            validate_session_id("4f6c1d2e-9b8a-4c7d-8e5f-0a1b2c3d4e5f").is_ok(),
            "a UUID"
        );
        assert!(validate_session_id(&"a".repeat(128)).is_ok());
        assert!(validate_session_id(&"a".repeat(129)).is_err());
        assert!(validate_session_id(&format!("{} ", "a".repeat(32))).is_err());
    }

    fn post(session: &str, cid: &str, text: &str) -> PostMessage {
        PostMessage {
            session_id: session.into(),
            client_message_id: cid.into(),
            text: text.into(),
        }
    }

    #[test]
    fn valid_post_keeps_arabic_and_builds_a_stable_provider_id() {
        let ch = ChannelId::new();
        let msg = parse_post(
            ch,
            post(
                "session-0001-5f0c2d1e9a7b4c3d8e6f",
                "m1",
                "  مرحبا، ما هي الأسعار؟\r\n ",
            ),
        )
        .unwrap();
        assert_eq!(msg.text, "مرحبا، ما هي الأسعار؟");
        assert_eq!(
            msg.provider_message_id,
            "session-0001-5f0c2d1e9a7b4c3d8e6f:m1"
        );
        assert_eq!(msg.contact_external_id, "session-0001-5f0c2d1e9a7b4c3d8e6f");
    }

    #[test]
    fn rejects_bad_fields_with_the_field_name() {
        let ch = ChannelId::new();
        assert_eq!(
            parse_post(ch, post("short", "m1", "hi")).unwrap_err().field,
            "session_id"
        );
        assert_eq!(
            parse_post(ch, post("bad session!", "m1", "hi"))
                .unwrap_err()
                .field,
            "session_id"
        );
        assert_eq!(
            parse_post(ch, post("session-0001-5f0c2d1e9a7b4c3d8e6f", "", "hi"))
                .unwrap_err()
                .field,
            "client_message_id"
        );
        assert_eq!(
            parse_post(
                ch,
                post("session-0001-5f0c2d1e9a7b4c3d8e6f", "m1", " \n\t ")
            )
            .unwrap_err()
            .field,
            "text"
        );
        let long = "ب".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            parse_post(ch, post("session-0001-5f0c2d1e9a7b4c3d8e6f", "m1", &long))
                .unwrap_err()
                .field,
            "text"
        );
        let at_limit = "ب".repeat(MAX_TEXT_CHARS);
        assert!(parse_post(
            ch,
            post("session-0001-5f0c2d1e9a7b4c3d8e6f", "m1", &at_limit)
        )
        .is_ok());
    }

    #[tokio::test]
    async fn notify_wakes_only_the_right_session() {
        let hub = WebchatHub::default();
        let ch = ChannelId::new();
        let mut a = hub.subscribe(ch, "session-a-5f0c2d1e9a7b4c3d8e6f0a1b2c");
        let mut b = hub.subscribe(ch, "session-b-5f0c2d1e9a7b4c3d8e6f0a1b2c");
        hub.notify(ch, "session-a-5f0c2d1e9a7b4c3d8e6f0a1b2c");
        assert!(a.try_recv().is_ok());
        assert!(b.try_recv().is_err());
    }
}
