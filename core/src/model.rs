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

    /// Whether the channel itself vouches that a message comes from the contact it is filed
    /// under (a web-chat session, a phone number or chat the provider authenticated). Email
    /// does not: its messages may be marked unverified ([`UnverifiedSender`]), and only its
    /// turns look for such marks.
    pub fn authenticates_sender(self) -> bool {
        self != ChannelKind::Email
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

/// The payload key that marks a message whose sender is not verified (`false`; absent means
/// verified). [`InboundMessage::mark_unverified`] writes it and the turn's read
/// (`store::turns::sender_trust`) looks for it: this constant is the one place both agree on.
pub const SENDER_VERIFIED_KEY: &str = "sender_verified";
/// The payload key listing why ([`UnverifiedSender::as_str`]), for audit.
pub const SENDER_UNVERIFIED_BECAUSE_KEY: &str = "sender_unverified_because";

/// Why an inbound message's sender is not known to be the contact it is filed under. Only
/// email has such messages: its `From` is a claim, which the receiving provider checks (SPF,
/// DKIM, DMARC) and threading may attach to someone else's conversation. Every other channel
/// authenticates its sender itself (a web-chat session, a phone number or chat the provider
/// vouches for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnverifiedSender {
    /// It continues a thread (`In-Reply-To`/`References`) owned by a contact with another
    /// address, and is filed under that contact.
    NotThreadOwner,
    /// The provider reports that SPF failed (`fail` or `softfail`): the sending server may not
    /// send for the sender's domain.
    SpfFailed,
    /// The provider reports a DKIM signature that does not verify.
    DkimFailed,
    /// The provider reports that DMARC failed.
    DmarcFailed,
    /// The provider's spam filter flagged the message.
    SpamFlagged,
}

impl UnverifiedSender {
    pub fn as_str(self) -> &'static str {
        match self {
            UnverifiedSender::NotThreadOwner => "not_thread_owner",
            UnverifiedSender::SpfFailed => "spf_failed",
            UnverifiedSender::DkimFailed => "dkim_failed",
            UnverifiedSender::DmarcFailed => "dmarc_failed",
            UnverifiedSender::SpamFlagged => "spam_flagged",
        }
    }
}

impl InboundMessage {
    /// Marks the sender as not verified, for `why`: the payload says so ([`SENDER_VERIFIED_KEY`],
    /// with the reasons), which is what the turn reads to refuse the actions only the contact
    /// on file may take (cancelling or moving their bookings, changing their details). The
    /// display name the message claims is dropped too, so that it cannot rename the contact it
    /// is filed under.
    pub fn mark_unverified(&mut self, why: UnverifiedSender) {
        if !self.payload.is_object() {
            self.payload = serde_json::json!({});
        }
        let mut reasons: Vec<String> = self.payload[SENDER_UNVERIFIED_BECAUSE_KEY]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        if !reasons.iter().any(|r| r == why.as_str()) {
            reasons.push(why.as_str().to_owned());
        }
        self.payload[SENDER_VERIFIED_KEY] = serde_json::Value::Bool(false);
        self.payload[SENDER_UNVERIFIED_BECAUSE_KEY] = serde_json::json!(reasons);
        self.contact_display_name = None;
    }

    /// Whether nothing marked the sender as unverified.
    pub fn sender_verified(&self) -> bool {
        self.payload.get(SENDER_VERIFIED_KEY) != Some(&serde_json::Value::Bool(false))
    }
}

/// Whether the sender of a turn's messages is known to be the contact on file: unverified when
/// any of them is ([`InboundMessage::mark_unverified`]). An unverified turn may answer, and book
/// a new meeting, but not act for the contact: no cancelling or moving their bookings, no
/// changing their contact details.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SenderTrust {
    #[default]
    Verified,
    Unverified,
}

impl SenderTrust {
    pub fn is_verified(self) -> bool {
        self == SenderTrust::Verified
    }
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
    /// The message's place in its conversation (1, 2, 3, …; system notes, never shown, take
    /// places too). Never the platform-wide sequence, which would tell a customer how busy the
    /// whole platform is.
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

    #[test]
    fn an_unverified_sender_is_marked_in_the_payload_once_per_reason_and_loses_its_name() {
        let mut m = InboundMessage {
            channel_id: ChannelId::new(),
            provider_message_id: "<m@x>".into(),
            contact_external_id: "owner@x.example".into(),
            contact_display_name: Some("Mallory".into()),
            text: "cancel".into(),
            payload: serde_json::json!({"subject": "Re: hi"}),
        };
        assert!(m.sender_verified());
        m.mark_unverified(UnverifiedSender::SpfFailed);
        m.mark_unverified(UnverifiedSender::NotThreadOwner);
        m.mark_unverified(UnverifiedSender::SpfFailed);
        assert!(!m.sender_verified());
        assert_eq!(m.contact_display_name, None);
        assert_eq!(m.payload["subject"], "Re: hi");
        assert_eq!(m.payload[SENDER_VERIFIED_KEY], false);
        assert_eq!(
            m.payload[SENDER_UNVERIFIED_BECAUSE_KEY],
            serde_json::json!(["spf_failed", "not_thread_owner"])
        );
    }
}
