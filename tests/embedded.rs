//! The default set-up: `switchboard serve` with no DATABASE_URL starts its own PostgreSQL in the
//! data dir, creates the demo tenant, answers, stops PostgreSQL on SIGTERM, keeps the data
//! across restarts, and starts PostgreSQL again when it dies.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn serve(data_dir: &std::path::Path, port: u16) -> std::process::Child {
    serve_with_debounce(data_dir, port, 30)
}

fn serve_with_debounce(
    data_dir: &std::path::Path,
    port: u16,
    debounce_ms: u64,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SWITCHBOARD_PIPELINE__DEBOUNCE_MS", debounce_ms.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start switchboard")
}

/// How many agent replies a web-chat session's history holds.
async fn agent_replies(http: &reqwest::Client, base: &str, channel: &str, session: &str) -> usize {
    let h: Value = http
        .get(format!(
            "{base}/api/v1/webchat/{channel}/sessions/{session}/messages"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    h["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "agent").count())
}

/// The demo tenant's web-chat channel, asked of the running server.
async fn demo_channel_id(http: &reqwest::Client, base: &str) -> String {
    let channels: Value = http
        .get(format!("{base}/api/v1/channels?tenant=demo"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    channels["channels"][0]["id"].as_str().unwrap().to_owned()
}

fn postmaster_pid(data_dir: &std::path::Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("pg").join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// The embedded server's port, from the fourth line of `postmaster.pid`.
fn postmaster_port(data_dir: &std::path::Path) -> Option<u16> {
    let text = std::fs::read_to_string(data_dir.join("pg").join("postmaster.pid")).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

#[tokio::test]
async fn serve_with_embedded_postgres_answers_and_keeps_data_across_restarts() {
    shared_pg(); // Ensures the binaries are discovered the same way; the server itself is separate.
    let data_dir =
        std::env::temp_dir().join(format!("sb-embedded-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let session = "embedded-session-1-0f3b6c2a9d4e4f1b8a7c5d6e";

    for round in 0..2 {
        let mut child = serve(&data_dir, port);
        wait_ready(&http, &base).await;
        let channel = demo_channel_id(&http, &base).await;
        let r = http
            .post(format!("{base}/api/v1/webchat/{channel}/messages"))
            .json(&json!({"session_id": session, "client_message_id": format!("r{round}"), "text": "Where are you located?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let answered = eventually(Duration::from_secs(20), || async {
            // Round 1 also sees round 0's exchange: the data survived the restart.
            agent_replies(&http, &base, &channel, session).await == round + 1
        })
        .await;
        assert!(
            answered,
            "round {round}: answered, with earlier history intact"
        );

        // Other local users cannot walk into the embedded database: it wants passwords, which
        // only Switchboard (in files of mode 0600) knows.
        let pg_port = postmaster_port(&data_dir).expect("postmaster.pid names the port");
        for user in ["postgres", "switchboard_app"] {
            use sqlx::Connection;
            let url = format!("postgres://{user}@127.0.0.1:{pg_port}/switchboard");
            let err = sqlx::PgConnection::connect(&url)
                .await
                .expect_err("a password is required");
            assert!(err.to_string().contains("password"), "{user}: {err}");
        }
        for file in ["pg-superuser-password", "pg-app-password"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data_dir.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{file} is private");
        }

        if round == 0 {
            // A command run while the server runs uses the server's database (it cannot start a
            // second PostgreSQL on the same data dir).
            let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args([
                    "user",
                    "create",
                    "layla@sahara.example",
                    "--tenant",
                    "demo",
                    "--role",
                    "sales_agent",
                    "--password-stdin",
                ])
                .env_remove("DATABASE_URL")
                .env("SWITCHBOARD_DATA_DIR", &data_dir)
                .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "error")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin
                        .take()
                        .unwrap()
                        .write_all(b"a long enough password\n")?;
                    c.wait_with_output()
                })
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let r = http
                .post(format!("{base}/api/v1/auth/sign-in"))
                .json(
                    &json!({"email": "layla@sahara.example", "password": "a long enough password"}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "the server sees the user at once");
        }
        let pid = postmaster_pid(&data_dir).expect("the embedded PostgreSQL is running");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0: {status}");
        let gone = eventually(Duration::from_secs(10), || async {
            (unsafe { libc::kill(pid, 0) }) != 0
        })
        .await;
        assert!(gone, "the embedded PostgreSQL stopped with Switchboard");
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Switchboard owns its embedded PostgreSQL: killed with SIGKILL while `serve` runs, it is
/// noticed, restarted on the same port with crash recovery, `/readyz` says 503 meanwhile, and
/// every message accepted before the crash is answered after it, exactly once.
#[tokio::test]
async fn a_killed_embedded_postgres_is_restarted_and_accepted_messages_are_answered_once() {
    shared_pg();
    let data_dir =
        std::env::temp_dir().join(format!("sb-supervised-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // A long quiet time after each message: the messages are stored and acknowledged, and
    // still unanswered, when the database dies.
    let mut child = KillOnDrop(serve_with_debounce(&data_dir, port, 1500));
    wait_ready(&http, &base).await;
    let channel = demo_channel_id(&http, &base).await;
    let post = |session: String, text: &'static str| {
        let (http, base, channel) = (http.clone(), base.clone(), channel.clone());
        async move {
            http.post(format!("{base}/api/v1/webchat/{channel}/messages"))
                .json(&json!({"session_id": session, "client_message_id": "m1", "text": text}))
                .send()
                .await
                .unwrap()
        }
    };
    let sessions: Vec<String> = (0..5)
        .map(|i| format!("supervised-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    for s in &sessions {
        let r = post(s.clone(), "Where are you located?").await;
        assert_eq!(r.status(), 202);
    }

    let pid = postmaster_pid(&data_dir).expect("the embedded PostgreSQL is running");
    let pg_port = postmaster_port(&data_dir).unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // A restart takes a fraction of a second, too short to watch reliably: the test takes the
    // port as soon as the dead server frees it and holds it for a moment, so the first
    // attempts to start again fail (and are retried on the same port, which the pool's URL
    // names).
    let squatter = {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", pg_port)) {
                break l;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the dead server freed its port"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    };

    // Noticed: not ready while PostgreSQL is away…
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let saw = loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 503 {
                break r.json::<Value>().await.unwrap_or(Value::Null);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz answered 503 while the database was down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(saw["status"], "not_ready", "{saw}");
    let refused = http
        .post(format!("{base}/api/v1/webchat/{channel}/messages"))
        .json(
            &json!({"session_id": "supervised-down-3c1e9b7a2f5d4e6c8b0a1d2e", "client_message_id": "m1", "text": "hello?"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        503,
        "a message while the database is away is refused, retryably"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    drop(squatter);
    // …and back within seconds, on the same port, with a new postmaster.
    let started = std::time::Instant::now();
    wait_ready(&http, &base).await;
    let back_after = started.elapsed();
    assert!(back_after < Duration::from_secs(30), "{back_after:?}");
    let new_pid = postmaster_pid(&data_dir).expect("a new postmaster");
    assert_ne!(new_pid, pid);
    assert_eq!(postmaster_port(&data_dir), Some(pg_port));

    // Every message acknowledged before the crash is answered, once.
    for s in &sessions {
        let answered = eventually(Duration::from_secs(30), || async {
            agent_replies(&http, &base, &channel, s).await > 0
        })
        .await;
        assert!(answered, "session {s} was answered after the restart");
    }
    // And it carries on: a new message after the restart is answered too.
    let r = post(
        "supervised-after-7d2c4b9e1f3a5c6d8e0f1a2b".into(),
        "Do you install batteries?",
    )
    .await;
    assert_eq!(r.status(), 202);

    // Exactly once: every event is done, each with one reply, nothing parked; counted from the
    // database itself (its superuser's password is in the data dir).
    let password = std::fs::read_to_string(data_dir.join("pg-superuser-password")).unwrap();
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{pg_port}/switchboard",
        password.trim()
    );
    let settled = eventually(Duration::from_secs(30), || async {
        use sqlx::Connection;
        let Ok(mut c) = sqlx::PgConnection::connect(&url).await else {
            return false;
        };
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM inbound_events WHERE status <> 'done')
                  + (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        unfinished == 0
    })
    .await;
    assert!(settled, "every accepted message was answered and delivered");
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let per_event: Vec<(String, i64)> = sqlx::query_as(
        "SELECT k.external_id, count(a.id)
           FROM inbound_events e
           JOIN conversations cv ON cv.id = e.conversation_id
           JOIN contacts k ON k.id = cv.contact_id
           LEFT JOIN messages a ON a.turn_id = e.turn_id AND a.role = 'agent'
          GROUP BY e.id, k.external_id",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(per_event.len(), sessions.len() + 1, "{per_event:?}");
    for (contact, replies) in &per_event {
        assert_eq!(*replies, 1, "{contact}: exactly one reply ({per_event:?})");
    }
    let outbox: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(
        outbox,
        vec![("sent".to_owned(), sessions.len() as i64 + 1)],
        "one delivery per reply"
    );
    c.close().await.ok();

    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_embedded_postgres_restarts_total 1"),
        "{metrics}"
    );

    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = child.0.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
