//! The live inbox: the tenant's event stream (customer messages, the agent's replies,
//! escalations and claims arrive as hints, and never another tenant's), the conversation list's
//! filters and paging against a scripted set, the transcript's authors and delivery states, the
//! escalation list's extra fields, and the analytics series against hand-counted buckets.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgConnection;
use switchboard_core::store::analytics::ModelPrice;
use switchboard_core::store::identity::Role;
use uuid::Uuid;

use crate::helpers::*;

/// A server-sent event stream being read.
struct Sse {
    stream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, path: &str, bearer: &str) -> Sse {
        let resp = app
            .http
            .get(app.url(path))
            .bearer_auth(bearer)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .expect("connect");
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Sse {
            stream: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event (name, data), or `None` when nothing came within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let end = tokio::time::Instant::now() + wait;
        loop {
            while let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let mut name = "message".to_owned();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.trim_start().to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // A keep-alive comment.
                }
                let v: Value = serde_json::from_str(&data.join("\n")).expect("JSON data");
                return Some((name, v));
            }
            match tokio::time::timeout_at(end, self.stream.next()).await {
                Ok(Some(Ok(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Reads events until one satisfies `want`; returns every event read (the last one is it).
    async fn until(&mut self, want: impl Fn(&str, &Value) -> bool) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        while let Some((name, data)) = self.next(Duration::from_secs(20)).await {
            let done = want(&name, &data);
            seen.push((name, data));
            if done {
                return seen;
            }
        }
        panic!("the awaited event never came; events: {seen:#?}");
    }
}

async fn conversation_of(app: &TestApp, external_id: &str) -> String {
    let mut c = app.owner().await;
    sqlx::query_scalar(
        "SELECT v.id::text FROM conversations v JOIN contacts k ON k.id = v.contact_id
          WHERE k.external_id = $1",
    )
    .bind(external_id)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

fn is_conversation(name: &str, data: &Value, id: &str, reason: &str) -> bool {
    name == "conversation" && data["conversation_id"] == id && data["reason"] == reason
}

#[tokio::test]
async fn the_event_stream_follows_messages_replies_escalations_and_claims_of_its_tenant_only() {
    let app = spawn_app().await;
    // A second tenant with its own web chat, listening too.
    let (status, other) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "other", "name": "Other", "default_language": "en"}),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let other_channel: switchboard_core::ChannelId = other["channels"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let viewer = app.api_key("demo", Role::Viewer).await;
    let other_viewer = app.api_key("other", Role::Viewer).await;
    let layla = app
        .signed_in("layla@sahara.example", "Layla", Role::SalesAgent)
        .await;

    let mut demo = Sse::open(&app, "/api/v1/inbox/events", &viewer).await;
    let mut foreign = Sse::open(&app, "/api/v1/inbox/events", &other_viewer).await;
    assert_eq!(
        demo.next(Duration::from_secs(5)).await,
        Some(("ready".into(), json!({})))
    );
    assert_eq!(
        foreign.next(Duration::from_secs(5)).await,
        Some(("ready".into(), json!({})))
    );

    // A new customer opens a conversation; the agent answers it.
    let s = session();
    let ch = app.demo_channel;
    let (status, _) = app
        .post_chat(ch, &s, "m1", "What are your opening hours?")
        .await;
    assert_eq!(status, 202);
    let conv = conversation_of(&app, &s).await;
    demo.until(|n, d| is_conversation(n, d, &conv, "created"))
        .await;
    demo.until(|n, d| is_conversation(n, d, &conv, "message"))
        .await;
    app.wait_for_agent_replies(ch, &s, 1).await;

    // A second message of the same conversation is a `message`, and so is the reply to it.
    app.post_chat(ch, &s, "m2", "And do you install batteries?")
        .await;
    let seen = demo
        .until(|n, d| is_conversation(n, d, &conv, "message"))
        .await;
    assert!(
        seen.iter()
            .all(|(n, d)| n == "conversation" && d["conversation_id"] == conv.as_str()),
        "{seen:#?}"
    );
    app.wait_for_agent_replies(ch, &s, 2).await;

    // Asking for a person opens an escalation: `escalation` waiting, and the new owner.
    app.post_chat(ch, &s, "m3", "I want to talk to a real person please")
        .await;
    let seen = demo
        .until(|n, d| n == "escalation" && d["conversation_id"] == conv.as_str())
        .await;
    let (_, escalation) = seen.last().unwrap().clone();
    assert_eq!(escalation["status"], "waiting", "{seen:#?}");
    let escalation_id = escalation["escalation_id"].as_str().unwrap().to_owned();
    demo.until(|n, d| is_conversation(n, d, &conv, "state"))
        .await;

    // A colleague claims it.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim"),
            Some(&layla),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = demo.until(|n, _| n == "escalation").await;
    assert_eq!(
        seen.last().unwrap().1,
        json!({"escalation_id": escalation_id, "conversation_id": conv, "status": "claimed"})
    );
    demo.until(|n, d| is_conversation(n, d, &conv, "state"))
        .await;

    // Her reply is a message; its delivery (web chat: at once) a delivery hint.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&layla),
            Some(json!({"text": "Hello, Layla here."})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    demo.until(|n, d| is_conversation(n, d, &conv, "message"))
        .await;
    demo.until(|n, d| is_conversation(n, d, &conv, "delivery"))
        .await;

    // The other tenant heard nothing of all that: its first hint is its own conversation.
    let t = session();
    let (status, _) = app.post_chat(other_channel, &t, "m1", "hello").await;
    assert_eq!(status, 202);
    let own = conversation_of(&app, &t).await;
    let seen = foreign
        .until(|n, d| is_conversation(n, d, &own, "created"))
        .await;
    assert_eq!(seen.len(), 1, "another tenant's hints leaked: {seen:#?}");
    // And the demo stream hears nothing of the other tenant's conversation.
    while let Some((n, d)) = demo.next(Duration::from_millis(1500)).await {
        assert_ne!(d["conversation_id"], own.as_str(), "{n}: {d}");
    }

    // Without a credential, or a wrong one, there is no stream.
    let (status, _) = app
        .call(Method::GET, "/api/v1/inbox/events", None, None)
        .await;
    assert_eq!(status, 401);
    app.stop().await;
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Writes conversations of a tenant at chosen instants with the owner connection.
struct Script {
    conn: PgConnection,
    tenant: Uuid,
}

/// A scripted conversation.
struct Conv<'a> {
    channel: Uuid,
    name: &'a str,
    status: &'a str,
    handoff: &'a str,
    language: Option<&'a str>,
    lead_score: Option<i32>,
    last_message_at: &'a str,
}

impl Script {
    async fn channel(&mut self, kind: &str, name: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO channels (id, tenant_id, kind, name) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(self.tenant)
            .bind(kind)
            .bind(name)
            .execute(&mut self.conn)
            .await
            .unwrap();
        id
    }

    async fn conversation(&mut self, c: Conv<'_>) -> Uuid {
        let (contact, conversation) = (Uuid::now_v7(), Uuid::now_v7());
        sqlx::query(
            "INSERT INTO contacts (id, tenant_id, channel_id, external_id, display_name, lead_score,
                                   lead_created_at)
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6 IS NULL THEN NULL ELSE now() END)",
        )
        .bind(contact)
        .bind(self.tenant)
        .bind(c.channel)
        .bind(format!("ext-{}", c.name))
        .bind(c.name)
        .bind(c.lead_score)
        .execute(&mut self.conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, status, handoff_state,
                                        language, last_message_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(conversation)
        .bind(self.tenant)
        .bind(c.channel)
        .bind(contact)
        .bind(c.status)
        .bind(c.handoff)
        .bind(c.language)
        .bind(t(c.last_message_at))
        .execute(&mut self.conn)
        .await
        .unwrap();
        conversation
    }

    /// A message; returns its id.
    async fn message(
        &mut self,
        conversation: Uuid,
        role: &str,
        text: &str,
        metadata: Value,
        at: &str,
    ) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, role, text, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(conversation)
        .bind(role)
        .bind(text)
        .bind(metadata)
        .bind(t(at))
        .execute(&mut self.conn)
        .await
        .unwrap();
        id
    }

    /// The outbox row of an outgoing message: its status, delivery status and error.
    async fn outbox(
        &mut self,
        channel: Uuid,
        conversation: Uuid,
        message: Uuid,
        status: &str,
        delivery: Option<&str>,
        error: Option<&str>,
    ) {
        sqlx::query(
            "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id,
                                 idempotency_key, payload, status, delivery_status, last_error)
             VALUES ($1, $2, $3, $4, $5, $1::text, '{}', $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant)
        .bind(channel)
        .bind(conversation)
        .bind(message)
        .bind(status)
        .bind(delivery)
        .bind(error)
        .execute(&mut self.conn)
        .await
        .unwrap();
    }

    /// An escalation; `claimed`: by whom and how many seconds after its creation.
    async fn escalation(
        &mut self,
        conversation: Uuid,
        status: &str,
        created: DateTime<Utc>,
        claimed: Option<(&str, i64)>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO escalations (id, tenant_id, conversation_id, trigger, reason, status,
                                      request_key, created_at, claimed_by, claimed_at)
             VALUES ($1, $2, $3, 'customer', 'the customer asked for a person', $4, $1::text,
                     $5, $6, $7)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(conversation)
        .bind(status)
        .bind(created)
        .bind(claimed.map(|c| c.0))
        .bind(claimed.map(|c| created + chrono::Duration::seconds(c.1)))
        .execute(&mut self.conn)
        .await
        .unwrap();
        id
    }
}

async fn list(app: &TestApp, query: &str, bearer: &str) -> Vec<Value> {
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations?{query}"),
            Some(bearer),
            None,
        )
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body["conversations"].as_array().unwrap().clone()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn conversation_filters_select_exactly_the_scripted_conversations() {
    let app = spawn_app().await;
    let layla = app
        .signed_in("layla@sahara.example", "Layla", Role::SalesAgent)
        .await;
    let key = app.api_key("demo", Role::SalesAgent).await;
    let mut s = Script {
        conn: app.owner().await,
        tenant: app.demo_tenant.0,
    };
    let web = app.demo_channel.0;
    let web_name: String = sqlx::query_scalar("SELECT name FROM channels WHERE id = $1")
        .bind(web)
        .fetch_one(&mut s.conn)
        .await
        .unwrap();
    let second = s.channel("webchat", "Second chat").await;
    let long = "x".repeat(250);
    let now = Utc::now();

    // Newest activity first: E, D, C, B, A.
    let a = s
        .conversation(Conv {
            channel: web,
            name: "Amal",
            status: "open",
            handoff: "bot",
            language: Some("en"),
            lead_score: None,
            last_message_at: "2026-12-01T10:00:00Z",
        })
        .await;
    s.message(a, "customer", "hi", json!({}), "2026-12-01T09:59:00Z")
        .await;
    s.message(a, "agent", &long, json!({}), "2026-12-01T10:00:00Z")
        .await;
    s.message(a, "system", "a note", json!({}), "2026-12-01T10:00:01Z")
        .await;
    let b = s
        .conversation(Conv {
            channel: web,
            name: "Badr",
            status: "open",
            handoff: "waiting",
            language: Some("ar"),
            lead_score: Some(80),
            last_message_at: "2026-12-01T11:00:00Z",
        })
        .await;
    s.message(
        b,
        "customer",
        "أريد التحدث إلى شخص",
        json!({}),
        "2026-12-01T11:00:00Z",
    )
    .await;
    let b_created = now - chrono::Duration::seconds(600);
    let b_escalation = s.escalation(b, "waiting", b_created, None).await;
    let c = s
        .conversation(Conv {
            channel: second,
            name: "Chadi",
            status: "open",
            handoff: "human",
            language: Some("en"),
            lead_score: None,
            last_message_at: "2026-12-01T12:00:00Z",
        })
        .await;
    s.message(c, "customer", "help", json!({}), "2026-12-01T11:58:00Z")
        .await;
    let c_human = s
        .message(
            c,
            "human",
            "On it",
            json!({"author": "Layla"}),
            "2026-12-01T11:59:00Z",
        )
        .await;
    s.outbox(second, c, c_human, "sent", Some("delivered"), None)
        .await;
    let c_agent = s
        .message(c, "agent", "queued one", json!({}), "2026-12-01T11:59:30Z")
        .await;
    s.outbox(second, c, c_agent, "pending", None, None).await;
    let c_failed = s
        .message(
            c,
            "human",
            "lost one",
            json!({"author": "Layla"}),
            "2026-12-01T12:00:00Z",
        )
        .await;
    s.outbox(
        second,
        c,
        c_failed,
        "failed",
        None,
        Some("permanent delivery failure: bad number"),
    )
    .await;
    let c_created = t("2026-12-01T11:58:00Z");
    s.escalation(c, "claimed", c_created, Some(("Layla", 120)))
        .await;
    let d = s
        .conversation(Conv {
            channel: second,
            name: "Dina",
            status: "open",
            handoff: "human",
            language: None,
            lead_score: Some(30),
            last_message_at: "2026-12-01T13:00:00Z",
        })
        .await;
    s.escalation(d, "claimed", t("2026-12-01T12:30:00Z"), Some(("Omar", 60)))
        .await;
    let e = s
        .conversation(Conv {
            channel: web,
            name: "Elias",
            status: "closed",
            handoff: "bot",
            language: Some("ar"),
            lead_score: None,
            last_message_at: "2026-12-01T14:00:00Z",
        })
        .await;
    let (a, b, c, d, e) = (
        a.to_string(),
        b.to_string(),
        c.to_string(),
        d.to_string(),
        e.to_string(),
    );

    let all = list(&app, "", &key).await;
    assert_eq!(ids(&all), [&*e, &*d, &*c, &*b, &*a]);
    let cases: Vec<(String, Vec<&String>)> = vec![
        ("state=bot".into(), vec![&a]),
        ("handoff_state=bot".into(), vec![&e, &a]),
        ("state=waiting".into(), vec![&b]),
        ("state=human".into(), vec![&d, &c]),
        ("state=closed".into(), vec![&e]),
        (format!("channel={second}"), vec![&d, &c]),
        (format!("channel={web}&state=waiting"), vec![&b]),
        ("language=ar".into(), vec![&e, &b]),
        ("language=en&state=human".into(), vec![&c]),
        ("limit=2".into(), vec![&e, &d]),
        ("before=2026-12-01T12:00:00Z".into(), vec![&b, &a]),
        (
            format!("before=2026-12-01T13:00:00Z&before_id={d}"),
            vec![&c, &b, &a],
        ),
    ];
    for (query, want) in &cases {
        let got = ids(&list(&app, query, &key).await);
        let want: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, want, "{query}");
    }
    // `assigned=me`: what the caller claimed — Layla's conversation for her, nothing for a key
    // that claimed nothing.
    assert_eq!(ids(&list(&app, "assigned=me", &layla).await), [&*c]);
    assert!(list(&app, "assigned=me", &key).await.is_empty());
    // Paging with the cursor of each page's last row visits every conversation once.
    let mut paged = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = list(&app, &query, &key).await;
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        query = format!(
            "limit=2&before={}&before_id={}",
            urlencode(last["last_message_at"].as_str().unwrap()),
            last["id"].as_str().unwrap()
        );
        paged.extend(ids(&page));
    }
    assert_eq!(paged, ids(&all));

    // What each row shows.
    let row = |id: &str| all.iter().find(|r| r["id"] == id).unwrap().clone();
    let ra = row(&a);
    assert_eq!(ra["channel_name"], web_name.as_str());
    assert_eq!(
        ra["last_message"]["role"], "agent",
        "system notes are left out"
    );
    assert_eq!(ra["last_message"]["text"], "x".repeat(200));
    assert_eq!(ra["last_message"]["at"], "2026-12-01T10:00:00Z");
    assert_eq!(ra["escalation"], Value::Null);
    assert_eq!(ra["waiting_since"], Value::Null);
    assert_eq!(ra["language"], "en");
    let rb = row(&b);
    assert_eq!(rb["escalation"]["id"], b_escalation.to_string());
    assert_eq!(rb["escalation"]["status"], "waiting");
    assert_eq!(rb["escalation"]["lead_score"], 80);
    assert_eq!(
        rb["escalation"]["reason"],
        "the customer asked for a person"
    );
    assert_eq!(
        rb["waiting_since"].as_str().map(t),
        DateTime::from_timestamp_micros(b_created.timestamp_micros())
    );
    assert_eq!(rb["assigned_to"], Value::Null);
    assert_eq!(rb["contact"]["name"], "Badr");
    let rc = row(&c);
    assert_eq!(rc["channel_name"], "Second chat");
    assert_eq!(rc["assigned_to"], "Layla");
    assert_eq!(rc["waiting_since"], Value::Null, "claimed: nobody waits");
    assert_eq!(rc["escalation"]["status"], "claimed");
    assert_eq!(rc["last_message"]["role"], "human");
    assert_eq!(row(&d)["language"], Value::Null);

    // Bad values are JSON 400s naming the parameter.
    for (query, code) in [
        ("state=open", "invalid_state"),
        ("handoff_state=closed", "invalid_handoff_state"),
        ("channel=web", "invalid_channel"),
        ("assigned=omar", "invalid_assigned"),
        ("language=e%20n", "invalid_language"),
        ("limit=0", "invalid_limit"),
        ("limit=many", "invalid_limit"),
        ("before=yesterday", "invalid_before"),
        ("before_id=x", "invalid_before"),
    ] {
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/api/v1/conversations?{query}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
    }

    // The transcript: authors of human replies, and delivery states as the outbox has them.
    let (status, detail) = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{c}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let m: Vec<(Value, Value, Value, Value)> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].clone(),
                m["author"].clone(),
                m["delivery"].clone(),
                m["delivery_error"].clone(),
            )
        })
        .collect();
    assert_eq!(
        m,
        vec![
            (json!("customer"), Value::Null, Value::Null, Value::Null),
            (
                json!("human"),
                json!("Layla"),
                json!("delivered"),
                Value::Null
            ),
            (json!("agent"), Value::Null, json!("queued"), Value::Null),
            (
                json!("human"),
                json!("Layla"),
                json!("failed"),
                json!("permanent delivery failure: bad number")
            ),
        ]
    );
    assert!(detail["messages"][0]["created_at"].is_string());
    assert_eq!(detail["messages"][1]["text"], "On it");

    // Escalations list their channel, customer, lead score and wait.
    let (status, list) = app
        .call(Method::GET, "/api/v1/escalations", Some(&key), None)
        .await;
    assert_eq!(status, 200, "{list}");
    let item = |conv: &str| {
        list["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["conversation_id"] == conv)
            .unwrap()
            .clone()
    };
    let eb = item(&b);
    assert_eq!(eb["channel"], "webchat");
    assert_eq!(eb["contact_name"], "Badr");
    assert_eq!(eb["lead_score"], 80);
    let waited = eb["waiting_seconds"].as_i64().unwrap();
    assert!((600..700).contains(&waited), "{eb}");
    let ec = item(&c);
    assert_eq!(ec["channel_name"], "Second chat");
    assert_eq!(ec["waiting_seconds"], 120, "until the claim");
    assert_eq!(ec["lead_score"], Value::Null);
    assert_eq!(ec["claimed_by"], "Layla");
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A tenant `acme` of the analytics series: two channels and a third-party tenant whose rows
/// must not count.
///
/// ```text
/// W  C1  11-01 10:00:00 c, 10:00:02 a, 10:01:00 c, 10:01:04 a   bot 2 s, 4 s; 1000+500 tokens
///        11-03 09:00:00 c, 09:00:06 a                           bot 6 s
/// W  C2  11-01 12:00:00 c, 12:00:10 a; escalation 12:00:10, resolved 12:30; 12:05:10 h
///                                                              bot 10 s, human 300 s
/// W  C3  11-03 15:00:00 c (never answered); 200+100 tokens of an unpriced model
/// T  C4  11-01 08:00:00 c, 08:00:20 a                           bot 20 s
/// other  11-01 10:00:00 c, 10:00:01 a (another tenant)
/// ```
#[tokio::test]
async fn the_analytics_series_buckets_equal_hand_counted_figures() {
    let app = spawn_app_with(
        |s| {
            s.analytics.prices.insert(
                "acme-llm".into(),
                ModelPrice {
                    input_per_million: 3.0,
                    output_per_million: 5.0,
                },
            );
        },
        None,
    )
    .await;
    let (status, body) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "acme", "name": "Acme", "default_language": "en"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let acme: Uuid = body["tenant"]["id"].as_str().unwrap().parse().unwrap();
    let mut s = Script {
        conn: app.owner().await,
        tenant: acme,
    };
    let w = s.channel("webchat", "W").await;
    let tg = s.channel("telegram", "T").await;
    let conv = |channel, name| Conv {
        channel,
        name,
        status: "open",
        handoff: "bot",
        language: None,
        lead_score: None,
        last_message_at: "2026-11-03T15:00:00Z",
    };
    let c1 = s.conversation(conv(w, "c1")).await;
    for (role, at) in [
        ("customer", "2026-11-01T10:00:00Z"),
        ("agent", "2026-11-01T10:00:02Z"),
        ("customer", "2026-11-01T10:01:00Z"),
        ("agent", "2026-11-01T10:01:04Z"),
        ("customer", "2026-11-03T09:00:00Z"),
        ("agent", "2026-11-03T09:00:06Z"),
    ] {
        s.message(c1, role, "text", json!({}), at).await;
    }
    let c2 = s.conversation(conv(w, "c2")).await;
    for (role, at) in [
        ("customer", "2026-11-01T12:00:00Z"),
        ("agent", "2026-11-01T12:00:10Z"),
        ("human", "2026-11-01T12:05:10Z"),
    ] {
        s.message(c2, role, "text", json!({}), at).await;
    }
    sqlx::query(
        "INSERT INTO escalations (id, tenant_id, conversation_id, trigger, reason, status,
                                  request_key, created_at, resolved_at)
         VALUES ($1, $2, $3, 'customer', 'r', 'resolved', $1::text, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(acme)
    .bind(c2)
    .bind(t("2026-11-01T12:00:10Z"))
    .bind(t("2026-11-01T12:30:00Z"))
    .execute(&mut s.conn)
    .await
    .unwrap();
    let c3 = s.conversation(conv(w, "c3")).await;
    s.message(c3, "customer", "text", json!({}), "2026-11-03T15:00:00Z")
        .await;
    let c4 = s.conversation(conv(tg, "c4")).await;
    s.message(c4, "customer", "text", json!({}), "2026-11-01T08:00:00Z")
        .await;
    s.message(c4, "agent", "text", json!({}), "2026-11-01T08:00:20Z")
        .await;
    for (c, model, (input, output), at) in [
        (c1, "acme-llm", (1000, 500), "2026-11-01T10:00:01Z"),
        (c3, "unpriced-llm", (200, 100), "2026-11-03T15:00:01Z"),
    ] {
        sqlx::query(
            "INSERT INTO llm_usage (id, tenant_id, conversation_id, purpose, model, prompt_tokens,
                                    completion_tokens, created_at)
             VALUES ($1, $2, $3, 'reply', $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(acme)
        .bind(c)
        .bind(model)
        .bind(input)
        .bind(output)
        .bind(t(at))
        .execute(&mut s.conn)
        .await
        .unwrap();
    }
    // Another tenant's conversation in the same hour: it must count nowhere.
    let mut o = Script {
        conn: app.owner().await,
        tenant: app.demo_tenant.0,
    };
    let oc = o.conversation(conv(app.demo_channel.0, "other")).await;
    o.message(oc, "customer", "text", json!({}), "2026-11-01T10:00:00Z")
        .await;
    o.message(oc, "agent", "text", json!({}), "2026-11-01T10:00:01Z")
        .await;

    let series = |query: String| {
        let app = &app;
        async move {
            let (status, body) = app
                .admin_get(&format!("/api/v1/analytics/series?tenant=acme&{query}"))
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    let close = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
        assert!((got - want).abs() < 1e-9, "{got} ≠ {want}");
    };

    let days = series("from=2026-11-01&to=2026-11-04&bucket=day".into()).await;
    assert_eq!(days["bucket"], "day");
    let p = days["points"].as_array().unwrap();
    let starts: Vec<&str> = p.iter().map(|p| p["start"].as_str().unwrap()).collect();
    assert_eq!(
        starts,
        [
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            "2026-11-03T00:00:00Z"
        ]
    );
    // 11-01: C1, C2, C4 active. Customer 2 + 1 + 1 = 4, agent 2 + 1 + 1 = 4, human 1.
    let d1 = &p[0];
    assert_eq!(d1["conversations"], 3, "{d1}");
    assert_eq!(
        (
            &d1["customer_messages"],
            &d1["agent_messages"],
            &d1["human_messages"]
        ),
        (&json!(4), &json!(4), &json!(1))
    );
    // Resolved: C1 and C4 (C2 was escalated and a human wrote): 2/3; handed off: C2, 1/3.
    close(&d1["resolution_rate"], 2.0 / 3.0);
    close(&d1["handoff_rate"], 1.0 / 3.0);
    // Bot waits 2, 4, 10, 20 s: median (4 + 10) / 2 = 7 s. Human: 12:00:10 → 12:05:10.
    close(&d1["bot_first_response_p50_ms"], 7000.0);
    close(&d1["human_first_response_p50_ms"], 300_000.0);
    // 1500 tokens: 1000 × 3 / 1e6 + 500 × 5 / 1e6 = 0.0055 USD.
    assert_eq!(d1["tokens"], 1500);
    close(&d1["cost"], 0.0055);
    // 11-02: nothing happened; counts are zeros, rates and medians undefined.
    let d2 = &p[1];
    assert_eq!(
        d2,
        &json!({"start": "2026-11-02T00:00:00Z", "conversations": 0, "customer_messages": 0,
                "agent_messages": 0, "human_messages": 0, "resolution_rate": null,
                "handoff_rate": null, "bot_first_response_p50_ms": null,
                "human_first_response_p50_ms": null, "tokens": 0, "cost": 0.0})
    );
    // 11-03: C1 (answered in 6 s, resolved) and C3 (unanswered, not resolved).
    let d3 = &p[2];
    assert_eq!(d3["conversations"], 2);
    assert_eq!(
        (
            &d3["customer_messages"],
            &d3["agent_messages"],
            &d3["human_messages"]
        ),
        (&json!(2), &json!(1), &json!(0))
    );
    close(&d3["resolution_rate"], 0.5);
    close(&d3["handoff_rate"], 0.0);
    close(&d3["bot_first_response_p50_ms"], 6000.0);
    assert_eq!(d3["human_first_response_p50_ms"], Value::Null);
    // 300 tokens of a model without a price: counted, not priced.
    assert_eq!(d3["tokens"], 300);
    close(&d3["cost"], 0.0);

    // Web chat only: C4 (Telegram) drops out of 11-01.
    let web = series(format!("from=2026-11-01&to=2026-11-02&channel={w}")).await;
    let d1 = &web["points"][0];
    assert_eq!(web["points"].as_array().unwrap().len(), 1);
    assert_eq!(d1["conversations"], 2);
    assert_eq!(d1["customer_messages"], 3);
    close(&d1["resolution_rate"], 0.5);
    close(&d1["handoff_rate"], 0.5);
    // Waits 2, 4, 10 s.
    close(&d1["bot_first_response_p50_ms"], 4000.0);

    // Hours of 11-01 from 10:00 to 13:00.
    let hours =
        series("from=2026-11-01T10:00:00Z&to=2026-11-01T13:00:00Z&bucket=hour".into()).await;
    let p = hours["points"].as_array().unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(
        (
            &p[0]["conversations"],
            &p[0]["customer_messages"],
            &p[0]["agent_messages"]
        ),
        (&json!(1), &json!(2), &json!(2))
    );
    close(&p[0]["bot_first_response_p50_ms"], 3000.0);
    close(&p[0]["resolution_rate"], 1.0);
    assert_eq!(p[1]["conversations"], 0);
    assert_eq!(p[1]["start"], "2026-11-01T11:00:00Z");
    assert_eq!(
        (&p[2]["conversations"], &p[2]["human_messages"]),
        (&json!(1), &json!(1))
    );
    close(&p[2]["handoff_rate"], 1.0);
    close(&p[2]["resolution_rate"], 0.0);
    close(&p[2]["human_first_response_p50_ms"], 300_000.0);

    // Refusals.
    for (query, status_code, code) in [
        (
            "from=2026-11-01&to=2026-11-04&bucket=week",
            400,
            "invalid_bucket",
        ),
        (
            "from=2026-01-01&to=2026-02-01&bucket=hour",
            400,
            "too_many_buckets",
        ),
        ("from=2026-11-04&to=2026-11-01", 422, "invalid_range"),
        (
            "from=2026-11-01&to=2026-11-04&channel=nope",
            400,
            "invalid_channel",
        ),
    ] {
        let (status, body) = app
            .admin_get(&format!("/api/v1/analytics/series?tenant=acme&{query}"))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (status_code, Some(code)),
            "{query}: {body}"
        );
    }
    app.stop().await;
}
