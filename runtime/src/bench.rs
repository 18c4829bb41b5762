//! `switchboard bench`: a load run of the full durable pipeline on this machine, with the
//! facts needed to trust and compare its figures.
//!
//! It starts a private application (embedded PostgreSQL with fsync on, in a scratch directory,
//! unless `DATABASE_URL` is set) and drives it through its public HTTP surface, in one of two
//! ways:
//!
//! * **closed loop** (`--mode closed`, the default; [`closed`]) — many conversations at once,
//!   each waiting for the agent's reply before sending again (how a person chats), then every
//!   message posted as fast as the server accepts them (ingest);
//! * **open loop** (`--mode open`; [`open`]) — messages offered at a constant rate whether or not
//!   earlier ones were answered, over web chat or as signed WhatsApp webhooks, each message's
//!   latency counted from the moment it was *meant* to be sent, so queueing inside the server is
//!   never hidden by a client that politely waited (coordinated omission).
//!
//! Both end with the raw single-row commit rate of the same PostgreSQL, the yardstick the
//! pipeline is compared to. The debounce window is zero so the figures show the runtime's own
//! work, not the deliberate wait for a customer to finish typing. The responder is chosen with
//! `--responder`: `offline` (the default agent without a model), `llm-stub` (the model path
//! against an in-process OpenAI-compatible server that answers at once), or `echo` (every turn
//! answers with the customer's text: no retrieval, no model — the durable core alone).
//!
//! The JSON result carries the machine, the commit and the configuration beside the figures;
//! [`compare`] checks a run against a baseline of the same shape and flags figures more than
//! 20 % worse. The harness reads the database directly in three places (draining, attributing
//! replies to messages, the raw commits): it is a measuring instrument looking at what the store
//! wrote, not part of the product, so those few queries live here rather than in the store.
//!
//! `--suite memory` ([`memory`]) measures what an idle live conversation costs and checks that
//! idle agents passivate without losing anything; it creates its crowd of conversations with
//! the harness's only writes ([`db`]), for the same reason.
//!
//! `--suite chaos` ([`chaos`]) runs the server as a child process under faults (SIGKILLs of the
//! server and of PostgreSQL, a failing model) over every webhook channel kind and counts lost and
//! duplicated messages, replies and deliveries.

mod accounting;
pub mod chaos;
mod closed;
pub mod compare;
mod db;
mod fake_graph;
pub mod memory;
mod open;
mod probe;
mod sse;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, platform};
use switchboard_core::{ChannelId, Db, MasterKey, TenantId};

use crate::app::{Application, BuildOptions};
use crate::config::Settings;

pub use compare::{compare, Comparison, Incomparable};

/// Who answers the customers during a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Responder {
    /// The agent without a model: knowledge base, rules, offline replies.
    #[default]
    Offline,
    /// The model path, against a zero-latency in-process OpenAI-compatible server.
    LlmStub,
    /// The customer's own text, with no retrieval and no model: the durable core alone.
    Echo,
}

impl Responder {
    pub fn as_str(self) -> &'static str {
        match self {
            Responder::Offline => "offline",
            Responder::LlmStub => "llm-stub",
            Responder::Echo => "echo",
        }
    }
}

/// Closed or open loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Each conversation waits for its reply before sending again; then ingest.
    #[default]
    Closed,
    /// A constant arrival rate, latency from the intended send time.
    Open,
}

/// Which channel the open loop speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Channel {
    /// The web-chat API; replies read from each session's event stream.
    #[default]
    Webchat,
    /// Signed WhatsApp Cloud API webhooks; replies read from a fake Graph API in the harness.
    Whatsapp,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webchat => "webchat",
            Channel::Whatsapp => "whatsapp",
        }
    }
}

/// How load is offered.
#[derive(Clone, Debug, PartialEq)]
pub enum Load {
    /// Each conversation sends `messages`, one at a time, waiting for every reply; then the
    /// same number again, all posted at once (ingest).
    Closed { messages: usize },
    /// Messages at a constant rate, regardless of replies.
    Open(OpenLoad),
}

/// The open loop's schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenLoad {
    /// Messages offered per second, in total (spread over the conversations in turn).
    pub rate: f64,
    /// How long messages are offered.
    pub duration: Duration,
    pub channel: Channel,
}

/// Parameters of a run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Conversations (customers) taking part.
    pub conversations: usize,
    pub responder: Responder,
    pub load: Load,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            conversations: 50,
            responder: Responder::Offline,
            load: Load::Closed { messages: 20 },
        }
    }
}

/// WhatsApp's caps, which the dispatcher enforces (see `switchboard_channels::limits`): a
/// number sends at most 80 messages a second, and a customer receives at most one message every
/// six seconds (after a burst of three).
const WHATSAPP_NUMBER_CAP_PER_SEC: f64 = 80.0;
const WHATSAPP_CUSTOMER_INTERVAL_SECS: f64 = 6.0;

impl BenchOptions {
    /// Refuses options that cannot make a meaningful run.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.conversations == 0 {
            bail!("--conversations must be at least 1");
        }
        match &self.load {
            Load::Closed { messages } if *messages == 0 => {
                bail!("--messages must be at least 1")
            }
            Load::Closed { .. } => {}
            Load::Open(o) => {
                if !(o.rate.is_finite() && o.rate > 0.0 && o.rate <= 100_000.0) {
                    bail!("--rate must be between 0 and 100000 messages per second");
                }
                if o.duration.is_zero() || o.duration > Duration::from_secs(3600) {
                    bail!("--duration must be between 1 and 3600 seconds");
                }
                if (o.rate * o.duration.as_secs_f64()).round() < 1.0 {
                    bail!("--rate × --duration offers no message at all");
                }
            }
        }
        Ok(())
    }

    /// The customers and WhatsApp numbers the run really uses. On WhatsApp the load is spread
    /// over enough customers and numbers that the provider caps the dispatcher enforces (80/s
    /// per number, one message per 6 s per customer) are never binding: otherwise the run would
    /// measure those deliberate waits, not Switchboard (as a debounce window would).
    pub fn shape(&self) -> Shape {
        match &self.load {
            Load::Open(o) if o.channel == Channel::Whatsapp => Shape {
                customers: self
                    .conversations
                    .max((o.rate * WHATSAPP_CUSTOMER_INTERVAL_SECS).ceil() as usize),
                whatsapp_numbers: ((o.rate / (0.8 * WHATSAPP_NUMBER_CAP_PER_SEC)).ceil() as usize)
                    .max(1),
            },
            _ => Shape {
                customers: self.conversations,
                whatsapp_numbers: 0,
            },
        }
    }

    /// The configuration known before the run (the comparable part of the `config` object).
    pub fn planned_config(&self) -> Value {
        let shape = self.shape();
        let (mode, messages, rate, duration, channel) = match &self.load {
            Load::Closed { messages } => (
                "closed",
                json!(messages),
                Value::Null,
                Value::Null,
                "webchat",
            ),
            Load::Open(o) => (
                "open",
                Value::Null,
                json!(o.rate),
                json!(o.duration.as_secs_f64()),
                o.channel.as_str(),
            ),
        };
        json!({
            "suite": "pipeline",
            "mode": mode,
            "responder": self.responder.as_str(),
            "channel": channel,
            "conversations": shape.customers,
            "messages": messages,
            "rate": rate,
            "duration_secs": duration,
            "whatsapp_numbers": if shape.whatsapp_numbers > 0 { json!(shape.whatsapp_numbers) } else { Value::Null },
            "debounce_ms": 0,
        })
    }
}

/// Customers and numbers of a run (see [`BenchOptions::shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub customers: usize,
    /// WhatsApp channels (business numbers) to spread the load over; 0 when not on WhatsApp.
    pub whatsapp_numbers: usize,
}

/// A running private application and what the load drivers need to reach it.
pub(crate) struct Target {
    pub base: String,
    pub http: reqwest::Client,
    pub db: Db,
    pub tenant: TenantId,
    /// The demo tenant's web-chat channel.
    pub webchat: ChannelId,
    /// The application's master key (channels the harness adds seal their credentials with it).
    pub master_key: MasterKey,
}

/// The pipeline suite's command-line arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct PipelineArgs {
    /// Conversations running at once (on WhatsApp, at least enough customers that WhatsApp's
    /// per-customer cap is never what is measured) [default: 50]. Memory suite: idle live
    /// conversations measured [default: 100000].
    #[arg(long)]
    pub conversations: Option<usize>,
    /// Closed loop: messages each conversation sends [default: 20].
    #[arg(long)]
    pub messages: Option<usize>,
    /// Who answers: `offline` (the agent without a model), `llm-stub` (the model path against a
    /// zero-latency in-process OpenAI-compatible server) or `echo` (the customer's own text, no
    /// retrieval, no model: the durable core alone) [default: offline].
    #[arg(long, value_enum)]
    pub responder: Option<Responder>,
    /// Same as `--responder llm-stub`.
    #[arg(long)]
    pub llm_stub: bool,
    /// `closed` (each conversation waits for its reply, then ingest) or `open` (a constant
    /// arrival rate; latency counted from each message's intended send time).
    #[arg(long, value_enum, default_value = "closed")]
    pub mode: Mode,
    /// Open loop: messages offered per second, in total [default: 100].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: seconds during which messages are offered [default: 10].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Open loop: `webchat`, or `whatsapp` (signed webhooks; replies reach a fake Graph API)
    /// [default: webchat].
    #[arg(long, value_enum)]
    pub channel: Option<Channel>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare with an earlier result (same suite, mode, responder and load): exit status 1
    /// when a figure is more than 20 % worse, 2 when the runs cannot be compared.
    #[arg(long)]
    pub compare: Option<PathBuf>,
}

impl PipelineArgs {
    /// The options these arguments ask for.
    pub fn options(&self) -> anyhow::Result<BenchOptions> {
        let responder = match (self.responder, self.llm_stub) {
            (None, false) => Responder::Offline,
            (None, true) => Responder::LlmStub,
            (Some(r), false) => r,
            (Some(Responder::LlmStub), true) => Responder::LlmStub,
            (Some(r), true) => bail!(
                "--llm-stub means --responder llm-stub; it cannot go with --responder {}",
                r.as_str()
            ),
        };
        let load = match self.mode {
            Mode::Closed => {
                if self.rate.is_some() || self.duration.is_some() || self.channel.is_some() {
                    bail!("--rate, --duration and --channel are for --mode open");
                }
                Load::Closed {
                    messages: self.messages.unwrap_or(20),
                }
            }
            Mode::Open => {
                if self.messages.is_some() {
                    bail!("--messages is for --mode closed; the open loop sends --rate × --duration messages");
                }
                let secs = self.duration.unwrap_or(10.0);
                Load::Open(OpenLoad {
                    rate: self.rate.unwrap_or(100.0),
                    duration: Duration::try_from_secs_f64(secs)
                        .ok()
                        .filter(|_| secs.is_finite())
                        .context("--duration must be a number of seconds")?,
                    channel: self.channel.unwrap_or_default(),
                })
            }
        };
        let opts = BenchOptions {
            conversations: self.conversations.unwrap_or(50),
            responder,
            load,
        };
        opts.validate()?;
        Ok(opts)
    }
}

/// `switchboard bench` (pipeline suite): runs, prints the JSON result (and writes it to
/// `--out`), and with `--compare` checks it against the baseline. Fails with [`Incomparable`]
/// (inside the error's chain) when the baseline was measured under another configuration —
/// before running when that is known up front — and with a plain error when a figure
/// regressed, after the result has been printed and written.
pub async fn command(settings: Settings, args: PipelineArgs) -> anyhow::Result<()> {
    let opts = args.options()?;
    let baseline = match &args.compare {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read the baseline {}", path.display()))?;
            let baseline: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a bench result (JSON)", path.display()))?;
            compare::check_comparable(&baseline, &opts.planned_config())
                .with_context(|| format!("cannot compare with {}", path.display()))?;
            Some((path, baseline))
        }
        None => None,
    };
    let mut result = run(settings, opts).await?;
    let comparison = baseline.map(|(path, baseline)| {
        let c = compare(&baseline, &result);
        if let Ok(c) = &c {
            eprintln!("Compared with {}:", path.display());
            eprint!("{}", c.table());
            result["comparison"] = c.to_json();
            result["comparison"]["baseline"] = json!(path.display().to_string());
        }
        (path, c)
    });
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("could not write {}", out.display()))?;
    }
    match comparison {
        None => Ok(()),
        Some((path, Err(e))) => {
            Err(e).with_context(|| format!("cannot compare with {}", path.display()))
        }
        Some((path, Ok(c))) => {
            let regressed: Vec<&str> = c.regressions().map(|f| f.name.as_str()).collect();
            if regressed.is_empty() {
                Ok(())
            } else {
                bail!(
                    "{} figure(s) more than {:.0} % worse than the baseline {}: {}",
                    regressed.len(),
                    compare::THRESHOLD * 100.0,
                    path.display(),
                    regressed.join(", ")
                )
            }
        }
    }
}

/// Runs the benchmark and returns its JSON result.
pub async fn run(mut settings: Settings, opts: BenchOptions) -> anyhow::Result<Value> {
    opts.validate()?;
    let started_at = chrono::Utc::now();
    let commit = probe::commit().await;
    // The fake providers (model stub, WhatsApp Graph API) listen on loopback.
    settings.allow_private_networks = true;
    // Every simulated customer posts from this machine's one address.
    settings.limits = crate::config::LimitsSettings::unlimited();
    // A simulated customer talks far faster than a person: no per-conversation model budget.
    settings.pipeline.model_turns_per_hour = 0;
    match opts.responder {
        Responder::Offline => {}
        Responder::LlmStub => {
            settings.openai_base_url = Some(closed::zero_latency_model().await?);
            settings.openai_api_key = Some("bench".to_owned().into());
        }
        Responder::Echo => settings.pipeline.responder = switchboard_actors::ResponderMode::Echo,
    }
    let instance = Instance::start(settings, "switchboard-bench").await?;
    let measured = async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(opts.shape().customers.clamp(16, 1024))
            .build()?;
        let (target, embedder, fsync) = instance.target(http).await?;
        let figures = match &opts.load {
            Load::Closed { messages } => {
                closed::run(&target, opts.conversations, *messages).await?
            }
            Load::Open(load) => open::run(&target, load, opts.shape()).await?,
        };
        let raw = db::raw_commits(&instance.owner_url, opts.conversations.min(32)).await?;
        Ok::<_, anyhow::Error>((figures, raw, embedder, fsync))
    }
    .await;
    let stopped = instance.stop().await;
    let (figures, raw, embedder, fsync) = measured?;
    stopped?;

    let mut config = opts.planned_config();
    config["embedder"] = json!(embedder);
    config["fsync"] = json!(fsync);
    let raw_rate = raw["commits_per_sec"].as_f64().unwrap_or(0.0).max(1.0);
    let mut result = json!({
        "suite": "pipeline",
        "started_at": started_at.to_rfc3339(),
        "commit": commit,
        "machine": probe::machine(),
        "config": config,
    });
    let ratios = match figures {
        Figures::Closed { round_trip, ingest } => {
            let rt = round_trip["messages_per_sec"].as_f64().unwrap_or(0.0);
            let ing = ingest["accepted_per_sec"].as_f64().unwrap_or(0.0);
            let mut round_trip = round_trip;
            round_trip["above_durable_floor_ms"] =
                above_floor(&round_trip["latency_ms"], &raw["one_commit_alone_ms"]);
            result["round_trip"] = round_trip;
            result["ingest"] = ingest;
            json!({
                "ingest_vs_raw_commits": ing / raw_rate,
                "round_trip_vs_raw_commits": rt / raw_rate,
            })
        }
        Figures::Open(open_loop) => {
            let achieved = open_loop["achieved_per_sec"].as_f64().unwrap_or(0.0);
            let accepted = open_loop["accepted"].as_f64().unwrap_or(0.0);
            let answered = open_loop["answered"].as_f64().unwrap_or(0.0);
            result["open_loop"] = open_loop;
            json!({
                "answered": if accepted > 0.0 { answered / accepted } else { 0.0 },
                "open_loop_vs_raw_commits": achieved / raw_rate,
            })
        }
    };
    result["raw_postgres"] = raw;
    result["ratios"] = ratios;
    Ok(result)
}

/// A message's latency less the floor of two durable commits in sequence (its own before the
/// 202, its reply's before the reply is shown), each as long as a commit alone on this server:
/// what the pipeline itself adds. `null` without figures.
fn above_floor(latency: &Value, one_commit: &Value) -> Value {
    let Some(commit) = one_commit["p50"].as_f64() else {
        return Value::Null;
    };
    let floor = 2.0 * commit;
    let mut out = serde_json::Map::new();
    out.insert("floor".into(), json!(floor));
    for p in ["p50", "p90", "p99"] {
        if let Some(l) = latency[p].as_f64() {
            out.insert(p.into(), json!((l - floor).max(0.0)));
        }
    }
    Value::Object(out)
}

/// What a load driver measured.
pub(crate) enum Figures {
    Closed { round_trip: Value, ingest: Value },
    Open(Value),
}

/// A private Switchboard for one run: its own scratch data directory (so its own embedded
/// database), the demo tenant, debounce 0, no admin token, on a free port. [`Instance::stop`]
/// stops it and removes the directory whatever the run did, so a failed run leaves no database
/// running behind it.
pub(crate) struct Instance {
    pub services: std::sync::Arc<switchboard_actors::Services>,
    pub root: ractor::ActorRef<switchboard_actors::RootMsg>,
    /// The schema owner's login (the raw commit yardstick uses it).
    pub owner_url: String,
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    scratch: PathBuf,
}

impl Instance {
    pub(crate) async fn start(mut settings: Settings, name: &str) -> anyhow::Result<Self> {
        let scratch =
            std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&scratch)?;
        settings.data_dir = scratch.clone();
        settings.listen = "127.0.0.1:0".into();
        settings.demo = Some(true);
        settings.pipeline.debounce_ms = 0;
        settings.admin_token = None;
        let app = match Application::build(settings, BuildOptions::default()).await {
            Ok(app) => app,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        let services = app.services();
        let root = app.root();
        let owner_url = secrecy::ExposeSecret::expose_secret(app.owner_url()).to_owned();
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stop_rx.await;
        }));
        Ok(Self {
            services,
            root,
            owner_url,
            base,
            stop,
            server,
            scratch,
        })
    }

    /// The demo tenant as the load's target (with `http` as its client), the embedder its
    /// queries use and the server's `fsync` setting.
    pub(crate) async fn target(
        &self,
        http: reqwest::Client,
    ) -> anyhow::Result<(Target, String, String)> {
        let db = &self.services.db;
        let (tenant, webchat, embedder) = demo_tenant(db, &self.services.embedders).await?;
        let fsync: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(db.pool())
            .await
            .context("could not read the server's fsync setting")?;
        let target = Target {
            base: self.base.clone(),
            http,
            db: db.clone(),
            tenant,
            webchat,
            master_key: self.services.embedders.master_key().clone(),
        };
        Ok((target, embedder, fsync))
    }

    /// Stops the server (once nothing of the run holds its pool) and removes the scratch
    /// directory.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let Self {
            services,
            root,
            stop,
            server,
            scratch,
            ..
        } = self;
        drop((services, root));
        let _ = stop.send(());
        let stopped = server.await;
        let _ = std::fs::remove_dir_all(&scratch);
        stopped?
    }
}

/// The demo tenant, its web-chat channel and the embedder its queries use.
async fn demo_tenant(
    db: &Db,
    embedders: &switchboard_knowledge::Embedders,
) -> anyhow::Result<(TenantId, ChannelId, String)> {
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
    let tenant_embedders = embedders
        .for_tenant(&mut tx)
        .await
        .context("could not resolve the demo tenant's embedder")?;
    tx.commit().await?;
    let embedder = tenant_embedders
        .active_model
        .unwrap_or_else(|| tenant_embedders.desired.model_id());
    Ok((demo.id, channel, embedder))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PipelineArgs,
    }

    fn options(args: &[&str]) -> anyhow::Result<BenchOptions> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))?;
        cli.args.options()
    }

    #[test]
    fn the_defaults_are_todays_closed_loop_with_the_offline_responder() {
        let o = options(&[]).unwrap();
        assert_eq!(o.conversations, 50);
        assert_eq!(o.responder, Responder::Offline);
        assert_eq!(o.load, Load::Closed { messages: 20 });
    }

    #[test]
    fn llm_stub_is_an_alias_of_the_llm_stub_responder() {
        assert_eq!(
            options(&["--llm-stub"]).unwrap().responder,
            Responder::LlmStub
        );
        assert_eq!(
            options(&["--llm-stub", "--responder", "llm-stub"])
                .unwrap()
                .responder,
            Responder::LlmStub
        );
        assert_eq!(
            options(&["--responder", "echo"]).unwrap().responder,
            Responder::Echo
        );
        assert!(options(&["--llm-stub", "--responder", "echo"]).is_err());
        assert!(options(&["--responder", "gpt"]).is_err());
    }

    #[test]
    fn each_loop_refuses_the_other_loops_flags() {
        assert!(options(&["--rate", "10"]).is_err());
        assert!(options(&["--channel", "whatsapp"]).is_err());
        assert!(options(&["--mode", "open", "--messages", "5"]).is_err());
        assert!(options(&["--mode", "open", "--rate", "0"]).is_err());
        assert!(options(&["--mode", "open", "--duration", "-1"]).is_err());
        assert!(options(&["--conversations", "0"]).is_err());
        let o = options(&["--mode", "open", "--rate", "200", "--duration", "2.5"]).unwrap();
        assert_eq!(
            o.load,
            Load::Open(OpenLoad {
                rate: 200.0,
                duration: Duration::from_millis(2500),
                channel: Channel::Webchat,
            })
        );
    }

    #[test]
    fn whatsapp_load_is_spread_so_the_provider_caps_are_never_what_is_measured() {
        let o = options(&["--mode", "open", "--channel", "whatsapp", "--rate", "200"]).unwrap();
        // One message per customer every 6 s at most; 80/s per number, with headroom.
        assert_eq!(
            o.shape(),
            Shape {
                customers: 1200,
                whatsapp_numbers: 4
            }
        );
        let config = o.planned_config();
        assert_eq!(config["conversations"], 1200);
        assert_eq!(config["whatsapp_numbers"], 4);
        // More customers than the cap needs are kept as asked.
        let o = options(&[
            "--mode",
            "open",
            "--channel",
            "whatsapp",
            "--rate",
            "1",
            "--conversations",
            "50",
        ])
        .unwrap();
        assert_eq!(o.shape().customers, 50);
        // Web chat has no caps: the conversations are as asked.
        let o = options(&["--mode", "open", "--rate", "200"]).unwrap();
        assert_eq!(o.shape().customers, 50);
        assert_eq!(o.planned_config()["whatsapp_numbers"], Value::Null);
    }

    #[test]
    fn the_planned_configuration_names_everything_that_makes_runs_comparable() {
        let config = options(&["--responder", "echo", "--messages", "5"])
            .unwrap()
            .planned_config();
        assert_eq!(config["suite"], "pipeline");
        assert_eq!(config["mode"], "closed");
        assert_eq!(config["responder"], "echo");
        assert_eq!(config["channel"], "webchat");
        assert_eq!(config["messages"], 5);
        assert_eq!(config["rate"], Value::Null);
        assert_eq!(config["debounce_ms"], 0);
    }
}
