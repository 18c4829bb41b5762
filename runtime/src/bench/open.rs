//! The open loop: messages offered on a fixed schedule whatever happened to earlier ones, over
//! web chat or as signed WhatsApp webhooks, every message's latency counted from its intended
//! send time (see [`super::accounting`]).
//!
//! Replies are matched to messages exactly, not guessed from their order: once the schedule
//! has run, the store says which agent message answered each inbound message (the turn that
//! took it in; a turn that took in a burst answers each message of it), and the harness knows
//! when it saw each reply — on the session's event stream for web chat, at the fake Graph API
//! for WhatsApp (by the `wamid` it handed out, which the dispatcher records on the outbox row).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{json, Map};
use switchboard_core::model::ChannelKind;
use switchboard_core::ChannelId;

use super::accounting::{account, schedule, Accounting, Replies, Sent, Slot};
use super::db::{self, ReplyKey};
use super::fake_graph::FakeGraph;
use super::{sse, Channel, Figures, OpenLoad, Shape, Target};

/// A message not answered this long after its intended send time is given up on (counted as
/// unanswered, with this wait as its latency's lower bound).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the harness checks whether the pipeline is idle, once the schedule has run.
const POLL: Duration = Duration::from_millis(100);
/// An idle pipeline that has not delivered a reply this long after going idle never will.
const SETTLE: Duration = Duration::from_secs(2);

pub(super) async fn run(target: &Target, load: &OpenLoad, shape: Shape) -> anyhow::Result<Figures> {
    // Ids unique to this run, so a shared database (`DATABASE_URL`) cannot mix runs up.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let slots = schedule(load.rate, load.duration, shape.customers);
    let acc = match load.channel {
        Channel::Webchat => webchat(target, &slots, shape, &run_id).await?,
        Channel::Whatsapp => whatsapp(target, &slots, shape, &run_id).await?,
    };
    let mut v = acc.into_json(load.rate);
    v["channel"] = json!(load.channel.as_str());
    Ok(Figures::Open(v))
}

/// Web chat: a POST per message, replies read from every session's event stream.
async fn webchat(
    target: &Target,
    slots: &[Slot],
    shape: Shape,
    run_id: &str,
) -> anyhow::Result<Accounting> {
    let channel = target.webchat.to_string();
    let session = |c: usize| format!("bench-{run_id}-{c:05}");
    // Every session's stream is open before the first message, as a widget's would be.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut readers = Vec::with_capacity(shape.customers);
    for c in 0..shape.customers {
        let mut events = sse::open(&target.http, &target.base, &channel, &session(c)).await?;
        let seen = seen.clone();
        readers.push(AbortOnDrop(tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if event["role"] == "agent" {
                    if let Some(id) = event["id"].as_str() {
                        seen.lock()
                            .expect("seen")
                            .entry(id.to_owned())
                            .or_insert_with(Instant::now);
                    }
                }
            }
        })));
    }
    let url = format!("{}/api/v1/webchat/{channel}/messages", target.base);
    let (t0, sent) = offer(slots, |slot| {
        let session = session(slot.conversation);
        let cid = format!("m{}", slot.index);
        let key = format!("{session}:{cid}");
        let request = target.http.post(&url).json(&json!({
            "session_id": session,
            "client_message_id": cid,
            "text": question(slot.index),
        }));
        (key, async move {
            request
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED)
        })
    })
    .await;
    let prefix = format!("bench-{run_id}-");
    let (prefix, seen) = (prefix.as_str(), &seen);
    wait_for_replies(target, t0, &sent, || async move {
        Ok(Replies {
            answered_by: db::answers(
                &target.db,
                target.tenant,
                &[target.webchat],
                prefix,
                ReplyKey::MessageId,
            )
            .await?,
            seen: since(t0, &seen.lock().expect("seen")),
        })
    })
    .await
}

/// WhatsApp: channels of the demo tenant pointing at a fake Graph API, and a signed webhook
/// per message in Meta's payload shape; a reply counts when its send reaches the fake.
async fn whatsapp(
    target: &Target,
    slots: &[Slot],
    shape: Shape,
    run_id: &str,
) -> anyhow::Result<Accounting> {
    let graph = FakeGraph::start().await?;
    let mut numbers = Vec::with_capacity(shape.whatsapp_numbers);
    for n in 0..shape.whatsapp_numbers.max(1) {
        numbers.push(whatsapp_channel(target, &graph.base, run_id, n).await?);
    }
    let (t0, sent) = offer(slots, |slot| {
        let number = &numbers[slot.conversation % numbers.len()];
        let wa_id = (971_500_000_000u64 + slot.conversation as u64).to_string();
        let key = format!("wamid.bench-{run_id}-{}", slot.index);
        let body = notification(&number.phone_number_id, &wa_id, &key, slot);
        let signature = format!(
            "sha256={}",
            hex(&switchboard_channels::webhook::hmac_sha256(
                number.app_secret.as_bytes(),
                &body
            ))
        );
        let request = target
            .http
            .post(&number.webhook_url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body);
        (key, async move {
            request
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
        })
    })
    .await;
    let prefix = format!("wamid.bench-{run_id}-");
    let channels: Vec<ChannelId> = numbers.iter().map(|n| n.id).collect();
    let (prefix, channels, fake) = (prefix.as_str(), channels.as_slice(), &graph);
    let acc = wait_for_replies(target, t0, &sent, || async move {
        Ok(Replies {
            answered_by: db::answers(
                &target.db,
                target.tenant,
                channels,
                prefix,
                ReplyKey::ProviderRef,
            )
            .await?,
            seen: since(t0, &fake.sends()),
        })
    })
    .await?;
    anyhow::ensure!(
        graph.malformed() == 0,
        "the fake Graph API refused {} malformed sends",
        graph.malformed()
    );
    Ok(acc)
}

/// One WhatsApp channel (business number) the harness created.
struct Number {
    id: ChannelId,
    phone_number_id: String,
    app_secret: String,
    webhook_url: String,
}

/// Creates WhatsApp channel `n` of the run for the demo tenant, as `switchboard channel
/// create` would (settings checked, credentials sealed).
async fn whatsapp_channel(
    target: &Target,
    graph: &str,
    run_id: &str,
    n: usize,
) -> anyhow::Result<Number> {
    let phone_number_id = (106_540_000_000u64 + n as u64).to_string();
    let app_secret = format!("bench-app-secret-{run_id}-{n}");
    let mut config = Map::new();
    config.insert("phone_number_id".into(), json!(phone_number_id));
    config.insert("api_base_url".into(), json!(graph));
    config.insert("app_secret".into(), json!(app_secret));
    config.insert(
        "access_token".into(),
        json!(format!("bench-token-{run_id}-{n}")),
    );
    config.insert(
        "verify_token".into(),
        json!(format!("bench-verify-{run_id}-{n}")),
    );
    let conf = crate::channels::ChannelConfigurator {
        db: &target.db,
        key: &target.master_key,
        public_base_url: &target.base,
        // The fake Graph API listens on loopback.
        egress: switchboard_core::egress::Egress::Unrestricted,
    };
    let record = conf
        .create(
            target.tenant,
            ChannelKind::Whatsapp,
            &format!("Bench WhatsApp {run_id} #{n}"),
            config,
        )
        .await
        .context("could not create the bench's WhatsApp channel")?;
    let id = record.channel.id;
    let webhook_url = conf
        .webhook_url(ChannelKind::Whatsapp, id)
        .context("WhatsApp channels have a webhook URL")?;
    Ok(Number {
        id,
        phone_number_id,
        app_secret,
        webhook_url,
    })
}

/// A WhatsApp Cloud API notification carrying one text message, as Meta sends it.
fn notification(phone_number_id: &str, wa_id: &str, wamid: &str, slot: Slot) -> Vec<u8> {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": format!("Customer {}", slot.conversation)}, "wa_id": wa_id}],
            "messages": [{
                "from": wa_id, "id": wamid, "timestamp": timestamp, "type": "text",
                "text": {"body": question(slot.index)},
            }],
        }}]}],
    }))
    .expect("JSON values serialize")
}

/// What customers ask: a question the demo tenant's knowledge base answers.
fn question(index: usize) -> String {
    format!("What are your opening hours? ({index})")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Offers every message of `slots` at its time, each on a task of its own so a slow answer
/// never delays the next message. `make` gives a message's key (its provider id) and the
/// request that offers it (true when acknowledged). Returns the start of the schedule and what
/// happened to each message.
async fn offer<F, Fut>(slots: &[Slot], mut make: F) -> (Instant, Vec<Sent>)
where
    F: FnMut(Slot) -> (String, Fut),
    Fut: Future<Output = bool> + Send + 'static,
{
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(slots.len());
    for &slot in slots {
        tokio::time::sleep_until((t0 + slot.at).into()).await;
        let started = t0.elapsed();
        let (key, request) = make(slot);
        tasks.push(tokio::spawn(async move {
            let acked = request.await.then(|| t0.elapsed());
            Sent {
                key,
                intended: slot.at,
                started,
                acked,
            }
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for t in futures::future::join_all(tasks).await {
        sent.push(t.expect("offer tasks do not panic"));
    }
    (t0, sent)
}

/// Waits for the replies, then accounts for every message. The store is asked which message
/// each reply answered only once the pipeline is idle (cheap to check), so the harness does
/// not add to the load it measures. The wait ends when every accepted message is answered;
/// when the pipeline has been idle for [`SETTLE`] with messages still unanswered (they never
/// will be); or when the last message has waited [`REPLY_TIMEOUT`].
async fn wait_for_replies<L, Fut>(
    target: &Target,
    t0: Instant,
    sent: &[Sent],
    learn: L,
) -> anyhow::Result<Accounting>
where
    L: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<Replies>>,
{
    let last = sent.iter().map(|s| s.intended).max().unwrap_or_default();
    let deadline = t0 + last + REPLY_TIMEOUT;
    let mut idle_since = None;
    loop {
        let timed_out = Instant::now() >= deadline;
        if timed_out || db::is_drained(&target.db).await? {
            let idle_since = *idle_since.get_or_insert_with(Instant::now);
            let acc = account(sent, &learn().await?, t0.elapsed());
            if acc.unanswered == 0 || timed_out || idle_since.elapsed() >= SETTLE {
                return Ok(acc);
            }
        } else {
            idle_since = None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Times relative to the start of the schedule.
fn since(t0: Instant, at: &HashMap<String, Instant>) -> HashMap<String, Duration> {
    at.iter()
        .map(|(k, t)| (k.clone(), t.saturating_duration_since(t0)))
        .collect()
}

/// Aborts a task when dropped (the event-stream readers end with the run).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_meta_s_shape_and_its_signature_verifies() {
        let slot = Slot {
            index: 7,
            conversation: 3,
            at: Duration::ZERO,
        };
        let body = notification("106540000000", "971500000003", "wamid.bench-x-7", slot);
        let signature = format!(
            "sha256={}",
            hex(&switchboard_channels::webhook::hmac_sha256(
                b"secret", &body
            ))
        );
        switchboard_channels::whatsapp::verify_signature("secret", Some(&signature), &body)
            .expect("the signature verifies");
        let items = switchboard_channels::whatsapp::parse_notification(ChannelId::new(), &body)
            .expect("the notification parses");
        assert_eq!(items.len(), 1);
        let switchboard_channels::InboundItem::Message(m) = &items[0] else {
            panic!("a text message: {items:?}");
        };
        assert_eq!(m.provider_message_id, "wamid.bench-x-7");
        assert_eq!(m.contact_external_id, "971500000003");
        assert_eq!(m.text, question(7));
    }
}
