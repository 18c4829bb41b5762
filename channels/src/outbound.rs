//! The common outbound message and the registry that sends it through the right adapter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use switchboard_core::egress::Egress;
use switchboard_core::model::ChannelKind;
use switchboard_core::{ChannelId, MessageId};

use crate::settings::ChannelSettings;
use crate::webchat::WebchatHub;
use crate::{email, telegram, twilio, whatsapp};

/// A choice offered with a message (booking slots, yes/no): reply buttons on WhatsApp, an
/// inline keyboard on Telegram, a numbered list where the channel has neither.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub title: String,
}

/// What the dispatcher asks a channel to deliver (decoded from an outbox row's payload).
#[derive(Clone, Debug, Deserialize)]
pub struct OutboundMessage {
    #[serde(skip)]
    pub channel_id: Option<ChannelId>,
    /// The customer's address on the channel.
    pub to: String,
    pub text: String,
    pub message_id: Option<MessageId>,
    #[serde(default)]
    pub choices: Vec<Choice>,
}

/// What an adapter needs besides the message: the channel's settings and what the store knows
/// about the recipient.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    pub settings: &'a ChannelSettings,
    /// When the customer last wrote (WhatsApp's 24-hour window).
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Where the provider should report delivery states (Twilio's `StatusCallback`).
    pub status_callback_url: Option<&'a str>,
    /// The payload of the customer's last inbound message in this conversation (email threads
    /// reply to it).
    pub last_inbound_payload: Option<&'a serde_json::Value>,
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
    /// Network trouble, provider 5xx: retried with backoff.
    #[error("transient delivery failure: {0}")]
    Transient(String),
    /// The provider's rate limit: retried after `retry_after` (or the backoff).
    #[error("rate limited by the provider: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused for good (bad recipient, revoked credentials): recorded, not retried.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Every adapter that can send, keyed by channel kind, and the HTTP client they share.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub webchat: WebchatHub,
    /// The providers' client, for the API bases tenants set: every connection goes through
    /// [`Outbound::egress`] (no retries inside: the dispatcher alone retries).
    pub http: reqwest::Client,
    /// Where tenant-set endpoints may point.
    pub egress: Egress,
    /// The client of the platform's own endpoints (speech to text), set by the operator.
    platform_http: reqwest::Client,
    /// The public base URL of this deployment (for status callbacks), without a trailing `/`.
    pub public_base_url: Option<String>,
    /// Sending caps per channel and recipient, shared by every dispatcher task.
    pub limiter: std::sync::Arc<crate::limits::RateLimiter>,
    /// Transcribes voice notes, when configured.
    pub speech_to_text: Option<crate::speech::SpeechToText>,
}

impl Outbound {
    /// Adapters whose tenant-set endpoints must satisfy `egress`.
    pub fn new(egress: Egress) -> Outbound {
        let client = |egress: Egress| {
            egress
                .http(
                    reqwest::Client::builder()
                        .timeout(Duration::from_secs(15))
                        .connect_timeout(Duration::from_secs(5)),
                    10,
                )
                .build()
                .expect("the HTTP client builds with static settings")
        };
        Outbound {
            webchat: WebchatHub::default(),
            http: client(egress),
            egress,
            platform_http: client(Egress::Unrestricted),
            public_base_url: None,
            limiter: Default::default(),
            speech_to_text: None,
        }
    }

    /// Refuses a channel whose provider API base or mail host is not allowed (a literal
    /// address skips the resolver's check, so it is checked here, before every call).
    pub fn guard(&self, settings: &ChannelSettings) -> Result<(), String> {
        settings
            .check_endpoints(self.egress)
            .map_err(|e| e.to_string())
    }
}

impl Outbound {
    /// The URL where the provider should report delivery states of channel `channel`.
    pub fn status_callback_url(&self, kind: ChannelKind, channel: ChannelId) -> Option<String> {
        let base = self.public_base_url.as_deref()?;
        Some(format!(
            "{}{}",
            base.trim_end_matches('/'),
            crate::webhook_path(kind, channel)?
        ))
    }

    /// Delivers `msg` on a channel of `kind`.
    pub async fn send(
        &self,
        kind: ChannelKind,
        delivery: &Delivery<'_>,
        msg: &OutboundMessage,
    ) -> Result<SendReceipt, SendError> {
        self.guard(delivery.settings)
            .map_err(SendError::Permanent)?;
        match (kind, delivery.settings) {
            (ChannelKind::Webchat, _) => self.webchat.send(msg),
            (ChannelKind::Whatsapp, ChannelSettings::Whatsapp(s)) => {
                whatsapp::send(&self.http, s, delivery, msg).await
            }
            (ChannelKind::Sms, ChannelSettings::Sms(s)) => {
                twilio::send_sms(&self.http, s, delivery, msg).await
            }
            (ChannelKind::Telegram, ChannelSettings::Telegram(s)) => {
                telegram::send(&self.http, s, delivery, msg).await
            }
            (ChannelKind::Email, ChannelSettings::Email(s)) => {
                email::send(s, self.egress, delivery, msg).await
            }
            // Voice replies leave in the answer to Twilio's request (TwiML `<Say>`), which
            // reads the stored reply; the outbox row only records that it was spoken.
            (ChannelKind::Voice, ChannelSettings::Voice(_)) => Ok(SendReceipt {
                provider_ref: None,
            }),
            (other, _) => Err(SendError::Permanent(format!(
                "channel kind `{other}` has no outbound adapter in this build or its settings are missing"
            ))),
        }
    }

    /// Registers the channel's webhook URL with the provider where the provider has an API for
    /// it (Telegram's `setWebhook` with the secret token); `None` where admins paste the URL.
    pub async fn register_webhook(
        &self,
        settings: &ChannelSettings,
        url: &str,
    ) -> Option<Result<(), String>> {
        if let Err(e) = self.guard(settings) {
            return Some(Err(e));
        }
        match settings {
            ChannelSettings::Telegram(s) if s.mode == telegram::Mode::Webhook => {
                Some(telegram::register_webhook(&self.http, s, url).await)
            }
            _ => None,
        }
    }

    /// How many provider sends `msg` takes (long texts are split), for the rate limiter.
    pub fn cost(&self, settings: &ChannelSettings, msg: &OutboundMessage) -> u32 {
        let max = match settings {
            ChannelSettings::Sms(_) => twilio::MAX_SMS_CHARS,
            ChannelSettings::Whatsapp(_) => whatsapp::MAX_TEXT_CHARS,
            ChannelSettings::Telegram(_) => telegram::MAX_TEXT_CHARS,
            _ => return 1,
        };
        crate::webhook::split_text(&msg.text, max)
            .len()
            .clamp(1, 100) as u32
    }

    /// Fetches a voice note's audio and transcribes it; `Err` says why it could not (no
    /// speech-to-text configured, download or transcription failed).
    pub async fn transcribe(
        &self,
        settings: &ChannelSettings,
        media: &crate::speech::MediaRef,
    ) -> Result<String, String> {
        use crate::speech::MediaRef;
        let stt = self
            .speech_to_text
            .as_ref()
            .ok_or("no speech-to-text endpoint is configured")?;
        self.guard(settings)?;
        let audio = match (settings, media) {
            (ChannelSettings::Whatsapp(s), MediaRef::Whatsapp { id }) => {
                whatsapp::fetch_media(&self.http, s, id).await?
            }
            (ChannelSettings::Telegram(s), MediaRef::Telegram { file_id }) => {
                telegram::fetch_file(&self.http, s, file_id).await?
            }
            _ => return Err("this channel cannot fetch that media".into()),
        };
        stt.transcribe(&self.platform_http, audio).await
    }

    /// Checks a channel's credentials against its provider; `Ok` with a short description.
    pub async fn check(&self, settings: &ChannelSettings) -> Result<String, String> {
        self.guard(settings)?;
        match settings {
            ChannelSettings::Webchat => Ok("web chat needs no credentials".into()),
            ChannelSettings::Whatsapp(s) => whatsapp::check(&self.http, s).await,
            ChannelSettings::Telegram(s) => telegram::check(&self.http, s).await,
            ChannelSettings::Email(s) => email::check(s, self.egress).await,
            ChannelSettings::Sms(s) => twilio::check(&self.http, &s.account()).await,
            ChannelSettings::Voice(s) => match s.account() {
                Some(account) => twilio::check(&self.http, &account).await,
                None => Ok("no account SID configured: only webhook signatures are used".into()),
            },
        }
    }
}

/// Classifies a transport error: timeouts and connection failures are worth retrying.
pub(crate) fn transport_error(e: reqwest::Error) -> SendError {
    if let Some(refused) = switchboard_core::egress::refusal(&e) {
        return SendError::Permanent(refused.to_string());
    }
    SendError::Transient(format!("provider unreachable: {}", describe(e)))
}

/// A failed request, for people: the egress policy's refusal when that is why, else the error
/// without its URL (it can carry a token: Telegram puts it in the path).
pub(crate) fn describe(e: reqwest::Error) -> String {
    match switchboard_core::egress::refusal(&e) {
        Some(refused) => refused.to_string(),
        None => e.without_url().to_string(),
    }
}
