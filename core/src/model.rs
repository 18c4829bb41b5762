//! Domain types shared between channels, actors and the HTTP runtime.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, ConversationId, EventId, MessageId, TenantId};

/// The kind of a channel; one adapter exists per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webchat,
    Whatsapp,
    Telegram,
    Sms,
    Voice,
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webchat => "webchat",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Sms => "sms",
            ChannelKind::Voice => "voice",
            ChannelKind::Email => "email",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "webchat" => ChannelKind::Webchat,
            "whatsapp" => ChannelKind::Whatsapp,
            "telegram" => ChannelKind::Telegram,
            "sms" => ChannelKind::Sms,
            "voice" => ChannelKind::Voice,
            "email" => ChannelKind::Email,
            other => return Err(format!("unknown channel kind `{other}`")),
        })
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = MessageRole))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
    Human,
    System,
}

impl Role {
    /// Parses the database representation; unknown values become `System` so that reading
    /// history never fails on a row written by a newer version.
    pub fn from_db(s: &str) -> Role {
        match s {
            "customer" => Role::Customer,
            "agent" => Role::Agent,
            "human" => Role::Human,
            _ => Role::System,
        }
    }
}

/// A customer message as every channel adapter produces it, before it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    pub channel_id: ChannelId,
    /// The provider's id for this delivery; redeliveries carry the same id.
    pub provider_message_id: String,
    /// The customer's address on the channel (web-chat session id, phone number, chat id, …).
    pub contact_external_id: String,
    pub contact_display_name: Option<String>,
    pub text: String,
    /// The provider's original payload, kept for audit and re-processing.
    pub payload: serde_json::Value,
}

/// What the store answers when an inbound message was recorded (or recognised as a duplicate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recorded {
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// True when this delivery had been recorded before; nothing new was stored.
    pub duplicate: bool,
    /// True when this message opened the conversation (its contact's first on the channel).
    pub conversation_created: bool,
}

/// A stored message as the history and event-stream APIs show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    pub id: MessageId,
    pub seq: i64,
    pub role: Role,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A channel as configuration and routing see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    pub id: ChannelId,
    pub tenant_id: TenantId,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub default_language: String,
    pub created_at: DateTime<Utc>,
}
