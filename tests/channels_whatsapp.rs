//! WhatsApp Cloud API end to end: channel configuration with sealed credentials, the
//! verification handshake, signatures over the raw body (forged ones store nothing), the
//! documented message shapes, duplicate deliveries answered once, status webhooks, the 24-hour
//! window with its template fallback, and Graph API rate-limit codes — against a local fake
//! Graph API that speaks HTTP.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sqlx::Row;

use crate::fake_provider::FakeProvider;
use crate::helpers::*;

const APP_SECRET: &str = "wa-app-secret-0001";
const ACCESS_TOKEN: &str = "wa-access-token-0001";
const VERIFY_TOKEN: &str = "wa-verify-token-0001";
const PHONE_NUMBER_ID: &str = "106540352242922";
const CUSTOMER: &str = "971500000001";

/// A fake Graph API: every send is accepted with a fresh `wamid`.
async fn fake_graph() -> FakeProvider {
    FakeProvider::start(|req, i| {
        if req.path.ends_with("/messages") {
            (200, json!({"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "x"}], "messages": [{"id": format!("wamid.out-{i}")}]}))
        } else {
            (200, json!({"id": PHONE_NUMBER_ID, "display_phone_number": "15550001111"}))
        }
    })
    .await
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn create_channel(app: &TestApp, graph: &FakeProvider, extra: Value) -> (String, String) {
    let mut config = json!({
        "phone_number_id": PHONE_NUMBER_ID,
        "api_base_url": graph.base,
        "app_secret": APP_SECRET,
        "access_token": ACCESS_TOKEN,
        "verify_token": VERIFY_TOKEN,
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "whatsapp", "name": "WhatsApp", "config": config}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["channel"]["id"].as_str().unwrap().to_owned();
    let url = body["channel"]["webhook_url"].as_str().unwrap().to_owned();
    (id, url)
}

fn notification(messages: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Layla"}, "wa_id": CUSTOMER}],
            "messages": messages,
        }}]}],
    }))
    .unwrap()
}

fn text_message(id: &str, text: &str) -> Value {
    json!({"from": CUSTOMER, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}})
}

async fn post_signed(
    app: &TestApp,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, String) {
    let mut req = app
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut c = app.owner().await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

#[tokio::test]
async fn channels_whatsapp_configuration_seals_credentials_and_shows_the_webhook_url() {
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (id, url) = create_channel(&app, &graph, json!({})).await;
    assert_eq!(url, app.url(&format!("/webhooks/whatsapp/{id}")));

    // The API never shows a secret; the database holds them sealed only.
    let (status, listed) = app.admin_get("/api/v1/channels?tenant=demo").await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    for secret in [APP_SECRET, ACCESS_TOKEN, VERIFY_TOKEN] {
        assert!(!text.contains(secret), "{text}");
    }
    let ch = listed["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap();
    assert_eq!(ch["kind"], "whatsapp");
    assert_eq!(ch["config"]["phone_number_id"], PHONE_NUMBER_ID);
    assert_eq!(ch["secrets_set"].as_array().unwrap().len(), 3);
    let mut owner = app.owner().await;
    let row = sqlx::query("SELECT config::text, secrets_enc FROM channels WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&mut owner)
        .await
        .unwrap();
    let config: String = row.get(0);
    let sealed: Vec<u8> = row.get(1);
    assert!(!config.contains(APP_SECRET) && !config.contains(ACCESS_TOKEN));
    assert!(!sealed
        .windows(ACCESS_TOKEN.len())
        .any(|w| w == ACCESS_TOKEN.as_bytes()));

    // Invalid settings are refused with the field named; nothing is created.
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "whatsapp", "name": "Broken", "config": {"phone_number_id": "12"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("app_secret"),
        "{body}"
    );

    // PATCH merges settings and keeps the secrets it was not given.
    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/channels/{id}?tenant=demo")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "WhatsApp Sales", "config": {"template_name": "hello_world"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["channel"]["name"], "WhatsApp Sales");
    assert_eq!(patched["channel"]["config"]["template_name"], "hello_world");
    assert_eq!(
        patched["channel"]["secrets_set"].as_array().unwrap().len(),
        3
    );

    // Health asks the (fake) Graph API with the sealed token.
    let (status, health) = app
        .admin_get(&format!("/api/v1/channels/{id}/health?tenant=demo"))
        .await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["credentials"]["ok"], true, "{health}");
    let probe = graph.received_at(&format!("/{PHONE_NUMBER_ID}"));
    assert_eq!(
        probe[0].header("authorization").unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
    assert!(health["last_inbound_at"].is_null());

    // Delete: gone, and its webhook is unknown.
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/channels/{id}?tenant=demo")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, _) = app
        .admin_get(&format!("/api/v1/channels/{id}?tenant=demo"))
        .await;
    assert_eq!(status, 404);
    // Admin routes need the token.
    let resp = app
        .http
        .get(app.url(&format!("/api/v1/channels/{id}?tenant=demo")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn channels_whatsapp_verification_handshake() {
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (_, url) = create_channel(&app, &graph, json!({})).await;
    let ok = app
        .http
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = app
        .http
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn channels_whatsapp_forged_signatures_store_nothing_and_are_counted() {
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (_, url) = create_channel(&app, &graph, json!({})).await;
    let body = notification(json!([text_message("wamid.forged", "hello")]));
    let mut tampered = body.clone();
    let pos = tampered.windows(5).position(|w| w == b"hello").unwrap();
    tampered[pos] = b'j';

    let (status, text) = post_signed(&app, &url, &body, Some(&sign("not-the-secret", &body))).await;
    assert_eq!(status, 403, "{text}");
    assert!(serde_json::from_str::<Value>(&text).unwrap()["error"]["code"].is_string());
    let (status, _) = post_signed(&app, &url, &body, None).await;
    assert_eq!(status, 401);
    let (status, _) = post_signed(&app, &url, &tampered, Some(&sign(APP_SECRET, &body))).await;
    assert_eq!(status, 403);
    let (status, _) = post_signed(&app, &url, &body, Some("sha256=zz")).await;
    assert_eq!(status, 403);

    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM contacts").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM channels WHERE last_inbound_at IS NOT NULL"
        )
        .await,
        0
    );
    let metrics = app.metrics().await;
    let rejected = |reason| {
        tenant_series(
            "switchboard_webhook_rejected_total",
            app.demo_tenant,
            "whatsapp",
            ("reason", reason),
        )
    };
    assert_eq!(
        metric(&metrics, &rejected("bad_signature")),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, &rejected("missing_signature")),
        Some(1.0),
        "{metrics}"
    );
    // A signed but unreadable body is a 400, still nothing stored.
    let junk = b"{not json";
    let (status, _) = post_signed(&app, &url, junk, Some(&sign(APP_SECRET, junk))).await;
    assert_eq!(status, 400);
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 0);
    // Unknown channels are 404.
    let resp = app
        .http
        .post(app.url(&format!("/webhooks/whatsapp/{}", uuid::Uuid::now_v7())))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn channels_whatsapp_duplicate_deliveries_get_one_reply_and_statuses_update_it() {
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (id, url) = create_channel(&app, &graph, json!({})).await;
    let body = notification(json!([text_message(
        "wamid.HBgM1",
        "What are your opening hours?"
    )]));
    let sig = sign(APP_SECRET, &body);
    // Meta redelivers; here three times, two of them at once.
    let (a, b) = tokio::join!(
        post_signed(&app, &url, &body, Some(&sig)),
        post_signed(&app, &url, &body, Some(&sig))
    );
    assert_eq!((a.0, b.0), (200, 200));
    let sent = graph.wait_for("/messages", 1).await;
    let (c, _) = post_signed(&app, &url, &body, Some(&sig)).await;
    assert_eq!(c, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent_all = graph.received_at("/messages");
    assert_eq!(sent_all.len(), 1, "exactly one reply: {sent_all:#?}");
    let req = &sent[0];
    assert_eq!(req.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
    let payload = req.json();
    assert_eq!(payload["messaging_product"], "whatsapp");
    assert_eq!(payload["to"], CUSTOMER);
    assert_eq!(payload["type"], "text");
    assert!(!payload["text"]["body"].as_str().unwrap().is_empty());
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);
    let name: String = {
        let mut c = app.owner().await;
        sqlx::query_scalar("SELECT display_name FROM contacts WHERE external_id = $1")
            .bind(CUSTOMER)
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(name, "Layla");

    // The outbox row carries the provider's id; status webhooks move it forward only.
    let provider_ref = "wamid.out-0";
    let ok = eventually(Duration::from_secs(10), || async {
        count(&app, &format!("SELECT count(*) FROM outbox WHERE provider_ref = '{provider_ref}' AND status = 'sent'")).await == 1
    })
    .await;
    assert!(ok, "the reply was recorded as sent with its wamid");
    for status in ["delivered", "sent", "read"] {
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                "statuses": [{"id": provider_ref, "status": status, "timestamp": "1700000100", "recipient_id": CUSTOMER}],
            }}]}],
        }))
        .unwrap();
        let (s, _) = post_signed(&app, &url, &body, Some(&sign(APP_SECRET, &body))).await;
        assert_eq!(s, 200);
        let state: String = {
            let mut c = app.owner().await;
            sqlx::query_scalar("SELECT delivery_status FROM outbox WHERE provider_ref = $1")
                .bind(provider_ref)
                .fetch_one(&mut c)
                .await
                .unwrap()
        };
        let want = if status == "sent" {
            "delivered"
        } else {
            status
        };
        assert_eq!(state, want, "after a `{status}` report");
    }
    // A status is never a customer message.
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM messages WHERE role = 'customer'"
        )
        .await,
        1
    );
    let (_, health) = app
        .admin_get(&format!("/api/v1/channels/{id}/health?tenant=demo"))
        .await;
    assert!(health["last_inbound_at"].is_string(), "{health}");
    app.stop().await;
}

#[tokio::test]
async fn channels_whatsapp_message_shapes_are_stored_as_customer_text() {
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (_, url) = create_channel(&app, &graph, json!({})).await;
    let body = notification(json!([
        {"from": CUSTOMER, "id": "wamid.b1", "timestamp": "1700000001", "type": "interactive",
         "context": {"from": "15550783881", "id": "wamid.out-x"},
         "interactive": {"type": "button_reply", "button_reply": {"id": "slot-1", "title": "Mon 10:00"}}},
        {"from": CUSTOMER, "id": "wamid.v1", "timestamp": "1700000002", "type": "audio",
         "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "1234", "voice": true}},
        {"from": CUSTOMER, "id": "wamid.i1", "timestamp": "1700000003", "type": "image",
         "image": {"caption": "Our roof", "mime_type": "image/jpeg", "sha256": "x", "id": "5678"}},
    ]));
    let (s, _) = post_signed(&app, &url, &body, Some(&sign(APP_SECRET, &body))).await;
    assert_eq!(s, 200);
    let mut c = app.owner().await;
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT m.text FROM messages m JOIN inbound_events e ON e.id = m.inbound_event_id ORDER BY e.provider_message_id",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(texts, ["Mon 10:00", "Our roof", "[voice note]"]);
    app.stop().await;
}

/// Adds an outbox row for the WhatsApp conversation of CUSTOMER, as a turn would.
async fn enqueue_reply(app: &TestApp, key: &str, payload: Value) -> uuid::Uuid {
    let mut c = app.owner().await;
    let row = sqlx::query(
        "SELECT c.tenant_id, c.channel_id, c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.external_id = $1",
    )
    .bind(CUSTOMER)
    .fetch_one(&mut c)
    .await
    .unwrap();
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, idempotency_key, payload) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(row.get::<uuid::Uuid, _>(0))
    .bind(row.get::<uuid::Uuid, _>(1))
    .bind(row.get::<uuid::Uuid, _>(2))
    .bind(key)
    .bind(payload)
    .execute(&mut c)
    .await
    .unwrap();
    id
}

async fn outbox_state(app: &TestApp, id: uuid::Uuid) -> (String, i32, Option<String>) {
    let mut c = app.owner().await;
    sqlx::query_as("SELECT status, attempts, last_error FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn channels_whatsapp_window_template_buttons_and_rate_limits() {
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (id, url) = create_channel(
        &app,
        &graph,
        json!({"template_name": "follow_up", "template_language": "en"}),
    )
    .await;
    let body = notification(json!([text_message("wamid.w1", "Hello")]));
    post_signed(&app, &url, &body, Some(&sign(APP_SECRET, &body))).await;
    graph.wait_for("/messages", 1).await;

    // Reply buttons for slot choices, within the window.
    let buttons = enqueue_reply(&app, "test:buttons", json!({"to": CUSTOMER, "text": "Which slot suits you?",
        "choices": [{"id": "slot-1", "title": "Monday 10:00 at the office"}, {"id": "slot-2", "title": "Tue 14:00"}]})).await;
    let sent = graph.wait_for("/messages", 2).await;
    let b = sent[1].json();
    assert_eq!(b["type"], "interactive");
    assert_eq!(b["interactive"]["type"], "button");
    assert_eq!(b["interactive"]["body"]["text"], "Which slot suits you?");
    let btns = b["interactive"]["action"]["buttons"].as_array().unwrap();
    assert_eq!(btns.len(), 2);
    assert_eq!(btns[0]["reply"]["id"], "slot-1");
    assert!(btns[0]["reply"]["title"].as_str().unwrap().chars().count() <= 20);
    assert!(
        eventually(Duration::from_secs(10), || async {
            outbox_state(&app, buttons).await.0 == "sent"
        })
        .await
    );

    // 130429 / 131056 come back as HTTP 400: rate limits, retried without using up attempts.
    graph.queue(400, json!({"error": {"message": "(#131056) (Business Account, Consumer Account) pair rate limit hit", "type": "OAuthException", "code": 131056}}));
    let limited = enqueue_reply(
        &app,
        "test:limited",
        json!({"to": CUSTOMER, "text": "After the limit"}),
    )
    .await;
    let ok = eventually(Duration::from_secs(20), || async {
        outbox_state(&app, limited).await.0 == "sent"
    })
    .await;
    assert!(ok, "{:?}", outbox_state(&app, limited).await);
    let (_, attempts, _) = outbox_state(&app, limited).await;
    assert_eq!(attempts, 1, "the rate-limited attempt was not counted");
    let tries: Vec<_> = graph
        .received_at("/messages")
        .into_iter()
        .filter(|r| r.json()["text"]["body"] == "After the limit")
        .collect();
    assert_eq!(tries.len(), 2, "refused once, then sent");

    // Outside the 24-hour window: the configured template instead of free text.
    let mut c = app.owner().await;
    sqlx::query(
        "UPDATE contacts SET last_inbound_at = now() - interval '25 hours' WHERE external_id = $1",
    )
    .bind(CUSTOMER)
    .execute(&mut c)
    .await
    .unwrap();
    let late = enqueue_reply(
        &app,
        "test:late",
        json!({"to": CUSTOMER, "text": "Late answer"}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            outbox_state(&app, late).await.0 == "sent"
        })
        .await
    );
    let last = graph.received_at("/messages").pop().unwrap().json();
    assert_eq!(last["type"], "template");
    assert_eq!(last["template"]["name"], "follow_up");
    assert_eq!(last["template"]["language"]["code"], "en");

    // Without a template, the row fails visibly instead of being sent.
    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/channels/{id}?tenant=demo")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"config": {"template_name": null}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let before = graph.received_at("/messages").len();
    let refused = enqueue_reply(
        &app,
        "test:refused",
        json!({"to": CUSTOMER, "text": "Too late"}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            outbox_state(&app, refused).await.0 == "failed"
        })
        .await
    );
    let (_, _, error) = outbox_state(&app, refused).await;
    assert!(error.unwrap().contains("24-hour window"));
    assert_eq!(graph.received_at("/messages").len(), before);
    let (_, health) = app
        .admin_get(&format!("/api/v1/channels/{id}/health?tenant=demo"))
        .await;
    assert!(
        health["last_error"]
            .as_str()
            .unwrap()
            .contains("24-hour window"),
        "{health}"
    );
    app.stop().await;
}

#[tokio::test]
async fn channels_whatsapp_voice_notes_are_transcribed_or_answered_with_a_request_to_type() {
    // Speech to text configured: the audio is fetched with the token and transcribed.
    let stt =
        FakeProvider::start(|_, _| (200, json!({"text": "What are your opening hours?"}))).await;
    let cdn = FakeProvider::start(|_, _| (200, json!("OggS-fake-audio"))).await;
    let cdn_base = cdn.base.clone();
    let graph = FakeProvider::start(move |req, i| {
        if req.path.ends_with("/messages") {
            (200, json!({"messages": [{"id": format!("wamid.out-{i}")}]}))
        } else {
            (200, json!({"url": format!("{cdn_base}/whatsapp_business/attachments/?mid=1"), "mime_type": "audio/ogg; codecs=opus", "id": "media-77"}))
        }
    })
    .await;
    let stt_base = format!("{}/v1", stt.base);
    let app = spawn_app_with(
        |s| {
            s.speech_to_text = Some(switchboard_runtime::config::SpeechToTextSettings {
                base_url: stt_base,
                api_key: Some("stt-key".to_owned().into()),
                model: "whisper-1".into(),
            })
        },
        None,
    )
    .await;
    let (_, url) = create_channel(&app, &graph, json!({})).await;
    let voice = json!([{"from": CUSTOMER, "id": "wamid.voice1", "timestamp": "1700000002", "type": "audio",
        "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "media-77", "voice": true}}]);
    let body = notification(voice);
    let (s, _) = post_signed(&app, &url, &body, Some(&sign(APP_SECRET, &body))).await;
    assert_eq!(s, 200);
    let meta = graph.received_at("/media-77");
    assert_eq!(
        meta[0].header("authorization").unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
    assert_eq!(
        cdn.received()[0].header("authorization").unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
    let transcription = stt.received_at("/v1/audio/transcriptions");
    assert_eq!(
        transcription[0].header("authorization").unwrap(),
        "Bearer stt-key"
    );
    assert_eq!(
        transcription[0].field("model").as_deref(),
        Some("whisper-1")
    );
    assert!(String::from_utf8_lossy(&transcription[0].body).contains("OggS-fake-audio"));
    let mut c = app.owner().await;
    let text: String = sqlx::query_scalar("SELECT text FROM messages WHERE role = 'customer'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(text, "What are your opening hours?");
    let reply = graph.wait_for("/messages", 1).await[0].json();
    assert!(
        reply["text"]["body"].as_str().unwrap().contains("Source:"),
        "answered from the knowledge base: {reply}"
    );
    app.stop().await;

    // Without speech to text: a clear answer asking to type, and the event is finished.
    let app = spawn_app().await;
    let graph = fake_graph().await;
    let (_, url) = create_channel(&app, &graph, json!({})).await;
    let (s, _) = post_signed(&app, &url, &body, Some(&sign(APP_SECRET, &body))).await;
    assert_eq!(s, 200);
    let reply = graph.wait_for("/messages", 1).await[0].json();
    assert_eq!(
        reply["text"]["body"],
        switchboard_channels::speech::UNSUPPORTED_REPLY
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM inbound_events WHERE status = 'done'"
        )
        .await,
        1
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        graph.received_at("/messages").len(),
        1,
        "the agent does not answer it a second time"
    );
    app.stop().await;
}
