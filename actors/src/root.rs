//! The root supervisor: routes wake-ups to tenant supervisors, restarts them when they fail, and
//! resumes unfinished work at start-up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use switchboard_core::store::platform;
use switchboard_core::{ConversationId, TenantId};
use tracing::{error, info, warn};

use crate::budget::RestartBudget;
use crate::tenant::{AgentCounts, TenantArgs, TenantMsg, TenantSupervisor};
use crate::Services;

const RESTART_BUDGET: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Messages of the root supervisor.
pub enum RootMsg {
    /// Something new was stored for `conversation` of `tenant`.
    Route {
        tenant: TenantId,
        conversation: ConversationId,
    },
    /// Read every conversation with pending events and wake it (start-up, after restarts).
    ResumePending,
    /// Liveness probe: answers the number of tenant supervisors.
    Ping(RpcReplyPort<usize>),
    /// Live and idle conversation agents of one tenant (zeros if it has no supervisor).
    AgentCounts(TenantId, RpcReplyPort<AgentCounts>),
}

pub struct RootSupervisor;

pub struct RootState {
    services: Arc<Services>,
    tenants: HashMap<TenantId, ActorRef<TenantMsg>>,
    by_actor: HashMap<ActorId, TenantId>,
    restarts: RestartBudget,
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = Arc<Services>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        services: Arc<Services>,
    ) -> Result<RootState, ActorProcessingErr> {
        myself.send_message(RootMsg::ResumePending)?;
        Ok(RootState {
            services,
            tenants: HashMap::new(),
            by_actor: HashMap::new(),
            restarts: RestartBudget::new(RESTART_BUDGET, RESTART_WINDOW),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Route {
                tenant,
                conversation,
            } => state.route(&myself, tenant, conversation).await?,
            RootMsg::ResumePending => state.resume_pending(&myself).await?,
            RootMsg::Ping(reply) => {
                let _ = reply.send(state.tenants.len());
            }
            RootMsg::AgentCounts(tenant, reply) => state.count_agents(tenant, reply),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        // Without this, ractor would kill the children outright once we are gone, and their
        // in-flight turns would get no chance to finish.
        let grace = state.services.config.shutdown_grace + Duration::from_secs(2);
        myself
            .stop_children_and_wait(Some("shutdown".into()), Some(grace))
            .await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(tenant) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        if matches!(myself.get_status(), ractor::ActorStatus::Stopping) {
            return Ok(()); // Shutting down: children stopping is expected.
        }
        state.tenants.remove(&tenant);
        error!(tenant_id = %tenant, %why, "tenant supervisor went down");
        if !state.restarts.try_spend() {
            // Too many failures: fail ourselves so the failure is loud (the runtime's readiness
            // check turns red) instead of looping.
            return Err("tenant supervisors keep failing; restart budget exhausted".into());
        }
        metrics::counter!("switchboard_actor_restarts_total", "actor" => "tenant").increment(1);
        // Its conversations died with it; respawn those with pending work.
        myself.send_message(RootMsg::ResumePending)?;
        Ok(())
    }
}

impl RootState {
    /// Asks `tenant`'s supervisor for its agent counts and answers `reply`, from a task so the
    /// root never waits on a child. A tenant without a supervisor has no agents.
    fn count_agents(&self, tenant: TenantId, reply: RpcReplyPort<AgentCounts>) {
        let answer = move |counts| {
            let _ = reply.send(counts);
        };
        let Some(sup) = self.tenants.get(&tenant).cloned() else {
            answer(AgentCounts::default());
            return;
        };
        tokio::spawn(async move {
            let counts = sup
                .call(TenantMsg::CountAgents, Some(Duration::from_secs(5)))
                .await;
            answer(match counts {
                Ok(ractor::rpc::CallResult::Success(counts)) => counts,
                _ => AgentCounts::default(),
            });
        });
    }

    async fn tenant(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: TenantId,
    ) -> Result<ActorRef<TenantMsg>, ActorProcessingErr> {
        if let Some(sup) = self.tenants.get(&tenant) {
            return Ok(sup.clone());
        }
        let args = TenantArgs {
            services: self.services.clone(),
            tenant,
        };
        let (sup, _) = Actor::spawn_linked(None, TenantSupervisor, args, myself.get_cell()).await?;
        self.by_actor.insert(sup.get_id(), tenant);
        self.tenants.insert(tenant, sup.clone());
        Ok(sup)
    }

    async fn route(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<(), ActorProcessingErr> {
        let sup = self.tenant(myself, tenant).await?;
        if sup.send_message(TenantMsg::Route { conversation }).is_err() {
            warn!(tenant_id = %tenant, "tenant supervisor is gone; its restart resumes pending work");
        }
        Ok(())
    }

    async fn resume_pending(
        &mut self,
        myself: &ActorRef<RootMsg>,
    ) -> Result<(), ActorProcessingErr> {
        match platform::pending_conversations(self.services.db.pool()).await {
            Ok(list) => {
                if !list.is_empty() {
                    info!(
                        conversations = list.len(),
                        "resuming unfinished conversations"
                    );
                }
                for (tenant, conversation) in list {
                    self.route(myself, tenant, conversation).await?;
                }
            }
            Err(e) => {
                warn!(error = %e, "could not list pending conversations; retrying in 2 s");
                myself.send_after(Duration::from_secs(2), || RootMsg::ResumePending);
            }
        }
        Ok(())
    }
}
