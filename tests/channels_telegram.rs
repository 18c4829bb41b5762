//! Telegram end to end: genuine `Update` JSON built by `python-telegram-bot` (run as a process)
//! posted with the right, a wrong and no secret token; replies land on a local fake Bot API
//! server reached through teloxide.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_provider::FakeProvider;
use crate::helpers::*;

const BOT_TOKEN: &str = "123456789:AAExampleTokenForTests_0123456789";
const SECRET: &str = "tg-secret_0001";
const CHAT: i64 = 700_100_200;

/// Builds updates with python-telegram-bot's own classes and serialises them as Telegram does.
fn ptb_updates(specs: Value) -> Vec<Value> {
    let script = r#"
import json, sys, datetime
from telegram import Update, Message, Chat, User, Voice, CallbackQuery, InlineKeyboardMarkup, InlineKeyboardButton
specs = json.load(sys.stdin)
out = []
for s in specs:
    user = User(id=s["chat"], is_bot=False, first_name="Omar", last_name="Khalil", username="omar_k")
    chat = Chat(id=s["chat"], type=Chat.PRIVATE, first_name="Omar")
    date = datetime.datetime(2026, 11, 22, 8, 0, tzinfo=datetime.timezone.utc)
    if s["type"] == "text":
        msg = Message(message_id=s["message_id"], date=date, chat=chat, from_user=user, text=s["text"])
        upd = Update(update_id=s["update_id"], message=msg)
    elif s["type"] == "voice":
        voice = Voice(file_id="AwACAgIAAxk", file_unique_id="AgAD", duration=3, mime_type="audio/ogg")
        msg = Message(message_id=s["message_id"], date=date, chat=chat, from_user=user, voice=voice)
        upd = Update(update_id=s["update_id"], message=msg)
    else:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d)] for d, t in s["buttons"]])
        bot_user = User(id=1, is_bot=True, first_name="Sahara")
        shown = Message(message_id=s["message_id"], date=date, chat=chat, from_user=bot_user, text="Pick a slot", reply_markup=markup)
        q = CallbackQuery(id=s["query_id"], from_user=user, chat_instance="ci-1", data=s["data"], message=shown)
        upd = Update(update_id=s["update_id"], callback_query=q)
    out.append(upd.to_dict())
print(json.dumps(out))
"#;
    run_python(script, &specs).as_array().unwrap().clone()
}

async fn fake_bot_api() -> FakeProvider {
    FakeProvider::start(|req, i| {
        if req.path.to_ascii_lowercase().ends_with("/sendmessage") {
            let sent = req.json();
            (
                200,
                json!({"ok": true, "result": {
                    "message_id": 5000 + i, "date": 1_700_000_000,
                    "chat": {"id": sent["chat_id"], "type": "private", "first_name": "Omar"},
                    "from": {"id": 1, "is_bot": true, "first_name": "Sahara"},
                    "text": sent["text"],
                }}),
            )
        } else if req.path.to_ascii_lowercase().ends_with("/getupdates") {
            (200, json!({"ok": true, "result": []}))
        } else if req.path.to_ascii_lowercase().ends_with("/setwebhook") {
            (
                200,
                json!({"ok": true, "result": true, "description": "Webhook was set"}),
            )
        } else {
            (
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            )
        }
    })
    .await
}

async fn post_update(app: &TestApp, url: &str, update: &Value, secret: Option<&str>) -> u16 {
    let mut req = app.http.post(url).json(update);
    if let Some(s) = secret {
        req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut c = app.owner().await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

#[tokio::test]
async fn channels_telegram_updates_from_ptb_are_verified_answered_once_and_registered() {
    let app = spawn_app().await;
    let bot = fake_bot_api().await;
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "telegram", "name": "Telegram", "config": {
                "bot_token": BOT_TOKEN, "secret_token": SECRET, "api_url": bot.base}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["channel"]["webhook_url"].as_str().unwrap().to_owned();
    assert!(!body.to_string().contains(BOT_TOKEN));
    // The webhook was registered with Telegram, with the secret token.
    assert_eq!(body["webhook_registration"]["ok"], true, "{body}");
    let set = bot.received_at("/setWebhook");
    assert_eq!(
        set[0].path.to_ascii_lowercase(),
        format!("/bot{BOT_TOKEN}/setwebhook").to_ascii_lowercase()
    );
    assert_eq!(set[0].field("url").as_deref(), Some(url.as_str()));
    assert_eq!(set[0].field("secret_token").as_deref(), Some(SECRET));

    let updates = ptb_updates(json!([
        {"type": "text", "update_id": 9001, "message_id": 11, "chat": CHAT, "text": "/start"},
        {"type": "text", "update_id": 9002, "message_id": 12, "chat": CHAT, "text": "Can I book a consultation?"},
    ]));
    // Missing and wrong secrets: 401, nothing stored.
    assert_eq!(post_update(&app, &url, &updates[0], None).await, 401);
    assert_eq!(
        post_update(&app, &url, &updates[0], Some("wrong-secret")).await,
        401
    );
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 0);
    let metrics = app.metrics().await;
    let series = tenant_series(
        "switchboard_webhook_rejected_total",
        app.demo_tenant,
        "telegram",
        ("reason", "bad_token"),
    );
    assert!(
        metric(&metrics, &series).is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // /start, delivered twice, is answered once through sendMessage.
    assert_eq!(
        post_update(&app, &url, &updates[0], Some(SECRET)).await,
        200
    );
    assert_eq!(
        post_update(&app, &url, &updates[0], Some(SECRET)).await,
        200
    );
    let sent = bot.wait_for("/sendMessage", 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bot.received_at("/sendMessage").len(), 1);
    assert!(
        sent[0].path.starts_with(&format!("/bot{BOT_TOKEN}/")),
        "{}",
        sent[0].path
    );
    assert_eq!(sent[0].json()["chat_id"], CHAT);
    assert!(!sent[0].json()["text"].as_str().unwrap().is_empty());
    let mut c = app.owner().await;
    let (text, name): (String, Option<String>) = sqlx::query_as(
        "SELECT m.text, k.display_name FROM messages m JOIN conversations v ON v.id = m.conversation_id
           JOIN contacts k ON k.id = v.contact_id WHERE m.role = 'customer'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(text, "Hello");
    assert_eq!(name.as_deref(), Some("Omar Khalil"));

    // A booking request; then the reply with slot choices goes out as an inline keyboard.
    assert_eq!(
        post_update(&app, &url, &updates[1], Some(SECRET)).await,
        200
    );
    bot.wait_for("/sendMessage", 2).await;
    let row = sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, uuid::Uuid)>(
        "SELECT tenant_id, channel_id, conversation_id FROM outbox LIMIT 1",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    sqlx::query("INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, idempotency_key, payload) VALUES ($1, $2, $3, $4, 'test:slots', $5)")
        .bind(uuid::Uuid::now_v7())
        .bind(row.0)
        .bind(row.1)
        .bind(row.2)
        .bind(json!({"to": CHAT.to_string(), "text": "Which slot suits you?",
            "choices": [{"id": "slot-1", "title": "Mon 10:00"}, {"id": "slot-2", "title": "Tue 14:00"}]}))
        .execute(&mut c)
        .await
        .unwrap();
    let sent = bot.wait_for("/sendMessage", 3).await;
    let keyboard = &sent[2].json()["reply_markup"]["inline_keyboard"];
    assert_eq!(keyboard[0][0]["text"], "Mon 10:00");
    assert_eq!(keyboard[0][0]["callback_data"], "slot-1");
    assert_eq!(keyboard[1][0]["callback_data"], "slot-2");

    // Pressing a button and sending a voice message: both stored as customer turns.
    let more = ptb_updates(json!([
        {"type": "callback", "update_id": 9003, "message_id": 5002, "chat": CHAT, "query_id": "4382bfdwdsb323b2d9",
         "data": "slot-2", "buttons": [["slot-1", "Mon 10:00"], ["slot-2", "Tue 14:00"]]},
        {"type": "voice", "update_id": 9004, "message_id": 13, "chat": CHAT},
    ]));
    for u in &more {
        assert_eq!(post_update(&app, &url, u, Some(SECRET)).await, 200);
    }
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT m.text FROM messages m WHERE m.role = 'customer' ORDER BY m.seq",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        texts,
        [
            "Hello",
            "Can I book a consultation?",
            "Tue 14:00",
            "[voice note]"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn channels_telegram_long_polling_feeds_the_same_pipeline() {
    let app = spawn_app().await;
    let bot = fake_bot_api().await;
    let updates = ptb_updates(json!([
        {"type": "text", "update_id": 7001, "message_id": 21, "chat": CHAT, "text": "What are your opening hours?"},
        {"type": "text", "update_id": 7002, "message_id": 22, "chat": CHAT + 1, "text": "Hello"},
    ]));
    // The first getUpdates answers two updates; later ones nothing.
    bot.queue(200, json!({"ok": true, "result": updates}));
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "telegram", "name": "Telegram (dev)", "config": {
                "bot_token": BOT_TOKEN, "mode": "polling", "api_url": bot.base}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body.get("webhook_registration").is_none(),
        "no setWebhook in polling mode: {body}"
    );
    let sent = bot.wait_for("/sendMessage", 2).await;
    let mut chats: Vec<i64> = sent
        .iter()
        .map(|r| r.json()["chat_id"].as_i64().unwrap())
        .collect();
    chats.sort();
    assert_eq!(chats, [CHAT, CHAT + 1]);
    // The next poll confirmed both updates (offset = last update_id + 1).
    let ok = eventually(Duration::from_secs(10), || async {
        bot.received_at("/getUpdates")
            .iter()
            .any(|r| r.json()["offset"] == 7003)
    })
    .await;
    assert!(
        ok,
        "{:#?}",
        bot.received_at("/getUpdates")
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>()
    );
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_events").await, 2);
    app.stop().await;
}
