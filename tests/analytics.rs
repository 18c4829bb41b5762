//! Analytics against a scripted month: two tenants' conversations, messages, escalations,
//! bookings, leads and model usage are written with the owner connection at known instants
//! (real SQL on the real schema), and `GET /api/v1/analytics` must answer figures worked out by
//! hand below — each expected number carries its arithmetic in a comment, none is recomputed
//! with the SQL under test.
//!
//! Tenant `acme` has three channels: W (web chat), T (Telegram) and E (email, silent). Tenant
//! `other` has one channel with large numbers everywhere, so a leak into `acme` would show.
//! The range under test is November 2026: `from=2026-11-01`, `to=2026-12-01` (exclusive).
//!
//! Conversations of `acme` (times UTC; `c` customer, `a` agent, `h` human, `s` system):
//!
//! ```text
//! W  C1  11-02 10:00:00 c, 10:00:02 a, 10:01:00 c, 10:01:04 a          bot waits 2 s, 4 s
//! W  C2  11-03 09:00:00 c, 09:00:10 a; escalation (customer) 09:00:10, resolved 09:30;
//!        09:05:10 h, 09:06:00 c, 09:07:00 h                           bot 10 s; human 300 s
//! W  C3  10-31 23:59:00 c, 23:59:30 a (October); 11-05 12:00:00 c, 12:00:03 c, 12:00:20 a
//!                                                                     bot 20 s (one wait)
//! W  C4  10-20 10:00:00 c, 10:00:30 a; escalation (customer) 10:00:30, resolved 11:00;
//!        10:10:30 h                                                   October only
//! W  C5  11-07 08:00:00 c, 08:01:00 a (technical holding message)    bot 60 s
//! T  C6  10-30 11:59:00 c, 12:00:00 a; escalation (keyword) 10-30 12:00:00, still claimed;
//!        11-10 15:00:00 c, 15:10:00 h
//! T  C7  11-12 10:00:00 c, 10:00:06 a                                 bot 6 s
//! T  C8  11-20 16:00:00 c, 16:00:08 a; escalation (tool) 16:00:08, waiting; 16:30:00 c
//!                                                                     bot 8 s + 1 unanswered
//! T  C9  11-25 09:00:00 c, 09:00:05 a; escalation (admin) 09:10:00, resolved 09:20;
//!        09:10:00 h                                                   bot 5 s
//! T  C10 11-30 23:59:59 c, 12-01 00:00:00 c, 12-01 00:00:04 a         bot 5 s
//! T  C11 11-15 14:00:00 c, 14:00:03 a; escalation (keyword) 14:00:03, resolved 15:00;
//!        14:02:03 h, 14:59:00 s                                       bot 3 s; human 120 s
//! ```

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;
use switchboard_core::store::analytics::ModelPrice;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, TestApp};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// Writes a tenant's rows at chosen instants with the owner connection.
struct Script {
    conn: PgConnection,
    tenant: Uuid,
}

impl Script {
    async fn tenant(conn: PgConnection, slug: &str) -> Script {
        let mut s = Script {
            conn,
            tenant: Uuid::now_v7(),
        };
        sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)")
            .bind(s.tenant)
            .bind(slug)
            .execute(&mut s.conn)
            .await
            .unwrap();
        s
    }

    async fn channel(&mut self, kind: &str, name: &str, created: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO channels (id, tenant_id, kind, name, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(kind)
        .bind(name)
        .bind(t(created))
        .execute(&mut self.conn)
        .await
        .unwrap();
        id
    }

    /// A contact and its conversation; `lead`: the contact's score and when it became a lead.
    async fn conversation(&mut self, channel: Uuid, lead: Option<(i32, &str)>) -> (Uuid, Uuid) {
        let (contact, conversation) = (Uuid::now_v7(), Uuid::now_v7());
        sqlx::query(
            "INSERT INTO contacts (id, tenant_id, channel_id, external_id, lead_score,
                                   lead_created_at, lead_updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(contact)
        .bind(self.tenant)
        .bind(channel)
        .bind(contact.to_string())
        .bind(lead.map(|l| l.0))
        .bind(lead.map(|l| t(l.1)))
        .execute(&mut self.conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(conversation)
        .bind(self.tenant)
        .bind(channel)
        .bind(contact)
        .execute(&mut self.conn)
        .await
        .unwrap();
        (conversation, contact)
    }

    /// Messages in the order given (their `seq` follows it), each `(role, instant)`.
    async fn messages(&mut self, conversation: Uuid, list: &[(&str, &str)]) {
        for (role, at) in list {
            let metadata = if *role == "holding" {
                json!({"event": "technical_holding"})
            } else {
                json!({})
            };
            let role = if *role == "holding" { "agent" } else { role };
            sqlx::query(
                "INSERT INTO messages (id, tenant_id, conversation_id, role, text, metadata, created_at)
                 VALUES ($1, $2, $3, $4, 'text', $5, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(self.tenant)
            .bind(conversation)
            .bind(role)
            .bind(metadata)
            .bind(t(at))
            .execute(&mut self.conn)
            .await
            .unwrap();
        }
    }

    async fn escalation(
        &mut self,
        conversation: Uuid,
        trigger: &str,
        created: &str,
        resolved: Option<&str>,
    ) {
        sqlx::query(
            "INSERT INTO escalations (id, tenant_id, conversation_id, trigger, reason, status,
                                      request_key, created_at, resolved_at)
             VALUES ($1, $2, $3, $4, 'scripted', $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant)
        .bind(conversation)
        .bind(trigger)
        .bind(if resolved.is_some() {
            "resolved"
        } else {
            "claimed"
        })
        .bind(Uuid::now_v7().to_string())
        .bind(t(created))
        .bind(resolved.map(t))
        .execute(&mut self.conn)
        .await
        .unwrap();
    }

    /// A booking of `conversation` (`None`: made by an admin) starting at `starts`, created at
    /// `created`, cancelled at `cancelled`, moved from `from`. Returns its id.
    async fn booking(
        &mut self,
        conversation: Option<(Uuid, Uuid)>,
        starts: &str,
        created: &str,
        cancelled: Option<(&str, &str)>,
        from: Option<Uuid>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let starts = t(starts);
        let ends = starts + chrono::Duration::minutes(30);
        sqlx::query(
            "INSERT INTO bookings (id, tenant_id, conversation_id, contact_id, starts_at, ends_at,
                                   hold, status, ics_uid, idempotency_key, title, timezone,
                                   created_at, cancelled_at, cancel_reason, rescheduled_from)
             VALUES ($1, $2, $3, $4, $5, $6, tstzrange($5, $6), $7, $8, $8, 'Consultation',
                     'UTC', $9, $10, $11, $12)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(conversation.map(|c| c.0))
        .bind(conversation.map(|c| c.1))
        .bind(starts)
        .bind(ends)
        .bind(if cancelled.is_some() {
            "cancelled"
        } else {
            "confirmed"
        })
        .bind(id.to_string())
        .bind(t(created))
        .bind(cancelled.map(|c| t(c.0)))
        .bind(cancelled.map(|c| c.1))
        .bind(from)
        .execute(&mut self.conn)
        .await
        .unwrap();
        id
    }

    async fn usage(
        &mut self,
        conversation: Option<Uuid>,
        purpose: &str,
        model: &str,
        tokens: (i32, i32),
        at: &str,
    ) {
        sqlx::query(
            "INSERT INTO llm_usage (id, tenant_id, conversation_id, purpose, model, prompt_tokens,
                                    completion_tokens, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant)
        .bind(conversation)
        .bind(purpose)
        .bind(model)
        .bind(tokens.0)
        .bind(tokens.1)
        .bind(t(at))
        .execute(&mut self.conn)
        .await
        .unwrap();
    }
}

/// The channels the script created.
struct World {
    w: Uuid,
    t: Uuid,
    e: Uuid,
    other_channel: Uuid,
}

async fn script(app: &TestApp) -> World {
    let mut a = Script::tenant(app.owner().await, "acme").await;
    let w = a
        .channel("webchat", "Website chat", "2026-01-01T00:00:00Z")
        .await;
    let tg = a
        .channel("telegram", "Telegram bot", "2026-01-02T00:00:00Z")
        .await;
    let e = a
        .channel("email", "Support inbox", "2026-01-03T00:00:00Z")
        .await;

    // Web chat. Leads: C1 80 (hot), C2 45 (warm), C3 75 but a lead since October (not new in
    // November), C5 10 (cold).
    let c1 = a.conversation(w, Some((80, "2026-11-02T10:01:00Z"))).await;
    a.messages(
        c1.0,
        &[
            ("customer", "2026-11-02T10:00:00Z"),
            ("agent", "2026-11-02T10:00:02Z"),
            ("customer", "2026-11-02T10:01:00Z"),
            ("agent", "2026-11-02T10:01:04Z"),
        ],
    )
    .await;
    let c2 = a.conversation(w, Some((45, "2026-11-03T09:00:00Z"))).await;
    a.messages(
        c2.0,
        &[
            ("customer", "2026-11-03T09:00:00Z"),
            ("agent", "2026-11-03T09:00:10Z"),
            ("human", "2026-11-03T09:05:10Z"),
            ("customer", "2026-11-03T09:06:00Z"),
            ("human", "2026-11-03T09:07:00Z"),
        ],
    )
    .await;
    a.escalation(
        c2.0,
        "customer",
        "2026-11-03T09:00:10Z",
        Some("2026-11-03T09:30:00Z"),
    )
    .await;
    let c3 = a.conversation(w, Some((75, "2026-10-15T00:00:00Z"))).await;
    a.messages(
        c3.0,
        &[
            ("customer", "2026-10-31T23:59:00Z"),
            ("agent", "2026-10-31T23:59:30Z"),
            ("customer", "2026-11-05T12:00:00Z"),
            ("customer", "2026-11-05T12:00:03Z"),
            ("agent", "2026-11-05T12:00:20Z"),
        ],
    )
    .await;
    let c4 = a.conversation(w, None).await;
    a.messages(
        c4.0,
        &[
            ("customer", "2026-10-20T10:00:00Z"),
            ("agent", "2026-10-20T10:00:30Z"),
            ("human", "2026-10-20T10:10:30Z"),
        ],
    )
    .await;
    a.escalation(
        c4.0,
        "customer",
        "2026-10-20T10:00:30Z",
        Some("2026-10-20T11:00:00Z"),
    )
    .await;
    let c5 = a.conversation(w, Some((10, "2026-11-07T08:00:00Z"))).await;
    a.messages(
        c5.0,
        &[
            ("customer", "2026-11-07T08:00:00Z"),
            ("holding", "2026-11-07T08:01:00Z"),
        ],
    )
    .await;

    // Telegram. Leads: C7 70 (hot), C8 39 (cold), C9 40 (warm), C10 95 (hot).
    let c6 = a.conversation(tg, None).await;
    a.messages(
        c6.0,
        &[
            ("customer", "2026-10-30T11:59:00Z"),
            ("agent", "2026-10-30T12:00:00Z"),
            ("customer", "2026-11-10T15:00:00Z"),
            ("human", "2026-11-10T15:10:00Z"),
        ],
    )
    .await;
    a.escalation(c6.0, "keyword", "2026-10-30T12:00:00Z", None)
        .await;
    let c7 = a.conversation(tg, Some((70, "2026-11-12T10:00:00Z"))).await;
    a.messages(
        c7.0,
        &[
            ("customer", "2026-11-12T10:00:00Z"),
            ("agent", "2026-11-12T10:00:06Z"),
        ],
    )
    .await;
    let c8 = a.conversation(tg, Some((39, "2026-11-20T16:00:00Z"))).await;
    a.messages(
        c8.0,
        &[
            ("customer", "2026-11-20T16:00:00Z"),
            ("agent", "2026-11-20T16:00:08Z"),
            ("customer", "2026-11-20T16:30:00Z"),
        ],
    )
    .await;
    a.escalation(c8.0, "tool", "2026-11-20T16:00:08Z", None)
        .await;
    let c9 = a.conversation(tg, Some((40, "2026-11-25T09:00:00Z"))).await;
    a.messages(
        c9.0,
        &[
            ("customer", "2026-11-25T09:00:00Z"),
            ("agent", "2026-11-25T09:00:05Z"),
            ("human", "2026-11-25T09:10:00Z"),
        ],
    )
    .await;
    a.escalation(
        c9.0,
        "admin",
        "2026-11-25T09:10:00Z",
        Some("2026-11-25T09:20:00Z"),
    )
    .await;
    let c10 = a.conversation(tg, Some((95, "2026-11-30T23:59:59Z"))).await;
    a.messages(
        c10.0,
        &[
            ("customer", "2026-11-30T23:59:59Z"),
            ("customer", "2026-12-01T00:00:00Z"),
            ("agent", "2026-12-01T00:00:04Z"),
        ],
    )
    .await;
    let c11 = a.conversation(tg, None).await;
    a.messages(
        c11.0,
        &[
            ("customer", "2026-11-15T14:00:00Z"),
            ("agent", "2026-11-15T14:00:03Z"),
            ("human", "2026-11-15T14:02:03Z"),
            ("system", "2026-11-15T14:59:00Z"),
        ],
    )
    .await;
    a.escalation(
        c11.0,
        "keyword",
        "2026-11-15T14:00:03Z",
        Some("2026-11-15T15:00:00Z"),
    )
    .await;

    // Bookings: K1 made (W); K2 made and cancelled (T); K3 made in October, cancelled in
    // November (W); K4 made (T) and moved to K5; K6 made by an admin (no conversation); K7 made
    // in December (W).
    a.booking(
        Some(c1),
        "2026-12-10T09:00:00Z",
        "2026-11-02T10:02:00Z",
        None,
        None,
    )
    .await;
    a.booking(
        Some(c7),
        "2026-12-11T09:00:00Z",
        "2026-11-12T10:01:00Z",
        Some(("2026-11-14T08:00:00Z", "customer asked")),
        None,
    )
    .await;
    a.booking(
        Some(c3),
        "2026-12-12T09:00:00Z",
        "2026-10-15T09:00:00Z",
        Some(("2026-11-06T08:00:00Z", "no longer needed")),
        None,
    )
    .await;
    let k4 = a
        .booking(
            Some(c7),
            "2026-12-13T09:00:00Z",
            "2026-11-13T09:00:00Z",
            Some(("2026-11-16T09:00:00Z", "rescheduled")),
            None,
        )
        .await;
    a.booking(
        Some(c7),
        "2026-12-14T09:00:00Z",
        "2026-11-16T09:00:00Z",
        None,
        Some(k4),
    )
    .await;
    a.booking(
        None,
        "2026-12-15T09:00:00Z",
        "2026-11-20T12:00:00Z",
        None,
        None,
    )
    .await;
    a.booking(
        Some(c1),
        "2026-12-16T09:00:00Z",
        "2026-12-02T09:00:00Z",
        None,
        None,
    )
    .await;

    // Model usage. `acme-llm` is priced by the test's settings; `local-llama` has no price.
    let mini = "gpt-4o-mini";
    a.usage(
        Some(c1.0),
        "reply",
        "gpt-4o-mini-2024-07-18",
        (1_000_000, 100_000),
        "2026-11-02T10:00:02Z",
    )
    .await;
    a.usage(
        Some(c2.0),
        "summary",
        mini,
        (200_000, 50_000),
        "2026-11-03T09:10:00Z",
    )
    .await;
    a.usage(
        Some(c7.0),
        "reply",
        "acme-llm",
        (10_000, 2_000),
        "2026-11-12T10:00:06Z",
    )
    .await;
    a.usage(
        Some(c8.0),
        "reply",
        "local-llama",
        (5_000, 1_000),
        "2026-11-20T16:00:08Z",
    )
    .await;
    a.usage(
        None,
        "preview",
        mini,
        (100_000, 10_000),
        "2026-11-21T10:00:00Z",
    )
    .await;
    a.usage(
        Some(c4.0),
        "reply",
        mini,
        (999, 999),
        "2026-10-20T10:00:30Z",
    )
    .await;

    // The other tenant: the same month, big numbers.
    let mut b = Script::tenant(app.owner().await, "other").await;
    let bw = b
        .channel("webchat", "Other chat", "2026-01-01T00:00:00Z")
        .await;
    let bc = b.conversation(bw, Some((90, "2026-11-02T10:00:00Z"))).await;
    b.messages(
        bc.0,
        &[
            ("customer", "2026-11-02T10:00:00Z"),
            ("agent", "2026-11-02T10:00:01Z"),
            ("customer", "2026-11-02T10:00:30Z"),
            ("human", "2026-11-02T10:01:00Z"),
        ],
    )
    .await;
    b.escalation(bc.0, "customer", "2026-11-02T10:00:01Z", None)
        .await;
    b.booking(
        Some(bc),
        "2026-12-10T09:00:00Z",
        "2026-11-02T10:00:40Z",
        None,
        None,
    )
    .await;
    b.usage(
        Some(bc.0),
        "reply",
        "gpt-4o",
        (1_000_000, 1_000_000),
        "2026-11-02T10:00:01Z",
    )
    .await;

    World {
        w,
        t: tg,
        e,
        other_channel: bw,
    }
}

async fn acme_app() -> TestApp {
    spawn_app_with(
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
    .await
}

async fn analytics(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.admin_get(&format!("/api/v1/analytics?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn channel(body: &Value, id: Uuid) -> &Value {
    body["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_id"] == id.to_string())
        .unwrap_or_else(|| panic!("no channel {id} in {body}"))
}

/// The figures of web chat (W) in November, worked out by hand.
fn assert_web_chat_november(w: &Value) {
    // Active: C1, C2, C3, C5 (C4 only wrote in October).
    assert_eq!(w["conversations"], 4, "{w}");
    // customer: C1 2 + C2 2 + C3 2 (its October message is out) + C5 1 = 7
    // agent:    C1 2 + C2 1 + C3 1 + C5 1 (the holding message) = 5; human: C2 2
    assert_eq!(
        w["messages"],
        json!({"customer": 7, "agent": 5, "human": 2})
    );
    // Handed off: C2 → 1/4. Resolved: C1, C3 (C2 had a human; C5's last answer is the
    // technical holding message) → 2/4.
    assert_eq!(w["handed_off"], 1);
    assert_eq!(w["handoff_rate"], 0.25);
    assert_eq!(w["resolved"], 2);
    assert_eq!(w["resolution_rate"], 0.5);
    // Bot waits: C1 2, 4; C2 10 (its second wait was answered by a human: no sample); C3 20
    // (12:00:03 continues the wait of 12:00:00); C5 60 → sorted [2, 4, 10, 20, 60].
    // median = 10; p90 at 0.9 × 4 = 3.6 → 20 + 0.6 × (60 − 20) = 44
    assert_eq!(
        w["bot_response"],
        json!({"answered": 5, "unanswered": 0, "median_seconds": 10.0, "p90_seconds": 44.0})
    );
    // Human: C2's escalation 09:00:10 → human 09:05:10 = 300 s.
    assert_eq!(
        w["human_response"],
        json!({"answered": 1, "unanswered": 0, "median_seconds": 300.0, "p90_seconds": 300.0})
    );
    // K1 made; K3 cancelled (made in October); K7 is December's.
    assert_eq!(
        w["bookings"],
        json!({"made": 1, "rescheduled": 0, "cancelled": 1})
    );
    // New leads: C1 80 hot, C2 45 warm, C5 10 cold (C3 became a lead in October).
    assert_eq!(w["leads"], json!({"cold": 1, "warm": 1, "hot": 1}));
    // gpt-4o-mini-2024-07-18 (priced as gpt-4o-mini, 0.15 / 0.60 per million):
    //   1,000,000 × 0.15 / 1e6 + 100,000 × 0.60 / 1e6 = 0.15 + 0.06 = 0.21
    // gpt-4o-mini: 200,000 × 0.15 / 1e6 + 50,000 × 0.60 / 1e6 = 0.03 + 0.03 = 0.06
    // input 1,000,000 + 200,000 = 1,200,000; output 100,000 + 50,000 = 150,000; cost 0.27
    // (C4's October call is out).
    let tokens = &w["tokens"];
    assert_eq!(tokens["input"], 1_200_000);
    assert_eq!(tokens["output"], 150_000);
    assert_eq!(tokens["cost_usd"], 0.27);
    assert_eq!(tokens["cost_unknown_tokens"], 0);
    assert_eq!(tokens["unpriced_models"], json!([]));
}

/// The figures of Telegram (T) in November, worked out by hand.
fn assert_telegram_november(tg: &Value) {
    // Active: C6, C7, C8, C9, C10, C11.
    assert_eq!(tg["conversations"], 6, "{tg}");
    // customer: C6 1 + C7 1 + C8 2 + C9 1 + C10 1 (12-01 00:00:00 is `to`, excluded) + C11 1 = 7
    // agent: C7 1 + C8 1 + C9 1 + C11 1 = 4 (C10's answer is on 12-01); human: C6, C9, C11 = 3
    assert_eq!(
        tg["messages"],
        json!({"customer": 7, "agent": 4, "human": 3})
    );
    // Handed off in November: C8 (tool), C9 (admin), C11 (keyword) → 3/6; C6's escalation is
    // October's. Resolved: C7, C10 (answered after `to`) → 2/6. C6: an escalation was open.
    assert_eq!(tg["handed_off"], 3);
    assert_eq!(tg["handoff_rate"], 0.5);
    assert_eq!(tg["resolved"], 2);
    assert_eq!(tg["resolution_rate"], 2.0 / 6.0);
    // Bot waits: C7 6; C8 8 and 16:30 unanswered; C9 5; C10 5; C11 3; C6's wait was answered
    // by a human → sorted [3, 5, 5, 6, 8]. median = 5; p90 at 3.6 → 6 + 0.6 × (8 − 6) = 7.2
    assert_eq!(
        tg["bot_response"],
        json!({"answered": 5, "unanswered": 1, "median_seconds": 5.0, "p90_seconds": 7.2})
    );
    // Human: C11 14:00:03 → 14:02:03 = 120 s; C8 unanswered; C9 is an admin takeover (no
    // sample); C6's escalation is October's.
    assert_eq!(
        tg["human_response"],
        json!({"answered": 1, "unanswered": 1, "median_seconds": 120.0, "p90_seconds": 120.0})
    );
    // K2 made and cancelled, K4 made, K5 its move (K4's cancellation is the move's).
    assert_eq!(
        tg["bookings"],
        json!({"made": 2, "rescheduled": 1, "cancelled": 1})
    );
    // New leads: C7 70 hot, C8 39 cold, C9 40 warm, C10 95 hot.
    assert_eq!(tg["leads"], json!({"cold": 1, "warm": 1, "hot": 2}));
    // acme-llm (3 / 5 per million, from the settings): 10,000 × 3 / 1e6 + 2,000 × 5 / 1e6
    //   = 0.03 + 0.01 = 0.04; local-llama has no price: 5,000 + 1,000 = 6,000 unknown tokens.
    let tokens = &tg["tokens"];
    assert_eq!(tokens["input"], 15_000);
    assert_eq!(tokens["output"], 3_000);
    assert_eq!(tokens["cost_usd"], 0.04);
    assert_eq!(tokens["cost_unknown_tokens"], 6_000);
    assert_eq!(tokens["unpriced_models"], json!(["local-llama"]));
}

#[tokio::test]
async fn analytics_of_a_scripted_month_match_hand_counts_per_channel_and_in_total() {
    let app = acme_app().await;
    let world = script(&app).await;

    let body = analytics(&app, "tenant=acme&from=2026-11-01&to=2026-12-01").await;
    assert_eq!(body["range"]["from"], "2026-11-01T00:00:00Z", "{body}");
    assert_eq!(body["range"]["to"], "2026-12-01T00:00:00Z");
    assert_eq!(body["channel"], Value::Null);
    assert_eq!(body["tenant"]["slug"], "acme");

    // Every channel of acme, oldest first, with kind and name; never the other tenant's.
    let listed: Vec<(String, String, String)> = body["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel_id"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (world.w.to_string(), "webchat".into(), "Website chat".into()),
            (
                world.t.to_string(),
                "telegram".into(),
                "Telegram bot".into()
            ),
            (world.e.to_string(), "email".into(), "Support inbox".into()),
        ]
    );

    assert_web_chat_november(channel(&body, world.w));
    assert_telegram_november(channel(&body, world.t));

    // The silent channel: zeros, and rates and percentiles undefined.
    let e = channel(&body, world.e);
    assert_eq!(e["conversations"], 0);
    assert_eq!(e["resolution_rate"], Value::Null);
    assert_eq!(e["handoff_rate"], Value::Null);
    assert_eq!(
        e["bot_response"],
        json!({"answered": 0, "unanswered": 0, "median_seconds": null, "p90_seconds": null})
    );
    assert_eq!(e["tokens"]["cost_usd"], 0.0);

    // Totals: W + T, plus what belongs to no channel (K6, the preview); percentiles over all
    // samples, not from the channels' medians.
    let tot = &body["totals"];
    assert_eq!(tot["conversations"], 10); // 4 + 6
    assert_eq!(
        tot["messages"],
        json!({"customer": 14, "agent": 9, "human": 5}) // 7+7, 5+4, 2+3
    );
    assert_eq!(tot["handed_off"], 4); // 1 + 3
    assert_eq!(tot["handoff_rate"], 0.4); // 4 / 10
    assert_eq!(tot["resolved"], 4); // 2 + 2
    assert_eq!(tot["resolution_rate"], 0.4); // 4 / 10
                                             // [2, 3, 4, 5, 5, 6, 8, 10, 20, 60]: median (5 + 6) / 2 = 5.5;
                                             // p90 at 0.9 × 9 = 8.1 → 20 + 0.1 × (60 − 20) = 24
    assert_eq!(
        tot["bot_response"],
        json!({"answered": 10, "unanswered": 1, "median_seconds": 5.5, "p90_seconds": 24.0})
    );
    // [120, 300]: median 210; p90 at 0.9 → 120 + 0.9 × 180 = 282
    assert_eq!(
        tot["human_response"],
        json!({"answered": 2, "unanswered": 1, "median_seconds": 210.0, "p90_seconds": 282.0})
    );
    // made: K1, K2, K4 + K6 (admin) = 4; rescheduled: K5; cancelled: K3, K2
    assert_eq!(
        tot["bookings"],
        json!({"made": 4, "rescheduled": 1, "cancelled": 2})
    );
    assert_eq!(tot["leads"], json!({"cold": 2, "warm": 2, "hot": 3}));
    // + the preview (gpt-4o-mini 100,000 / 10,000 = 0.015 + 0.006 = 0.021):
    // input 1,200,000 + 15,000 + 100,000 = 1,315,000; output 150,000 + 3,000 + 10,000 = 163,000
    // cost 0.27 + 0.04 + 0.021 = 0.331
    let tokens = &tot["tokens"];
    assert_eq!(tokens["input"], 1_315_000);
    assert_eq!(tokens["output"], 163_000);
    assert_eq!(tokens["cost_usd"], 0.331);
    assert_eq!(tokens["cost_unknown_tokens"], 6_000);
    // gpt-4o-mini: summary + preview = 300,000 / 60,000 → 0.045 + 0.036 = 0.081
    assert_eq!(
        tokens["by_model"],
        json!([
            {"model": "acme-llm", "input": 10_000, "output": 2_000, "cost_usd": 0.04},
            {"model": "gpt-4o-mini", "input": 300_000, "output": 60_000, "cost_usd": 0.081},
            {"model": "gpt-4o-mini-2024-07-18", "input": 1_000_000, "output": 100_000,
             "cost_usd": 0.21},
            {"model": "local-llama", "input": 5_000, "output": 1_000, "cost_usd": null},
        ])
    );

    // The channel filter: only Telegram, and its figures are the totals (no admin booking, no
    // preview).
    let body = analytics(
        &app,
        &format!(
            "tenant=acme&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&channel={}",
            world.t
        ),
    )
    .await;
    assert_eq!(body["channel"], world.t.to_string());
    assert_eq!(body["by_channel"].as_array().unwrap().len(), 1);
    assert_telegram_november(channel(&body, world.t));
    assert_telegram_november(&body["totals"]);

    // The range filter: October. Active: C3 (10-31), C4 (10-20), C6 (10-30) = 3. Handed off: C4,
    // C6. Resolved: C3 (answered 23:59:30). Human waits: C4 10:00:30 → 10:10:30 = 600 s; C6
    // 10-30 12:00:00 → 11-10 15:10:00 (answered after `to`) = 11 d 3 h 10 min = 961,800 s;
    // median (600 + 961,800) / 2 = 481,200.
    let body = analytics(&app, "tenant=acme&from=2026-10-01&to=2026-11-01").await;
    let tot = &body["totals"];
    assert_eq!(tot["conversations"], 3, "{tot}");
    assert_eq!(tot["handed_off"], 2);
    assert_eq!(tot["resolved"], 1);
    assert_eq!(tot["human_response"]["answered"], 2);
    assert_eq!(tot["human_response"]["median_seconds"], 481_200.0);
    // Tokens: C4's call only (999 / 999 × gpt-4o-mini = 0.00014985 + 0.0005994 = 0.00074925,
    // 0.000749 to the micro-dollar). Bookings: K3 made (cancelled in November).
    assert_eq!(tot["tokens"]["input"], 999);
    assert_eq!(tot["tokens"]["cost_usd"], 0.000749);
    assert_eq!(
        tot["bookings"],
        json!({"made": 1, "rescheduled": 0, "cancelled": 0})
    );
    // New leads in October: C3 (75, hot).
    assert_eq!(tot["leads"], json!({"cold": 0, "warm": 0, "hot": 1}));

    // The other tenant sees its own month — which acme's exact totals above never included.
    let body = analytics(&app, "tenant=other&from=2026-11-01&to=2026-12-01").await;
    let tot = &body["totals"];
    assert_eq!(tot["conversations"], 1, "{tot}");
    assert_eq!(
        tot["messages"],
        json!({"customer": 2, "agent": 1, "human": 1})
    );
    assert_eq!(tot["tokens"]["input"], 1_000_000);
    // gpt-4o: 1,000,000 × 2.50 / 1e6 + 1,000,000 × 10.00 / 1e6 = 12.5
    assert_eq!(tot["tokens"]["cost_usd"], 12.5);
    let ids: Vec<&str> = body["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![world.other_channel.to_string()]);

    app.stop().await;
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn analytics_refuse_bad_ranges_and_foreign_channels_with_json_errors() {
    let app = acme_app().await;
    let world = script(&app).await;

    let cases: Vec<(String, u16, &str)> = vec![
        ("tenant=acme&from=yesterday".into(), 400, "invalid_time"),
        ("tenant=acme&to=2026-02-30".into(), 400, "invalid_time"),
        (
            "tenant=acme&from=2026-11-01T25:00:00Z".into(),
            400,
            "invalid_time",
        ),
        (
            "tenant=acme&from=2026-12-01&to=2026-11-01".into(),
            422,
            "invalid_range",
        ),
        (
            "tenant=acme&from=2026-11-01&to=2026-11-01".into(),
            422,
            "invalid_range",
        ),
        (
            "tenant=acme&from=2025-01-01&to=2026-12-01".into(),
            422,
            "range_too_long",
        ),
        ("tenant=acme&channel=nope".into(), 400, "invalid_channel"),
        (
            format!("tenant=acme&channel={}", world.other_channel),
            404,
            "not_found",
        ),
        (
            format!("tenant=acme&channel={}", Uuid::now_v7()),
            404,
            "not_found",
        ),
        ("from=2026-11-01".into(), 400, "missing_tenant"),
        ("tenant=nobody".into(), 404, "not_found"),
    ];
    for (query, status, code) in cases {
        let (s, b) = app.admin_get(&format!("/api/v1/analytics?{query}")).await;
        assert_error(s, &b, status, code);
    }

    // Without a bearer token: 401, as every admin route.
    let r = app
        .http
        .get(app.url("/api/v1/analytics?tenant=acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // No range: the last 30 days up to now.
    let before = Utc::now();
    let body = analytics(&app, "tenant=acme").await;
    let after = Utc::now();
    let from = t(body["range"]["from"].as_str().unwrap());
    let to = t(body["range"]["to"].as_str().unwrap());
    assert!(before <= to && to <= after, "{to}");
    assert_eq!(to - from, chrono::Duration::days(30));
    app.stop().await;
}
