//! Inbound email by IMAP polling: unseen messages of a mailbox are fetched (without marking them
//! read), parsed into the same items as the inbound webhook, and marked `\Seen` only after the
//! runtime has stored them — so a crash in between fetches them again and the unique key on the
//! `Message-ID` drops the copy.

use std::sync::Arc;
use switchboard_core::egress::Egress;

use futures::TryStreamExt;
use mail_parser::MessageParser;
use secrecy::ExposeSecret;
use switchboard_core::ChannelId;
use tokio::net::TcpStream;

use crate::email::{
    message_ids, sender_check_failures, strip_quoted, with_sender_checks, ImapSecurity, Settings,
};
use crate::webhook::InboundItem;

/// One unseen message: its UID (to mark it seen later) and its raw bytes.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// At most this many messages per poll.
const BATCH: usize = 50;

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug> Stream
    for T
{
}

async fn connect(settings: &Settings, egress: Egress) -> Result<Box<dyn Stream>, String> {
    let host = settings
        .imap_host
        .as_deref()
        .ok_or("no imap_host configured")?;
    let tcp = match egress {
        Egress::Unrestricted => TcpStream::connect((host, settings.imap_port)).await,
        // Resolved and checked on every connection; only the addresses that passed are tried.
        Egress::PublicOnly => {
            let addrs = egress
                .resolve(host, settings.imap_port)
                .await
                .map_err(|e| format!("IMAP host: {e}"))?;
            TcpStream::connect(&addrs[..]).await
        }
    }
    .map_err(|e| format!("IMAP connect: {e}"))?;
    match settings.imap_security {
        ImapSecurity::None => Ok(Box::new(tcp)),
        ImapSecurity::Tls => {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|_| "imap_host is not a valid TLS server name".to_owned())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("IMAP TLS: {e}"))?;
            Ok(Box::new(tls))
        }
    }
}

async fn session(
    settings: &Settings,
    egress: Egress,
) -> Result<async_imap::Session<Box<dyn Stream>>, String> {
    let mut client = async_imap::Client::new(connect(settings, egress).await?);
    client
        .read_response()
        .await
        .map_err(|e| format!("IMAP greeting: {e}"))?;
    let user = settings
        .imap_username
        .as_deref()
        .ok_or("no imap_username")?;
    let password = settings.imap_password.as_ref().ok_or("no imap_password")?;
    let mut session = client
        .login(user, password.expose_secret())
        .await
        .map_err(|(e, _)| format!("IMAP login: {e}"))?;
    session
        .select(&settings.imap_mailbox)
        .await
        .map_err(|e| format!("IMAP select: {e}"))?;
    Ok(session)
}

/// Fetches unseen messages without marking them read.
pub async fn fetch_unseen(settings: &Settings, egress: Egress) -> Result<Vec<Fetched>, String> {
    let mut session = session(settings, egress).await?;
    let mut uids: Vec<u32> = session
        .uid_search("UNSEEN")
        .await
        .map_err(|e| format!("IMAP search: {e}"))?
        .into_iter()
        .collect();
    uids.sort_unstable();
    uids.truncate(BATCH);
    let mut out = Vec::new();
    if !uids.is_empty() {
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetches: Vec<_> = session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await
            .map_err(|e| format!("IMAP fetch: {e}"))?
            .try_collect()
            .await
            .map_err(|e| format!("IMAP fetch: {e}"))?;
        for f in fetches {
            if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                out.push(Fetched {
                    uid,
                    raw: body.to_vec(),
                });
            }
        }
    }
    let _ = session.logout().await;
    Ok(out)
}

/// Marks messages as read (after they were stored).
pub async fn mark_seen(settings: &Settings, egress: Egress, uids: &[u32]) -> Result<(), String> {
    if uids.is_empty() {
        return Ok(());
    }
    let mut session = session(settings, egress).await?;
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let _: Vec<_> = session
        .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
        .await
        .map_err(|e| format!("IMAP store: {e}"))?
        .try_collect()
        .await
        .map_err(|e| format!("IMAP store: {e}"))?;
    let _ = session.logout().await;
    Ok(())
}

/// Parses a raw RFC 5322 message into the item the inbound webhook would produce. Never panics.
pub fn parse_raw(channel: ChannelId, raw: &[u8]) -> Option<InboundItem> {
    let msg = MessageParser::default().parse(raw)?;
    let from = msg.from()?.first()?;
    let address = from.address.as_deref()?;
    let from_text = match from.name.as_deref() {
        Some(name) if !name.is_empty() => format!("{name} <{address}>"),
        _ => address.to_owned(),
    };
    let bracket = |id: &str| format!("<{}>", id.trim_matches(['<', '>']));
    let message_id = msg.message_id().map(bracket);
    let list = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        match (v.as_text_list(), v.as_text()) {
            (Some(list), _) => list.iter().map(|s| bracket(s)).collect(),
            (None, Some(one)) => {
                let ids = message_ids(one);
                if ids.is_empty() {
                    vec![bracket(one)]
                } else {
                    ids
                }
            }
            _ => Vec::new(),
        }
    };
    let references = crate::email::thread_ids(list(msg.references()), list(msg.in_reply_to()));
    let text = strip_quoted(&msg.body_text(0).unwrap_or_default());
    let item = crate::email::email_item_pub(
        channel,
        message_id,
        format!(
            "imap:{}",
            crate::webhook::hex(&crate::webhook::hmac_sha256(b"imap-fallback-id", raw)[..16])
        ),
        &from_text,
        msg.subject().unwrap_or(""),
        text,
        references,
    )
    .ok()
    .flatten();
    // What the receiving server wrote about the sender (`Authentication-Results`,
    // `Received-SPF`, its spam filter's flag).
    with_sender_checks(item, &sender_check_failures(msg.headers_raw())).map(InboundItem::storable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_messages_become_threaded_items() {
        let raw = b"From: Omar K <omar@customer.example>\r\nTo: inbox@sahara.example\r\nSubject: Re: Solar\r\nMessage-ID: <m2@customer.example>\r\nIn-Reply-To: <ours@sahara.example>\r\nReferences: <m1@customer.example> <ours@sahara.example>\r\n\r\nTuesday works.\r\n\r\nOn Mon, 3 Nov 2026, Sahara wrote:\r\n> Which slot?\r\n";
        let Some(InboundItem::Threaded {
            message,
            references,
        }) = parse_raw(ChannelId::new(), raw)
        else {
            panic!("not parsed")
        };
        assert_eq!(message.provider_message_id, "<m2@customer.example>");
        assert_eq!(message.contact_external_id, "omar@customer.example");
        assert_eq!(message.text, "Tuesday works.");
        assert_eq!(
            references,
            ["<m1@customer.example>", "<ours@sahara.example>"]
        );
    }

    #[test]
    fn the_receiving_servers_failed_checks_mark_a_polled_message_unverified() {
        let raw = |auth: &str| {
            format!("Authentication-Results: mx.sahara.example;\r\n\tspf={auth} smtp.mailfrom=customer.example;\r\n\tdkim=none\r\nFrom: Omar K <omar@customer.example>\r\nTo: inbox@sahara.example\r\nSubject: Re: Solar\r\nMessage-ID: <m3@customer.example>\r\n\r\nPlease cancel my appointment.\r\n")
        };
        let message = |raw: String| match parse_raw(ChannelId::new(), raw.as_bytes()) {
            Some(InboundItem::Threaded { message, .. }) => message,
            other => panic!("not parsed: {other:?}"),
        };
        let passed = message(raw("pass"));
        assert!(passed.sender_verified());
        assert_eq!(passed.contact_display_name.as_deref(), Some("Omar K"));
        let failed = message(raw("fail"));
        assert!(!failed.sender_verified());
        assert_eq!(failed.contact_display_name, None);
        assert_eq!(failed.contact_external_id, "omar@customer.example");
    }

    /// Found by the fuzz target `email_mime`: NUL bytes inside an encoded word of `From`
    /// (or anywhere in a body) reached the store, which refuses U+0000.
    #[test]
    fn a_nul_in_a_polled_message_becomes_a_replacement_character() {
        let raw = b"From: =?UTF-8?B?2YTZitm\0\0\0=?= <layla@customer.example>\r\nTo: inbox@sahara.example\r\nSubject: a\0b\r\nMessage-ID: <m\0@customer.example>\r\n\r\nHello\0 there\r\n";
        let Some(InboundItem::Threaded { message, .. }) = parse_raw(ChannelId::new(), raw) else {
            panic!("not parsed")
        };
        let debug = format!("{message:?}");
        assert!(
            !debug.contains("\\0") && !debug.contains("\\u{0}"),
            "{debug}"
        );
        assert!(message.text.contains('\u{FFFD}'), "{debug}");
    }

    proptest::proptest! {
        #[test]
        fn parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_raw(ChannelId::new(), &bytes);
        }
    }
}
