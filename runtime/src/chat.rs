//! `switchboard chat TENANT`: talk to a tenant's agent from the terminal.
//!
//! The terminal is just another web-chat client: messages go through the same HTTP API, the same
//! durable pipeline and the same actors as any channel. If a server is already listening on the
//! configured address, the chat uses it; otherwise it starts one in-process on a free port.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, platform};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::app::{admin_token, running_server, Application, BuildOptions};
use crate::config::Settings;

/// How long to wait for the agent's answer to one line.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(settings: Settings, tenant: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut local = None;
    let (base, channel, tenant_name) = if let Some(running) = running_server(&http, &settings).await
    {
        let token = admin_token(&settings)?;
        let resp = http
            .get(format!("{running}/api/v1/channels"))
            .query(&[("tenant", tenant)])
            .bearer_auth(token.expose_secret())
            .send()
            .await?;
        if !resp.status().is_success() {
            let body: Value = resp.json().await.unwrap_or_default();
            bail!(
                "the server at {running} refused: {}",
                body["error"]["message"].as_str().unwrap_or("unknown error")
            );
        }
        let body: Value = resp.json().await?;
        let channel = body["channels"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["kind"] == "webchat"))
            .and_then(|c| c["id"].as_str())
            .ok_or_else(|| anyhow!("tenant `{tenant}` has no web-chat channel"))?
            .to_owned();
        (running, channel, tenant.to_owned())
    } else {
        let mut settings = settings.clone();
        settings.listen = "127.0.0.1:0".into();
        let app = Application::build(settings, BuildOptions::default()).await?;
        let db = app.services().db.clone();
        let t = platform::find_tenant(db.pool(), tenant)
            .await?
            .ok_or_else(|| anyhow!("no tenant `{tenant}`; `switchboard tenant list` shows them"))?;
        let mut tx = db.tenant(t.id).await?;
        let channel = channels::list(&mut tx)
            .await?
            .into_iter()
            .find(|c| c.kind == ChannelKind::Webchat)
            .ok_or_else(|| anyhow!("tenant `{tenant}` has no web-chat channel"))?;
        tx.commit().await?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stop_rx.await;
        }));
        local = Some((stop_tx, server));
        (base, channel.id.to_string(), t.name)
    };

    let session = format!("cli-{}", uuid::Uuid::new_v4().simple());
    println!("Chatting with {tenant_name}. Type a message and press Enter; Ctrl-D to quit.");
    let mut last_seq = 0i64;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut counter = 0u64;
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next_line().await? else {
            println!();
            break;
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        counter += 1;
        let resp = http
            .post(format!("{base}/api/v1/webchat/{channel}/messages"))
            .json(&json!({"session_id": session, "client_message_id": format!("m{counter}"), "text": text}))
            .send()
            .await
            .context("could not reach the server")?;
        if !resp.status().is_success() {
            let body: Value = resp.json().await.unwrap_or_default();
            println!(
                "!! {}",
                body["error"]["message"].as_str().unwrap_or("rejected")
            );
            continue;
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut answered = false;
        while !answered && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let body: Value = http
                .get(format!(
                    "{base}/api/v1/webchat/{channel}/sessions/{session}/messages"
                ))
                .query(&[("after", last_seq)])
                .send()
                .await?
                .json()
                .await?;
            for m in body["messages"].as_array().into_iter().flatten() {
                last_seq = last_seq.max(m["seq"].as_i64().unwrap_or(0));
                let role = m["role"].as_str().unwrap_or("");
                if role != "customer" {
                    println!("{role}> {}", m["text"].as_str().unwrap_or(""));
                    answered = true;
                }
            }
        }
        if !answered {
            println!("!! no answer within {} s", REPLY_TIMEOUT.as_secs());
        }
    }
    if let Some((stop, server)) = local {
        let _ = stop.send(());
        server.await??;
    }
    Ok(())
}
