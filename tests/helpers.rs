//! `spawn_app()` and friends: a fresh database per test, the application on port 0, an HTTP
//! client, and polling helpers with deadlines (no fixed sleeps).

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use switchboard_actors::{FaultHook, FaultPoint};
use switchboard_core::store::identity::Role;
use switchboard_core::store::{channels, platform};
use switchboard_core::{ChannelId, Db, TenantId};
use switchboard_runtime::embedded_pg::{EmbeddedPgConfig, EmbeddedPostgres};
use switchboard_runtime::{Application, BuildOptions, Settings};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
const TEMPLATE_DB: &str = "sb_template";

/// Password the tests give the `switchboard_app` role on the shared server.
const APP_PASSWORD: &str = "0123456789abcdef0123456789abcdef";

/// The PostgreSQL server shared by every test of this run.
pub struct SharedPg {
    pub port: u16,
    superuser_password: String,
}

impl SharedPg {
    /// A URL for `postgres` (the superuser, which owns the schema) or `switchboard_app`.
    pub fn url(&self, user: &str, db: &str) -> String {
        let password = if user == "postgres" {
            self.superuser_password.as_str()
        } else {
            APP_PASSWORD
        };
        format!("postgres://{user}:{password}@127.0.0.1:{}/{db}", self.port)
    }
}

/// Starts the shared server once, on a thread of its own that lives as long as the process (the
/// server is told to stop when the process exits), and prepares the migrated template database.
pub fn shared_pg() -> &'static SharedPg {
    static PG: OnceLock<SharedPg> = OnceLock::new();
    PG.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let dir = test_cluster_dir();
                    let pg = EmbeddedPostgres::start(EmbeddedPgConfig {
                        cluster_dir: dir,
                        bin_dir: None,
                        port: None,
                        os_user: None,
                        durable: false,
                        shared_buffers: "256MB".into(),
                        launcher: Vec::new(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("could not start the test PostgreSQL: {e}"));
                    let port = pg.port();
                    let password = pg
                        .superuser_password()
                        .expect("new clusters have a superuser password")
                        .to_owned();
                    prepare_template(
                        &pg.url("postgres", "postgres"),
                        &pg.url("postgres", TEMPLATE_DB),
                    )
                    .await;
                    tx.send((port, password)).expect("send port");
                    // Keep the server (and this runtime) alive until the process exits.
                    std::future::pending::<()>().await;
                    drop(pg);
                });
            })
            .expect("spawn postgres thread");
        let (port, superuser_password) = rx
            .recv()
            .expect("the test PostgreSQL failed to start (see panic above)");
        SharedPg {
            port,
            superuser_password,
        }
    })
}

fn test_cluster_dir() -> PathBuf {
    // Under the system temp dir rather than the checkout: when tests run as root, PostgreSQL
    // runs as an unprivileged user who must be able to reach the cluster directory, and a
    // checkout may sit under a private home directory.
    let base = std::env::temp_dir().join("switchboard-test-pg");
    std::fs::create_dir_all(&base).expect("create test-pg dir");
    // Clusters of earlier runs whose process is gone are removed; ours is per process.
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name
                .strip_prefix("run-")
                .and_then(|p| p.parse::<i32>().ok())
            {
                let alive = unsafe { libc::kill(pid, 0) } == 0;
                if !alive {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    base.join(format!("run-{}", std::process::id())).join("pg")
}

async fn prepare_template(maintenance: &str, template: &str) {
    let mut conn = PgConnection::connect(maintenance).await.expect("connect");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {TEMPLATE_DB}"))
        .execute(&mut conn)
        .await
        .expect("drop template");
    sqlx::query(&format!("CREATE DATABASE {TEMPLATE_DB}"))
        .execute(&mut conn)
        .await
        .expect("create template");
    conn.close().await.ok();
    Db::migrate(template).await.expect("migrate template");
    // Roles are cluster-wide: one password serves every test database.
    let mut conn = PgConnection::connect(template).await.expect("connect");
    sqlx::query(&format!(
        "ALTER ROLE switchboard_app PASSWORD '{APP_PASSWORD}'"
    ))
    .execute(&mut conn)
    .await
    .expect("set app password");
    conn.close().await.ok();
}

/// A fresh, migrated database for one test; returns its name.
pub async fn fresh_database() -> String {
    let pg = shared_pg();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&pg.url("postgres", "postgres"))
        .await
        .expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    name
}

/// Settings for an application on a fresh database: port 0, short debounce, demo tenant.
pub fn test_settings(database: &str) -> Settings {
    let pg = shared_pg();
    let mut s = Settings {
        database_url: Some(SecretString::from(pg.url("postgres", database))),
        app_database_url: Some(SecretString::from(pg.url("switchboard_app", database))),
        listen: "127.0.0.1:0".into(),
        admin_token: Some(SecretString::from(ADMIN_TOKEN)),
        data_dir: std::env::temp_dir().join(format!("sb-test-{}", uuid::Uuid::new_v4().simple())),
        ..Settings::default()
    };
    s.pipeline.debounce_ms = 60;
    s.pipeline.shutdown_grace_secs = 2;
    // Every fake provider of the suite listens on loopback (the guard's own tests turn it off).
    s.allow_private_networks = true;
    // The demo tenant is every test's tenant, platform key or not.
    s.demo = Some(true);
    // Every test client posts from 127.0.0.1 (the limits' own tests set them).
    s.limits = switchboard_runtime::config::LimitsSettings::unlimited();
    s.pipeline.model_turns_per_hour = 0;
    s
}

/// A running application and what tests need to talk to it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// Owner connection string of this test's database (bypasses nothing: use for assertions).
    pub owner_url: String,
    /// Name of this test's database, to start another application on the same data.
    pub database: String,
    pub db: Db,
    pub root: ractor::ActorRef<switchboard_actors::RootMsg>,
    pub demo_tenant: TenantId,
    pub demo_channel: ChannelId,
    /// Every route the server serves and what it needs (the router's own table).
    pub routes: Vec<switchboard_runtime::http::RouteSpec>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

pub async fn spawn_app_with(
    tweak: impl FnOnce(&mut Settings),
    faults: Option<FaultHook>,
) -> TestApp {
    let database = fresh_database().await;
    spawn_app_on(&database, tweak, faults).await
}

/// An application on an existing test database (to restart one on the same data).
pub async fn spawn_app_on(
    database: &str,
    tweak: impl FnOnce(&mut Settings),
    faults: Option<FaultHook>,
) -> TestApp {
    let mut settings = test_settings(database);
    tweak(&mut settings);
    spawn_app_with_settings(
        settings,
        shared_pg().url("postgres", database),
        database,
        faults,
    )
    .await
}

/// An application with exactly these settings (for instance on a server of the test's own);
/// `owner_url` is the schema owner's login to its database, for assertions.
pub async fn spawn_app_with_settings(
    settings: Settings,
    owner_url: String,
    database: &str,
    faults: Option<FaultHook>,
) -> TestApp {
    let app = Application::build(settings, BuildOptions { faults })
        .await
        .expect("application builds");
    let routes = app.routes().to_vec();
    let base = format!("http://127.0.0.1:{}", app.port());
    let db = app.services().db.clone();
    let root = app.root();
    let demo = platform::find_tenant(db.pool(), "demo")
        .await
        .expect("query")
        .expect("demo tenant exists");
    let mut tx = db.tenant(demo.id).await.expect("tx");
    let channel = channels::list(&mut tx).await.expect("channels")[0].id;
    tx.commit().await.expect("commit");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    TestApp {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        owner_url,
        database: database.to_owned(),
        db,
        root,
        demo_tenant: demo.id,
        demo_channel: channel,
        routes,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Posts a web-chat message to `channel`; returns status and JSON body.
    pub async fn post_chat(
        &self,
        channel: ChannelId,
        session: &str,
        cid: &str,
        text: &str,
    ) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/webchat/{channel}/messages")))
            .json(&json!({"session_id": session, "client_message_id": cid, "text": text}))
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The session's history as JSON messages.
    pub async fn history(&self, channel: ChannelId, session: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.url(&format!(
                "/api/v1/webchat/{channel}/sessions/{session}/messages"
            )))
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("json");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the session has at least `n` agent messages; returns the history.
    pub async fn wait_for_agent_replies(
        &self,
        channel: ChannelId,
        session: &str,
        n: usize,
    ) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let history = self.history(channel, session).await;
            if history.iter().filter(|m| m["role"] == "agent").count() >= n {
                return history;
            }
            assert!(
                Instant::now() < end,
                "expected {n} agent replies in session {session}, history: {history:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The demo tenant's live and idle conversation agents.
    pub async fn agent_counts(&self) -> switchboard_actors::AgentCounts {
        self.root
            .call(
                |r| switchboard_actors::RootMsg::AgentCounts(self.demo_tenant, r),
                Some(Duration::from_secs(5)),
            )
            .await
            .expect("the root answers")
            .expect("agent counts")
    }

    /// Runs a query on the owner connection (a superuser that sees every tenant), for assertions.
    pub async fn owner(&self) -> PgConnection {
        PgConnection::connect(&self.owner_url)
            .await
            .expect("owner connection")
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A request with any bearer credential (an API key, a session token, the admin token);
    /// `None` sends none. Returns status and JSON body (`null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates `email` (display name `name`) with `role` in the demo tenant, through the same
    /// code as `switchboard user create`, signs them in, and returns their session token.
    pub async fn signed_in(&self, email: &str, name: &str, role: Role) -> String {
        let password = "a long enough password";
        switchboard_runtime::users::create_user(
            &self.db,
            email,
            name,
            Some(password.into()),
            false,
            Some(("demo", role)),
        )
        .await
        .expect("create user");
        self.sign_in(email, password).await
    }

    /// Signs in over the API and returns the session token.
    pub async fn sign_in(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/auth/sign-in",
                None,
                Some(json!({"email": email, "password": password, "return_token": true})),
            )
            .await;
        assert_eq!(status, 200, "sign-in of {email}: {body}");
        body["session_token"]
            .as_str()
            .expect("a session token")
            .to_owned()
    }

    /// An API key of tenant `tenant` with `role`, made as `switchboard key create` does.
    pub async fn api_key(&self, tenant: &str, role: Role) -> String {
        switchboard_runtime::users::create_key(&self.db, tenant, "test key", role)
            .await
            .expect("create key")
            .1
    }

    /// `GET /metrics` with the admin token: the Prometheus text.
    pub async fn metrics(&self) -> String {
        let r = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("metrics");
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        r.text().await.expect("metrics text")
    }

    /// Stops the application gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("clean shutdown");
        }
    }
}

/// The value of one series of a Prometheus page, `series` written as rendered
/// (`name{label="value",…}`, or the bare name of an unlabelled one), if the page has it.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A series of the tenant-labelled counters (`switchboard_inbound_total`,
/// `switchboard_outbound_total`, `switchboard_webhook_rejected_total`) for `tenant`, whose
/// label is its id while the application's `metrics.max_tenant_labels` is not reached. Each
/// test's tenant is new, so its series are its own even when every test shares the recorder.
pub fn tenant_series(
    name: &str,
    tenant: impl std::fmt::Display,
    channel: &str,
    third: (&str, &str),
) -> String {
    format!(
        "{name}{{tenant=\"{tenant}\",channel=\"{channel}\",{}=\"{}\"}}",
        third.0, third.1
    )
}

/// Polls `check` until it returns true or `deadline` passes; returns whether it succeeded.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session id unique to the test.
/// A fault hook under which the first turn whose text contains `SLOW` thinks for `delay` before
/// committing (a newer message still interrupts it), and the count of turns that reached it.
pub fn slow_once(delay: Duration) -> (FaultHook, Arc<AtomicUsize>) {
    let entered = Arc::new(AtomicUsize::new(0));
    let counted = entered.clone();
    let hook: FaultHook = Arc::new(move |point: &FaultPoint<'_>| {
        let FaultPoint::BeforeCommit { customer_text, .. } = point;
        (customer_text.contains("SLOW") && counted.fetch_add(1, Ordering::SeqCst) == 0)
            .then_some(delay)
    });
    (hook, entered)
}

pub fn session() -> String {
    format!("s-{}", uuid::Uuid::new_v4().simple())
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the real binary (`serve`) on a database of the shared server, on `port`, with a short
/// debounce and effect lease, plus `extra` environment variables.
pub fn start_binary(
    database: &str,
    port: u16,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> std::process::Child {
    let pg = shared_pg();
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
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
        .env("SWITCHBOARD_ALLOW_PRIVATE_NETWORKS", "true")
        .env("SWITCHBOARD_LIMITS__WEBCHAT_SESSION_BURST", "1000000")
        .env("SWITCHBOARD_LIMITS__WEBCHAT_IP_BURST", "1000000")
        .env("SWITCHBOARD_PIPELINE__DEBOUNCE_MS", "30")
        // An effect interrupted by a kill is due again soon after the restart.
        .env("SWITCHBOARD_ACTIONS__EFFECT_LEASE_SECS", "3")
        .env("RUST_LOG", "warn")
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start the switchboard binary")
}

/// A child process that is killed if the test fails before stopping it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits until a server answers `GET /readyz` with 200.
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let ok = eventually(Duration::from_secs(60), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ok, "the server at {base} became ready");
}

/// The Python interpreter of the test peers' virtualenv (`scripts/setup.sh` installs it).
pub fn python_peer() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/py/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh to install the Python test peers",
        py.display()
    );
    py
}

/// Runs `script` with the peers' Python, `input` as JSON on stdin; returns its stdout as JSON.
pub fn run_python(script: &str, input: &Value) -> Value {
    use std::io::Write;
    let mut child = std::process::Command::new(python_peer())
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// A real SMTP server (`python -m aiosmtpd`) delivering into a Maildir; stopped on drop.
pub struct Smtpd {
    child: std::process::Child,
    pub port: u16,
    pub maildir: std::path::PathBuf,
}

impl Smtpd {
    pub async fn start() -> Smtpd {
        let port = free_port();
        let maildir =
            std::env::temp_dir().join(format!("sb-maildir-{}", uuid::Uuid::new_v4().simple()));
        let child = std::process::Command::new(python_peer())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let up = eventually(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "aiosmtpd listens on {port}");
        Smtpd {
            child,
            port,
            maildir,
        }
    }

    /// The stored messages, oldest first, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> =
            std::fs::read_dir(self.maildir.join("new"))
                .map(|d| {
                    d.flatten()
                        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                        .collect()
                })
                .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let ok = eventually(Duration::from_secs(20), || async {
            self.messages().len() >= n
        })
        .await;
        assert!(
            ok,
            "expected {n} emails in the Maildir, found {}",
            self.messages().len()
        );
        self.messages()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// An OpenAI-compatible chat endpoint on loopback that records every request body and answers
/// with the assistant message `answer` gives for it. Returns its base URL (`…/v1`) and the log.
pub async fn recording_model(
    answer: impl Fn(&Value) -> Value + Clone + Send + Sync + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen: Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let (log, answer) = (log.clone(), answer.clone());
            async move {
                log.lock().unwrap().push(body.clone());
                let message = answer(&body);
                axum::Json(json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

/// Makes every turn of a conversation whose customer's id starts with `broken-` fail: inserting
/// its `turns` row raises, as a broken table, a full disk or a crashed backend would. Run it on
/// the owner connection.
pub const BREAK_TURNS: &str = r#"
CREATE FUNCTION test_break_turns() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM conversations c JOIN contacts k ON k.id = c.contact_id
                WHERE c.id = NEW.conversation_id AND k.external_id LIKE 'broken-%') THEN
        RAISE EXCEPTION 'injected fault: turns cannot be stored';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_break_turns BEFORE INSERT ON turns
    FOR EACH ROW EXECUTE FUNCTION test_break_turns();
"#;
