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

    /// Whether the customer reads replies straight from the transcript (the web chat's event
    /// stream and history), so that committing a reply delivers it and no provider call is
    /// left to make.
    pub fn delivers_from_transcript(self) -> bool {
        self == ChannelKind::Webchat
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    /// The new message as a web-chat stream shows it, and where it goes in the transcript
    /// (`None` for a duplicate).
    #[serde(skip)]
    pub shown: Option<crate::store::messages::Appended>,
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
    /// Answers offered with an agent message (booking slots): the web chat shows them as
    /// buttons, and a press sends `value` as the customer's message. Empty for most messages.
    pub choices: Vec<MessageChoice>,
}

/// One answer offered with a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageChoice {
    /// Stable identifier of the choice (`slot:<start in RFC 3339>` for a booking slot).
    pub id: String,
    /// What the button says.
    pub label: String,
    /// What pressing it sends as the customer's message (the agent understands it as the pick).
    pub value: String,
}

impl MessageChoice {
    /// Reads the choices stored in a message's metadata (`[{id, title}]`, as the outbox carries
    /// them); anything malformed is skipped rather than failing the history. The value sent back
    /// is the title, not the id: the customer's message then reads as what they chose, and both
    /// the booking dialogue and a model understand it as the pick.
    pub fn from_metadata(choices: Option<&serde_json::Value>) -> Vec<MessageChoice> {
        let Some(list) = choices.and_then(|c| c.as_array()) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|c| {
                let id = c.get("id")?.as_str()?;
                let title = c.get("title")?.as_str()?;
                (!title.trim().is_empty()).then(|| MessageChoice {
                    id: id.to_owned(),
                    label: title.to_owned(),
                    value: title.to_owned(),
                })
            })
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_read_from_metadata_and_malformed_ones_skipped() {
        let stored = serde_json::json!([
            {"id": "slot:2026-12-08T04:30:00Z", "title": "Tue 8 Dec 08:30"},
            {"id": "slot:x"},
            {"id": "slot:y", "title": "  "},
            "junk",
        ]);
        assert_eq!(
            MessageChoice::from_metadata(Some(&stored)),
            [MessageChoice {
                id: "slot:2026-12-08T04:30:00Z".into(),
                label: "Tue 8 Dec 08:30".into(),
                value: "Tue 8 Dec 08:30".into(),
            }]
        );
        assert!(MessageChoice::from_metadata(None).is_empty());
        assert!(MessageChoice::from_metadata(Some(&serde_json::json!({"a": 1}))).is_empty());
    }
}
