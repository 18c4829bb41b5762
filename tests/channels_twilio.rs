//! Twilio SMS and Voice end to end. Webhook signatures are computed by Twilio's official Python
//! SDK (`twilio.request_validator.RequestValidator`, run as a process), outbound calls land on a
//! local fake of Twilio's REST API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;
use switchboard_actors::{FaultHook, FaultPoint};

use crate::fake_provider::FakeProvider;
use crate::helpers::*;

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-auth-token-0001";
const OUR_NUMBER: &str = "+15550001111";
const CUSTOMER: &str = "+15557654321";
/// Where Twilio reaches this deployment (a proxy in front of it).
const PUBLIC_BASE: &str = "https://switchboard.example.com";

/// Signs requests with the official SDK: `[{token, url, params}]` → signatures.
fn sdk_signatures(requests: Value) -> Vec<String> {
    let script = r#"
import json, sys
from twilio.request_validator import RequestValidator
out = [RequestValidator(r["token"]).compute_signature(r["url"], r["params"]) for r in json.load(sys.stdin)]
print(json.dumps(out))
"#;
    run_python(script, &requests)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn sdk_sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let params: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    sdk_signatures(json!([{"token": token, "url": url, "params": params}])).remove(0)
}

async fn fake_twilio() -> FakeProvider {
    FakeProvider::start(|req, i| {
        if req.path.ends_with("/Messages.json") {
            (
                201,
                json!({"sid": format!("SM{i:032}"), "status": "queued"}),
            )
        } else {
            (200, json!({"sid": ACCOUNT_SID, "status": "active"}))
        }
    })
    .await
}

async fn create(app: &TestApp, kind: &str, config: Value) -> (String, String) {
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": kind, "name": format!("Twilio {kind}"), "config": config}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["channel"]["id"].as_str().unwrap().to_owned(),
        body["channel"]["webhook_url"].as_str().unwrap().to_owned(),
    )
}

/// Posts `params` to the webhook at its public `url` (sent to the local server) with `signature`.
async fn post_form(
    app: &TestApp,
    public_url: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> (u16, String) {
    let local = public_url.replace(PUBLIC_BASE, &app.base);
    let mut req = app.http.post(local).form(params);
    if let Some(sig) = signature {
        req = req.header("X-Twilio-Signature", sig);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut c = app.owner().await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

async fn spawn_behind_proxy(faults: Option<FaultHook>) -> TestApp {
    spawn_app_with(|s| s.public_base_url = Some(PUBLIC_BASE.into()), faults).await
}

#[tokio::test]
async fn channels_twilio_sdk_reproduces_the_documented_example_vector() {
    let sig = sdk_sign(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        &[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ],
    );
    assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    // And our validator agrees with the SDK on random-looking requests, Arabic included.
    let params = [
        ("Body", "مرحبا & hi=1"),
        ("From", "+971500000001"),
        ("MessageSid", "SMx"),
        ("A", ""),
    ];
    let url = "https://example.com:8443/hook/x?b=2&a=1";
    let sdk = sdk_sign("tok", url, &params);
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert_eq!(
        switchboard_channels::twilio::compute_signature("tok", url, &owned),
        sdk
    );
}

#[tokio::test]
async fn channels_twilio_sms_signed_by_the_sdk_is_answered_and_forgeries_store_nothing() {
    let app = spawn_behind_proxy(None).await;
    let twilio = fake_twilio().await;
    let (id, url) = create(
        &app,
        "sms",
        json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": OUR_NUMBER, "api_base_url": twilio.base}),
    )
    .await;
    assert_eq!(url, format!("{PUBLIC_BASE}/webhooks/twilio/sms/{id}"));
    let params = [
        ("MessageSid", "SM11111111111111111111111111111111"),
        ("AccountSid", ACCOUNT_SID),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "What are your opening hours?"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
    ];
    let good = sdk_sign(AUTH_TOKEN, &url, &params);

    // Forgeries first: tampered body, wrong URL, wrong token, no signature.
    let mut tampered = params;
    tampered[4] = ("Body", "What are your prices?");
    let (s, _) = post_form(&app, &url, &tampered, Some(&good)).await;
    assert_eq!(s, 403);
    let local_url = url.replace(PUBLIC_BASE, &app.base);
    let (s, _) = post_form(
        &app,
        &url,
        &params,
        Some(&sdk_sign(AUTH_TOKEN, &local_url, &params)),
    )
    .await;
    assert_eq!(
        s, 403,
        "a signature over the URL the server saw, not the public one, is refused"
    );
    let (s, _) = post_form(
        &app,
        &url,
        &params,
        Some(&sdk_sign("other-token", &url, &params)),
    )
    .await;
    assert_eq!(s, 403);
    let (s, body) = post_form(&app, &url, &params, None).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 0);
    let metrics = app.metrics().await;
    let series = tenant_series(
        "switchboard_webhook_rejected_total",
        app.demo_tenant,
        "sms",
        ("reason", "bad_signature"),
    );
    assert!(
        metric(&metrics, &series).is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // The genuine request, delivered twice: stored once, answered once through the REST API.
    let (s, body) = post_form(&app, &url, &params, Some(&good)).await;
    assert_eq!(s, 200);
    assert!(body.contains("<Response/>"), "{body}");
    let (s, _) = post_form(&app, &url, &params, Some(&good)).await;
    assert_eq!(s, 200);
    let sent = twilio.wait_for("/Messages.json", 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(twilio.received_at("/Messages.json").len(), 1);
    let req = &sent[0];
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    let expected_auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{ACCOUNT_SID}:{AUTH_TOKEN}")
        )
    );
    assert_eq!(req.header("authorization").unwrap(), expected_auth);
    assert_eq!(req.form_value("To").unwrap(), CUSTOMER);
    assert_eq!(req.form_value("From").unwrap(), OUR_NUMBER);
    assert!(!req.form_value("Body").unwrap().is_empty());
    assert_eq!(req.form_value("StatusCallback").unwrap(), url);

    // Twilio's status callback (signed by the SDK) updates the row; it is not a message.
    let sid = "SM00000000000000000000000000000000";
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(
                &app,
                &format!("SELECT count(*) FROM outbox WHERE provider_ref = '{sid}'"),
            )
            .await
                == 1
        })
        .await
    );
    let status = [
        ("MessageSid", sid),
        ("MessageStatus", "delivered"),
        ("AccountSid", ACCOUNT_SID),
        ("To", CUSTOMER),
        ("From", OUR_NUMBER),
    ];
    let (s, _) = post_form(
        &app,
        &url,
        &status,
        Some(&sdk_sign(AUTH_TOKEN, &url, &status)),
    )
    .await;
    assert_eq!(s, 200);
    let mut c = app.owner().await;
    let state: String =
        sqlx::query_scalar("SELECT delivery_status FROM outbox WHERE provider_ref = $1")
            .bind(sid)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(state, "delivered");
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);
    app.stop().await;
}

async fn enqueue(app: &TestApp, to: &str, key: &str, text: &str) -> uuid::Uuid {
    let mut c = app.owner().await;
    let row = sqlx::query(
        "SELECT c.tenant_id, c.channel_id, c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.external_id = $1",
    )
    .bind(to)
    .fetch_one(&mut c)
    .await
    .unwrap();
    let id = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, idempotency_key, payload) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(row.get::<uuid::Uuid, _>(0))
        .bind(row.get::<uuid::Uuid, _>(1))
        .bind(row.get::<uuid::Uuid, _>(2))
        .bind(key)
        .bind(json!({"to": to, "text": text}))
        .execute(&mut c)
        .await
        .unwrap();
    id
}

async fn status_of(app: &TestApp, id: uuid::Uuid) -> (String, Option<String>) {
    let mut c = app.owner().await;
    sqlx::query_as("SELECT status, last_error FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn channels_twilio_sms_stop_is_honoured_and_long_replies_are_split() {
    let app = spawn_behind_proxy(None).await;
    let twilio = fake_twilio().await;
    let (_, url) = create(
        &app,
        "sms",
        json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": OUR_NUMBER, "api_base_url": twilio.base}),
    )
    .await;
    let first = [
        ("MessageSid", "SMa"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "Hello"),
    ];
    post_form(
        &app,
        &url,
        &first,
        Some(&sdk_sign(AUTH_TOKEN, &url, &first)),
    )
    .await;
    twilio.wait_for("/Messages.json", 1).await;

    // STOP: remembered, not shown to the agent, and nothing is sent afterwards.
    let stop = [
        ("MessageSid", "SMb"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "Stop"),
    ];
    let (s, _) = post_form(&app, &url, &stop, Some(&sdk_sign(AUTH_TOKEN, &url, &stop))).await;
    assert_eq!(s, 200);
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);
    let blocked = enqueue(&app, CUSTOMER, "test:blocked", "A promotion").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            status_of(&app, blocked).await.0 == "failed"
        })
        .await
    );
    assert!(status_of(&app, blocked)
        .await
        .1
        .unwrap()
        .contains("opted out"));
    assert_eq!(
        twilio.received_at("/Messages.json").len(),
        1,
        "nothing sent after STOP"
    );

    // START: messages flow again; a long reply is split at sentence boundaries, ≤ 1600 each.
    let start = [
        ("MessageSid", "SMc"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "START"),
    ];
    post_form(
        &app,
        &url,
        &start,
        Some(&sdk_sign(AUTH_TOKEN, &url, &start)),
    )
    .await;
    let sentence = "Our panels carry a twenty-five year warranty and we install within two weeks. ";
    let long = sentence.repeat(45);
    let row = enqueue(&app, CUSTOMER, "test:long", &long).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            status_of(&app, row).await.0 == "sent"
        })
        .await
    );
    let parts: Vec<String> = twilio.received_at("/Messages.json")[1..]
        .iter()
        .map(|r| r.form_value("Body").unwrap())
        .collect();
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(parts
        .iter()
        .all(|p| p.chars().count() <= 1600 && p.ends_with('.')));
    assert_eq!(parts.join(" "), long.trim());
    app.stop().await;
}

#[tokio::test]
async fn channels_twilio_voice_gather_loop_with_holding_phrase_and_hang_up() {
    let faults: FaultHook = Arc::new(|point: &FaultPoint<'_>| match point {
        FaultPoint::BeforeCommit { customer_text, .. } if customer_text.contains("slowly") => {
            Some(Duration::from_millis(2500))
        }
        _ => None,
    });
    let app = spawn_behind_proxy(Some(faults)).await;
    let (_, url) = create(
        &app,
        "voice",
        json!({"auth_token": AUTH_TOKEN, "answer_budget_ms": 1500, "greeting": "Welcome to Sahara Solar & Co."}),
    )
    .await;
    let call = [
        ("CallSid", "CA42"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("CallStatus", "ringing"),
        ("AccountSid", ACCOUNT_SID),
    ];
    let (s, twiml) = post_form(&app, &url, &call, Some(&sdk_sign(AUTH_TOKEN, &url, &call))).await;
    assert_eq!(s, 200);
    assert!(
        twiml.contains("Welcome to Sahara Solar &amp; Co."),
        "{twiml}"
    );
    let turn1 = format!("{url}?turn=1");
    assert!(
        twiml.contains(&format!(r#"<Gather input="speech" action="{turn1}""#)),
        "{twiml}"
    );

    // A turn: the caller's speech is stored and the agent's reply is spoken, then we listen.
    let speech = [
        ("CallSid", "CA42"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("CallStatus", "in-progress"),
        ("SpeechResult", "What are your opening hours?"),
        ("Confidence", "0.92"),
    ];
    let (s, twiml) = post_form(
        &app,
        &turn1,
        &speech,
        Some(&sdk_sign(AUTH_TOKEN, &turn1, &speech)),
    )
    .await;
    assert_eq!(s, 200);
    let mut c = app.owner().await;
    let reply: String =
        sqlx::query_scalar("SELECT text FROM messages WHERE role = 'agent' ORDER BY seq LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let escaped = reply
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    assert!(
        twiml.contains(&escaped),
        "reply {reply:?} not spoken in {twiml}"
    );
    assert!(
        twiml.contains(&format!("action=\"{url}?turn=2\"")),
        "{twiml}"
    );
    // Twilio retrying the same turn is recognised: still one customer message.
    let (s, again) = post_form(
        &app,
        &turn1,
        &speech,
        Some(&sdk_sign(AUTH_TOKEN, &turn1, &speech)),
    )
    .await;
    assert_eq!(s, 200);
    assert!(again.contains(&escaped));
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);

    // A slow turn: holding phrase and a redirect that fetches the answer when it is ready.
    let turn2 = format!("{url}?turn=2");
    let slow = [
        ("CallSid", "CA42"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("CallStatus", "in-progress"),
        ("SpeechResult", "Tell me slowly about prices"),
    ];
    let started = std::time::Instant::now();
    let (s, twiml) = post_form(
        &app,
        &turn2,
        &slow,
        Some(&sdk_sign(AUTH_TOKEN, &turn2, &slow)),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within the budget"
    );
    assert!(twiml.contains("One moment please."), "{twiml}");
    let redirect = format!("{url}?turn=2&await=1");
    assert!(
        twiml.contains(&format!(
            "<Redirect method=\"POST\">{}</Redirect>",
            redirect.replace('&', "&amp;")
        )),
        "{twiml}"
    );
    let follow = [
        ("CallSid", "CA42"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("CallStatus", "in-progress"),
    ];
    let mut spoken = None;
    for _ in 0..5 {
        let (s, twiml) = post_form(
            &app,
            &redirect,
            &follow,
            Some(&sdk_sign(AUTH_TOKEN, &redirect, &follow)),
        )
        .await;
        assert_eq!(s, 200);
        if twiml.contains("turn=3") {
            spoken = Some(twiml);
            break;
        }
        assert!(twiml.contains("<Redirect"), "{twiml}");
    }
    let spoken = spoken.expect("the slow answer was spoken after the redirect");
    assert!(spoken.contains("<Say"), "{spoken}");
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 2);

    // Hang-up ends cleanly.
    let bye = [
        ("CallSid", "CA42"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("CallStatus", "completed"),
    ];
    let (s, twiml) = post_form(&app, &url, &bye, Some(&sdk_sign(AUTH_TOKEN, &url, &bye))).await;
    assert_eq!(s, 200);
    assert!(twiml.ends_with("<Response/>"), "{twiml}");
    // A forged voice request is refused.
    let (s, _) = post_form(&app, &turn1, &speech, Some("AAAA")).await;
    assert_eq!(s, 403);
    app.stop().await;
}

#[tokio::test]
async fn channels_dispatcher_keeps_to_the_sms_sending_cap_and_the_order_of_a_conversation() {
    let app = spawn_behind_proxy(None).await;
    let twilio = fake_twilio().await;
    let (_, url) = create(
        &app,
        "sms",
        json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": OUR_NUMBER,
               "api_base_url": twilio.base, "messages_per_second": 2.0}),
    )
    .await;
    let first = [
        ("MessageSid", "SMr1"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "Hello"),
    ];
    post_form(
        &app,
        &url,
        &first,
        Some(&sdk_sign(AUTH_TOKEN, &url, &first)),
    )
    .await;
    twilio.wait_for("/Messages.json", 1).await;
    // Six replies queued at once for one number: at most 2 per second leave, in order.
    let mut rows = Vec::new();
    for i in 0..6 {
        rows.push(
            enqueue(
                &app,
                CUSTOMER,
                &format!("test:burst-{i}"),
                &format!("Part {i}"),
            )
            .await,
        );
    }
    let sent = twilio.wait_for("/Messages.json", 7).await;
    let burst: Vec<_> = sent[1..].to_vec();
    let bodies: Vec<String> = burst
        .iter()
        .map(|r| r.form_value("Body").unwrap())
        .collect();
    assert_eq!(
        bodies,
        (0..6).map(|i| format!("Part {i}")).collect::<Vec<_>>()
    );
    let span = burst[5].at - burst[0].at;
    assert!(
        span >= Duration::from_millis(1900),
        "6 sends at 2/s after a burst of 2 take ≥ 2 s, took {span:?}"
    );
    for id in rows {
        let (status, error) = status_of(&app, id).await;
        assert_eq!(status, "sent", "{error:?}");
    }
    let mut c = app.owner().await;
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM outbox WHERE idempotency_key LIKE 'test:burst-%'")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert!(
        attempts.iter().all(|a| *a == 1),
        "waiting for the cap uses no attempts: {attempts:?}"
    );
    app.stop().await;
}

fn sign_body(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
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

#[tokio::test]
async fn channels_voice_generic_transcript_webhook_answers_turns_and_holds_slow_ones() {
    let faults: FaultHook = Arc::new(|point: &FaultPoint<'_>| match point {
        FaultPoint::BeforeCommit { customer_text, .. } if customer_text.contains("slowly") => {
            Some(Duration::from_millis(2500))
        }
        _ => None,
    });
    let app = spawn_app_with(|_| {}, Some(faults)).await;
    const SECRET: &str = "transcript-secret-0001";
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "voice", "name": "Phone (other STT)", "config": {"transcript_secret": SECRET, "answer_budget_ms": 1500}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["channel"]["transcript_webhook_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |payload: Value, sig: Option<String>| {
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let body = serde_json::to_vec(&payload).unwrap();
            let mut req = http
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(sig) = sig {
                req = req.header("X-Switchboard-Signature", sig);
            }
            let resp = req.send().await.unwrap();
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let turn1 = json!({"call_id": "call-9", "turn": 1, "caller": "+15550009999", "text": "What are your opening hours?"});
    let raw = serde_json::to_vec(&turn1).unwrap();
    let (s, _) = post(turn1.clone(), Some(sign_body("wrong-secret-000000", &raw))).await;
    assert_eq!(s, 403);
    let (s, _) = post(turn1.clone(), None).await;
    assert_eq!(s, 401);
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 0);

    let (s, answer) = post(turn1.clone(), Some(sign_body(SECRET, &raw))).await;
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["pending"], false);
    let reply = answer["reply"].as_str().unwrap().to_owned();
    assert!(!reply.is_empty());
    let (_, again) = post(turn1.clone(), Some(sign_body(SECRET, &raw))).await;
    assert_eq!(
        again["reply"],
        reply.as_str(),
        "a retried turn gets the same answer"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 1);

    let slow = json!({"call_id": "call-9", "turn": 2, "caller": "+15550009999", "text": "Tell me slowly about prices"});
    let raw = serde_json::to_vec(&slow).unwrap();
    let (_, held) = post(slow, Some(sign_body(SECRET, &raw))).await;
    assert_eq!(held["pending"], true, "{held}");
    assert_eq!(held["holding_phrase"], "One moment please.");
    let fetch = json!({"call_id": "call-9", "turn": 2});
    let raw = serde_json::to_vec(&fetch).unwrap();
    let mut answered = None;
    for _ in 0..5 {
        let (_, a) = post(fetch.clone(), Some(sign_body(SECRET, &raw))).await;
        if a["pending"] == false {
            answered = Some(a);
            break;
        }
    }
    assert!(answered.expect("answered after polling")["reply"]
        .as_str()
        .is_some());
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 2);
    app.stop().await;
}
