//! The default set-up: `switchboard serve` with no DATABASE_URL starts its own PostgreSQL in the
//! data dir, creates the demo tenant, answers, stops PostgreSQL on SIGTERM, and keeps the data
//! across restarts.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn serve(data_dir: &std::path::Path, port: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SWITCHBOARD_PIPELINE__DEBOUNCE_MS", "30")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start switchboard")
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
    let session = "embedded-session-1";

    for round in 0..2 {
        let mut child = serve(&data_dir, port);
        wait_ready(&http, &base).await;
        let channels: Value = http
            .get(format!("{base}/api/v1/channels?tenant=demo"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let channel = channels["channels"][0]["id"].as_str().unwrap().to_owned();
        let r = http
            .post(format!("{base}/api/v1/webchat/{channel}/messages"))
            .json(&json!({"session_id": session, "client_message_id": format!("r{round}"), "text": "Where are you located?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let answered = eventually(Duration::from_secs(20), || async {
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
            // Round 1 also sees round 0's exchange: the data survived the restart.
            h["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "agent")
                .count()
                == round + 1
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
