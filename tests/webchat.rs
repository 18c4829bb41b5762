//! Web chat end to end: message in, reply out over server-sent events; idempotent retries.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::helpers::*;

/// Reads server-sent events from `resp` until `want` returns true for an event's data, or the
/// deadline passes. Returns every event data seen.
async fn read_sse_until(
    resp: reqwest::Response,
    want: impl Fn(&Value) -> bool,
    deadline: Duration,
) -> Vec<Value> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let chunk = tokio::time::timeout_at(end, stream.next()).await;
        let Ok(Some(Ok(bytes))) = chunk else {
            return seen;
        };
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            if data.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&data).expect("event data is JSON");
            let done = want(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn web_chat_message_is_answered_over_sse() {
    let app = spawn_app().await;
    let s = session();
    let resp = app
        .http
        .get(app.url(&format!(
            "/api/v1/webchat/{}/sessions/{s}/events",
            app.demo_channel
        )))
        .send()
        .await
        .expect("open stream");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    let (status, body) = app
        .post_chat(app.demo_channel, &s, "c1", "What are your opening hours?")
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicate"], false);

    let events = read_sse_until(resp, |v| v["role"] == "agent", Duration::from_secs(20)).await;
    let roles: Vec<&str> = events.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["customer", "agent"], "events: {events:#?}");
    assert_eq!(events[0]["text"], "What are your opening hours?");
    let reply = events[1]["text"].as_str().unwrap();
    assert!(!reply.is_empty());
    // The demo knowledge answers opening hours; the reply cites its source.
    assert!(reply.contains("Source:"), "reply without citation: {reply}");
    app.stop().await;
}

#[tokio::test]
async fn sse_resumes_after_last_event_id_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Hello").await;
    let history = app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let first_seq = history[0]["seq"].as_i64().unwrap();
    let resp = app
        .http
        .get(app.url(&format!(
            "/api/v1/webchat/{}/sessions/{s}/events",
            app.demo_channel
        )))
        .header("Last-Event-ID", first_seq.to_string())
        .send()
        .await
        .unwrap();
    let events = read_sse_until(resp, |v| v["role"] == "agent", Duration::from_secs(10)).await;
    assert_eq!(
        events.len(),
        1,
        "only the message after the cursor: {events:#?}"
    );
    assert_eq!(events[0]["id"], history[1]["id"]);
    app.stop().await;
}

#[tokio::test]
async fn same_client_message_id_posted_five_times_concurrently_is_stored_and_answered_once() {
    let app = spawn_app().await;
    let s = session();
    let posts =
        (0..5).map(|_| app.post_chat(app.demo_channel, &s, "same-id", "Do you offer financing?"));
    let results = futures::future::join_all(posts).await;
    for (status, body) in &results {
        assert_eq!(*status, 202, "{body}");
    }
    let fresh = results
        .iter()
        .filter(|(_, b)| b["duplicate"] == false)
        .count();
    assert_eq!(fresh, 1, "exactly one post is new: {results:#?}");
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, b)| b["message_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every retry reports the same message");

    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    // Give a wrongly duplicated turn every chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let history = app.history(app.demo_channel, &s).await;
    let customer = history.iter().filter(|m| m["role"] == "customer").count();
    let agent = history.iter().filter(|m| m["role"] == "agent").count();
    assert_eq!((customer, agent), (1, 1), "history: {history:#?}");

    let mut owner = app.owner().await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_events")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    let turns: i64 = sqlx::query_scalar("SELECT count(*) FROM turns")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!((events, turns, sent), (1, 1, 1));
    app.stop().await;
}

#[tokio::test]
async fn arabic_message_gets_an_arabic_answer_from_the_knowledge_base() {
    let app = spawn_app().await;
    let s = session();
    let (status, _) = app
        .post_chat(app.demo_channel, &s, "c1", "ما هي ساعات العمل؟")
        .await;
    assert_eq!(status, 202);
    let history = app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let reply = history.iter().find(|m| m["role"] == "agent").unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let arabic = reply
        .chars()
        .filter(|c| ('\u{0600}'..='\u{06FF}').contains(c))
        .count();
    assert!(arabic > 10, "expected an Arabic reply, got: {reply}");
    assert!(
        reply.contains("المصدر"),
        "expected an Arabic citation: {reply}"
    );
    app.stop().await;
}

#[tokio::test]
async fn requests_for_a_human_and_a_meeting_are_recognised_in_english_and_arabic() {
    let app = spawn_app().await;
    let cases = [
        ("I want to talk to a real person please", "human"),
        ("أريد التحدث مع موظف", "human"),
        ("Can I book a consultation next week?", "meeting"),
        ("أبغى أحجز موعد استشارة", "meeting"),
    ];
    let mut sessions = Vec::new();
    for (i, (text, _)) in cases.iter().enumerate() {
        let s = session();
        app.post_chat(app.demo_channel, &s, &format!("c{i}"), text)
            .await;
        sessions.push(s);
    }
    let mut owner = app.owner().await;
    for (s, (text, intent)) in sessions.iter().zip(cases) {
        app.wait_for_agent_replies(app.demo_channel, s, 1).await;
        let got: String = sqlx::query_scalar(
            "SELECT t.intent FROM turns t JOIN conversations c ON c.id = t.conversation_id JOIN contacts k ON k.id = c.contact_id WHERE k.external_id = $1",
        )
        .bind(s)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert_eq!(got, intent, "intent of {text:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn chat_page_and_widget_are_served() {
    let app = spawn_app().await;
    let page = app
        .http
        .get(app.url(&format!("/chat/{}", app.demo_channel)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("data-testid=\"chat-input\""));
    let js = app
        .http
        .get(app.url("/chat/widget.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    let (status, info) = {
        let r = app
            .http
            .get(app.url(&format!("/api/v1/webchat/{}", app.demo_channel)))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(info["tenant_name"], "Sahara Solar");
    app.stop().await;
}

#[tokio::test]
async fn common_questions_are_answered_from_the_right_document() {
    let app = spawn_app().await;
    let cases = [
        (
            "Do you offer a warranty?",
            "Source: Warranty and Guarantees",
        ),
        ("What are your prices?", "Source: Solar Packages and Prices"),
        (
            "Do you provide financing?",
            "Source: Financing and Payment Plans",
        ),
        ("Can I add batteries later?", "Source: Battery Storage FAQ"),
        ("هل عندكم ضمان؟", "المصدر: الضمان على الأنظمة والمكونات"),
        ("كم تستغرق مدة التركيب؟", "المصدر: مدة التركيب ومراحله"),
    ];
    let mut sessions = Vec::new();
    for (i, (question, _)) in cases.iter().enumerate() {
        let s = session();
        app.post_chat(app.demo_channel, &s, &format!("q{i}"), question)
            .await;
        sessions.push(s);
    }
    for (s, (question, source)) in sessions.iter().zip(cases) {
        let history = app.wait_for_agent_replies(app.demo_channel, s, 1).await;
        let reply = history[1]["text"].as_str().unwrap();
        assert!(reply.contains(source), "{question:?} → {reply}");
    }
    app.stop().await;
}
