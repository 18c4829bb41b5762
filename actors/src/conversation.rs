//! The conversation agent: the single owner of one conversation's turns.
//!
//! It debounces wake-ups (a burst of messages becomes one turn), runs one turn at a time in a
//! task of its own (so its mailbox stays responsive), cancels a turn that is still thinking when
//! a new message arrives and redoes it with both, and tells its supervisor when it has gone
//! quiet (no turn running or scheduled), which is what lets the supervisor stop it once it has
//! been quiet for the idle timeout. A panicking turn kills the actor on purpose: the supervisor
//! restarts it, and the restarted actor redoes the turn from the still-pending events.
//!
//! An idle agent owns no timer and no task: a live conversation that is waiting for its
//! customer costs only the actor itself and an entry in its supervisor's maps, which is what
//! lets a process keep a hundred thousand of them (`switchboard bench --suite memory`).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use switchboard_core::retry::Backoff;
use switchboard_core::{ConversationId, TenantId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::live::LiveActor;
use crate::tenant::TenantMsg;
use crate::turn::{self, TurnError, TurnOutcome};
use crate::Services;

/// How long a turn asked to stop at shutdown may take to give its attempt back.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Longest a customer who keeps writing waits for a reply: newer messages cancel the turn in
/// flight (to answer everything at once) only within this time from the first cancellation.
/// Past it the turn finishes and the newer messages get the next turn, so a customer writing
/// faster than a turn takes is still answered.
const MAX_COALESCING: Duration = Duration::from_secs(3);

/// Messages of a conversation agent.
pub enum ConversationMsg {
    /// Something new was stored for this conversation.
    Wake,
    /// The debounce window of wake-up generation `generation` has passed.
    Debounced { generation: u64 },
    /// Turn number `seq` finished.
    TurnDone { seq: u64, result: TurnResult },
}

/// How a turn task ended.
pub enum TurnResult {
    Finished(Result<TurnOutcome, TurnError>),
    Panicked(Box<dyn Any + Send>),
}

/// What a conversation agent is started with; kept by the supervisor for restarts.
#[derive(Clone)]
pub struct ConversationArgs {
    pub services: Arc<Services>,
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub supervisor: ActorRef<TenantMsg>,
    /// Delay before the first turn: the debounce window when spawned for a new message (so a
    /// first burst is coalesced too), zero when restarted or resumed.
    pub first_turn_after: Duration,
}

pub struct ConversationAgent;

pub struct ConversationState {
    args: ConversationArgs,
    /// Generation of the latest debounce timer; older timers are ignored.
    generation: u64,
    /// Wake-ups handled, reported to the supervisor when asking to stop, so it can refuse if it
    /// routed more wake-ups than we saw.
    wakes: u64,
    /// Number of the last turn started.
    turn_seq: u64,
    /// The turn in flight, if any. Its task reports back with `TurnDone`.
    running: Option<RunningTurn>,
    /// A debounce window closed while a turn was running: run again when it finishes.
    rerun: bool,
    /// Consecutive failed turns, for the retry backoff.
    failures: u32,
    /// When a turn was first cancelled for a newer message since the last finished turn.
    coalescing_since: Option<Instant>,
    /// A timer for the current generation (a debounce window, a retry) has not fired yet: a
    /// turn is still to come, so the agent is not quiet.
    turn_due: bool,
    /// Counts this agent in `switchboard_live_actors` until the state is dropped.
    _live: LiveActor,
}

struct RunningTurn {
    seq: u64,
    task: JoinHandle<()>,
    /// Set to true to ask the turn to stop before it commits.
    cancel: watch::Sender<bool>,
}

impl Actor for ConversationAgent {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ConversationArgs,
    ) -> Result<ConversationState, ActorProcessingErr> {
        // Whatever is pending in the database (after a restart, a crash, or a first message)
        // is picked up by an immediate first turn.
        if args.first_turn_after.is_zero() {
            myself.send_message(ConversationMsg::Debounced { generation: 0 })?;
        } else {
            myself.send_after(args.first_turn_after, || ConversationMsg::Debounced {
                generation: 0,
            });
        }
        Ok(ConversationState {
            args,
            generation: 0,
            wakes: 0,
            turn_seq: 0,
            running: None,
            rerun: false,
            failures: 0,
            coalescing_since: None,
            turn_due: true,
            _live: LiveActor::conversation(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: ConversationMsg,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConversationMsg::Wake => state.on_wake(&myself),
            ConversationMsg::Debounced { generation } => state.on_debounced(&myself, generation),
            ConversationMsg::TurnDone { seq, result } => {
                state.on_turn_done(&myself, seq, result)?
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(mut running) = state.running.take() {
            // Let an in-flight turn finish within the grace period. Past it, ask the turn to
            // stop (it then gives its attempt back: a shutdown is not the turn's failure), and
            // as a last resort abort it. Either way it writes nothing and its events stay
            // pending for the next start.
            let grace = state.args.services.config.shutdown_grace;
            if tokio::time::timeout(grace, &mut running.task)
                .await
                .is_err()
            {
                let _ = running.cancel.send(true);
                if tokio::time::timeout(CANCEL_GRACE, &mut running.task)
                    .await
                    .is_err()
                {
                    running.task.abort();
                }
                warn!(conversation_id = %state.args.conversation, "abandoned an in-flight turn at shutdown");
            }
        }
        Ok(())
    }
}

impl ConversationState {
    fn on_wake(&mut self, myself: &ActorRef<ConversationMsg>) {
        self.wakes += 1;
        if let Some(running) = &self.running {
            // The customer said more while we were thinking: drop that answer and redo the turn
            // with everything once the burst settles. The turn stops itself (it must give its
            // attempt back); a turn already committing finishes, and the redo answers the rest.
            // Not for ever, though: past `MAX_COALESCING` the turn answers what it has.
            let since = *self.coalescing_since.get_or_insert_with(Instant::now);
            if since.elapsed() < MAX_COALESCING {
                let _ = running.cancel.send(true);
                debug!(conversation_id = %self.args.conversation, "asked a running turn to stop for a newer message");
            }
        }
        self.generation += 1;
        let generation = self.generation;
        self.turn_due = true;
        myself.send_after(self.args.services.config.debounce, move || {
            ConversationMsg::Debounced { generation }
        });
    }

    fn on_debounced(&mut self, myself: &ActorRef<ConversationMsg>, generation: u64) {
        if generation != self.generation {
            return;
        }
        self.turn_due = false;
        if self.running.is_some() {
            self.rerun = true;
            return;
        }
        self.start_turn(myself);
    }

    fn start_turn(&mut self, myself: &ActorRef<ConversationMsg>) {
        self.turn_seq += 1;
        let seq = self.turn_seq;
        let services = self.args.services.clone();
        let (tenant, conversation) = (self.args.tenant, self.args.conversation);
        let me = myself.clone();
        let (cancel, cancelled) = watch::channel(false);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let outcome = AssertUnwindSafe(turn::run(&services, tenant, conversation, cancelled))
                .catch_unwind()
                .await;
            let label = match &outcome {
                Ok(Ok(TurnOutcome::Answered { .. })) => "answered",
                Ok(Ok(TurnOutcome::NoWork)) => "no_work",
                Ok(Ok(TurnOutcome::Parked { .. })) => "parked",
                Ok(Ok(TurnOutcome::Superseded)) => "superseded",
                Ok(Ok(TurnOutcome::Cancelled)) => "cancelled",
                Ok(Ok(TurnOutcome::Silent { .. })) => "silent",
                Ok(Err(_)) => "failed",
                Err(_) => "panicked",
            };
            metrics::counter!("switchboard_turns_total", "outcome" => label).increment(1);
            if label == "answered" {
                metrics::histogram!("switchboard_turn_seconds").record(started.elapsed());
            }
            let result = match outcome {
                Ok(r) => TurnResult::Finished(r),
                Err(panic) => TurnResult::Panicked(panic),
            };
            // The actor may be gone (shutdown); the events stay pending then.
            let _ = me.send_message(ConversationMsg::TurnDone { seq, result });
        });
        self.running = Some(RunningTurn { seq, task, cancel });
    }

    fn on_turn_done(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        seq: u64,
        result: TurnResult,
    ) -> Result<(), ActorProcessingErr> {
        match &self.running {
            Some(r) if r.seq == seq => self.running = None,
            // A report from a turn abandoned earlier; nothing to do.
            _ => return Ok(()),
        }
        match result {
            TurnResult::Panicked(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                // Die on purpose: the supervisor restarts us and the turn is redone.
                return Err(format!("turn panicked: {what}").into());
            }
            TurnResult::Finished(Ok(outcome)) => {
                self.failures = 0;
                if outcome != TurnOutcome::Cancelled {
                    self.coalescing_since = None;
                }
                debug!(conversation_id = %self.args.conversation, ?outcome, "turn finished");
                if self.rerun {
                    self.rerun = false;
                    self.start_turn(myself);
                } else if !self.turn_due {
                    self.report_quiet(myself);
                }
            }
            TurnResult::Finished(Err(error)) => {
                self.failures += 1;
                let backoff = Backoff::new(
                    self.args.services.config.retry_backoff,
                    Duration::from_secs(10),
                )
                .delay(self.failures.min(6));
                warn!(conversation_id = %self.args.conversation, %error, ?backoff, "turn failed; will retry");
                self.rerun = false;
                self.generation += 1;
                let generation = self.generation;
                self.turn_due = true;
                myself.send_after(backoff, move || ConversationMsg::Debounced { generation });
            }
        }
        Ok(())
    }

    /// Tells the supervisor that nothing is running or scheduled, with the wake-ups seen so
    /// far: it stops us once we have stayed quiet for the idle timeout, and only if no wake-up
    /// has been routed to us since (see [`crate::tenant`]).
    fn report_quiet(&self, myself: &ActorRef<ConversationMsg>) {
        let _ = self.args.supervisor.send_message(TenantMsg::Quiet {
            conversation: self.args.conversation,
            agent: myself.get_id(),
            wakes_seen: self.wakes,
        });
    }
}
