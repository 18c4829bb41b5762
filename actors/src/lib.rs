//! The actor tree that answers conversations, and the outbound dispatcher.
//!
//! ```text
//! RootSupervisor ─┬─ TenantSupervisor(tenant A) ─┬─ ConversationAgent(conversation 1)
//!                 │                               └─ ConversationAgent(conversation 2)
//!                 └─ TenantSupervisor(tenant B) ── …
//! Dispatcher (task): outbox ─► channels::Outbound
//! ```
//!
//! Actors hold no customer data that is not also in PostgreSQL: a wake-up only says "this
//! conversation has something new", and every turn starts by reading the conversation's pending
//! events. That is what makes crashes harmless — a restarted actor, or a restarted process, reads
//! the same pending events and answers them; the commit of a turn re-checks that its events are
//! still pending, so nothing is ever answered twice.

pub mod actions;
pub mod booking;
pub mod brain;
pub mod budget;
pub mod context;
pub mod conversation;
pub mod dispatcher;
pub mod effects;
pub mod handoff;
pub mod inbox;
pub mod leads;
mod live;
pub mod parked;
pub mod responder;
pub mod root;
pub mod tenant;
pub mod tools;
pub mod turn;

use std::sync::Arc;
use std::time::Duration;

use switchboard_channels::Outbound;
use switchboard_core::{ConversationId, Db, TenantId};
use tokio::sync::Notify;

pub use root::{RootMsg, RootSupervisor};
pub use tenant::AgentCounts;

/// Tunables of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Quiet time after the last message of a burst before the turn starts.
    pub debounce: Duration,
    /// A conversation actor with no activity for this long stops; the next message respawns it.
    pub idle_timeout: Duration,
    /// Failed attempts after which an event is parked instead of retried.
    pub max_attempts: i32,
    /// Upper bound on one turn (retrieval + responder + commit).
    pub turn_timeout: Duration,
    /// How long shutdown waits for in-flight turns before abandoning them (they stay pending).
    pub shutdown_grace: Duration,
    /// Delivery attempts after which an outbox row is marked failed.
    pub outbox_max_attempts: i32,
    /// Upper bound on reading a turn's knowledge (embedding the query and searching). Past it,
    /// as on any retrieval error, the turn answers without knowledge instead of failing.
    pub retrieval_timeout: Duration,
    /// Delay before retrying a failed turn, doubled per consecutive failure (from twice this
    /// value, at most 10 s).
    pub retry_backoff: Duration,
    /// Who composes replies. [`ResponderMode::Echo`] exists for measuring the durable core
    /// alone (`switchboard bench --responder echo`).
    pub responder: ResponderMode,
    /// Model turns one conversation may take per hour (as many at once, then refilled evenly);
    /// past them the offline responder answers until the budget refills. 0: no budget.
    pub model_turns_per_hour: u32,
}

/// Who composes the agent's replies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponderMode {
    /// The tenant's configuration decides: the model, or the offline responder, with the
    /// knowledge base, handoff rules, leads and bookings.
    #[default]
    Agent,
    /// Every turn answers with the customer's own text: no retrieval, no rules, no model. The
    /// turn is still read, counted, committed and delivered exactly like any other, so this
    /// measures the cost of the durable pipeline itself.
    Echo,
}

impl PipelineConfig {
    /// The default retrieval budget for a turn timeout: a quarter of it, at most 10 s.
    pub fn retrieval_budget(turn_timeout: Duration) -> Duration {
        (turn_timeout / 4).min(Duration::from_secs(10))
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(400),
            idle_timeout: Duration::from_secs(300),
            max_attempts: 3,
            turn_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            outbox_max_attempts: 8,
            retrieval_timeout: Self::retrieval_budget(Duration::from_secs(60)),
            retry_backoff: Duration::from_millis(250),
            responder: ResponderMode::Agent,
            model_turns_per_hour: 60,
        }
    }
}

/// A point in a turn where tests can inject a fault (a panic, a delay). Production passes none.
#[derive(Debug)]
pub enum FaultPoint<'a> {
    /// The reply has been computed and is about to be committed.
    BeforeCommit {
        tenant: TenantId,
        conversation: ConversationId,
        customer_text: &'a str,
    },
}

/// Hook called at each [`FaultPoint`]. It may panic (a crashing turn) or return a delay that
/// the turn then waits out asynchronously (a slow model, a hanging dependency).
pub type FaultHook = Arc<dyn Fn(&FaultPoint<'_>) -> Option<Duration> + Send + Sync>;

/// What every actor and the dispatcher share.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub outbound: Outbound,
    pub config: PipelineConfig,
    /// Wakes the dispatcher when a turn has committed outbox rows.
    pub outbox_kick: Arc<Notify>,
    /// Wakes the effects worker when effects were queued (notifications, invites, webhooks).
    pub effects_kick: Arc<Notify>,
    /// The effects worker's lease and backoff.
    pub effects: effects::EffectsConfig,
    pub faults: Option<FaultHook>,
    /// Embedders of every tenant's knowledge (queries are embedded with them).
    pub embedders: Arc<switchboard_knowledge::Embedders>,
    /// Every tenant's model client, circuit breaker and tools.
    pub brains: Arc<brain::Brains>,
    /// Model prices (USD per million tokens), for the cost estimates of the analytics API.
    /// Nothing in the pipeline reads them; they travel here because this is what every handler
    /// already holds.
    pub prices: Arc<switchboard_core::store::analytics::PriceTable>,
    /// The live inbox's hints to the tenants' consoles, published after each commit that
    /// changes a conversation or an escalation (see [`inbox`]).
    pub inbox: inbox::InboxHub,
    /// Inbound messages and ordinary bot replies of concurrent conversations, committed
    /// together (one statement and one WAL flush for many).
    pub group: switchboard_core::store::group::GroupCommits,
    /// Every conversation's model turns (see [`PipelineConfig::model_turns_per_hour`]).
    pub turn_budget: Arc<switchboard_channels::limits::Buckets<ConversationId>>,
    /// The counters labelled by tenant (inbound, outbound, webhook rejections), with the
    /// configured limit on how many tenants get a label of their own.
    pub metrics: Arc<switchboard_core::metrics::TenantMetrics>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
