//! Every customer gets an answer. Faults are injected in the real database, not mocked: a
//! knowledge search the application may no longer call (or that blocks) still gets the
//! customer the no-knowledge answer; a turn that fails every time (a trigger on `turns` raises)
//! ends, after its attempts, in exactly one technical holding message in the customer's
//! language and one escalation with its notifications — also when the real binary is killed
//! with SIGKILL inside the transaction that writes them, and restarted.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use switchboard_actors::RootMsg;
use switchboard_core::ConversationId;

use crate::fake_provider::FakeProvider;
use crate::helpers::*;

const BOT_TOKEN: &str = "123456789:AAExampleTokenForTests_0123456789";
const SALES_CHAT: i64 = -100_444_000;
const QUESTION_EN: &str = "Do you install home batteries?";
const QUESTION_AR: &str = "هل تقومون بتركيب البطاريات المنزلية؟";

async fn execute(c: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar(owner_url: &str, sql: &str) -> i64 {
    let mut c = PgConnection::connect(owner_url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

/// The sum of a counter over its labels in the Prometheus text.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn fake_bot_api() -> FakeProvider {
    FakeProvider::start(|req, i| {
        if req.path.to_ascii_lowercase().ends_with("/sendmessage") {
            let sent = req.json();
            (
                200,
                json!({"ok": true, "result": {
                    "message_id": 8000 + i, "date": 1_700_000_000,
                    "chat": {"id": sent["chat_id"], "type": "group", "title": "Sales"},
                    "text": sent["text"]}}),
            )
        } else {
            (200, json!({"ok": true, "result": true}))
        }
    })
    .await
}

/// A Telegram channel for the team's notices, the team's chat, a 20-minute expected wait and
/// no business hours (the demo's showroom hours would make the texts depend on the time of
/// day). `enabled` is the tenant's enabled actions.
/// An application whose failed turns are retried after 20 ms, with a sales team notified on a
/// fake Telegram Bot API, and `enabled` actions.
async fn app_with_a_team(enabled: &[&str]) -> (FakeProvider, TestApp) {
    let bot = fake_bot_api().await;
    let app = spawn_app_with(|s| s.pipeline.retry_backoff_ms = 20, None).await;
    configure_team(&app.http, &app.base, &app.owner_url, &bot, enabled).await;
    (bot, app)
}

async fn configure_team(
    http: &reqwest::Client,
    base: &str,
    owner_url: &str,
    bot: &FakeProvider,
    enabled: &[&str],
) {
    let r = http
        .post(format!("{base}/api/v1/channels?tenant=demo"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"kind": "telegram", "name": "Telegram", "config": {
            "bot_token": BOT_TOKEN, "secret_token": "tg-secret_0001", "api_url": bot.base}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let mut c = PgConnection::connect(owner_url).await.unwrap();
    execute(&mut c, "DELETE FROM availability").await;
    sqlx::query(
        "INSERT INTO action_settings (tenant_id, enabled, notify_telegram_chat_id, expected_wait_minutes)
         SELECT id, $1, $2, 20 FROM tenants WHERE slug = 'demo'",
    )
    .bind(enabled.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    .bind(SALES_CHAT.to_string())
    .execute(&mut c)
    .await
    .unwrap();
}

fn sales_notices(bot: &FakeProvider) -> Vec<String> {
    bot.received_at("/sendMessage")
        .into_iter()
        .map(|r| r.json())
        .filter(|m| m["chat_id"] == SALES_CHAT)
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The agent messages of the conversation of customer `external_id`: text and metadata.
async fn agent_messages(owner_url: &str, external_id: &str) -> Vec<(String, Value)> {
    let mut c = PgConnection::connect(owner_url).await.unwrap();
    sqlx::query_as(
        "SELECT m.text, m.metadata FROM messages m
           JOIN conversations v ON v.id = m.conversation_id
           JOIN contacts k ON k.id = v.contact_id
          WHERE k.external_id = $1 AND m.role = 'agent' ORDER BY m.seq",
    )
    .bind(external_id)
    .fetch_all(&mut c)
    .await
    .unwrap()
}

async fn conversation_of(owner_url: &str, external_id: &str) -> uuid::Uuid {
    let mut c = PgConnection::connect(owner_url).await.unwrap();
    sqlx::query_scalar(
        "SELECT v.id FROM conversations v JOIN contacts k ON k.id = v.contact_id
          WHERE k.external_id = $1",
    )
    .bind(external_id)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

/// Asserts the conversation got one technical holding message in `lang` and that it left once.
async fn assert_one_holding_message(owner_url: &str, external_id: &str, lang: &str) {
    let messages = agent_messages(owner_url, external_id).await;
    assert_eq!(messages.len(), 1, "{external_id}: {messages:#?}");
    let (text, metadata) = &messages[0];
    assert_eq!(metadata["event"], "technical_holding", "{metadata}");
    assert_eq!(metadata["lang"], lang, "{metadata}");
    assert_eq!(metadata["escalation_trigger"], "technical_failure");
    match lang {
        "en" => assert!(
            text.starts_with("Sorry — we're having a technical problem")
                && text.contains("A colleague will reply to you here")
                && text.contains("20 minutes"),
            "{text}"
        ),
        _ => assert!(
            text.contains("مشكلة تقنية") && text.contains("زملائنا") && text.contains("20 دقيقة"),
            "{text}"
        ),
    }
    let conversation = conversation_of(owner_url, external_id).await;
    let mut c = PgConnection::connect(owner_url).await.unwrap();
    let outbox: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT idempotency_key, status, attempts FROM outbox WHERE conversation_id = $1",
    )
    .bind(conversation)
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let (key, status, attempts) = &outbox[0];
    assert!(
        key.starts_with("technical:") && key.ends_with(":customer"),
        "{key}"
    );
    assert_eq!((status.as_str(), *attempts), ("sent", 1), "delivered once");
}

#[tokio::test]
async fn a_broken_knowledge_search_still_answers_the_customer_without_knowledge() {
    let app = spawn_app().await;
    let ch = app.demo_channel;
    // The same question is answered from the knowledge base while search works…
    let before = session();
    app.post_chat(ch, &before, "m1", QUESTION_EN).await;
    app.wait_for_agent_replies(ch, &before, 1).await;
    let grounded = agent_messages(&app.owner_url, &before).await;
    assert!(
        !grounded[0].1["citations"].as_array().unwrap().is_empty(),
        "the question is one the knowledge base answers: {grounded:#?}"
    );
    assert!(grounded[0].1.get("retrieval").is_none());

    // …then the application may no longer run the full-text search (a real failure of the
    // search query, raised by PostgreSQL).
    let mut owner = app.owner().await;
    execute(
        &mut owner,
        "REVOKE EXECUTE ON FUNCTION kb_fts_candidates(tsquery, sparsevec, integer, text[]) FROM switchboard_app",
    )
    .await;
    // (Asked in other words: the very same question would reuse the earlier search, which is
    // still valid since the knowledge has not changed.)
    let s = session();
    app.post_chat(ch, &s, "m1", "Do you install batteries at home?")
        .await;
    let history = app.wait_for_agent_replies(ch, &s, 1).await;
    let answer = history.last().unwrap()["text"].as_str().unwrap().to_owned();
    assert!(answer.contains("don't have that information"), "{answer}");
    let messages = agent_messages(&app.owner_url, &s).await;
    let metadata = &messages[0].1;
    assert_eq!(metadata["retrieval"], "failed", "{metadata}");
    assert_eq!(metadata["retrieval_failure"], "error", "{metadata}");
    assert_eq!(metadata["citations"], json!([]), "{metadata}");
    // Answered, not parked: the event is done after one attempt.
    let (status, attempts): (String, i32) = sqlx::query_as(
        "SELECT e.status, e.attempts FROM inbound_events e JOIN contacts k
            ON k.id = (SELECT contact_id FROM conversations WHERE id = e.conversation_id)
          WHERE k.external_id = $1",
    )
    .bind(&s)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts), ("done", 1));
    let (_, parked) = app.admin_get("/api/v1/events/parked?tenant=demo").await;
    assert_eq!(parked["parked"], json!([]), "{parked}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("switchboard_retrieval_failures_total{reason=\"error\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_knowledge_search_that_overruns_its_budget_is_abandoned_and_the_customer_answered() {
    let app = spawn_app_with(|s| s.pipeline.retrieval_timeout_ms = Some(1000), None).await;
    let ch = app.demo_channel;
    // A session holds the chunks table locked: every search blocks behind it.
    let mut locker = app.owner().await;
    execute(
        &mut locker,
        "BEGIN; LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE",
    )
    .await;
    let s = session();
    app.post_chat(ch, &s, "m1", QUESTION_EN).await;
    let history = app.wait_for_agent_replies(ch, &s, 1).await;
    let answer = history.last().unwrap()["text"].as_str().unwrap().to_owned();
    assert!(answer.contains("don't have that information"), "{answer}");
    let messages = agent_messages(&app.owner_url, &s).await;
    assert_eq!(messages[0].1["retrieval"], "failed");
    assert_eq!(messages[0].1["retrieval_failure"], "timeout");
    execute(&mut locker, "ROLLBACK").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("switchboard_retrieval_failures_total{reason=\"timeout\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_turn_that_always_fails_gets_one_holding_message_in_the_customers_language_and_one_escalation(
) {
    let (bot, app) = app_with_a_team(&["booking", "handoff", "leads"]).await;
    let ch = app.demo_channel;
    let mut owner = app.owner().await;
    execute(&mut owner, BREAK_TURNS).await;
    let holding_before = counter(
        &app.metrics().await,
        "switchboard_technical_holding_messages_total",
    );

    let en = format!("broken-en-{}", uuid::Uuid::new_v4().simple());
    let ar = format!("broken-ar-{}", uuid::Uuid::new_v4().simple());
    app.post_chat(ch, &en, "m1", QUESTION_EN).await;
    app.post_chat(ch, &ar, "m1", QUESTION_AR).await;
    // Another customer of the same tenant is answered meanwhile.
    let healthy = session();
    app.post_chat(ch, &healthy, "m1", QUESTION_EN).await;
    app.wait_for_agent_replies(ch, &healthy, 1).await;

    // After its attempts, each broken conversation gets one holding message, in its language.
    app.wait_for_agent_replies(ch, &en, 1).await;
    app.wait_for_agent_replies(ch, &ar, 1).await;
    let delivered = eventually(Duration::from_secs(20), || async {
        scalar(
            &app.owner_url,
            "SELECT count(*) FROM outbox WHERE idempotency_key LIKE 'technical:%' AND status = 'sent'",
        )
        .await
            == 2
    })
    .await;
    assert!(delivered, "both holding messages were delivered");
    assert_one_holding_message(&app.owner_url, &en, "en").await;
    assert_one_holding_message(&app.owner_url, &ar, "ar").await;

    // The events are parked with their error, for admins.
    let (_, body) = app.admin_get("/api/v1/events/parked?tenant=demo").await;
    let parked = body["parked"].as_array().unwrap();
    assert_eq!(parked.len(), 2, "{body}");
    for p in parked {
        let e = &p["event"];
        assert_eq!(e["attempts"], 3, "{e}");
        let error = e["last_error"].as_str().unwrap();
        assert!(
            error.contains("injected fault") && error.contains("parked after 3"),
            "{error}"
        );
    }
    // One escalation each, with the technical trigger and the error, and the team notified.
    let (_, body) = app.admin_get("/api/v1/escalations?tenant=demo").await;
    let escalations = body["escalations"].as_array().unwrap();
    assert_eq!(escalations.len(), 2, "{body}");
    for e in escalations {
        assert_eq!(e["trigger"], "technical_failure", "{e}");
        assert_eq!(e["status"], "waiting", "{e}");
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.contains("technical failure") && reason.contains("injected fault"),
            "{reason}"
        );
    }
    let notified = eventually(Duration::from_secs(20), || async {
        sales_notices(&bot).len() == 2
    })
    .await;
    assert!(notified, "the team was notified: {:?}", sales_notices(&bot));
    for n in sales_notices(&bot) {
        assert!(
            n.contains("needs a human") && n.contains("technical failure"),
            "{n}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        counter(&metrics, "switchboard_technical_holding_messages_total") >= holding_before + 2.0,
        "{metrics}"
    );

    // The customer writes again while waiting for the colleague; that turn fails too and is
    // parked — without a second holding message or escalation.
    app.post_chat(ch, &en, "m2", "Hello? Is anyone there?")
        .await;
    let parked_again = eventually(Duration::from_secs(20), || async {
        let (_, body) = app.admin_get("/api/v1/events/parked?tenant=demo").await;
        body["parked"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    assert!(parked_again, "the second message is parked too");
    // Wake-ups of both conversations find nothing to do.
    for who in [&en, &ar] {
        let conversation = ConversationId(conversation_of(&app.owner_url, who).await);
        app.root
            .send_message(RootMsg::Route {
                tenant: app.demo_tenant,
                conversation,
            })
            .unwrap();
    }
    // A later customer's answer shows the pipeline has moved on past those wake-ups.
    let later = session();
    app.post_chat(ch, &later, "m1", QUESTION_EN).await;
    app.wait_for_agent_replies(ch, &later, 1).await;
    assert_one_holding_message(&app.owner_url, &en, "en").await;
    assert_one_holding_message(&app.owner_url, &ar, "ar").await;
    assert_eq!(
        scalar(&app.owner_url, "SELECT count(*) FROM escalations").await,
        2
    );
    assert_eq!(
        scalar(
            &app.owner_url,
            "SELECT count(*) FROM effects WHERE purpose = 'escalation'"
        )
        .await,
        2
    );
    assert_eq!(sales_notices(&bot).len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn with_handoff_disabled_a_failing_turn_still_gets_a_holding_message_but_no_escalation() {
    let (_bot, app) = app_with_a_team(&["booking", "leads"]).await;
    let ch = app.demo_channel;
    let mut owner = app.owner().await;
    execute(&mut owner, BREAK_TURNS).await;

    let s = format!("broken-{}", uuid::Uuid::new_v4().simple());
    app.post_chat(ch, &s, "m1", QUESTION_EN).await;
    let history = app.wait_for_agent_replies(ch, &s, 1).await;
    let text = history.last().unwrap()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("technical problem") && text.contains("try again"),
        "{text}"
    );
    assert!(!text.contains("colleague"), "nobody was promised: {text}");
    // A second failing message is parked without telling the customer the same thing again.
    app.post_chat(ch, &s, "m2", "Hello? Is anyone there?").await;
    let parked = eventually(Duration::from_secs(20), || async {
        scalar(
            &app.owner_url,
            "SELECT count(*) FROM inbound_events WHERE status = 'parked'",
        )
        .await
            == 2
    })
    .await;
    assert!(parked, "both messages are parked");
    assert_eq!(agent_messages(&app.owner_url, &s).await.len(), 1);
    assert_eq!(
        scalar(&app.owner_url, "SELECT count(*) FROM escalations").await,
        0
    );
    assert_eq!(
        scalar(&app.owner_url, "SELECT count(*) FROM effects").await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_turn_in_a_conversation_a_human_owns_is_parked_without_a_bot_message() {
    let (_bot, app) = app_with_a_team(&["booking", "handoff", "leads"]).await;
    let ch = app.demo_channel;
    let s = format!("broken-{}", uuid::Uuid::new_v4().simple());
    // The bot answers the first message; then a colleague takes the conversation over, and
    // only then does storing turns start to fail.
    app.post_chat(ch, &s, "m1", QUESTION_EN).await;
    app.wait_for_agent_replies(ch, &s, 1).await;
    let conversation = conversation_of(&app.owner_url, &s).await;
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/conversations/{conversation}/claim?tenant=demo"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut owner = app.owner().await;
    execute(&mut owner, BREAK_TURNS).await;
    app.post_chat(ch, &s, "m2", "Hello? Is anyone there?").await;
    let parked = eventually(Duration::from_secs(20), || async {
        scalar(
            &app.owner_url,
            "SELECT count(*) FROM inbound_events WHERE status = 'parked'",
        )
        .await
            == 1
    })
    .await;
    assert!(parked, "the message is parked");
    let messages = agent_messages(&app.owner_url, &s).await;
    assert_eq!(messages.len(), 1, "only the answer to m1: {messages:#?}");
    assert!(messages[0].1.get("event").is_none(), "{messages:#?}");
    let triggers: Vec<String> = sqlx::query_scalar("SELECT trigger FROM escalations")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    assert_eq!(triggers, ["admin"], "only the colleague's claim");
    app.stop().await;
}

/// Failed turns are retried after 20 ms instead of 250.
const FAST_RETRIES: &[(&str, &str)] = &[("SWITCHBOARD_PIPELINE__RETRY_BACKOFF_MS", "20")];

/// The real binary is killed with SIGKILL while the transactions that park the failing events
/// (and write their holding messages and escalations) are inside PostgreSQL — held there by a
/// trigger that sleeps on the holding message's outbox row. Nothing of them commits; after a
/// restart each conversation gets exactly one holding message, delivered once, and one
/// escalation with one notice to the team.
#[tokio::test]
async fn sigkill_inside_the_parking_transaction_commits_nothing_and_the_restart_answers_once() {
    const PEOPLE: usize = 4;
    let bot = fake_bot_api().await;
    let database = fresh_database().await;
    let owner_url = shared_pg().url("postgres", &database);
    let data_dir =
        std::env::temp_dir().join(format!("sb-resilience-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut owner = PgConnection::connect(&owner_url).await.unwrap();
    execute(&mut owner, BREAK_TURNS).await;
    // The holding message's outbox row waits (until its client is gone) inside the parking
    // transaction; the server notices a dead client within 100 ms even mid-statement.
    execute(
        &mut owner,
        r#"
CREATE FUNCTION test_slow_holding() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.idempotency_key LIKE 'technical:%' THEN
        PERFORM pg_sleep(600);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_slow_holding BEFORE INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION test_slow_holding();
"#,
    )
    .await;
    execute(
        &mut owner,
        &format!("ALTER DATABASE {database} SET client_connection_check_interval = '100ms'"),
    )
    .await;

    let mut child = start_binary(&database, port, &data_dir, FAST_RETRIES);
    wait_ready(&http, &base).await;
    configure_team(
        &http,
        &base,
        &owner_url,
        &bot,
        &["booking", "handoff", "leads"],
    )
    .await;
    let channel: String = sqlx::query_scalar(
        "SELECT c.id::text FROM channels c JOIN tenants t ON t.id = c.tenant_id
          WHERE t.slug = 'demo' AND c.kind = 'webchat'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let people: Vec<(String, &str)> = (0..PEOPLE)
        .map(|i| {
            let lang = if i % 2 == 0 { "en" } else { "ar" };
            (
                format!("broken-{lang}-{i}-{}", uuid::Uuid::new_v4().simple()),
                lang,
            )
        })
        .collect();
    for (s, lang) in &people {
        let text = if *lang == "en" {
            QUESTION_EN
        } else {
            QUESTION_AR
        };
        let r = http
            .post(format!("{base}/api/v1/webchat/{channel}/messages"))
            .json(&json!({"session_id": s, "client_message_id": "m1", "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }

    // Every conversation used up its attempts and is inside its parking transaction.
    let sleeping = "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event = 'PgSleep'";
    let inside = eventually(Duration::from_secs(60), || async {
        scalar(&owner_url, sleeping).await == PEOPLE as i64
    })
    .await;
    assert!(
        inside,
        "all parking transactions reached the holding message ({} did)",
        scalar(&owner_url, sleeping).await
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();

    // The server drops the dead process's sessions; none of their work was committed.
    let gone = eventually(Duration::from_secs(30), || async {
        scalar(&owner_url, sleeping).await == 0
    })
    .await;
    assert!(gone, "the killed process's transactions ended");
    let (agent, outbox, escalations, effects, pending, attempts): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM messages WHERE role = 'agent'),
                    (SELECT count(*) FROM outbox),
                    (SELECT count(*) FROM escalations),
                    (SELECT count(*) FROM effects),
                    (SELECT count(*) FROM inbound_events WHERE status = 'pending'),
                    (SELECT coalesce(sum(attempts), 0)::bigint FROM inbound_events)",
        )
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(
        (agent, outbox, escalations, effects),
        (0, 0, 0, 0),
        "nothing of the parking transactions committed"
    );
    assert_eq!(pending, PEOPLE as i64, "the events are still pending");
    assert_eq!(attempts, 3 * PEOPLE as i64, "each used up its 3 attempts");

    // Restart without the slow trigger (turns still fail): the parking is redone, once.
    execute(&mut owner, "DROP TRIGGER test_slow_holding ON outbox").await;
    let mut child = start_binary(&database, port, &data_dir, FAST_RETRIES);
    wait_ready(&http, &base).await;
    let n = PEOPLE as i64;
    let settled = eventually(Duration::from_secs(60), || async {
        let mut c = PgConnection::connect(&owner_url).await.unwrap();
        let (parked, sent, escalations, notified): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM inbound_events WHERE status = 'parked'),
                    (SELECT count(*) FROM outbox WHERE status = 'sent'),
                    (SELECT count(*) FROM escalations),
                    (SELECT count(*) FROM effects WHERE status = 'done')",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        parked == n && sent == n && escalations == n && notified == n
    })
    .await;
    assert!(
        settled,
        "every conversation was told, escalated and notified after the restart"
    );
    for (s, lang) in &people {
        assert_one_holding_message(&owner_url, s, lang).await;
    }
    let triggers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT trigger FROM escalations")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    assert_eq!(triggers, ["technical_failure"]);
    assert_eq!(scalar(&owner_url, "SELECT count(*) FROM outbox").await, n);
    assert_eq!(scalar(&owner_url, "SELECT count(*) FROM effects").await, n);
    assert_eq!(
        sales_notices(&bot).len(),
        PEOPLE,
        "one notice to the team per conversation"
    );
    let (_, body) = {
        let r = http
            .get(format!("{base}/api/v1/events/parked?tenant=demo"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(body["parked"].as_array().unwrap().len(), PEOPLE, "{body}");

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "graceful shutdown exits 0");
    let _ = std::fs::remove_dir_all(&data_dir);
}
