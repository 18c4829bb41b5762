//! What the fuzz targets share: channel settings built the way the runtime builds them, the
//! signers a provider would use (written here from the providers' documentation, so a target
//! checks the adapters against an independent oracle rather than against themselves), and the
//! promises every inbound item must keep whatever the request was.
//!
//! Targets feed the library's real entry points ([`ChannelSettings::handle_webhook`], the
//! e-mail, document and prompt functions); nothing here parses what a provider sent.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use switchboard_channels::webhook::{Headers, InboundItem, WebhookRequest};
use switchboard_channels::{split_secrets, ChannelSettings, WebhookError, WebhookOutput};
use switchboard_core::model::{ChannelKind, InboundMessage};
use switchboard_core::ChannelId;
use switchboard_knowledge::chunk::ChunkConfig;

/// The channel every request is addressed to.
pub fn channel() -> ChannelId {
    "0190f0c4-7a4e-7b3c-9d2e-5f6a7b8c9d0e"
        .parse()
        .expect("a valid UUID")
}

/// Channel settings from one flat JSON object, split and put back together as the runtime
/// does when it opens a stored channel.
pub fn settings(kind: ChannelKind, flat: Value) -> ChannelSettings {
    let Value::Object(mut config) = flat else {
        panic!("settings are a JSON object")
    };
    let secrets: Map<String, Value> = split_secrets(kind, &mut config);
    ChannelSettings::parse(kind, &config, &secrets).expect("the fuzz settings are valid")
}

/// One request through the adapter, as the runtime hands it over.
pub fn handle(
    settings: &ChannelSettings,
    method: &str,
    public_url: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<WebhookOutput, WebhookError> {
    let headers = Headers::new(headers.iter().map(|(k, v)| (*k, v.clone())));
    let query = public_url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    let request = WebhookRequest {
        method,
        public_url,
        query,
        headers: &headers,
        body,
    };
    settings.handle_webhook(channel(), &request)
}

/// HMAC-SHA256, as Meta (`X-Hub-Signature-256`) and Mailgun sign.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Twilio's `X-Twilio-Signature`, as its documentation and SDKs compute it: base64 of
/// HMAC-SHA1 under the auth token of the URL followed by every parameter's name and value,
/// sorted by name then value, each distinct pair once.
pub fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(twilio_mac(token, &twilio_message(url, params)))
}

/// The bytes Twilio signs for `url` and `params`.
pub fn twilio_message(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut pairs: Vec<&(String, String)> = params.iter().collect();
    pairs.sort();
    pairs.dedup();
    let mut message = url.as_bytes().to_vec();
    for (name, value) in pairs {
        message.extend_from_slice(name.as_bytes());
        message.extend_from_slice(value.as_bytes());
    }
    message
}

fn twilio_mac(token: &str, message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether an adapter refused the request as not authentic.
pub fn rejected(result: &Result<WebhookOutput, WebhookError>) -> bool {
    matches!(result, Err(WebhookError::Rejected(_)))
}

/// The longest provider message id the store takes (`inbound_events.provider_message_id`).
pub const MAX_PROVIDER_ID_CHARS: usize = 256;

/// Checks the promises every item of an authentic request keeps, so the store can take it
/// whatever the provider sent: a provider id the store's constraint accepts, text the agent
/// can read, and nothing PostgreSQL refuses in a `text` or `jsonb` column.
pub fn check_items(items: &[InboundItem]) {
    for item in items {
        match item {
            InboundItem::Message(m)
            | InboundItem::Threaded { message: m, .. }
            | InboundItem::VoiceNote { message: m, .. } => check_message(m),
            InboundItem::Status(s) => {
                assert!(!s.provider_ref.is_empty(), "status without a reference");
                assert_storable(&s.provider_ref);
                if let Some(e) = &s.error {
                    assert_storable(e);
                }
            }
            InboundItem::OptOut(address) | InboundItem::OptIn(address) => {
                assert!(!address.is_empty(), "opt-out or opt-in without an address");
                assert_storable(address);
            }
        }
        if let InboundItem::Threaded { references, .. } = item {
            references.iter().for_each(|r| assert_storable(r));
        }
    }
}

/// The promises of one inbound message (see [`check_items`]).
pub fn check_message(m: &InboundMessage) {
    let id_chars = m.provider_message_id.chars().count();
    assert!(
        (1..=MAX_PROVIDER_ID_CHARS).contains(&id_chars),
        "provider message id of {id_chars} characters: {:?}",
        m.provider_message_id
    );
    assert!(
        !m.text.trim().is_empty(),
        "a message without text: {:?}",
        m.text
    );
    assert_storable(&m.provider_message_id);
    assert_storable(&m.contact_external_id);
    assert_storable(&m.text);
    if let Some(name) = &m.contact_display_name {
        assert_storable(name);
    }
    assert_storable_json(&m.payload);
}

/// PostgreSQL's `text` cannot hold U+0000.
pub fn assert_storable(s: &str) {
    assert!(
        !s.contains('\0'),
        "U+0000 would be refused by the store: {s:?}"
    );
}

/// PostgreSQL's `jsonb` refuses `\u0000` in strings and keys.
pub fn assert_storable_json(v: &Value) {
    match v {
        Value::String(s) => assert_storable(s),
        Value::Array(items) => items.iter().for_each(assert_storable_json),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            assert_storable(k);
            assert_storable_json(v);
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Splits `data` at its first newline: a line of request metadata (a URL, a content type, a
/// file name) and the body. Seeds are written in this shape so they stay readable.
pub fn first_line(data: &[u8]) -> (&str, &[u8]) {
    let (line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    (std::str::from_utf8(line).unwrap_or(""), rest)
}

/// A chunk configuration that varies with the input: `max_chars` from 100 to 1,000 (the
/// smallest the indexer accepts to the default), any overlap under half of it.
pub fn chunk_config(data: &[u8]) -> ChunkConfig {
    let seed = data.len()
        ^ usize::from(data.first().copied().unwrap_or(0)) << 8
        ^ usize::from(data.last().copied().unwrap_or(0)) << 16;
    let max = ChunkConfig::MIN_MAX_CHARS + seed % 901;
    let overlap = (seed / 901) % (max / 2);
    ChunkConfig::new(max, overlap).expect("a valid chunk configuration")
}

/// Lets panics unwind to a `catch_unwind` in the library instead of aborting at once (as
/// libFuzzer's hook does), for readers that contain a dependency's panics by design. A panic
/// that escapes the target still aborts (libfuzzer-sys catches it). Each panic location is
/// printed once, so a run's log lists what was contained.
pub fn contain_library_panics() {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if seen
            .get_or_insert_with(HashSet::new)
            .insert(location.clone())
        {
            eprintln!("contained panic at {location}: {info}");
        }
    }));
}
