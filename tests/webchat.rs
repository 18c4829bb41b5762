//! Web chat end to end: message in, reply out over server-sent events; idempotent retries.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::helpers::*;

/// Reads server-sent events from `resp` until `want` returns true for a `message` event's data,
/// or the deadline passes. Returns the data of every `message` event seen.
async fn read_sse_until(
    resp: reqwest::Response,
    want: impl Fn(&Value) -> bool,
    deadline: Duration,
) -> Vec<Value> {
    read_events_until(resp, |name, v| name == "message" && want(v), deadline)
        .await
        .into_iter()
        .filter(|(name, _)| name == "message")
        .map(|(_, v)| v)
        .collect()
}

/// Reads server-sent events from `resp` until `want(event name, data)` returns true or the
/// deadline passes. Returns every event seen as (name, data).
async fn read_events_until(
    resp: reqwest::Response,
    want: impl Fn(&str, &Value) -> bool,
    deadline: Duration,
) -> Vec<(String, Value)> {
    Sse::new(resp).until(want, deadline).await
}

/// A session's event stream, read piece by piece.
struct Sse {
    stream: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
}

impl Sse {
    fn new(resp: reqwest::Response) -> Sse {
        Sse {
            stream: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buf: String::new(),
        }
    }

    /// Events until `want(name, data)` is true or the deadline passes, as (name, data).
    async fn until(
        &mut self,
        want: impl Fn(&str, &Value) -> bool,
        deadline: Duration,
    ) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            while let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join("\n");
                if data.is_empty() {
                    continue;
                }
                let name = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(|n| n.trim().to_owned())
                    .unwrap_or_else(|| "message".into());
                if name == "state" {
                    assert!(
                        !block.lines().any(|l| l.starts_with("id:")),
                        "a state event must not move the Last-Event-ID cursor: {block}"
                    );
                }
                let v: Value = serde_json::from_str(&data).expect("event data is JSON");
                if name == "message" {
                    let id = block.lines().find_map(|l| l.strip_prefix("id:"));
                    assert_eq!(
                        id.map(str::trim),
                        Some(v["seq"].to_string().as_str()),
                        "a message event's id is the message's place in its conversation: {block}"
                    );
                }
                let done = want(&name, &v);
                seen.push((name, v));
                if done {
                    return seen;
                }
            }
            let chunk = tokio::time::timeout_at(end, self.stream.next()).await;
            let Ok(Some(Ok(bytes))) = chunk else {
                return seen;
            };
            self.buf.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

/// Opens the session's event stream and reads its first `state` event.
async fn open_events(app: &TestApp, session: &str) -> (Sse, Value) {
    let resp = app
        .http
        .get(app.url(&format!(
            "/api/v1/webchat/{}/sessions/{session}/events",
            app.demo_channel
        )))
        .send()
        .await
        .expect("open stream");
    assert_eq!(resp.status(), 200);
    let mut sse = Sse::new(resp);
    let first = sse
        .until(|name, _| name == "state", Duration::from_secs(5))
        .await;
    let (name, state) = first.last().cloned().expect("a first state event");
    assert_eq!(name, "state", "{first:#?}");
    (sse, state)
}

async fn history_body(app: &TestApp, session: &str) -> Value {
    app.http
        .get(app.url(&format!(
            "/api/v1/webchat/{}/sessions/{session}/messages",
            app.demo_channel
        )))
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json")
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
async fn a_customer_sees_places_in_their_own_conversation_never_the_platforms_message_count() {
    let app = spawn_app().await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Hello").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    // Other customers' messages, stored between this customer's: platform-wide volume that
    // event ids and `seq` must not reveal.
    for k in 0..6 {
        let (status, body) = app
            .post_chat(app.demo_channel, &session(), &format!("o{k}"), "Hi there")
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (mut sse, _) = open_events(&app, &s).await;
    app.post_chat(app.demo_channel, &s, "c2", "What are your opening hours?")
        .await;
    let events = sse
        .until(
            |name, v| name == "message" && v["role"] == "agent" && v["seq"] == 4,
            Duration::from_secs(20),
        )
        .await;
    let seqs: Vec<i64> = events
        .iter()
        .filter(|(name, _)| name == "message")
        .map(|(_, v)| v["seq"].as_i64().unwrap())
        .collect();
    // After the history replayed on connect (1, 2), the post and its reply come as 3 and 4,
    // and the ids match (`Sse` checks every `id:` line against `seq`).
    assert_eq!(seqs, [3, 4], "events: {events:#?}");
    let history = app.wait_for_agent_replies(app.demo_channel, &s, 2).await;
    let listed: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(listed, [1, 2, 3, 4]);
    // Resuming after a place gives what follows it, through the history and the stream alike.
    let after: Value = app
        .http
        .get(app.url(&format!(
            "/api/v1/webchat/{}/sessions/{s}/messages?after=2",
            app.demo_channel
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = after["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts[0], "What are your opening hours?");
    assert_eq!(texts.len(), 2);
    // The stored sequence did move on with the other customers: the places are not it.
    let mut owner = app.owner().await;
    let max_seq: i64 = sqlx::query_scalar("SELECT max(seq) FROM messages")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert!(
        max_seq > 4,
        "the platform stored more than this conversation"
    );
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

#[tokio::test]
async fn offered_slots_come_as_choices_in_events_and_history_and_a_pressed_choice_books_it() {
    let app = spawn_app().await;
    let s = session();
    let (mut events, _) = open_events(&app, &s).await;
    app.post_chat(app.demo_channel, &s, "c1", "Can I book a consultation?")
        .await;
    let seen: Vec<Value> = events
        .until(
            |n, v| n == "message" && v["role"] == "agent",
            Duration::from_secs(20),
        )
        .await
        .into_iter()
        .filter(|(n, _)| n == "message")
        .map(|(_, v)| v)
        .collect();
    let offer = seen.last().expect("an agent message");
    assert_eq!(offer["role"], "agent", "{seen:#?}");
    let choices = offer["choices"].as_array().expect("choices").clone();
    assert!(!choices.is_empty(), "slots offered as choices: {offer:#}");
    for c in &choices {
        assert!(c["id"].as_str().unwrap().starts_with("slot:"), "{c}");
        let label = c["label"].as_str().unwrap();
        assert!(!label.is_empty() && label.chars().count() <= 20, "{c}");
        assert_eq!(c["value"], c["label"], "a press sends what the button says");
    }
    // The customer's message carries no choices; the web chat still gets the text list too.
    assert_eq!(seen[0]["choices"], serde_json::json!([]));
    assert!(
        offer["text"].as_str().unwrap().contains("\n1. "),
        "{offer:#}"
    );

    // After a reload the history has the same choices.
    let history = history_body(&app, &s).await;
    assert_eq!(history["messages"][1]["choices"], offer["choices"]);

    // Pressing the second button sends its value: that slot is booked.
    let second = choices[1]["value"].as_str().unwrap();
    app.post_chat(app.demo_channel, &s, "c2", second).await;
    let h = app.wait_for_agent_replies(app.demo_channel, &s, 2).await;
    let confirm = h.last().unwrap();
    assert!(
        confirm["text"]
            .as_str()
            .unwrap()
            .starts_with("You're booked"),
        "{confirm:#}"
    );
    assert_eq!(confirm["choices"], serde_json::json!([]));
    let mut owner = app.owner().await;
    let starts: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT starts_at FROM bookings WHERE status = 'confirmed'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    let picked = choices[1]["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("slot:");
    assert_eq!(
        starts,
        picked.parse::<chrono::DateTime<chrono::Utc>>().unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_handoff_state_is_in_the_history_and_streamed_as_state_events() {
    let app = spawn_app().await;
    let layla = app
        .signed_in(
            "layla@sahara.example",
            "Layla Haddad",
            switchboard_core::store::identity::Role::SalesAgent,
        )
        .await;
    let s = session();
    let state_of = |v: &Value| v["handoff_state"].as_str().unwrap_or("").to_owned();

    // A session that has not written yet talks to the bot.
    let fresh = history_body(&app, &s).await;
    assert_eq!(fresh["state"]["handoff_state"], "bot", "{fresh:#}");
    assert_eq!(fresh["state"]["agent_typing"], false);

    // Asking for a person: the stream says `waiting` after the holding message.
    let (mut events, first) = open_events(&app, &s).await;
    assert_eq!(state_of(&first), "bot", "{first:#}");
    app.post_chat(
        app.demo_channel,
        &s,
        "h1",
        "I want to talk to a real person please",
    )
    .await;
    let seen = events
        .until(
            |name, v| name == "state" && v["handoff_state"] == "waiting",
            Duration::from_secs(20),
        )
        .await;
    let states: Vec<String> = seen
        .iter()
        .filter(|(n, _)| n == "state")
        .map(|(_, v)| state_of(v))
        .collect();
    assert_eq!(
        states.last().map(String::as_str),
        Some("waiting"),
        "{seen:#?}"
    );
    let holding = seen
        .iter()
        .position(|(n, v)| n == "message" && v["role"] == "agent")
        .expect("the holding message");
    let waiting = seen
        .iter()
        .position(|(n, v)| n == "state" && v["handoff_state"] == "waiting")
        .unwrap();
    assert!(
        holding < waiting,
        "the reply comes before its state: {seen:#?}"
    );
    let h = history_body(&app, &s).await;
    assert_eq!(h["state"]["handoff_state"], "waiting", "{h:#}");
    assert_eq!(h["state"]["human_name"], Value::Null);

    // A colleague claims it: `human`, with her first name (never her email address).
    let mut owner = app.owner().await;
    let conv: String = sqlx::query_scalar(
        "SELECT v.id::text FROM conversations v JOIN contacts k ON k.id = v.contact_id WHERE k.external_id = $1",
    )
    .bind(&s)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let (mut events, first) = open_events(&app, &s).await;
    assert_eq!(
        state_of(&first),
        "waiting",
        "a new stream starts with the current state"
    );
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{conv}/claim?tenant=demo"),
            Some(&layla),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The claim wakes the stream at once (well within the 10 s re-check).
    let seen = events
        .until(
            |name, v| name == "state" && v["handoff_state"] == "human",
            Duration::from_secs(5),
        )
        .await;
    let last = &seen.last().expect("events").1;
    assert_eq!(last["handoff_state"], "human", "{seen:#?}");
    assert_eq!(last["human_name"], "Layla");
    let h = history_body(&app, &s).await;
    assert_eq!(h["state"]["handoff_state"], "human");
    assert_eq!(h["state"]["human_name"], "Layla");

    // Handed back: `bot` again.
    let (mut events, _) = open_events(&app, &s).await;
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{conv}/handback?tenant=demo"),
            Some(&layla),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = events
        .until(
            |name, v| name == "state" && v["handoff_state"] == "bot",
            Duration::from_secs(5),
        )
        .await;
    let last = &seen.last().expect("events").1;
    assert_eq!(last["handoff_state"], "bot", "{seen:#?}");
    assert_eq!(last["human_name"], Value::Null);
    assert_eq!(
        history_body(&app, &s).await["state"]["handoff_state"],
        "bot"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_typing_state_is_on_while_the_agent_works_and_off_with_its_reply() {
    use std::sync::Arc;
    let app = spawn_app_with(
        |_| {},
        Some(Arc::new(|p: &switchboard_actors::FaultPoint<'_>| match p {
            switchboard_actors::FaultPoint::BeforeCommit { customer_text, .. }
                if customer_text.contains("warranty") =>
            {
                Some(Duration::from_millis(1500))
            }
            _ => None,
        })),
    )
    .await;
    let s = session();
    let (mut events, first) = open_events(&app, &s).await;
    assert_eq!(first["agent_typing"], false, "{first:#}");
    app.post_chat(app.demo_channel, &s, "t1", "Do you offer a warranty?")
        .await;
    // While the turn is held, the history says the agent is typing.
    assert!(
        eventually(Duration::from_secs(5), || async {
            history_body(&app, &s).await["state"]["agent_typing"] == true
        })
        .await,
        "agent_typing while the turn works"
    );
    let seen = events
        .until(
            |name, v| name == "state" && v["agent_typing"] == false,
            Duration::from_secs(20),
        )
        .await;
    let names: Vec<String> = seen
        .iter()
        .map(|(n, v)| match n.as_str() {
            "state" => format!("state:{}", v["agent_typing"]),
            _ => format!("{}:{}", n, v["role"].as_str().unwrap_or("")),
        })
        .collect();
    // The customer's message, typing, the reply, then not typing — the reply never after the
    // indicator went off.
    assert_eq!(
        names,
        [
            "message:customer",
            "state:true",
            "message:agent",
            "state:false"
        ],
        "{seen:#?}"
    );
    let h = history_body(&app, &s).await;
    assert_eq!(h["state"]["agent_typing"], false);
    app.stop().await;
}
