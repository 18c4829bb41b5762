//! Meeting booking end to end: twenty web-chat customers racing for one slot (exactly one wins,
//! the others are offered other times), an Arabic booking conversation with the offline
//! responder, calendar invitations arriving at a real SMTP server (request, update, cancel),
//! the admin API with its 409/422 answers, the exclusion constraint refusing an overlapping
//! insert made by hand, and a redone booking turn that books and invites once.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use switchboard_actors::actions::TurnActions;
use switchboard_actors::context::TurnContext;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::actions::ActionSettings;
use switchboard_core::{ConversationId, EventId};
use switchboard_prompts::Lang;

use crate::helpers::*;

const SALES: &str = "sales@sahara.example";

/// Dubai hours every day 09:00–17:00, 30-minute meetings, 15 minutes between them, today and
/// tomorrow off: every offer made during the test starts at the same slot (the day after
/// tomorrow, 09:00), however long the test takes.
fn test_availability() -> Value {
    let dubai = chrono::FixedOffset::east_opt(4 * 3600).unwrap();
    let today = Utc::now().with_timezone(&dubai).date_naive();
    let hours: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (d.to_string(), json!([["09:00", "17:00"]])))
        .collect();
    json!({
        "timezone": "Asia/Dubai",
        "weekly_hours": hours,
        "slot_minutes": 30,
        "buffer_minutes": 15,
        "min_notice_minutes": 0,
        "horizon_days": 14,
        "holidays": [today.to_string(), today.succ_opt().unwrap().to_string()],
        "salesperson_name": "Layla Haddad",
        "salesperson_email": SALES,
        "meeting_title": "Solar consultation",
        "location": "Showroom, Al Quoz",
    })
}

async fn put_json(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let resp = app
        .http
        .put(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn set_availability(app: &TestApp) {
    let (status, body) = put_json(
        app,
        "/api/v1/availability?tenant=demo",
        &test_availability().to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The next free slots' starts, from the admin API.
async fn free_slots(app: &TestApp, limit: usize) -> Vec<DateTime<Utc>> {
    let (status, body) = app
        .admin_get(&format!(
            "/api/v1/availability/slots?tenant=demo&limit={limit}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn agent_texts(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter(|m| m["role"] == "agent")
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn confirmed_bookings(app: &TestApp) -> Vec<(uuid::Uuid, DateTime<Utc>)> {
    let mut c = app.owner().await;
    sqlx::query_as(
        "SELECT id, starts_at FROM bookings WHERE status = 'confirmed' ORDER BY starts_at",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
}

#[tokio::test]
async fn twenty_conversations_racing_for_one_slot_get_exactly_one_booking_and_the_rest_other_slots()
{
    let app = spawn_app().await;
    set_availability(&app).await;
    let first = free_slots(&app, 1).await[0];
    let sessions: Vec<String> = (0..20).map(|_| session()).collect();
    futures::future::join_all(
        sessions
            .iter()
            .map(|s| app.post_chat(app.demo_channel, s, "ask", "Can I book a consultation?")),
    )
    .await;
    let mut offers = Vec::new();
    for s in &sessions {
        let h = app.wait_for_agent_replies(app.demo_channel, s, 1).await;
        offers.push(agent_texts(&h)[0].clone());
    }
    // Everyone saw the same offer, its first slot being the first free one.
    assert!(offers.iter().all(|o| o == &offers[0]), "{offers:#?}");
    assert!(
        offers[0].contains("\n1. ") && offers[0].contains("(Asia/Dubai time)"),
        "{}",
        offers[0]
    );

    // All twenty pick the first slot at once.
    futures::future::join_all(
        sessions
            .iter()
            .map(|s| app.post_chat(app.demo_channel, s, "pick", "1")),
    )
    .await;
    let mut booked = Vec::new();
    let mut taken = Vec::new();
    for s in &sessions {
        let h = app.wait_for_agent_replies(app.demo_channel, s, 2).await;
        let reply = agent_texts(&h)[1].clone();
        if reply.starts_with("You're booked") {
            booked.push(s.clone());
        } else {
            assert!(reply.contains("was just taken by someone else"), "{reply}");
            taken.push((s.clone(), reply));
        }
    }
    assert_eq!(booked.len(), 1, "exactly one customer gets the slot");
    assert_eq!(taken.len(), 19);
    let bookings = confirmed_bookings(&app).await;
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    assert_eq!(bookings[0].1, first);

    // The others were offered other slots, none of them the taken one.
    let taken_label = offers[0]
        .lines()
        .find(|l| l.starts_with("1. "))
        .unwrap()
        .trim_start_matches("1. ")
        .to_owned();
    for (_, reply) in &taken {
        let listed: Vec<&str> = reply
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert!(!listed.is_empty(), "alternatives offered: {reply}");
        assert!(listed.iter().all(|l| !l.contains(&taken_label)), "{reply}");
    }
    // And picking one of them books it.
    let (s, _) = &taken[0];
    app.post_chat(app.demo_channel, s, "again", "1").await;
    let h = app.wait_for_agent_replies(app.demo_channel, s, 3).await;
    assert!(agent_texts(&h)[2].starts_with("You're booked"), "{h:#?}");
    assert_eq!(confirmed_bookings(&app).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn an_arabic_customer_books_reschedules_and_cancels_with_the_offline_responder() {
    let app = spawn_app().await;
    set_availability(&app).await;
    let slots = free_slots(&app, 3).await;
    let s = session();
    let ch = app.demo_channel;

    app.post_chat(ch, &s, "a1", "أبغى أحجز موعد استشارة").await;
    let offer = agent_texts(&app.wait_for_agent_replies(ch, &s, 1).await)[0].clone();
    assert!(offer.contains("هذه أقرب المواعيد المتاحة"), "{offer}");
    assert!(offer.contains("بتوقيت Asia/Dubai"), "{offer}");
    assert!(offer.contains("أرسل رقم الموعد المناسب لك"), "{offer}");
    // Local Dubai times with Arabic weekday names: the second slot is 09:45 on the first day.
    let second_line = offer.lines().find(|l| l.starts_with("2. ")).unwrap();
    assert!(second_line.ends_with("الساعة 09:45"), "{second_line}");
    assert!(
        [
            "الاثنين",
            "الثلاثاء",
            "الأربعاء",
            "الخميس",
            "الجمعة",
            "السبت",
            "الأحد"
        ]
        .iter()
        .any(|d| second_line.contains(d)),
        "{second_line}"
    );

    // "٢" in Arabic-Indic digits picks the second slot; the answer stays in Arabic.
    app.post_chat(ch, &s, "a2", "٢").await;
    let confirm = agent_texts(&app.wait_for_agent_replies(ch, &s, 2).await)[1].clone();
    assert!(confirm.starts_with("تم تأكيد موعدك"), "{confirm}");
    assert!(
        confirm.contains(second_line.trim_start_matches("2. ")),
        "{confirm}"
    );
    let bookings = confirmed_bookings(&app).await;
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].1, slots[1]);
    let mut c = app.owner().await;
    let lang: String = sqlx::query_scalar("SELECT lang FROM bookings")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(lang, "ar");

    // Moving it: other slots, then "الأول" takes the first of them.
    app.post_chat(ch, &s, "a3", "ممكن تغيير الموعد؟").await;
    let offer2 = agent_texts(&app.wait_for_agent_replies(ch, &s, 3).await)[2].clone();
    assert!(offer2.starts_with("موعدك الحالي"), "{offer2}");
    app.post_chat(ch, &s, "a4", "الأول").await;
    let moved = agent_texts(&app.wait_for_agent_replies(ch, &s, 4).await)[3].clone();
    assert!(moved.starts_with("تم — نقلنا موعدك"), "{moved}");
    let (status, body): (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT status, rescheduled_from FROM bookings WHERE status = 'confirmed'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(status, "confirmed");
    assert_eq!(
        body,
        Some(bookings[0].0),
        "the new booking replaces the old one"
    );
    assert_eq!(confirmed_bookings(&app).await[0].1, slots[0]);

    // Cancelling.
    app.post_chat(ch, &s, "a5", "إلغاء الموعد لو سمحت").await;
    let cancelled = agent_texts(&app.wait_for_agent_replies(ch, &s, 5).await)[4].clone();
    assert!(cancelled.starts_with("تم إلغاء موعدك"), "{cancelled}");
    assert!(confirmed_bookings(&app).await.is_empty());
    // Nothing left to cancel.
    app.post_chat(ch, &s, "a6", "الغاء الموعد").await;
    let none = agent_texts(&app.wait_for_agent_replies(ch, &s, 6).await)[5].clone();
    assert!(none.starts_with("ليس لديك موعد قادم"), "{none}");
    // The turns carry the booking intents.
    let intents: Vec<String> = sqlx::query_scalar("SELECT intent FROM turns ORDER BY created_at")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(
        intents,
        [
            "meeting",
            "booking_confirmed",
            "booking_reschedule",
            "booking_rescheduled",
            "booking_cancelled",
            "booking_none"
        ]
    );
    app.stop().await;
}

/// To, subject and the text/calendar part of a raw email (MIME decoded by Python's `email`).
fn parse_mail(raw: &str) -> Value {
    run_python(
        r#"
import email, json, sys
from email import policy
m = email.message_from_string(json.load(sys.stdin), policy=policy.default)
cal = [p.get_content() for p in m.walk() if p.get_content_type() == "text/calendar"]
print(json.dumps({"to": str(m["To"]), "subject": str(m["Subject"]), "ics": cal[0] if cal else ""}))
"#,
        &json!(raw),
    )
}

/// Content lines unfolded; line ends as `\n` (Python's decoder already turned CRLF into LF).
fn unfold(ics: &str) -> String {
    ics.replace("\r\n", "\n").replace("\n ", "")
}

#[tokio::test]
async fn calendar_invitations_reach_customer_and_salesperson_and_follow_reschedule_and_cancel() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
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
    set_availability(&app).await;
    let slots = free_slots(&app, 4).await;
    let s = session();
    let ch = app.demo_channel;
    app.post_chat(ch, &s, "b1", "Can I book a consultation?")
        .await;
    app.wait_for_agent_replies(ch, &s, 1).await;
    let mut c = app.owner().await;
    sqlx::query("UPDATE contacts SET email = 'omar@customer.example', display_name = 'Omar Khalil' WHERE external_id = $1")
        .bind(&s)
        .execute(&mut c)
        .await
        .unwrap();
    app.post_chat(ch, &s, "b2", "1").await;
    let confirm = agent_texts(&app.wait_for_agent_replies(ch, &s, 2).await)[1].clone();
    assert!(
        confirm.contains("A calendar invitation is on its way to omar@customer.example"),
        "{confirm}"
    );

    let utc = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let mails: Vec<Value> = smtpd
        .wait_for(2)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let mut to: Vec<String> = mails
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["omar@customer.example", SALES]);
    let mut uid = String::new();
    for m in &mails {
        let ics = unfold(m["ics"].as_str().unwrap());
        assert!(ics.contains("METHOD:REQUEST\n"), "{ics}");
        assert!(
            ics.contains(&format!("DTSTART:{}\n", utc(slots[0]))),
            "{ics}"
        );
        assert!(ics.contains("SEQUENCE:0\n"), "{ics}");
        assert!(
            ics.contains("ORGANIZER;CN=\"Layla Haddad\":mailto:sales@sahara.example\n"),
            "{ics}"
        );
        assert!(
            ics.contains("CN=\"Omar Khalil\":mailto:omar@customer.example\n"),
            "{ics}"
        );
        uid = ics
            .lines()
            .find(|l| l.starts_with("UID:"))
            .unwrap()
            .to_owned();
    }
    let sales_mail = mails.iter().find(|m| m["to"] == SALES).unwrap();
    assert!(
        sales_mail["subject"]
            .as_str()
            .unwrap()
            .starts_with("New booking: Solar consultation with Omar Khalil"),
        "{sales_mail}"
    );

    // An admin moves it: an update of the same event (same UID, SEQUENCE 1) to both.
    let id = confirmed_bookings(&app).await[0].0;
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{id}/reschedule?tenant=demo"),
            json!({"start": slots[3].to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let new_id = body["booking"]["id"].as_str().unwrap().to_owned();
    let mails: Vec<Value> = smtpd.wait_for(4).await[2..]
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    for m in &mails {
        let ics = unfold(m["ics"].as_str().unwrap());
        assert!(ics.contains("METHOD:REQUEST\n"), "{ics}");
        assert!(ics.contains("SEQUENCE:1\n"), "{ics}");
        assert!(
            ics.contains(&format!("DTSTART:{}\n", utc(slots[3]))),
            "{ics}"
        );
        assert!(ics.contains(&format!("{uid}\n")), "same event: {ics}");
    }

    // And cancels it: METHOD:CANCEL, SEQUENCE 2, same event.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{new_id}/cancel?tenant=demo"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mails: Vec<Value> = smtpd.wait_for(6).await[4..]
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let mut to: Vec<String> = mails
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["omar@customer.example", SALES]);
    for m in &mails {
        let ics = unfold(m["ics"].as_str().unwrap());
        assert!(ics.contains("METHOD:CANCEL\n"), "{ics}");
        assert!(ics.contains("STATUS:CANCELLED\n"), "{ics}");
        assert!(ics.contains("SEQUENCE:2\n"), "{ics}");
        assert!(ics.contains(&format!("{uid}\n")), "{ics}");
    }
    // Cancelling again sends nothing more.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{new_id}/cancel?tenant=demo"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["already_cancelled"], true);
    let mut c = app.owner().await;
    let invites: i64 =
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE purpose = 'booking_invite'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(invites, 6);
    app.stop().await;
}

#[tokio::test]
async fn bookings_admin_api_validates_and_answers_409_and_422() {
    let app = spawn_app().await;
    // The demo tenant comes with the showroom's hours.
    let (status, body) = app.admin_get("/api/v1/availability?tenant=demo").await;
    assert_eq!(status, 200);
    assert_eq!(body["availability"]["timezone"], "Asia/Dubai");
    assert!(
        body["availability"]["weekly_hours"]["fri"].is_null(),
        "closed on Fridays: {body}"
    );
    assert_eq!(
        body["availability"]["weekly_hours"]["sat"],
        json!([["08:30", "18:30"]])
    );

    // Bad availability: clear 422s (and a 400 for JSON that is not JSON).
    let mut bad = test_availability();
    bad["timezone"] = json!("Mars/Olympus");
    let (status, body) = put_json(&app, "/api/v1/availability?tenant=demo", &bad.to_string()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_availability");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Mars/Olympus"));
    let mut bad = test_availability();
    bad["weekly_hours"]["mon"] = json!([["09:00", "12:00"], ["11:30", "14:00"]]);
    let (status, body) = put_json(&app, "/api/v1/availability?tenant=demo", &bad.to_string()).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overlap"),
        "{body}"
    );
    let mut bad = test_availability();
    bad["weekly_hours"]["mon"] = json!([["9am", "17:00"]]);
    let (status, _) = put_json(&app, "/api/v1/availability?tenant=demo", &bad.to_string()).await;
    assert_eq!(status, 422);
    let mut bad = test_availability();
    bad["tenant_id"] = json!("someone-else");
    let (status, _) = put_json(&app, "/api/v1/availability?tenant=demo", &bad.to_string()).await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (status, _) = put_json(&app, "/api/v1/availability?tenant=demo", "{not json").await;
    assert_eq!(status, 400);
    let (status, _) = put_json(
        &app,
        "/api/v1/availability",
        &test_availability().to_string(),
    )
    .await;
    assert_eq!(status, 400, "no tenant");
    set_availability(&app).await;

    let slots = free_slots(&app, 3).await;
    assert_eq!(slots.len(), 3);
    let book = |start: String, key: Option<&str>| {
        let mut b = json!({"start": start, "customer_name": "Omar", "customer_email": "omar@customer.example"});
        if let Some(k) = key {
            b["idempotency_key"] = json!(k);
        }
        b
    };
    let (status, body) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book(slots[0].to_rfc3339(), Some("k1")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["booking"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["booking"]["status"], "confirmed");
    assert!(body["booking"]["local_start"]
        .as_str()
        .unwrap()
        .ends_with("T09:00:00"));
    // The same request again: the same booking, nothing new.
    let (status, body) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book(slots[0].to_rfc3339(), Some("k1")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["booking"]["id"], id.as_str());
    // Another request for overlapping time (inside the buffer, too): 409.
    let (status, body) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book(slots[0].to_rfc3339(), None),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "slot_taken");
    let in_buffer = slots[0] + chrono::Duration::minutes(40);
    let (status, _) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book(in_buffer.to_rfc3339(), None),
        )
        .await;
    assert_eq!(status, 409, "the buffer after a meeting is held too");
    // Outside opening hours, in the past, not a time: 422, 422, 400.
    let night = slots[0] - chrono::Duration::hours(7);
    let (status, body) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book(night.to_rfc3339(), None),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "outside_hours");
    let (status, _) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book("2020-01-01T09:00:00+04:00".into(), None),
        )
        .await;
    assert_eq!(status, 422);
    let (status, body) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book("tomorrow at nine".into(), None),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_time");

    // A second booking, then moving it onto the first: 409, and nothing changed.
    let (status, body) = app
        .admin_post(
            "/api/v1/bookings?tenant=demo",
            book(slots[2].to_rfc3339(), None),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let second = body["booking"]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{second}/reschedule?tenant=demo"),
            json!({"start": slots[0].to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(confirmed_bookings(&app).await.len(), 2);
    // Moving it to the free slot between them works.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{second}/reschedule?tenant=demo"),
            json!({"start": slots[1].to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["booking"]["rescheduled_from"], second.as_str());
    assert_eq!(body["booking"]["sequence"], 1);
    // The old one cannot move again.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{second}/reschedule?tenant=demo"),
            json!({"start": slots[2].to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "not_confirmed");

    // Lists and filters.
    let (status, body) = app
        .admin_get("/api/v1/bookings?tenant=demo&status=confirmed")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["bookings"].as_array().unwrap().len(), 2);
    let (_, body) = app
        .admin_get("/api/v1/bookings?tenant=demo&status=cancelled")
        .await;
    assert_eq!(body["bookings"].as_array().unwrap().len(), 1);
    let from = (slots[1] - chrono::Duration::minutes(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let (_, body) = app
        .admin_get(&format!(
            "/api/v1/bookings?tenant=demo&status=confirmed&from={from}"
        ))
        .await;
    assert_eq!(body["bookings"].as_array().unwrap().len(), 1);
    let (status, body) = app
        .admin_get("/api/v1/bookings?tenant=demo&status=maybe")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .admin_get("/api/v1/bookings?tenant=demo&from=yesterday")
        .await;
    assert_eq!(status, 400);
    let (status, body) = app
        .admin_get(&format!("/api/v1/bookings/{id}?tenant=demo"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["booking"]["customer_email"], "omar@customer.example");
    let (status, _) = app
        .admin_get(&format!(
            "/api/v1/bookings/{}?tenant=demo",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .admin_get("/api/v1/bookings/not-a-uuid?tenant=demo")
        .await;
    assert_eq!(status, 400);

    // Cancel, twice.
    let (status, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{id}/cancel?tenant=demo"),
            json!({"reason": "customer called"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["booking"]["status"], "cancelled");
    assert_eq!(body["booking"]["cancel_reason"], "customer called");
    let (_, body) = app
        .admin_post(
            &format!("/api/v1/bookings/{id}/cancel?tenant=demo"),
            json!({}),
        )
        .await;
    assert_eq!(body["already_cancelled"], true);
    // The freed slot is offered again.
    assert_eq!(free_slots(&app, 1).await[0], slots[0]);
    app.stop().await;
}

#[tokio::test]
async fn the_exclusion_constraint_refuses_an_overlapping_confirmed_booking_inserted_by_hand() {
    let app = spawn_app().await;
    let mut c = app.owner().await;
    let app_ref = &app;
    let insert = |start: &'static str, end: &'static str, status: &'static str| {
        let tenant = app_ref.demo_tenant.0;
        async move {
            let mut c = app_ref.owner().await;
            sqlx::query(
                "INSERT INTO bookings (id, tenant_id, starts_at, ends_at, hold, status, cancelled_at,
                                       ics_uid, idempotency_key, title, timezone)
                 VALUES ($1, $2, $3::timestamptz, $4::timestamptz, tstzrange($3::timestamptz, $4::timestamptz),
                         $5, CASE WHEN $5 = 'cancelled' THEN now() END, 'x', $1::text, 'Meeting', 'UTC')",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(tenant)
            .bind(start)
            .bind(end)
            .bind(status)
            .execute(&mut c)
            .await
        }
    };
    insert("2030-01-07T09:00:00Z", "2030-01-07T09:45:00Z", "confirmed")
        .await
        .unwrap();
    let err = insert("2030-01-07T09:30:00Z", "2030-01-07T10:00:00Z", "confirmed")
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("23P01"),
        "{err}"
    );
    // Touching holds ([09:00, 09:45) and [09:45, …)) do not overlap; cancelled ones hold nothing.
    insert("2030-01-07T09:45:00Z", "2030-01-07T10:15:00Z", "confirmed")
        .await
        .unwrap();
    insert("2030-01-07T09:00:00Z", "2030-01-07T09:30:00Z", "cancelled")
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE status = 'confirmed'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_booking_turn_run_twice_books_once_and_invites_each_recipient_once() {
    let app = spawn_app().await;
    set_availability(&app).await;
    let slots = free_slots(&app, 2).await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Can I book a consultation?")
        .await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let mut c = app.owner().await;
    let conversation: uuid::Uuid = sqlx::query_scalar(
        "UPDATE contacts SET email = 'omar@customer.example' WHERE external_id = $1
         RETURNING (SELECT id FROM conversations WHERE contact_id = contacts.id)",
    )
    .bind(&s)
    .fetch_one(&mut c)
    .await
    .unwrap();

    // A second application on the same data gives the turn's services; the same request (the
    // same first event) is answered twice, as a turn redone after a crash would be.
    let other = switchboard_runtime::Application::build(
        test_settings(&app.database),
        switchboard_runtime::BuildOptions { faults: None },
    )
    .await
    .unwrap();
    let services = other.services();
    let events = [EventId::new()];
    let settings = ActionSettings::default();
    let actions = TurnActions::default();
    let conversation = ConversationId(conversation);
    let ctx = TurnContext {
        services: &services,
        tenant: app.demo_tenant,
        tenant_name: "Sahara Solar",
        conversation: Some(conversation),
        channel: ChannelKind::Webchat,
        events: &events,
        customer_text: "2",
        sender: switchboard_core::model::SenderTrust::Verified,
        lang: Lang::En,
        settings: &settings,
        actions: &actions,
        dry_run: false,
    };
    let first = switchboard_actors::booking::offline_turn(&ctx, conversation)
        .await
        .unwrap()
        .expect("a booking reply");
    let again = switchboard_actors::booking::offline_turn(&ctx, conversation)
        .await
        .unwrap()
        .expect("the same reply");
    assert_eq!(first.intent, "booking_confirmed");
    assert_eq!(again.intent, "booking_confirmed");
    assert_eq!(first.text, again.text);
    assert_eq!(first.metadata["booking_id"], again.metadata["booking_id"]);
    let bookings = confirmed_bookings(&app).await;
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].1, slots[1]);
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM effects WHERE purpose = 'booking_invite' ORDER BY idempotency_key",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let id = bookings[0].0;
    assert_eq!(
        keys,
        [
            format!("booking:{id}:0:customer"),
            format!("booking:{id}:0:sales")
        ]
    );

    // A message that is not about booking is left to the knowledge responder.
    let events = [EventId::new()];
    let ctx = TurnContext {
        events: &events,
        customer_text: "What are your opening hours?",
        ..ctx
    };
    assert!(
        switchboard_actors::booking::offline_turn(&ctx, conversation)
            .await
            .unwrap()
            .is_none()
    );
    drop(other);
    app.stop().await;
}

/// A local OpenAI-compatible endpoint that books like a model would (tool results arrive as
/// `{"ok", "result"|"error"}`): `find_slots`, then
/// `book_meeting` with an invented `contact_id` (refused), then the correct call, then text.
async fn booking_model() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    recording_model(|body: &Value| {
        let results: Vec<Value> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
            .collect();
        let call = |name: &str, args: Value| {
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{}", results.len()), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]})
        };
        let browsing = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .is_some_and(|m| m["content"].as_str().unwrap_or("").contains("which times"));
        match results.len() {
            0 => call("find_slots", json!({"limit": 3})),
            1 if browsing => json!({"role": "assistant", "content": "Here are three times."}),
            1 => call(
                "book_meeting",
                json!({"start": results[0]["result"]["slots"][0]["start"], "contact_id": "someone-else"}),
            ),
            2 => call("book_meeting", json!({"start": results[0]["result"]["slots"][0]["start"]})),
            _ => json!({"role": "assistant", "content": "You're booked for the first time I found."}),
        }
    })
    .await
}

#[tokio::test]
async fn the_model_books_through_the_tools_for_the_current_customer_only() {
    let (base, seen) = booking_model().await;
    let app = spawn_app_with(
        move |s| {
            s.openai_base_url = Some(base);
            s.openai_api_key = Some("sk-platform-test".to_owned().into());
        },
        None,
    )
    .await;
    set_availability(&app).await;
    let slots = free_slots(&app, 1).await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "m1", "Can I book a consultation?")
        .await;
    let h = app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    assert_eq!(
        agent_texts(&h)[0],
        "You're booked for the first time I found."
    );
    let last = seen.lock().unwrap().last().cloned().unwrap();
    let results: Vec<Value> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        results[0]["result"]["timezone"], "Asia/Dubai",
        "{results:#?}"
    );
    assert_eq!(results[0]["result"]["slots"].as_array().unwrap().len(), 3);
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `contact_id`"),
        "{}",
        results[1]
    );
    assert_eq!(results[2]["result"]["booked"], true, "{}", results[2]);
    let bookings = confirmed_bookings(&app).await;
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].1, slots[0]);
    let mut c = app.owner().await;
    let (key, contact_matches): (String, bool) = sqlx::query_as(
        "SELECT b.idempotency_key, b.contact_id = k.id FROM bookings b
           JOIN conversations v ON v.id = b.conversation_id JOIN contacts k ON k.id = v.contact_id
          WHERE k.external_id = $1",
    )
    .bind(&s)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(key.starts_with("tool:"), "{key}");
    assert!(contact_matches, "booked for the conversation's own contact");
    // Once booked, the reply carries no stale slot buttons.
    let payload: Value =
        sqlx::query_scalar("SELECT payload FROM outbox ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert!(
        payload["choices"].as_array().is_none_or(|c| c.is_empty()),
        "{payload}"
    );

    // A customer who only asks which times are free gets them as reply buttons.
    let s2 = session();
    app.post_chat(
        app.demo_channel,
        &s2,
        "m2",
        "which times are free for a consultation?",
    )
    .await;
    let h = app.wait_for_agent_replies(app.demo_channel, &s2, 1).await;
    assert_eq!(agent_texts(&h)[0], "Here are three times.");
    let payload: Value =
        sqlx::query_scalar("SELECT payload FROM outbox ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let choices = payload["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3, "{payload}");
    assert!(choices[0]["id"].as_str().unwrap().starts_with("slot:"));
    assert_eq!(
        confirmed_bookings(&app).await.len(),
        1,
        "browsing books nothing"
    );
    app.stop().await;
}
