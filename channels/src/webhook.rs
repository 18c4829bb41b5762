//! What every webhook adapter receives and answers, independent of any HTTP server.
//!
//! The runtime turns an HTTP request into a [`WebhookRequest`] (raw body bytes, lower-cased
//! headers, the public URL the provider called) and hands it to
//! [`ChannelSettings::handle_webhook`](crate::ChannelSettings::handle_webhook). The adapter
//! verifies authenticity **first** and answers either a [`Rejection`] (nothing may be stored) or
//! a [`WebhookOutput`]: the items to store and the reply the provider expects — and, when the
//! signature does not cover the body, the [`Nonce`] the runtime must remember so that the same
//! signature cannot carry another body.

use std::fmt;

use hmac::{Hmac, Mac};
use switchboard_core::model::InboundMessage;

/// Request headers with lower-cased names.
#[derive(Clone, Debug, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new<I, K, V>(pairs: I) -> Headers
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Headers(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
                .collect(),
        )
    }

    /// The first value of header `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One provider request, as the adapter sees it.
#[derive(Clone, Copy, Debug)]
pub struct WebhookRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The full URL the provider called, query included, as configured for this deployment
    /// (behind a proxy this is the public URL, not the one the server saw).
    pub public_url: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    pub headers: &'a Headers,
    /// The raw body bytes: signatures are computed over exactly these.
    pub body: &'a [u8],
}

/// Why a webhook was refused before anything was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No signature, token or credentials were presented.
    Missing,
    /// A signature or token was presented and is wrong.
    Invalid,
    /// The signed timestamp is outside the accepted window.
    Stale,
    /// A shared secret token (not a signature) is wrong; providers using one expect 401.
    WrongToken,
    /// A valid signature whose [`Nonce`] was already used with another body: a captured request
    /// replayed with other content. The runtime finds this (it alone remembers nonces).
    Replayed,
}

impl Rejection {
    /// 401 when nothing was presented or a shared token or a nonce is refused, 403 when a
    /// signature is wrong or stale.
    pub fn status(self) -> u16 {
        match self {
            Rejection::Missing | Rejection::WrongToken | Rejection::Replayed => 401,
            Rejection::Invalid | Rejection::Stale => 403,
        }
    }

    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Missing => "missing_signature",
            Rejection::Invalid => "bad_signature",
            Rejection::Stale => "stale_timestamp",
            Rejection::WrongToken => "bad_token",
            Rejection::Replayed => "replayed_token",
        }
    }
}

/// A single-use value covered by a provider's signature (Mailgun's `token`), whose signature
/// does not cover the body. The runtime remembers it, with the body's digest, for as long as
/// the signature is accepted, in the transaction that stores the request's items: the same
/// nonce with the same body is a provider's retry (its items are duplicates), with another body
/// a replay ([`Rejection::Replayed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nonce {
    pub value: String,
    /// SHA-256 of the request's content, as the adapter reads it.
    pub body_sha256: [u8; 32],
    /// Unix seconds after which the signature is refused as stale anyway: the nonce may be
    /// forgotten then.
    pub expires_at: i64,
}

/// Why a webhook could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Not authentic: answered 401/403, nothing stored.
    #[error("webhook rejected: {}", .0.reason())]
    Rejected(Rejection),
    /// Authentic but unreadable (or a method the provider never uses): 400, nothing stored.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

/// The delivery state a provider reports for something we sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A provider's report about an outbound message (never a customer message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The provider's id of the message we sent (the outbox row's `provider_ref`).
    pub provider_ref: String,
    pub state: DeliveryState,
    pub error: Option<String>,
}

/// One thing a webhook told us.
#[derive(Clone, Debug, PartialEq)]
pub enum InboundItem {
    /// A customer message: stored, then answered by the agent.
    Message(InboundMessage),
    /// A customer message that continues a thread (email): `references` are the message ids it
    /// answers (`In-Reply-To` and `References`). The runtime files it under the conversation
    /// that owns any of them, whoever sent it; otherwise under its sender.
    Threaded {
        message: InboundMessage,
        references: Vec<String>,
    },
    /// A voice note (or audio message): its audio is fetched from the provider and transcribed
    /// when speech to text is configured; otherwise the customer is asked to type.
    VoiceNote {
        message: InboundMessage,
        media: crate::speech::MediaRef,
    },
    /// A delivery report about an outbound message.
    Status(StatusUpdate),
    /// The customer asked to receive nothing more (SMS `STOP`): their address on the channel.
    OptOut(String),
    /// The customer asked to receive messages again (SMS `START`).
    OptIn(String),
}

/// What replaces U+0000 in anything an adapter hands over.
const NUL_REPLACEMENT: &str = "\u{FFFD}";

impl InboundItem {
    /// The item with every U+0000 replaced by U+FFFD, in its texts, ids, names, references and
    /// payload (keys included). PostgreSQL's `text` and `jsonb` cannot hold U+0000, which JSON
    /// (`\u0000`), forms (`%00`) and e-mail (raw bytes, encoded words, quoted-printable) carry
    /// as readily as any other character: stored as it came, such an item fails the whole
    /// delivery, again at each of the provider's retries. Every way items leave this crate
    /// (webhooks, IMAP, Telegram polling) passes through here.
    pub fn storable(self) -> InboundItem {
        fn text(s: &mut String) {
            if s.contains('\0') {
                *s = s.replace('\0', NUL_REPLACEMENT);
            }
        }
        fn message(m: &mut InboundMessage) {
            text(&mut m.provider_message_id);
            text(&mut m.contact_external_id);
            text(&mut m.text);
            if let Some(name) = &mut m.contact_display_name {
                text(name);
            }
            json(&mut m.payload);
        }
        fn json(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(s) => text(s),
                serde_json::Value::Array(items) => items.iter_mut().for_each(json),
                serde_json::Value::Object(map) => {
                    if map.keys().any(|k| k.contains('\0')) {
                        *map = std::mem::take(map)
                            .into_iter()
                            .map(|(k, v)| (k.replace('\0', NUL_REPLACEMENT), v))
                            .collect();
                    }
                    map.values_mut().for_each(json);
                }
                serde_json::Value::Null
                | serde_json::Value::Bool(_)
                | serde_json::Value::Number(_) => {}
            }
        }
        let mut item = self;
        match &mut item {
            InboundItem::Message(m) => message(m),
            InboundItem::Threaded {
                message: m,
                references,
            } => {
                message(m);
                references.iter_mut().for_each(text);
            }
            InboundItem::VoiceNote { message: m, media } => {
                message(m);
                match media {
                    crate::speech::MediaRef::Whatsapp { id } => text(id),
                    crate::speech::MediaRef::Telegram { file_id } => text(file_id),
                }
            }
            InboundItem::Status(s) => {
                text(&mut s.provider_ref);
                if let Some(e) = &mut s.error {
                    text(e);
                }
            }
            InboundItem::OptOut(address) | InboundItem::OptIn(address) => text(address),
        }
        item
    }
}

/// A fixed HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json_ok() -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: r#"{"ok":true}"#.into(),
        }
    }

    pub fn text(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn xml(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Renders the answer of a synchronous channel (voice): with the agent's reply, or with `None`
/// when the reply was not ready within the provider's budget.
pub type RenderAnswer = Box<dyn FnOnce(Option<&str>) -> Reply + Send>;

/// How to answer the provider.
pub enum Response {
    Now(Reply),
    /// Wait (within `budget`) for the agent's reply to the inbound message with this provider
    /// id, then answer with `render(Some(reply))`, or `render(None)` if it is not ready.
    AwaitAnswer {
        provider_message_id: String,
        budget: std::time::Duration,
        render: RenderAnswer,
    },
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Now(r) => f.debug_tuple("Now").field(r).finish(),
            Response::AwaitAnswer {
                provider_message_id,
                budget,
                ..
            } => f
                .debug_struct("AwaitAnswer")
                .field("provider_message_id", provider_message_id)
                .field("budget", budget)
                .finish_non_exhaustive(),
        }
    }
}

/// What an authentic webhook produced.
#[derive(Debug)]
pub struct WebhookOutput {
    pub items: Vec<InboundItem>,
    pub response: Response,
    /// To remember before storing `items` (see [`Nonce`]); `None` when the signature covers
    /// the body or there is no signature.
    pub nonce: Option<Nonce>,
}

impl WebhookOutput {
    pub fn reply(items: Vec<InboundItem>, reply: Reply) -> WebhookOutput {
        WebhookOutput {
            items,
            response: Response::Now(reply),
            nonce: None,
        }
    }

    pub fn with_nonce(self, nonce: Nonce) -> WebhookOutput {
        WebhookOutput {
            nonce: Some(nonce),
            ..self
        }
    }

    /// The output with its items [storable](InboundItem::storable), and its nonce (stored too).
    pub fn storable(self) -> WebhookOutput {
        WebhookOutput {
            items: self.items.into_iter().map(InboundItem::storable).collect(),
            nonce: self.nonce.map(|n| Nonce {
                value: n.value.replace('\0', NUL_REPLACEMENT),
                ..n
            }),
            ..self
        }
    }
}

/// Constant-time equality of two byte strings (length is not secret), by `subtle`: the
/// comparison every signature, token and secret check uses.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// HMAC-SHA256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex (either case); `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Form (or query) parameters in order of appearance.
pub fn form_params(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// The text fields of a `multipart/form-data` body (file parts are skipped), or `None` when the
/// content type has no boundary. Never panics, whatever the bytes.
pub fn multipart_fields(content_type: &str, body: &[u8]) -> Option<Vec<(String, String)>> {
    let boundary = content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })?;
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut fields = Vec::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let start = find(rest, delimiter)?;
    rest = &rest[start + delimiter.len()..];
    while fields.len() < 1000 {
        if rest.starts_with(b"--") {
            break; // The closing delimiter.
        }
        let end = find(rest, delimiter).unwrap_or(rest.len());
        let part = &rest[..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(head_end) = find(part, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&part[..head_end]);
            let value = &part[head_end + 4..];
            let disposition = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
                .unwrap_or("");
            let name = disposition.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
            });
            let is_file = disposition.contains("filename=");
            if let (Some(name), false) = (name, is_file) {
                fields.push((name, String::from_utf8_lossy(value).into_owned()));
            }
        }
        if end >= rest.len() {
            break;
        }
        rest = &rest[end + delimiter.len()..];
    }
    Some(fields)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first value of `name` among `params`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Splits `text` into parts of at most `max_chars` characters, preferring to cut after a
/// paragraph, then a sentence, then a word; a word longer than a whole part is cut inside.
/// Parts are trimmed; empty input gives no parts.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let count = rest.chars().count();
        if count <= max_chars {
            parts.push(rest.to_owned());
            break;
        }
        // Byte offset just past the first `max_chars` characters.
        let limit = rest
            .char_indices()
            .nth(max_chars)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let window = &rest[..limit];
        let cut = best_cut(window).unwrap_or(limit);
        let (head, tail) = rest.split_at(cut);
        let head = head.trim_end();
        if head.is_empty() {
            // Only white space before the cut: take the window as it is.
            parts.push(window.to_owned());
            rest = rest[limit..].trim_start();
        } else {
            parts.push(head.to_owned());
            rest = tail.trim_start();
        }
    }
    parts
}

/// Where to cut inside `window` (a byte offset), in order of preference; only cuts in the
/// second half, so parts do not become tiny.
fn best_cut(window: &str) -> Option<usize> {
    let half = window.len() / 2;
    let after = |pat: &str| {
        window
            .rmatch_indices(pat)
            .map(|(i, m)| i + m.len())
            .find(|&i| i >= half)
    };
    after("\n\n")
        .or_else(|| {
            [". ", "! ", "? ", "。", "؟ ", "\n"]
                .iter()
                .filter_map(|p| after(p))
                .max()
        })
        .or_else(|| after(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_prefers_sentences_and_words_and_keeps_every_character() {
        let text =
            "First sentence here. Second one is a little longer! Third? Fourth words go on and on";
        let parts = split_text(text, 30);
        assert!(parts.iter().all(|p| p.chars().count() <= 30), "{parts:?}");
        assert_eq!(parts[0], "First sentence here.");
        let rejoined: String = parts.join(" ");
        assert_eq!(
            rejoined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(split_text("short", 10), vec!["short"]);
        assert!(split_text("   ", 10).is_empty());
        // A word longer than a part is cut, never lost; Arabic is counted in characters.
        let long = "ب".repeat(25);
        let parts = split_text(&long, 10);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), long);
    }

    #[test]
    fn multipart_text_fields_are_read_and_files_skipped() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"sender\"\r\n\r\nomar@x.com\r\n--XyZ\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--XyZ\r\nContent-Disposition: form-data; name=\"body-plain\"\r\n\r\nline 1\r\nline 2\r\n--XyZ--\r\n";
        let fields = multipart_fields("multipart/form-data; boundary=\"XyZ\"", body).unwrap();
        assert_eq!(
            fields,
            vec![
                ("sender".to_owned(), "omar@x.com".to_owned()),
                ("body-plain".to_owned(), "line 1\r\nline 2".to_owned())
            ]
        );
        assert_eq!(multipart_fields("multipart/form-data", body), None);
    }

    proptest::proptest! {
        #[test]
        fn multipart_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), b in "[a-zA-Z0-9]{0,8}") {
            let _ = multipart_fields(&format!("multipart/form-data; boundary={b}"), &bytes);
        }
    }

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        assert_eq!(hex(&[0, 171, 255]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 171, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("éé"), None);
    }
}
