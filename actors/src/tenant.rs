//! The tenant supervisor: owns one tenant's conversation agents.
//!
//! It spawns an agent on the first wake-up of a conversation, restarts agents that fail (within
//! a restart budget), and stops idle agents only when they have seen every wake-up routed to
//! them — so a message can never be lost in the mailbox of an agent that is going away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use switchboard_core::{ConversationId, TenantId};
use tracing::{error, info, warn};

use crate::budget::RestartBudget;
use crate::conversation::{ConversationAgent, ConversationArgs, ConversationMsg};
use crate::Services;

/// Restarts allowed per conversation within [`RESTART_WINDOW`] before it is left down.
const RESTART_BUDGET: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// When the budget is exhausted, try once more after this long.
const COOL_DOWN: Duration = Duration::from_secs(30);

/// Messages of a tenant supervisor.
pub enum TenantMsg {
    /// Wake the agent of `conversation`, spawning it if needed.
    Route { conversation: ConversationId },
    /// An agent has been idle; stop it if it has seen `wakes_seen` = every routed wake-up.
    IdleStop {
        conversation: ConversationId,
        wakes_seen: u64,
    },
    /// Number of live conversation agents (for readiness and tests).
    CountAgents(ractor::RpcReplyPort<usize>),
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
}

struct Agent {
    actor: ActorRef<ConversationMsg>,
    /// Wake-ups sent to this agent instance.
    routed: u64,
}

impl Actor for TenantSupervisor {
    type Msg = TenantMsg;
    type State = TenantState;
    type Arguments = TenantArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: TenantArgs,
    ) -> Result<TenantState, ActorProcessingErr> {
        Ok(TenantState {
            args,
            agents: HashMap::new(),
            by_actor: HashMap::new(),
            restarts: HashMap::new(),
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
            TenantMsg::IdleStop {
                conversation,
                wakes_seen,
            } => state.idle_stop(conversation, wakes_seen),
            TenantMsg::CountAgents(reply) => {
                let _ = reply.send(state.agents.len());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
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
                    metrics::gauge!("switchboard_conversation_agents").decrement(1.0);
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
        self.agents.insert(conversation, Agent { actor, routed: 0 });
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

    fn idle_stop(&mut self, conversation: ConversationId, wakes_seen: u64) {
        let Some(agent) = self.agents.get(&conversation) else {
            return;
        };
        if agent.routed != wakes_seen {
            return;
        }
        let agent = self.agents.remove(&conversation).expect("checked above");
        self.by_actor.remove(&agent.actor.get_id());
        agent.actor.stop(Some("idle".into()));
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
