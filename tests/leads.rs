//! Lead capture end to end: details a customer gives in web chat become contact fields with a
//! score and reasons; every lead change reaches the tenant's CRM as exactly one signed webhook
//! (HMAC-SHA256 checked here with the `hmac` crate, not with Switchboard's code); transient
//! failures are retried and logged attempt by attempt, permanent ones are not; redone turns
//! never call the CRM twice; bad settings are refused whole and the secret never leaves.
//!
//! The CRM is `fake_provider`, a real HTTP server answering queued statuses.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use switchboard_actors::leads::{self, CrmOutcome};
use switchboard_core::store::actions;
use switchboard_core::ConversationId;
use uuid::Uuid;

use crate::fake_provider::{FakeProvider, Received};
use crate::helpers::{eventually, session, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN};

const SECRET: &str = "whsec_leads_test_0123456789abcdef";

async fn admin_put(app: &TestApp, path: &str, body: Value) -> (u16, Value, String) {
    let r = app
        .http
        .put(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// A CRM receiver answering 200 unless a status is queued.
async fn crm() -> FakeProvider {
    FakeProvider::start(|_, _| (200, json!({"ok": true}))).await
}

async fn configure_crm(app: &TestApp, crm: &FakeProvider) {
    let (status, body, _) = admin_put(
        app,
        "/api/v1/actions/settings?tenant=demo",
        json!({"crm_webhook_url": format!("{}/crm/hook", crm.base), "crm_secret": SECRET}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["has_crm_secret"], true);
}

/// Starts a web-chat conversation and returns its id once the agent answered.
async fn conversation(app: &TestApp, session: &str, text: &str) -> ConversationId {
    let (status, body) = app.post_chat(app.demo_channel, session, "c0", text).await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_agent_replies(app.demo_channel, session, 1)
        .await;
    conversation_of(app, session).await
}

async fn conversation_of(app: &TestApp, session: &str) -> ConversationId {
    let mut owner = app.owner().await;
    let id: Uuid = sqlx::query_scalar(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id
          WHERE k.external_id = $1",
    )
    .bind(session)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    ConversationId(id)
}

/// What the turn does with a customer's text when `leads` is enabled (`leads::observe`), run
/// again here: a replay of a turn that already happened must change nothing.
async fn observe(app: &TestApp, conversation: ConversationId, text: &str) -> leads::Applied {
    let mut tx = app.db.tenant(app.demo_tenant).await.unwrap();
    let settings = actions::get(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    leads::observe_text(&app.db, app.demo_tenant, conversation, text, &settings)
        .await
        .unwrap()
}

/// Checks `x-switchboard-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn signature_valid(r: &Received, secret: &str) -> bool {
    let Some(header) = r.header("x-switchboard-signature") else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_owned()),
            Some(("v1", x)) => v1 = Some(x.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap_or(0);
    if !(0..300).contains(&age) {
        return false;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.admin_get("/api/v1/crm/deliveries?tenant=demo").await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn web_chat_lead_details_are_stored_scored_and_sent_signed_once_per_change() {
    let app = spawn_app().await;
    let crm = crm().await;
    configure_crm(&app, &crm).await;
    let s = session();

    let first = "Hi, my name is Sara Haddad and I work at Acme Trading.";
    let conv = conversation(&app, &s, first).await;
    observe(&app, conv, first).await;
    let second = "My email is sara@acme.example and my phone is +971 50 123 4567. \
                  What are your prices?";
    let (status, _) = app.post_chat(app.demo_channel, &s, "c1", second).await;
    assert_eq!(status, 202);
    app.wait_for_agent_replies(app.demo_channel, &s, 2).await;
    observe(&app, conv, second).await;

    // The lead, as admins see it.
    let (status, body) = app.admin_get("/api/v1/leads?tenant=demo").await;
    assert_eq!(status, 200, "{body}");
    let list = body["leads"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    let lead = &list[0];
    assert_eq!(lead["name"], "Sara Haddad");
    assert_eq!(lead["company"], "Acme Trading");
    assert_eq!(lead["email"], "sara@acme.example");
    assert_eq!(lead["phone"], "+971501234567");
    assert_eq!(lead["channel"], "webchat");
    assert_eq!(lead["conversation_id"], json!(conv));
    assert_eq!(lead["score"], 80, "{lead}");
    let reasons: Vec<&str> = lead["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "+25 gave an email address",
            "+20 gave a phone number",
            "+10 gave their name",
            "+10 company given",
            "+15 asked about prices",
        ]
    );
    let (_, high) = app
        .admin_get("/api/v1/leads?tenant=demo&min_score=81")
        .await;
    assert_eq!(high["leads"], json!([]));
    let (status, _) = app
        .admin_get("/api/v1/leads?tenant=demo&min_score=101")
        .await;
    assert_eq!(status, 400);

    // Two changes (name + company, then email + phone + prices): two POSTs, signed.
    let received = crm.wait_for("/crm/hook", 2).await;
    let contact = lead["contact_id"].as_str().unwrap().to_owned();
    let (status, detail) = app
        .admin_get(&format!("/api/v1/leads/{contact}?tenant=demo"))
        .await;
    assert_eq!(status, 200, "{detail}");
    let ok = eventually(Duration::from_secs(10), || async {
        let (_, d) = app
            .admin_get(&format!("/api/v1/leads/{contact}?tenant=demo"))
            .await;
        d["deliveries"]
            .as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|x| x["status"] == "done"))
    })
    .await;
    assert!(ok, "deliveries not done");
    let (_, detail) = app
        .admin_get(&format!("/api/v1/leads/{contact}?tenant=demo"))
        .await;
    let mut sent = detail["deliveries"].as_array().unwrap().clone();
    sent.reverse(); // oldest first, like `received`
    for (r, d) in received.iter().zip(&sent) {
        assert!(signature_valid(r, SECRET), "bad signature: {:?}", r.headers);
        assert!(!signature_valid(r, "another-secret-0123456789"));
        let key = d["idempotency_key"].as_str().unwrap();
        assert!(key.starts_with(&format!("crm_lead:{contact}:")), "{key}");
        assert_eq!(r.header("idempotency-key").as_deref(), Some(key));
        assert_eq!(
            r.header("x-switchboard-delivery").as_deref(),
            d["id"].as_str()
        );
        assert_eq!(
            r.header("x-switchboard-event").as_deref(),
            d["event"].as_str()
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        let body = r.json();
        assert_eq!(body["id"], d["id"]);
        assert_eq!(body["event"], d["event"]);
        assert_eq!(body["data"]["contact_id"], json!(contact));
        assert_eq!(body["data"]["conversation_id"], json!(conv));
        let log = d["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 1, "{d}");
        assert_eq!(log[0]["status_code"], 200);
        assert_eq!(log[0]["outcome"], "ok");
    }
    let created = received[0].json();
    assert_eq!(created["event"], "lead.created");
    assert_eq!(created["data"]["fields"]["name"], "Sara Haddad");
    assert_eq!(created["data"]["fields"]["company"], "Acme Trading");
    assert_eq!(created["data"]["fields"]["email"], Value::Null);
    let updated = received[1].json();
    assert_eq!(updated["event"], "lead.updated");
    assert_eq!(updated["data"]["fields"]["email"], "sara@acme.example");
    assert_eq!(updated["data"]["fields"]["phone"], "+971501234567");
    assert_eq!(updated["data"]["score"], 80);
    assert_eq!(updated["data"]["signals"], json!(["pricing"]));

    // Nothing more arrives: the replays above and any later turn without news send nothing.
    let (status, _) = app.post_chat(app.demo_channel, &s, "c2", "thanks!").await;
    assert_eq!(status, 202);
    app.wait_for_agent_replies(app.demo_channel, &s, 3).await;
    observe(&app, conv, "thanks!").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(crm.received_at("/crm/hook").len(), 2);
    let (status, _) = app
        .admin_get(&format!("/api/v1/leads/{}?tenant=demo", Uuid::now_v7()))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn crm_retries_transient_failures_and_logs_every_attempt() {
    let app = spawn_app_with(|s| s.actions.effect_backoff_ms = 200, None).await;
    let crm = crm().await;
    configure_crm(&app, &crm).await;
    let conv = conversation(&app, &session(), "Hello").await;

    // 500, then 200: delivered on the second attempt, both attempts in the log.
    crm.queue(500, json!({"error": "busy"}));
    let applied = observe(&app, conv, "my email is lina@example.org").await;
    assert_eq!(applied.crm, CrmOutcome::Queued);
    let received = crm.wait_for("/crm/hook", 2).await;
    assert_eq!(
        received[0].header("idempotency-key"),
        received[1].header("idempotency-key")
    );
    assert_eq!(
        received[0].header("x-switchboard-delivery"),
        received[1].header("x-switchboard-delivery")
    );
    assert!(received.iter().all(|r| signature_valid(r, SECRET)));
    let ok = eventually(Duration::from_secs(10), || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d["status"] == "done")
    })
    .await;
    assert!(ok, "{:#?}", deliveries(&app).await);
    let d = &deliveries(&app).await[0];
    assert_eq!(d["attempts"], 2);
    let log = d["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{d}");
    assert_eq!(
        (
            log[0]["attempt"].clone(),
            log[0]["status_code"].clone(),
            log[0]["outcome"].clone()
        ),
        (json!(1), json!(500), json!("transient"))
    );
    assert_eq!(
        (
            log[1]["attempt"].clone(),
            log[1]["status_code"].clone(),
            log[1]["outcome"].clone()
        ),
        (json!(2), json!(200), json!("ok"))
    );

    // 400: failed at once, never retried by the worker.
    crm.queue(400, json!({"error": "bad lead"}));
    let applied = observe(&app, conv, "call me on +44 20 7946 0958").await;
    assert_eq!(applied.crm, CrmOutcome::Queued);
    let ok = eventually(Duration::from_secs(10), || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert!(ok, "{:#?}", deliveries(&app).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(crm.received_at("/crm/hook").len(), 3);
    let failed = deliveries(&app).await[0].clone();
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["attempt_log"][0]["status_code"], 400);
    assert_eq!(failed["attempt_log"][0]["outcome"], "permanent");
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .admin_get("/api/v1/crm/deliveries?tenant=demo&status=failed")
        .await;
    assert_eq!(status, 200);

    // An admin retries it: delivered, and the log keeps the failed attempt.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/crm/deliveries/{failed_id}/retry?tenant=demo"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ok = eventually(Duration::from_secs(10), || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d["status"] == "done")
    })
    .await;
    assert!(ok, "{:#?}", deliveries(&app).await);
    assert_eq!(crm.received_at("/crm/hook").len(), 4);
    let retried = deliveries(&app).await[0].clone();
    let codes: Vec<Value> = retried["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(400), json!(200)]);
    // A delivered one cannot be retried; an unknown id is not found.
    let (status, _) = app
        .admin_post(
            &format!("/api/v1/crm/deliveries/{failed_id}/retry?tenant=demo"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .admin_post(
            &format!(
                "/api/v1/crm/deliveries/{}/retry?tenant=demo",
                Uuid::now_v7()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_redone_turn_calls_the_crm_once() {
    let app = spawn_app().await;
    let crm = crm().await;
    let conv = conversation(&app, &session(), "Hello").await;
    let a = "my email is omar@example.com";
    let b = "sorry, it is omar@example.net";

    // Without a CRM the lead is stored and nothing is queued.
    let applied = observe(&app, conv, a).await;
    assert_eq!(applied.crm, CrmOutcome::NotConfigured);
    assert!(applied.changed);
    assert_eq!(applied.state.score, Some(25));
    assert_eq!(applied.state.fields["email"], "omar@example.com");

    // Once a CRM is configured, the next turn sends the lead as it stands, once.
    configure_crm(&app, &crm).await;
    let applied = observe(&app, conv, a).await;
    assert!(!applied.changed);
    assert_eq!(applied.crm, CrmOutcome::Queued);
    assert_eq!(observe(&app, conv, a).await.crm, CrmOutcome::Unchanged);

    // The same turn redone twice at once: one of them queues the change, the other sees it.
    let (x, y) = tokio::join!(observe(&app, conv, b), observe(&app, conv, b));
    let queued = [x.crm, y.crm]
        .iter()
        .filter(|c| **c == CrmOutcome::Queued)
        .count();
    assert_eq!(queued, 1, "{x:?} {y:?}");

    // Back to the first address: a new state of the lead, sent again.
    assert_eq!(observe(&app, conv, a).await.crm, CrmOutcome::Queued);
    assert_eq!(observe(&app, conv, a).await.crm, CrmOutcome::Unchanged);

    let received = crm.wait_for("/crm/hook", 3).await;
    let events: Vec<Value> = received.iter().map(|r| r.json()["event"].clone()).collect();
    assert_eq!(
        events,
        vec![
            json!("lead.created"),
            json!("lead.updated"),
            json!("lead.updated")
        ]
    );
    let emails: Vec<Value> = received
        .iter()
        .map(|r| r.json()["data"]["fields"]["email"].clone())
        .collect();
    assert_eq!(
        emails,
        vec![
            json!("omar@example.com"),
            json!("omar@example.net"),
            json!("omar@example.com")
        ]
    );
    let keys: std::collections::HashSet<String> = received
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), 3);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(crm.received_at("/crm/hook").len(), 3);
    let mut owner = app.owner().await;
    let effects: i64 =
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE purpose = 'crm_lead'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(effects, 3);
}

#[tokio::test]
async fn invalid_action_settings_are_refused_and_the_secret_never_leaks() {
    let app = spawn_app().await;
    let path = "/api/v1/actions/settings?tenant=demo";
    for (body, why) in [
        (
            json!({"crm_webhook_url": "https://crm.example/hook"}),
            "a URL without a secret",
        ),
        (
            json!({"crm_webhook_url": "https://crm.example/hook", "crm_secret": "short"}),
            "a short secret",
        ),
        (
            json!({"crm_webhook_url": "ftp://crm.example/hook", "crm_secret": SECRET}),
            "a non-HTTP URL",
        ),
        (
            json!({"crm_webhook_url": "https://crm.example/a hook", "crm_secret": SECRET}),
            "a URL with a space",
        ),
        (
            json!({"crm_secret": SECRET, "lead_score_threshold": 101}),
            "a threshold above 100",
        ),
        (
            json!({"crm_secret": SECRET, "enabled": ["leads", "teleport"]}),
            "an unknown action",
        ),
    ] {
        let (status, answer, text) = admin_put(&app, path, body).await;
        assert_eq!(status, 422, "{why}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_settings", "{why}");
        assert!(!text.contains(SECRET), "{why}");
    }
    let (status, _, _) = admin_put(&app, path, json!({"crm_secret_plain": SECRET})).await;
    assert_eq!(status, 422);
    // Nothing was stored.
    let mut owner = app.owner().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM action_settings")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let (status, body) = app.admin_get(path).await;
    assert_eq!(status, 200);
    assert_eq!(body["settings"]["crm_webhook_url"], Value::Null);
    assert_eq!(body["settings"]["has_crm_secret"], false);

    // Good settings are stored; the secret is sealed and never answered.
    // A local port nobody listens on: deliveries fail fast, and nothing leaves the machine.
    let (status, body, text) = admin_put(
        &app,
        path,
        json!({"crm_webhook_url": "http://127.0.0.1:9/hook", "crm_secret": SECRET,
               "lead_score_threshold": 70}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!text.contains(SECRET));
    assert_eq!(body["settings"]["has_crm_secret"], true);
    assert_eq!(body["settings"]["lead_score_threshold"], 70);
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT crm_secret_enc FROM action_settings")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    // Refusing the URL later keeps the stored settings as they were.
    let (status, _, _) = admin_put(&app, path, json!({"crm_webhook_url": "nope"})).await;
    assert_eq!(status, 422);
    let conv = conversation(&app, &session(), "Hello").await;
    observe(
        &app,
        conv,
        "I'm interested in the enterprise plan, my email is x@y.example",
    )
    .await;
    for get in [
        path.to_owned(),
        "/api/v1/crm/deliveries?tenant=demo".to_owned(),
        "/api/v1/leads?tenant=demo".to_owned(),
    ] {
        let r = app
            .http
            .get(app.url(&get))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{get}");
        let text = r.text().await.unwrap();
        assert!(!text.contains(SECRET), "{get}: {text}");
        assert!(!text.contains("crm_secret_enc"), "{get}");
    }
    let (_, body) = app.admin_get(path).await;
    assert_eq!(
        body["settings"]["crm_webhook_url"],
        "http://127.0.0.1:9/hook"
    );
    assert_eq!(body["settings"]["lead_score_threshold"], 70);
    let (status, body) = app.admin_get("/api/v1/actions/settings").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_crm_redirect_is_a_failed_delivery_not_a_silent_get() {
    // A CRM URL that answers 302 (moved): following it would turn the POST into a GET without
    // the lead, answered 200 by the new location, and the lead would count as delivered.
    let crm = crm().await;
    let target = format!("{}/crm/moved", crm.base);
    let redirector = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move {
            (
                axum::http::StatusCode::FOUND,
                [("location", target)],
                "moved",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let moved_from = format!("http://{}/crm/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });

    let app = spawn_app().await;
    let (status, body, _) = admin_put(
        &app,
        "/api/v1/actions/settings?tenant=demo",
        json!({"crm_webhook_url": moved_from, "crm_secret": SECRET}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let conv = conversation(&app, &session(), "Hello").await;
    assert_eq!(
        observe(&app, conv, "my email is nadia@example.com")
            .await
            .crm,
        CrmOutcome::Queued
    );
    let ok = eventually(Duration::from_secs(10), || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert!(ok, "{:#?}", deliveries(&app).await);
    let d = &deliveries(&app).await[0];
    assert_eq!(d["attempt_log"][0]["status_code"], 302, "{d}");
    assert!(crm.received().is_empty(), "{:?}", crm.received());
}
