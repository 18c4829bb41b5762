//! The web-chat post (`POST /api/v1/webchat/{channel_id}/messages`): the JSON body as the
//! route reads it, then `webchat::parse_post`.
//!
//! The input is the request body. Asserted for every accepted post: the message keeps the
//! store's promises ([`check_message`](switchboard_fuzz::check_message)); its text is trimmed,
//! at most `MAX_TEXT_CHARS` characters, with no control characters but line feeds and tabs; its
//! provider id is the session id and the client's message id; the session id carries at least
//! 128 bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::webchat::{
    parse_post, PostMessage, MAX_TEXT_CHARS, MIN_SESSION_ID_CHARS,
};
use switchboard_fuzz::{channel, check_message};

fuzz_target!(|body: &[u8]| {
    let Ok(post) = serde_json::from_slice::<PostMessage>(body) else {
        return;
    };
    let session = post.session_id.clone();
    let Ok(message) = parse_post(channel(), post) else {
        return;
    };
    check_message(&message);
    let text = &message.text;
    assert_eq!(text.trim(), text);
    assert!(text.chars().count() <= MAX_TEXT_CHARS);
    assert!(!text.contains('\r'));
    assert!(
        text.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t'),
        "{text:?}"
    );
    assert!(session.len() >= MIN_SESSION_ID_CHARS);
    assert!(session
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(message.contact_external_id, session);
    assert!(message
        .provider_message_id
        .starts_with(&format!("{session}:")));
});
