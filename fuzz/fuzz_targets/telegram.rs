//! Telegram webhooks: the `X-Telegram-Bot-Api-Secret-Token` check and the update parser.
//!
//! The input is a request body. Asserted for every input:
//! - with the right secret token the request is authentic, whatever the body holds, and every
//!   item parsed from it keeps the store's promises
//!   ([`check_items`](switchboard_fuzz::check_items));
//! - without the header it is refused as missing; with any other token (the body's first line,
//!   the secret with one character changed, a prefix of it) it is refused as a wrong token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchboard_channels::webhook::{Rejection, Response};
use switchboard_channels::WebhookError;
use switchboard_core::model::ChannelKind;
use switchboard_fuzz::{check_items, first_line, handle, rejected, settings};

const SECRET: &str = "tg-Secret_token-0123456789";
const URL: &str = "https://sb.example/webhooks/telegram/0190f0c4-7a4e-7b3c-9d2e-5f6a7b8c9d0e";

fuzz_target!(|body: &[u8]| {
    let settings = settings(
        ChannelKind::Telegram,
        json!({"bot_token": "123456789:AAE-fuzz-token", "secret_token": SECRET}),
    );
    let post = |token: Option<&str>| {
        let headers: Vec<(&str, String)> = token
            .map(|t| vec![("X-Telegram-Bot-Api-Secret-Token", t.to_owned())])
            .unwrap_or_default();
        handle(&settings, "POST", URL, &headers, body)
    };

    let authentic = post(Some(SECRET));
    assert!(!rejected(&authentic), "the right secret token was refused");
    if let Ok(output) = &authentic {
        check_items(&output.items);
        assert!(output.items.len() <= 1, "one update is at most one message");
        assert!(matches!(output.response, Response::Now(_)));
    }

    assert!(matches!(
        post(None),
        Err(WebhookError::Rejected(Rejection::Missing))
    ));
    let (line, _) = first_line(body);
    let mut changed = SECRET.as_bytes().to_vec();
    changed[body.len() % SECRET.len()] ^= 0x01;
    let changed = String::from_utf8(changed).expect("still ASCII");
    let prefix = &SECRET[..body.len() % SECRET.len()];
    for wrong in [line, changed.as_str(), prefix] {
        if wrong == SECRET {
            continue;
        }
        assert!(
            matches!(
                post(Some(wrong)),
                Err(WebhookError::Rejected(Rejection::WrongToken))
            ),
            "a wrong secret token was accepted: {wrong:?}"
        );
    }
});
