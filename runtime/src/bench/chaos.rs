//! `switchboard bench --suite chaos`: the whole product under faults, counted.
//!
//! The harness runs `switchboard serve` as a child process with its default embedded
//! PostgreSQL (the laptop install), several tenants, and every webhook channel kind the local
//! fakes can play: web chat, signed WhatsApp webhooks, Telegram webhooks with their secret
//! token, Twilio SMS with its signature, and e-mail as Mailgun posts it (signed), answered
//! over SMTP. Replies go to fake provider APIs and a small SMTP server in the harness, which
//! record every send; the platform model is a fake OpenAI-compatible server that answers
//! most requests and otherwise fails the ways real ones do: 500s, 429s with `Retry-After`,
//! requests that hang past the timeout, and tool calls that are malformed.
//!
//! Once in each conversation, at a point of the run that differs from one conversation to the
//! next, the customer asks for a meeting (the model calls `find_slots`, then `book_meeting`),
//! leaves a lead (the CRM webhook, which the fake CRM fails now and then), or asks for a person
//! (an escalation, whose notifications reach the sales team on Telegram and by e-mail).
//!
//! While messages flow, the server is killed with SIGKILL at random moments and started again,
//! and the embedded PostgreSQL's postmaster is killed too (the server must bring it back by
//! itself, without a restart). Clients behave like providers: a message not acknowledged is
//! sent again later, and some acknowledged messages are delivered a second time. At the end,
//! once the pipeline has drained, the harness counts from the database and the fakes:
//! accepted, stored, answered, duplicates (customer messages stored twice, replies per turn,
//! deliveries beyond the outbox, bookings, escalations, notifications and CRM calls) and lost
//! (accepted but not stored, or stored but never taken by a turn). Duplicates and lost must
//! both be 0; [`ChaosReport::failures`] says what broke.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

/// What a chaos run does.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Customer messages in all.
    pub messages: usize,
    /// SIGKILLs of the server, at random moments of the run.
    pub server_kills: usize,
    /// SIGKILLs of PostgreSQL's postmaster (the server restarts it by itself).
    pub database_kills: usize,
    /// Tenants, each with one channel of every kind.
    pub tenants: usize,
    /// Customers per tenant and channel.
    pub customers: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The `switchboard` binary to run as the server.
    pub server_bin: PathBuf,
    /// Seed of the kill schedule and of which messages are delivered twice.
    pub seed: u64,
    /// How long the pipeline may take to drain after the last message was accepted.
    pub settle: Duration,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions {
            messages: 5000,
            server_kills: 10,
            database_kills: 1,
            tenants: 4,
            customers: 5,
            concurrency: 32,
            server_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("switchboard")),
            seed: 0x5eed_cafe,
            settle: Duration::from_secs(300),
        }
    }
}

/// The counts of a run (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ChaosReport {
    pub messages: usize,
    /// Messages acknowledged by the server (each counted once, however often it was sent).
    pub accepted: usize,
    /// Second deliveries of an already acknowledged message, acknowledged again.
    pub redelivered: usize,
    /// Requests refused or unanswered (the server was down), each sent again later.
    pub retried_sends: usize,
    /// Accepted messages stored as a customer message.
    pub stored: usize,
    /// Stored messages taken by a turn that committed.
    pub answered: usize,
    /// Stored messages parked for a person after repeated failures (kept, not lost).
    pub parked: usize,
    /// Customer messages stored more than once.
    pub duplicate_messages: usize,
    /// Turns with more than one reply.
    pub duplicate_replies: usize,
    /// Sends the fake providers received beyond the outbox rows they belong to.
    pub duplicate_deliveries: usize,
    /// Of those, the ones explained by an attempt a kill interrupted after the provider took
    /// the message and before the server recorded it: the one window no provider API here
    /// lets us close (none takes an idempotency key), at most one per interrupted attempt.
    pub redelivered_after_interruption: usize,
    /// Outbox rows never received by their provider.
    pub undelivered: usize,
    /// Meetings booked (each conversation asks for one once).
    pub bookings: usize,
    /// Bookings beyond the first of a conversation.
    pub duplicate_bookings: usize,
    /// Escalations opened (each conversation asks for a person once at most).
    pub escalations: usize,
    /// Escalations beyond the first of a conversation.
    pub duplicate_escalations: usize,
    /// Notifications the sales team received: Telegram messages and e-mails (escalations,
    /// meeting invitations).
    pub notifications: usize,
    /// Notifications received more than once.
    pub duplicate_notifications: usize,
    /// Of those, the ones an interrupted attempt explains (as for replies).
    pub notifications_after_interruption: usize,
    /// Signed calls the CRM received.
    pub crm_calls: usize,
    /// CRM calls received twice: the same delivery again, or the same lead state under a new one.
    pub duplicate_crm_calls: usize,
    /// Of those, the ones an interrupted attempt explains.
    pub crm_after_interruption: usize,
    /// E-mails the SMTP server took (replies, notifications, invitations).
    pub emails: usize,
    /// The customers whose replies were not received as often as they were sent: channel
    /// kind, recipient, rows sent, sends received.
    pub mismatched: Vec<(String, String, i64, i64)>,
    /// Accepted but not stored, or stored but neither answered nor parked.
    pub lost: usize,
    pub server_kills: usize,
    pub database_kills: usize,
    /// Seconds from each server kill until the restarted server was ready again.
    pub restart_seconds: Vec<f64>,
    /// Model requests the fake answered with a fault, by kind.
    pub model_faults: HashMap<String, u64>,
    pub model_requests: u64,
    pub seconds: f64,
    /// The run's directory (server log, data), kept when the run failed or parked messages.
    pub kept: Option<String>,
}

impl ChaosReport {
    /// What broke, if anything.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.lost > 0 {
            out.push(format!("{} messages lost", self.lost));
        }

        for (n, what) in [
            (self.duplicate_messages, "customer messages stored twice"),
            (self.duplicate_replies, "turns answered twice"),
            (
                self.duplicate_deliveries - self.redelivered_after_interruption,
                "replies delivered twice without an interrupted attempt",
            ),
            (self.undelivered, "replies never delivered"),
            (self.duplicate_bookings, "meetings booked twice"),
            (self.duplicate_escalations, "conversations escalated twice"),
            (
                self.duplicate_notifications
                    .saturating_sub(self.notifications_after_interruption),
                "notifications received twice without an interrupted attempt",
            ),
            (
                self.duplicate_crm_calls
                    .saturating_sub(self.crm_after_interruption),
                "CRM calls received twice without an interrupted attempt",
            ),
        ] {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        }
        if self.accepted < self.messages {
            out.push(format!(
                "only {} of {} messages were accepted",
                self.accepted, self.messages
            ));
        }
        out
    }
}

/// Runs the chaos suite and returns its JSON result.
pub async fn run(opts: ChaosOptions) -> anyhow::Result<Value> {
    let started_at = chrono::Utc::now();
    let report = execute(&opts).await?;
    let failures = report.failures();
    Ok(json!({
        "suite": "chaos",
        "started_at": started_at.to_rfc3339(),
        "commit": super::probe::commit().await,
        "machine": super::probe::machine(),
        "config": {
            "messages": opts.messages, "server_kills": opts.server_kills,
            "database_kills": opts.database_kills, "tenants": opts.tenants,
            "customers": opts.customers, "concurrency": opts.concurrency, "seed": opts.seed,
            "channels": ["webchat", "whatsapp", "telegram", "sms", "email"],
        },
        "counts": report,
        "passed": failures.is_empty(),
        "failures": failures,
    }))
}

/// Runs the chaos suite and returns its counts.
pub async fn execute(opts: &ChaosOptions) -> anyhow::Result<ChaosReport> {
    anyhow::ensure!(opts.messages > 0 && opts.tenants > 0 && opts.customers > 0);
    let t0 = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let scratch = std::env::temp_dir().join(format!("switchboard-chaos-{run}"));
    std::fs::create_dir_all(&scratch)?;
    let fakes = Fakes::start().await?;
    let mut server = Server::new(opts.server_bin.clone(), scratch.clone(), &fakes.base)?;
    let outcome = async {
        server.start().await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(opts.concurrency)
            .build()?;
        let tenants = setup(&http, &server, &fakes, opts, &run).await?;
        let load = Arc::new(Load::new(opts, &run));
        let senders = (0..opts.concurrency.max(1)).map(|_| {
            let (http, load, tenants, base) = (
                http.clone(),
                load.clone(),
                tenants.clone(),
                server.base.clone(),
            );
            tokio::spawn(async move { send_loop(&http, &base, &tenants, &load).await })
        });
        let senders: Vec<_> = senders.collect();
        let kills = chaos(&mut server, &load, opts).await;
        if kills.is_err() {
            // The server could not be brought back: nobody will acknowledge the rest.
            load.abandoned.store(true, Ordering::Release);
        }
        for s in senders {
            s.await?;
        }
        let (server_kills, database_kills, restart_seconds) = kills?;
        // The run may end right after a kill: the server drains what it holds.
        let db = server.database_url().await?;
        settle(&db, opts.settle).await?;
        let mut report = count(&db, &run, &load, &fakes).await?;
        report.server_kills = server_kills;
        report.database_kills = database_kills;
        report.restart_seconds = restart_seconds;
        Ok::<_, anyhow::Error>(report)
    }
    .await;
    server.stop();
    let mut report = match outcome {
        Ok(r) => r,
        Err(e) => {
            let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Err(e.context(format!("server log (last lines):\n{tail}")));
        }
    };
    report.messages = opts.messages;
    if report.failures().is_empty() && report.parked == 0 {
        let _ = std::fs::remove_dir_all(&scratch);
    } else {
        // Kept for a look: the server's log and its database.
        report.kept = Some(scratch.display().to_string());
    }
    report.model_requests = fakes.state.model_requests.load(Ordering::Relaxed);
    report.model_faults = fakes.state.faults.lock().expect("faults").clone();
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// The server under test.

const ADMIN_TOKEN: &str = "chaos-admin-token-0123456789abcdef";

struct Server {
    bin: PathBuf,
    data_dir: PathBuf,
    port: u16,
    base: String,
    model_base: String,
    child: Option<Child>,
}

impl Server {
    fn new(bin: PathBuf, scratch: PathBuf, fakes: &str) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(Server {
            bin,
            data_dir: scratch.join("data"),
            port,
            base: format!("http://127.0.0.1:{port}"),
            model_base: format!("{fakes}/v1"),
            child: None,
        })
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.with_file_name("server.log")
    }

    /// Starts the server and waits until it is ready.
    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("SWITCHBOARD_APP_DATABASE_URL")
            .env_remove("SWITCHBOARD_CONFIG")
            .env("SWITCHBOARD_DATA_DIR", &self.data_dir)
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SWITCHBOARD_PUBLIC_BASE_URL", &self.base)
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SWITCHBOARD_DEMO", "false")
            // The fakes listen on loopback.
            .env("SWITCHBOARD_ALLOW_PRIVATE_NETWORKS", "true")
            // Every simulated customer posts from this machine and talks fast.
            .env("SWITCHBOARD_LIMITS__WEBCHAT_SESSION_BURST", "1000000")
            .env("SWITCHBOARD_LIMITS__WEBCHAT_IP_BURST", "1000000")
            .env("SWITCHBOARD_PIPELINE__MODEL_TURNS_PER_HOUR", "0")
            .env("OPENAI_API_KEY", "sk-chaos")
            .env("OPENAI_BASE_URL", &self.model_base)
            // A hanging model request is cut off soon, and retried once.
            .env("SWITCHBOARD_LLM__TIMEOUT_MS", "1500")
            .env("SWITCHBOARD_LLM__MAX_RETRIES", "1")
            .env("SWITCHBOARD_LLM__MAX_RETRY_WAIT_MS", "2000")
            .env("SWITCHBOARD_ACTIONS__EFFECT_LEASE_SECS", "3")
            .env("SWITCHBOARD_ACTIONS__EFFECT_BACKOFF_MS", "200")
            .env("SWITCHBOARD_ACTIONS__EFFECT_MAX_BACKOFF_SECS", "2")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("could not start {}", self.bin.display()))?;
        self.child = Some(child);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("the server exited while starting: {status}");
            }
            let ready = http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server was not ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, no goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: the graceful way out at the end.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: as in `kill`.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn cluster_dir(&self) -> PathBuf {
        self.data_dir.join("pg")
    }

    /// SIGKILL of the embedded PostgreSQL's postmaster.
    fn kill_database(&self) -> anyhow::Result<()> {
        let pid_file = self.cluster_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        let pid: i32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("postmaster.pid names no process")?;
        // SAFETY: kill(2) on the postmaster of the cluster this run created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        Ok(())
    }

    /// The superuser's URL of the server's database. A database killed near the end of the
    /// load may still be coming back (its supervisor waits for the old processes to let go of
    /// the port), so this waits for it.
    async fn database_url(&self) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((port, password)) = crate::embedded_pg::running_server(&self.cluster_dir())
            {
                return Ok(format!(
                    "postgres://postgres:{password}@127.0.0.1:{port}/switchboard"
                ));
            }
            if Instant::now() > deadline {
                bail!("the embedded PostgreSQL was not running again within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Tenants and channels.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Webchat,
    Whatsapp,
    Telegram,
    Sms,
    Email,
}

const KINDS: [Kind; 5] = [
    Kind::Webchat,
    Kind::Whatsapp,
    Kind::Telegram,
    Kind::Sms,
    Kind::Email,
];

/// One tenant's channels, as the senders need them.
#[derive(Clone, Debug)]
struct Tenant {
    webchat: String,
    whatsapp_url: String,
    whatsapp_secret: String,
    phone_number_id: String,
    telegram_url: String,
    telegram_secret: String,
    sms_url: String,
    sms_token: String,
    sms_number: String,
    email_url: String,
    email_key: String,
}

const TWILIO_ACCOUNT: &str = "AC0123456789abcdef0123456789abc4a0";
const CRM_SECRET: &str = "chaos-crm-secret-0123456789abcdef0123";
/// The domain of the customers' e-mail addresses; the sales team's are elsewhere.
const CUSTOMER_DOMAIN: &str = "customers.chaos.example";

/// The start of every sales team's Telegram chat id; customers' chats are positive.
const NOTIFY_CHAT_PREFIX: &str = "-1007770";

/// Where tenant `t`'s sales team hears of escalations on Telegram.
fn notify_chat(t: usize) -> String {
    format!("{NOTIFY_CHAT_PREFIX}{t:05}")
}

fn team_email(t: usize) -> String {
    format!("team-{t}@sales.chaos.example")
}

fn sales_email(t: usize) -> String {
    format!("sales-{t}@sales.chaos.example")
}

fn customer_email(run: &str, tenant: usize, customer: usize) -> String {
    format!("c{customer:04}-t{tenant}-{run}@{CUSTOMER_DOMAIN}")
}

async fn setup(
    http: &reqwest::Client,
    server: &Server,
    fakes: &Fakes,
    opts: &ChaosOptions,
    run: &str,
) -> anyhow::Result<Arc<Vec<Tenant>>> {
    let mut out = Vec::with_capacity(opts.tenants);
    for t in 0..opts.tenants {
        let slug = format!("chaos-{run}-{t}");
        admin(
            http,
            server,
            reqwest::Method::POST,
            "/api/v1/tenants",
            json!({"slug": slug, "name": format!("Chaos {t}")}),
        )
        .await?;
        let list = admin(
            http,
            server,
            reqwest::Method::GET,
            &format!("/api/v1/channels?tenant={slug}"),
            Value::Null,
        )
        .await?;
        let webchat = list["channels"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["kind"] == "webchat"))
            .and_then(|c| c["id"].as_str())
            .context("a new tenant has a web-chat channel")?
            .to_owned();
        let path = format!("/api/v1/channels?tenant={slug}");
        let channel = |kind: &'static str, config: Value| {
            admin(
                http,
                server,
                reqwest::Method::POST,
                &path,
                json!({"kind": kind, "name": format!("Chaos {kind}"), "config": config}),
            )
        };
        let phone_number_id = format!("{}", 106_550_000_000u64 + t as u64);
        let whatsapp_secret = format!("chaos-app-secret-{run}-{t}");
        let wa = channel(
            "whatsapp",
            json!({"phone_number_id": phone_number_id, "api_base_url": fakes.base,
                   "app_secret": whatsapp_secret, "access_token": format!("chaos-token-{t}"),
                   "verify_token": format!("chaos-verify-{t}")}),
        )
        .await?;
        let telegram_secret = format!("chaos-secret-{run}-{t}");
        let tg = channel(
            "telegram",
            json!({"bot_token": format!("{}:chaos-bot-{run}-{t}", 700_000 + t),
                   "secret_token": telegram_secret, "api_url": fakes.base}),
        )
        .await?;
        let sms_token = format!("chaos-auth-token-{run}-{t}");
        let sms_number = format!("+1555{:07}", 1000 + t);
        let sms = channel(
            "sms",
            json!({"account_sid": TWILIO_ACCOUNT, "auth_token": sms_token,
                   "from_number": sms_number, "api_base_url": fakes.base}),
        )
        .await?;
        let email_key = format!("chaos-mailgun-key-{run}-{t}");
        let email = channel(
            "email",
            json!({"from_address": format!("hello@t{t}.chaos.example"), "from_name": "Chaos",
                   "smtp_host": "127.0.0.1", "smtp_port": fakes.smtp_port,
                   "smtp_security": "none", "webhook_signing_key": email_key}),
        )
        .await?;
        let url = |v: &Value| {
            v["channel"]["webhook_url"]
                .as_str()
                .map(str::to_owned)
                .context("a webhook channel has a webhook URL")
        };
        let id = |v: &Value| v["channel"]["id"].clone();
        // Meetings: every day, all day, in half-hour slots; the sales team and the CRM are the
        // fakes'.
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        admin(
            http,
            server,
            reqwest::Method::PUT,
            &format!("/api/v1/availability?tenant={slug}"),
            json!({
                "timezone": "UTC",
                "weekly_hours": days.iter().map(|d| (d.to_string(), json!([["00:00", "23:30"]])))
                    .collect::<serde_json::Map<_, _>>(),
                "slot_minutes": 30, "buffer_minutes": 0, "min_notice_minutes": 0,
                "horizon_days": 14,
                "salesperson_name": "Chaos Sales", "salesperson_email": sales_email(t),
                "meeting_title": "Chaos consultation", "location": "Online",
            }),
        )
        .await?;
        admin(
            http,
            server,
            reqwest::Method::PUT,
            &format!("/api/v1/actions/settings?tenant={slug}"),
            json!({
                "enabled": ["booking", "handoff", "leads"],
                // People are brought in when customers ask, not because the fake model's
                // answers know nothing of the (empty) knowledge base.
                "max_failed_answers": 0,
                "notify_emails": [team_email(t)],
                "notify_email_channel_id": id(&email),
                "notify_telegram_chat_id": notify_chat(t),
                "notify_telegram_channel_id": id(&tg),
                "crm_webhook_url": format!("{}/crm/{t}", fakes.base),
                "crm_secret": CRM_SECRET,
            }),
        )
        .await?;
        out.push(Tenant {
            webchat,
            whatsapp_url: url(&wa)?,
            whatsapp_secret,
            phone_number_id,
            telegram_url: url(&tg)?,
            telegram_secret,
            sms_url: url(&sms)?,
            sms_token,
            sms_number,
            email_url: url(&email)?,
            email_key,
        });
    }
    Ok(Arc::new(out))
}

async fn admin(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = http
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(ADMIN_TOKEN);
    if !body.is_null() {
        req = req.json(&body);
    }
    let r = req.send().await?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {body}");
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// The load: every message sent until acknowledged, some twice.

/// One customer message of the run.
#[derive(Clone, Copy, Debug)]
struct Msg {
    key: usize,
    tenant: usize,
    kind: Kind,
    customer: usize,
    /// A second delivery of a message already acknowledged.
    again: bool,
}

struct Load {
    run: String,
    total: usize,
    /// Conversations: tenants × channel kinds × customers.
    conversations: usize,
    /// The Mailgun timestamp each e-mail was first signed with: a provider sends the same post
    /// again, signature and all.
    email_timestamps: Mutex<HashMap<usize, i64>>,
    queue: Mutex<std::collections::VecDeque<Msg>>,
    accepted: AtomicUsize,
    redelivered: AtomicUsize,
    retried: AtomicUsize,
    /// Messages not yet acknowledged (first deliveries) or second deliveries still to make.
    outstanding: AtomicUsize,
    /// The server is being restarted: senders wait instead of spinning on refused connections.
    down: AtomicBool,
    /// The run failed: senders stop.
    abandoned: AtomicBool,
    /// Senders hold back once this many messages were accepted, until the next kill has
    /// happened: a fast server would otherwise take every message before the kills that were
    /// meant to hit the middle of the load. The gate is set a little past each kill point, so
    /// requests are in flight when the kill comes.
    gate: AtomicUsize,
    seed: u64,
}

impl Load {
    fn new(opts: &ChaosOptions, run: &str) -> Load {
        let conversations = opts.tenants * KINDS.len() * opts.customers;
        let queue = (0..opts.messages)
            .map(|key| {
                let c = key % conversations;
                Msg {
                    key,
                    tenant: c % opts.tenants,
                    kind: KINDS[(c / opts.tenants) % KINDS.len()],
                    customer: c / (opts.tenants * KINDS.len()),
                    again: false,
                }
            })
            .collect();
        let twice = (0..opts.messages)
            .filter(|k| redeliver(opts.seed, *k))
            .count();
        Load {
            run: run.to_owned(),
            total: opts.messages,
            conversations,
            email_timestamps: Mutex::new(HashMap::new()),
            queue: Mutex::new(queue),
            accepted: AtomicUsize::new(0),
            redelivered: AtomicUsize::new(0),
            retried: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(opts.messages + twice),
            down: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            gate: AtomicUsize::new(usize::MAX),
            seed: opts.seed,
        }
    }

    fn text(&self, key: usize) -> String {
        let run = &self.run;
        let ask = match self.ask(key) {
            Ask::Answer => "do you install batteries?".to_owned(),
            Ask::Meeting => "please book me a meeting [book]".to_owned(),
            Ask::Lead => format!(
                "I want to buy panels for my villa, my email is lead{key}-{run}@leads.chaos.example [lead]"
            ),
            Ask::Person => "can I talk to a human please? [human]".to_owned(),
        };
        format!("chaos {run} #{key}: {ask}")
    }

    /// What message `key` asks for. One message of each conversation asks for something,
    /// in a round that differs from conversation to conversation (so the asks are spread over
    /// the run and its kills); which thing depends on the conversation.
    fn ask(&self, key: usize) -> Ask {
        let c = key % self.conversations;
        let rounds = (self.total / self.conversations).max(1);
        if key / self.conversations != (c * 7 + 3) % rounds {
            return Ask::Answer;
        }
        match c % 4 {
            1 => Ask::Meeting,
            2 => Ask::Lead,
            3 => Ask::Person,
            _ => Ask::Answer,
        }
    }
}

/// What a customer message asks for besides an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    Answer,
    Meeting,
    Lead,
    Person,
}

/// Whether message `key` is delivered a second time after its acknowledgement (one in 16).
fn redeliver(seed: u64, key: usize) -> bool {
    splitmix(seed ^ key as u64).is_multiple_of(16)
}

/// SplitMix64: a small, good mixer for the run's reproducible choices.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

async fn send_loop(http: &reqwest::Client, base: &str, tenants: &[Tenant], load: &Load) {
    loop {
        if load.outstanding.load(Ordering::Acquire) == 0 || load.abandoned.load(Ordering::Acquire) {
            return;
        }
        if load.down.load(Ordering::Acquire)
            || load.accepted.load(Ordering::Acquire) >= load.gate.load(Ordering::Acquire)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let next = load.queue.lock().expect("queue").pop_front();
        let Some(msg) = next else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if send(http, base, &tenants[msg.tenant], load, msg).await {
            if msg.again {
                load.redelivered.fetch_add(1, Ordering::Relaxed);
            } else {
                load.accepted.fetch_add(1, Ordering::Relaxed);
                if redeliver(load.seed, msg.key) {
                    load.queue
                        .lock()
                        .expect("queue")
                        .push_back(Msg { again: true, ..msg });
                }
            }
            load.outstanding.fetch_sub(1, Ordering::AcqRel);
        } else {
            // The server is down or restarting: the provider delivers it again later.
            load.retried.fetch_add(1, Ordering::Relaxed);
            load.queue.lock().expect("queue").push_back(msg);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One delivery of `msg`, signed as its provider signs; true when acknowledged.
async fn send(http: &reqwest::Client, base: &str, t: &Tenant, load: &Load, msg: Msg) -> bool {
    let text = load.text(msg.key);
    let (run, key, c) = (&load.run, msg.key, msg.customer);
    let request = match msg.kind {
        Kind::Webchat => http
            .post(format!("{base}/api/v1/webchat/{}/messages", t.webchat))
            .json(&json!({
                "session_id": format!("chaos-session-{run}-{:02}-{c:04}-0123456789", msg.tenant),
                "client_message_id": format!("m{key}"),
                "text": text,
            })),
        Kind::Whatsapp => {
            let wa_id = format!("{}", 971_500_000_000u64 + c as u64);
            let body = serde_json::to_vec(&json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881",
                                 "phone_number_id": t.phone_number_id},
                    "contacts": [{"profile": {"name": format!("Customer {c}")}, "wa_id": wa_id}],
                    "messages": [{"from": wa_id, "id": format!("wamid.chaos-{run}-{key}"),
                                  "timestamp": chrono::Utc::now().timestamp().to_string(),
                                  "type": "text", "text": {"body": text}}],
                }}]}],
            }))
            .expect("JSON values serialize");
            let signature = format!(
                "sha256={}",
                switchboard_channels::webhook::hex(&switchboard_channels::webhook::hmac_sha256(
                    t.whatsapp_secret.as_bytes(),
                    &body
                ))
            );
            http.post(&t.whatsapp_url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body)
        }
        Kind::Telegram => {
            let chat = 880_000_000 + c as i64;
            http.post(&t.telegram_url)
                .header("X-Telegram-Bot-Api-Secret-Token", &t.telegram_secret)
                .json(&json!({
                    "update_id": key,
                    "message": {
                        "message_id": key, "date": chrono::Utc::now().timestamp(),
                        "chat": {"id": chat, "type": "private", "first_name": "Customer"},
                        "from": {"id": chat, "is_bot": false, "first_name": "Customer"},
                        "text": text,
                    },
                }))
        }
        Kind::Sms => {
            let params: Vec<(String, String)> = [
                ("MessageSid", format!("SMchaos{run}{key:010}")),
                ("AccountSid", TWILIO_ACCOUNT.to_owned()),
                ("From", format!("+1444{c:07}")),
                ("To", t.sms_number.clone()),
                ("Body", text),
                ("NumMedia", "0".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let signature =
                switchboard_channels::twilio::compute_signature(&t.sms_token, &t.sms_url, &params);
            http.post(&t.sms_url)
                .header("X-Twilio-Signature", signature)
                .form(&params)
        }
        Kind::Email => {
            let timestamp = *load
                .email_timestamps
                .lock()
                .expect("timestamps")
                .entry(key)
                .or_insert_with(|| chrono::Utc::now().timestamp());
            let token = format!("chaos{run}{key:010}0123456789abcdef0123456789");
            let signature =
                switchboard_channels::webhook::hex(&switchboard_channels::webhook::hmac_sha256(
                    t.email_key.as_bytes(),
                    format!("{timestamp}{token}").as_bytes(),
                ));
            let from = customer_email(run, msg.tenant, c);
            http.post(&t.email_url).form(&[
                ("sender", from.clone()),
                ("from", format!("Customer {c} <{from}>")),
                ("subject", "Solar panels".to_owned()),
                ("body-plain", text),
                (
                    "Message-Id",
                    format!("<chaos-{run}-{key}@{CUSTOMER_DOMAIN}>"),
                ),
                ("timestamp", timestamp.to_string()),
                ("token", token),
                ("signature", signature),
            ])
        }
    };
    request.send().await.is_ok_and(|r| r.status().is_success())
}

/// How long the server runs after a restart before the next kill.
const MIN_UPTIME: Duration = Duration::from_secs(2);

/// Kills the server `server_kills` times and PostgreSQL `database_kills` times, at random
/// points of the accepted count, until every message was acknowledged.
async fn chaos(
    server: &mut Server,
    load: &Load,
    opts: &ChaosOptions,
) -> anyhow::Result<(usize, usize, Vec<f64>)> {
    // Kill points: fractions of the messages accepted, spread at random over 5%..90%.
    let mut points: Vec<(usize, bool)> = (0..opts.server_kills)
        .map(|i| (false, i))
        .chain((0..opts.database_kills).map(|i| (true, i)))
        .map(|(database, i)| {
            let r = splitmix(
                opts.seed
                    .wrapping_add(1 + i as u64 + if database { 1000 } else { 0 }),
            );
            let at = opts.messages * 5 / 100 + (r as usize) % (opts.messages * 85 / 100).max(1);
            (at, database)
        })
        .collect();
    points.sort();
    let (mut server_kills, mut database_kills) = (0, 0);
    let mut restarts = Vec::new();
    let mut up_since = Instant::now();
    // Requests still in flight when a kill comes: as many as run at once, and some more.
    let slack = 2 * opts.concurrency.max(1);
    for (i, (at, database)) in points.into_iter().enumerate() {
        load.gate.store(at + slack, Ordering::Release);
        // A crash, not a crash loop: the server runs a moment before it is killed again.
        while up_since.elapsed() < MIN_UPTIME {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while load.accepted.load(Ordering::Relaxed) < at {
            if load.outstanding.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if database {
            server.kill_database()?;
            database_kills += 1;
        } else {
            load.down.store(true, Ordering::Release);
            let killed = Instant::now();
            server.kill();
            server_kills += 1;
            // Down for a moment, as a crashed process under a supervisor would be.
            let pause = splitmix(opts.seed ^ (i as u64) << 8) % 500;
            tokio::time::sleep(Duration::from_millis(pause)).await;
            load.down.store(false, Ordering::Release);
            server.start().await?;
            up_since = Instant::now();
            restarts.push(killed.elapsed().as_secs_f64());
        }
    }
    load.gate.store(usize::MAX, Ordering::Release);
    while load.outstanding.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((server_kills, database_kills, restarts))
}

// ---------------------------------------------------------------------------------------------
// Counting.

/// Waits until nothing is pending and every reply was handed to its provider.
async fn settle(url: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let drained = async {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let row = sqlx::query(
                "SELECT (SELECT count(*) FROM inbound_events WHERE status = 'pending') AS pending,
                        (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))
                          + (SELECT count(*) FROM effects WHERE status IN ('pending', 'sending'))
                            AS unsent",
            )
            .fetch_one(&mut c)
            .await?;
            Ok::<_, anyhow::Error>(
                row.get::<i64, _>("pending") == 0 && row.get::<i64, _>("unsent") == 0,
            )
        }
        .await;
        if drained.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pipeline did not drain within {} s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(url: &str, run: &str, load: &Load, fakes: &Fakes) -> anyhow::Result<ChaosReport> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    // Every customer message of the run, by its text (each text names one message).
    let rows = sqlx::query(
        "SELECT m.text, count(*) AS copies,
                bool_or(e.status = 'done') AS answered,
                bool_or(e.status = 'parked') AS parked
           FROM messages m JOIN inbound_events e ON e.id = m.inbound_event_id
          WHERE m.role = 'customer' AND left(m.text, length($1)) = $1
          GROUP BY m.text",
    )
    .bind(format!("chaos {run} #"))
    .fetch_all(&mut c)
    .await?;
    let mut report = ChaosReport {
        accepted: load.accepted.load(Ordering::Relaxed),
        redelivered: load.redelivered.load(Ordering::Relaxed),
        retried_sends: load.retried.load(Ordering::Relaxed),
        ..ChaosReport::default()
    };
    let mut by_text = HashMap::new();
    for r in &rows {
        let text: String = r.get("text");
        by_text.insert(
            text,
            (
                r.get::<i64, _>("copies"),
                r.get::<bool, _>("answered"),
                r.get::<bool, _>("parked"),
            ),
        );
    }
    for key in 0..load.total {
        match by_text.get(&load.text(key)) {
            None => report.lost += 1,
            Some((copies, answered, parked)) => {
                report.stored += 1;
                report.duplicate_messages += (*copies as usize).saturating_sub(1);
                if *answered {
                    report.answered += 1;
                } else if *parked {
                    report.parked += 1;
                } else {
                    report.lost += 1;
                }
            }
        }
    }
    report.duplicate_replies = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (SELECT turn_id FROM messages
                                 WHERE role = 'agent' AND turn_id IS NOT NULL
                                 GROUP BY turn_id HAVING count(*) > 1) d",
    )
    .fetch_one(&mut c)
    .await? as usize;
    // Deliveries: what each provider received for each customer against the outbox rows.
    let outbox: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT ch.kind, k.external_id, count(*), sum(o.attempts - 1)::bigint
           FROM outbox o JOIN channels ch ON ch.id = o.channel_id
           JOIN conversations v ON v.id = o.conversation_id
           JOIN contacts k ON k.id = v.contact_id
          WHERE ch.kind IN ('whatsapp', 'telegram', 'sms', 'email') AND o.status = 'sent'
          GROUP BY 1, 2",
    )
    .fetch_all(&mut c)
    .await?;
    let mut received = fakes.state.sends.lock().expect("sends").clone();
    // E-mails: a reply carries its message's id in its Message-ID (and counts with the other
    // replies); every other e-mail is a notice of an effect (below).
    let reply_ids: HashSet<String> = sqlx::query_scalar(
        "SELECT o.payload->>'message_id' FROM outbox o JOIN channels ch ON ch.id = o.channel_id
          WHERE ch.kind = 'email' AND o.payload->>'message_id' IS NOT NULL",
    )
    .fetch_all(&mut c)
    .await?
    .into_iter()
    .collect();
    let mails = fakes.state.mails.lock().expect("mails").clone();
    report.emails = mails.values().sum::<u64>() as usize;
    let (replies, notices): (HashMap<_, _>, HashMap<_, _>) =
        mails.into_iter().partition(|((id, _), _)| {
            let bare = id
                .trim_start_matches('<')
                .split('@')
                .next()
                .unwrap_or_default();
            reply_ids.contains(bare)
        });
    for ((_, recipient), got) in &replies {
        *received
            .entry(("email".to_owned(), recipient.clone()))
            .or_default() += got;
    }
    // The sales team's Telegram chats are notifications, not replies.
    let team_chat = |kind: &str, to: &str| kind == "telegram" && to.starts_with(NOTIFY_CHAT_PREFIX);
    let notified_on_telegram: u64 = received
        .iter()
        .filter(|((kind, to), _)| team_chat(kind, to))
        .map(|(_, n)| n)
        .sum();
    received.retain(|(kind, to), _| !team_chat(kind, to));
    for (kind, recipient, rows, retries) in &outbox {
        let got = received
            .get(&(kind.clone(), recipient.clone()))
            .copied()
            .unwrap_or(0) as i64;
        if got != *rows {
            report
                .mismatched
                .push((kind.clone(), recipient.clone(), *rows, got));
        }
        let extra = (got - rows).max(0);
        report.duplicate_deliveries += extra as usize;
        report.redelivered_after_interruption += extra.min(*retries) as usize;
        report.undelivered += (rows - got).max(0) as usize;
    }
    for ((kind, recipient), got) in &received {
        if !outbox
            .iter()
            .any(|(k, r, _, _)| k == kind && r == recipient)
        {
            report.duplicate_deliveries += *got as usize;
            report
                .mismatched
                .push((kind.clone(), recipient.clone(), 0, *got as i64));
        }
    }
    count_actions(&mut c, &mut report, fakes, notified_on_telegram, &notices).await?;
    Ok(report)
}

/// Bookings, escalations, the sales team's notifications and the CRM's calls, against the
/// effects that asked for them.
async fn count_actions(
    c: &mut sqlx::PgConnection,
    report: &mut ChaosReport,
    fakes: &Fakes,
    notified_on_telegram: u64,
    notices: &HashMap<(String, String), u64>,
) -> anyhow::Result<()> {
    // Each conversation asks for one meeting and one person at most.
    let per_conversation = |table: &str, filter: &str| {
        format!(
            "SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(n - 1), 0)::bigint
               FROM (SELECT count(*) AS n FROM {table} WHERE {filter}
                      GROUP BY conversation_id) per"
        )
    };
    let (bookings, extra): (i64, i64) =
        sqlx::query_as(&per_conversation("bookings", "status = 'confirmed'"))
            .fetch_one(&mut *c)
            .await?;
    (report.bookings, report.duplicate_bookings) = (bookings as usize, extra as usize);
    let (escalations, extra): (i64, i64) = sqlx::query_as(&per_conversation("escalations", "true"))
        .fetch_one(&mut *c)
        .await?;
    (report.escalations, report.duplicate_escalations) = (escalations as usize, extra as usize);
    // Per kind of effect: the deliveries made, and the attempts a kill interrupted (begun,
    // never recorded): the window in which a receiver may get an effect twice.
    let effects: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT e.kind, count(*) FILTER (WHERE e.status = 'done'),
                coalesce(sum(e.attempts - (SELECT count(*) FROM effect_attempts a
                                            WHERE a.effect_id = e.id)), 0)::bigint
           FROM effects e GROUP BY e.kind",
    )
    .fetch_all(&mut *c)
    .await?;
    let of = |kind: &str| {
        effects
            .iter()
            .find(|(k, _, _)| k == kind)
            .map_or((0, 0), |(_, done, interrupted)| (*done, *interrupted))
    };
    // Telegram: one message per effect delivered.
    let (done, interrupted) = of("telegram");
    let extra = (notified_on_telegram as i64 - done).max(0);
    let mut duplicates = extra;
    let mut explained = extra.min(interrupted);
    // E-mail: every notice carries the Message-ID its effect seeds, so the same id twice at
    // one address is the same notice twice.
    let extra: i64 = notices.values().map(|n| *n as i64 - 1).sum();
    duplicates += extra;
    explained += extra.min(of("email").1);
    report.notifications = (notified_on_telegram + notices.values().sum::<u64>()) as usize;
    (
        report.duplicate_notifications,
        report.notifications_after_interruption,
    ) = (duplicates as usize, explained as usize);
    // The CRM: a delivery id twice, or one lead state under two delivery ids.
    let calls = fakes.state.crm.lock().expect("crm").clone();
    let states = fakes.state.crm_states.lock().expect("crm states").clone();
    report.crm_calls = calls.values().sum::<u64>() as usize;
    let again: u64 = calls.values().map(|n| n - 1).sum();
    let restated: usize = states.values().map(|ids| ids.len() - 1).sum();
    report.duplicate_crm_calls = again as usize + restated;
    report.crm_after_interruption = (again as i64).min(of("webhook").1) as usize;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fakes: provider APIs and the model, on one loopback server.

struct Fakes {
    base: String,
    smtp_port: u16,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
    smtp: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct FakeState {
    /// Sends received, by (channel kind, recipient).
    sends: Mutex<HashMap<(String, String), u64>>,
    next_id: AtomicU64,
    model_requests: AtomicU64,
    faults: Mutex<HashMap<String, u64>>,
    /// E-mails the SMTP server took, by (Message-ID, recipient).
    mails: Mutex<HashMap<(String, String), u64>>,
    /// CRM calls, by delivery id (`x-switchboard-delivery`).
    crm: Mutex<HashMap<String, u64>>,
    /// The delivery ids under which each lead state (the body without its times) came.
    crm_states: Mutex<HashMap<String, HashSet<String>>>,
}

impl Fakes {
    async fn start() -> anyhow::Result<Fakes> {
        let state = Arc::new(FakeState::default());
        let app = axum::Router::new()
            .fallback(provider)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let smtp_port = smtp.local_addr()?.port();
        let smtp = tokio::spawn(smtp_sink(smtp, state.clone()));
        Ok(Fakes {
            base,
            smtp_port,
            state,
            server,
            smtp,
        })
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        self.server.abort();
        self.smtp.abort();
    }
}

async fn provider(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let record = |kind: &str, to: String| {
        *state
            .sends
            .lock()
            .expect("sends")
            .entry((kind.to_owned(), to))
            .or_default() += 1;
    };
    let lower = path.to_ascii_lowercase();
    if path.ends_with("/chat/completions") {
        return model(&state, &body).await;
    }
    if method == Method::POST && path.starts_with("/crm/") {
        return crm(&state, &headers, &body, id);
    }
    if method == Method::POST && path.ends_with("/messages") && !lower.contains("/bot") {
        // WhatsApp Cloud API: POST /{version}/{phone_number_id}/messages.
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let to = v["to"].as_str().unwrap_or_default().to_owned();
        // Text, buttons, lists, templates; not the read receipts (which name no recipient).
        if !to.is_empty() {
            record("whatsapp", to.clone());
        }
        return Json(json!({"messaging_product": "whatsapp",
                           "contacts": [{"input": to, "wa_id": to}],
                           "messages": [{"id": format!("wamid.out-{id}")}]}))
        .into_response();
    }
    if lower.ends_with("/sendmessage") {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let chat = match &v["chat_id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        record("telegram", chat.clone());
        return Json(json!({"ok": true, "result": {
            "message_id": 100_000 + id, "date": 1_700_000_000,
            "chat": {"id": v["chat_id"], "type": "private", "first_name": "Customer"},
            "from": {"id": 1, "is_bot": true, "first_name": "Chaos"},
            "text": v["text"],
        }}))
        .into_response();
    }
    if lower.contains("/bot") {
        // getMe, setWebhook, getWebhookInfo, sendChatAction…: accepted.
        return Json(json!({"ok": true, "result": {"id": 1, "is_bot": true,
                           "first_name": "Chaos", "username": "chaos_bot"}}))
        .into_response();
    }
    if path.ends_with("/Messages.json") {
        let params = switchboard_channels::webhook::form_params(&body);
        let to = switchboard_channels::webhook::param(&params, "To")
            .unwrap_or_default()
            .to_owned();
        record("sms", to);
        return (
            StatusCode::CREATED,
            Json(json!({"sid": format!("SM{id:032}"), "status": "queued"})),
        )
            .into_response();
    }
    if method == Method::GET {
        // Health checks: a WhatsApp number, a Twilio account.
        return Json(json!({"id": "1", "sid": TWILIO_ACCOUNT, "status": "active",
                           "display_phone_number": "15550000000", "verified_name": "Chaos"}))
        .into_response();
    }
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

/// The CRM: records each call by its delivery id and its lead state; one call in five fails
/// with a 503 (the effect is retried).
fn crm(state: &FakeState, headers: &HeaderMap, body: &[u8], n: u64) -> Response {
    if n % 5 == 2 {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    let delivery = headers
        .get("x-switchboard-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(data) = v["data"].as_object_mut() {
        data.remove("updated_at");
    }
    let lead_state = json!({"event": v["event"], "data": v["data"]}).to_string();
    *state
        .crm
        .lock()
        .expect("crm")
        .entry(delivery.clone())
        .or_default() += 1;
    state
        .crm_states
        .lock()
        .expect("crm states")
        .entry(lead_state)
        .or_default()
        .insert(delivery);
    Json(json!({"ok": true})).into_response()
}

/// A small SMTP server that takes every message and records it by Message-ID and recipient.
async fn smtp_sink(listener: tokio::net::TcpListener, state: Arc<FakeState>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let _ = smtp_session(stream, &state).await;
        });
    }
}

async fn smtp_session(stream: tokio::net::TcpStream, state: &FakeState) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 chaos.example ESMTP\r\n").await?;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-chaos.example\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 chaos.example\r\n",
            "MAIL" | "RSET" => {
                recipients.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                let address = line
                    .split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(a, _)| a.to_ascii_lowercase())
                    .unwrap_or_default();
                recipients.push(address);
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let (mut id, mut headers) = (String::new(), true);
                loop {
                    line.clear();
                    if read.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    if headers && l.is_empty() {
                        headers = false;
                    } else if headers && l.to_ascii_lowercase().starts_with("message-id:") {
                        id = l["message-id:".len()..].trim().to_owned();
                    }
                }
                let mut mails = state.mails.lock().expect("mails");
                for r in recipients.drain(..) {
                    *mails.entry((id.clone(), r)).or_default() += 1;
                }
                b"250 queued\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The model: most requests answered, one in five failed in one of four ways, in turn.
async fn model(state: &FakeState, body: &[u8]) -> Response {
    let n = state.model_requests.fetch_add(1, Ordering::Relaxed);
    let fault = match n % 20 {
        3 => Some("http_500"),
        8 => Some("http_429"),
        13 => Some("hang"),
        18 => Some("malformed_tool_call"),
        _ => None,
    };
    if let Some(f) = fault {
        *state
            .faults
            .lock()
            .expect("faults")
            .entry(f.to_owned())
            .or_default() += 1;
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let last = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .chars()
        .take(80)
        .collect::<String>();
    let message = match fault {
        Some("http_500") => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "boom", "type": "server_error"}})),
            )
                .into_response()
        }
        Some("http_429") => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!({"error": {"message": "slow down", "type": "rate_limit_exceeded"}})),
            )
                .into_response()
        }
        Some("hang") => {
            // Longer than the server's model timeout.
            tokio::time::sleep(Duration::from_secs(30)).await;
            json!({"role": "assistant", "content": "too late"})
        }
        Some(_) => json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{n}"), "type": "function",
            "function": {"name": "book_meeting", "arguments": "{\"start\": \"tomorrow"},
        }]}),
        None => act(&request, n)
            .unwrap_or_else(|| json!({"role": "assistant", "content": format!("Re: {last}")})),
    };
    let finish = if message["tool_calls"].is_null() {
        "stop"
    } else {
        "tool_calls"
    };
    Json(json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 0,
        "model": request["model"],
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 12, "total_tokens": 312},
    }))
    .into_response()
}

/// The tool call a customer's ask calls for in this turn, if any is left to make: a meeting
/// is found (`find_slots`) and then the first slot offered booked; a lead is captured; a
/// person is asked for. The turn is what came after the agent's last answer.
fn act(request: &Value, n: u64) -> Option<Value> {
    let messages = request["messages"].as_array()?;
    let answered = |m: &Value| {
        m["role"] == "assistant" && m["tool_calls"].as_array().is_none_or(|c| c.is_empty())
    };
    let turn = &messages[messages.iter().rposition(answered).map_or(0, |i| i + 1)..];
    let asks: Vec<&str> = turn
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .collect();
    let asked = |marker: &str| asks.iter().any(|a| a.contains(marker));
    let called: Vec<&str> = turn
        .iter()
        .flat_map(|m| m["tool_calls"].as_array().into_iter().flatten())
        .filter_map(|c| c["function"]["name"].as_str())
        .collect();
    let call = |name: &str, args: Value| {
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{n}"), "type": "function",
            "function": {"name": name, "arguments": args.to_string()},
        }]})
    };
    if asked("[book]") {
        if !called.contains(&"find_slots") {
            return Some(call("find_slots", json!({"limit": 3})));
        }
        if called.contains(&"book_meeting") {
            return None;
        }
        let offered: Value = turn
            .iter()
            .rev()
            .find(|m| m["role"] == "tool")
            .and_then(|m| m["content"].as_str())
            .and_then(|c| serde_json::from_str(c).ok())?;
        // Tool results reach the model as `{"ok": true, "result": …}`.
        let start = offered["result"]["slots"][0]["start"].as_str()?;
        return Some(call("book_meeting", json!({"start": start})));
    }
    if asked("[lead]") && !called.contains(&"capture_lead") {
        return Some(call(
            "capture_lead",
            json!({"interest": "solar panels for a villa", "notes": "asked during a chaos run"}),
        ));
    }
    if asked("[human]") && !called.contains(&"escalate_to_human") {
        return Some(call(
            "escalate_to_human",
            json!({"reason": "the customer asked for a person"}),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_tenant_gets_messages_and_about_one_in_sixteen_comes_twice() {
        let opts = ChaosOptions {
            messages: 800,
            tenants: 3,
            customers: 2,
            ..ChaosOptions::default()
        };
        let load = Load::new(&opts, "t");
        let q = load.queue.lock().unwrap();
        for kind in KINDS {
            for t in 0..3 {
                assert!(q.iter().any(|m| m.kind == kind && m.tenant == t));
            }
        }
        let twice = (0..800).filter(|k| redeliver(opts.seed, *k)).count();
        assert!((25..=75).contains(&twice), "{twice}");
        assert_eq!(load.outstanding.load(Ordering::Relaxed), 800 + twice);
    }

    #[test]
    fn a_report_with_a_loss_or_a_duplicate_fails() {
        let ok = ChaosReport {
            messages: 10,
            accepted: 10,
            stored: 10,
            answered: 10,
            ..Default::default()
        };
        assert!(ok.failures().is_empty());
        let lost = ChaosReport {
            lost: 1,
            ..ok.clone()
        };
        assert_eq!(lost.failures(), ["1 messages lost"]);
        let dup = ChaosReport {
            duplicate_deliveries: 2,
            ..ok.clone()
        };
        assert_eq!(
            dup.failures(),
            ["2 replies delivered twice without an interrupted attempt"]
        );
        let window = ChaosReport {
            duplicate_deliveries: 2,
            redelivered_after_interruption: 2,
            ..ok.clone()
        };
        assert!(window.failures().is_empty());
    }
}
