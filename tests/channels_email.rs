//! Email end to end: a Mailgun-style signed inbound webhook, replies sent over SMTP to a real
//! `aiosmtpd` server process writing a Maildir, threading headers checked in the stored files,
//! and a reply from another address filed under the same conversation by its `In-Reply-To`.
//!
//! Authenticity attacks: a captured signed post replayed with another body, a stranger replying
//! into the owner's thread to cancel the owner's booking, and a spoofed sender whose SPF check
//! the provider reports as failed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;

use crate::helpers::*;

const SIGNING_KEY: &str = "mg-signing-key-0001";

/// A header of a stored email (folded lines unfolded).
fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\n\n").next().unwrap_or("");
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            unfolded.push(line.trim_end().to_owned());
        }
    }
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded
        .into_iter()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}

fn mailgun_form(timestamp: i64, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SIGNING_KEY.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    form.push(("timestamp".into(), timestamp.to_string()));
    form.push(("token".into(), token));
    form.push(("signature".into(), signature));
    form
}

async fn post(app: &TestApp, url: &str, form: &[(String, String)]) -> u16 {
    app.http
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut c = app.owner().await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

#[tokio::test]
async fn channels_email_replies_thread_over_real_smtp_and_replies_return_to_the_conversation() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "email", "name": "Email", "config": {
                "from_address": "hello@sahara.example", "from_name": "Sahara Solar",
                "smtp_host": "127.0.0.1", "smtp_port": smtpd.port, "smtp_security": "none",
                "webhook_signing_key": SIGNING_KEY}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["channel"]["webhook_url"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let first = [
        ("sender", "omar@customer.example"),
        ("from", "Omar Khalil <omar@customer.example>"),
        ("recipient", "hello@sahara.example"),
        ("subject", "Solar panels for my villa"),
        ("Message-Id", "<m1@customer.example>"),
        (
            "body-plain",
            "What are your opening hours?\n\n-- \nOmar Khalil\nSent from my phone\n",
        ),
    ];

    // Forgeries: a stale timestamp, a wrong signature, none at all. Nothing is stored.
    assert_eq!(
        post(&app, &url, &mailgun_form(now - 3600, &first)).await,
        403
    );
    let mut forged = mailgun_form(now, &first);
    forged.last_mut().unwrap().1 = "00".repeat(32);
    assert_eq!(post(&app, &url, &forged).await, 403);
    let unsigned: Vec<(String, String)> = first
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert_eq!(post(&app, &url, &unsigned).await, 401);
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 0);
    let metrics = app.metrics().await;
    let series = tenant_series(
        "switchboard_webhook_rejected_total",
        app.demo_tenant,
        "email",
        ("reason", "stale_timestamp"),
    );
    assert!(
        metric(&metrics, &series).is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // The genuine email (delivered twice) gets one reply over SMTP, threaded.
    let signed = mailgun_form(now, &first);
    assert_eq!(post(&app, &url, &signed).await, 200);
    assert_eq!(post(&app, &url, &signed).await, 200);
    let mails = smtpd.wait_for(1).await;
    let reply = &mails[0];
    assert!(
        header(reply, "From")
            .unwrap()
            .contains("hello@sahara.example"),
        "{reply}"
    );
    assert!(header(reply, "To")
        .unwrap()
        .contains("omar@customer.example"));
    assert_eq!(
        header(reply, "Subject").unwrap(),
        "Re: Solar panels for my villa"
    );
    assert_eq!(
        header(reply, "In-Reply-To").unwrap(),
        "<m1@customer.example>"
    );
    assert_eq!(
        header(reply, "References").unwrap(),
        "<m1@customer.example>"
    );
    let ours = header(reply, "Message-ID").unwrap();
    assert!(
        ours.starts_with('<') && ours.ends_with("@sahara.example>"),
        "{ours}"
    );
    assert!(header(reply, "Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(
        reply.contains("Content-Type: text/plain") && reply.contains("Content-Type: text/html"),
        "{reply}"
    );
    let mut c = app.owner().await;
    let stored: String = sqlx::query_scalar("SELECT text FROM messages WHERE role = 'customer'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(stored, "What are your opening hours?", "signature stripped");

    // The customer answers from another address, quoting us: same conversation, thread kept.
    let references = format!("<m1@customer.example> {ours}");
    let second = [
        ("sender", "omar.k@work.example"),
        ("from", "Omar K <omar.k@work.example>"),
        ("subject", "Re: Solar panels for my villa"),
        ("Message-Id", "<m2@work.example>"),
        ("In-Reply-To", ours.as_str()),
        ("References", references.as_str()),
        ("body-plain", "Can I book a consultation?\n\nOn Mon, Nov 23, 2026 at 9:00 AM Sahara Solar <hello@sahara.example> wrote:\n> Our opening hours are ...\n"),
    ];
    assert_eq!(
        post(
            &app,
            &url,
            &mailgun_form(chrono::Utc::now().timestamp(), &second)
        )
        .await,
        200
    );
    let mails = smtpd.wait_for(2).await;
    let channel_conversations = count(&app, "SELECT count(*) FROM conversations c JOIN channels ch ON ch.id = c.channel_id WHERE ch.kind = 'email'").await;
    assert_eq!(
        channel_conversations, 1,
        "the reply continued the conversation"
    );
    let texts: Vec<String> =
        sqlx::query_scalar("SELECT text FROM messages WHERE role = 'customer' ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(
        texts,
        ["What are your opening hours?", "Can I book a consultation?"]
    );
    let second_reply = &mails[1];
    assert!(header(second_reply, "To")
        .unwrap()
        .contains("omar@customer.example"));
    assert_eq!(
        header(second_reply, "In-Reply-To").unwrap(),
        "<m2@work.example>"
    );
    assert_eq!(
        header(second_reply, "References").unwrap(),
        format!("<m1@customer.example> {ours} <m2@work.example>")
    );
    assert_ne!(header(second_reply, "Message-ID").unwrap(), ours);
    // The outbox row records our Message-ID as the provider reference.
    let refs: Vec<String> = sqlx::query_scalar(
        "SELECT provider_ref FROM outbox WHERE provider_ref IS NOT NULL ORDER BY created_at",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(refs[0], ours);
    app.stop().await;
}

#[tokio::test]
async fn channels_email_mailgun_multipart_posts_with_attachments_are_read() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "email", "name": "Email", "config": {
                "from_address": "hello@sahara.example", "smtp_host": "127.0.0.1",
                "smtp_port": smtpd.port, "smtp_security": "none", "webhook_signing_key": SIGNING_KEY}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["channel"]["webhook_url"].as_str().unwrap().to_owned();
    let form = mailgun_form(
        chrono::Utc::now().timestamp(),
        &[
            ("sender", "layla@customer.example"),
            ("from", "Layla <layla@customer.example>"),
            ("subject", "Quote"),
            ("Message-Id", "<q1@customer.example>"),
            ("body-plain", "Do you install in Sharjah?\n\n> quoted"),
            ("stripped-text", "Do you install in Sharjah?"),
        ],
    );
    // urllib3 (the HTTP library under Twilio's SDK) encodes the multipart body, with a file part.
    let script = r#"
import json, sys, base64
from urllib3 import encode_multipart_formdata
fields = [tuple(f) for f in json.load(sys.stdin)]
fields.append(("attachment-1", ("roof.jpg", b"\xff\xd8\xff binary", "image/jpeg")))
body, content_type = encode_multipart_formdata(fields)
print(json.dumps({"content_type": content_type, "body": base64.b64encode(body).decode()}))
"#;
    let encoded = run_python(script, &json!(form));
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        encoded["body"].as_str().unwrap(),
    )
    .unwrap();
    let resp = app
        .http
        .post(&url)
        .header("content-type", encoded["content_type"].as_str().unwrap())
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mails = smtpd.wait_for(1).await;
    assert_eq!(
        header(&mails[0], "In-Reply-To").unwrap(),
        "<q1@customer.example>"
    );
    let mut c = app.owner().await;
    let text: String = sqlx::query_scalar("SELECT text FROM messages WHERE role = 'customer'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(text, "Do you install in Sharjah?");
    // The same body with a changed signature field is refused.
    let tampered = String::from_utf8_lossy(&raw).replace(&form.last().unwrap().1, &"0".repeat(64));
    let resp = app
        .http
        .post(&url)
        .header("content-type", encoded["content_type"].as_str().unwrap())
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    app.stop().await;
}

/// A real IMAP server (Debian's dovecot) with one mailbox, on a private configuration.
struct Dovecot {
    child: Child,
    port: u16,
    dir: PathBuf,
}

const IMAP_USER: &str = "inbox@sahara.example";
const IMAP_PASSWORD: &str = "imap-password-0001";

impl Dovecot {
    async fn start() -> Dovecot {
        let binary = PathBuf::from("/usr/sbin/dovecot");
        assert!(
            binary.exists(),
            "dovecot is missing: run scripts/setup.sh (installs dovecot-imapd)"
        );
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("sb-dovecot-{}", uuid::Uuid::new_v4().simple()));
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let root = unsafe { libc::geteuid() } == 0;
        // Mail is owned by an unprivileged user: dovecot refuses to deliver as root.
        let (uid, gid, extra) = if root {
            (65534, 65534, String::new())
        } else {
            let user = std::env::var("USER").unwrap_or_default();
            let (u, g) = unsafe { (libc::geteuid(), libc::getegid()) };
            (
                u,
                g,
                format!("default_internal_user = {user}\ndefault_login_user = {user}\n"),
            )
        };
        if root {
            let _ = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(dir.join("mail"))
                .status();
        }
        let d = dir.display();
        std::fs::write(
            dir.join("dovecot.conf"),
            format!(
                "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
                 ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\nfirst_valid_uid = 1\n\
                 mail_location = maildir:{d}/mail/%u\n{extra}\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%u\n}}\n\
                 service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("users"),
            format!("{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n"),
        )
        .unwrap();
        let child = Command::new(binary)
            .args(["-F", "-c"])
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let up = eventually(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "dovecot listens on {port}");
        Dovecot { child, port, dir }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs Python's imaplib against the server: `APPEND` the message, or count unseen ones.
fn imap(port: u16, action: &str, raw: &str) -> serde_json::Value {
    let script = r#"
import imaplib, json, sys
req = json.load(sys.stdin)
m = imaplib.IMAP4("127.0.0.1", req["port"])
m.login(req["user"], req["password"])
if req["action"] == "append":
    m.append("INBOX", None, None, req["raw"].encode())
    print(json.dumps({"ok": True}))
else:
    m.select("INBOX")
    _, data = m.search(None, "UNSEEN")
    _, alld = m.search(None, "ALL")
    print(json.dumps({"unseen": len(data[0].split()), "all": len(alld[0].split())}))
m.logout()
"#;
    run_python(
        script,
        &json!({"port": port, "user": IMAP_USER, "password": IMAP_PASSWORD, "action": action, "raw": raw}),
    )
}

#[tokio::test]
async fn channels_email_imap_polling_answers_mail_from_a_real_imap_server_once() {
    let smtpd = Smtpd::start().await;
    let dovecot = Dovecot::start().await;
    let app = spawn_app().await;
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "email", "name": "Inbox", "config": {
                "from_address": "hello@sahara.example", "smtp_host": "127.0.0.1",
                "smtp_port": smtpd.port, "smtp_security": "none",
                "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_security": "none",
                "imap_username": IMAP_USER, "imap_password": IMAP_PASSWORD, "imap_poll_secs": 1}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(IMAP_PASSWORD));
    let raw = "From: Omar Khalil <omar@customer.example>\r\nTo: inbox@sahara.example\r\nSubject: Warranty\r\nMessage-ID: <imap-1@customer.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nWhat are your opening hours?\r\n\r\n-- \r\nOmar\r\n";
    assert_eq!(imap(dovecot.port, "append", raw)["ok"], true);
    let mails = smtpd.wait_for(1).await;
    assert_eq!(
        header(&mails[0], "In-Reply-To").unwrap(),
        "<imap-1@customer.example>"
    );
    assert_eq!(header(&mails[0], "Subject").unwrap(), "Re: Warranty");
    assert!(header(&mails[0], "To")
        .unwrap()
        .contains("omar@customer.example"));
    // Marked seen once stored, so later polls do not fetch it again.
    let seen = eventually(Duration::from_secs(10), || async {
        imap(dovecot.port, "count", "")["unseen"] == 0
    })
    .await;
    assert!(seen, "the stored message was marked seen");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);
    assert_eq!(smtpd.messages().len(), 1, "answered once");
    let mut c = app.owner().await;
    let text: String = sqlx::query_scalar("SELECT text FROM messages WHERE role = 'customer'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(text, "What are your opening hours?");
    app.stop().await;
}

/// An email channel of the demo tenant with Mailgun signatures, replying through `smtpd`.
async fn email_channel(app: &TestApp, smtpd: &Smtpd) -> String {
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "email", "name": "Email", "config": {
                "from_address": "hello@sahara.example", "from_name": "Sahara Solar",
                "smtp_host": "127.0.0.1", "smtp_port": smtpd.port, "smtp_security": "none",
                "webhook_signing_key": SIGNING_KEY}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["channel"]["webhook_url"].as_str().unwrap().to_owned()
}

/// The agent's messages in email conversations, oldest first, once there are `n`.
async fn agent_emails(app: &TestApp, n: usize) -> Vec<String> {
    let read = || async {
        let mut c = app.owner().await;
        sqlx::query_scalar::<_, String>(
            "SELECT m.text FROM messages m
               JOIN conversations c ON c.id = m.conversation_id
               JOIN channels ch ON ch.id = c.channel_id
              WHERE ch.kind = 'email' AND m.role = 'agent' ORDER BY m.seq",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    };
    let arrived = eventually(Duration::from_secs(30), || async {
        read().await.len() >= n
    })
    .await;
    let texts = read().await;
    assert!(arrived, "{n} agent emails expected: {texts:#?}");
    texts
}

async fn booking_status(app: &TestApp) -> Vec<String> {
    let mut c = app.owner().await;
    sqlx::query_scalar("SELECT status FROM bookings ORDER BY created_at")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

/// Omar books a consultation by email through the offline booking dialogue: he asks (message
/// `<b1@customer.example>`), is offered slots, and picks the first (`<b2@customer.example>`).
async fn omar_books(app: &TestApp, url: &str) {
    crate::bookings::set_availability(app).await;
    let ask = [
        ("sender", "omar@customer.example"),
        ("from", "Omar Khalil <omar@customer.example>"),
        ("subject", "Consultation"),
        ("Message-Id", "<b1@customer.example>"),
        ("X-Mailgun-Spf", "Pass"),
        ("body-plain", "Can I book a consultation?"),
    ];
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post(app, url, &mailgun_form(now, &ask)).await, 200);
    // The slots travel as choices, numbered in the email.
    let offer = agent_emails(app, 1).await;
    assert!(offer[0].contains("free times"), "{offer:?}");
    let pick = [
        ("sender", "omar@customer.example"),
        ("from", "Omar Khalil <omar@customer.example>"),
        ("subject", "Re: Consultation"),
        ("Message-Id", "<b2@customer.example>"),
        ("In-Reply-To", "<b1@customer.example>"),
        ("References", "<b1@customer.example>"),
        ("X-Mailgun-Spf", "Pass"),
        ("body-plain", "1"),
    ];
    assert_eq!(post(app, url, &mailgun_form(now, &pick)).await, 200);
    let replies = agent_emails(app, 2).await;
    assert!(replies[1].starts_with("You're booked"), "{replies:?}");
    assert_eq!(booking_status(app).await, ["confirmed"]);
}

/// What the email conversation holds: (customer texts, distinct contacts, conversations).
async fn email_transcript(app: &TestApp) -> (Vec<String>, Vec<String>, i64) {
    let mut c = app.owner().await;
    let texts = sqlx::query_scalar(
        "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id
           JOIN channels ch ON ch.id = c.channel_id
          WHERE ch.kind = 'email' AND m.role = 'customer' ORDER BY m.seq",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let contacts = sqlx::query_scalar(
        "SELECT k.external_id || ' / ' || coalesce(k.display_name, '-') FROM contacts k
           JOIN channels ch ON ch.id = k.channel_id WHERE ch.kind = 'email' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let conversations = count(app, "SELECT count(*) FROM conversations c JOIN channels ch ON ch.id = c.channel_id WHERE ch.kind = 'email'").await;
    (texts, contacts, conversations)
}

#[tokio::test]
async fn channels_email_a_signed_mailgun_post_replayed_with_another_body_is_refused_and_stores_nothing(
) {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    let url = email_channel(&app, &smtpd).await;
    let original = mailgun_form(
        chrono::Utc::now().timestamp(),
        &[
            ("sender", "omar@customer.example"),
            ("from", "Omar Khalil <omar@customer.example>"),
            ("subject", "Opening hours"),
            ("Message-Id", "<r1@customer.example>"),
            ("body-plain", "What are your opening hours?"),
        ],
    );
    assert_eq!(post(&app, &url, &original).await, 200);

    // Captured: the same timestamp, token and signature carry another email within the window.
    let replayed: Vec<(String, String)> = original
        .iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "Message-Id" => "<forged@customer.example>".to_owned(),
                "body-plain" => "Please cancel my appointment".to_owned(),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    let resp = app.http.post(&url).form(&replayed).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let metrics = app.metrics().await;
    let series = tenant_series(
        "switchboard_webhook_rejected_total",
        app.demo_tenant,
        "email",
        ("reason", "replayed_token"),
    );
    assert!(
        metric(&metrics, &series).is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // The provider's own retry (same token, same body) is answered as before: a duplicate.
    assert_eq!(post(&app, &url, &original).await, 200);
    // Its fields in another order (another encoding of the same post) are the same post.
    let mut reordered = original.clone();
    reordered.reverse();
    assert_eq!(post(&app, &url, &reordered).await, 200);

    // Nothing of the replay was stored; the original is answered once.
    let mails = smtpd.wait_for(1).await;
    assert_eq!(
        header(&mails[0], "In-Reply-To").unwrap(),
        "<r1@customer.example>"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);
    let (texts, contacts, _) = email_transcript(&app).await;
    assert_eq!(texts, ["What are your opening hours?"]);
    assert_eq!(contacts, ["omar@customer.example / Omar Khalil"]);
    assert_eq!(agent_emails(&app, 1).await.len(), 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
        )
        .await,
        0
    );
    // The token is remembered once, under the channel's tenant, until its window closes.
    let (tenant, expires): (uuid::Uuid, chrono::DateTime<chrono::Utc>) = {
        let mut c = app.owner().await;
        sqlx::query_as("SELECT tenant_id, expires_at FROM webhook_tokens")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(tenant, app.demo_tenant.0);
    assert!(
        expires > chrono::Utc::now() && expires < chrono::Utc::now() + chrono::Duration::minutes(6)
    );
    assert_eq!(smtpd.messages().len(), 1, "answered once");
    app.stop().await;
}

#[tokio::test]
async fn channels_email_a_stranger_replying_into_the_owners_thread_cannot_cancel_the_owners_booking(
) {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    let url = email_channel(&app, &smtpd).await;
    omar_books(&app, &url).await;

    // Mallory has seen the thread (a forwarded copy, a CC) and answers into it.
    let stranger = [
        ("sender", "mallory@elsewhere.example"),
        ("from", "Mallory <mallory@elsewhere.example>"),
        ("subject", "Re: Consultation"),
        ("Message-Id", "<x1@elsewhere.example>"),
        ("In-Reply-To", "<b2@customer.example>"),
        ("References", "<b1@customer.example> <b2@customer.example>"),
        ("X-Mailgun-Spf", "Pass"),
        ("X-Mailgun-Dkim-Check-Result", "Pass"),
        ("body-plain", "Please cancel my appointment"),
    ];
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post(&app, &url, &mailgun_form(now, &stranger)).await, 200);
    let replies = agent_emails(&app, 3).await;
    assert!(
        replies[2].contains("can only be changed from the address we have on file"),
        "{replies:?}"
    );
    // The booking stands; the stranger's message is kept in the owner's conversation, marked,
    // and neither made a contact of its own nor renamed the owner.
    assert_eq!(booking_status(&app).await, ["confirmed"]);
    let (texts, contacts, conversations) = email_transcript(&app).await;
    assert_eq!(
        texts,
        [
            "Can I book a consultation?",
            "1",
            "Please cancel my appointment"
        ]
    );
    assert_eq!(contacts, ["omar@customer.example / Omar Khalil"]);
    assert_eq!(conversations, 1);
    let mut c = app.owner().await;
    let payload: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM inbound_events WHERE provider_message_id = '<x1@elsewhere.example>'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(payload["sender_verified"], false, "{payload}");
    assert_eq!(
        payload["sender_unverified_because"],
        json!(["not_thread_owner"])
    );
    let intent: String =
        sqlx::query_scalar("SELECT intent FROM turns ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(intent, "owner_only");

    // The same request from the owner's address cancels it.
    let owner = [
        ("sender", "omar@customer.example"),
        ("from", "Omar Khalil <omar@customer.example>"),
        ("subject", "Re: Consultation"),
        ("Message-Id", "<b3@customer.example>"),
        ("In-Reply-To", "<b2@customer.example>"),
        ("References", "<b1@customer.example> <b2@customer.example>"),
        ("X-Mailgun-Spf", "Pass"),
        ("body-plain", "Please cancel my appointment"),
    ];
    assert_eq!(post(&app, &url, &mailgun_form(now, &owner)).await, 200);
    let replies = agent_emails(&app, 4).await;
    assert!(replies[3].contains("is cancelled"), "{replies:?}");
    assert_eq!(booking_status(&app).await, ["cancelled"]);
    app.stop().await;
}

#[tokio::test]
async fn channels_email_a_sender_whose_spf_check_failed_cannot_cancel_a_booking() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    let url = email_channel(&app, &smtpd).await;
    omar_books(&app, &url).await;

    // Omar's address, forged: the provider reports that SPF failed.
    let spoofed = [
        ("sender", "omar@customer.example"),
        ("from", "Omar's Assistant <omar@customer.example>"),
        ("subject", "Re: Consultation"),
        ("Message-Id", "<s1@spoofer.example>"),
        ("X-Mailgun-Spf", "Fail"),
        ("body-plain", "Please cancel my appointment"),
    ];
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post(&app, &url, &mailgun_form(now, &spoofed)).await, 200);
    let replies = agent_emails(&app, 3).await;
    assert!(
        replies[2].contains("can only be changed from the address we have on file"),
        "{replies:?}"
    );
    assert_eq!(booking_status(&app).await, ["confirmed"]);
    let (texts, contacts, _) = email_transcript(&app).await;
    assert_eq!(texts.last().unwrap(), "Please cancel my appointment");
    assert_eq!(
        contacts,
        ["omar@customer.example / Omar Khalil"],
        "the forged name is not kept"
    );
    let mut c = app.owner().await;
    let payload: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM inbound_events WHERE provider_message_id = '<s1@spoofer.example>'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(payload["sender_unverified_because"], json!(["spf_failed"]));
    // A move is refused alike.
    let move_it = [
        ("sender", "omar@customer.example"),
        ("from", "omar@customer.example"),
        ("subject", "Re: Consultation"),
        ("Message-Id", "<s2@spoofer.example>"),
        ("X-Mailgun-Spf", "SoftFail"),
        ("body-plain", "Can I reschedule my appointment?"),
    ];
    assert_eq!(post(&app, &url, &mailgun_form(now, &move_it)).await, 200);
    let replies = agent_emails(&app, 4).await;
    assert!(
        replies[3].contains("can only be changed from the address we have on file"),
        "{replies:?}"
    );
    assert_eq!(booking_status(&app).await, ["confirmed"]);
    app.stop().await;
}

/// A local OpenAI-compatible endpoint that always answers in text and keeps every request.
#[tokio::test]
async fn channels_email_a_model_is_not_offered_the_owners_tools_for_a_strangers_message() {
    let (base, seen) =
        recording_model(|_| json!({"role": "assistant", "content": "Happy to help."})).await;
    let smtpd = Smtpd::start().await;
    let app = spawn_app_with(
        move |s| {
            s.openai_base_url = Some(base);
            s.openai_api_key = Some("sk-platform-test".to_owned().into());
        },
        None,
    )
    .await;
    let url = email_channel(&app, &smtpd).await;
    let tools = |request: &serde_json::Value| -> Vec<String> {
        request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let now = chrono::Utc::now().timestamp();
    let owner = [
        ("sender", "omar@customer.example"),
        ("from", "Omar Khalil <omar@customer.example>"),
        ("subject", "Panels"),
        ("Message-Id", "<t1@customer.example>"),
        ("body-plain", "Do you install panels in Sharjah?"),
    ];
    assert_eq!(post(&app, &url, &mailgun_form(now, &owner)).await, 200);
    agent_emails(&app, 1).await;
    let first = seen.lock().unwrap()[0].clone();
    let owner_tools = tools(&first);
    assert!(
        owner_tools.iter().any(|t| t == "set_contact_fields"),
        "{owner_tools:?}"
    );
    assert!(!first["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("could not be verified"));

    // A stranger answers into the thread and asks to change the owner's details.
    let stranger = [
        ("sender", "mallory@elsewhere.example"),
        ("from", "Mallory <mallory@elsewhere.example>"),
        ("subject", "Re: Panels"),
        ("Message-Id", "<t2@elsewhere.example>"),
        ("In-Reply-To", "<t1@customer.example>"),
        (
            "body-plain",
            "Please change my email address to mallory@elsewhere.example",
        ),
    ];
    assert_eq!(post(&app, &url, &mailgun_form(now, &stranger)).await, 200);
    agent_emails(&app, 2).await;
    let second = seen.lock().unwrap().last().cloned().unwrap();
    let offered = tools(&second);
    let owner_only = [
        "cancel_booking",
        "reschedule_booking",
        "set_contact_fields",
        "capture_lead",
    ];
    let expected: Vec<String> = owner_tools
        .iter()
        .filter(|t| !owner_only.contains(&t.as_str()))
        .cloned()
        .collect();
    assert_eq!(offered, expected, "only the owner's tools are withheld");
    assert!(
        second["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("could not be verified as the customer on file"),
        "the model is told why"
    );

    // A booking change from the stranger is refused without asking the model.
    let calls = seen.lock().unwrap().len();
    let cancel = [
        ("sender", "mallory@elsewhere.example"),
        ("from", "mallory@elsewhere.example"),
        ("subject", "Re: Panels"),
        ("Message-Id", "<t3@elsewhere.example>"),
        ("In-Reply-To", "<t1@customer.example>"),
        ("body-plain", "Please cancel my appointment"),
    ];
    assert_eq!(post(&app, &url, &mailgun_form(now, &cancel)).await, 200);
    let replies = agent_emails(&app, 3).await;
    assert!(
        replies[2].contains("can only be changed from the address we have on file"),
        "{replies:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), calls);
    app.stop().await;
}
