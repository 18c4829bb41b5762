//! Twilio webhooks — SMS, Voice (speech as text) and the generic transcript webhook of a voice
//! channel: `X-Twilio-Signature` (and `X-Switchboard-Signature`), the form parsers and the
//! TwiML answers.
//!
//! The input is the public URL Twilio called, a newline, and the form body; a URL with
//! `/voice/` in it goes to a voice channel (and, ending in `/transcript`, to its transcript
//! webhook), any other to an SMS channel. Asserted for every input:
//! - the request signed as Twilio signs it (an independent HMAC-SHA1 over the URL, without
//!   credentials, and the sorted parameters) is authentic, and so is one signed over the URL
//!   with its default port written out;
//! - that signature verifies no other URL, no body whose signed parameters differ, and no
//!   request signed with another token; without the header the request is refused as missing;
//! - every item parsed from an authentic request keeps the store's promises;
//! - every TwiML answer is well-formed XML with a `<Response>` root, whatever the agent's reply
//!   and the channel's texts contain; the transcript webhook answers JSON carrying the reply
//!   exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchboard_channels::webhook::{form_params, Rejection, Reply, Response};
use switchboard_channels::{ChannelSettings, WebhookError, WebhookOutput};
use switchboard_core::model::ChannelKind;
use switchboard_fuzz::{
    check_items, first_line, handle, hex, hmac_sha256, rejected, settings, twilio_message,
    twilio_signature,
};

const AUTH_TOKEN: &str = "12345";
const TRANSCRIPT_SECRET: &str = "transcript-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    let (url, body) = first_line(data);
    // The runtime calls adapters with its configured public base URL followed by the path.
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return;
    }
    // The agent's reply, as arbitrary as the request.
    let answer = String::from_utf8_lossy(body);
    if url.contains("/voice/") {
        let settings = settings(
            ChannelKind::Voice,
            json!({
                "auth_token": AUTH_TOKEN,
                "transcript_secret": TRANSCRIPT_SECRET,
                // Texts with XML's special characters, which the TwiML must escape.
                "voice": "Polly.Zeina\"/><Hangup/>",
                "language": "ar-AE' x='<&>",
                "greeting": "Hello <there> & \"welcome\"",
                "holding_phrase": "One moment ]]> please",
            }),
        );
        if url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .ends_with("/transcript")
        {
            transcript(&settings, url, body, &answer);
        } else {
            twilio(&settings, url, body, &answer);
        }
    } else {
        let settings = settings(
            ChannelKind::Sms,
            json!({
                "account_sid": "AC0123456789abcdef0123456789abcdef",
                "from_number": "+15550001111",
                "auth_token": AUTH_TOKEN,
            }),
        );
        twilio(&settings, url, body, &answer);
    }
});

fn post(
    settings: &ChannelSettings,
    url: &str,
    signature: Option<String>,
    body: &[u8],
) -> Result<WebhookOutput, WebhookError> {
    let headers: Vec<(&str, String)> = signature
        .map(|s| vec![("X-Twilio-Signature", s)])
        .unwrap_or_default();
    handle(settings, "POST", url, &headers, body)
}

fn twilio(settings: &ChannelSettings, url: &str, body: &[u8], answer: &str) {
    let params = form_params(body);
    // Twilio signs the URL it called without the credentials of HTTP authentication.
    let signed = without_userinfo(url);
    let signature = twilio_signature(AUTH_TOKEN, &signed, &params);
    let authentic = post(settings, url, Some(signature.clone()), body);
    assert!(
        !rejected(&authentic),
        "a correctly signed request was refused"
    );
    if let Ok(output) = authentic {
        check_items(&output.items);
        check_twiml(output.response, answer);
    }
    if let Some(with_port) = with_default_port(&signed) {
        let signature = twilio_signature(AUTH_TOKEN, &with_port, &params);
        assert!(
            !rejected(&post(settings, url, Some(signature), body)),
            "a signature over {with_port} was refused for {url}"
        );
    }

    let other_url = format!("{url}x");
    assert!(matches!(
        post(settings, &other_url, Some(signature.clone()), body),
        Err(WebhookError::Rejected(Rejection::Invalid))
    ));
    let mut other_body = body.to_vec();
    other_body.extend_from_slice(b"&Body=changed");
    if twilio_message(&signed, &form_params(&other_body)) != twilio_message(&signed, &params) {
        assert!(
            matches!(
                post(settings, url, Some(signature.clone()), &other_body),
                Err(WebhookError::Rejected(Rejection::Invalid))
            ),
            "a signature verified another body"
        );
    }
    let forged = twilio_signature("54321", &signed, &params);
    assert!(matches!(
        post(settings, url, Some(forged), body),
        Err(WebhookError::Rejected(Rejection::Invalid))
    ));
    assert!(matches!(
        post(settings, url, None, body),
        Err(WebhookError::Rejected(Rejection::Missing))
    ));
}

/// `url` without `user:password@` in its authority.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}{path}")
}

/// `url` with the scheme's default port written out, for plain `http(s)://host/...` URLs.
fn with_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(end);
    if host.is_empty() || host.contains([':', '@', '[', ']']) {
        return None;
    }
    Some(format!("{scheme}://{host}:{port}{path}"))
}

/// Every answer of a voice or SMS request is well-formed TwiML.
fn check_twiml(response: Response, answer: &str) {
    let replies = match response {
        Response::Now(reply) => vec![reply],
        Response::AwaitAnswer { render, .. } => {
            // `render` is called once, with the reply or without; the request decides which
            // (an odd answer length) so both are exercised.
            if answer.len() % 2 == 1 {
                vec![render(None)]
            } else {
                vec![render(Some(answer))]
            }
        }
    };
    for Reply {
        status,
        content_type,
        body,
    } in replies
    {
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/xml"));
        let doc = roxmltree::Document::parse(&body)
            .unwrap_or_else(|e| panic!("TwiML is not well-formed XML ({e}): {body}"));
        assert_eq!(doc.root_element().tag_name().name(), "Response", "{body}");
    }
}

fn transcript(settings: &ChannelSettings, url: &str, body: &[u8], answer: &str) {
    let sign =
        |key: &str, body: &[u8]| format!("sha256={}", hex(&hmac_sha256(key.as_bytes(), body)));
    let post = |signature: Option<String>, body: &[u8]| {
        let headers: Vec<(&str, String)> = signature
            .map(|s| vec![("X-Switchboard-Signature", s)])
            .unwrap_or_default();
        handle(settings, "POST", url, &headers, body)
    };
    let signature = sign(TRANSCRIPT_SECRET, body);
    let authentic = post(Some(signature.clone()), body);
    assert!(
        !rejected(&authentic),
        "a correctly signed transcript was refused"
    );
    if let Ok(output) = authentic {
        check_items(&output.items);
        let Response::AwaitAnswer { render, .. } = output.response else {
            panic!("a transcript waits for the answer")
        };
        let reply = render(Some(answer));
        let v: serde_json::Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("the transcript answer is not JSON ({e}): {}", reply.body));
        assert_eq!(v["reply"].as_str(), Some(answer));
        assert_eq!(v["pending"], false);
    }
    let mut other = body.to_vec();
    match other.last_mut() {
        Some(b) => *b ^= 0x01,
        None => other.push(b'{'),
    }
    assert!(matches!(
        post(Some(signature), &other),
        Err(WebhookError::Rejected(Rejection::Invalid))
    ));
    assert!(matches!(
        post(Some(sign("another-secret-0123456789", body)), body),
        Err(WebhookError::Rejected(Rejection::Invalid))
    ));
    assert!(matches!(
        post(None, body),
        Err(WebhookError::Rejected(Rejection::Missing))
    ));
}
