//! WhatsApp Cloud API webhooks: `X-Hub-Signature-256` and the notification parser, and the
//! `GET` verification handshake.
//!
//! The input is a request body. Asserted for every input:
//! - the body signed with the app secret (by an independent HMAC) is authentic, whatever it
//!   holds, in either hex case and with surrounding white space;
//! - that signature does not verify any other body (the body with one byte changed), nor does a
//!   signature made with another secret;
//! - a header made of the body's first line is refused unless it is exactly the right one;
//! - every item parsed from the authentic body keeps the store's promises
//!   ([`check_items`](switchboard_fuzz::check_items));
//! - the handshake (the body read as a query) answers only to the verify token, with the
//!   challenge as it was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchboard_channels::webhook::{form_params, param, Rejection, Response};
use switchboard_channels::WebhookError;
use switchboard_core::model::ChannelKind;
use switchboard_fuzz::{check_items, first_line, handle, hex, hmac_sha256, rejected, settings};

const APP_SECRET: &str = "whatsapp-app-secret";
const VERIFY_TOKEN: &str = "verify-me";
const URL: &str = "https://sb.example/webhooks/whatsapp/0190f0c4-7a4e-7b3c-9d2e-5f6a7b8c9d0e";

fuzz_target!(|body: &[u8]| {
    let settings = settings(
        ChannelKind::Whatsapp,
        json!({
            "phone_number_id": "123456",
            "app_secret": APP_SECRET,
            "access_token": "access-token",
            "verify_token": VERIFY_TOKEN,
        }),
    );
    let post = |header: Option<String>, body: &[u8]| {
        let headers: Vec<(&str, String)> = header
            .map(|h| vec![("X-Hub-Signature-256", h)])
            .unwrap_or_default();
        handle(&settings, "POST", URL, &headers, body)
    };
    let mac = hmac_sha256(APP_SECRET.as_bytes(), body);
    let signature = format!("sha256={}", hex(&mac));

    let authentic = post(Some(signature.clone()), body);
    assert!(!rejected(&authentic), "a correctly signed body was refused");
    if let Ok(output) = &authentic {
        check_items(&output.items);
        assert!(matches!(output.response, Response::Now(_)));
        assert!(output.nonce.is_none(), "the signature covers the body");
    }
    let upper = format!(" sha256={} ", hex(&mac).to_ascii_uppercase());
    assert!(
        !rejected(&post(Some(upper), body)),
        "upper-case hex was refused"
    );

    let mut other = body.to_vec();
    match other.last_mut() {
        Some(b) => *b ^= 0x01,
        None => other.push(b'{'),
    }
    assert!(
        matches!(
            post(Some(signature.clone()), &other),
            Err(WebhookError::Rejected(Rejection::Invalid))
        ),
        "a signature verified another body"
    );
    let forged = format!("sha256={}", hex(&hmac_sha256(b"another-secret", body)));
    assert!(matches!(
        post(Some(forged), body),
        Err(WebhookError::Rejected(Rejection::Invalid))
    ));
    assert!(matches!(
        post(None, body),
        Err(WebhookError::Rejected(Rejection::Missing))
    ));
    let (line, _) = first_line(body);
    if !rejected(&post(Some(line.to_owned()), body)) {
        let presented = line.trim().strip_prefix("sha256=").unwrap_or("");
        assert!(
            presented.eq_ignore_ascii_case(&hex(&mac)),
            "a wrong signature was accepted: {line:?}"
        );
    }

    // The body as the query of the verification handshake.
    let query = String::from_utf8_lossy(body);
    let query = query.split('#').next().unwrap_or("");
    let url = format!("{URL}?{query}");
    let params = form_params(query.as_bytes());
    match handle(&settings, "GET", &url, &[], &[]) {
        Ok(output) => {
            assert_eq!(param(&params, "hub.verify_token"), Some(VERIFY_TOKEN));
            assert_eq!(param(&params, "hub.mode"), Some("subscribe"));
            assert!(output.items.is_empty());
            let Response::Now(reply) = output.response else {
                panic!("the handshake is answered at once")
            };
            assert_eq!(reply.body, param(&params, "hub.challenge").unwrap_or(""));
        }
        Err(WebhookError::Rejected(_)) => {
            assert!(
                param(&params, "hub.verify_token") != Some(VERIFY_TOKEN)
                    || param(&params, "hub.mode") != Some("subscribe")
            );
        }
        Err(WebhookError::Malformed(why)) => panic!("the handshake failed: {why}"),
    }
});
