//! WhatsApp Cloud API (Meta Graph API).
//!
//! Inbound: the `GET` verification handshake (`hub.verify_token` → `hub.challenge`), and `POST`
//! notifications signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body under the app
//! secret, checked before the body is parsed). Messages (text, button and list replies, voice
//! notes and audio, images with captions, locations) become inbound messages keyed by their
//! `wamid`, so redeliveries are dropped by the store; `statuses` become delivery reports and are
//! never customer messages.
//!
//! Outbound: text (split at 4,096 characters), reply buttons (≤ 3 choices, titles ≤ 20
//! characters) or a list (≤ 10), and a configured template when the customer's last message is
//! older than 24 hours. Error codes 130429 and 131056 are rate limits (HTTP 400, not 429).

use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::model::InboundMessage;
use switchboard_core::ChannelId;

use crate::outbound::{transport_error, Delivery, OutboundMessage, SendError, SendReceipt};
use crate::settings::InvalidSettings;
use crate::speech::{read_limited, Audio, MediaRef};
use crate::webhook::{
    constant_time_eq, form_params, hmac_sha256, param, split_text, unhex, DeliveryState,
    InboundItem, Rejection, Reply, StatusUpdate, WebhookError, WebhookOutput, WebhookRequest,
};

pub const SECRET_FIELDS: &[&str] = &["app_secret", "access_token", "verify_token"];
/// Longest text message.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Free-form messages are allowed this long after the customer's last message.
pub const SERVICE_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// "Too many messages from this phone number" (80/s by default).
pub const ERR_THROUGHPUT: i64 = 130429;
/// "Too many messages to this user in a short time" (1 per 6 s, short bursts).
pub const ERR_PAIR_RATE: i64 = 131056;

/// A WhatsApp channel's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The business phone number's id (`metadata.phone_number_id`).
    pub phone_number_id: String,
    /// Graph API base URL (a local fake in tests).
    #[serde(default = "default_api_base")]
    pub api_base_url: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Template sent instead of free text outside the 24-hour window.
    #[serde(default)]
    pub template_name: Option<String>,
    #[serde(default = "default_template_language")]
    pub template_language: String,
    /// Signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: SecretString,
    /// Bearer token for sending.
    pub access_token: SecretString,
    /// Answers the verification handshake.
    pub verify_token: SecretString,
}

fn default_api_base() -> String {
    "https://graph.facebook.com".into()
}
fn default_api_version() -> String {
    "v21.0".into()
}
fn default_template_language() -> String {
    "en_US".into()
}

impl Settings {
    pub(crate) fn validate(&self) -> Result<(), InvalidSettings> {
        let id = &self.phone_number_id;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidSettings(
                "phone_number_id must be the numeric id of the business phone number".into(),
            ));
        }
        switchboard_core::validate::http_url("api_base_url", &self.api_base_url, 500)
            .map_err(InvalidSettings)?;
        for (name, s) in [
            ("app_secret", &self.app_secret),
            ("access_token", &self.access_token),
            ("verify_token", &self.verify_token),
        ] {
            if s.expose_secret().trim().is_empty() {
                return Err(InvalidSettings(format!("{name} must not be empty")));
            }
        }
        Ok(())
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/{}/{}/messages",
            self.api_base_url.trim_end_matches('/'),
            self.api_version,
            self.phone_number_id
        )
    }
}

/// Checks `X-Hub-Signature-256` over the raw body.
pub fn verify_signature(
    app_secret: &str,
    headers_value: Option<&str>,
    body: &[u8],
) -> Result<(), Rejection> {
    let presented = headers_value.ok_or(Rejection::Missing)?;
    let hex = presented
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Rejection::Invalid)?;
    let presented = unhex(hex).ok_or(Rejection::Invalid)?;
    let expected = hmac_sha256(app_secret.as_bytes(), body);
    if constant_time_eq(&presented, &expected) {
        Ok(())
    } else {
        Err(Rejection::Invalid)
    }
}

pub(crate) fn handle_webhook(
    settings: &Settings,
    channel: ChannelId,
    req: &WebhookRequest<'_>,
) -> Result<WebhookOutput, WebhookError> {
    match req.method {
        "GET" => handshake(settings, req.query)
            .map(|challenge| WebhookOutput::reply(Vec::new(), Reply::text(challenge))),
        "POST" => {
            verify_signature(
                settings.app_secret.expose_secret(),
                req.headers.get("x-hub-signature-256"),
                req.body,
            )
            .map_err(WebhookError::Rejected)?;
            let items = parse_notification(channel, req.body)?;
            Ok(WebhookOutput::reply(items, Reply::json_ok()))
        }
        other => Err(WebhookError::Malformed(format!(
            "method {other} is not used by WhatsApp"
        ))),
    }
}

/// The verification handshake: the challenge when the verify token matches.
fn handshake(settings: &Settings, query: &str) -> Result<String, WebhookError> {
    let params = form_params(query.as_bytes());
    let token =
        param(&params, "hub.verify_token").ok_or(WebhookError::Rejected(Rejection::Missing))?;
    if param(&params, "hub.mode") != Some("subscribe")
        || !constant_time_eq(
            token.as_bytes(),
            settings.verify_token.expose_secret().as_bytes(),
        )
    {
        return Err(WebhookError::Rejected(Rejection::Invalid));
    }
    Ok(param(&params, "hub.challenge")
        .unwrap_or_default()
        .to_owned())
}

/// Parses a (verified) notification body into messages and delivery reports. Never panics,
/// whatever the bytes; unknown message types are kept as a short placeholder text so the
/// customer still gets an answer.
pub fn parse_notification(
    channel: ChannelId,
    body: &[u8],
) -> Result<Vec<InboundItem>, WebhookError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
    if v.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
        return Err(WebhookError::Malformed(
            "`object` is not `whatsapp_business_account`".into(),
        ));
    }
    let mut items = Vec::new();
    let changes = v["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten());
    for change in changes {
        let value = &change["value"];
        let names: Vec<(&str, &str)> = value["contacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["wa_id"].as_str()?, c["profile"]["name"].as_str()?)))
            .collect();
        for m in value["messages"].as_array().into_iter().flatten() {
            let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
                continue;
            };
            if from.is_empty() || id.is_empty() || id.len() > 256 {
                continue;
            }
            let Some(text) = message_text(m) else {
                continue;
            };
            let media = (m["type"] == "audio")
                .then(|| m["audio"]["id"].as_str())
                .flatten()
                .filter(|id| !id.is_empty() && id.len() <= 128)
                .map(|id| MediaRef::Whatsapp { id: id.to_owned() });
            let message = InboundMessage {
                channel_id: channel,
                provider_message_id: id.to_owned(),
                contact_external_id: from.to_owned(),
                contact_display_name: names
                    .iter()
                    .find(|(wa, _)| *wa == from)
                    .map(|(_, n)| (*n).to_owned()),
                text,
                payload: m.clone(),
            };
            items.push(match media {
                Some(media) => InboundItem::VoiceNote { message, media },
                None => InboundItem::Message(message),
            });
        }
        for s in value["statuses"].as_array().into_iter().flatten() {
            let Some(id) = s["id"].as_str() else { continue };
            let state = match s["status"].as_str() {
                Some("sent") => DeliveryState::Sent,
                Some("delivered") => DeliveryState::Delivered,
                Some("read") => DeliveryState::Read,
                Some("failed") => DeliveryState::Failed,
                _ => continue,
            };
            let error = s["errors"]
                .as_array()
                .and_then(|errs| errs.first())
                .map(|e| {
                    format!(
                        "{} {}",
                        e["code"]
                            .as_i64()
                            .map(|c| c.to_string())
                            .unwrap_or_default(),
                        e["title"].as_str().or(e["message"].as_str()).unwrap_or("")
                    )
                    .trim()
                    .to_owned()
                });
            items.push(InboundItem::Status(StatusUpdate {
                provider_ref: id.to_owned(),
                state,
                error,
            }));
        }
    }
    Ok(items)
}

/// The text the agent reads for one message; `None` for messages that are not from a customer
/// (system notices).
fn message_text(m: &Value) -> Option<String> {
    let kind = m["type"].as_str().unwrap_or("");
    let text = match kind {
        "text" => m["text"]["body"].as_str().unwrap_or("").to_owned(),
        "interactive" => {
            let i = &m["interactive"];
            let reply = match i["type"].as_str() {
                Some("button_reply") => &i["button_reply"],
                Some("list_reply") => &i["list_reply"],
                _ => &Value::Null,
            };
            reply["title"].as_str().unwrap_or("").to_owned()
        }
        "button" => m["button"]["text"].as_str().unwrap_or("").to_owned(),
        "image" => m["image"]["caption"]
            .as_str()
            .unwrap_or("[image]")
            .to_owned(),
        "audio" => {
            if m["audio"]["voice"].as_bool() == Some(true) {
                "[voice note]".to_owned()
            } else {
                "[audio]".to_owned()
            }
        }
        "location" => {
            let l = &m["location"];
            let place = [l["name"].as_str(), l["address"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            let coords = match (l["latitude"].as_f64(), l["longitude"].as_f64()) {
                (Some(lat), Some(lon)) => format!("{lat}, {lon}"),
                _ => String::new(),
            };
            format!("[location] {place} ({coords})")
        }
        "system" | "unsupported" => return None,
        other => format!("[{}]", other.chars().take(32).collect::<String>()),
    };
    let text = text.trim().to_owned();
    Some(if text.is_empty() {
        format!("[{kind}]")
    } else {
        text
    })
}

/// The request bodies for one outbound message (more than one when the text is long).
pub fn request_bodies(
    settings: &Settings,
    delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<Vec<Value>, SendError> {
    let in_window = delivery
        .last_inbound_at
        .is_some_and(|at| Utc::now() - at < SERVICE_WINDOW);
    if !in_window {
        let Some(template) = &settings.template_name else {
            return Err(SendError::Permanent(
                "outside WhatsApp's 24-hour window and no template is configured for this channel"
                    .into(),
            ));
        };
        return Ok(vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to,
            "type": "template",
            "template": {"name": template, "language": {"code": settings.template_language}},
        })]);
    }
    let mut parts = split_text(&msg.text, MAX_TEXT_CHARS);
    if parts.is_empty() {
        parts.push(String::from("…"));
    }
    let last = parts.len() - 1;
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            if i == last && !msg.choices.is_empty() {
                interactive(&msg.to, &part, &msg.choices)
            } else {
                json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": msg.to,
                    "type": "text",
                    "text": {"preview_url": false, "body": part},
                })
            }
        })
        .collect())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Reply buttons for up to three choices, a list for up to ten.
fn interactive(to: &str, body: &str, choices: &[crate::outbound::Choice]) -> Value {
    // Interactive bodies are limited to 1,024 characters.
    let body = truncate(body, 1024);
    let action = if choices.len() <= 3 {
        json!({"type": "button", "action": {"buttons": choices.iter().map(|c| json!({
            "type": "reply", "reply": {"id": truncate(&c.id, 256), "title": truncate(&c.title, 20)}
        })).collect::<Vec<_>>()}})
    } else {
        json!({"type": "list", "action": {"button": "Options", "sections": [{
            "title": "Options",
            "rows": choices.iter().take(10).map(|c| json!({
                "id": truncate(&c.id, 200), "title": truncate(&c.title, 24)
            })).collect::<Vec<_>>()
        }]}})
    };
    let mut interactive = action;
    interactive["body"] = json!({"text": body});
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": interactive,
    })
}

pub(crate) async fn send(
    http: &reqwest::Client,
    settings: &Settings,
    delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<SendReceipt, SendError> {
    let mut first_ref = None;
    for body in request_bodies(settings, delivery, msg)? {
        let resp = http
            .post(settings.messages_url())
            .bearer_auth(settings.access_token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let id = v["messages"][0]["id"].as_str().map(str::to_owned);
            first_ref = first_ref.or(id);
            continue;
        }
        return Err(classify_error(status.as_u16(), &v));
    }
    Ok(SendReceipt {
        provider_ref: first_ref,
    })
}

/// Maps a Graph API error to a retry decision.
pub fn classify_error(status: u16, body: &Value) -> SendError {
    let code = body["error"]["code"].as_i64();
    let message = format!(
        "HTTP {status}, error {}: {}",
        code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
        body["error"]["message"].as_str().unwrap_or("no message")
    );
    match code {
        Some(ERR_THROUGHPUT) => SendError::RateLimited {
            message,
            retry_after: Some(Duration::from_secs(1)),
        },
        Some(ERR_PAIR_RATE) => SendError::RateLimited {
            message,
            retry_after: Some(Duration::from_secs(6)),
        },
        _ if status == 429 => SendError::RateLimited {
            message,
            retry_after: None,
        },
        _ if status >= 500 => SendError::Transient(message),
        // Graph's "temporary" codes: 1 (unknown), 2 (service), 4 (app rate), 80007 (WABA rate).
        Some(1) | Some(2) | Some(4) | Some(80007) => SendError::Transient(message),
        _ => SendError::Permanent(message),
    }
}

/// Downloads a media object: its URL from the Graph API, then the bytes, both with the token.
pub(crate) async fn fetch_media(
    http: &reqwest::Client,
    settings: &Settings,
    id: &str,
) -> Result<Audio, String> {
    let meta_url = format!(
        "{}/{}/{}",
        settings.api_base_url.trim_end_matches('/'),
        settings.api_version,
        id
    );
    let token = settings.access_token.expose_secret();
    let meta: Value = http
        .get(meta_url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("Graph API unreachable: {}", crate::outbound::describe(e)))?
        .json()
        .await
        .map_err(|_| "unreadable media metadata".to_owned())?;
    let url = meta["url"].as_str().ok_or("no media URL")?;
    let resp = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("media download failed: {}", crate::outbound::describe(e)))?;
    if !resp.status().is_success() {
        return Err(format!("media download answered {}", resp.status()));
    }
    Ok(Audio {
        bytes: read_limited(resp).await?,
        mime_type: meta["mime_type"].as_str().unwrap_or("audio/ogg").to_owned(),
    })
}

/// Reads the phone number with the access token.
pub(crate) async fn check(http: &reqwest::Client, settings: &Settings) -> Result<String, String> {
    let url = format!(
        "{}/{}/{}",
        settings.api_base_url.trim_end_matches('/'),
        settings.api_version,
        settings.phone_number_id
    );
    let resp = http
        .get(url)
        .bearer_auth(settings.access_token.expose_secret())
        .send()
        .await
        .map_err(|e| format!("Graph API unreachable: {}", crate::outbound::describe(e)))?;
    if resp.status().is_success() {
        Ok("the access token can read the phone number".into())
    } else {
        Err(format!("Graph API answered {}", resp.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(messages: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": "123456"},
                "contacts": [{"wa_id": "971500000001", "profile": {"name": "Layla"}}],
                "messages": messages,
            }}]}],
        }))
        .unwrap()
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_raw_body() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let sig = format!(
            "sha256={}",
            crate::webhook::hex(&hmac_sha256(b"s3cret", body))
        );
        assert_eq!(verify_signature("s3cret", Some(&sig), body), Ok(()));
        assert_eq!(
            verify_signature("other", Some(&sig), body),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            verify_signature("s3cret", None, body),
            Err(Rejection::Missing)
        );
        assert_eq!(
            verify_signature("s3cret", Some("sha1=abc"), body),
            Err(Rejection::Invalid)
        );
        let mut tampered = body.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verify_signature("s3cret", Some(&sig), &tampered),
            Err(Rejection::Invalid)
        );
    }

    #[test]
    fn documented_message_shapes_become_messages() {
        let ch = ChannelId::new();
        let items = parse_notification(ch, &body(json!([
            {"from": "971500000001", "id": "wamid.1", "timestamp": "1700000000", "type": "text", "text": {"body": "Hello"}},
            {"from": "971500000001", "id": "wamid.2", "timestamp": "1700000001", "type": "interactive",
             "context": {"from": "15550001111", "id": "wamid.out"},
             "interactive": {"type": "button_reply", "button_reply": {"id": "slot-1", "title": "Mon 10:00"}}},
            {"from": "971500000001", "id": "wamid.3", "timestamp": "1700000002", "type": "interactive",
             "interactive": {"type": "list_reply", "list_reply": {"id": "slot-9", "title": "Fri 16:00", "description": "x"}}},
            {"from": "971500000001", "id": "wamid.4", "timestamp": "1700000003", "type": "audio",
             "audio": {"id": "media1", "mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "voice": true}},
            {"from": "971500000001", "id": "wamid.5", "timestamp": "1700000004", "type": "image",
             "image": {"id": "media2", "mime_type": "image/jpeg", "sha256": "abc", "caption": "My roof"}},
            {"from": "971500000001", "id": "wamid.6", "timestamp": "1700000005", "type": "location",
             "location": {"latitude": 25.2, "longitude": 55.3, "name": "Office", "address": "Dubai"}},
        ]))).unwrap();
        let texts: Vec<String> = items
            .iter()
            .map(|i| match i {
                InboundItem::Message(m) => m.text.clone(),
                InboundItem::VoiceNote { message, media } => {
                    assert_eq!(
                        media,
                        &MediaRef::Whatsapp {
                            id: "media1".into()
                        }
                    );
                    message.text.clone()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "Hello",
                "Mon 10:00",
                "Fri 16:00",
                "[voice note]",
                "My roof",
                "[location] Office, Dubai (25.2, 55.3)"
            ]
        );
        let InboundItem::Message(first) = &items[0] else {
            unreachable!()
        };
        assert_eq!(first.provider_message_id, "wamid.1");
        assert_eq!(first.contact_external_id, "971500000001");
        assert_eq!(first.contact_display_name.as_deref(), Some("Layla"));
    }

    #[test]
    fn statuses_are_delivery_reports_not_messages() {
        let raw = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": {"statuses": [
                {"id": "wamid.out1", "status": "delivered", "timestamp": "1", "recipient_id": "9715"},
                {"id": "wamid.out2", "status": "failed", "timestamp": "1", "recipient_id": "9715",
                 "errors": [{"code": 131047, "title": "Re-engagement message"}]},
            ]}}]}],
        }))
        .unwrap();
        let items = parse_notification(ChannelId::new(), &raw).unwrap();
        assert_eq!(
            items,
            vec![
                InboundItem::Status(StatusUpdate {
                    provider_ref: "wamid.out1".into(),
                    state: DeliveryState::Delivered,
                    error: None
                }),
                InboundItem::Status(StatusUpdate {
                    provider_ref: "wamid.out2".into(),
                    state: DeliveryState::Failed,
                    error: Some("131047 Re-engagement message".into())
                }),
            ]
        );
    }

    #[test]
    fn rate_limit_codes_are_rate_limits_and_auth_errors_are_permanent() {
        let e = |code: i64| json!({"error": {"code": code, "message": "m"}});
        assert!(matches!(
            classify_error(400, &e(130429)),
            SendError::RateLimited { .. }
        ));
        assert!(matches!(
            classify_error(400, &e(131056)),
            SendError::RateLimited { .. }
        ));
        assert!(matches!(
            classify_error(401, &e(190)),
            SendError::Permanent(_)
        ));
        assert!(matches!(
            classify_error(503, &Value::Null),
            SendError::Transient(_)
        ));
    }

    proptest::proptest! {
        #[test]
        fn parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_notification(ChannelId::new(), &bytes);
        }

        #[test]
        fn parser_survives_arbitrary_json_shapes(s in "\\{\"object\":\"whatsapp_business_account\",\"entry\":\\[\\{\"changes\":\\[\\{\"value\":\\{\"messages\":\\[\\{\"from\":\"1\",\"id\":\"w\",\"type\":\"[a-z]{0,12}\"(,\"[a-z]{1,8}\":(null|1|\"x\"|\\{\\}|\\[\\]))*\\}\\]\\}\\}\\]\\}\\]\\}") {
            let _ = parse_notification(ChannelId::new(), s.as_bytes());
        }
    }
}
