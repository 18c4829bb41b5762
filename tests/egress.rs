//! Server-side request forgery (issue 16, item 2): a tenant points every URL and host it may set
//! — model and embedding endpoints, CRM webhook, WhatsApp and Telegram API bases, SMTP — at this
//! machine. With the operator's default (`allow_private_networks = false`) a listener on this
//! machine must never be called, whether the address is written literally, as `localhost`, or as
//! a name that DNS resolves to a private address; each refusal says why.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// A listener on every interface that counts the connections it accepts (and answers none).
struct Trap {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Trap {
    async fn start() -> Trap {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        Trap { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// This machine's host name when DNS (here `/etc/hosts`) resolves it to a non-public address
/// — the name a DNS-rebinding attacker would use — else `None`.
async fn private_name() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())?;
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), 80))
        .await
        .ok()?
        .map(|a| a.ip())
        .collect();
    (!addrs.is_empty()
        && addrs
            .iter()
            .all(|ip| !switchboard_core::egress::is_public(*ip)))
    .then_some(name)
}

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.call(reqwest::Method::PUT, path, Some(ADMIN_TOKEN), Some(body))
        .await
}

fn refusal(body: &Value) -> bool {
    body.to_string().contains("allow_private_networks")
}

/// Every kind of channel endpoint, pointed at `host`.
fn channels(host: &str, port: u16) -> Vec<Value> {
    vec![
        json!({"kind": "whatsapp", "name": "W", "config": {
            "phone_number_id": "1234567890", "api_base_url": format!("http://{host}:{port}"),
            "app_secret": "app-secret-0123456789", "access_token": "token-0123456789",
            "verify_token": "verify-0123456789"}}),
        json!({"kind": "telegram", "name": "T", "config": {
            "bot_token": "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789", "mode": "polling",
            "api_url": format!("http://{host}:{port}")}}),
        json!({"kind": "email", "name": "E", "config": {
            "smtp_host": host, "smtp_port": port, "smtp_security": "starttls",
            "from_address": "help@acme.example", "imap_host": host, "imap_port": port,
            "imap_security": "none", "imap_username": "help", "imap_password": "password-0123456789",
            "imap_poll_secs": 1}}),
    ]
}

/// A chat on the demo channel is answered (offline, when the model cannot be reached).
async fn chat_answered(app: &TestApp, text: &str) {
    let s = session();
    let (status, _) = app.post_chat(app.demo_channel, &s, "c0", text).await;
    assert_eq!(status, 202);
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
}

#[tokio::test]
async fn tenant_chosen_urls_never_reach_this_machine_or_its_network() {
    let trap = Trap::start().await;
    let port = trap.port;
    let data_dir =
        std::env::temp_dir().join(format!("sb-egress-{}", uuid::Uuid::new_v4().simple()));

    // Settings saved while the operator allowed private networks…
    let dir = data_dir.clone();
    let before = spawn_app_with(move |s| s.data_dir = dir, None).await;
    let local = format!("http://127.0.0.1:{port}");
    let (status, body) = put(
        &before,
        "/api/v1/agent/settings?tenant=demo",
        json!({"base_url": format!("{local}/v1"), "api_key": "sk-tenant-0123456789", "model": "m"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(
        &before,
        "/api/v1/actions/settings?tenant=demo",
        json!({"crm_webhook_url": format!("{local}/hook"), "crm_secret": "whsec_egress_test_0123456789abcdef"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut ids = Vec::new();
    for channel in channels("127.0.0.1", port) {
        let (status, body) = before
            .admin_post("/api/v1/channels?tenant=demo", channel)
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["channel"]["id"].as_str().unwrap().to_owned());
    }
    let database = before.database.clone();
    before.stop().await;
    let hits_before = trap.hits();

    // …are refused once the operator disallows them: nothing connects, and each refusal says
    // why. The model: turns answer offline.
    let app = spawn_app_on(
        &database,
        move |s| {
            s.data_dir = data_dir;
            s.allow_private_networks = false;
        },
        None,
    )
    .await;
    chat_answered(&app, "Hello there").await;
    // The CRM webhook: the lead's delivery fails for good, without retries.
    chat_answered(
        &app,
        "I'm Sara Haddad from Acme, sara@acme.example, +971 50 123 4567 — send me prices.",
    )
    .await;
    let mut owner = app.owner().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (_, attempts, error) = loop {
        let row: Option<(String, i32, Option<String>)> = sqlx::query_as(
            "SELECT status, attempts, last_error FROM effects WHERE kind = 'webhook'",
        )
        .fetch_optional(&mut owner)
        .await
        .unwrap();
        match row {
            Some(r) if r.0 == "failed" => break r,
            other => assert!(
                std::time::Instant::now() < deadline,
                "the CRM effect was not settled: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts, 1, "a refusal is not retried");
    assert!(
        error.unwrap_or_default().contains("allow_private_networks"),
        "the refusal says why"
    );
    // Provider API bases and mail servers: the credentials check refuses them (and the
    // Telegram and IMAP pollers started for these channels do not connect either).
    for id in &ids {
        let (status, health) = app
            .admin_get(&format!("/api/v1/channels/{id}/health?tenant=demo"))
            .await;
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["credentials"]["ok"], false, "{health}");
        assert!(refusal(&health), "the refusal says why: {health}");
    }

    // Saving a literal or local address is refused outright, in every form.
    for host in [
        "127.0.0.1",
        "localhost",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "169.254.169.254",
    ] {
        let url = format!("http://{host}:{port}");
        for (path, body) in [
            (
                "/api/v1/agent/settings?tenant=demo",
                json!({"base_url": format!("{url}/v1")}),
            ),
            (
                "/api/v1/actions/settings?tenant=demo",
                json!({"crm_webhook_url": format!("{url}/hook")}),
            ),
            (
                "/api/v1/knowledge/settings?tenant=demo",
                json!({"provider": "openai", "base_url": format!("{url}/v1"), "api_key": "sk-tenant-0123456789", "model": "e"}),
            ),
        ] {
            let (status, body) = put(&app, path, body).await;
            assert_eq!(status, 422, "{path} {host}: {body}");
            assert!(refusal(&body), "{path}: the refusal says why: {body}");
        }
    }
    for channel in channels("localhost", port) {
        let (status, body) = app
            .admin_post("/api/v1/channels?tenant=demo", channel)
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(refusal(&body), "the refusal says why: {body}");
    }

    // A name that DNS resolves to a private address is accepted when saved and refused at
    // every connection (DNS rebinding).
    match private_name().await {
        Some(name) => {
            let (status, body) = put(
                &app,
                "/api/v1/agent/settings?tenant=demo",
                json!({"base_url": format!("http://{name}:{port}/v1"), "api_key": "sk-tenant-0123456789", "model": "m"}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            chat_answered(&app, "Hello again").await;
            for channel in channels(&name, port) {
                let (status, body) = app
                    .admin_post("/api/v1/channels?tenant=demo", channel)
                    .await;
                assert_eq!(status, 201, "{body}");
                let id = body["channel"]["id"].as_str().unwrap();
                let (_, health) = app
                    .admin_get(&format!("/api/v1/channels/{id}/health?tenant=demo"))
                    .await;
                assert_eq!(health["credentials"]["ok"], false, "{health}");
                assert!(refusal(&health), "the refusal says why: {health}");
            }
        }
        None => eprintln!(
            "this machine's name does not resolve to a private address; \
             resolution is covered by core::egress's tests"
        ),
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        trap.hits(),
        hits_before,
        "an endpoint on this machine was called"
    );
    app.stop().await;
}
