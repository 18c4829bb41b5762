//! Email: inbound through a provider's webhook, outbound through SMTP with `lettre`.
//!
//! Inbound: Mailgun-style form posts are verified with HMAC-SHA256(signing key, timestamp +
//! token) and a timestamp window (stale or replayed-late requests are refused); providers
//! without signatures (Postmark's JSON) are protected with HTTP basic auth. The signature does
//! not cover the body, so a verified post hands its token to the runtime ([`Nonce`]), which
//! remembers it for the window and refuses the same token with another body. Each email is
//! keyed by its `Message-ID`; its `In-Reply-To`/`References` travel with it so the runtime can
//! map a reply to the conversation it continues. Quoted text and signatures are stripped (the
//! provider's stripped text is preferred when it has one).
//!
//! Sender authenticity: an email's `From` is a claim. What the receiving side reported about it
//! (SPF, DKIM, DMARC, its spam filter: [`sender_check_failures`]) marks a message whose checks
//! failed as unverified ([`InboundMessage::mark_unverified`]); the turn then refuses the actions
//! only the contact on file may take.
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
use switchboard_core::model::{InboundMessage, UnverifiedSender};
use switchboard_core::ChannelId;

use crate::outbound::{Delivery, OutboundMessage, SendError, SendReceipt};
use crate::settings::InvalidSettings;
use crate::webhook::{
    constant_time_eq, form_params, hmac_sha256, param, unhex, InboundItem, Nonce, Rejection, Reply,
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

/// A Mailgun-style signature that verified: its token, and until when (Unix seconds) the
/// signature is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedToken {
    pub token: String,
    pub valid_until: i64,
}

impl SignedToken {
    /// The [`Nonce`] the runtime remembers: the token, with a digest of the fields the post
    /// carried (see [`fields_sha256`]).
    pub fn with_body(self, params: &[(String, String)]) -> Nonce {
        Nonce {
            value: self.token,
            body_sha256: fields_sha256(params),
            expires_at: self.valid_until,
        }
    }
}

/// Checks a Mailgun-style signature: hex HMAC-SHA256(key, timestamp + token), timestamp within
/// `max_age` of `now` (Unix seconds). The signature covers the timestamp and the token only,
/// not the body: the token it returns is what keeps a captured post from being replayed with
/// another body (see [`Nonce`]).
pub fn verify_mailgun(
    key: &str,
    timestamp: Option<&str>,
    token: Option<&str>,
    signature: Option<&str>,
    now: i64,
    max_age: u64,
) -> Result<SignedToken, Rejection> {
    let (Some(ts), Some(token), Some(sig)) = (timestamp, token, signature) else {
        return Err(Rejection::Missing);
    };
    let expected = hmac_sha256(key.as_bytes(), format!("{ts}{token}").as_bytes());
    let presented = unhex(sig.trim()).ok_or(Rejection::Invalid)?;
    if !constant_time_eq(&presented, &expected) {
        return Err(Rejection::Invalid);
    }
    let ts: i64 = ts.trim().parse().map_err(|_| Rejection::Invalid)?;
    if now.abs_diff(ts) > max_age {
        return Err(Rejection::Stale);
    }
    Ok(SignedToken {
        token: token.to_owned(),
        valid_until: ts.saturating_add(i64::try_from(max_age).unwrap_or(i64::MAX)),
    })
}

/// SHA-256 of a post's fields, independent of their order and of the encoding that carried
/// them (a provider that re-encodes a retry as `multipart/form-data` with a new boundary posts
/// the same fields): the fields sorted, each name and value prefixed with its length.
pub fn fields_sha256(params: &[(String, String)]) -> [u8; 32] {
    use sha2::Digest;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut hash = sha2::Sha256::new();
    for (k, v) in sorted {
        for part in [k, v] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize().into()
}

/// What the receiving side reported against the sender, from an email's headers (and
/// Mailgun's fields of the same names): SPF `fail`/`softfail` (`X-Mailgun-Spf`, `Received-SPF`,
/// `spf=` in `Authentication-Results`), DKIM `fail` (`X-Mailgun-Dkim-Check-Result`, `dkim=`),
/// DMARC `fail` (`dmarc=`), and a spam flag (`X-Mailgun-Sflag: Yes`, `X-Spam-Flag: YES`,
/// `X-Spam-Status: Yes, …`). Sorted, without repeats; empty when nothing failed.
///
/// Only failures count, wherever they appear: a sender can add headers of their own, but a
/// forged `pass` cannot hide the receiver's `fail`, and a forged `fail` only restricts the
/// forger. `none`, `neutral` and missing results are not failures (many honest domains publish
/// no SPF or DKIM).
pub fn sender_check_failures<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<UnverifiedSender> {
    let first_word = |v: &str| {
        v.split(|c: char| c.is_whitespace() || c == ';' || c == ',' || c == '(')
            .find(|w| !w.is_empty())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let spf_failed = |r: &str| r == "fail" || r == "softfail";
    let mut out = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let found: &[UnverifiedSender] = match name.as_str() {
            "x-mailgun-spf" | "received-spf" if spf_failed(&first_word(value)) => {
                &[UnverifiedSender::SpfFailed]
            }
            "x-mailgun-dkim-check-result" if first_word(value) == "fail" => {
                &[UnverifiedSender::DkimFailed]
            }
            "x-mailgun-sflag" | "x-spam-flag" | "x-spam-status" if first_word(value) == "yes" => {
                &[UnverifiedSender::SpamFlagged]
            }
            "authentication-results" => {
                for clause in value.split(';') {
                    let Some((method, result)) = clause.trim().split_once('=') else {
                        continue;
                    };
                    let result = first_word(result);
                    match method.trim().to_ascii_lowercase().as_str() {
                        "spf" if spf_failed(&result) => out.push(UnverifiedSender::SpfFailed),
                        "dkim" if result == "fail" => out.push(UnverifiedSender::DkimFailed),
                        "dmarc" if result == "fail" => out.push(UnverifiedSender::DmarcFailed),
                        _ => {}
                    }
                }
                &[]
            }
            _ => &[],
        };
        out.extend_from_slice(found);
    }
    out.sort();
    out.dedup();
    out
}

/// Marks the message of `item` unverified for each of `failures`.
pub(crate) fn with_sender_checks(
    mut item: Option<InboundItem>,
    failures: &[UnverifiedSender],
) -> Option<InboundItem> {
    if let Some(InboundItem::Threaded { message, .. } | InboundItem::Message(message)) = &mut item {
        for why in failures {
            message.mark_unverified(*why);
        }
    }
    item
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
    let mut nonce = None;
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
            Some(key) => {
                nonce = Some(
                    verify_mailgun(
                        key.expose_secret(),
                        param(&params, "timestamp"),
                        param(&params, "token"),
                        param(&params, "signature"),
                        chrono::Utc::now().timestamp(),
                        settings.webhook_max_age_secs,
                    )
                    .map_err(WebhookError::Rejected)?
                    .with_body(&params),
                );
            }
            None => match &settings.webhook_basic_auth {
                Some(expected) => check_basic_auth(expected, req.headers.get("authorization"))
                    .map_err(WebhookError::Rejected)?,
                None => return Err(WebhookError::Rejected(Rejection::Missing)),
            },
        }
        parse_mailgun(channel, &params)?
    };
    let output = WebhookOutput::reply(item.into_iter().collect(), Reply::json_ok());
    Ok(match nonce {
        Some(n) => output.with_nonce(n),
        None => output,
    })
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

/// The ids a message points back at: its `References`, then its `In-Reply-To`, each id once
/// and in order. A set keeps this linear: a hostile header can carry thousands of ids.
pub fn thread_ids(references: Vec<String>, in_reply_to: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    references
        .into_iter()
        .chain(in_reply_to)
        .filter(|id| seen.insert(id.clone()))
        .collect()
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
    let references = thread_ids(
        header("References").map(message_ids).unwrap_or_default(),
        header("In-Reply-To").map(message_ids).unwrap_or_default(),
    );
    let text = match param(params, "stripped-text").map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => strip_quoted(param(params, "body-plain").unwrap_or("")),
    };
    let failures = sender_check_failures(
        params
            .iter()
            .chain(headers.iter())
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let item = email_item(
        channel,
        message_id,
        format!("mailgun:{}", param(params, "token").unwrap_or("")),
        from,
        header("subject").unwrap_or(""),
        text,
        references,
    )?;
    Ok(with_sender_checks(item, &failures))
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
    let references = thread_ids(
        header("References").map(message_ids).unwrap_or_default(),
        header("In-Reply-To").map(message_ids).unwrap_or_default(),
    );
    let text = match v["StrippedTextReply"].as_str().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => strip_quoted(v["TextBody"].as_str().unwrap_or("")),
    };
    let failures = sender_check_failures(
        v["Headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h["Name"].as_str()?, h["Value"].as_str()?))),
    );
    let item = email_item(
        channel,
        message_id,
        format!("postmark:{}", v["MessageID"].as_str().unwrap_or("")),
        &from,
        v["Subject"].as_str().unwrap_or(""),
        text,
        references,
    )?;
    Ok(with_sender_checks(item, &failures))
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

/// The first of `addrs` (all allowed, at least one) that accepts a TCP connection, so a host
/// whose first address cannot be reached (IPv6 on a network without it, one server of several
/// down) is reached on another; the first when none answers, so that the send fails with the
/// SMTP client's own error. Only a connection is opened here, never a message sent, so trying
/// the next address can never deliver twice.
async fn reachable(addrs: &[std::net::SocketAddr]) -> std::net::SocketAddr {
    if addrs.len() > 1 {
        for addr in addrs {
            let attempt = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
                return *addr;
            }
        }
    }
    addrs[0]
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
            reachable(&addrs).await.ip().to_string()
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

/// Hands a built email to the channel's SMTP server; `our_id` is its Message-ID.
async fn submit(
    settings: &Settings,
    egress: Egress,
    email: Message,
    our_id: String,
) -> Result<SendReceipt, SendError> {
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

pub(crate) async fn send(
    settings: &Settings,
    egress: Egress,
    delivery: &Delivery<'_>,
    msg: &OutboundMessage,
) -> Result<SendReceipt, SendError> {
    let (email, our_id) = build_message(settings, delivery, msg)?;
    submit(settings, egress, email, our_id).await
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
        // The token comes back with the end of the signature's window.
        assert_eq!(
            v("1700000000", &sig, 1_700_000_100),
            Ok(SignedToken {
                token: "tok".into(),
                valid_until: 1_700_000_300
            })
        );
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
        // A signed timestamp at the ends of the range is stale, not an overflow.
        let extreme = i64::MIN.to_string();
        let sig = crate::webhook::hex(&hmac_sha256(b"key-1", format!("{extreme}tok").as_bytes()));
        assert_eq!(v(&extreme, &sig, i64::MAX), Err(Rejection::Stale));
    }

    #[tokio::test]
    async fn smtp_goes_to_the_first_address_that_answers() {
        let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = listening.local_addr().unwrap();
        // A port nobody listens on: bound, then released.
        let down = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(reachable(&[down, up]).await, up);
        assert_eq!(reachable(&[up, down]).await, up);
        // None answers: the first, and the SMTP client reports why.
        assert_eq!(reachable(&[down]).await, down);
        assert_eq!(reachable(&[down, down]).await, down);
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_body_digest_ignores_field_order_and_sees_any_change() {
        let a = fields(&[
            ("token", "t"),
            ("body-plain", "hi"),
            ("Message-Id", "<1@x>"),
        ]);
        let reordered = fields(&[
            ("Message-Id", "<1@x>"),
            ("token", "t"),
            ("body-plain", "hi"),
        ]);
        assert_eq!(fields_sha256(&a), fields_sha256(&reordered));
        let other_text = fields(&[
            ("token", "t"),
            ("body-plain", "bye"),
            ("Message-Id", "<1@x>"),
        ]);
        assert_ne!(fields_sha256(&a), fields_sha256(&other_text));
        // Lengths are part of the digest: moving text between fields is a change.
        let shifted = fields(&[
            ("token", "t"),
            ("body-plain", "h"),
            ("Message-Id", "i<1@x>"),
        ]);
        assert_ne!(fields_sha256(&a), fields_sha256(&shifted));
        let extra = fields(&[
            ("token", "t"),
            ("body-plain", "hi"),
            ("Message-Id", "<1@x>"),
            ("References", "<0@x>"),
        ]);
        assert_ne!(fields_sha256(&a), fields_sha256(&extra));
    }

    #[test]
    fn provider_auth_failures_are_read_from_mailgun_postmark_and_imap_headers() {
        use UnverifiedSender::*;
        let f = |h: &[(&str, &str)]| sender_check_failures(h.iter().copied());
        // Mailgun's own fields.
        assert_eq!(f(&[("X-Mailgun-Spf", "Fail")]), [SpfFailed]);
        assert_eq!(f(&[("X-Mailgun-Spf", "SoftFail")]), [SpfFailed]);
        assert_eq!(f(&[("X-Mailgun-Dkim-Check-Result", "Fail")]), [DkimFailed]);
        assert_eq!(f(&[("X-Mailgun-Sflag", "Yes")]), [SpamFlagged]);
        assert!(f(&[
            ("X-Mailgun-Spf", "Pass"),
            ("X-Mailgun-Dkim-Check-Result", "Pass"),
            ("X-Mailgun-Sflag", "No"),
        ])
        .is_empty());
        // Neither a missing record nor a neutral result is a failure.
        assert!(f(&[("X-Mailgun-Spf", "Neutral"), ("x-mailgun-spf", "None")]).is_empty());
        // Postmark: `Received-SPF` and SpamAssassin's headers.
        assert_eq!(
            f(&[(
                "Received-SPF",
                "fail (example.com: domain of mallory@x does not designate 1.2.3.4 as permitted sender)"
            )]),
            [SpfFailed]
        );
        assert!(f(&[(
            "Received-SPF",
            "Pass (sender SPF authorized) identity=mailfrom"
        )])
        .is_empty());
        assert_eq!(
            f(&[(
                "X-Spam-Status",
                "Yes, score=7.1 required=5.0 tests=BAYES_99"
            )]),
            [SpamFlagged]
        );
        assert!(f(&[("X-Spam-Status", "No, score=0.1"), ("X-Spam-Score", "9")]).is_empty());
        // `Authentication-Results` (an IMAP server's MTA), with folding and comments.
        assert_eq!(
            f(&[(
                "Authentication-Results",
                "mx.sahara.example;\r\n\tdkim=fail (bad signature) header.d=customer.example;\r\n spf=softfail smtp.mailfrom=customer.example;\r\n dmarc=fail (p=reject) header.from=customer.example"
            )]),
            [SpfFailed, DkimFailed, DmarcFailed]
        );
        assert!(f(&[(
            "Authentication-Results",
            "mx.sahara.example; dkim=pass header.d=x; spf=pass; dmarc=pass"
        )])
        .is_empty());
        // A forged `pass` does not hide the receiver's `fail`; each reason once.
        assert_eq!(
            f(&[
                ("Authentication-Results", "forged; spf=pass"),
                ("Received-SPF", "fail"),
                ("X-Mailgun-Spf", "Fail"),
            ]),
            [SpfFailed]
        );
        assert!(f(&[]).is_empty());
    }

    #[test]
    fn a_mailgun_post_with_a_failed_check_is_marked_unverified_and_keeps_no_name() {
        let post = |extra: &[(&str, &str)]| {
            let mut p = fields(&[
                ("sender", "omar@customer.example"),
                ("from", "Omar K <omar@customer.example>"),
                ("Message-Id", "<m1@customer.example>"),
                ("body-plain", "Please cancel my appointment"),
            ]);
            p.extend(fields(extra));
            let Some(InboundItem::Threaded { message, .. }) =
                parse_mailgun(ChannelId::new(), &p).unwrap()
            else {
                panic!("not parsed")
            };
            message
        };
        let good = post(&[("X-Mailgun-Spf", "Pass")]);
        assert!(good.sender_verified());
        assert_eq!(good.contact_display_name.as_deref(), Some("Omar K"));
        let spoofed = post(&[("X-Mailgun-Spf", "Fail")]);
        assert!(!spoofed.sender_verified());
        assert_eq!(spoofed.contact_display_name, None);
        assert_eq!(
            spoofed.payload[switchboard_core::model::SENDER_UNVERIFIED_BECAUSE_KEY],
            json!(["spf_failed"])
        );
        // The same failure reported inside `message-headers` counts as well.
        let headers = json!([["X-Mailgun-Dkim-Check-Result", "Fail"]]).to_string();
        assert!(!post(&[("message-headers", &headers)]).sender_verified());
        // A Postmark post with its SPF header.
        let body = json!({
            "FromFull": {"Email": "omar@customer.example", "Name": "Omar"},
            "TextBody": "Please cancel my appointment",
            "MessageID": "pm-1",
            "Headers": [{"Name": "Received-SPF", "Value": "SoftFail (domain transitioning)"}],
        });
        let Some(InboundItem::Threaded { message, .. }) =
            parse_postmark(ChannelId::new(), body.to_string().as_bytes()).unwrap()
        else {
            panic!("not parsed")
        };
        assert!(!message.sender_verified());
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
            thread_ids(message_ids("<a@x> <b@y> <a@x>"), message_ids("<b@y> <c@z>")),
            ["<a@x>", "<b@y>", "<c@z>"]
        );
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
    submit(settings, egress, email, our_id).await
}
