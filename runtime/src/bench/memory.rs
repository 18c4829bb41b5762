//! `switchboard bench --suite memory`: what one idle live conversation costs in memory, and
//! whether idle conversations passivate without losing anything.
//!
//! On a private application like the pipeline suite's (scratch embedded PostgreSQL, the demo
//! tenant, debounce 0) it:
//!
//! 1. creates `--conversations` web-chat conversations of the demo tenant in bulk, plus a few
//!    for warming up (see [`super::db::seed_webchat_conversations`]);
//! 2. wakes the warm-up conversations and measures the process's resident set (the baseline),
//!    then wakes every other conversation exactly as a new message would (`RootMsg::Route`), in
//!    waves of [`WAVE`] so no more turns run at once than a busy server would see, until every
//!    agent is live and has finished its turn; lets the allocator settle and measures again.
//!    `(live − baseline) / conversations` is the cost of one idle live conversation;
//! 3. waits until the idle agents passivate under the run's idle timeout (the count of live
//!    agents falls to 0) and measures once more, then again a sweep later, once the tenant
//!    supervisor has handed the freed memory back to the operating system;
//! 4. posts a message through the web-chat API to some of the passivated conversations and waits
//!    for the answers: each must land in its original conversation and be answered.
//!
//! The resident set is what the operating system reports for the whole process (Linux
//! `/proc/self/status`, elsewhere `ps`), so it counts the allocator's own keeping: memory freed
//! by stopped agents that the allocator holds for reuse still counts as resident until it is
//! handed back.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ractor::ActorRef;
use serde_json::{json, Value};
use switchboard_actors::{AgentCounts, RootMsg};
use switchboard_core::{ConversationId, TenantId};

use super::{db, probe, Instance, Target};
use crate::config::Settings;

/// Conversations woken at once: the next wave starts when every agent of this one has finished
/// its turn.
const WAVE: usize = 1000;
/// How often the harness asks the actor tree how many agents are live.
const POLL: Duration = Duration::from_millis(20);
/// The promise under test: at most 10 KB of resident memory per idle live conversation (read
/// as 10,000 bytes, the stricter of the two readings).
pub const TARGET_BYTES_PER_CONVERSATION: u64 = 10_000;

/// Parameters of a memory run.
#[derive(Clone, Debug)]
pub struct MemoryOptions {
    /// Conversations woken after the baseline.
    pub conversations: usize,
    /// The run's `pipeline.idle_timeout`: waking every conversation and measuring must take
    /// less than this, and passivation takes about this long after.
    pub idle_timeout: Duration,
    /// Passivated conversations that get a real message afterwards.
    pub probes: usize,
    /// Quiet time before each resident-set reading, so that freed memory has gone where it
    /// goes and the allocator's caches have settled.
    pub settle: Duration,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            conversations: 100_000,
            idle_timeout: Duration::from_secs(60),
            probes: 20,
            settle: Duration::from_secs(2),
        }
    }
}

impl MemoryOptions {
    /// Refuses options that cannot make a meaningful run.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.conversations == 0 {
            bail!("--conversations must be at least 1");
        }
        if self.conversations > 10_000_000 {
            bail!("--conversations must be at most 10000000");
        }
        if self.idle_timeout < Duration::from_secs(1) || self.idle_timeout.subsec_nanos() != 0 {
            bail!("--idle-timeout must be a whole number of seconds, at least 1");
        }
        Ok(())
    }

    /// Conversations woken before the baseline, so it includes everything that is built once
    /// (the tenant supervisor, pooled connections, the allocator's first arenas).
    pub fn warm_up(&self) -> usize {
        (self.conversations / 100).clamp(10, WAVE)
    }

    /// The configuration of the run (the `config` object).
    pub fn config(&self) -> Value {
        json!({
            "suite": "memory",
            "conversations": self.conversations,
            "warm_up_conversations": self.warm_up(),
            "idle_timeout_secs": self.idle_timeout.as_secs(),
            "wave": WAVE,
            "probes": self.probes.min(self.conversations),
            "settle_secs": self.settle.as_secs_f64(),
            "debounce_ms": 0,
            "allocator": "system",
        })
    }
}

/// Runs the memory suite and returns its JSON result.
pub async fn run(mut settings: Settings, opts: MemoryOptions) -> anyhow::Result<Value> {
    opts.validate()?;
    let started_at = chrono::Utc::now();
    let commit = probe::commit().await;
    settings.pipeline.idle_timeout_secs = opts.idle_timeout.as_secs();
    let instance = Instance::start(settings, "switchboard-bench-memory").await?;
    let measured = async {
        let (target, _, fsync) = instance.target(reqwest::Client::new()).await?;
        let figures = measure(&target, &instance.root, &opts).await?;
        Ok::<_, anyhow::Error>((figures, fsync))
    }
    .await;
    let stopped = instance.stop().await;
    let (figures, fsync) = measured?;
    stopped?;

    let mut config = opts.config();
    config["fsync"] = json!(fsync);
    let mut result = json!({
        "suite": "memory",
        "started_at": started_at.to_rfc3339(),
        "commit": commit,
        "machine": probe::machine(),
        "config": config,
    });
    if let (Value::Object(result), Value::Object(figures)) = (&mut result, figures) {
        result.extend(figures);
    }
    Ok(result)
}

/// The figures of a run, by section (`seed`, `rss`, `live`, `passivation`,
/// `after_passivation`).
async fn measure(
    target: &Target,
    root: &ActorRef<RootMsg>,
    opts: &MemoryOptions,
) -> anyhow::Result<Value> {
    let n = opts.conversations;
    let warm = opts.warm_up();
    let prefix = format!("mem-{}-", uuid::Uuid::new_v4().simple());
    let seeding = Instant::now();
    // Held until the end of the run: allocated before the baseline, so not counted against
    // the conversations.
    let ids = db::seed_webchat_conversations(
        &target.db,
        target.tenant,
        target.webchat,
        &prefix,
        warm + n,
    )
    .await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let agents = Agents {
        root,
        tenant: target.tenant,
    };

    // Warm up, then the baseline.
    wake(&agents, &ids[..warm], 0).await?;
    tokio::time::sleep(opts.settle).await;
    let baseline = rss();

    // Every conversation live.
    let waking = Instant::now();
    wake(&agents, &ids[warm..], warm).await?;
    let wake_seconds = waking.elapsed().as_secs_f64();
    let all_live = Instant::now();
    tokio::time::sleep(opts.settle).await;
    let live = rss();
    let counts = agents.counts().await?;
    if counts.live != warm + n {
        bail!(
            "only {} of {} agents were still live when the resident set was measured: waking \
             took {wake_seconds:.1} s, too close to the idle timeout of {} s (raise \
             --idle-timeout)",
            counts.live,
            warm + n,
            opts.idle_timeout.as_secs()
        );
    }

    // Passivation.
    let deadline = opts.idle_timeout * 3 + Duration::from_secs(30);
    let mut remaining = counts.live;
    while remaining > 0 {
        if all_live.elapsed() > deadline {
            bail!(
                "{remaining} agents were still live {} s after the last woke (idle timeout {} s)",
                deadline.as_secs(),
                opts.idle_timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL * 10).await;
        remaining = agents.live().await?;
    }
    let passivation_seconds = all_live.elapsed().as_secs_f64();
    tokio::time::sleep(opts.settle).await;
    let passivated = rss();
    // The tenant supervisor's next sweep (every quarter of the idle timeout) hands the memory
    // of the stopped agents back.
    tokio::time::sleep(opts.idle_timeout / 4).await;
    let released = rss();

    // Real messages to passivated conversations.
    let mut probes = probe_passivated(target, &ids, &prefix, opts.probes.min(warm + n)).await?;
    probes["agents_revived"] = json!(agents.live().await?);
    db::drained(&target.db, Duration::from_secs(60)).await?;
    drop(ids);

    let per_conversation = match (baseline, live) {
        (Some(b), Some(l)) => Some(l.rss.saturating_sub(b.rss) as f64 / n as f64),
        _ => None,
    };
    let anon_per_conversation = match (baseline.and_then(|b| b.anon), live.and_then(|l| l.anon)) {
        (Some(b), Some(l)) => Some(l.saturating_sub(b) as f64 / n as f64),
        _ => None,
    };
    let released_bytes = match (live, released) {
        (Some(l), Some(r)) => Some(l.rss.saturating_sub(r.rss)),
        _ => None,
    };
    Ok(json!({
        "seed": {"conversations": warm + n, "seed_seconds": seed_seconds},
        "rss": {
            "source": rss_source(),
            "baseline": baseline.map(Rss::to_json),
            "live": live.map(Rss::to_json),
            "passivated": passivated.map(Rss::to_json),
            "released": released.map(Rss::to_json),
        },
        "live": {
            "agents": counts.live,
            "idle_agents": counts.idle,
            "conversations_measured": n,
            "wake_seconds": wake_seconds,
            "woken_per_sec": n as f64 / wake_seconds,
            "bytes_per_conversation": per_conversation,
            "anon_bytes_per_conversation": anon_per_conversation,
            "target_bytes_per_conversation": TARGET_BYTES_PER_CONVERSATION,
            "within_target": per_conversation.map(|b| b <= TARGET_BYTES_PER_CONVERSATION as f64),
        },
        "passivation": {
            "idle_timeout_secs": opts.idle_timeout.as_secs(),
            "agents_after": remaining,
            "passivation_seconds": passivation_seconds,
            "released_bytes": released_bytes,
            "released_fraction": match (released_bytes, baseline, live) {
                (Some(r), Some(b), Some(l)) if l.rss > b.rss => Some(r as f64 / (l.rss - b.rss) as f64),
                _ => None,
            },
        },
        "after_passivation": probes,
    }))
}

/// The actor tree's agents of the demo tenant.
struct Agents<'a> {
    root: &'a ActorRef<RootMsg>,
    tenant: TenantId,
}

impl Agents<'_> {
    /// Live conversation agents, and how many of them are idle.
    async fn counts(&self) -> anyhow::Result<AgentCounts> {
        let tenant = self.tenant;
        let answer = self
            .root
            .call(
                |r| RootMsg::AgentCounts(tenant, r),
                Some(Duration::from_secs(30)),
            )
            .await
            .context("the actor tree is gone")?;
        answer.success_or_else(|| anyhow::anyhow!("the actor tree did not answer within 30 s"))
    }

    async fn live(&self) -> anyhow::Result<usize> {
        Ok(self.counts().await?.live)
    }
}

/// Wakes `ids` in waves, `already` agents being live before; returns when all are live and
/// idle again (every turn a wake-up started has finished).
async fn wake(agents: &Agents<'_>, ids: &[ConversationId], already: usize) -> anyhow::Result<()> {
    let mut woken = already;
    for wave in ids.chunks(WAVE) {
        for &conversation in wave {
            agents
                .root
                .send_message(RootMsg::Route {
                    tenant: agents.tenant,
                    conversation,
                })
                .context("the actor tree is gone")?;
        }
        woken += wave.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let counts = agents.counts().await?;
            if counts.live == woken && counts.idle == woken {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "a minute after {woken} conversations were woken, {} agents were live and \
                     {} idle",
                    counts.live,
                    counts.idle
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// Posts one message to each of `count` conversations spread over `ids` (all passivated) and
/// waits for every answer.
async fn probe_passivated(
    target: &Target,
    ids: &[ConversationId],
    prefix: &str,
    count: usize,
) -> anyhow::Result<Value> {
    let channel = target.webchat;
    let step = (ids.len() / count.max(1)).max(1);
    let picks: Vec<usize> = (0..count).map(|i| i * step).collect();
    let mut same_conversation = 0;
    let mut latencies = Vec::with_capacity(count);
    let tasks = picks.iter().map(|&i| {
        let http = target.http.clone();
        let base = target.base.clone();
        let session = db::seeded_session(prefix, i);
        let expected = ids[i];
        async move {
            let sent = Instant::now();
            let r = http
                .post(format!("{base}/api/v1/webchat/{channel}/messages"))
                .json(&json!({"session_id": session, "client_message_id": "after-passivation", "text": "Are you open on Saturdays?"}))
                .send()
                .await?;
            anyhow::ensure!(r.status() == 202, "the post was refused with {}", r.status());
            let accepted: Value = r.json().await?;
            let same = accepted["conversation_id"].as_str() == Some(expected.to_string().as_str());
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let history: Value = http
                    .get(format!("{base}/api/v1/webchat/{channel}/sessions/{session}/messages"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let answered = history["messages"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["role"] == "agent"));
                if answered {
                    return Ok::<_, anyhow::Error>((same, sent.elapsed().as_secs_f64() * 1000.0));
                }
                if Instant::now() > deadline {
                    bail!("session {session} got no answer within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    for outcome in futures::future::join_all(tasks).await {
        let (same, ms) = outcome?;
        same_conversation += usize::from(same);
        latencies.push(ms);
    }
    Ok(json!({
        "messages": count,
        "answered": latencies.len(),
        "same_conversation": same_conversation,
        "latency_ms": super::accounting::percentiles(&mut latencies),
    }))
}

/// A resident-set reading.
#[derive(Clone, Copy, Debug)]
struct Rss {
    /// Resident set, bytes.
    rss: u64,
    /// Its anonymous part (heap and stacks), bytes, where the system tells it apart.
    anon: Option<u64>,
    /// The peak resident set so far, bytes, where the system tells it.
    peak: Option<u64>,
}

impl Rss {
    fn to_json(self) -> Value {
        json!({"rss_bytes": self.rss, "anon_bytes": self.anon, "peak_bytes": self.peak})
    }
}

fn rss_source() -> &'static str {
    if cfg!(target_os = "linux") {
        "/proc/self/status"
    } else if cfg!(unix) {
        "ps -o rss="
    } else {
        "unavailable"
    }
}

/// This process's resident set now; `None` where the system does not tell.
fn rss() -> Option<Rss> {
    if cfg!(target_os = "linux") {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        return parse_status(&status);
    }
    if cfg!(unix) {
        let out = std::process::Command::new("ps")
            .args(["-o", "rss=", "-p", &std::process::id().to_string()])
            .output()
            .ok()?;
        let kib: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        return Some(Rss {
            rss: kib * 1024,
            anon: None,
            peak: None,
        });
    }
    None
}

/// The resident set of a `/proc/<pid>/status`.
fn parse_status(status: &str) -> Option<Rss> {
    let field = |name: &str| {
        status
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some(Rss {
        rss: field("VmRSS")?,
        anon: field("RssAnon"),
        peak: field("VmHWM"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_is_read_from_proc_status() {
        let status = "Name:\tswitchboard\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nRssAnon:\t   81920 kB\nRssFile:\t   20480 kB\n";
        let r = parse_status(status).unwrap();
        assert_eq!(r.rss, 100 * 1024 * 1024);
        assert_eq!(r.anon, Some(80 * 1024 * 1024));
        assert_eq!(r.peak, Some(200 * 1024 * 1024));
        assert!(parse_status("Name:\tx\n").is_none());
    }

    #[test]
    fn options_that_cannot_make_a_run_are_refused() {
        let ok = MemoryOptions::default();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.warm_up(), 1000);
        assert!(MemoryOptions {
            conversations: 0,
            ..ok.clone()
        }
        .validate()
        .is_err());
        assert!(MemoryOptions {
            idle_timeout: Duration::from_millis(500),
            ..ok.clone()
        }
        .validate()
        .is_err());
        assert_eq!(
            MemoryOptions {
                conversations: 50,
                ..ok
            }
            .warm_up(),
            10
        );
    }
}
