//! The real binary killed with SIGKILL in the middle of a burst, then restarted: every message
//! that was acknowledged is stored, and every message is answered exactly once.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::Row;

use crate::helpers::*;

const CONVERSATIONS: usize = 40;
const MESSAGES_EACH: usize = 5;

fn start_binary(database: &str, port: u16, data_dir: &std::path::Path) -> Child {
    let pg = shared_pg();
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", pg.url("postgres", database))
        .env(
            "SWITCHBOARD_APP_DATABASE_URL",
            pg.url("switchboard_app", database),
        )
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SWITCHBOARD_PIPELINE__DEBOUNCE_MS", "30")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the switchboard binary")
}

async fn post(http: &reqwest::Client, base: &str, channel: &str, session: &str, i: usize) -> bool {
    http.post(format!("{base}/api/v1/webchat/{channel}/messages"))
        .json(&serde_json::json!({"session_id": session, "client_message_id": format!("m{i}"), "text": format!("message {i}: do you install batteries?")}))
        .send()
        .await
        .is_ok_and(|r| r.status() == 202)
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_nothing_and_answers_everything_exactly_once() {
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("sb-crash-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut child = start_binary(&database, port, &data_dir);
    wait_ready(&http, &base).await;
    let owner_url = shared_pg().url("postgres", &database);
    let mut owner = sqlx::PgConnection::connect(&owner_url).await.unwrap();
    use sqlx::Connection;
    let channel: String = sqlx::query_scalar("SELECT c.id::text FROM channels c JOIN tenants t ON t.id = c.tenant_id WHERE t.slug = 'demo'")
        .fetch_one(&mut owner)
        .await
        .unwrap();

    // The burst: every conversation sends its messages in order, all conversations at once.
    let sessions: Vec<String> = (0..CONVERSATIONS)
        .map(|i| format!("crash-session-{i:04}"))
        .collect();
    let acked = Arc::new(std::sync::Mutex::new(HashSet::<(String, usize)>::new()));
    let burst = {
        let (http, base, channel, acked) =
            (http.clone(), base.clone(), channel.clone(), acked.clone());
        let sessions = sessions.clone();
        tokio::spawn(async move {
            futures::stream::iter(sessions)
                .for_each_concurrent(CONVERSATIONS, |s| {
                    let (http, base, channel, acked) =
                        (http.clone(), base.clone(), channel.clone(), acked.clone());
                    async move {
                        for i in 0..MESSAGES_EACH {
                            if post(&http, &base, &channel, &s, i).await {
                                acked.lock().unwrap().insert((s.clone(), i));
                            } else {
                                return; // The server died; this client retries later.
                            }
                        }
                    }
                })
                .await;
        })
    };
    // Kill it once a good part of the burst was acknowledged, while turns are in flight.
    let killed_mid_burst = eventually(Duration::from_secs(30), || async {
        acked.lock().unwrap().len() >= CONVERSATIONS * MESSAGES_EACH / 3
    })
    .await;
    assert!(killed_mid_burst, "the burst got going");
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    burst.await.unwrap();

    // Every acknowledged message was committed before its acknowledgement.
    let acked: Vec<(String, usize)> = acked.lock().unwrap().iter().cloned().collect();
    assert!(
        acked.len() < CONVERSATIONS * MESSAGES_EACH,
        "the kill really interrupted the burst"
    );
    for (s, i) in &acked {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inbound_events WHERE provider_message_id = $1",
        )
        .bind(format!("{s}:m{i}"))
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert_eq!(stored, 1, "acknowledged message {s}/{i} was lost");
    }
    let pending_at_kill: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbound_events WHERE status = 'pending'")
            .fetch_one(&mut owner)
            .await
            .unwrap();

    // Restart; clients resend everything (acknowledged or not), as real clients retry.
    let mut child = start_binary(&database, port, &data_dir);
    wait_ready(&http, &base).await;
    for s in &sessions {
        for i in 0..MESSAGES_EACH {
            assert!(post(&http, &base, &channel, s, i).await, "resend {s}/{i}");
        }
    }
    let total = (CONVERSATIONS * MESSAGES_EACH) as i64;
    let settled = eventually(Duration::from_secs(60), || async {
        let mut c = sqlx::PgConnection::connect(&owner_url).await.unwrap();
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE status = 'done') AS done, count(*) AS all_events,
                    (SELECT count(*) FROM outbox WHERE status <> 'sent') AS unsent
               FROM inbound_events",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        row.get::<i64, _>("done") == total
            && row.get::<i64, _>("all_events") == total
            && row.get::<i64, _>("unsent") == 0
    })
    .await;
    assert!(
        settled,
        "every message answered and every reply delivered after the restart"
    );

    // Exactly once: each event belongs to one turn, each turn has one reply and one delivery.
    let (turns, replies, distinct_reply_turns, outbox): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM turns),
                (SELECT count(*) FROM messages WHERE role = 'agent'),
                (SELECT count(DISTINCT turn_id) FROM messages WHERE role = 'agent'),
                (SELECT count(*) FROM outbox)",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(turns, replies, "one reply per turn");
    assert_eq!(replies, distinct_reply_turns);
    assert_eq!(outbox, replies, "one delivery per reply");
    let events_in_turns: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(event_count), 0)::bigint FROM turns")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(
        events_in_turns, total,
        "every event answered by exactly one turn"
    );
    let customer: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE role = 'customer'")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(customer, total, "no customer message stored twice");
    eprintln!("sigkill test: {} acknowledged before the kill, {pending_at_kill} pending at the kill, {turns} turns", acked.len());

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
