//! When the agent gives up: a conversation's events used up their attempts (a database error, a
//! bug, a crashed dependency, a turn that keeps timing out) and are parked. Parking alone would
//! leave the customer waiting for an answer that never comes, so the parking transaction also
//! tells the customer — once, in their language — and hands the conversation to the team.
//!
//! The policy is [`decide`], a pure function of who owns the conversation, whether handoff is
//! enabled and whether the customer was already told; [`park_exhausted`] gathers those inputs
//! and acts on the decision inside the caller's transaction, the one that parks the events:
//!
//! - **A human owns the conversation or is awaited**: park only. The bot never talks over a
//!   human, and the team already has the conversation.
//! - **The bot owns it, handoff enabled**: open an escalation (trigger `technical_failure`, the
//!   reason naming the failure and the last error), whose notifications leave through the
//!   effects outbox, and send the technical holding message saying a colleague will reply and
//!   when (business hours).
//! - **The bot owns it, handoff disabled**: send a technical holding message that promises no
//!   colleague ("please try again a little later"); nobody is notified but the admins, who see
//!   the parked event with its error and the metrics.
//! - **The customer was already told** (the last thing said to them is a technical holding
//!   message): no second message; the escalation rule still applies, so a conversation handed
//!   back to the bot that fails again reaches the team again.
//!
//! Exactly once: the conversation row is locked first, the events are parked only if they are
//! still pending (the update re-checks them, so a second worker parks nothing and writes
//! nothing), and everything written is keyed by the parked events — the escalation's request
//! key and the holding message's outbox idempotency key are `technical:{first event}` — so a
//! redone turn, a second worker or a restart finds what the first one committed. Nothing of it
//! exists unless the whole transaction commits.

use chrono::Utc;
use serde_json::json;
use switchboard_core::store::actions::{Action, ActionSettings};
use switchboard_core::store::handoff::{self, HandoffState, TECHNICAL_HOLDING_EVENT};
use switchboard_core::store::turns::{self, ConversationInfo, PendingEvent};
use switchboard_core::{ConversationId, DbError, EventId, TenantId, TenantTx};
use switchboard_prompts::detect_language;
use switchboard_prompts::handoff::technical_holding_message;
use tracing::{info, warn};

use crate::context::TurnContext;
use crate::handoff::{LeadInfo, Plan, Trigger};
use crate::Services;

/// What the customer and the team get when a conversation's events are parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnParked {
    /// A human owns the conversation or is awaited: park only.
    LeaveToHuman,
    /// The bot owns the conversation.
    Respond {
        /// Send the technical holding message (not when the customer was already told).
        tell: bool,
        /// Bring the team in (handoff is enabled).
        escalate: bool,
    },
}

/// The inputs of [`decide`], read under the conversation's row lock.
#[derive(Clone, Copy, Debug)]
pub struct Situation {
    pub owner: HandoffState,
    pub handoff_enabled: bool,
    /// The last thing said to the customer is a technical holding message.
    pub already_told: bool,
}

/// The failure policy; see the module documentation.
pub fn decide(s: &Situation) -> OnParked {
    if s.owner != HandoffState::Bot {
        return OnParked::LeaveToHuman;
    }
    OnParked::Respond {
        tell: !s.already_told,
        escalate: s.handoff_enabled,
    }
}

/// The escalation's reason: the failure and its last error, short enough for a subject line to
/// start with the failure.
pub fn failure_reason(max_attempts: i32, last_error: Option<&str>) -> String {
    let error = match last_error.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => {
            let e: String = e.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = e.chars().take(300).collect();
            if short.len() < e.len() {
                format!("{short}…")
            } else {
                short
            }
        }
        None => "none recorded (the turn crashed)".into(),
    };
    format!(
        "technical failure: the agent could not answer the customer's message after {max_attempts} attempts; last error: {error}"
    )
}

/// Everything [`park_exhausted`] needs.
pub struct Parking<'a> {
    pub services: &'a Services,
    pub info: &'a ConversationInfo,
    pub settings: &'a ActionSettings,
    /// Events that used up their attempts, oldest first.
    pub events: &'a [PendingEvent],
}

/// What the parking transaction wrote; report it with [`ParkReport::after_commit`] once the
/// transaction has committed.
#[derive(Clone, Debug, Default)]
pub struct ParkReport {
    /// Events this transaction parked (0: another worker got there first).
    pub parked: u64,
    pub holding_message: bool,
    pub escalated: bool,
    /// The conversation (set when events were parked) and the escalation opened, for the
    /// inbox's hints.
    pub conversation: Option<(TenantId, ConversationId)>,
    pub escalation: Option<uuid::Uuid>,
}

impl ParkReport {
    /// Counts what committed and wakes the dispatcher and the effects worker.
    pub fn after_commit(&self, services: &Services) {
        if self.parked == 0 {
            return;
        }
        metrics::counter!("switchboard_events_parked_total").increment(self.parked);
        if self.holding_message {
            metrics::counter!("switchboard_technical_holding_messages_total").increment(1);
            services.outbox_kick.notify_one();
        }
        if self.escalated {
            services.effects_kick.notify_one();
        }
        if let Some((tenant, conversation)) = self.conversation {
            use crate::inbox::{ConversationReason, InboxEvent};
            let mut events = Vec::new();
            if self.holding_message {
                events.push(InboxEvent::conversation(
                    conversation,
                    ConversationReason::Message,
                ));
            }
            if let Some(id) = self.escalation.filter(|_| self.escalated) {
                events.extend(InboxEvent::escalation_opened(id, conversation));
            }
            services.inbox.publish_all(tenant, events);
        }
    }
}

/// Parks `input.events` in `tx` and, as [`decide`] says, escalates and tells the customer —
/// all in `tx`, which the caller commits.
pub async fn park_exhausted(tx: &mut TenantTx, input: &Parking<'_>) -> Result<ParkReport, DbError> {
    let conversation = input.info.id;
    let max_attempts = input.services.config.max_attempts;
    // The conversation row first, as every turn commit and handoff transition does: it orders
    // this transaction with a concurrent reply, claim or second worker.
    let owner = handoff::ownership(tx, conversation, true).await?;
    let ids: Vec<EventId> = input.events.iter().map(|e| e.id).collect();
    let parked = turns::park(
        tx,
        &ids,
        &format!("parked after {max_attempts} failed attempts"),
    )
    .await?;
    if parked.is_empty() {
        return Ok(ParkReport::default());
    }
    let last_error = parked.iter().rev().find_map(|p| p.last_error.as_deref());
    warn!(
        events = parked.len(),
        last_error = last_error.unwrap_or("none recorded"),
        "parked events that failed repeatedly"
    );
    let mut report = ParkReport {
        parked: parked.len() as u64,
        conversation: Some((tx.tenant_id(), conversation)),
        ..ParkReport::default()
    };
    let already_told = owner.state == HandoffState::Bot
        && handoff::told_of_technical_failure(tx, conversation).await?;
    let (tell, escalate) = match decide(&Situation {
        owner: owner.state,
        handoff_enabled: input.settings.enabled(Action::Handoff),
        already_told,
    }) {
        OnParked::LeaveToHuman => {
            info!(
                owner = owner.state.as_str(),
                "a human has the conversation; parked without a bot message"
            );
            return Ok(report);
        }
        OnParked::Respond { tell, escalate } => (tell, escalate),
    };

    let parked_ids: Vec<EventId> = parked.iter().map(|p| p.id).collect();
    let text = input
        .events
        .iter()
        .filter(|e| parked_ids.contains(&e.id))
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let lang = detect_language(&text);
    let key = format!("technical:{}", crate::actions::request_key(&parked_ids));

    let mut expectation = None;
    let mut escalation_id = None;
    if escalate {
        let now = Utc::now();
        let (expect, after_hours) =
            crate::handoff::expectation(tx, input.settings, now, lang).await?;
        let actions = crate::actions::TurnActions::default();
        let ctx = TurnContext {
            services: input.services,
            tenant: tx.tenant_id(),
            tenant_name: &input.info.tenant_name,
            channel: input.info.channel_kind,
            conversation: Some(conversation),
            events: &parked_ids,
            customer_text: &text,
            // Parking escalates and tells the customer; it takes no action for the contact.
            sender: switchboard_core::model::SenderTrust::Verified,
            lang,
            settings: input.settings,
            actions: &actions,
            dry_run: false,
        };
        let (e, created) = crate::handoff::escalate(
            tx,
            &ctx,
            &crate::handoff::Opening {
                plan: &Plan {
                    trigger: Trigger::TechnicalFailure,
                    reason: failure_reason(max_attempts, last_error),
                    keep_answer: true,
                },
                request_key: &key,
                after_hours,
                lead: &LeadInfo::default(),
                now,
            },
        )
        .await?;
        report.escalated = created;
        report.escalation = Some(e.id);
        escalation_id = Some(e.id);
        expectation = Some(expect);
    }
    if tell {
        let mut metadata = json!({
            "event": TECHNICAL_HOLDING_EVENT,
            "intent": "technical_failure",
            "lang": lang.code(),
            "parked_events": parked_ids,
        });
        if let Some(id) = escalation_id {
            metadata["escalation_id"] = json!(id);
            metadata["escalation_trigger"] = json!(Trigger::TechnicalFailure.as_str());
        }
        let sent = handoff::outgoing_once(
            tx,
            conversation,
            "agent",
            &technical_holding_message(lang, expectation.as_ref()),
            metadata,
            &format!("{key}:customer"),
        )
        .await?;
        report.holding_message = sent.is_some();
    }
    info!(
        holding_message = report.holding_message,
        escalated = report.escalated,
        lang = lang.code(),
        "answered the parked events for the customer"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation(owner: HandoffState, handoff_enabled: bool, already_told: bool) -> Situation {
        Situation {
            owner,
            handoff_enabled,
            already_told,
        }
    }

    #[test]
    fn the_bot_tells_the_customer_and_escalates_when_handoff_is_on() {
        assert_eq!(
            decide(&situation(HandoffState::Bot, true, false)),
            OnParked::Respond {
                tell: true,
                escalate: true
            }
        );
    }

    #[test]
    fn without_handoff_the_customer_is_still_told() {
        assert_eq!(
            decide(&situation(HandoffState::Bot, false, false)),
            OnParked::Respond {
                tell: true,
                escalate: false
            }
        );
    }

    #[test]
    fn the_bot_never_talks_over_a_human() {
        for owner in [HandoffState::Waiting, HandoffState::Human] {
            for handoff in [true, false] {
                for told in [true, false] {
                    assert_eq!(
                        decide(&situation(owner, handoff, told)),
                        OnParked::LeaveToHuman
                    );
                }
            }
        }
    }

    #[test]
    fn a_customer_already_told_is_not_told_again_but_the_team_still_hears() {
        assert_eq!(
            decide(&situation(HandoffState::Bot, true, true)),
            OnParked::Respond {
                tell: false,
                escalate: true
            }
        );
        assert_eq!(
            decide(&situation(HandoffState::Bot, false, true)),
            OnParked::Respond {
                tell: false,
                escalate: false
            }
        );
    }

    #[test]
    fn the_reason_names_the_failure_and_the_last_error() {
        let r = failure_reason(3, Some("database error: injected\n  fault"));
        assert!(r.starts_with("technical failure"), "{r}");
        assert!(r.contains("after 3 attempts"), "{r}");
        assert!(
            r.ends_with("last error: database error: injected fault"),
            "{r}"
        );
        let long = "x".repeat(5000);
        let r = failure_reason(3, Some(&long));
        assert!(r.chars().count() < 500 && r.ends_with('…'), "{}", r.len());
        assert!(failure_reason(2, None).contains("none recorded"));
        assert!(failure_reason(2, Some("  ")).contains("none recorded"));
    }
}
