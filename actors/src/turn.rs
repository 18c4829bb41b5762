//! One turn of a conversation, from pending events to a committed reply, in four steps:
//!
//! 1. **Gather** ([`gather`]), one round trip (the SQL function behind [`turns::gather_turn`]):
//!    the pending events with this turn's attempt counted, the conversation and who owns it,
//!    the knowledge generation, the action settings, who answers (offline, or the model, whose
//!    prompt and budget are then read) and the contact's lead; for email, whose senders the
//!    channel does not authenticate, a second short read says whether any of the events is
//!    from an unverified sender ([`turns::sender_trust`]). Events that used up their
//!    attempts take the long way, a read transaction that parks them, telling the customer
//!    and bringing the team in ([`crate::parked`]). The read commits before any work starts,
//!    so a crash or panic later in the turn still counts as an attempt.
//! 2. **Decide** ([`decide::decide`]), a pure function of what was gathered: silent under a
//!    human, hand off now, echo, or answer (with the offline booking dialogue first when it may
//!    have something to say).
//! 3. **Think**, holding no transaction: observe the lead, read the knowledge within its budget
//!    (a failed or slow search gives no passages, never a failed turn), and compose the reply —
//!    the booking dialogue, the offline responder, or the model's tool loop
//!    ([`crate::brain::think`]), which a newer message cancels at once.
//! 4. **Commit**, one transaction: an ordinary reply in one round trip, shared with other
//!    conversations' replies that are ready at the same moment (a group commit:
//!    [`switchboard_core::store::group::GroupCommits::bot_reply`]); a reply that opens an
//!    escalation, or that the commit-time rules must weigh ([`decide::before_commit`]), the
//!    long way. Either way the conversation is
//!    locked first and a human who took it over while the bot was thinking wins.
//!
//! A turn holds no lock while it thinks. It can be cancelled until its final commit starts; a
//! cancelled turn gives its attempt back and leaves its events pending, exactly as if it never
//! ran.

pub mod decide;

use switchboard_core::model::SenderTrust;
use switchboard_core::store::actions::{self, Action, ActionSettings};
use switchboard_core::store::handoff::{self, HandoffState, Ownership};
use switchboard_core::store::leads::{self as lead_store, Lead};
use switchboard_core::store::turns::{
    self, BotReply, BotReplyRow, ConversationInfo, TurnCommit, TurnRead, TurnReadRow,
};
use switchboard_core::store::usage::{self, Purpose, UsageRecord};
use switchboard_core::{ConversationId, DbError, EventId, TenantId, TurnId};
use switchboard_prompts::detect_language;
use switchboard_prompts::handoff::{holding_message, team_will_follow_up};
use tokio::sync::watch;
use tracing::{info, instrument, warn};

use crate::actions::TurnActions;
use crate::brain::{self, Mind, Think, UsageLog};
use crate::context::TurnContext;
use crate::handoff::{LeadInfo, Opening, Plan, Trigger};
use crate::parked::{self, ParkReport, Parking};
use crate::responder::{self, Reply, Responder};
use crate::{booking, leads, FaultPoint, ResponderMode, Services};
use decide::{AtCommit, Decision, Facts};

/// How a turn ended without error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TurnOutcome {
    /// Nothing was pending.
    NoWork,
    /// A reply was committed for `events` events.
    Answered { turn: TurnId, events: usize },
    /// Every pending event had used up its attempts and was parked.
    Parked { events: usize },
    /// Another worker answered these events first; nothing was written.
    Superseded,
    /// A newer message arrived while the turn was thinking; nothing was written and the attempt
    /// was given back, so the redone turn answers everything together.
    Cancelled,
    /// A human owns the conversation: the events were taken without a bot reply.
    Silent { events: usize },
}

/// Why a turn failed; the events stay pending and are retried.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the turn took longer than {0:?}")]
    Timeout(std::time::Duration),
}

/// What a turn read in its gathering transaction.
struct Gathered {
    info: ConversationInfo,
    /// The events this turn answers, oldest first.
    events: Vec<EventId>,
    /// Their texts, joined: a burst of messages is answered as one turn.
    customer_text: String,
    /// An earlier attempt at these events failed or was interrupted.
    redone: bool,
    owner: Ownership,
    knowledge_generation: i64,
    has_booking_offer: bool,
    settings: ActionSettings,
    /// The tenant answers without a model.
    offline: bool,
    /// The contact's lead as it stands (when lead capture is enabled): most messages change
    /// nothing about it, and then the turn needs no transaction of its own for it.
    lead: Option<Lead>,
    /// Whether the events come from the contact on file (see [`TurnContext::sender`]).
    sender: SenderTrust,
}

/// The reply a turn composed, and what it brings about, before the commit.
struct Draft {
    reply: Reply,
    /// A human is to be brought in with this reply.
    plan: Option<Plan>,
    /// `[{id, title}]` offered with the reply.
    choices: serde_json::Value,
    /// Tools ran or the booking dialogue answered: either may have queued effects.
    may_have_effects: bool,
    /// The reply counts as a failure to answer ([`decide::unanswered`]).
    failed: bool,
}

/// What the commit of a draft did.
enum Committed {
    Reply {
        turn: turns::CommittedTurn,
        responder: Responder,
        /// The escalation this turn opened, for the inbox's hint.
        opened: Option<uuid::Uuid>,
    },
    /// A human took the conversation over while the bot was thinking: no reply.
    Silenced,
    /// Another worker answered the events first.
    Superseded,
}

/// Runs one turn of `conversation`. Setting `cancel` to true before the commit starts makes the
/// turn stop without writing a reply.
#[instrument(name = "turn", skip_all, fields(tenant_id = %tenant, conversation_id = %conversation))]
pub async fn run(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
    mut cancel: watch::Receiver<bool>,
) -> Result<TurnOutcome, TurnError> {
    let (g, mind) = match gather(services, tenant, conversation).await? {
        Ok(gathered) => gathered,
        Err(outcome) => return Ok(outcome),
    };
    let turn_actions = TurnActions::default();
    let ctx = TurnContext {
        services,
        tenant,
        tenant_name: &g.info.tenant_name,
        channel: g.info.channel_kind,
        conversation: Some(conversation),
        events: &g.events,
        customer_text: &g.customer_text,
        sender: g.sender,
        lang: detect_language(&g.customer_text),
        settings: &g.settings,
        actions: &turn_actions,
        dry_run: false,
    };
    let decision = decide::decide(&Facts {
        mode: services.config.responder,
        owner: g.owner.state,
        customer_text: &g.customer_text,
        settings: &g.settings,
        offline: g.offline,
        has_booking_offer: g.has_booking_offer,
        redone: g.redone,
        sender: g.sender,
    });
    if decision == Decision::Silent {
        // The message waits in the transcript for the human.
        return silent(&ctx, &g.info).await;
    }
    let lead = match (&g.lead, &decision) {
        (Some(current), Decision::Answer { .. } | Decision::Handoff(_)) => {
            let l = leads::observe(&ctx, conversation, current).await?;
            LeadInfo {
                score: l.score,
                reasons: l.reasons,
                fields: l.fields,
            }
        }
        _ => LeadInfo::default(),
    };
    // A broken or slow search must not silence the bot: without knowledge the answer is "I
    // don't have that information" (or the model's, with no passages), marked for admins.
    let (passages, retrieval_failure) = if decision.grounds() {
        ground(services, tenant, &g.customer_text, g.knowledge_generation).await
    } else {
        (Vec::new(), None)
    };

    let timeout = services.config.turn_timeout;
    // Tokens spent by model calls of this turn; kept here so that a cancelled or failed turn
    // still accounts for what it spent.
    let usage_log = UsageLog::default();
    let result = tokio::time::timeout(timeout, async {
        let composed = compose(
            &ctx,
            &g,
            mind,
            decision.clone(),
            &passages,
            &usage_log,
            &mut cancel,
        );
        let Some(mut draft) = composed.await? else {
            return Ok(None);
        };
        if let Some(why) = retrieval_failure {
            draft.reply.metadata["retrieval"] = serde_json::json!("failed");
            draft.reply.metadata["retrieval_failure"] = serde_json::json!(why.as_str());
        }
        if let Some(hook) = &services.faults {
            let delay = hook(&FaultPoint::BeforeCommit {
                tenant,
                conversation,
                customer_text: &g.customer_text,
            });
            if let Some(delay) = delay {
                // An injected slow step counts as thinking: a newer message interrupts it, as
                // it interrupts a model call.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.wait_for(|c| *c) => return Ok(None),
                }
            }
        }
        if *cancel.borrow() {
            return Ok(None);
        }
        commit(&ctx, &g, &decision, draft, &lead, &usage_log)
            .await
            .map(Some)
    })
    .await;

    let committed = match result {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => {
            // Cancelled: give the attempt back so cancellations never count towards parking.
            let mut tx = services.db.tenant(tenant).await?;
            turns::uncount_attempt(&mut tx, &g.events).await?;
            tx.commit().await?;
            record_spent(services, tenant, conversation, &usage_log).await;
            return Ok(TurnOutcome::Cancelled);
        }
        Ok(Err(e)) => {
            record_spent(services, tenant, conversation, &usage_log).await;
            return Err(record_failure(services, tenant, &g.events, e.into()).await);
        }
        Err(_) => {
            record_spent(services, tenant, conversation, &usage_log).await;
            let e = TurnError::Timeout(timeout);
            return Err(record_failure(services, tenant, &g.events, e).await);
        }
    };
    let (committed, responder, opened) = match committed {
        Committed::Reply {
            turn,
            responder,
            opened,
        } => (turn, responder, opened),
        Committed::Silenced => {
            record_spent(services, tenant, conversation, &usage_log).await;
            info!("a human took the conversation over while the bot was thinking; no reply");
            return Ok(TurnOutcome::Silent {
                events: g.events.len(),
            });
        }
        Committed::Superseded => {
            record_spent(services, tenant, conversation, &usage_log).await;
            return Ok(TurnOutcome::Superseded);
        }
    };
    if committed.delivered {
        // The reply is in the transcript the session's streams read: wake them, with the reply
        // itself when the commit told where it goes.
        services
            .metrics
            .outbound(tenant, g.info.channel_kind, "sent");
        let hub = &services.outbound.webchat;
        match committed.shown.clone() {
            Some(a) => hub.append(g.info.channel_id, &g.info.contact_external_id, *a),
            None => hub.notify(g.info.channel_id, &g.info.contact_external_id),
        }
    } else {
        services.outbox_kick.notify_one();
    }
    publish_reply(services, tenant, conversation, opened);
    if responder == Responder::Llm {
        // Long conversations get their rolling summary refreshed after the reply is out, in
        // the background, so it never delays an answer.
        let services = services.clone();
        tokio::spawn(async move {
            if let Err(e) = brain::refresh_summary(&services, tenant, conversation).await {
                warn!(error = %e, "summary refresh failed");
            }
        });
    }
    info!(turn_id = %committed.turn_id, events = g.events.len(), "turn committed");
    Ok(TurnOutcome::Answered {
        turn: committed.turn_id,
        events: g.events.len(),
    })
}

/// Step 1: the turn's one read transaction (see the module documentation), and who answers.
/// `Err` is how a turn with nothing to answer ended: no work, or everything parked.
async fn gather(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<Result<(Gathered, Mind), TurnOutcome>, TurnError> {
    let max_attempts = services.config.max_attempts;
    let echo = services.config.responder == ResponderMode::Echo;
    // The common case in one round trip; an event that used up its attempts takes the long
    // way below, which parks it.
    match turns::gather_turn(&services.db, tenant, conversation, max_attempts, !echo).await? {
        TurnRead::NoWork => return Ok(Err(TurnOutcome::NoWork)),
        TurnRead::Exhausted => {}
        TurnRead::Read(read) => {
            let TurnReadRow {
                events,
                state,
                settings,
                agent_provider,
                lead,
            } = *read;
            let mind = if echo
                || services
                    .brains
                    .offline_by_provider(agent_provider.as_deref())
            {
                Mind::Offline
            } else {
                let mut tx = services.db.tenant(tenant).await?;
                let mind = services.brains.mind(&mut tx).await?;
                tx.commit().await?;
                within_budget(services, tenant, conversation, mind)
            };
            let lead = lead.filter(|_| settings.enabled(Action::Leads));
            let mut g = gathered(events, state, settings, &mind, lead);
            g.sender = sender_of(services, tenant, &g).await?;
            return Ok(Ok((g, mind)));
        }
    }
    let mut tx = services.db.tenant(tenant).await?;
    let (pending, state) = turns::gather(&mut tx, conversation, max_attempts).await?;
    let Some(state) = state else {
        tx.rollback().await?;
        return Ok(Err(TurnOutcome::NoWork));
    };
    let settings = actions::get(&mut tx).await?;
    let (exhausted, live): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|e| e.attempts >= max_attempts);
    let parked = if exhausted.is_empty() {
        ParkReport::default()
    } else {
        parked::park_exhausted(
            &mut tx,
            &Parking {
                services,
                info: &state.info,
                settings: &settings,
                events: &exhausted,
            },
        )
        .await?
    };
    if live.is_empty() {
        tx.commit().await?;
        parked.after_commit(services);
        return Ok(Err(TurnOutcome::Parked {
            events: exhausted.len(),
        }));
    }
    let mind = if echo {
        Mind::Offline
    } else {
        within_budget(
            services,
            tenant,
            conversation,
            services.brains.mind(&mut tx).await?,
        )
    };
    let lead = if !echo && settings.enabled(Action::Leads) {
        Some(lead_store::for_conversation(&mut tx, conversation, false).await?)
    } else {
        None
    };
    tx.commit().await?;
    parked.after_commit(services);
    let mut g = gathered(live, state, settings, &mind, lead);
    g.sender = sender_of(services, tenant, &g).await?;
    Ok(Ok((g, mind)))
}

/// A conversation's model turns are budgeted: a token bucket of `model_turns_per_hour`, as
/// many at once. Past it the offline responder answers (spending nothing) until the bucket
/// refills, so a customer flooding one conversation cannot burn the tenant's model budget or
/// hold its model for others. The buckets live in this process.
fn within_budget(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
    mind: Mind,
) -> Mind {
    let per_hour = services.config.model_turns_per_hour;
    if per_hour == 0 || matches!(mind, Mind::Offline) {
        return mind;
    }
    let cap =
        switchboard_channels::limits::Cap::new(f64::from(per_hour) / 3600.0, f64::from(per_hour));
    match services
        .turn_budget
        .try_take(&[(conversation, cap)], 1.0, std::time::Instant::now())
    {
        Ok(()) => mind,
        Err(wait) => {
            metrics::counter!("switchboard_rate_limited_total", "what" => "turn_budget")
                .increment(1);
            info!(%tenant, %conversation, refills_in_secs = wait.as_secs(), "the conversation used up its model turns for now; answering offline");
            Mind::Offline
        }
    }
}

/// Whether the turn's events come from the contact on file: read only where the channel does
/// not authenticate its senders itself (email); every other channel's are verified.
async fn sender_of(
    services: &Services,
    tenant: TenantId,
    g: &Gathered,
) -> Result<SenderTrust, DbError> {
    if g.info.channel_kind.authenticates_sender() {
        return Ok(SenderTrust::Verified);
    }
    turns::sender_trust(&services.db, tenant, &g.events).await
}

/// What the turn works with, from what it read.
fn gathered(
    live: Vec<turns::PendingEvent>,
    state: turns::TurnState,
    settings: ActionSettings,
    mind: &Mind,
    lead: Option<Lead>,
) -> Gathered {
    Gathered {
        events: live.iter().map(|e| e.id).collect(),
        customer_text: live
            .iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        redone: live.iter().any(|e| e.attempts > 0),
        info: state.info,
        owner: state.owner,
        knowledge_generation: state.knowledge_generation,
        has_booking_offer: state.has_booking_offer,
        settings,
        offline: matches!(mind, Mind::Offline),
        lead,
        // Read after, for the channels that need it (see `sender_of`).
        sender: SenderTrust::Verified,
    }
}

/// Step 3: the reply the decision calls for. `None`: a newer message cancelled the turn.
async fn compose(
    ctx: &TurnContext<'_>,
    g: &Gathered,
    mind: Mind,
    decision: Decision,
    passages: &[switchboard_knowledge::Hit],
    usage_log: &UsageLog,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Option<Draft>, DbError> {
    let lang = ctx.lang.code();
    let fixed = |text: String, responder: Responder, intent: &str| Reply {
        text,
        responder,
        intent: intent.into(),
        metadata: serde_json::json!({"intent": intent, "lang": lang}),
        prompt_version_id: None,
    };
    let mut may_have_effects = false;
    let (reply, plan, tool_calls) = match &decision {
        Decision::Silent => unreachable!("a silent turn composes nothing"),
        // A human was asked for: the holding message is the reply, nobody needs to think.
        Decision::Handoff(plan) => (
            fixed(String::new(), Responder::Handoff, "human"),
            Some(plan.clone()),
            0,
        ),
        Decision::Echo => (
            fixed(ctx.customer_text.to_owned(), Responder::Echo, "echo"),
            None,
            0,
        ),
        Decision::OwnerOnly => {
            let mut r = fixed(
                switchboard_prompts::booking::owner_only(ctx.lang),
                Responder::Offline,
                "owner_only",
            );
            r.metadata["sender_verified"] = serde_json::json!(false);
            (r, None, 0)
        }
        Decision::Answer { booking_dialogue } => {
            let booked = if *booking_dialogue {
                booking::offline_turn(ctx, g.info.id).await?
            } else {
                None
            };
            if let Some(b) = booked {
                // The booking dialogue may have booked a meeting, whose invitation is an
                // effect.
                may_have_effects = true;
                ctx.actions.offer(b.choices.clone());
                let mut metadata = b.metadata;
                if metadata.is_null() {
                    metadata = serde_json::json!({});
                }
                metadata["intent"] = serde_json::json!(b.intent);
                metadata["lang"] = serde_json::json!(lang);
                let reply = Reply {
                    text: b.text,
                    responder: Responder::Offline,
                    intent: b.intent,
                    metadata,
                    prompt_version_id: None,
                };
                (reply, None, 0)
            } else {
                // The model is the step worth interrupting: a newer message cancels it at
                // once. Database steps are never dropped half-way except inside it (reads, and
                // the tools' idempotent writes).
                let timeout = ctx.services.config.turn_timeout;
                let think = brain::think(
                    Think {
                        ctx,
                        passages,
                        prompt_override: None,
                        purpose: Purpose::Reply,
                        // Leave time to commit: past this the offline answer is used instead.
                        deadline: timeout.mul_f64(0.8),
                        mind: Some(mind),
                        handback_note: g.owner.handback_note.as_deref(),
                    },
                    usage_log,
                );
                let thought = tokio::select! {
                    t = think => t?,
                    _ = cancelled(cancel) => return Ok(None),
                };
                (thought.reply, None, thought.tool_calls.len())
            }
        }
    };
    may_have_effects |= tool_calls > 0;
    let mut reply = reply;
    let requested = ctx.actions.take();
    let plan = decide::after_tools(ctx.settings, plan, requested.escalate.clone());
    for (k, v) in &requested.metadata {
        reply.metadata[k] = v.clone();
    }
    let failed = decide::unanswered(
        &decision,
        plan.as_ref(),
        &reply.intent,
        !passages.is_empty(),
        !requested.metadata.is_empty(),
    );
    let choices = requested
        .choices
        .iter()
        .map(|c| serde_json::json!({"id": c.id, "title": c.title}))
        .collect();
    Ok(Some(Draft {
        reply,
        plan,
        choices: serde_json::Value::Array(choices),
        may_have_effects,
        failed,
    }))
}

/// Step 4: the draft committed in one transaction (see the module documentation).
async fn commit(
    ctx: &TurnContext<'_>,
    g: &Gathered,
    decision: &Decision,
    draft: Draft,
    lead: &LeadInfo,
    usage_log: &UsageLog,
) -> Result<Committed, DbError> {
    let Draft {
        mut reply,
        mut plan,
        choices,
        may_have_effects,
        failed,
    } = draft;
    let usage = usage_log.take();
    let lang = ctx.lang.code();
    let weigh = decide::before_commit(decision, ctx.settings, plan.as_ref(), failed, lead.score);
    if plan.is_none() && weigh == AtCommit::Nothing {
        // The common case: a transaction of its own in one round trip, which also checks that
        // the bot still owns the conversation. If a human took it over, the long way below
        // takes the events silently under the lock.
        let row = BotReplyRow::new(
            ctx.tenant,
            &to_commit(g, &reply, &usage, &choices),
            failed,
            lang,
        );
        match ctx.services.group.bot_reply(row, &usage).await {
            Ok(BotReply::Committed(c)) => {
                if may_have_effects {
                    ctx.services.effects_kick.notify_one();
                }
                return Ok(Committed::Reply {
                    turn: c,
                    responder: reply.responder,
                    opened: None,
                });
            }
            Ok(BotReply::HumanOwns(_)) => {}
            Err(DbError::Conflict(why)) => {
                usage_log.extend(usage);
                warn!(%why, "turn superseded");
                return Ok(Committed::Superseded);
            }
            Err(e) => {
                usage_log.extend(usage);
                return Err(e);
            }
        }
    }
    let mut tx = ctx.db().tenant(ctx.tenant).await?;
    // The escalation this turn opened, for the inbox's hint once committed.
    let mut opened = None;
    // Under the conversation's lock: a human who claimed it while we were thinking wins, and
    // the bot's reply is dropped.
    let now_owner = handoff::ownership(&mut tx, g.info.id, true).await?;
    let written = if now_owner.state != HandoffState::Bot {
        Ok(None)
    } else {
        let failures = handoff::after_bot_turn(&mut tx, g.info.id, failed, lang).await?;
        if weigh == AtCommit::Weigh {
            plan = decide::at_commit(ctx.settings, failures, lead.score);
            if plan
                .as_ref()
                .is_some_and(|p| p.trigger == Trigger::LeadScore)
                && handoff::ever_escalated_by(&mut tx, g.info.id, Trigger::LeadScore.as_str())
                    .await?
            {
                plan = None;
            }
        }
        if let Some(p) = &plan {
            opened = escalate(&mut tx, ctx, p, lead, &mut reply).await?;
        }
        turns::commit(&mut tx, to_commit(g, &reply, &usage, &choices))
            .await
            .map(Some)
    };
    match written {
        Ok(Some(c)) => {
            tx.commit().await?;
            // Escalations, and tools (booking invites, CRM calls), may have queued effects: the
            // worker need not wait for its next poll. Other turns queue none, and waking the
            // worker would only make it look.
            if plan.is_some() || may_have_effects {
                ctx.services.effects_kick.notify_one();
            }
            Ok(Committed::Reply {
                turn: c,
                responder: reply.responder,
                opened,
            })
        }
        Ok(None) => {
            // The conversation's lock is held: take the events without a reply.
            let done = turns::commit_silent(&mut tx, &g.info, &g.events, "human_took_over").await?;
            tx.commit().await?;
            usage_log.extend(usage);
            Ok(match done {
                Some(_) => Committed::Silenced,
                None => Committed::Superseded,
            })
        }
        Err(DbError::Conflict(why)) => {
            tx.rollback().await?;
            usage_log.extend(usage);
            warn!(%why, "turn superseded");
            Ok(Committed::Superseded)
        }
        Err(e) => {
            usage_log.extend(usage);
            Err(e)
        }
    }
}

/// What the store writes for `reply`.
fn to_commit<'a>(
    g: &'a Gathered,
    reply: &'a Reply,
    usage: &'a [UsageRecord],
    choices: &'a serde_json::Value,
) -> TurnCommit<'a> {
    TurnCommit {
        conversation: &g.info,
        events: &g.events,
        reply: &reply.text,
        responder: reply.responder.as_str(),
        intent: Some(&reply.intent),
        metadata: reply.metadata.clone(),
        prompt_version_id: reply.prompt_version_id,
        usage,
        choices: Some(choices),
        // The long way takes the lock with `ownership` first.
        conversation_locked: true,
    }
}

/// Opens the escalation of `plan` in the commit's transaction and words the reply around it:
/// the holding message (with when a human will answer), or the kept answer with the team's
/// follow-up. Returns the escalation's id when this turn opened it.
async fn escalate(
    tx: &mut switchboard_core::TenantTx,
    ctx: &TurnContext<'_>,
    plan: &Plan,
    lead: &LeadInfo,
    reply: &mut Reply,
) -> Result<Option<uuid::Uuid>, DbError> {
    let now = chrono::Utc::now();
    let (expect, after_hours) =
        crate::handoff::expectation(tx, ctx.settings, now, ctx.lang).await?;
    let request_key = ctx.request_key().unwrap_or_default();
    let (e, created) = crate::handoff::escalate(
        tx,
        ctx,
        &Opening {
            plan,
            request_key: &request_key,
            after_hours,
            lead,
            now,
        },
    )
    .await?;
    let holding = holding_message(ctx.lang, &expect);
    reply.text = match (plan.keep_answer, created) {
        (true, _) if reply.text.trim().is_empty() => holding,
        // The agent could not help: say a human is coming and when.
        (true, true) if plan.trigger == Trigger::Failures => {
            format!("{}\n\n{holding}", reply.text)
        }
        (true, true) => format!("{}\n\n{}", reply.text, team_will_follow_up(ctx.lang)),
        (true, false) => reply.text.clone(),
        (false, _) => holding,
    };
    reply.metadata["escalation_id"] = serde_json::json!(e.id);
    reply.metadata["escalation_trigger"] = serde_json::json!(plan.trigger.as_str());
    if !plan.keep_answer {
        reply.intent = "human".into();
        reply.metadata["intent"] = serde_json::json!("human");
    }
    Ok(created.then_some(e.id))
}

/// Tells the tenant's consoles about a committed reply and the escalation it opened, if any.
fn publish_reply(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
    opened: Option<uuid::Uuid>,
) {
    use crate::inbox::{ConversationReason, InboxEvent};
    let mut events = vec![InboxEvent::conversation(
        conversation,
        ConversationReason::Message,
    )];
    if let Some(id) = opened {
        events.extend(InboxEvent::escalation_opened(id, conversation));
    }
    services.inbox.publish_all(tenant, events);
}

/// Why a turn answers without knowledge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetrievalFailure {
    /// The search (or the query's embedding) returned an error.
    Error,
    /// It overran `PipelineConfig::retrieval_timeout`.
    Timeout,
}

impl RetrievalFailure {
    fn as_str(self) -> &'static str {
        match self {
            RetrievalFailure::Error => "error",
            RetrievalFailure::Timeout => "timeout",
        }
    }
}

/// The knowledge that grounds the turn's answer, within the retrieval budget. A failure is
/// logged once with its cause and counted, and the turn goes on without passages.
async fn ground(
    services: &Services,
    tenant: TenantId,
    customer_text: &str,
    generation: i64,
) -> (Vec<switchboard_knowledge::Hit>, Option<RetrievalFailure>) {
    let budget = services.config.retrieval_timeout;
    let searched = tokio::time::timeout(
        budget,
        responder::ground(
            &services.db,
            &services.embedders,
            tenant,
            customer_text,
            responder::GROUNDING_HITS,
            Some(generation),
        ),
    )
    .await;
    let failure = match searched {
        Ok(Ok(hits)) => return (hits, None),
        Ok(Err(e)) => {
            warn!(error = %e, "knowledge retrieval failed; answering without knowledge");
            RetrievalFailure::Error
        }
        Err(_) => {
            warn!(
                ?budget,
                "knowledge retrieval overran its budget; answering without knowledge"
            );
            RetrievalFailure::Timeout
        }
    };
    metrics::counter!("switchboard_retrieval_failures_total", "reason" => failure.as_str())
        .increment(1);
    (Vec::new(), Some(failure))
}

/// Takes the events of a human-owned conversation without replying.
async fn silent(ctx: &TurnContext<'_>, info: &ConversationInfo) -> Result<TurnOutcome, TurnError> {
    let mut tx = ctx.db().tenant(ctx.tenant).await?;
    handoff::ownership(&mut tx, info.id, true).await?;
    let done = turns::commit_silent(&mut tx, info, ctx.events, "human_owned").await?;
    tx.commit().await?;
    Ok(match done {
        Some(_) => TurnOutcome::Silent {
            events: ctx.events.len(),
        },
        None => TurnOutcome::Superseded,
    })
}

/// Resolves when the turn is asked to stop (never, if the asking side went away).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Records the tokens of a turn that committed no reply (cancelled, superseded, failed): they
/// were spent all the same and count against the budget. Best effort.
async fn record_spent(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
    log: &UsageLog,
) {
    let spent = log.take();
    if spent.is_empty() {
        return;
    }
    let written = async {
        let mut tx = services.db.tenant(tenant).await?;
        usage::record(&mut tx, Some(conversation), None, &spent).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = written {
        warn!(error = %e, "could not record the token usage of an unfinished turn");
    }
}

/// Writes the failure on the events for admins (best effort) and hands the error back.
async fn record_failure(
    services: &Services,
    tenant: TenantId,
    events: &[EventId],
    error: TurnError,
) -> TurnError {
    let message = error.to_string();
    let written = async {
        let mut tx = services.db.tenant(tenant).await?;
        turns::record_error(&mut tx, events, &message).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = written {
        warn!(error = %e, "could not record a turn failure");
    }
    error
}
