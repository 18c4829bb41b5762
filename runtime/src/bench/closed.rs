//! The closed loop: conversations that wait for each reply before sending again (round trip),
//! then every message posted as fast as the server accepts them (ingest). Also the
//! zero-latency model server of `--responder llm-stub`.
//!
//! A closed loop shows how fast a polite client is served, and hides queueing by construction:
//! a slow reply delays the next message instead of queueing behind it. The open loop
//! ([`super::open`]) is the one that shows queueing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};

use super::accounting::percentiles;
use super::{db, probe, sse, Figures, Target};

pub(super) async fn run(
    target: &Target,
    conversations: usize,
    messages: usize,
) -> anyhow::Result<Figures> {
    let channel = target.webchat.to_string();
    let round_trip = round_trip(target, &channel, conversations, messages).await?;
    let ingest = ingest(target, &channel, conversations, messages).await?;
    Ok(Figures::Closed { round_trip, ingest })
}

/// An OpenAI-compatible chat-completions server that answers every request at once; returns
/// its base URL.
pub(super) async fn zero_latency_model() -> anyhow::Result<String> {
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

/// Each conversation waits for its reply before sending again.
async fn round_trip(
    target: &Target,
    channel: &str,
    conversations: usize,
    messages: usize,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let cpu = probe::cpu_times();
    let tasks = (0..conversations).map(|c| {
        let http = target.http.clone();
        let session = format!("bench-rt-{c:05}-{}", uuid::Uuid::new_v4().simple());
        let (base, channel) = (target.base.clone(), channel.to_owned());
        tokio::spawn(async move { converse(&http, &base, &channel, &session, messages).await })
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
        "cpu": probe::cpu_per_message(cpu, latencies.len()),
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
    let mut events = sse::open(http, base, channel, session).await?;
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

/// Everything posted at once; then wait until every message is answered.
async fn ingest(
    target: &Target,
    channel: &str,
    conversations: usize,
    messages: usize,
) -> anyhow::Result<Value> {
    let total = conversations * messages;
    let started = Instant::now();
    let cpu = probe::cpu_times();
    let acks = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let base = target.base.as_str();
    let run = futures::stream::iter(0..conversations).for_each_concurrent(conversations, |c| {
        let (http, acks) = (target.http.clone(), acks.clone());
        let session = format!("bench-in-{c:05}-{}", uuid::Uuid::new_v4().simple());
        async move {
            for i in 0..messages {
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
    db::drained(&target.db, Duration::from_secs(300)).await?;
    let drained_in = started.elapsed();
    Ok(json!({
        "messages": total,
        "accepted_per_sec": total as f64 / accepted_in.as_secs_f64(),
        "ack_latency_ms": percentiles(&mut acks),
        "all_answered_seconds": drained_in.as_secs_f64(),
        "answered_per_sec": total as f64 / drained_in.as_secs_f64(),
        "cpu": probe::cpu_per_message(cpu, total),
    }))
}
