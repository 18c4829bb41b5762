//! The generic transcript webhook of a voice channel, for speech-to-text providers other than
//! Twilio: `POST /webhooks/voice/{channel_id}/transcript` with a JSON body
//! `{"call_id", "turn", "text", "caller"}` signed like WhatsApp's —
//! `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body under transcript_secret>`.
//!
//! Each (call, turn) is one customer turn (a retry is recognised). The answer is JSON:
//! `{"call_id", "turn", "reply": "…", "pending": false}` once the agent has answered within the
//! channel's budget, or `{"reply": null, "pending": true, "holding_phrase": "…"}`; the provider
//! then speaks the holding phrase and posts the same call and turn again without `text` to fetch
//! the reply.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::model::InboundMessage;
use switchboard_core::ChannelId;

use crate::twilio::VoiceSettings;
use crate::webhook::{
    InboundItem, Rejection, Reply, Response, WebhookError, WebhookOutput, WebhookRequest,
};

/// Whether `req` is for the transcript webhook rather than Twilio's.
pub fn is_transcript_request(req: &WebhookRequest<'_>) -> bool {
    req.public_url
        .split(['?', '#'])
        .next()
        .is_some_and(|path| path.ends_with("/transcript"))
}

#[derive(Debug, Deserialize)]
struct Transcript {
    call_id: String,
    turn: u32,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    caller: Option<String>,
}

pub(crate) fn handle(
    settings: &VoiceSettings,
    channel: ChannelId,
    req: &WebhookRequest<'_>,
) -> Result<WebhookOutput, WebhookError> {
    if req.method != "POST" {
        return Err(WebhookError::Malformed("use POST".into()));
    }
    let secret = settings
        .transcript_secret
        .as_ref()
        .ok_or(WebhookError::Rejected(Rejection::Missing))?;
    crate::whatsapp::verify_signature(
        secret.expose_secret(),
        req.headers.get("x-switchboard-signature"),
        req.body,
    )
    .map_err(WebhookError::Rejected)?;
    let t: Transcript = serde_json::from_slice(req.body)
        .map_err(|e| WebhookError::Malformed(format!("transcript: {e}")))?;
    if t.call_id.is_empty() || t.call_id.len() > 200 || t.turn == 0 {
        return Err(WebhookError::Malformed(
            "call_id must be 1-200 characters and turn at least 1".into(),
        ));
    }
    let provider_message_id = format!("transcript:{}:{}", t.call_id, t.turn);
    let mut items = Vec::new();
    if let Some(text) = t.text.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        items.push(InboundItem::Message(InboundMessage {
            channel_id: channel,
            provider_message_id: provider_message_id.clone(),
            contact_external_id: t
                .caller
                .clone()
                .filter(|c| !c.is_empty() && c.len() <= 200)
                .unwrap_or_else(|| t.call_id.clone()),
            contact_display_name: None,
            text: text.chars().take(4000).collect(),
            payload: json!({"call_id": t.call_id, "turn": t.turn, "source": "transcript"}),
        }));
    }
    let holding = settings.holding_phrase.clone();
    let (call_id, turn) = (t.call_id, t.turn);
    Ok(WebhookOutput {
        items,
        response: Response::AwaitAnswer {
            provider_message_id,
            budget: Duration::from_millis(settings.answer_budget_ms),
            render: Box::new(move |answer| {
                let body = match answer {
                    Some(reply) => {
                        json!({"call_id": call_id, "turn": turn, "reply": reply, "pending": false})
                    }
                    None => {
                        json!({"call_id": call_id, "turn": turn, "reply": null, "pending": true, "holding_phrase": holding})
                    }
                };
                Reply {
                    status: 200,
                    content_type: "application/json",
                    body: body.to_string(),
                }
            }),
        },
        nonce: None,
    })
}
