//! Email: inbound through a provider's webhook, outbound through SMTP with `lettre`.
//!
//! Inbound: Mailgun-style form posts are verified with HMAC-SHA256(signing key, timestamp +
//! token) and a timestamp window (stale or replayed-late requests are refused); providers
//! without signatures (Postmark's JSON) are protected with HTTP basic auth. Each email is keyed
//! by its `Message-ID`; its `In-Reply-To`/`References` travel with it so the runtime can map a
//! reply to the conversation it continues. Quoted text and signatures are stripped (the
//! provider's stripped text is preferred when it has one).
//!
//! Outbound: SMTP (STARTTLS by default; implicit TLS or, for local test servers only, plain),
//! with our own `Message-ID`, `In-Reply-To` and `References` (the parent's `References` plus its
//! `Message-ID`, RFC 5322 §3.6.4), `Re:` subject, and text + HTML parts.

use std::time::Duration;

use base64::Engine;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::egress::Egress;
use switchboard_core::model::InboundMessage;
use switchboard_core::ChannelId;

use crate::outbound::{Delivery, OutboundMessage, SendError, SendReceipt};
use crate::settings::InvalidSettings;
use crate::webhook::{
    constant_time_eq, form_params, hmac_sha256, param, unhex, InboundItem, Rejection, Reply,
    WebhookError, WebhookOutput, WebhookRequest,
};

pub const SECRET_FIELDS: &[&str] = &[
    "smtp_password",
    "webhook_signing_key",
    "webhook_basic_auth",
    "imap_password",
];
/// Longest text kept of one inbound email.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS on the submission port (the default; required in production).
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// No TLS at all: only for a local test server such as `aiosmtpd`.
    None,
}

/// How the IMAP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    /// Implicit TLS (port 993), the default.
    #[default]
    Tls,
    /// No TLS: only for a local test server.
    None,
}

fn default_imap_port() -> u16 {
    993
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_poll_secs() -> u64 {
    30
}

fn default_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}
fn default_port() -> u16 {
    587
}
fn default_skew() -> u64 {
    300
}
fn default_subject() -> String {
    "Your message".into()
}

/// An email channel's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The address replies come from (also the domain of our `Message-ID`s).
    pub from_address: String,
    #[serde(default)]
    pub from_name: Option<String>,
    pub smtp_host: String,
    #[serde(default = "default_port")]
    pub smtp_port: u16,
    #[serde(default = "default_security")]
    pub smtp_security: SmtpSecurity,
    #[serde(default)]
    pub smtp_username: Option<String>,
    #[serde(default)]
    pub smtp_password: Option<SecretString>,
    /// Mailgun-style webhook signing key.
    #[serde(default)]
    pub webhook_signing_key: Option<SecretString>,
    /// `user:password` expected as HTTP basic auth on the webhook (providers without
    /// signatures, such as Postmark).
    #[serde(default)]
    pub webhook_basic_auth: Option<SecretString>,
    /// Accepted age of a signed webhook timestamp, in seconds.
    #[serde(default = "default_skew")]
    pub webhook_max_age_secs: u64,
    /// Subject of a message that starts a thread.
    #[serde(default = "default_subject")]
    pub default_subject: String,
    /// IMAP polling (instead of, or besides, the webhook).
    #[serde(default)]
    pub imap_host: Option<String>,
    #[serde(default = "default_imap_port")]
    pub imap_port: u16,
    #[serde(default)]
    pub imap_security: ImapSecurity,
    #[serde(default)]
    pub imap_username: Option<String>,
    #[serde(default)]
    pub imap_password: Option<SecretString>,
    #[serde(default = "default_mailbox")]
    pub imap_mailbox: String,
    #[serde(default = "default_poll_secs")]
    pub imap_poll_secs: u64,
}

impl Settings {
    pub(crate) fn validate(&self) -> Result<(), InvalidSettings> {
        self.sender_mailbox()?;
        if self.smtp_host.trim().is_empty() {
            return Err(InvalidSettings("smtp_host must not be empty".into()));
        }
        if self.imap_host.is_some()
            && (self.imap_username.is_none() || self.imap_password.is_none())
        {
            return Err(InvalidSettings(
                "imap_host needs imap_username and imap_password".into(),
            ));
        }
        if self.webhook_signing_key.is_none()
            && self.webhook_basic_auth.is_none()
            && self.imap_host.is_none()
        {
            return Err(InvalidSettings(
                "set webhook_signing_key (Mailgun-style signatures) or webhook_basic_auth (user:password) so the inbound webhook is authenticated, or imap_host to poll a mailbox".into(),
            ));
        }
        if let Some(auth) = &self.webhook_basic_auth {
            if !auth.expose_secret().contains(':') {
                return Err(InvalidSettings(
                    "webhook_basic_auth must be `user:password`".into(),
                ));
            }
        }
        Ok(())
    }

    fn sender_mailbox(&self) -> Result<Mailbox, InvalidSettings> {
        let addr = self
            .from_address
            .parse()
            .map_err(|_| InvalidSettings("from_address must be an email address".into()))?;
        Ok(Mailbox::new(self.from_name.clone(), addr))
    }

    fn domain(&self) -> &str {
        self.from_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost")
    }
}

/// Checks a Mailgun-style signature: hex HMAC-SHA256(key, timestamp + token), timestamp within
/// `max_age` of `now` (Unix seconds).
pub fn verify_mailgun(
    key: &str,
    timestamp: Option<&str>,
    token: Option<&str>,
    signature: Option<&str>,
    now: i64,
    max_age: u64,
) -> Result<(), Rejection> {
    let (Some(ts), Some(token), Some(sig)) = (timestamp, token, signature) else {
        return Err(Rejection::Missing);
    };
    let expected = hmac_sha256(key.as_bytes(), format!("{ts}{token}").as_bytes());
    let presented = unhex(sig.trim()).ok_or(Rejection::Invalid)?;
    if !constant_time_eq(&presented, &expected) {
        return Err(Rejection::Invalid);
    }
    let ts: i64 = ts.trim().parse().map_err(|_| Rejection::Invalid)?;
    if (now - ts).unsigned_abs() > max_age {
        return Err(Rejection::Stale);
    }
    Ok(())
}

fn check_basic_auth(expected: &SecretString, header: Option<&str>) -> Result<(), Rejection> {
    let presented = header
        .and_then(|h| h.strip_prefix("Basic "))
        .ok_or(Rejection::Missing)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(presented.trim())
        .map_err(|_| Rejection::Invalid)?;
    if constant_time_eq(&decoded, expected.expose_secret().as_bytes()) {
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
    if req.method != "POST" {
        return Err(WebhookError::Malformed(format!(
            "method {} is not used by email webhooks",
            req.method
        )));
    }
    let is_json = req
        .headers
        .get("content-type")
        .is_some_and(|c| c.trim_start().starts_with("application/json"));
    let item = if is_json {
        let expected = settings
            .webhook_basic_auth
            .as_ref()
            .ok_or(WebhookError::Rejected(Rejection::Missing))?;
        check_basic_auth(expected, req.headers.get("authorization"))
            .map_err(WebhookError::Rejected)?;
        parse_postmark(channel, req.body)?
    } else {
        let content_type = req.headers.get("content-type").unwrap_or("");
        let params = if content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
        {
            crate::webhook::multipart_fields(content_type, req.body).ok_or_else(|| {
                WebhookError::Malformed("multipart body without a boundary".into())
            })?
        } else {
            form_params(req.body)
        };
        match &settings.webhook_signing_key {
            Some(key) => verify_mailgun(
                key.expose_secret(),
                param(&params, "timestamp"),
                param(&params, "token"),
                param(&params, "signature"),
                chrono::Utc::now().timestamp(),
                settings.webhook_max_age_secs,
            ),
            None => match &settings.webhook_basic_auth {
                Some(expected) => check_basic_auth(expected, req.headers.get("authorization")),
                None => Err(Rejection::Missing),
            },
        }
        .map_err(WebhookError::Rejected)?;
        parse_mailgun(channel, &params)?
    };
    Ok(WebhookOutput::reply(
        item.into_iter().collect(),
        Reply::json_ok(),
    ))
}

/// Message ids in a `References`/`In-Reply-To` value, with their angle brackets.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let id = &rest[start..start + len + 1];
        if id.len() > 2 && id.len() <= 250 && !id[1..].contains('<') {
            out.push(id.to_owned());
        }
        rest = &rest[start + len + 1..];
    }
    out
}

/// The bare address of `Name <addr>` (or `addr`), lower-cased.
pub fn bare_address(from: &str) -> Option<String> {
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from,
    };
    let addr = addr.trim().to_ascii_lowercase();
    (addr.contains('@') && addr.len() <= 254 && !addr.contains(char::is_whitespace)).then_some(addr)
}

fn display_name(from: &str) -> Option<String> {
    let name = from.split('<').next()?.trim().trim_matches('"').trim();
    (!name.is_empty() && name.contains(|c: char| !c.is_ascii_punctuation()) && !name.contains('@'))
        .then(|| name.to_owned())
}

/// Cuts quoted replies and the signature from a plain-text email body.
pub fn strip_quoted(body: &str) -> String {
    let body = body.replace("\r\n", "\n");
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        let attribution = (t.starts_with("On ")
            && (t.ends_with("wrote:") || next.ends_with("wrote:")))
            || (t.starts_with("في ") && t.ends_with("كتب:"));
        if *line == "-- "
            || t == "--"
            || t.starts_with("-----Original Message-----")
            || t.starts_with("________________________________")
            || attribution
        {
            break;
        }
        if t.starts_with('>') {
            continue;
        }
        kept.push(line);
    }
    kept.join("\n").trim().to_owned()
}

/// [`email_item`] for the IMAP poller.
pub(crate) fn email_item_pub(
    channel: ChannelId,
    message_id: Option<String>,
    fallback_id: String,
    from: &str,
    subject: &str,
    text: String,
    references: Vec<String>,
) -> Result<Option<InboundItem>, WebhookError> {
    email_item(
        channel,
        message_id,
        fallback_id,
        from,
        subject,
        text,
        references,
    )
}

fn email_item(
    channel: ChannelId,
    message_id: Option<String>,
    fallback_id: String,
    from: &str,
    subject: &str,
    text: String,
    references: Vec<String>,
) -> Result<Option<InboundItem>, WebhookError> {
    let address =
        bare_address(from).ok_or_else(|| WebhookError::Malformed("no sender address".into()))?;
    let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
    if text.trim().is_empty() {
        return Ok(None);
    }
    let provider_message_id = message_id.clone().unwrap_or(fallback_id);
    if provider_message_id.is_empty() || provider_message_id.len() > 256 {
        return Err(WebhookError::Malformed("bad Message-ID".into()));
    }
    Ok(Some(InboundItem::Threaded {
        message: InboundMessage {
            channel_id: channel,
            provider_message_id,
            contact_external_id: address,
            contact_display_name: display_name(from),
            text,
            payload: json!({
                "message_id": message_id,
                "references": references,
                "subject": subject,
                "from": from,
            }),
        },
        references,
    }))
}

/// A Mailgun-style inbound form (already verified).
pub fn parse_mailgun(
    channel: ChannelId,
    params: &[(String, String)],
) -> Result<Option<InboundItem>, WebhookError> {
    // Headers come as fields and inside `message-headers` (a JSON list of [name, value]).
    let headers: Vec<(String, String)> = param(params, "message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(h).ok())
        .unwrap_or_default();
    let header = |name: &str| {
        params
            .iter()
            .chain(headers.iter())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let from = header("from")
        .or_else(|| header("sender"))
        .ok_or_else(|| WebhookError::Malformed("no sender".into()))?;
    let message_id = header("Message-Id").and_then(|v| message_ids(v).into_iter().next());
    let mut references: Vec<String> = header("References").map(message_ids).unwrap_or_default();
    for id in header("In-Reply-To").map(message_ids).unwrap_or_default() {
        if !references.contains(&id) {
            references.push(id);
        }
    }
    let text = match param(params, "stripped-text").map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => strip_quoted(param(params, "body-plain").unwrap_or("")),
    };
    email_item(
        channel,
        message_id,
        format!("mailgun:{}", param(params, "token").unwrap_or("")),
        from,
        header("subject").unwrap_or(""),
        text,
        references,
    )
}

/// A Postmark-style inbound JSON body (already authenticated).
pub fn parse_postmark(
    channel: ChannelId,
    body: &[u8],
) -> Result<Option<InboundItem>, WebhookError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
    let header = |name: &str| {
        v["Headers"].as_array().into_iter().flatten().find_map(|h| {
            h["Name"]
                .as_str()
                .filter(|n| n.eq_ignore_ascii_case(name))
                .and(h["Value"].as_str())
        })
    };
    let from = match (
        v["FromFull"]["Email"].as_str(),
        v["FromFull"]["Name"].as_str(),
    ) {
        (Some(e), Some(n)) if !n.is_empty() => format!("{n} <{e}>"),
        (Some(e), _) => e.to_owned(),
        _ => v["From"].as_str().unwrap_or("").to_owned(),
    };
    let message_id = header("Message-ID").and_then(|h| message_ids(h).into_iter().next());
    let mut references: Vec<String> = header("References").map(message_ids).unwrap_or_default();
    for id in header("In-Reply-To").map(message_ids).unwrap_or_default() {
        if !references.contains(&id) {
            references.push(id);
        }
    }
    let text = match v["StrippedTextReply"].as_str().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => strip_quoted(v["TextBody"].as_str().unwrap_or("")),
    };
    email_item(
        channel,
        message_id,
        format!("postmark:{}", v["MessageID"].as_str().unwrap_or("")),
        &from,
        v["Subject"].as_str().unwrap_or(""),
        text,
        references,
    )
}

/// The HTML part: the text escaped, paragraphs and line breaks kept.
pub fn html_body(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let paragraphs: Vec<String> = escaped
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", p.trim().replace('\n', "<br>")))
        .collect();
    format!(
        "<!DOCTYPE html><html><body dir=\"auto\">{}</body></html>",
        paragraphs.concat()
    )
}

/// Builds the reply email. Threading comes from the customer's last email, whose payload the
/// dispatcher hands over (`message_id`, `references`, `subject` as [`parse_mailgun`] stored
/// them).
pub fn build_message(
    settings: &Settings,
    delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<(Message, String), SendError> {
    let from = settings
        .sender_mailbox()
        .map_err(|e| SendError::Permanent(e.0))?;
    let to: Mailbox = msg
        .to
        .parse()
        .map_err(|_| SendError::Permanent(format!("`{}` is not an email address", msg.to)))?;
    let unique = msg
        .message_id
        .map(|m| m.to_string())
        .unwrap_or_else(|| uuid_like(&msg.text));
    let our_id = format!("<{unique}@{}>", settings.domain());
    let parent = delivery.last_inbound_payload;
    let parent_id = parent
        .and_then(|p| p["message_id"].as_str())
        .map(str::to_owned);
    let mut references: Vec<String> = parent
        .and_then(|p| p["references"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    if let Some(id) = &parent_id {
        references.retain(|r| r != id);
        references.push(id.clone());
    }
    let subject = match parent.and_then(|p| p["subject"].as_str()).map(str::trim) {
        Some(s) if s.to_ascii_lowercase().starts_with("re:") => s.to_owned(),
        Some(s) if !s.is_empty() => format!("Re: {s}"),
        _ => settings.default_subject.clone(),
    };
    let mut text = msg.text.clone();
    for (i, c) in msg.choices.iter().enumerate() {
        text.push_str(&format!("\n{}. {}", i + 1, c.title));
    }
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(our_id.clone()));
    if let Some(id) = parent_id {
        builder = builder.in_reply_to(id);
    }
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html_body(&text)),
        );
    let email = builder
        .multipart(body)
        .map_err(|e| SendError::Permanent(format!("could not build the email: {e}")))?;
    Ok((email, our_id))
}

/// A stable stand-in id for messages without one (rows written by hand).
fn uuid_like(seed: &str) -> String {
    let digest = hmac_sha256(b"switchboard-message-id", seed.as_bytes());
    crate::webhook::hex(&digest[..16])
}

async fn transport(
    settings: &Settings,
    egress: Egress,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let host = settings.smtp_host.as_str();
    // Under `PublicOnly` the host is resolved and checked here, on every send, and the
    // connection goes to the address that passed (TLS still verifies the host name).
    let server = match egress {
        Egress::Unrestricted => host.to_owned(),
        Egress::PublicOnly => {
            let addrs = egress
                .resolve(host, settings.smtp_port)
                .await
                .map_err(|e| match switchboard_core::egress::refusal(&e) {
                    Some(refused) => SendError::Permanent(format!("SMTP host: {refused}")),
                    None => SendError::Transient(format!("SMTP host {host}: {e}")),
                })?;
            addrs[0].ip().to_string()
        }
    };
    let tls = || {
        TlsParameters::new(host.to_owned())
            .map_err(|e| SendError::Permanent(format!("SMTP settings: {e}")))
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
        .port(settings.smtp_port)
        .timeout(Some(Duration::from_secs(15)));
    let mut builder = match settings.smtp_security {
        SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        SmtpSecurity::None => builder,
    };
    if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

pub(crate) async fn send(
    settings: &Settings,
    egress: Egress,
    delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<SendReceipt, SendError> {
    let (email, our_id) = build_message(settings, delivery, msg)?;
    transport(settings, egress)
        .await?
        .send(email)
        .await
        .map_err(|e| {
            if e.is_permanent() {
                SendError::Permanent(format!("SMTP refused: {e}"))
            } else {
                SendError::Transient(format!("SMTP: {e}"))
            }
        })?;
    Ok(SendReceipt {
        provider_ref: Some(our_id),
    })
}

/// Connects to the SMTP server (and authenticates, when configured).
pub(crate) async fn check(settings: &Settings, egress: Egress) -> Result<String, String> {
    let transport = transport(settings, egress)
        .await
        .map_err(|e| e.to_string())?;
    match transport.test_connection().await {
        Ok(true) => Ok("the SMTP server accepted the connection".into()),
        Ok(false) => Err("the SMTP server did not answer as expected".into()),
        Err(e) => Err(format!("SMTP: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailgun_signature_and_timestamp_window() {
        let sig = crate::webhook::hex(&hmac_sha256(b"key-1", b"1700000000tok"));
        let v = |ts: &str, sig: &str, now: i64| {
            verify_mailgun("key-1", Some(ts), Some("tok"), Some(sig), now, 300)
        };
        assert_eq!(v("1700000000", &sig, 1_700_000_100), Ok(()));
        assert_eq!(v("1700000000", &sig, 1_700_000_400), Err(Rejection::Stale));
        assert_eq!(
            v("1700000001", &sig, 1_700_000_100),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            v("1700000000", "00", 1_700_000_100),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            verify_mailgun("key-1", None, Some("tok"), Some(&sig), 0, 300),
            Err(Rejection::Missing)
        );
    }

    #[test]
    fn quotes_and_signatures_are_stripped() {
        let body = "Yes, Tuesday works.\n\nThanks!\n-- \nOmar\nSent from my phone\n\nOn Mon, 3 Nov 2026 at 10:00, Sahara <hi@sahara.example> wrote:\n> Which slot suits you?\n";
        assert_eq!(strip_quoted(body), "Yes, Tuesday works.\n\nThanks!");
        let outlook = "Sounds good\r\n-----Original Message-----\r\nFrom: x";
        assert_eq!(strip_quoted(outlook), "Sounds good");
        let two_line = "Great\nOn Mon, Nov 3, 2026 at 10:00 AM Sahara Solar\n<hi@sahara.example> wrote:\n> old";
        assert_eq!(strip_quoted(two_line), "Great");
        assert_eq!(strip_quoted("> only quoted"), "");
    }

    #[test]
    fn message_ids_and_addresses() {
        assert_eq!(
            message_ids("<a@x> <b@y>\r\n <c@z>"),
            ["<a@x>", "<b@y>", "<c@z>"]
        );
        assert_eq!(message_ids("no ids"), Vec::<String>::new());
        assert_eq!(
            bare_address("Omar K <Omar@Example.com>").as_deref(),
            Some("omar@example.com")
        );
        assert_eq!(bare_address("nobody"), None);
        assert_eq!(
            display_name("\"Omar K\" <o@x.com>").as_deref(),
            Some("Omar K")
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_survive_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_mailgun(ChannelId::new(), &form_params(&bytes));
            let _ = parse_postmark(ChannelId::new(), &bytes);
            let _ = strip_quoted(&String::from_utf8_lossy(&bytes));
            let _ = message_ids(&String::from_utf8_lossy(&bytes));
        }
    }
}

/// A message that is not a reply in a customer's thread: a notification to the sales team or a
/// calendar invite.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    pub to: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    /// An iCalendar object and its method (`REQUEST`, `CANCEL`): sent as a `text/calendar`
    /// alternative (calendar clients show accept/decline) and as an `invite.ics` attachment.
    pub ics: Option<(&'a str, &'a str)>,
    /// Seeds the `Message-ID`, so a redelivered notice carries the same id (receivers can
    /// de-duplicate it).
    pub key: &'a str,
}

/// Builds a notice email (see [`Notice`]).
pub fn build_notice(
    settings: &Settings,
    notice: &Notice<'_>,
) -> Result<(Message, String), SendError> {
    let from = settings
        .sender_mailbox()
        .map_err(|e| SendError::Permanent(e.0))?;
    if notice.to.is_empty() {
        return Err(SendError::Permanent("the notice has no recipient".into()));
    }
    let our_id = format!("<{}@{}>", uuid_like(notice.key), settings.domain());
    let mut builder = Message::builder()
        .from(from)
        .subject(notice.subject)
        .message_id(Some(our_id.clone()));
    for to in notice.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|_| SendError::Permanent(format!("`{to}` is not an email address")))?;
        builder = builder.to(mailbox);
    }
    let text_parts = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(notice.text.to_owned()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html_body(notice.text)),
        );
    let body = match notice.ics {
        None => text_parts,
        Some((method, ics)) => {
            let method: String = method
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .take(16)
                .collect();
            let calendar =
                ContentType::parse(&format!("text/calendar; charset=utf-8; method={method}"))
                    .map_err(|e| SendError::Permanent(format!("calendar content type: {e}")))?;
            let attachment = ContentType::parse("application/ics; name=\"invite.ics\"")
                .map_err(|e| SendError::Permanent(format!("attachment content type: {e}")))?;
            MultiPart::mixed()
                .multipart(
                    text_parts
                        .singlepart(SinglePart::builder().header(calendar).body(ics.to_owned())),
                )
                .singlepart(
                    lettre::message::Attachment::new("invite.ics".into())
                        .body(ics.to_owned(), attachment),
                )
        }
    };
    let email = builder
        .multipart(body)
        .map_err(|e| SendError::Permanent(format!("could not build the email: {e}")))?;
    Ok((email, our_id))
}

/// Sends a notice through the channel's SMTP settings.
pub async fn send_notice(
    settings: &Settings,
    egress: Egress,
    notice: &Notice<'_>,
) -> Result<SendReceipt, SendError> {
    let (email, our_id) = build_notice(settings, notice)?;
    transport(settings, egress)
        .await?
        .send(email)
        .await
        .map_err(|e| {
            if e.is_permanent() {
                SendError::Permanent(format!("SMTP refused: {e}"))
            } else {
                SendError::Transient(format!("SMTP: {e}"))
            }
        })?;
    Ok(SendReceipt {
        provider_ref: Some(our_id),
    })
}
