//! The common outbound message and the registry that sends it through the right adapter.

use serde::Deserialize;
use switchboard_core::model::ChannelKind;
use switchboard_core::{ChannelId, MessageId};

use crate::webchat::WebchatHub;

/// What the dispatcher asks a channel to deliver (decoded from an outbox row's payload).
#[derive(Clone, Debug, Deserialize)]
pub struct OutboundMessage {
    #[serde(skip)]
    pub channel_id: Option<ChannelId>,
    /// The customer's address on the channel.
    pub to: String,
    pub text: String,
    pub message_id: Option<MessageId>,
}

/// Proof of delivery from the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// The provider's id for what it accepted, when it gives one.
    pub provider_ref: Option<String>,
}

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Network trouble, rate limits, provider 5xx: retried with backoff.
    #[error("transient delivery failure: {0}")]
    Transient(String),
    /// The provider refused for good (bad recipient, revoked credentials): recorded, not retried.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Every adapter that can send, keyed by channel kind.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    pub webchat: WebchatHub,
}

impl Outbound {
    /// Delivers `msg` on a channel of `kind`.
    pub async fn send(
        &self,
        kind: ChannelKind,
        msg: &OutboundMessage,
    ) -> Result<SendReceipt, SendError> {
        match kind {
            ChannelKind::Webchat => self.webchat.send(msg),
            other => Err(SendError::Permanent(format!(
                "channel kind `{other}` has no outbound adapter in this build"
            ))),
        }
    }
}
