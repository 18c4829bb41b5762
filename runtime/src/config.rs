//! Typed, layered configuration: defaults < TOML file < environment variables.
//!
//! The TOML file is `switchboard.toml` in the working directory, or the path in
//! `SWITCHBOARD_CONFIG`. Environment variables: `DATABASE_URL`, `OPENAI_API_KEY`,
//! `OPENAI_BASE_URL`, and `SWITCHBOARD_<KEY>` for every other key, with `__` separating nested
//! keys (`SWITCHBOARD_PIPELINE__DEBOUNCE_MS=250`). Secrets are held in [`SecretString`], whose
//! `Debug` prints `[REDACTED]`, so logging the settings never leaks them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::Deserialize;
use switchboard_actors::brain::{BrainConfig, PlatformModel};
use switchboard_actors::PipelineConfig;
use switchboard_core::store::analytics::{ModelPrice, PriceError, PriceTable};
use switchboard_llm::BreakerConfig;

/// All settings of a Switchboard process.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// An existing PostgreSQL (≥ 15 with `vector`); when absent, an embedded server is started.
    pub database_url: Option<SecretString>,
    /// Optional separate login as `switchboard_app`; otherwise the app switches role itself.
    pub app_database_url: Option<SecretString>,
    /// Embedded database and local state.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: String,
    /// The URL providers reach this deployment at (behind a proxy: the proxy's URL), used for
    /// webhook URLs, Twilio signature checks and status callbacks. Default: `http://` + the
    /// listen address.
    pub public_base_url: Option<String>,
    /// Key for encrypting secrets at rest (used by channel and LLM credentials).
    pub master_key: Option<SecretString>,
    /// Bearer token of the bootstrap platform admin. Generated into the data dir when unset.
    pub admin_token: Option<SecretString>,
    pub openai_api_key: Option<SecretString>,
    pub openai_base_url: Option<String>,
    /// Transcription of voice notes (WhatsApp, Telegram): an OpenAI-compatible
    /// `/audio/transcriptions` endpoint. Unset: customers are asked to type instead.
    pub speech_to_text: Option<SpeechToTextSettings>,
    pub pg: PgSettings,
    pub pipeline: PipelineSettings,
    /// Actions: the effects worker (notifications, invites, CRM webhooks).
    pub actions: ActionsSettings,
    pub log: LogSettings,
    /// Knowledge base: local embedding model and chunking.
    pub knowledge: KnowledgeConfig,
    /// The model-backed agent: platform model, retries, breaker, tool loop, memory.
    pub llm: LlmSettings,
    /// Analytics: model prices for cost estimates.
    pub analytics: AnalyticsSettings,
    /// The demo tenant, whose public chat anyone can use. Unset: on unless a platform model key
    /// is configured (an anonymous demo must not spend the platform's key); `true` keeps it on
    /// anyway. See [`Settings::demo_enabled`].
    pub demo: Option<bool>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Connections in the application pool. Small pools win on small machines: on 2 cores, 10
    /// connections answer about 25% more messages per second than 32.
    pub db_pool_size: u32,
    /// Sign-in, sessions, invitation and reset links, throttling.
    pub auth: AuthSettings,
    /// The platform's SMTP account: invitations and password resets of tenants without an email
    /// channel (and of people who belong to no tenant).
    pub smtp: Option<crate::auth::mail::PlatformSmtp>,
    /// Lets tenants point Switchboard at loopback, private and link-local addresses (their model,
    /// embedding and CRM URLs, provider API bases, SMTP and IMAP hosts). Off by default: those
    /// addresses are refused after DNS resolution, on every connection (server-side request
    /// forgery). Local development with providers on this machine and the test suite turn it on.
    pub allow_private_networks: bool,
    /// What one client may ask of the public routes, and how long it may take.
    pub limits: LimitsSettings,
    /// `GET /metrics`: how many tenants get a label of their own.
    pub metrics: MetricsSettings,
    /// Trace export over OTLP (off unless an endpoint is configured).
    pub telemetry: TelemetrySettings,
}

/// The Prometheus metrics at `GET /metrics`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Tenants that get a `tenant` label value of their own (their id), the first ones this
    /// process sees; later tenants are counted under `tenant="other"`, so the series stay
    /// bounded. 0: every tenant is `other`.
    pub max_tenant_labels: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            max_tenant_labels: 100,
        }
    }
}

/// Trace export: the `tracing` spans of `serve` sent to an OpenTelemetry collector over
/// OTLP/HTTP (protobuf). Off unless an endpoint is set here or in the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// The collector's base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended);
    /// wins over the environment variables.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans; default `OTEL_SERVICE_NAME`, else `switchboard`.
    pub service_name: Option<String>,
    /// Which spans are exported (a `tracing` filter, independent of the log filter). Default
    /// `info,sqlx=warn,ractor=warn`.
    pub trace_filter: Option<String>,
}

/// Inbound limits: timeouts against slow clients, rates and stream caps against floods.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LimitsSettings {
    /// Seconds a client has to send a request's headers; also the longest idle wait between
    /// keep-alive requests.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers are in.
    pub body_read_timeout_secs: u64,
    /// Web-chat posts one session may make per minute, and in one burst.
    pub webchat_session_per_minute: u32,
    pub webchat_session_burst: u32,
    /// Web-chat posts one client address may make per minute (every session behind it), and in
    /// one burst.
    pub webchat_ip_per_minute: u32,
    pub webchat_ip_burst: u32,
    /// Event streams open at once for one session, and for one client address.
    pub streams_per_session: u32,
    pub streams_per_ip: u32,
    /// Behind a reverse proxy: the header it puts the client's address in
    /// (`x-forwarded-for`, `x-real-ip`); the last address in it counts. Unset: the
    /// connection's peer (set it behind a proxy, or every client shares the proxy's limits).
    pub client_ip_header: Option<String>,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            webchat_session_per_minute: 30,
            webchat_session_burst: 10,
            webchat_ip_per_minute: 600,
            webchat_ip_burst: 120,
            streams_per_session: 4,
            streams_per_ip: 100,
            client_ip_header: None,
        }
    }
}

impl LimitsSettings {
    /// Rates and stream caps no test or benchmark load reaches (one client address, the load
    /// generator's, sends everything); the tests of the limits set their own.
    pub fn unlimited() -> LimitsSettings {
        LimitsSettings {
            webchat_session_per_minute: 1_000_000,
            webchat_session_burst: 1_000_000,
            webchat_ip_per_minute: 1_000_000,
            webchat_ip_burst: 1_000_000,
            streams_per_session: 1_000_000,
            streams_per_ip: 1_000_000,
            ..LimitsSettings::default()
        }
    }

    pub fn timeouts(&self) -> crate::http::serve::ServerTimeouts {
        crate::http::serve::ServerTimeouts {
            header_read: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            body_read: Duration::from_secs(self.body_read_timeout_secs.max(1)),
            ..Default::default()
        }
    }
}

/// Sign-in and sessions.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// A session ends this long after sign-in.
    pub session_hours: u64,
    /// A session unused for this long ends.
    pub session_idle_minutes: u64,
    /// How long an invitation link works.
    pub invitation_days: u64,
    /// How long a password-reset link works.
    pub reset_minutes: u64,
    /// Failed sign-ins per account, and per client address, within `lock_minutes`, before
    /// sign-in is refused for `lock_minutes`.
    pub max_failures_per_account: i32,
    pub max_failures_per_ip: i32,
    pub lock_minutes: u64,
    /// `Secure` cookies. Default: on, except when `public_base_url` is plain HTTP on a host that
    /// is not local (browsers would drop them).
    pub secure_cookies: Option<bool>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        let d = crate::auth::AuthConfig::default();
        Self {
            session_hours: d.session_ttl.as_secs() / 3600,
            session_idle_minutes: d.session_idle.as_secs() / 60,
            invitation_days: d.invitation_ttl.as_secs() / 86_400,
            reset_minutes: d.reset_ttl.as_secs() / 60,
            max_failures_per_account: d.account_rule.max_failures,
            max_failures_per_ip: d.ip_rule.max_failures,
            lock_minutes: d.account_rule.lock.as_secs() / 60,
            secure_cookies: None,
        }
    }
}

impl Settings {
    /// The sign-in configuration, given the URL people reach the server at.
    pub fn auth_config(&self, public_base_url: &str) -> crate::auth::AuthConfig {
        use switchboard_core::store::identity::ThrottleRule;
        let a = &self.auth;
        let lock = Duration::from_secs(a.lock_minutes.max(1) * 60);
        let local = ["://127.", "://localhost", "://[::1]"]
            .iter()
            .any(|h| public_base_url.contains(h));
        crate::auth::AuthConfig {
            session_ttl: Duration::from_secs(a.session_hours.max(1) * 3600),
            session_idle: Duration::from_secs(a.session_idle_minutes.max(1) * 60),
            invitation_ttl: Duration::from_secs(a.invitation_days.max(1) * 86_400),
            reset_ttl: Duration::from_secs(a.reset_minutes.max(1) * 60),
            account_rule: ThrottleRule {
                max_failures: a.max_failures_per_account.max(1),
                window: lock,
                lock,
            },
            ip_rule: ThrottleRule {
                max_failures: a.max_failures_per_ip.max(1),
                window: lock,
                lock,
            },
            secure_cookies: a
                .secure_cookies
                .unwrap_or(public_base_url.starts_with("https://") || local),
            platform_smtp: self.smtp.clone(),
        }
    }
}

/// An OpenAI-compatible speech-to-text endpoint.
#[derive(Clone, Debug, Deserialize)]
pub struct SpeechToTextSettings {
    /// Base URL up to `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<SecretString>,
    #[serde(default = "default_stt_model")]
    pub model: String,
}

fn default_stt_model() -> String {
    "whisper-1".into()
}

/// The embedded PostgreSQL server.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct PgSettings {
    /// Fixed port; by default a free one is picked at every start.
    pub port: Option<u16>,
    /// OS user the server runs as when Switchboard runs as root (default `nobody`).
    pub os_user: Option<String>,
    /// Directory with `initdb` and `postgres`; discovered when unset.
    pub bin: Option<PathBuf>,
    /// fsync and synchronous commit on. Only test suites turn this off.
    pub durable: bool,
    /// The embedded server's `shared_buffers`.
    pub shared_buffers: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct PipelineSettings {
    pub debounce_ms: u64,
    pub idle_timeout_secs: u64,
    pub max_attempts: i32,
    pub turn_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub outbox_max_attempts: i32,
    /// Budget for reading a turn's knowledge; past it the turn answers without knowledge.
    /// Default: a quarter of the turn timeout, at most 10 s.
    pub retrieval_timeout_ms: Option<u64>,
    /// First retry delay of a failed turn (doubled per consecutive failure, at most 10 s).
    pub retry_backoff_ms: u64,
    /// `agent` (default) or `echo` (reply with the customer's text; for benchmarks).
    pub responder: switchboard_actors::ResponderMode,
    /// Model turns one conversation may take per hour (bursts of as many); past them it is
    /// answered offline until the budget refills. 0: no budget.
    pub model_turns_per_hour: u32,
}

/// The effects worker: how long a claimed effect is reserved and how retries back off.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ActionsSettings {
    pub effect_lease_secs: u64,
    pub effect_backoff_ms: u64,
    pub effect_max_backoff_secs: u64,
}

impl Default for ActionsSettings {
    fn default() -> Self {
        let d = switchboard_actors::effects::EffectsConfig::default();
        Self {
            effect_lease_secs: d.lease.as_secs(),
            effect_backoff_ms: d.backoff_base.as_millis() as u64,
            effect_max_backoff_secs: d.max_backoff.as_secs(),
        }
    }
}

impl ActionsSettings {
    pub fn to_config(&self) -> switchboard_actors::effects::EffectsConfig {
        switchboard_actors::effects::EffectsConfig {
            lease: Duration::from_secs(self.effect_lease_secs.max(1)),
            backoff_base: Duration::from_millis(self.effect_backoff_ms.max(1)),
            max_backoff: Duration::from_secs(self.effect_max_backoff_secs.max(1)),
        }
    }
}

/// Knowledge base: the local embedding model and chunking.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct KnowledgeConfig {
    /// The platform's local embedder: `minilm` (all-MiniLM-L6-v2 in-process),
    /// `minilm+ngram` (the default: MiniLM for text in Latin and other scripts, character
    /// n-grams for Arabic text, in one 768-dimensional space) or `ngram`
    /// (character n-grams only, no model files).
    pub local_model: String,
    /// Folder holding `model.safetensors`, `tokenizer.json` and `config.json` of the local
    /// model (default: found under `.tools/minilm`, installed by `scripts/setup.sh`).
    pub model_dir: Option<PathBuf>,
    /// Dimensions of the character n-gram vectors (`ngram` and `minilm+ngram`).
    pub ngram_dims: usize,
    /// Chunk size and overlap, in characters.
    pub chunk_max_chars: usize,
    pub chunk_overlap_chars: usize,
    /// Tenants with at least this many chunks get retrieval indexes of their own (a partial HNSW
    /// and a partial GIN index); smaller ones are scanned exactly.
    pub tenant_index_min_chunks: i64,
    /// How often the index keeper looks for tenants that crossed that size, in seconds.
    pub tenant_index_check_secs: u64,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            local_model: "minilm+ngram".into(),
            model_dir: None,
            ngram_dims: 384,
            chunk_max_chars: 1000,
            chunk_overlap_chars: 150,
            tenant_index_min_chunks: switchboard_knowledge::tenant_indexes::DEFAULT_MIN_CHUNKS,
            tenant_index_check_secs: 60,
        }
    }
}

/// The model-backed agent. The platform model (used by tenants that configured none) exists
/// only when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set; otherwise such tenants get the
/// offline responder.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    /// The platform model's name.
    pub model: String,
    /// Tried when the platform model fails retryably.
    pub fallback_model: Option<String>,
    /// Per-attempt timeout (tenants may set their own in seconds).
    pub timeout_ms: u64,
    /// Retries per model after the first attempt (429, 5xx, connection failures).
    pub max_retries: u32,
    /// First backoff delay, doubled per retry.
    pub backoff_ms: u64,
    /// Longest wait between attempts; a longer `Retry-After` counts as a failure.
    pub max_retry_wait_ms: u64,
    /// Consecutive failed calls that open a tenant's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker fails fast before letting a probe through.
    pub breaker_cooldown_ms: u64,
    /// Model answers per turn that may call tools.
    pub max_tool_steps: u32,
    /// Bad tool calls tolerated per turn before tools are withdrawn.
    pub max_tool_errors: u32,
    /// Tokens of conversation history sent with each request.
    pub context_tokens: u32,
    /// Unsummarised messages that trigger a rolling summary of a conversation.
    pub summary_after_messages: i64,
    /// Most recent messages kept verbatim (out of the summary).
    pub keep_recent_messages: i64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        let b = BrainConfig::default();
        Self {
            model: "gpt-4o-mini".into(),
            fallback_model: None,
            timeout_ms: b.timeout.as_millis() as u64,
            max_retries: b.max_retries,
            backoff_ms: b.backoff_base.as_millis() as u64,
            max_retry_wait_ms: b.max_retry_wait.as_millis() as u64,
            breaker_failures: b.breaker.failure_threshold,
            breaker_cooldown_ms: b.breaker.cooldown.as_millis() as u64,
            max_tool_steps: b.max_tool_steps,
            max_tool_errors: b.max_tool_errors,
            context_tokens: b.context_tokens,
            summary_after_messages: b.summary_after,
            keep_recent_messages: b.keep_recent,
        }
    }
}

/// Analytics settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnalyticsSettings {
    /// Model name → USD per million input and output tokens, e.g.
    /// `[analytics.prices."gpt-4o"] input_per_million = 2.5, output_per_million = 10.0`.
    /// Entries are laid over [`DEFAULT_PRICES`]: they add models or replace a default's price.
    pub prices: BTreeMap<String, ModelPrice>,
}

/// List prices (USD per million tokens, standard tier, no cached-input discount) of common
/// OpenAI models when this was written; a deployment overrides them in `analytics.prices`.
pub const DEFAULT_PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
];

impl AnalyticsSettings {
    /// The price table: the defaults with the configured prices laid over them. A negative or
    /// non-finite price is refused.
    pub fn price_table(&self) -> Result<PriceTable, PriceError> {
        let defaults = DEFAULT_PRICES.iter().map(|(model, input, output)| {
            (
                (*model).to_owned(),
                ModelPrice {
                    input_per_million: *input,
                    output_per_million: *output,
                },
            )
        });
        PriceTable::new(defaults.chain(self.prices.clone()))
    }
}

impl Settings {
    /// Whether the demo tenant is served: as set, else only without a platform model key.
    pub fn demo_enabled(&self) -> bool {
        self.demo.unwrap_or(self.openai_api_key.is_none())
    }

    /// Where tenant-chosen endpoints may point.
    pub fn egress(&self) -> switchboard_core::egress::Egress {
        switchboard_core::egress::Egress::allowing_private(self.allow_private_networks)
    }

    /// The agent's configuration: the platform model only when an endpoint or key is set.
    pub fn brain_config(&self) -> BrainConfig {
        let l = &self.llm;
        let platform =
            (self.openai_api_key.is_some() || self.openai_base_url.is_some()).then(|| {
                PlatformModel {
                    base_url: self
                        .openai_base_url
                        .clone()
                        .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                    api_key: self.openai_api_key.clone(),
                    model: l.model.clone(),
                    fallback_model: l.fallback_model.clone(),
                }
            });
        BrainConfig {
            platform,
            timeout: Duration::from_millis(l.timeout_ms.max(1)),
            max_retries: l.max_retries.min(10),
            backoff_base: Duration::from_millis(l.backoff_ms),
            max_retry_wait: Duration::from_millis(l.max_retry_wait_ms),
            breaker: BreakerConfig {
                failure_threshold: l.breaker_failures.max(1),
                cooldown: Duration::from_millis(l.breaker_cooldown_ms),
            },
            max_tool_steps: l.max_tool_steps.min(10),
            max_tool_errors: l.max_tool_errors,
            context_tokens: l.context_tokens.max(100),
            summary_after: l.summary_after_messages.max(2),
            keep_recent: l.keep_recent_messages.max(0),
            egress: self.egress(),
            ..BrainConfig::default()
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log pipelines.
    pub format: String,
    /// A `tracing` filter; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: None,
            app_database_url: None,
            data_dir: PathBuf::from("./.switchboard"),
            listen: "127.0.0.1:8080".into(),
            public_base_url: None,
            master_key: None,
            admin_token: None,
            openai_api_key: None,
            openai_base_url: None,
            speech_to_text: None,
            pg: PgSettings::default(),
            pipeline: PipelineSettings::default(),
            actions: ActionsSettings::default(),
            log: LogSettings::default(),
            knowledge: KnowledgeConfig::default(),
            llm: LlmSettings::default(),
            analytics: AnalyticsSettings::default(),
            demo: None,
            max_body_bytes: 64 * 1024,
            db_pool_size: 10,
            auth: AuthSettings::default(),
            smtp: None,
            allow_private_networks: false,
            limits: LimitsSettings::default(),
            metrics: MetricsSettings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            port: None,
            os_user: None,
            bin: None,
            durable: true,
            shared_buffers: "256MB".into(),
        }
    }
}

impl Default for PipelineSettings {
    fn default() -> Self {
        let d = PipelineConfig::default();
        Self {
            debounce_ms: d.debounce.as_millis() as u64,
            idle_timeout_secs: d.idle_timeout.as_secs(),
            max_attempts: d.max_attempts,
            turn_timeout_secs: d.turn_timeout.as_secs(),
            shutdown_grace_secs: d.shutdown_grace.as_secs(),
            outbox_max_attempts: d.outbox_max_attempts,
            retrieval_timeout_ms: None,
            retry_backoff_ms: d.retry_backoff.as_millis() as u64,
            responder: d.responder,
            model_turns_per_hour: d.model_turns_per_hour,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            filter: "info,sqlx=warn,ractor=warn".into(),
        }
    }
}

impl PipelineSettings {
    pub fn to_config(&self) -> PipelineConfig {
        let turn_timeout = Duration::from_secs(self.turn_timeout_secs.max(1));
        PipelineConfig {
            debounce: Duration::from_millis(self.debounce_ms),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_attempts: self.max_attempts.max(1),
            turn_timeout,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            outbox_max_attempts: self.outbox_max_attempts.max(1),
            retrieval_timeout: match self.retrieval_timeout_ms {
                Some(ms) => Duration::from_millis(ms.max(1)),
                None => PipelineConfig::retrieval_budget(turn_timeout),
            },
            retry_backoff: Duration::from_millis(self.retry_backoff_ms.max(1)),
            responder: self.responder,
            model_turns_per_hour: self.model_turns_per_hour,
        }
    }
}

impl Settings {
    /// Loads settings from defaults, the TOML file (if present) and the environment.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, Box<figment::Error>> {
        let file = config_file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("SWITCHBOARD_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("switchboard.toml"));
        Figment::new()
            .merge(Toml::file(file))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"])
                    .map(|k| k.as_str().to_ascii_lowercase().into()),
            )
            .merge(Env::prefixed("SWITCHBOARD_").split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen.parse().map_err(|e| {
            format!(
                "SWITCHBOARD_LISTEN `{}` is not an address like 127.0.0.1:8080: {e}",
                self.listen
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn retrieval_budget_defaults_to_a_quarter_of_the_turn_timeout_at_most_ten_seconds() {
        let d = PipelineSettings::default().to_config();
        assert_eq!(d.retrieval_timeout, Duration::from_secs(10));
        assert_eq!(d.retry_backoff, Duration::from_millis(250));
        let short = PipelineSettings {
            turn_timeout_secs: 8,
            ..PipelineSettings::default()
        };
        assert_eq!(short.to_config().retrieval_timeout, Duration::from_secs(2));
        let set = PipelineSettings {
            retrieval_timeout_ms: Some(1500),
            retry_backoff_ms: 20,
            ..PipelineSettings::default()
        };
        assert_eq!(
            set.to_config().retrieval_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(set.to_config().retry_backoff, Duration::from_millis(20));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type.
    fn configured_prices_are_laid_over_the_default_table() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "switchboard.toml",
                "[analytics.prices.\"gpt-4o\"]\ninput_per_million = 2\noutput_per_million = 8.5\n\
                 [analytics.prices.\"Local-Llama\"]\ninput_per_million = 0\noutput_per_million = 0\n",
            )?;
            let table = Settings::load(None)
                .expect("settings load")
                .analytics
                .price_table()
                .expect("valid prices");
            let price = |input, output| ModelPrice {
                input_per_million: input,
                output_per_million: output,
            };
            assert_eq!(table.price_of("gpt-4o"), Some(price(2.0, 8.5)));
            assert_eq!(table.price_of("gpt-4o-mini"), Some(price(0.15, 0.60)));
            assert_eq!(table.price_of("local-llama"), Some(price(0.0, 0.0)));
            assert_eq!(table.price_of("gpt-3.5-turbo"), None);
            Ok(())
        });
        let bad = AnalyticsSettings {
            prices: BTreeMap::from([(
                "x".to_owned(),
                ModelPrice {
                    input_per_million: -1.0,
                    output_per_million: 0.0,
                },
            )]),
        };
        assert!(bad.price_table().is_err());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type.
    fn env_overrides_file_and_secrets_are_redacted() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "switchboard.toml",
                "listen = \"127.0.0.1:9000\"\n[pipeline]\ndebounce_ms = 10\n",
            )?;
            jail.set_env("SWITCHBOARD_PIPELINE__DEBOUNCE_MS", "25");
            jail.set_env("DATABASE_URL", "postgres://u:hunter2@db/x");
            jail.set_env("SWITCHBOARD_ADMIN_TOKEN", "tok-secret");
            let s = Settings::load(None).expect("settings load");
            assert_eq!(s.listen, "127.0.0.1:9000");
            assert_eq!(s.pipeline.debounce_ms, 25);
            assert_eq!(
                s.database_url.as_ref().unwrap().expose_secret(),
                "postgres://u:hunter2@db/x"
            );
            let debug = format!("{s:?}");
            assert!(
                !debug.contains("hunter2") && !debug.contains("tok-secret"),
                "{debug}"
            );
            Ok(())
        });
    }
}
