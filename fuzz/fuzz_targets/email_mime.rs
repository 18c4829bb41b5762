//! Inbound e-mail read by IMAP polling: a raw RFC 5322 message (MIME parts, encodings,
//! headers) through `email_imap::parse_raw`, the same function the poller calls.
//!
//! The input is the raw message. Asserted for every input: no panic, and a message that becomes
//! an item keeps the store's promises ([`check_items`](switchboard_fuzz::check_items)), is filed
//! under an address in ASCII lower case, and carries at most the kept length of text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::email::MAX_TEXT_CHARS;
use switchboard_channels::email_imap::parse_raw;
use switchboard_channels::webhook::InboundItem;
use switchboard_fuzz::{channel, check_items};

fuzz_target!(|raw: &[u8]| {
    let Some(item) = parse_raw(channel(), raw) else {
        return;
    };
    check_items(std::slice::from_ref(&item));
    let InboundItem::Threaded { message, .. } = &item else {
        panic!("an e-mail is a threaded message: {item:?}")
    };
    let address = &message.contact_external_id;
    assert!(address.contains('@'), "{address:?}");
    assert_eq!(address, &address.to_ascii_lowercase());
    assert!(message.text.chars().count() <= MAX_TEXT_CHARS);
});
