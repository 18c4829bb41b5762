//! Twilio: SMS and Voice (speech as text).
//!
//! Both are `application/x-www-form-urlencoded` POSTs signed with `X-Twilio-Signature`:
//! base64(HMAC-SHA1(auth token, public URL + every parameter name followed by its value, sorted
//! by name)). The URL is the one Twilio called — behind a proxy, the configured public URL — and
//! is accepted with or without an explicit default port, as Twilio's own validator does.
//!
//! SMS: inbound messages (keyed by `MessageSid`), status callbacks (`MessageStatus`, never
//! customer messages), `STOP`/`START` and their synonyms as opt-out/opt-in (never shown to the
//! agent), outbound through the REST API with long replies split at 1,600 characters.
//!
//! Voice: a `<Gather input="speech">` loop. Each `SpeechResult` is a turn keyed by call and turn
//! number (the turn number travels in the `action` URL, so Twilio's retries are recognised);
//! the answer is spoken with `<Say>` followed by the next `<Gather>`. When the agent is not
//! ready within the budget, a holding phrase and a `<Redirect>` fetch it on the next request.
//! A hang-up (`CallStatus` completed, busy, …) ends cleanly with an empty `<Response/>`.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::model::InboundMessage;
use switchboard_core::ChannelId;

use crate::outbound::{transport_error, Delivery, OutboundMessage, SendError, SendReceipt};
use crate::settings::InvalidSettings;
use crate::webhook::{
    constant_time_eq, form_params, param, split_text, DeliveryState, InboundItem, Rejection, Reply,
    Response, StatusUpdate, WebhookError, WebhookOutput, WebhookRequest,
};

pub const SECRET_FIELDS: &[&str] = &["auth_token"];
/// Secrets of a voice channel: Twilio's token and the generic transcript webhook's secret.
pub const VOICE_SECRET_FIELDS: &[&str] = &["auth_token", "transcript_secret"];
/// Longest SMS body Twilio accepts.
pub const MAX_SMS_CHARS: usize = 1600;
/// Opt-out keywords Twilio honours on long codes (matched as the whole message, any case).
pub const STOP_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
/// Opt-in keywords.
pub const START_WORDS: &[&str] = &["START", "YES", "UNSTOP"];

fn default_api_base() -> String {
    "https://api.twilio.com".into()
}

/// An SMS channel's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub account_sid: String,
    /// Sender number (E.164), unless a messaging service sends.
    #[serde(default)]
    pub from_number: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// The sender's cap: 1 for a long code (the default), 3 toll-free, 100 for a short code.
    #[serde(default)]
    pub messages_per_second: Option<f64>,
    /// REST API base URL (a local fake in tests).
    #[serde(default = "default_api_base")]
    pub api_base_url: String,
    pub auth_token: SecretString,
}

/// A voice channel's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceSettings {
    /// Only needed for the credential health check.
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default = "default_api_base")]
    pub api_base_url: String,
    /// Speech recognition and `<Say>` language.
    #[serde(default = "default_language")]
    pub language: String,
    /// `<Say voice="…">`, e.g. `Polly.Joanna`; Twilio's default when unset.
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default = "default_greeting")]
    pub greeting: String,
    /// Said when a turn brought no speech.
    #[serde(default = "default_reprompt")]
    pub reprompt: String,
    #[serde(default = "default_holding")]
    pub holding_phrase: String,
    /// How long a request waits for the agent before answering with the holding phrase
    /// (Twilio gives up after 15 s).
    #[serde(default = "default_budget_ms")]
    pub answer_budget_ms: u64,
    /// Twilio's auth token (signs Twilio Voice webhooks).
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    /// Signs the generic transcript webhook (other speech-to-text providers).
    #[serde(default)]
    pub transcript_secret: Option<SecretString>,
}

fn default_language() -> String {
    "en-US".into()
}
fn default_greeting() -> String {
    "Hello! How can I help you today?".into()
}
fn default_reprompt() -> String {
    "Sorry, I didn't catch that. Could you say it again?".into()
}
fn default_holding() -> String {
    "One moment please.".into()
}
fn default_budget_ms() -> u64 {
    9000
}

/// Credentials of a Twilio account, for the REST API.
pub struct Account<'a> {
    pub sid: &'a str,
    pub api_base_url: &'a str,
    pub auth_token: &'a SecretString,
}

fn check_sid(sid: &str, prefix: &str, field: &str) -> Result<(), InvalidSettings> {
    if sid.len() == 34 && sid.starts_with(prefix) && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        Ok(())
    } else {
        Err(InvalidSettings(format!(
            "{field} must be `{prefix}` followed by 32 hexadecimal digits"
        )))
    }
}

fn check_token(token: &SecretString) -> Result<(), InvalidSettings> {
    if token.expose_secret().trim().is_empty() {
        Err(InvalidSettings("auth_token must not be empty".into()))
    } else {
        Ok(())
    }
}

impl SmsSettings {
    pub(crate) fn validate(&self) -> Result<(), InvalidSettings> {
        check_sid(&self.account_sid, "AC", "account_sid")?;
        check_token(&self.auth_token)?;
        match (&self.from_number, &self.messaging_service_sid) {
            (None, None) => Err(InvalidSettings(
                "set from_number (E.164, like +15550001111) or messaging_service_sid".into(),
            )),
            (Some(n), _) if !(n.starts_with('+') && n.len() > 4) => Err(InvalidSettings(
                "from_number must be in E.164 form, like +15550001111".into(),
            )),
            (_, Some(s)) => check_sid(s, "MG", "messaging_service_sid"),
            _ => Ok(()),
        }
    }

    pub fn account(&self) -> Account<'_> {
        Account {
            sid: &self.account_sid,
            api_base_url: &self.api_base_url,
            auth_token: &self.auth_token,
        }
    }
}

impl VoiceSettings {
    pub(crate) fn validate(&self) -> Result<(), InvalidSettings> {
        if let Some(sid) = &self.account_sid {
            check_sid(sid, "AC", "account_sid")?;
        }
        match (&self.auth_token, &self.transcript_secret) {
            (None, None) => {
                return Err(InvalidSettings(
                    "set auth_token (Twilio Voice) and/or transcript_secret (generic transcript webhook)".into(),
                ))
            }
            (Some(t), _) => check_token(t)?,
            (None, Some(s)) if s.expose_secret().len() < 16 => {
                return Err(InvalidSettings(
                    "transcript_secret must be at least 16 characters".into(),
                ))
            }
            _ => {}
        }
        if !(1000..=13_000).contains(&self.answer_budget_ms) {
            return Err(InvalidSettings(
                "answer_budget_ms must be between 1000 and 13000 (Twilio waits 15 s at most)"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn account(&self) -> Option<Account<'_>> {
        Some(Account {
            sid: self.account_sid.as_deref()?,
            api_base_url: &self.api_base_url,
            auth_token: self.auth_token.as_ref()?,
        })
    }
}

/// Twilio's signature of a request: base64(HMAC-SHA1(token, url + sorted name/value pairs)).
/// Repeated parameters contribute each distinct value, in sorted order.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks `X-Twilio-Signature` for a request to `url` with form `params`, accepting the URL
/// with and without its default port.
pub fn validate_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    presented: Option<&str>,
) -> Result<(), Rejection> {
    let presented = presented.ok_or(Rejection::Missing)?.trim();
    let candidates = [with_port(url), without_port(url)];
    let ok = candidates.iter().flatten().any(|u| {
        constant_time_eq(
            compute_signature(auth_token, u, params).as_bytes(),
            presented.as_bytes(),
        )
    });
    if ok {
        Ok(())
    } else {
        Err(Rejection::Invalid)
    }
}

/// Splits `scheme://authority` from the rest; `None` for anything that is not such a URL.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

/// Host and port of an authority (user info dropped, IPv6 brackets kept).
fn host_port(authority: &str) -> (&str, Option<&str>) {
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
        _ => (hostport, None),
    }
}

fn with_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split_url(url)?;
    let (host, port) = host_port(authority);
    let port = match port {
        Some(p) => p.to_owned(),
        None if scheme.eq_ignore_ascii_case("https") => "443".into(),
        None => "80".into(),
    };
    Some(format!("{scheme}://{host}:{port}{rest}"))
}

fn without_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split_url(url)?;
    let (host, _) = host_port(authority);
    Some(format!("{scheme}://{host}{rest}"))
}

/// Verifies a Twilio request; returns its form parameters.
fn verified_params(
    token: &SecretString,
    req: &WebhookRequest<'_>,
) -> Result<Vec<(String, String)>, WebhookError> {
    if req.method != "POST" {
        return Err(WebhookError::Malformed(format!(
            "method {} is not used by Twilio webhooks",
            req.method
        )));
    }
    let params = form_params(req.body);
    validate_signature(
        token.expose_secret(),
        req.public_url,
        &params,
        req.headers.get("x-twilio-signature"),
    )
    .map_err(WebhookError::Rejected)?;
    Ok(params)
}

fn params_json(params: &[(String, String)]) -> Value {
    Value::Object(
        params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

pub(crate) fn handle_sms(
    settings: &SmsSettings,
    channel: ChannelId,
    req: &WebhookRequest<'_>,
) -> Result<WebhookOutput, WebhookError> {
    let params = verified_params(&settings.auth_token, req)?;
    Ok(WebhookOutput::reply(
        parse_sms(channel, &params)?,
        Reply::xml(r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#),
    ))
}

/// Turns (verified) SMS webhook parameters into inbound items. Never panics.
pub fn parse_sms(
    channel: ChannelId,
    params: &[(String, String)],
) -> Result<Vec<InboundItem>, WebhookError> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or_else(|| WebhookError::Malformed("no MessageSid".into()))?;
    let status = param(params, "MessageStatus").or_else(|| param(params, "SmsStatus"));
    if let Some(status) = status.filter(|s| *s != "received" && param(params, "Body").is_none()) {
        let state = match status {
            "queued" | "accepted" | "scheduled" | "sending" => DeliveryState::Queued,
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "read" => DeliveryState::Read,
            "undelivered" | "failed" | "canceled" => DeliveryState::Failed,
            _ => return Ok(Vec::new()),
        };
        return Ok(vec![InboundItem::Status(StatusUpdate {
            provider_ref: sid.to_owned(),
            state,
            error: param(params, "ErrorCode")
                .filter(|c| !c.is_empty())
                .map(|c| format!("Twilio error {c}")),
        })]);
    }
    let from = param(params, "From")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| WebhookError::Malformed("no From".into()))?;
    let body = param(params, "Body").unwrap_or("").trim();
    let keyword = body.to_ascii_uppercase();
    if STOP_WORDS.contains(&keyword.as_str()) {
        return Ok(vec![InboundItem::OptOut(from.to_owned())]);
    }
    if START_WORDS.contains(&keyword.as_str()) {
        return Ok(vec![InboundItem::OptIn(from.to_owned())]);
    }
    let media: usize = param(params, "NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let text = match (body.is_empty(), media) {
        (false, _) => body.to_owned(),
        (true, 0) => return Ok(Vec::new()),
        (true, _) => "[media]".to_owned(),
    };
    Ok(vec![InboundItem::Message(InboundMessage {
        channel_id: channel,
        provider_message_id: sid.to_owned(),
        contact_external_id: from.to_owned(),
        contact_display_name: None,
        text,
        payload: params_json(params),
    })])
}

/// The text of an SMS: choices become a numbered list (SMS has no buttons).
fn sms_text(msg: &OutboundMessage) -> String {
    let mut text = msg.text.clone();
    for (i, c) in msg.choices.iter().enumerate() {
        text.push_str(&format!("\n{}. {}", i + 1, c.title));
    }
    text
}

pub(crate) async fn send_sms(
    http: &reqwest::Client,
    settings: &SmsSettings,
    delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<SendReceipt, SendError> {
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        settings.api_base_url.trim_end_matches('/'),
        settings.account_sid
    );
    let mut first = None;
    for part in split_text(&sms_text(msg), MAX_SMS_CHARS) {
        let mut form: Vec<(&str, &str)> = vec![("To", &msg.to), ("Body", &part)];
        match (&settings.messaging_service_sid, &settings.from_number) {
            (Some(service), _) => form.push(("MessagingServiceSid", service)),
            (None, Some(from)) => form.push(("From", from)),
            (None, None) => return Err(SendError::Permanent("no sender configured".into())),
        }
        if let Some(cb) = delivery.status_callback_url {
            form.push(("StatusCallback", cb));
        }
        let resp = http
            .post(&url)
            .basic_auth(
                &settings.account_sid,
                Some(settings.auth_token.expose_secret()),
            )
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            first = first.or_else(|| v["sid"].as_str().map(str::to_owned));
            continue;
        }
        return Err(classify_error(status, &v));
    }
    Ok(SendReceipt {
        provider_ref: first,
    })
}

/// Maps a Twilio REST error to a retry decision.
pub fn classify_error(status: u16, body: &Value) -> SendError {
    let code = body["code"].as_i64();
    let message = format!(
        "HTTP {status}, error {}: {}",
        code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
        body["message"].as_str().unwrap_or("no message")
    );
    match (status, code) {
        (429, _) | (_, Some(20429)) => SendError::RateLimited {
            message,
            retry_after: None,
        },
        (s, _) if s >= 500 => SendError::Transient(message),
        _ => SendError::Permanent(message),
    }
}

/// Reads the account with the credentials.
pub(crate) async fn check(http: &reqwest::Client, account: &Account<'_>) -> Result<String, String> {
    let url = format!(
        "{}/2010-04-01/Accounts/{}.json",
        account.api_base_url.trim_end_matches('/'),
        account.sid
    );
    let resp = http
        .get(url)
        .basic_auth(account.sid, Some(account.auth_token.expose_secret()))
        .send()
        .await
        .map_err(|e| format!("Twilio unreachable: {}", crate::outbound::describe(e)))?;
    if resp.status().is_success() {
        Ok("the account credentials are valid".into())
    } else {
        Err(format!("Twilio answered {}", resp.status()))
    }
}

// ---------------------------------------------------------------------------------------------
// Voice
// ---------------------------------------------------------------------------------------------

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            // Not characters XML 1.0 allows anywhere (its `Char` production): a parser refuses
            // the whole document (found by the `twilio` fuzz target, in a public URL).
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The TwiML pieces of one voice channel and call leg.
struct Twiml<'a> {
    settings: &'a VoiceSettings,
    /// The webhook URL without its query.
    base: String,
}

impl Twiml<'_> {
    fn say(&self, text: &str) -> String {
        let voice = self
            .settings
            .voice
            .as_deref()
            .map(|v| format!(r#" voice="{}""#, xml_escape(v)))
            .unwrap_or_default();
        format!(
            r#"<Say language="{}"{voice}>{}</Say>"#,
            xml_escape(&self.settings.language),
            xml_escape(text)
        )
    }

    fn gather(&self, turn: u32) -> String {
        format!(
            r#"<Gather input="speech" action="{}" method="POST" speechTimeout="auto" language="{}"/>"#,
            xml_escape(&format!("{}?turn={turn}", self.base)),
            xml_escape(&self.settings.language)
        )
    }

    /// Say something, listen for the next turn; silence ends the call politely.
    fn say_and_listen(&self, text: &str, next_turn: u32) -> Reply {
        Reply::xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response>{}{}{}<Hangup/></Response>"#,
            self.say(text),
            self.gather(next_turn),
            self.say("Goodbye.")
        ))
    }

    fn hold(&self, turn: u32) -> Reply {
        Reply::xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response>{}<Redirect method="POST">{}</Redirect></Response>"#,
            self.say(&self.settings.holding_phrase),
            xml_escape(&format!("{}?turn={turn}&await=1", self.base))
        ))
    }
}

pub(crate) fn handle_voice(
    settings: &VoiceSettings,
    channel: ChannelId,
    req: &WebhookRequest<'_>,
) -> Result<WebhookOutput, WebhookError> {
    let token = settings
        .auth_token
        .as_ref()
        .ok_or(WebhookError::Rejected(Rejection::Missing))?;
    let params = verified_params(token, req)?;
    let query = form_params(req.query.as_bytes());
    let base = req
        .public_url
        .split(['?', '#'])
        .next()
        .unwrap_or(req.public_url)
        .to_owned();
    let twiml = Twiml { settings, base };
    let call = param(&params, "CallSid")
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(|| WebhookError::Malformed("no CallSid".into()))?;
    let ended = matches!(
        param(&params, "CallStatus"),
        Some("completed" | "busy" | "failed" | "no-answer" | "canceled")
    );
    if ended {
        return Ok(WebhookOutput::reply(
            Vec::new(),
            Reply::xml(r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#),
        ));
    }
    let turn: u32 = param(&query, "turn")
        .and_then(|t| t.parse().ok())
        .filter(|t| (1..10_000).contains(t))
        .unwrap_or(0);
    let provider_message_id = format!("{call}:{turn}");
    let budget = Duration::from_millis(settings.answer_budget_ms);
    let awaiting = param(&query, "await").is_some();
    let speech = param(&params, "SpeechResult")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut items = Vec::new();
    match (turn, speech, awaiting) {
        // A redirect after the holding phrase: the turn is stored already.
        (1.., _, true) => {}
        (1.., Some(speech), false) => {
            let caller = param(&params, "From")
                .filter(|f| !f.is_empty())
                .unwrap_or(call);
            let mut payload = params_json(&params);
            payload["turn"] = json!(turn);
            items.push(InboundItem::Message(InboundMessage {
                channel_id: channel,
                provider_message_id: provider_message_id.clone(),
                contact_external_id: caller.to_owned(),
                contact_display_name: None,
                text: speech.to_owned(),
                payload,
            }));
        }
        // The call starts (or nothing was understood): greet and listen.
        _ => {
            let prompt = if turn == 0 {
                &settings.greeting
            } else {
                &settings.reprompt
            };
            return Ok(WebhookOutput::reply(
                Vec::new(),
                twiml.say_and_listen(prompt, turn.max(1)),
            ));
        }
    }
    let render_settings = settings.clone();
    let base = twiml.base.clone();
    Ok(WebhookOutput {
        items,
        response: Response::AwaitAnswer {
            provider_message_id,
            budget,
            render: Box::new(move |answer| {
                let twiml = Twiml {
                    settings: &render_settings,
                    base,
                };
                match answer {
                    Some(text) => twiml.say_and_listen(text, turn + 1),
                    None => twiml.hold(turn),
                }
            }),
        },
        nonce: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn twilio_documented_example_vector() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            compute_signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        let sig = Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert_eq!(validate_signature("12345", url, &params, sig), Ok(()));
        // With an explicit default port, as Twilio's validator accepts.
        assert_eq!(
            validate_signature(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params,
                sig
            ),
            Ok(())
        );
        assert_eq!(
            validate_signature("12346", url, &params, sig),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            validate_signature(
                "12345",
                "https://mycompany.com/other.php?foo=1&bar=2",
                &params,
                sig
            ),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            validate_signature("12345", url, &params, None),
            Err(Rejection::Missing)
        );
    }

    #[test]
    fn stop_and_start_are_opt_out_and_opt_in_not_messages() {
        let ch = ChannelId::new();
        let base = [("MessageSid", "SM1"), ("From", "+15550001111")];
        for (body, want) in [
            ("stop", "out"),
            (" Unsubscribe ", "out"),
            ("START", "in"),
            ("yes", "in"),
        ] {
            let mut params = p(&base);
            params.push(("Body".into(), body.into()));
            let items = parse_sms(ch, &params).unwrap();
            match (want, &items[..]) {
                ("out", [InboundItem::OptOut(a)]) | ("in", [InboundItem::OptIn(a)]) => {
                    assert_eq!(a, "+15550001111")
                }
                _ => panic!("{body}: {items:?}"),
            }
        }
        let mut params = p(&base);
        params.push(("Body".into(), "stop sending me the price list".into()));
        assert!(matches!(
            &parse_sms(ch, &params).unwrap()[..],
            [InboundItem::Message(_)]
        ));
    }

    #[test]
    fn status_callbacks_are_delivery_reports() {
        let items = parse_sms(
            ChannelId::new(),
            &p(&[
                ("MessageSid", "SM9"),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30003"),
            ]),
        )
        .unwrap();
        assert_eq!(
            items,
            vec![InboundItem::Status(StatusUpdate {
                provider_ref: "SM9".into(),
                state: DeliveryState::Failed,
                error: Some("Twilio error 30003".into())
            })]
        );
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(
            xml_escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(
            xml_escape("a\u{FFFF}b\u{FFFE}\u{1}c"),
            "a\u{FFFD}b\u{FFFD}c"
        );
    }

    proptest::proptest! {
        #[test]
        fn sms_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_sms(ChannelId::new(), &form_params(&bytes));
        }

        #[test]
        fn voice_handler_survives_arbitrary_signed_bodies(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), query in "[a-z=&0-9]{0,30}") {
            let settings: VoiceSettings = serde_json::from_value(json!({"auth_token": "t"})).unwrap();
            let _ = crate::transcript::handle(&settings, ChannelId::new(), &WebhookRequest { method: "POST", public_url: "https://x/t", query: "", headers: &crate::webhook::Headers::default(), body: &bytes });
            let params = form_params(&bytes);
            let url = format!("https://example.com/v?{query}");
            let sig = compute_signature("t", &url, &params);
            let headers = crate::webhook::Headers::new([("X-Twilio-Signature", sig)]);
            let req = WebhookRequest { method: "POST", public_url: &url, query: &query, headers: &headers, body: &bytes };
            if let Ok(out) = handle_voice(&settings, ChannelId::new(), &req) {
                if let Response::AwaitAnswer { render, .. } = out.response {
                    let _ = render(Some("<hi>"));
                }
            }
        }
    }
}
