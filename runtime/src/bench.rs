//! `switchboard bench`: a quick load run of the full durable pipeline on this machine.
//!
//! It starts a private application (embedded PostgreSQL with fsync on, in a scratch directory,
//! unless `DATABASE_URL` is set), then measures:
//!
//! * **round trip** — many conversations at once, each sending a message and waiting for the
//!   agent's reply on its server-sent-event stream before sending the next (how a person chats):
//!   messages per second and latency percentiles from POST to reply;
//! * **ingest** — every message of every conversation posted as fast as the server accepts them
//!   (each one committed before its 202), then the time until all are answered;
//! * **raw commits** — single-row INSERT commits per second on the same PostgreSQL, with the same
//!   concurrency, as the yardstick the pipeline is compared to.
//!
//! The debounce window is set to zero so the figures show the runtime's own overhead, not the
//! deliberate wait for a customer to finish typing. With `--llm-stub`, replies come from the
//! model path instead of the offline responder: an in-process OpenAI-compatible server that
//! answers at once, so the figures include the agent's own work (settings and prompt lookup,
//! prompt rendering, memory reads, the HTTP round trip to the model, usage accounting). The
//! result is printed as JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, platform};

use crate::app::{Application, BuildOptions};
use crate::config::Settings;

/// Parameters of a run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub conversations: usize,
    pub messages: usize,
    /// Answer with the model path against a zero-latency in-process stub.
    pub llm_stub: bool,
}

pub async fn run(mut settings: Settings, opts: BenchOptions) -> anyhow::Result<Value> {
    if opts.conversations == 0 || opts.messages == 0 {
        bail!("--conversations and --messages must be at least 1");
    }
    let scratch = std::env::temp_dir().join(format!(
        "switchboard-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&scratch)?;
    settings.data_dir = scratch.clone();
    settings.listen = "127.0.0.1:0".into();
    settings.demo = true;
    settings.pipeline.debounce_ms = 0;
    settings.admin_token = None;
    if opts.llm_stub {
        settings.openai_base_url = Some(zero_latency_model().await?);
        settings.openai_api_key = Some("bench".to_owned().into());
    }
    let app = Application::build(settings, BuildOptions::default()).await?;
    let db = app.services().db.clone();
    let demo = platform::find_tenant(db.pool(), crate::demo::DEMO_SLUG)
        .await?
        .context("demo tenant missing")?;
    let mut tx = db.tenant(demo.id).await?;
    let channel = channels::list(&mut tx)
        .await?
        .into_iter()
        .find(|c| c.kind == ChannelKind::Webchat)
        .context("demo web chat missing")?
        .id;
    tx.commit().await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let owner_url = secrecy::ExposeSecret::expose_secret(app.owner_url()).to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.conversations * 2)
        .build()?;

    let round_trip = round_trip(&http, &base, &channel.to_string(), &opts).await?;
    let ingest = ingest(&http, &base, &channel.to_string(), &opts, &db).await?;
    let raw = raw_commits(&owner_url, opts.conversations.min(32)).await?;

    let _ = stop_tx.send(());
    server.await??;
    let _ = std::fs::remove_dir_all(&scratch);

    let rt_rate = round_trip["messages_per_sec"].as_f64().unwrap_or(0.0);
    let ingest_rate = ingest["accepted_per_sec"].as_f64().unwrap_or(0.0);
    let raw_rate = raw["commits_per_sec"].as_f64().unwrap_or(0.0);
    Ok(json!({
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)},
        "conversations": opts.conversations,
        "messages_per_conversation": opts.messages,
        "responder": if opts.llm_stub { "llm (zero-latency stub)" } else { "offline" },
        "round_trip": round_trip,
        "ingest": ingest,
        "raw_postgres": raw,
        "ratios": {
            "ingest_vs_raw_commits": ingest_rate / raw_rate.max(1.0),
            "round_trip_vs_raw_commits": rt_rate / raw_rate.max(1.0),
        }
    }))
}

/// An OpenAI-compatible chat-completions server that answers every request at once; returns
/// its base URL.
async fn zero_latency_model() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|axum::Json(body): axum::Json<Value>| async move {
            axum::Json(json!({
                "id": "bench", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Thanks, noted."}}],
                "usage": {"prompt_tokens": 400, "completion_tokens": 5, "total_tokens": 405},
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/v1"))
}

/// Closed loop: each conversation waits for its reply before sending again.
async fn round_trip(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    opts: &BenchOptions,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let tasks = (0..opts.conversations).map(|c| {
        let http = http.clone();
        let session = format!("bench-rt-{c:05}-{}", uuid::Uuid::new_v4().simple());
        let (base, channel, n) = (base.to_owned(), channel.to_owned(), opts.messages);
        tokio::spawn(async move { converse(&http, &base, &channel, &session, n).await })
    });
    let mut latencies = Vec::new();
    for t in futures::future::join_all(tasks).await {
        latencies.extend(t??);
    }
    let elapsed = started.elapsed();
    Ok(json!({
        "messages": latencies.len(),
        "seconds": elapsed.as_secs_f64(),
        "messages_per_sec": latencies.len() as f64 / elapsed.as_secs_f64(),
        "latency_ms": percentiles(&mut latencies),
    }))
}

/// One conversation: post, wait for the agent's reply on the event stream, repeat.
async fn converse(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    session: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let resp = http
        .get(format!(
            "{base}/api/v1/webchat/{channel}/sessions/{session}/events"
        ))
        .send()
        .await?;
    let mut events = sse_events(resp);
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let sent = Instant::now();
        let r = http
            .post(format!("{base}/api/v1/webchat/{channel}/messages"))
            .json(&json!({"session_id": session, "client_message_id": format!("m{i}"), "text": format!("What are your opening hours? ({i})")}))
            .send()
            .await?;
        if r.status() != 202 {
            bail!("post failed with {}", r.status());
        }
        loop {
            let event = tokio::time::timeout(Duration::from_secs(60), events.next())
                .await
                .context("no reply within 60 s")?
                .context("event stream ended")?;
            if event["role"] == "agent" {
                break;
            }
        }
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// Decodes a server-sent-event response into the JSON of each event's data.
fn sse_events(resp: reqwest::Response) -> impl futures::Stream<Item = Value> + Unpin {
    let mut buf = String::new();
    Box::pin(
        resp.bytes_stream()
            .map(move |chunk| {
                let mut out = Vec::new();
                if let Ok(bytes) = chunk {
                    buf.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(pos) = buf.find("\n\n") {
                        let block: String = buf.drain(..pos + 2).collect();
                        let data: String = block
                            .lines()
                            .filter_map(|l| l.strip_prefix("data:"))
                            .map(str::trim_start)
                            .collect();
                        if let Ok(v) = serde_json::from_str::<Value>(&data) {
                            out.push(v);
                        }
                    }
                }
                futures::stream::iter(out)
            })
            .flatten(),
    )
}

/// Open loop: everything posted at once; then wait until every message is answered.
async fn ingest(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    opts: &BenchOptions,
    db: &switchboard_core::Db,
) -> anyhow::Result<Value> {
    let total = opts.conversations * opts.messages;
    let started = Instant::now();
    let acks = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let run = futures::stream::iter(0..opts.conversations).for_each_concurrent(opts.conversations, |c| {
        let (http, acks) = (http.clone(), acks.clone());
        let session = format!("bench-in-{c:05}");
        async move {
            for i in 0..opts.messages {
                let t = Instant::now();
                let ok = http
                    .post(format!("{base}/api/v1/webchat/{channel}/messages"))
                    .json(&json!({"session_id": session, "client_message_id": format!("m{i}"), "text": format!("Do you install batteries? ({i})")}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202);
                if ok {
                    acks.lock().expect("acks").push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
    });
    run.await;
    let accepted_in = started.elapsed();
    let mut acks = std::mem::take(&mut *acks.lock().expect("acks"));
    if acks.len() != total {
        bail!("only {} of {total} posts were accepted", acks.len());
    }
    // Wait for the pipeline to drain: no pending events and no undelivered replies.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM platform_pending_conversations()")
                .fetch_one(db.pool())
                .await?;
        let undelivered = sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT platform_next_outbox_due()",
        )
        .fetch_one(db.pool())
        .await?;
        if pending == 0 && undelivered.is_none() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the pipeline did not drain within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_in = started.elapsed();
    Ok(json!({
        "messages": total,
        "accepted_per_sec": total as f64 / accepted_in.as_secs_f64(),
        "ack_latency_ms": percentiles(&mut acks),
        "all_answered_seconds": drained_in.as_secs_f64(),
        "answered_per_sec": total as f64 / drained_in.as_secs_f64(),
    }))
}

/// Single-row INSERT commits per second with `concurrency` connections for about 3 s, on the
/// same server, into an ordinary (WAL-logged, fsynced) table created and dropped for the run.
async fn raw_commits(owner_url: &str, concurrency: usize) -> anyhow::Result<Value> {
    let concurrency = concurrency.max(1);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency as u32)
        .connect(owner_url)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw_commits (id bigserial PRIMARY KEY, v text)")
        .execute(&pool)
        .await?;
    let duration = Duration::from_secs(3);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut n = 0u64;
            while started.elapsed() < duration {
                // Autocommit: one transaction, one WAL flush per insert.
                sqlx::query("INSERT INTO bench_raw_commits (v) VALUES ('x')")
                    .execute(&mut *conn)
                    .await?;
                n += 1;
            }
            Ok::<u64, sqlx::Error>(n)
        })
    });
    let mut total = 0u64;
    for w in futures::future::join_all(workers).await {
        total += w??;
    }
    let secs = started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_raw_commits")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(
        json!({"connections": concurrency, "commits": total, "commits_per_sec": total as f64 / secs}),
    )
}

fn percentiles(samples: &mut [f64]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    json!({"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1.0)})
}
