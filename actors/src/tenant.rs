//! The tenant supervisor: owns one tenant's conversation agents.
//!
//! It spawns an agent on the first wake-up of a conversation, restarts agents that fail (within
//! a restart budget), and stops idle agents only when they have seen every wake-up routed to
//! them — so a message can never be lost in the mailbox of an agent that is going away.
//!
//! Idleness is kept here, not in the agents: an agent reports when it has gone quiet (its turn
//! finished and nothing is scheduled), a wake-up routed to it makes it busy again, and one
//! sweep per tenant, every quarter of the idle timeout, stops the agents that have been quiet
//! for the whole timeout. An idle agent thus costs no timer and no task of its own, and a
//! tenant with a hundred thousand live conversations does not wake a hundred thousand tickers.
//!
//! Once [`RELEASE_AFTER`] agents have been stopped, the next sweep hands the memory they freed
//! back to the operating system ([`release_freed_memory`]): glibc's allocator otherwise keeps
//! it in its arenas for ever, so a process that once held a crowd of conversations would stay
//! that large after they all went quiet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use switchboard_core::{ConversationId, TenantId};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::budget::RestartBudget;
use crate::conversation::{ConversationAgent, ConversationArgs, ConversationMsg};
use crate::live::LiveActor;
use crate::Services;

/// Restarts allowed per conversation within [`RESTART_WINDOW`] before it is left down.
const RESTART_BUDGET: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// When the budget is exhausted, try once more after this long.
const COOL_DOWN: Duration = Duration::from_secs(30);
/// Agents stopped for idleness (some 7 KB each) after which freed memory is handed back to the
/// operating system.
const RELEASE_AFTER: usize = 1000;

/// Messages of a tenant supervisor.
pub enum TenantMsg {
    /// Wake the agent of `conversation`, spawning it if needed.
    Route { conversation: ConversationId },
    /// The agent `agent` of `conversation` has gone quiet after seeing `wakes_seen` wake-ups:
    /// it is idle from now on if that is every wake-up routed to it.
    Quiet {
        conversation: ConversationId,
        agent: ActorId,
        wakes_seen: u64,
    },
    /// Stop the agents that have been idle for the idle timeout (sent by our own ticker).
    Sweep,
    /// Live conversation agents, and how many of them are idle (for readiness, tests and
    /// `bench --suite memory`).
    CountAgents(RpcReplyPort<AgentCounts>),
}

/// A tenant's conversation agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentCounts {
    /// Agents alive.
    pub live: usize,
    /// Of those, the agents with no turn running or scheduled, waiting for their customer.
    pub idle: usize,
}

#[derive(Clone)]
pub struct TenantArgs {
    pub services: Arc<Services>,
    pub tenant: TenantId,
}

pub struct TenantSupervisor;

pub struct TenantState {
    args: TenantArgs,
    agents: HashMap<ConversationId, Agent>,
    by_actor: HashMap<ActorId, ConversationId>,
    restarts: HashMap<ConversationId, RestartBudget>,
    /// Sends us [`TenantMsg::Sweep`]; aborted when we stop.
    sweeper: JoinHandle<()>,
    /// Agents stopped for idleness since memory was last handed back (see [`RELEASE_AFTER`]).
    passivated: usize,
    /// Counts this supervisor in `switchboard_live_actors` until the state is dropped.
    _live: LiveActor,
}

struct Agent {
    actor: ActorRef<ConversationMsg>,
    /// Wake-ups sent to this agent instance.
    routed: u64,
    /// Since when the agent has been quiet having seen every routed wake-up; `None` while it
    /// has work (a wake-up was routed after its last report).
    idle_since: Option<Instant>,
}

impl Actor for TenantSupervisor {
    type Msg = TenantMsg;
    type State = TenantState;
    type Arguments = TenantArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: TenantArgs,
    ) -> Result<TenantState, ActorProcessingErr> {
        // An agent is stopped between one and one and a quarter idle timeouts after it went
        // quiet.
        let tick = (args.services.config.idle_timeout / 4).max(Duration::from_millis(20));
        let sweeper = myself.send_interval(tick, || TenantMsg::Sweep);
        Ok(TenantState {
            args,
            agents: HashMap::new(),
            by_actor: HashMap::new(),
            restarts: HashMap::new(),
            sweeper,
            passivated: 0,
            _live: LiveActor::tenant(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: TenantMsg,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TenantMsg::Route { conversation } => state.route(&myself, conversation).await?,
            TenantMsg::Quiet {
                conversation,
                agent,
                wakes_seen,
            } => state.quiet(conversation, agent, wakes_seen),
            TenantMsg::Sweep => state.sweep(),
            TenantMsg::CountAgents(reply) => {
                let _ = reply.send(state.counts());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        state.sweeper.abort();
        // Stop conversation agents gracefully (ractor would otherwise kill them), so each can
        // let its in-flight turn finish within the grace period.
        let grace = state.args.services.config.shutdown_grace + Duration::from_secs(1);
        myself
            .stop_children_and_wait(Some("shutdown".into()), Some(grace))
            .await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        if matches!(myself.get_status(), ractor::ActorStatus::Stopping) {
            return Ok(()); // Shutting down: children stopping is expected.
        }
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(conversation) = state.by_actor.remove(&cell.get_id()) {
                    if state
                        .agents
                        .get(&conversation)
                        .is_some_and(|a| a.actor.get_id() == cell.get_id())
                    {
                        // Stopped without our asking (should not happen): treat like a failure
                        // so pending work is picked up again.
                        state.agents.remove(&conversation);
                        warn!(conversation_id = %conversation, ?reason, "conversation agent stopped unexpectedly");
                        state.restart(&myself, conversation).await?;
                    }
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(conversation) = state.by_actor.remove(&cell.get_id()) {
                    error!(tenant_id = %state.args.tenant, conversation_id = %conversation, error = %err, "conversation agent failed");
                    state.agents.remove(&conversation);
                    state.restart(&myself, conversation).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl TenantState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<TenantMsg>,
        conversation: ConversationId,
        first_turn_after: Duration,
    ) -> Result<(), ActorProcessingErr> {
        let args = ConversationArgs {
            services: self.args.services.clone(),
            tenant: self.args.tenant,
            conversation,
            supervisor: myself.clone(),
            first_turn_after,
        };
        let (actor, _) =
            Actor::spawn_linked(None, ConversationAgent, args, myself.get_cell()).await?;
        self.by_actor.insert(actor.get_id(), conversation);
        self.agents.insert(
            conversation,
            Agent {
                actor,
                routed: 0,
                idle_since: None,
            },
        );
        Ok(())
    }

    async fn route(
        &mut self,
        myself: &ActorRef<TenantMsg>,
        conversation: ConversationId,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(agent) = self.agents.get_mut(&conversation) {
            if agent.actor.send_message(ConversationMsg::Wake).is_ok() {
                agent.routed += 1;
                agent.idle_since = None;
                return Ok(());
            }
            // The agent is dying; its supervision event will arrive later and find it gone.
            let dead = self.agents.remove(&conversation);
            if let Some(dead) = dead {
                self.by_actor.remove(&dead.actor.get_id());
            }
        }
        // A fresh agent reads everything pending when its first debounce window closes; no
        // wake-up needed.
        let debounce = self.args.services.config.debounce;
        self.spawn(myself, conversation, debounce).await
    }

    fn quiet(&mut self, conversation: ConversationId, agent: ActorId, wakes_seen: u64) {
        // A report from an earlier instance of the agent, or one overtaken by a wake-up the
        // agent has not seen yet (it reports again after that wake-up's turn), says nothing.
        if let Some(a) = self.agents.get_mut(&conversation) {
            if a.actor.get_id() == agent && a.routed == wakes_seen {
                a.idle_since = Some(Instant::now());
            }
        }
    }

    /// Stops every agent idle for the idle timeout. A wake-up routed to an agent clears its
    /// idle mark, so an agent stopped here has seen every wake-up routed to it: nothing can be
    /// waiting in its mailbox.
    fn sweep(&mut self) {
        // Those stopped by earlier sweeps have finished stopping by now, a tick later.
        if self.passivated >= RELEASE_AFTER {
            self.passivated = 0;
            tokio::task::spawn_blocking(release_freed_memory);
        }
        let timeout = self.args.services.config.idle_timeout;
        let now = Instant::now();
        let by_actor = &mut self.by_actor;
        let before = self.agents.len();
        self.agents.retain(|_, agent| {
            let expired = agent
                .idle_since
                .is_some_and(|since| now.saturating_duration_since(since) >= timeout);
            if expired {
                by_actor.remove(&agent.actor.get_id());
                agent.actor.stop(Some("idle".into()));
            }
            !expired
        });
        if self.agents.len() < before {
            self.passivated += before - self.agents.len();
            // Give back what a crowd of conversations needed once they have gone.
            shrink(&mut self.agents);
            shrink(&mut self.by_actor);
        }
    }

    fn counts(&self) -> AgentCounts {
        AgentCounts {
            live: self.agents.len(),
            idle: self
                .agents
                .values()
                .filter(|a| a.idle_since.is_some())
                .count(),
        }
    }

    async fn restart(
        &mut self,
        myself: &ActorRef<TenantMsg>,
        conversation: ConversationId,
    ) -> Result<(), ActorProcessingErr> {
        let budget = self
            .restarts
            .entry(conversation)
            .or_insert_with(|| RestartBudget::new(RESTART_BUDGET, RESTART_WINDOW));
        if !budget.try_spend() {
            warn!(conversation_id = %conversation, "restart budget exhausted; retrying after a cool-down");
            myself.send_after(COOL_DOWN, move || TenantMsg::Route { conversation });
            return Ok(());
        }
        info!(conversation_id = %conversation, "restarting conversation agent");
        metrics::counter!("switchboard_actor_restarts_total", "actor" => "conversation")
            .increment(1);
        self.spawn(myself, conversation, Duration::ZERO).await
    }
}

/// Halves a map's capacity when it is less than a quarter full.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// Hands memory the allocator holds but no longer uses back to the operating system. glibc's
/// `malloc` keeps freed small blocks in its arenas (returning only what sits at the top of a
/// heap), so after many agents stop the process stays as large as at its peak; `malloc_trim`
/// releases every free page (tens of milliseconds for a heap of a gigabyte, hence a blocking
/// thread). Other allocators give memory back by themselves, so elsewhere this does nothing.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only reorganises the allocator's free lists; it takes the
    // allocator's own locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
