//! Telegram Bot API, through `teloxide` (its types parse updates; its `Bot` sends).
//!
//! Inbound: webhooks carry the secret given to `setWebhook` in
//! `X-Telegram-Bot-Api-Secret-Token`; a missing or wrong secret is a 401 and nothing is stored.
//! Messages are keyed by chat and message id (stable across Telegram's redeliveries), presses
//! of inline-keyboard buttons by the callback query id; `/start` is a greeting; voice messages
//! arrive as `[voice note]`.
//!
//! Outbound: `sendMessage` (split at 4,096 characters) with an inline keyboard for choices;
//! a `429` with `retry_after` is a rate limit honoured by the dispatcher. The Bot API URL is
//! configurable (a local fake in tests, a self-hosted Bot API server in production).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use switchboard_core::model::InboundMessage;
use switchboard_core::ChannelId;
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardButtonKind, InlineKeyboardMarkup, Update,
    UpdateKind,
};
use teloxide::{Bot, RequestError};

use crate::outbound::{Delivery, OutboundMessage, SendError, SendReceipt};
use crate::settings::InvalidSettings;
use crate::speech::{read_limited, Audio, MediaRef};
use crate::webhook::{
    constant_time_eq, split_text, InboundItem, Rejection, Reply, WebhookError, WebhookOutput,
    WebhookRequest,
};

pub const SECRET_FIELDS: &[&str] = &["bot_token", "secret_token"];
/// Longest text of one message.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest `callback_data`, in bytes.
const MAX_CALLBACK_BYTES: usize = 64;

fn default_api_url() -> String {
    "https://api.telegram.org".into()
}

/// A Telegram channel's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Bot API server (a local fake in tests).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The token from @BotFather.
    pub bot_token: SecretString,
    /// The `secret_token` registered with `setWebhook` (1–256 of `A-Za-z0-9_-`); required
    /// with webhooks.
    #[serde(default)]
    pub secret_token: Option<SecretString>,
    /// `webhook` (production) or `polling` (local development without a public URL).
    #[serde(default)]
    pub mode: Mode,
}

/// How updates reach us.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Webhook,
    Polling,
}

/// Seconds one `getUpdates` call waits for updates (below the HTTP client's timeout).
pub const POLL_TIMEOUT_SECS: u32 = 10;

impl Settings {
    pub(crate) fn validate(&self) -> Result<(), InvalidSettings> {
        let token = self.bot_token.expose_secret();
        if !token.contains(':') || token.len() < 10 {
            return Err(InvalidSettings(
                "bot_token must be the token from @BotFather (digits, a colon, then letters)"
                    .into(),
            ));
        }
        let Some(secret) = &self.secret_token else {
            return match self.mode {
                Mode::Polling => self.api_url().map(|_| ()),
                Mode::Webhook => Err(InvalidSettings(
                    "secret_token is required with webhooks (or set mode to `polling`)".into(),
                )),
            };
        };
        let secret = secret.expose_secret();
        if secret.is_empty()
            || secret.len() > 256
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(InvalidSettings(
                "secret_token must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -".into(),
            ));
        }
        self.api_url()?;
        Ok(())
    }

    fn api_url(&self) -> Result<reqwest::Url, InvalidSettings> {
        switchboard_core::validate::http_url("api_url", &self.api_url, 500).map_err(InvalidSettings)
    }

    /// A bot on our shared HTTP client (no retries inside; the dispatcher retries).
    fn bot(&self, http: &reqwest::Client) -> Result<Bot, InvalidSettings> {
        Ok(
            Bot::with_client(self.bot_token.expose_secret(), http.clone())
                .set_api_url(self.api_url()?),
        )
    }
}

pub(crate) fn handle_webhook(
    settings: &Settings,
    channel: ChannelId,
    req: &WebhookRequest<'_>,
) -> Result<WebhookOutput, WebhookError> {
    if req.method != "POST" {
        return Err(WebhookError::Malformed(format!(
            "method {} is not used by Telegram",
            req.method
        )));
    }
    let expected = settings
        .secret_token
        .as_ref()
        .ok_or(WebhookError::Rejected(Rejection::Missing))?;
    let presented = req
        .headers
        .get("x-telegram-bot-api-secret-token")
        .ok_or(WebhookError::Rejected(Rejection::Missing))?;
    if !constant_time_eq(presented.as_bytes(), expected.expose_secret().as_bytes()) {
        return Err(WebhookError::Rejected(Rejection::WrongToken));
    }
    Ok(WebhookOutput::reply(
        parse_update(channel, req.body)?,
        Reply::json_ok(),
    ))
}

/// Parses a (verified) update. Never panics, whatever the bytes.
pub fn parse_update(channel: ChannelId, body: &[u8]) -> Result<Vec<InboundItem>, WebhookError> {
    let update: Update = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a Telegram update: {e}")))?;
    let payload: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    parse_typed(channel, &update, payload)
}

/// An update fetched with `getUpdates` (long polling), through the same parser.
pub fn parse_polled(channel: ChannelId, update: &Update) -> Result<Vec<InboundItem>, WebhookError> {
    let payload = serde_json::to_value(update).unwrap_or_default();
    let items = parse_typed(channel, update, payload)?;
    Ok(items.into_iter().map(InboundItem::storable).collect())
}

fn parse_typed(
    channel: ChannelId,
    update: &Update,
    payload: serde_json::Value,
) -> Result<Vec<InboundItem>, WebhookError> {
    let mut voice = None;
    let item = match &update.kind {
        UpdateKind::Message(msg) => {
            if msg.from.as_ref().is_some_and(|u| u.is_bot) {
                return Ok(Vec::new());
            }
            let text = if let Some(text) = msg.text() {
                let t = text.trim();
                if t == "/start" || t.starts_with("/start ") {
                    "Hello".to_owned()
                } else {
                    t.to_owned()
                }
            } else if let Some(v) = msg.voice() {
                voice = Some(MediaRef::Telegram {
                    file_id: v.file.id.0.clone(),
                });
                "[voice note]".to_owned()
            } else if let Some(caption) = msg.caption() {
                caption.trim().to_owned()
            } else {
                return Ok(Vec::new());
            };
            if text.is_empty() {
                return Ok(Vec::new());
            }
            InboundMessage {
                channel_id: channel,
                provider_message_id: format!("msg:{}:{}", msg.chat.id.0, msg.id.0),
                contact_external_id: msg.chat.id.0.to_string(),
                contact_display_name: msg.from.as_ref().map(|u| u.full_name()),
                text,
                payload,
            }
        }
        UpdateKind::CallbackQuery(q) => {
            let Some(data) = q.data.as_deref() else {
                return Ok(Vec::new());
            };
            let Some(message) = &q.message else {
                return Ok(Vec::new());
            };
            // The agent reads the button's title, as the customer saw it.
            let title = message
                .regular_message()
                .and_then(|m| m.reply_markup())
                .and_then(|markup| {
                    markup
                        .inline_keyboard
                        .iter()
                        .flatten()
                        .find_map(|b| match &b.kind {
                            InlineKeyboardButtonKind::CallbackData(d) if d == data => {
                                Some(b.text.clone())
                            }
                            _ => None,
                        })
                })
                .unwrap_or_else(|| data.to_owned());
            InboundMessage {
                channel_id: channel,
                provider_message_id: format!("cb:{}", q.id.0),
                contact_external_id: message.chat().id.0.to_string(),
                contact_display_name: Some(q.from.full_name()),
                text: title,
                payload,
            }
        }
        _ => return Ok(Vec::new()),
    };
    if item.provider_message_id.len() > 256 {
        return Err(WebhookError::Malformed("identifier too long".into()));
    }
    Ok(vec![match voice {
        Some(media) => InboundItem::VoiceNote {
            message: item,
            media,
        },
        None => InboundItem::Message(item),
    }])
}

/// Downloads a file by id: `getFile`, then `/file/bot<token>/<path>`.
pub(crate) async fn fetch_file(
    http: &reqwest::Client,
    settings: &Settings,
    file_id: &str,
) -> Result<Audio, String> {
    let bot = settings.bot(http).map_err(|e| e.0)?;
    let file = bot
        .get_file(teloxide::types::FileId(file_id.to_owned()))
        .await
        .map_err(|e| match classify_error(e) {
            SendError::Permanent(m) | SendError::Transient(m) => m,
            SendError::RateLimited { message, .. } => message,
        })?;
    let url = format!(
        "{}/file/bot{}/{}",
        settings.api_url.trim_end_matches('/'),
        settings.bot_token.expose_secret(),
        file.path
    );
    let resp = http.get(url).send().await.map_err(|e| {
        // Never the URL: it carries the token.
        format!(
            "file download failed{}",
            if e.is_timeout() { " (timeout)" } else { "" }
        )
    })?;
    if !resp.status().is_success() {
        return Err(format!("file download answered {}", resp.status()));
    }
    Ok(Audio {
        bytes: read_limited(resp).await?,
        mime_type: "audio/ogg".into(),
    })
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn keyboard(choices: &[crate::outbound::Choice]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(choices.iter().map(|c| {
        vec![InlineKeyboardButton::callback(
            c.title.clone(),
            truncate_bytes(&c.id, MAX_CALLBACK_BYTES).to_owned(),
        )]
    }))
}

pub(crate) async fn send(
    http: &reqwest::Client,
    settings: &Settings,
    _delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<SendReceipt, SendError> {
    let bot = settings.bot(http).map_err(|e| SendError::Permanent(e.0))?;
    let chat: i64 = msg
        .to
        .parse()
        .map_err(|_| SendError::Permanent(format!("`{}` is not a Telegram chat id", msg.to)))?;
    let mut parts = split_text(&msg.text, MAX_TEXT_CHARS);
    if parts.is_empty() {
        parts.push("…".into());
    }
    let last = parts.len() - 1;
    let mut first = None;
    for (i, part) in parts.into_iter().enumerate() {
        let mut request = bot.send_message(ChatId(chat), part);
        if i == last && !msg.choices.is_empty() {
            request = request.reply_markup(keyboard(&msg.choices));
        }
        let sent = request.await.map_err(classify_error)?;
        first = first.or_else(|| Some(format!("{}:{}", sent.chat.id.0, sent.id.0)));
    }
    Ok(SendReceipt {
        provider_ref: first,
    })
}

/// Maps a Bot API error to a retry decision.
pub fn classify_error(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RateLimited {
            message: format!("Telegram flood control: retry after {}s", s.seconds()),
            retry_after: Some(s.duration()),
        },
        RequestError::Network(e) => {
            if let Some(refused) = switchboard_core::egress::refusal(&*e) {
                return SendError::Permanent(refused.to_string());
            }
            // Never the error's text: its URL carries the bot token.
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            SendError::Transient(format!("Bot API unreachable: {what}"))
        }
        RequestError::Io(e) => SendError::Transient(format!("I/O error: {e}")),
        RequestError::InvalidJson { .. } => {
            SendError::Transient("the Bot API answered something unreadable".into())
        }
        RequestError::MigrateToChatId(id) => {
            SendError::Permanent(format!("the group moved to chat {}", id.0))
        }
        RequestError::Api(e) => SendError::Permanent(format!("Bot API refused: {e}")),
    }
}

/// `getMe` with the token.
pub(crate) async fn check(http: &reqwest::Client, settings: &Settings) -> Result<String, String> {
    let bot = settings.bot(http).map_err(|e| e.0)?;
    match bot.get_me().await {
        Ok(me) => Ok(format!(
            "the token belongs to @{}",
            me.username.clone().unwrap_or_default()
        )),
        Err(e) => Err(match classify_error(e) {
            SendError::Permanent(m) | SendError::Transient(m) => m,
            SendError::RateLimited { message, .. } => message,
        }),
    }
}

/// Fetches the updates after `offset` (long polling, up to [`POLL_TIMEOUT_SECS`]).
pub async fn poll(
    http: &reqwest::Client,
    settings: &Settings,
    offset: i32,
) -> Result<Vec<Update>, String> {
    use teloxide::payloads::GetUpdatesSetters;
    let bot = settings.bot(http).map_err(|e| e.0)?;
    bot.get_updates()
        .offset(offset)
        .timeout(POLL_TIMEOUT_SECS)
        .await
        .map_err(|e| match classify_error(e) {
            SendError::Permanent(m) | SendError::Transient(m) => m,
            SendError::RateLimited { message, .. } => message,
        })
}

/// Registers `url` as the bot's webhook with the channel's secret token.
pub(crate) async fn register_webhook(
    http: &reqwest::Client,
    settings: &Settings,
    url: &str,
) -> Result<(), String> {
    let bot = settings.bot(http).map_err(|e| e.0)?;
    let url = reqwest::Url::parse(url).map_err(|e| format!("webhook URL: {e}"))?;
    let secret = settings
        .secret_token
        .as_ref()
        .ok_or("no secret_token configured")?;
    use teloxide::payloads::SetWebhookSetters;
    bot.set_webhook(url)
        .secret_token(secret.expose_secret().to_owned())
        .await
        .map(|_| ())
        .map_err(|e| match classify_error(e) {
            SendError::Permanent(m) | SendError::Transient(m) => m,
            SendError::RateLimited { message, .. } => message,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::Headers;
    use serde_json::json;

    fn settings() -> Settings {
        serde_json::from_value(
            json!({"bot_token": "123456:ABC-DEF", "secret_token": "s3cret_token"}),
        )
        .unwrap()
    }

    fn update(text: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "update_id": 10000,
            "message": {
                "message_id": 1365, "date": 1700000000,
                "chat": {"id": 1111111, "type": "private", "first_name": "Omar"},
                "from": {"id": 1111111, "is_bot": false, "first_name": "Omar", "last_name": "K", "username": "omar"},
                "text": text,
            }
        }))
        .unwrap()
    }

    #[test]
    fn secret_token_is_required_and_compared() {
        let s = settings();
        let body = update("hi");
        let call = |headers: Headers| {
            let req = WebhookRequest {
                method: "POST",
                public_url: "https://x/webhooks/telegram/1",
                query: "",
                headers: &headers,
                body: &body,
            };
            handle_webhook(&s, ChannelId::new(), &req).map(|o| o.items.len())
        };
        assert_eq!(
            call(Headers::new([(
                "X-Telegram-Bot-Api-Secret-Token",
                "s3cret_token"
            )]))
            .unwrap(),
            1
        );
        assert!(matches!(
            call(Headers::default()),
            Err(WebhookError::Rejected(Rejection::Missing))
        ));
        assert!(matches!(
            call(Headers::new([("X-Telegram-Bot-Api-Secret-Token", "wrong")])),
            Err(WebhookError::Rejected(Rejection::WrongToken))
        ));
    }

    #[test]
    fn start_is_a_greeting_and_ids_are_stable() {
        let items = parse_update(ChannelId::new(), &update("/start")).unwrap();
        let InboundItem::Message(m) = &items[0] else {
            panic!()
        };
        assert_eq!(m.text, "Hello");
        assert_eq!(m.provider_message_id, "msg:1111111:1365");
        assert_eq!(m.contact_external_id, "1111111");
        assert_eq!(m.contact_display_name.as_deref(), Some("Omar K"));
    }

    proptest::proptest! {
        #[test]
        fn parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_update(ChannelId::new(), &bytes);
        }

        #[test]
        fn parser_survives_odd_updates(text in "\\PC{0,64}", id in proptest::num::i64::ANY, kind in "(message|callback_query|edited_message|poll)") {
            let body = json!({"update_id": 1, kind: {"message_id": 1, "date": 0, "id": "q", "chat": {"id": id, "type": "private"},
                "from": {"id": 1, "is_bot": false, "first_name": text}, "text": text, "data": text}});
            let _ = parse_update(ChannelId::new(), body.to_string().as_bytes());
        }
    }
}
