//! Human handoff end to end: a web-chat customer and a Telegram customer ask for a person, get
//! one holding message, the sales team is notified by email (a real SMTP server) and Telegram
//! (a fake Bot API), the bot stays silent while a human owns the conversation — even when the
//! human claims it while the bot is thinking — the human's replies leave through the customer's
//! own channel, an unclaimed escalation is re-notified, and the hand-back resumes the bot
//! without a loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_actors::FaultPoint;

use crate::fake_provider::FakeProvider;
use crate::helpers::*;
use reqwest::Method;
use switchboard_core::store::identity::Role;

const BOT_TOKEN: &str = "123456789:AAExampleTokenForTests_0123456789";
const SALES_CHAT: i64 = -100_555_000;
const CUSTOMER_CHAT: i64 = 700_300_400;

async fn fake_bot_api() -> FakeProvider {
    FakeProvider::start(|req, i| {
        let path = req.path.to_ascii_lowercase();
        if path.ends_with("/sendmessage") {
            let sent = req.json();
            (
                200,
                json!({"ok": true, "result": {
                    "message_id": 7000 + i, "date": 1_700_000_000,
                    "chat": {"id": sent["chat_id"], "type": "private", "first_name": "Sales"},
                    "from": {"id": 1, "is_bot": true, "first_name": "Sahara"},
                    "text": sent["text"],
                }}),
            )
        } else if path.ends_with("/setwebhook") {
            (200, json!({"ok": true, "result": true}))
        } else {
            (
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            )
        }
    })
    .await
}

/// Email and Telegram channels for the demo tenant, and its sales team's notification targets.
/// Returns the Telegram channel's webhook URL.
async fn configure(app: &TestApp, smtpd: &Smtpd, bot: &FakeProvider) -> String {
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "email", "name": "Email", "config": {
                "from_address": "agent@sahara.example", "from_name": "Sahara Solar",
                "smtp_host": "127.0.0.1", "smtp_port": smtpd.port, "smtp_security": "none",
                "webhook_signing_key": "mg-signing-key-0001"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "telegram", "name": "Telegram", "config": {
                "bot_token": BOT_TOKEN, "secret_token": "tg-secret_0001", "api_url": bot.base}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["channel"]["webhook_url"].as_str().unwrap().to_owned();
    let mut c = app.owner().await;
    always_open(&mut c).await;
    sqlx::query(
        "INSERT INTO action_settings (tenant_id, notify_emails, notify_telegram_chat_id, expected_wait_minutes)
         VALUES ($1, ARRAY['sales@sahara.example'], $2, 20)",
    )
    .bind(app.demo_tenant.0)
    .bind(SALES_CHAT.to_string())
    .execute(&mut c)
    .await
    .unwrap();
    url
}

/// Removes the demo's business hours (its showroom hours otherwise make these tests depend on
/// the time of day): without availability the team counts as always reachable.
async fn always_open(c: &mut sqlx::PgConnection) {
    sqlx::query("DELETE FROM availability")
        .execute(c)
        .await
        .unwrap();
}

async fn conversation_of(app: &TestApp, external_id: &str) -> String {
    let mut c = app.owner().await;
    sqlx::query_scalar(
        "SELECT v.id::text FROM conversations v JOIN contacts k ON k.id = v.contact_id WHERE k.external_id = $1",
    )
    .bind(external_id)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let mut c = app.owner().await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

fn sales_messages(bot: &FakeProvider) -> Vec<Value> {
    bot.received_at("/sendMessage")
        .into_iter()
        .map(|r| r.json())
        .filter(|m| m["chat_id"] == SALES_CHAT)
        .collect()
}

/// A stored email with folded headers and quoted-printable soft line breaks undone.
fn readable(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("\r\n ", " ")
        .replace("\n ", " ")
}

fn roles(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test]
async fn handoff_round_trip_over_web_chat_notifies_by_email_and_telegram_and_hands_back_cleanly() {
    let smtpd = Smtpd::start().await;
    let bot = fake_bot_api().await;
    let app = spawn_app().await;
    configure(&app, &smtpd, &bot).await;
    // Two colleagues of the sales team, signed in: replies and claims are theirs.
    let layla = app
        .signed_in("layla@sahara.example", "layla", Role::SalesAgent)
        .await;
    let omar = app
        .signed_in("omar@sahara.example", "omar", Role::SalesAgent)
        .await;
    let s = session();
    let ch = app.demo_channel;

    // Asking for a person: one holding message, saying when to expect someone.
    app.post_chat(ch, &s, "m1", "I want to talk to a real person please")
        .await;
    let history = app.wait_for_agent_replies(ch, &s, 1).await;
    let holding = history.last().unwrap()["text"].as_str().unwrap().to_owned();
    assert!(holding.contains("20 minutes"), "{holding}");
    let conv = conversation_of(&app, &s).await;

    // The sales team hears about it by email and on Telegram, with reason, lead details and a
    // link to the transcript.
    let mails: Vec<String> = smtpd
        .wait_for(1)
        .await
        .iter()
        .map(|m| readable(m))
        .collect();
    assert!(mails[0].contains("sales@sahara.example"), "{}", mails[0]);
    assert!(mails[0].contains("[Escalation]"), "{}", mails[0]);
    assert!(
        mails[0].contains("asked to talk to a person"),
        "{}",
        mails[0]
    );
    // The link opens the conversation in the console (signing in first if needed).
    assert!(
        mails[0].contains("/console?tenant=") && mails[0].contains(&format!("#/inbox/{conv}")),
        "{}",
        mails[0]
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            !sales_messages(&bot).is_empty()
        })
        .await
    );
    let tg = sales_messages(&bot);
    let text = tg[0]["text"].as_str().unwrap();
    assert!(
        text.contains("needs a human") && text.contains("Recent messages"),
        "{text}"
    );
    assert!(text.contains("real person"), "{text}");
    let (status, list) = app
        .admin_get("/api/v1/escalations?tenant=demo&status=waiting")
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["escalations"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["escalations"][0]["trigger"], "customer");

    // While waiting, and while a human owns it, the bot never replies.
    app.post_chat(ch, &s, "m2", "hello? do you install batteries?")
        .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            scalar(
                &app,
                "SELECT count(*) FROM inbound_events WHERE status = 'pending'",
            )
            .await
                == 0
        })
        .await
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim?tenant=demo"),
            Some(&layla),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    // Someone else cannot take it from her.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim?tenant=demo"),
            Some(&omar),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    app.post_chat(ch, &s, "m3", "anyone there?").await;
    // The human's reply goes out through the web chat; a retried call sends nothing new.
    let reply = json!({"text": "Hi, Layla from sales here. Yes, we install home batteries.", "client_message_id": "r1"});
    let (status, first) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages?tenant=demo"),
            Some(&layla),
            Some(reply.clone()),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages?tenant=demo"),
            Some(&layla),
            Some(reply),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.history(ch, &s)
                .await
                .iter()
                .any(|m| m["role"] == "human")
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            scalar(
                &app,
                "SELECT count(*) FROM inbound_events WHERE status = 'pending'",
            )
            .await
                == 0
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let history = app.history(ch, &s).await;
    assert_eq!(
        roles(&history),
        ["customer", "agent", "customer", "customer", "human"],
        "{history:#?}"
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM outbox WHERE payload->>'text' LIKE 'Hi, Layla%'"
        )
        .await,
        1
    );

    // Hand back: the bot answers the next message — once, and with no new escalation.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/handback?tenant=demo"),
            Some(&layla),
            Some(json!({"note": "Quoted a 10 kWh battery; customer will decide next week."})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/handback?tenant=demo"),
            Some(&layla),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "a second hand-back is refused");
    app.post_chat(ch, &s, "m4", "What are your opening hours?")
        .await;
    let history = app.wait_for_agent_replies(ch, &s, 2).await;
    let last = history.last().unwrap();
    assert_eq!(last["role"], "agent");
    assert_ne!(last["text"].as_str().unwrap(), holding);
    assert_eq!(scalar(&app, "SELECT count(*) FROM escalations").await, 1);
    let (_, conv_view) = app
        .admin_get(&format!("/api/v1/conversations/{conv}?tenant=demo"))
        .await;
    assert_eq!(conv_view["handoff_state"], "bot");
    assert!(
        conv_view["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "system" && m["text"].as_str().unwrap().contains("10 kWh")),
        "{conv_view}"
    );
    // Exactly one notification of each kind was sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtpd.messages().len(), 1);
    assert_eq!(sales_messages(&bot).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_telegram_customer_is_handed_off_reminded_and_answered_on_telegram() {
    let smtpd = Smtpd::start().await;
    let bot = fake_bot_api().await;
    let app = spawn_app().await;
    let url = configure(&app, &smtpd, &bot).await;
    let update = json!({"update_id": 501, "message": {
        "message_id": 31, "date": 1_700_000_000,
        "chat": {"id": CUSTOMER_CHAT, "type": "private", "first_name": "Huda"},
        "from": {"id": CUSTOMER_CHAT, "is_bot": false, "first_name": "Huda"},
        "text": "أريد التحدث مع موظف من فضلك"}});
    let status = app
        .http
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "tg-secret_0001")
        .json(&update)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // The Arabic holding message reaches the customer's chat, the team's chat is notified.
    let to_customer = || {
        bot.received_at("/sendMessage")
            .into_iter()
            .map(|r| r.json())
            .filter(|m| m["chat_id"] == CUSTOMER_CHAT)
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            !to_customer().is_empty()
        })
        .await
    );
    let holding = to_customer()[0]["text"].as_str().unwrap().to_owned();
    assert!(holding.contains("فريق"), "{holding}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            sales_messages(&bot).len() == 1
        })
        .await
    );
    smtpd.wait_for(1).await;

    // Nobody claims it: when the reminder is due, the team is told again and the customer is
    // told what to expect — once.
    let mut c = app.owner().await;
    sqlx::query("UPDATE escalations SET next_reminder_at = now() - interval '1 second'")
        .execute(&mut c)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            sales_messages(&bot).len() == 2
        })
        .await
    );
    let reminder = sales_messages(&bot)[1]["text"].as_str().unwrap().to_owned();
    assert!(reminder.contains("Reminder 1"), "{reminder}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            to_customer().len() == 2
        })
        .await
    );
    assert!(to_customer()[1]["text"].as_str().unwrap().contains("نعتذر"));
    smtpd.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sales_messages(&bot).len(), 2, "the reminder is sent once");
    assert_eq!(to_customer().len(), 2);

    // A human replies through the admin API: it leaves on Telegram, to the customer's chat.
    let conv = conversation_of(&app, &CUSTOMER_CHAT.to_string()).await;
    let sara = app
        .signed_in("sara@sahara.example", "sara", Role::SalesAgent)
        .await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages?tenant=demo"),
            Some(&sara),
            Some(json!({"text": "مرحبا هدى، معك سارة من المبيعات"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            to_customer().len() == 3
        })
        .await
    );
    assert_eq!(to_customer()[2]["text"], "مرحبا هدى، معك سارة من المبيعات");
    let (_, e) = app.admin_get("/api/v1/escalations?tenant=demo").await;
    assert_eq!(e["escalations"][0]["status"], "claimed");
    assert_eq!(e["escalations"][0]["claimed_by"], "sara");
    assert_eq!(e["escalations"][0]["notifications"], 2);
    // Claimed escalations are not reminded.
    sqlx::query("UPDATE escalations SET next_reminder_at = now() - interval '1 second'")
        .execute(&mut c)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sales_messages(&bot).len(), 2);
    // The escalation's notifications and their delivery attempts are visible to admins.
    let id = e["escalations"][0]["id"].as_str().unwrap();
    let (status, detail) = app
        .admin_get(&format!("/api/v1/escalations/{id}?tenant=demo"))
        .await;
    assert_eq!(status, 200);
    let n = detail["notifications"].as_array().unwrap();
    assert_eq!(n.len(), 4, "{detail}");
    assert!(n.iter().all(|n| n["status"] == "done"), "{detail}");
    app.stop().await;
}

#[tokio::test]
async fn a_human_claiming_while_the_bot_thinks_silences_the_bot() {
    let slow = Arc::new(AtomicBool::new(true));
    let hook_slow = slow.clone();
    let app = spawn_app_with(
        |_| {},
        Some(Arc::new(move |p: &FaultPoint<'_>| match p {
            FaultPoint::BeforeCommit { customer_text, .. }
                if customer_text.contains("batteries") && hook_slow.load(Ordering::SeqCst) =>
            {
                Some(Duration::from_secs(2))
            }
            _ => None,
        })),
    )
    .await;
    let layla = app
        .signed_in("layla@sahara.example", "layla", Role::SalesAgent)
        .await;
    let s = session();
    let ch = app.demo_channel;
    app.post_chat(ch, &s, "m1", "hello").await;
    app.wait_for_agent_replies(ch, &s, 1).await;
    let conv = conversation_of(&app, &s).await;
    app.post_chat(ch, &s, "m2", "do you install batteries?")
        .await;
    // The bot is thinking (held for 2 s); a colleague takes the conversation meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim?tenant=demo"),
            Some(&layla),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            scalar(
                &app,
                "SELECT count(*) FROM inbound_events WHERE status = 'pending'",
            )
            .await
                == 0
        })
        .await
    );
    slow.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let history = app.history(ch, &s).await;
    assert_eq!(
        roles(&history),
        ["customer", "agent", "customer"],
        "{history:#?}"
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM turns WHERE responder = 'human'").await,
        1
    );
    // Bad input is refused clearly.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/conversations/{conv}/messages?tenant=demo"),
            json!({"text": "   "}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .admin_post(
            "/api/v1/conversations/not-a-uuid/claim?tenant=demo",
            json!({}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .admin_post(
            &format!(
                "/api/v1/conversations/{}/claim?tenant=demo",
                uuid::Uuid::new_v4()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn keyword_lead_score_and_repeated_failure_rules_escalate_once() {
    let app = spawn_app().await;
    // Telegram notices need a numeric chat id: a name is refused before anything is stored.
    let r = app
        .http
        .put(app.url("/api/v1/actions/settings?tenant=demo"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"notify_telegram_chat_id": "@sales-team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let mut c = app.owner().await;
    always_open(&mut c).await;
    sqlx::query(
        "INSERT INTO action_settings (tenant_id, handoff_keywords, lead_score_threshold)
         VALUES ($1, ARRAY['refund'], 40)",
    )
    .bind(app.demo_tenant.0)
    .execute(&mut c)
    .await
    .unwrap();
    let ch = app.demo_channel;

    // A configured keyword brings a human in, with the holding message.
    let s1 = session();
    app.post_chat(ch, &s1, "m1", "I need a refund for my inverter")
        .await;
    let h = app.wait_for_agent_replies(ch, &s1, 1).await;
    assert!(
        h[1]["text"].as_str().unwrap().contains("colleague"),
        "{h:#?}"
    );

    // A qualified lead: the question is answered and the team follows up, once.
    let s2 = session();
    app.post_chat(
        ch,
        &s2,
        "m1",
        "My name is Sam Carter from Carter Logistics, sam@carter.example, +971 50 123 4567. What are your prices for a warehouse rooftop?",
    )
    .await;
    let h = app.wait_for_agent_replies(ch, &s2, 1).await;
    let answer = h[1]["text"].as_str().unwrap();
    assert!(
        answer.contains("sales team will also follow up"),
        "{answer}"
    );
    let triggers: Vec<String> =
        sqlx::query_scalar("SELECT trigger FROM escalations ORDER BY created_at")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(triggers, ["keyword", "lead_score"]);

    // A tenant whose knowledge cannot answer: the second unanswered question brings a human.
    let (status, body) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "empty-kb", "name": "Empty Co"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let empty: switchboard_core::ChannelId =
        serde_json::from_value(body["channels"][0]["id"].clone()).unwrap();
    let s3 = session();
    app.post_chat(empty, &s3, "m1", "Do you ship quantum flux capacitors?")
        .await;
    app.wait_for_agent_replies(empty, &s3, 1).await;
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM escalations WHERE trigger = 'failures'"
        )
        .await,
        0
    );
    app.post_chat(empty, &s3, "m2", "What about hyperdrive warranties?")
        .await;
    let h = app.wait_for_agent_replies(empty, &s3, 2).await;
    assert!(
        h[3]["text"].as_str().unwrap().contains("colleague"),
        "{h:#?}"
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM escalations WHERE trigger = 'failures'"
        )
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn outside_business_hours_the_customer_is_told_when_the_team_is_back() {
    let app = spawn_app().await;
    let mut c = app.owner().await;
    // Open 09:00–17:00 UTC every day, but today and tomorrow are holidays.
    sqlx::query(
        "UPDATE availability SET timezone = 'UTC',
                weekly_hours = '{\"mon\": [[\"09:00\",\"17:00\"]], \"tue\": [[\"09:00\",\"17:00\"]],
                  \"wed\": [[\"09:00\",\"17:00\"]], \"thu\": [[\"09:00\",\"17:00\"]],
                  \"fri\": [[\"09:00\",\"17:00\"]], \"sat\": [[\"09:00\",\"17:00\"]],
                  \"sun\": [[\"09:00\",\"17:00\"]]}'::jsonb,
                holidays = ARRAY[(now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + 1]",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let back = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%A")
        .to_string();
    let s = session();
    app.post_chat(app.demo_channel, &s, "m1", "Can I speak to a human?")
        .await;
    let h = app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let holding = h[1]["text"].as_str().unwrap();
    assert!(holding.contains("away"), "{holding}");
    assert!(
        holding.contains(&back) && holding.contains("09:00") && holding.contains("UTC"),
        "{holding}"
    );
    let after: bool = sqlx::query_scalar("SELECT after_hours FROM escalations")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(after);
    app.stop().await;
}
