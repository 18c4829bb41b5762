//! Group commits: inbound messages and bot replies of many conversations share one statement
//! and one flush, and each still lands under its own tenant, with its own outcome, exactly once.

use std::collections::HashSet;

use serde_json::json;
use sqlx::Row;
use switchboard_core::model::InboundMessage;
use switchboard_core::store::handoff::HandoffState;
use switchboard_core::store::ingest;
use switchboard_core::store::turns::{self, BotReply, BotReplyRow, TurnCommit};
use switchboard_core::{ChannelId, ConversationId, DbError, EventId, TenantId};

use crate::helpers::*;

async fn tenant(app: &TestApp, slug: &str) -> (TenantId, ChannelId) {
    let (status, body) = app
        .admin_post("/api/v1/tenants", json!({"slug": slug, "name": slug}))
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["tenant"]["id"].as_str().unwrap().parse().unwrap(),
        body["channels"][0]["id"].as_str().unwrap().parse().unwrap(),
    )
}

fn message(channel: ChannelId, session: &str, id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel_id: channel,
        provider_message_id: id.into(),
        contact_external_id: session.into(),
        contact_display_name: None,
        text: text.into(),
        payload: json!({"text": text}),
    }
}

/// The texts of a conversation's messages of `role` as `tenant` sees them, oldest first.
async fn texts(app: &TestApp, tenant: TenantId, conv: ConversationId, role: &str) -> Vec<String> {
    let mut tx = app.db.tenant(tenant).await.unwrap();
    let texts = sqlx::query_scalar(
        "SELECT text FROM messages WHERE conversation_id = $1 AND role = $2 ORDER BY seq",
    )
    .bind(conv.0)
    .bind(role)
    .fetch_all(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    texts
}

async fn customer_texts(app: &TestApp, tenant: TenantId, conv: ConversationId) -> Vec<String> {
    texts(app, tenant, conv, "customer").await
}

async fn agent_texts(app: &TestApp, tenant: TenantId, conv: ConversationId) -> Vec<String> {
    texts(app, tenant, conv, "agent").await
}

#[tokio::test]
async fn a_group_ingest_scopes_each_message_to_its_tenant_and_knows_redeliveries() {
    let app = spawn_app().await;
    let (a, ca) = tenant(&app, "acme").await;
    let (b, cb) = tenant(&app, "globex").await;
    let (sa, sb) = (session(), session());
    let items = vec![
        (a, message(ca, &sa, "m1", "مرحبا A1")),
        (b, message(cb, &sb, "m1", "hello B1")),
        (a, message(ca, &sa, "m2", "hello A2")),
        // The same delivery again, in the same batch: recognised, not stored twice.
        (a, message(ca, &sa, "m1", "hello A1 again")),
    ];
    // Together, in one statement (not one by one after a failed batch).
    let r = ingest::record_together(&app.db, &items)
        .await
        .expect("one statement");
    assert_eq!(r.len(), 4);
    assert!(r[0].conversation_created && !r[0].duplicate);
    assert!(r[1].conversation_created && !r[1].duplicate);
    assert_eq!((r[0].tenant_id, r[1].tenant_id), (a, b));
    assert_ne!(r[0].conversation_id, r[1].conversation_id);
    assert_eq!(
        r[2].conversation_id, r[0].conversation_id,
        "one contact, one conversation"
    );
    assert!(!r[2].conversation_created && !r[2].duplicate);
    assert!(r[3].duplicate, "the redelivery is reported as such");
    assert!(r[3].shown.is_none(), "nothing new to show");
    let a1 = r[0].shown.as_ref().expect("placed").message.seq;
    assert_eq!(
        r[2].shown.as_ref().expect("placed").after,
        a1,
        "A2 follows A1"
    );
    assert_eq!(
        (r[3].event_id, r[3].message_id),
        (r[0].event_id, r[0].message_id)
    );

    assert_eq!(
        customer_texts(&app, a, r[0].conversation_id).await,
        ["مرحبا A1", "hello A2"]
    );
    assert_eq!(
        customer_texts(&app, b, r[1].conversation_id).await,
        ["hello B1"]
    );
    // Each tenant sees its own conversation only.
    assert!(customer_texts(&app, b, r[0].conversation_id)
        .await
        .is_empty());
    assert!(customer_texts(&app, a, r[1].conversation_id)
        .await
        .is_empty());
    let mut owner = app.owner().await;
    for rec in &r[..3] {
        let row = sqlx::query(
            "SELECT m.tenant_id AS m, e.tenant_id AS e, c.tenant_id AS c, k.tenant_id AS k
               FROM messages m JOIN inbound_events e ON e.id = m.inbound_event_id
               JOIN conversations c ON c.id = e.conversation_id
               JOIN contacts k ON k.id = c.contact_id
              WHERE m.id = $1",
        )
        .bind(rec.message_id.0)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        for col in ["m", "e", "c", "k"] {
            assert_eq!(
                row.get::<uuid::Uuid, _>(col),
                rec.tenant_id.0,
                "{col} of {rec:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_message_that_cannot_be_stored_fails_alone_and_its_batch_is_stored() {
    let app = spawn_app().await;
    let (a, ca) = tenant(&app, "acme").await;
    let (_, cb) = tenant(&app, "globex").await;
    let (s1, s2, s3, s4) = (session(), session(), session(), session());
    let items = vec![
        (a, message(ca, &s1, "x1", "first")),
        // A channel that does not exist.
        (a, message(ChannelId::new(), &s2, "x2", "nowhere")),
        // Another tenant's channel, under acme's scope: row-level security refuses it.
        (a, message(cb, &s3, "x3", "forged")),
        (a, message(ca, &s4, "x4", "fourth")),
    ];
    // Together they fail, and write nothing; then each is stored on its own.
    assert!(ingest::record_together(&app.db, &items).await.is_err());
    let r = ingest::record_batch(&app.db, &items).await;
    assert_eq!(r.len(), 4);
    let first = r[0].as_ref().expect("the first message is stored");
    assert!(r[1].is_err(), "{:?}", r[1]);
    assert!(r[2].is_err(), "{:?}", r[2]);
    let fourth = r[3].as_ref().expect("the fourth message is stored");
    assert_eq!(
        customer_texts(&app, a, first.conversation_id).await,
        ["first"]
    );
    assert_eq!(
        customer_texts(&app, a, fourth.conversation_id).await,
        ["fourth"]
    );
    let mut owner = app.owner().await;
    let stray: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE text IN ('nowhere', 'forged')")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(stray, 0, "nothing of the refused messages was written");
}

/// A reply row for the pending events of `conv`.
async fn reply(app: &TestApp, tenant: TenantId, conv: ConversationId, text: &str) -> BotReplyRow {
    let mut tx = app.db.tenant(tenant).await.unwrap();
    let info = turns::conversation(&mut tx, conv).await.unwrap();
    let events: Vec<EventId> = sqlx::query_scalar(
        "SELECT id FROM inbound_events WHERE conversation_id = $1 AND status = 'pending'",
    )
    .bind(conv.0)
    .fetch_all(tx.conn())
    .await
    .unwrap()
    .into_iter()
    .map(EventId)
    .collect();
    tx.commit().await.unwrap();
    assert!(!events.is_empty());
    BotReplyRow::new(
        tenant,
        &TurnCommit {
            conversation: &info,
            events: &events,
            reply: text,
            responder: "offline",
            intent: Some("test"),
            metadata: json!({}),
            prompt_version_id: None,
            usage: &[],
            choices: None,
            conversation_locked: false,
        },
        false,
        "en",
    )
}

#[tokio::test]
async fn a_group_commit_of_replies_gives_each_its_own_outcome() {
    let app = spawn_app().await;
    let (a, ca) = tenant(&app, "acme").await;
    let (b, cb) = tenant(&app, "globex").await;
    let sessions: Vec<String> = (0..4).map(|_| session()).collect();
    let items = vec![
        (a, message(ca, &sessions[0], "q1", "one")),
        (a, message(ca, &sessions[1], "q2", "two")),
        (a, message(ca, &sessions[2], "q3", "three")),
        (b, message(cb, &sessions[3], "q4", "four")),
    ];
    let convs: Vec<ConversationId> = ingest::record_batch(&app.db, &items)
        .await
        .into_iter()
        .map(|r| r.unwrap().conversation_id)
        .collect();

    // The second conversation's events get answered elsewhere first: the batch's reply to
    // them must not be written.
    let first = reply(&app, a, convs[1], "answered first").await;
    let late = reply(&app, a, convs[1], "too late").await;
    assert!(matches!(
        turns::commit_bot_reply(&app.db, &first, &[]).await,
        Ok(BotReply::Committed(_))
    ));
    // A human took the third conversation over.
    let mut owner = app.owner().await;
    sqlx::query("UPDATE conversations SET handoff_state = 'human' WHERE id = $1")
        .bind(convs[2].0)
        .execute(&mut owner)
        .await
        .unwrap();

    let rows = vec![
        reply(&app, a, convs[0], "reply one").await,
        late,
        reply(&app, a, convs[2], "talking over a human").await,
        reply(&app, b, convs[3], "reply four").await,
    ];
    // In one statement (not one by one after a failed batch).
    let out = turns::commit_replies_together(&app.db, &rows)
        .await
        .expect("one statement");
    assert!(matches!(&out[0], Ok(BotReply::Committed(c)) if c.turn_id == rows[0].turn_id()));
    assert!(matches!(out[1], Err(DbError::Conflict(_))), "{:?}", out[1]);
    assert!(
        matches!(out[2], Ok(BotReply::HumanOwns(HandoffState::Human))),
        "{:?}",
        out[2]
    );
    assert!(matches!(out[3], Ok(BotReply::Committed(_))), "{:?}", out[3]);

    assert_eq!(agent_texts(&app, a, convs[0]).await, ["reply one"]);
    assert_eq!(agent_texts(&app, a, convs[1]).await, ["answered first"]);
    assert!(
        agent_texts(&app, a, convs[2]).await.is_empty(),
        "never over a human"
    );
    assert_eq!(agent_texts(&app, b, convs[3]).await, ["reply four"]);
    let pending: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT conversation_id, status FROM inbound_events WHERE conversation_id = ANY($1)",
    )
    .bind(convs.iter().map(|c| c.0).collect::<Vec<_>>())
    .fetch_all(&mut owner)
    .await
    .unwrap();
    for (conv, status) in pending {
        let want = if conv == convs[2].0 {
            "pending"
        } else {
            "done"
        };
        assert_eq!(status, want, "events of {conv}");
    }
    // Nothing of the refused replies exists: no turn, no outbox row.
    let turns: i64 = sqlx::query_scalar("SELECT count(*) FROM turns WHERE id = ANY($1)")
        .bind(vec![rows[1].turn_id().0, rows[2].turn_id().0])
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(turns, 0);
}

#[tokio::test]
async fn many_customers_posting_at_once_are_each_stored_once_and_answered_once() {
    let app = spawn_app_with(|s| s.pipeline.debounce_ms = 0, None).await;
    let channel = app.demo_channel;
    let sessions: Vec<String> = (0..40).map(|_| session()).collect();
    // Every customer posts three messages, the second twice (a retry after a lost answer),
    // all customers at once.
    let posts = sessions.iter().map(|s| {
        let app = &app;
        async move {
            let mut ids = Vec::new();
            for (cid, text) in [("c1", "one"), ("c2", "two"), ("c2", "two"), ("c3", "three")] {
                let (status, body) = app.post_chat(channel, s, cid, text).await;
                assert_eq!(status, 202, "{body}");
                ids.push(body["message_id"].as_str().unwrap().to_owned());
            }
            assert_eq!(ids[1], ids[2], "the retry is the same message");
        }
    });
    futures::future::join_all(posts).await;
    for s in &sessions {
        let history = app.wait_for_agent_replies(channel, s, 1).await;
        let customer: Vec<_> = history
            .iter()
            .filter(|m| m["role"] == "customer")
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(customer, ["one", "two", "three"], "{s}");
    }
    // Every message answered once: each event is done by exactly one turn with one reply.
    assert!(
        eventually(std::time::Duration::from_secs(60), || async {
            let mut owner = app.owner().await;
            let pending: i64 =
                sqlx::query_scalar("SELECT count(*) FROM inbound_events WHERE status <> 'done'")
                    .fetch_one(&mut owner)
                    .await
                    .unwrap();
            pending == 0
        })
        .await
    );
    let mut owner = app.owner().await;
    let replies: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT e.id, (SELECT count(*) FROM messages m WHERE m.turn_id = e.turn_id AND m.role = 'agent')
           FROM inbound_events e JOIN conversations c ON c.id = e.conversation_id
           JOIN contacts k ON k.id = c.contact_id
          WHERE k.external_id = ANY($1)",
    )
    .bind(&sessions)
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let events: HashSet<uuid::Uuid> = replies.iter().map(|r| r.0).collect();
    assert_eq!(
        events.len(),
        120,
        "40 customers × 3 messages, the retries not stored"
    );
    assert!(replies.iter().all(|r| r.1 == 1), "{replies:?}");
}

#[tokio::test]
async fn events_answered_elsewhere_are_not_taken_silently_and_leave_no_turn_behind() {
    let app = spawn_app().await;
    let (a, ca) = tenant(&app, "acme").await;
    let s = session();
    let conv = ingest::record_alone(&app.db, a, &message(ca, &s, "h1", "hello"))
        .await
        .unwrap()
        .conversation_id;
    let answered = reply(&app, a, conv, "answered").await;
    let events: Vec<EventId> = answered.events.iter().copied().map(EventId).collect();
    assert!(matches!(
        turns::commit_bot_reply(&app.db, &answered, &[]).await,
        Ok(BotReply::Committed(_))
    ));
    let mut tx = app.db.tenant(a).await.unwrap();
    let info = turns::conversation(&mut tx, conv).await.unwrap();
    let taken = turns::commit_silent(&mut tx, &info, &events, "human_owned")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(taken, None, "the events were no longer pending");
    let mut owner = app.owner().await;
    let silent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM turns WHERE conversation_id = $1 AND responder = 'human'",
    )
    .bind(conv.0)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(silent, 0, "no empty turn is left behind");
}

#[tokio::test]
async fn a_message_whose_sender_hung_up_while_it_was_committed_is_still_answered() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|s| s.pipeline.debounce_ms = 0, None).await;
    let channel = app.demo_channel;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let sessions: Vec<String> = (0..240).map(|_| session()).collect();
    // Each customer sends the whole request and hangs up at once, 80 together, so that many of
    // them hang up while their message waits for its group commit; three waves.
    for wave in sessions.chunks(80) {
        let hang_ups = wave.iter().map(|s| {
            let addr = addr.clone();
            let body =
                json!({"session_id": s, "client_message_id": "m1", "text": "hello?"}).to_string();
            async move {
                let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let request = format!(
                    "POST /api/v1/webchat/{channel}/messages HTTP/1.1\r\nHost: {addr}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                tcp.write_all(request.as_bytes()).await.unwrap();
                drop(tcp);
            }
        });
        futures::future::join_all(hang_ups).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Whatever was stored is answered: no customer message is left without its reply.
    let settled = eventually(std::time::Duration::from_secs(60), || async {
        let mut owner = app.owner().await;
        let unanswered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inbound_events e JOIN conversations c ON c.id = e.conversation_id
               JOIN contacts k ON k.id = c.contact_id
              WHERE k.external_id = ANY($1) AND e.status <> 'done'",
        )
        .bind(&sessions)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        unanswered == 0
    })
    .await;
    assert!(settled, "a stored message was left unanswered");
    let mut owner = app.owner().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM contacts WHERE external_id = ANY($1)")
            .bind(&sessions)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(
        stored > 0,
        "no message was stored at all: the test proved nothing"
    );
}

/// The place of the message with `id` in its conversation (what the web chat shows as `seq`).
async fn ordinal_of(app: &TestApp, id: switchboard_core::MessageId) -> i64 {
    let mut owner = app.owner().await;
    sqlx::query_scalar("SELECT ordinal FROM messages WHERE id = $1")
        .bind(id.0)
        .fetch_one(&mut owner)
        .await
        .unwrap()
}

fn committed(out: Result<BotReply, DbError>) -> turns::CommittedTurn {
    match out {
        Ok(BotReply::Committed(c)) => c,
        other => panic!("not committed: {other:?}"),
    }
}

#[tokio::test]
async fn a_committed_reply_tells_the_web_chat_where_it_goes_in_the_transcript() {
    let app = spawn_app().await;
    let (a, ca) = tenant(&app, "acme").await;
    let s = session();
    let first = ingest::record_alone(&app.db, a, &message(ca, &s, "w1", "hello"))
        .await
        .unwrap();
    let conv = first.conversation_id;
    // The customer's message, as the stream shows it: the first of the transcript, with the
    // agent at work.
    let placed = first.shown.clone().expect("a new message is placed");
    assert_eq!(placed.after, 0);
    assert_eq!(placed.message.seq, ordinal_of(&app, first.message_id).await);
    assert_eq!(placed.message.text, "hello");
    assert_eq!(placed.handoff.state, HandoffState::Bot);
    assert!(placed.handoff.pending);
    let row = reply(&app, a, conv, "hi, how can I help?").await;
    let c = committed(turns::commit_bot_reply(&app.db, &row, &[]).await);
    let shown = c.shown.expect("the one-round-trip commit places the reply");
    assert_eq!(shown.after, ordinal_of(&app, first.message_id).await);
    assert_eq!(shown.message.seq, ordinal_of(&app, c.message_id).await);
    assert_eq!(shown.message.id, c.message_id);
    assert_eq!(shown.message.text, "hi, how can I help?");
    assert_eq!(shown.handoff.state, HandoffState::Bot);
    assert!(!shown.handoff.pending, "nothing waits for an answer");

    // A system note (never shown to the customer) is not what the next reply follows; a
    // customer message stored while the bot was thinking is, and it still waits.
    let second = ingest::record_alone(&app.db, a, &message(ca, &s, "w2", "price?"))
        .await
        .unwrap();
    assert_eq!(
        second.shown.as_ref().unwrap().after,
        ordinal_of(&app, c.message_id).await,
        "the customer's next message follows the reply"
    );
    let mut owner = app.owner().await;
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, text)
         VALUES ($1, $2, $3, 'system', 'note')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(a.0)
    .bind(conv.0)
    .execute(&mut owner)
    .await
    .unwrap();
    let row = reply(&app, a, conv, "it is 10 EUR").await;
    let third = ingest::record_alone(&app.db, a, &message(ca, &s, "w3", "and shipping?"))
        .await
        .unwrap();
    let out = turns::commit_replies_together(&app.db, &[row])
        .await
        .expect("one statement")
        .remove(0);
    let c = committed(out);
    let shown = c.shown.expect("the group commit places the reply too");
    assert!(ordinal_of(&app, second.message_id).await < shown.after);
    assert_eq!(shown.after, ordinal_of(&app, third.message_id).await);
    // Places count this conversation's messages only, the system note too (4): the customer,
    // the reply, the customer, the note, the customer, the reply.
    assert_eq!((shown.after, shown.message.seq), (5, 6));
    assert!(
        shown.handoff.pending,
        "the third message waits for its answer"
    );
}

/// Shared buffers a statement touched, from `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` (its
/// functions' and triggers' queries included). Run it once before, so that what the first call
/// of a function in a session reads to plan its queries (catalogs) is not counted.
async fn buffers_touched(c: &mut sqlx::PgConnection, statement: &str) -> i64 {
    sqlx::query(&format!("EXPLAIN (ANALYZE) {statement}"))
        .execute(&mut *c)
        .await
        .unwrap();
    let plan: serde_json::Value = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}"
    ))
    .fetch_one(&mut *c)
    .await
    .unwrap();
    let top = &plan[0]["Plan"];
    top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap()
}

#[tokio::test]
async fn a_conversations_newest_message_is_found_in_a_few_reads_even_before_any_analyze() {
    // A young database has no statistics: the planner then guesses a conversation holds a few
    // dozen messages and would read all of them (and all of the tenant's) to find the newest,
    // at every message stored. The look-ups on the write and read paths must walk the index.
    let app = spawn_app().await;
    let (tenant, channel) = tenant(&app, "long-talk").await;
    let mut c = app.owner().await;
    let (contact, conv) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    sqlx::query(
        "INSERT INTO contacts (id, tenant_id, channel_id, external_id)
         VALUES ($1, $2, $3, 'long-talk-session-0123456789abcdef')",
    )
    .bind(contact)
    .bind(tenant.0)
    .bind(channel.0)
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO conversations (id, tenant_id, channel_id, contact_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(conv)
    .bind(tenant.0)
    .bind(channel.0)
    .bind(contact)
    .execute(&mut c)
    .await
    .unwrap();
    // 3,000 messages in this conversation and 3,000 in others of the same tenant.
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, text)
         SELECT gen_random_uuid(), $1, $2, 'customer', 'message ' || g
           FROM generate_series(1, 3000) g",
    )
    .bind(tenant.0)
    .bind(conv)
    .execute(&mut c)
    .await
    .unwrap();
    for k in 0..3 {
        let (other_contact, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        sqlx::query(
            "WITH k AS (INSERT INTO contacts (id, tenant_id, channel_id, external_id)
                        VALUES ($1, $3, $4, $5))
             INSERT INTO conversations (id, tenant_id, channel_id, contact_id)
             VALUES ($2, $3, $4, $1)",
        )
        .bind(other_contact)
        .bind(other)
        .bind(tenant.0)
        .bind(channel.0)
        .bind(format!("long-talk-other-{k}-0123456789abcdef"))
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, role, text)
             SELECT gen_random_uuid(), $1, $2, 'customer', 'x' FROM generate_series(1, 1000)",
        )
        .bind(tenant.0)
        .bind(other)
        .execute(&mut c)
        .await
        .unwrap();
    }
    let ordinals: (i64, i64) = sqlx::query_as(
        "SELECT min(ordinal), max(ordinal) FROM messages WHERE conversation_id = $1",
    )
    .bind(conv)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(ordinals, (1, 3000));
    // As if never analysed: no statistics, no row count, and no autovacuum to gather them.
    for statement in [
        "ALTER TABLE messages SET (autovacuum_enabled = false)",
        "DELETE FROM pg_statistic WHERE starelid = 'messages'::regclass",
        "UPDATE pg_class SET reltuples = -1 WHERE oid = 'messages'::regclass",
        "SET ROLE switchboard_app",
    ] {
        sqlx::query(statement).execute(&mut c).await.unwrap();
    }
    sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
        .bind(tenant.0.to_string())
        .execute(&mut c)
        .await
        .unwrap();
    // One more message through the ordinal trigger: the insert's own pages (heap and five
    // indexes) and the trigger's walk to the newest message: 15 here, against 88 when the
    // planner chose to read the conversation's 3,000 messages.
    let insert = format!(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, text)
         VALUES (gen_random_uuid(), '{}', '{conv}', 'customer', 'one more')",
        tenant.0
    );
    let touched = buffers_touched(&mut c, &insert).await;
    assert!(
        touched < 40,
        "storing one message touched {touched} buffers"
    );
    let ordinal: i64 =
        sqlx::query_scalar("SELECT max(ordinal) FROM messages WHERE conversation_id = $1")
            .bind(conv)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(ordinal, 3002, "the warm-up and the measured insert");
    // The web chat resuming from a cursor near the end: 34 here, against 148 when the message
    // scan filtered the whole conversation.
    let resume = format!(
        "SELECT * FROM contact_messages('{}', '{}', 'long-talk-session-0123456789abcdef', 2990, 50)",
        tenant.0, channel.0
    );
    let touched = buffers_touched(&mut c, &resume).await;
    assert!(touched < 70, "resuming a stream touched {touched} buffers");
    let shown: Vec<i64> = sqlx::query_scalar(&format!("SELECT seq FROM ({resume}) r"))
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(shown, (2991..=3002).collect::<Vec<_>>());
}
