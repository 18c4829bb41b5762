//! One turn of a conversation, from pending events to a committed reply.
//!
//! 1. Read the conversation's pending events; park those that already used up their attempts,
//!    telling the customer and bringing the team in within the same transaction
//!    ([`crate::parked`]).
//! 2. Count an attempt on the rest and commit, so a crash or panic later in the turn still
//!    counts as an attempt; then read the knowledge that grounds the answer, within its budget
//!    (a failed or slow search gives no passages, never a failed turn).
//! 3. Compute the reply from the knowledge read in step 2, with a timeout: the offline
//!    responder, or the model's tool loop ([`crate::brain::think`]), which holds no
//!    transaction while the model thinks and can be cancelled by a newer message.
//! 4. Commit reply, outbox row, token usage and "done" marks in one transaction (see
//!    [`switchboard_core::store::turns::commit`]), then wake the dispatcher.
//!
//! A turn holds no lock while it thinks. It can be cancelled until its final commit starts;
//! a cancelled turn leaves its events pending, exactly as if it never ran.

use switchboard_core::store::turns::{self, TurnCommit};
use switchboard_core::store::usage;
use switchboard_core::{ConversationId, DbError, EventId, TenantId, TurnId};
use tokio::sync::watch;
use tracing::{info, instrument, warn};

use switchboard_core::store::actions;
use switchboard_core::store::handoff::{self, HandoffState};
use switchboard_prompts::handoff::{holding_message, matching_keyword, team_will_follow_up};
use switchboard_prompts::{detect_intent, detect_language, Intent};

use crate::actions::{ActionCtx, TurnActions};
use crate::brain::{self, Mind, Think, UsageLog};
use crate::handoff::{LeadInfo, Plan, Trigger};
use crate::parked::{self, ParkReport, Parking};
use crate::{booking, leads, responder, FaultPoint, Services};

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

/// Runs one turn of `conversation`. Setting `cancel` to true before the commit starts makes the
/// turn stop without writing a reply.
#[instrument(name = "turn", skip_all, fields(tenant_id = %tenant, conversation_id = %conversation))]
pub async fn run(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
    mut cancel: watch::Receiver<bool>,
) -> Result<TurnOutcome, TurnError> {
    let db = &services.db;
    let max_attempts = services.config.max_attempts;
    // The echo responder measures the durable core alone: no rules, no knowledge, no model.
    let echo = services.config.responder == crate::ResponderMode::Echo;

    let mut tx = db.tenant(tenant).await?;
    // The pending events (this turn's attempt counted on those that have attempts left), the
    // conversation, its owner and the knowledge generation, in two statements.
    let (pending, state) = turns::gather(&mut tx, conversation, max_attempts).await?;
    let Some(state) = state else {
        tx.rollback().await?;
        return Ok(TurnOutcome::NoWork);
    };
    let info = state.info.clone();
    let action_settings = actions::get(&mut tx).await?;
    let (exhausted, live): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|e| e.attempts >= max_attempts);
    // Events that used up their attempts are parked, and the customer is told and the team
    // brought in, in this same transaction (see `crate::parked`).
    let parked = if exhausted.is_empty() {
        ParkReport::default()
    } else {
        parked::park_exhausted(
            &mut tx,
            &Parking {
                services,
                info: &info,
                settings: &action_settings,
                events: &exhausted,
            },
        )
        .await?
    };
    if live.is_empty() {
        tx.commit().await?;
        parked.after_commit(services);
        return Ok(TurnOutcome::Parked {
            events: exhausted.len(),
        });
    }
    let event_ids: Vec<EventId> = live.iter().map(|e| e.id).collect();
    // A redone turn (an earlier attempt failed or the process died) may find what its first
    // run did.
    let redone = live.iter().any(|e| e.attempts > 0);
    // Who answers (offline, budget, model) is read here too, saving a round trip per turn.
    let mind = services.brains.mind(&mut tx).await?;
    let owner = state.owner;
    let generation = state.knowledge_generation;
    // The contact's lead as it stands: most messages change nothing about it, and then the
    // turn needs no transaction of its own for it.
    let current_lead = if !echo && action_settings.enabled("leads") {
        Some(switchboard_core::store::leads::for_conversation(&mut tx, conversation, false).await?)
    } else {
        None
    };
    // A burst of messages is answered as one turn over their joined text.
    let customer_text = live
        .iter()
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    // The attempt commits before knowledge is read and any reply is composed: a panic or crash
    // from here on still counts against the events. Unless events were parked (which tells the
    // customer), nothing here needs to wait for the disk (see `commit_without_flush_wait`).
    if exhausted.is_empty() {
        turns::commit_without_flush_wait(&mut tx).await?;
    }
    tx.commit().await?;
    parked.after_commit(services);
    if owner.state != HandoffState::Bot {
        // A human owns the conversation (or is being waited for): the bot stays silent and the
        // message waits in the transcript for the human.
        return silent(services, tenant, &info, &event_ids).await;
    }
    let lang = detect_language(&customer_text);
    let request_key = crate::actions::request_key(&event_ids);
    let action_ctx = ActionCtx {
        services,
        tenant,
        tenant_name: &info.tenant_name,
        conversation,
        channel: info.channel_kind,
        events: &event_ids,
        customer_text: &customer_text,
        lang,
        settings: &action_settings,
    };
    // Rules that bring a human in before anyone thinks: the customer asks for a person, or
    // says one of the tenant's keywords.
    let mut plan = None;
    if !echo && action_settings.enabled("handoff") {
        if detect_intent(&customer_text) == Intent::Human {
            plan = Some(Plan {
                trigger: Trigger::Customer,
                reason: "the customer asked to talk to a person".into(),
                keep_answer: false,
            });
        } else if let Some(k) = matching_keyword(&customer_text, &action_settings.handoff_keywords)
        {
            plan = Some(Plan {
                trigger: Trigger::Keyword,
                reason: format!("the customer's message contains the keyword \"{k}\""),
                keep_answer: false,
            });
        }
    }
    let lead = if let Some(current) = &current_lead {
        let l = leads::observe(&action_ctx, current).await?;
        LeadInfo {
            score: l.score,
            reasons: l.reasons,
            fields: l.fields,
        }
    } else {
        LeadInfo::default()
    };
    // A broken or slow search must not silence the bot: without knowledge the answer is "I
    // don't have that information" (or the model's, with no passages), marked for admins.
    let (passages, retrieval_failure) = if echo {
        (Vec::new(), None)
    } else {
        ground(services, tenant, &customer_text, generation).await
    };

    let timeout = services.config.turn_timeout;
    // Tokens spent by model calls of this turn; kept here so that a cancelled or failed turn
    // still accounts for what it spent.
    let usage_log = UsageLog::default();
    let turn_actions = TurnActions::default();
    let offline_mind = matches!(mind, Mind::Offline);
    let result = tokio::time::timeout(timeout, async {
        // The offline responder's booking dialogue answers booking turns without a model.
        // Whether tools ran or a booking dialogue answered: either may have queued effects.
        let mut tools_or_bookings = false;
        let booked = if !echo
            && plan.is_none()
            && offline_mind
            && action_settings.enabled("booking")
            && booking::may_answer(&customer_text, state.has_booking_offer, redone)
        {
            booking::offline_turn(&action_ctx).await?
        } else {
            None
        };
        // The model is the step worth interrupting: a newer message cancels it at once.
        // Database steps are never dropped half-way except inside it (reads, and the tools'
        // idempotent writes).
        let thought = if plan.is_some() {
            // A human was asked for: the holding message is the reply, nobody needs to think.
            brain::Thought {
                reply: responder::Reply {
                    text: String::new(),
                    responder: "handoff",
                    intent: "human".into(),
                    metadata: serde_json::json!({"intent": "human", "lang": lang.code()}),
                    prompt_version_id: None,
                },
                tool_calls: Vec::new(),
            }
        } else if echo {
            brain::Thought {
                reply: responder::Reply {
                    text: customer_text.clone(),
                    responder: "echo",
                    intent: "echo".into(),
                    metadata: serde_json::json!({"intent": "echo", "lang": lang.code()}),
                    prompt_version_id: None,
                },
                tool_calls: Vec::new(),
            }
        } else if let Some(b) = booked {
            // The booking dialogue may have booked a meeting, whose invitation is an effect.
            tools_or_bookings = true;
            turn_actions.offer(b.choices.clone());
            let mut metadata = b.metadata.clone();
            if metadata.is_null() {
                metadata = serde_json::json!({});
            }
            metadata["intent"] = serde_json::json!(b.intent);
            metadata["lang"] = serde_json::json!(lang.code());
            brain::Thought {
                reply: responder::Reply {
                    text: b.text,
                    responder: "offline",
                    intent: b.intent,
                    metadata,
                    prompt_version_id: None,
                },
                tool_calls: Vec::new(),
            }
        } else {
            tokio::select! {
                t = brain::think(
                    services,
                    Think {
                        tenant,
                        tenant_name: &info.tenant_name,
                        channel: info.channel_kind,
                        conversation: Some((conversation, &event_ids)),
                        customer_text: &customer_text,
                        passages: &passages,
                        dry_run: false,
                        prompt_override: None,
                        purpose: "reply",
                        // Leave time to commit: past this the offline answer is used instead.
                        deadline: timeout.mul_f64(0.8),
                        mind: Some(mind),
                        action_settings: &action_settings,
                        actions: &turn_actions,
                        handback_note: owner.handback_note.as_deref(),
                    },
                    &usage_log,
                ) => t?,
                _ = cancelled(&mut cancel) => return Ok(None),
            }
        };
        tools_or_bookings |= !thought.tool_calls.is_empty();
        let mut reply = thought.reply;
        if let Some(why) = retrieval_failure {
            reply.metadata["retrieval"] = serde_json::json!("failed");
            reply.metadata["retrieval_failure"] = serde_json::json!(why.as_str());
        }
        let requested = turn_actions.take();
        if plan.is_none() && action_settings.enabled("handoff") {
            if let Some(reason) = requested.escalate.clone() {
                plan = Some(Plan {
                    trigger: Trigger::Tool,
                    reason,
                    keep_answer: false,
                });
            }
        }
        for (k, v) in &requested.metadata {
            reply.metadata[k] = v.clone();
        }
        // An answer the knowledge could not ground counts towards the repeated-failure rule.
        let failed = !echo
            && plan.is_none()
            && reply.intent == "question"
            && passages.is_empty()
            && requested.metadata.is_empty();
        let choices: Vec<serde_json::Value> = requested
            .choices
            .iter()
            .map(|c| serde_json::json!({"id": c.id, "title": c.title}))
            .collect();
        let choices = serde_json::Value::Array(choices);
        if let Some(hook) = &services.faults {
            let delay = hook(&FaultPoint::BeforeCommit {
                tenant,
                conversation,
                customer_text: &customer_text,
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
        let usage = usage_log.take();
        let mut tx = db.tenant(tenant).await?;
        // Under the conversation's lock: a human who claimed it while we were thinking wins,
        // and the bot's reply is dropped.
        let now_owner = handoff::ownership(&mut tx, conversation, true).await?;
        if now_owner.state != HandoffState::Bot {
            let done = turns::commit_silent(&mut tx, &info, &event_ids, "human_took_over").await?;
            tx.commit().await?;
            usage_log.extend(usage);
            return Ok(Some(Err(done.is_some())));
        }
        let failures = handoff::after_bot_turn(&mut tx, conversation, failed, lang.code()).await?;
        let limit = action_settings.max_failed_answers;
        if !echo && plan.is_none() && action_settings.enabled("handoff") {
            if limit > 0 && failures >= limit {
                plan = Some(Plan {
                    trigger: Trigger::Failures,
                    reason: format!("the agent could not answer {failures} messages in a row"),
                    keep_answer: true,
                });
            } else if let (Some(t), Some(score)) =
                (action_settings.lead_score_threshold, lead.score)
            {
                if score >= t
                    && !handoff::ever_escalated_by(
                        &mut tx,
                        conversation,
                        Trigger::LeadScore.as_str(),
                    )
                    .await?
                {
                    plan = Some(Plan {
                        trigger: Trigger::LeadScore,
                        reason: format!("a qualified lead (score {score} ≥ {t})"),
                        keep_answer: true,
                    });
                }
            }
        }
        // The escalation this turn opened, for the inbox's hint once committed.
        let mut opened = None;
        if let Some(p) = &plan {
            let now = chrono::Utc::now();
            let (expect, after_hours) =
                crate::handoff::expectation(&mut tx, &action_settings, now, lang).await?;
            let (e, created) = crate::handoff::escalate(
                &mut tx,
                &crate::handoff::EscalateInput {
                    services,
                    settings: &action_settings,
                    conversation,
                    tenant_name: &info.tenant_name,
                    plan: p,
                    request_key: &request_key,
                    after_hours,
                    lead: &lead,
                    now,
                },
            )
            .await?;
            if created {
                opened = Some(e.id);
            }
            let holding = holding_message(lang, &expect);
            reply.text = match (p.keep_answer, created) {
                (true, _) if reply.text.trim().is_empty() => holding,
                // The agent could not help: say a human is coming and when.
                (true, true) if p.trigger == Trigger::Failures => {
                    format!("{}\n\n{holding}", reply.text)
                }
                (true, true) => format!("{}\n\n{}", reply.text, team_will_follow_up(lang)),
                (true, false) => reply.text.clone(),
                (false, _) => holding,
            };
            reply.metadata["escalation_id"] = serde_json::json!(e.id);
            reply.metadata["escalation_trigger"] = serde_json::json!(p.trigger.as_str());
            if !p.keep_answer {
                reply.intent = "human".into();
                reply.metadata["intent"] = serde_json::json!("human");
            }
        }
        let committed = turns::commit(
            &mut tx,
            TurnCommit {
                conversation: &info,
                events: &event_ids,
                reply: &reply.text,
                responder: reply.responder,
                intent: Some(&reply.intent),
                metadata: reply.metadata.clone(),
                prompt_version_id: reply.prompt_version_id,
                usage: &usage,
                choices: Some(&choices),
                // Taken by `ownership` above.
                conversation_locked: true,
            },
        )
        .await;
        match committed {
            Ok(c) => {
                tx.commit().await?;
                // Escalations, and tools (booking invites, CRM calls), may have queued
                // effects: the worker need not wait for its next poll. Other turns queue
                // none, and waking the worker would only make it look.
                if plan.is_some() || tools_or_bookings {
                    services.effects_kick.notify_one();
                }
                Ok(Some(Ok((c, reply.responder, opened))))
            }
            Err(DbError::Conflict(why)) => {
                tx.rollback().await?;
                usage_log.extend(usage);
                warn!(%why, "turn superseded");
                Ok(Some(Err(false)))
            }
            Err(e) => {
                usage_log.extend(usage);
                Err(e)
            }
        }
    })
    .await;

    let committed = match result {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            record_spent(services, tenant, conversation, &usage_log).await;
            return Err(record_failure(services, tenant, &event_ids, e.into()).await);
        }
        Err(_) => {
            record_spent(services, tenant, conversation, &usage_log).await;
            let e = TurnError::Timeout(timeout);
            return Err(record_failure(services, tenant, &event_ids, e).await);
        }
    };
    let (committed, responder, opened) = match committed {
        Some(Ok(c)) => c,
        Some(Err(silenced)) => {
            record_spent(services, tenant, conversation, &usage_log).await;
            if silenced {
                info!("a human took the conversation over while the bot was thinking; no reply");
                return Ok(TurnOutcome::Silent {
                    events: event_ids.len(),
                });
            }
            return Ok(TurnOutcome::Superseded);
        }
        None => {
            // Cancelled: give the attempt back so cancellations never count towards parking.
            let mut tx = db.tenant(tenant).await?;
            turns::uncount_attempt(&mut tx, &event_ids).await?;
            tx.commit().await?;
            record_spent(services, tenant, conversation, &usage_log).await;
            return Ok(TurnOutcome::Cancelled);
        }
    };
    if committed.delivered {
        // The reply is in the transcript the session's streams read: wake them.
        crate::dispatcher::delivery_metric(info.channel_kind, "sent");
        services
            .outbound
            .webchat
            .notify(info.channel_id, &info.contact_external_id);
    } else {
        services.outbox_kick.notify_one();
    }
    publish_reply(services, tenant, conversation, opened);
    if responder == "llm" {
        // Long conversations get their rolling summary refreshed after the reply is out, in
        // the background, so it never delays an answer.
        let services = services.clone();
        tokio::spawn(async move {
            if let Err(e) = brain::refresh_summary(&services, tenant, conversation).await {
                warn!(error = %e, "summary refresh failed");
            }
        });
    }
    info!(turn_id = %committed.turn_id, events = event_ids.len(), "turn committed");
    Ok(TurnOutcome::Answered {
        turn: committed.turn_id,
        events: event_ids.len(),
    })
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
        responder::ground_at(
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
async fn silent(
    services: &Services,
    tenant: TenantId,
    info: &turns::ConversationInfo,
    events: &[EventId],
) -> Result<TurnOutcome, TurnError> {
    let mut tx = services.db.tenant(tenant).await?;
    handoff::ownership(&mut tx, info.id, true).await?;
    let done = turns::commit_silent(&mut tx, info, events, "human_owned").await?;
    tx.commit().await?;
    Ok(match done {
        Some(_) => TurnOutcome::Silent {
            events: events.len(),
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
