//! The turn's rules, as pure functions of what it gathered: who answers, whether a human is
//! brought in, and what the reply brings about at commit. No IO, so every rule is tested
//! without a database (see the tests below); [`super::run`] reads the inputs and acts.

use switchboard_core::model::SenderTrust;
use switchboard_core::store::actions::{Action, ActionSettings};
use switchboard_core::store::handoff::HandoffState;
use switchboard_prompts::handoff::matching_keyword;
use switchboard_prompts::{detect_intent, Intent};

use crate::handoff::{Plan, Trigger};
use crate::ResponderMode;

/// What [`decide`] weighs.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub mode: ResponderMode,
    /// Who owns the conversation now.
    pub owner: HandoffState,
    /// The customer's messages of this turn, joined.
    pub customer_text: &'a str,
    pub settings: &'a ActionSettings,
    /// The tenant answers without a model (the offline responder).
    pub offline: bool,
    /// The conversation has an open booking offer the customer may be picking from.
    pub has_booking_offer: bool,
    /// An earlier attempt at these events failed or was interrupted (its effects may exist).
    pub redone: bool,
    /// Whether the messages come from the contact on file.
    pub sender: SenderTrust,
}

/// What a turn does, decided before anyone thinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A human owns the conversation (or is being waited for): the events are taken without a
    /// reply, and wait in the transcript for the human.
    Silent,
    /// Bring a human in now, before anyone thinks: the holding message is the reply.
    Handoff(Plan),
    /// Answer with the customer's own text: the echo responder, which measures the durable
    /// pipeline alone (no rules, no knowledge, no leads).
    Echo,
    /// Answer from the knowledge: the offline booking dialogue first when it may have something
    /// to say (it reads the availability), else the responder — the model or the offline one.
    Answer { booking_dialogue: bool },
    /// The customer asks to cancel or move a booking, but the sender is not verified as the
    /// contact on file: a fixed answer that such changes must come from the address on file,
    /// whoever would have answered (neither the dialogue nor a model is asked).
    OwnerOnly,
}

impl Decision {
    /// Whether the turn reads knowledge to ground its answer.
    pub fn grounds(&self) -> bool {
        matches!(self, Decision::Answer { .. })
    }
}

/// The turn's first rule set: silence under a human, the customer's request for a person or a
/// handoff keyword, the echo responder, a booking change asked by an unverified sender, and
/// whether the booking dialogue may answer.
pub fn decide(f: &Facts<'_>) -> Decision {
    if f.owner != HandoffState::Bot {
        return Decision::Silent;
    }
    if f.mode == ResponderMode::Echo {
        return Decision::Echo;
    }
    if f.settings.enabled(Action::Handoff) {
        if detect_intent(f.customer_text) == Intent::Human {
            return Decision::Handoff(Plan {
                trigger: Trigger::Customer,
                reason: "the customer asked to talk to a person".into(),
                keep_answer: false,
            });
        }
        if let Some(k) = matching_keyword(f.customer_text, &f.settings.handoff_keywords) {
            return Decision::Handoff(Plan {
                trigger: Trigger::Keyword,
                reason: format!("the customer's message contains the keyword \"{k}\""),
                keep_answer: false,
            });
        }
    }
    if !f.sender.is_verified()
        && f.settings.enabled(Action::Booking)
        && switchboard_prompts::booking::booking_request(f.customer_text).is_some()
    {
        return Decision::OwnerOnly;
    }
    Decision::Answer {
        booking_dialogue: f.offline
            && f.settings.enabled(Action::Booking)
            && crate::booking::may_answer(f.customer_text, f.has_booking_offer, f.redone),
    }
}

/// A tool asked for a human while the model thought: that is the plan, unless one was made
/// before thinking or handoff is disabled.
pub fn after_tools(
    settings: &ActionSettings,
    plan: Option<Plan>,
    tool_escalation: Option<String>,
) -> Option<Plan> {
    match (plan, tool_escalation) {
        (Some(p), _) => Some(p),
        (None, Some(reason)) if settings.enabled(Action::Handoff) => Some(Plan {
            trigger: Trigger::Tool,
            reason,
            keep_answer: false,
        }),
        _ => None,
    }
}

/// Whether the reply counts as a failure to answer (towards the repeated-failure rule): an
/// answered question the knowledge could not ground, and no action did anything about it.
pub fn unanswered(
    decision: &Decision,
    plan: Option<&Plan>,
    intent: &str,
    grounded: bool,
    acted: bool,
) -> bool {
    decision.grounds() && plan.is_none() && intent == "question" && !grounded && !acted
}

/// What the turn's reply may bring about at commit, known before the commit reads the
/// conversation's failure count: nothing (the commit needs no rule), or a rule to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtCommit {
    Nothing,
    /// Weigh [`at_commit`] with the failure count the commit reads.
    Weigh,
}

/// See [`AtCommit`]: the failure rule can only fire after a failure (with a limit set), the
/// lead rule only with a score at the threshold.
pub fn before_commit(
    decision: &Decision,
    settings: &ActionSettings,
    plan: Option<&Plan>,
    failed: bool,
    lead_score: Option<i32>,
) -> AtCommit {
    let lead = matches!(
        (settings.lead_score_threshold, lead_score),
        (Some(t), Some(s)) if s >= t
    );
    if decision.grounds()
        && plan.is_none()
        && settings.enabled(Action::Handoff)
        && ((failed && settings.max_failed_answers > 0) || lead)
    {
        AtCommit::Weigh
    } else {
        AtCommit::Nothing
    }
}

/// The rules weighed at commit, with the conversation's failure count after this reply: too
/// many unanswered messages in a row bring a human in; so does a qualified lead — unless it
/// was escalated as one before, which the caller checks for a [`Trigger::LeadScore`] plan.
/// The answer is kept and the team's follow-up added.
pub fn at_commit(
    settings: &ActionSettings,
    failures: i32,
    lead_score: Option<i32>,
) -> Option<Plan> {
    let limit = settings.max_failed_answers;
    if limit > 0 && failures >= limit {
        return Some(Plan {
            trigger: Trigger::Failures,
            reason: format!("the agent could not answer {failures} messages in a row"),
            keep_answer: true,
        });
    }
    match (settings.lead_score_threshold, lead_score) {
        (Some(t), Some(score)) if score >= t => Some(Plan {
            trigger: Trigger::LeadScore,
            reason: format!("a qualified lead (score {score} ≥ {t})"),
            keep_answer: true,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(enabled: &[&str]) -> ActionSettings {
        ActionSettings {
            enabled: enabled.iter().map(|s| s.to_string()).collect(),
            handoff_keywords: vec!["refund".into()],
            ..ActionSettings::default()
        }
    }

    fn facts<'a>(text: &'a str, s: &'a ActionSettings) -> Facts<'a> {
        Facts {
            mode: ResponderMode::Agent,
            owner: HandoffState::Bot,
            customer_text: text,
            settings: s,
            offline: true,
            has_booking_offer: false,
            redone: false,
            sender: SenderTrust::Verified,
        }
    }

    #[test]
    fn a_human_owner_silences_the_bot_whatever_is_asked() {
        let s = settings(&["booking", "handoff", "leads"]);
        for owner in [HandoffState::Waiting, HandoffState::Human] {
            for text in ["I want a person", "what are your hours?", "book a meeting"] {
                let f = Facts {
                    owner,
                    ..facts(text, &s)
                };
                assert_eq!(decide(&f), Decision::Silent);
                let echo = Facts {
                    mode: ResponderMode::Echo,
                    ..f
                };
                assert_eq!(decide(&echo), Decision::Silent);
            }
        }
    }

    #[test]
    fn asking_for_a_person_or_a_keyword_hands_off_only_when_enabled() {
        let on = settings(&["handoff"]);
        let Decision::Handoff(p) = decide(&facts("I want to talk to a human please", &on)) else {
            panic!("no handoff");
        };
        assert_eq!(p.trigger, Trigger::Customer);
        assert!(!p.keep_answer);
        let Decision::Handoff(p) = decide(&facts("I need a REFUND now", &on)) else {
            panic!("no keyword handoff");
        };
        assert_eq!(p.trigger, Trigger::Keyword);
        assert!(p.reason.contains("refund"), "{}", p.reason);

        let off = settings(&["booking", "leads"]);
        assert!(decide(&facts("I want to talk to a human please", &off)).grounds());
        assert!(decide(&facts("I need a refund", &off)).grounds());
        // Arabic: «أريد التحدث مع موظف» (I want to talk to an employee).
        assert!(matches!(
            decide(&facts("أريد التحدث مع موظف", &on)),
            Decision::Handoff(_)
        ));
    }

    #[test]
    fn echo_skips_every_rule() {
        let s = settings(&["booking", "handoff", "leads"]);
        let f = Facts {
            mode: ResponderMode::Echo,
            ..facts("I want a person, and a refund", &s)
        };
        assert_eq!(decide(&f), Decision::Echo);
        assert!(!Decision::Echo.grounds());
    }

    #[test]
    fn the_booking_dialogue_runs_offline_when_it_may_answer() {
        let s = settings(&["booking"]);
        let ask = "Can I book a meeting tomorrow?";
        assert_eq!(
            decide(&facts(ask, &s)),
            Decision::Answer {
                booking_dialogue: true
            }
        );
        // A plain question has nothing for it, unless an offer is open or the turn is redone.
        let q = "What are your opening hours?";
        assert_eq!(
            decide(&facts(q, &s)),
            Decision::Answer {
                booking_dialogue: false
            }
        );
        for f in [
            Facts {
                has_booking_offer: true,
                ..facts(q, &s)
            },
            Facts {
                redone: true,
                ..facts(q, &s)
            },
        ] {
            assert_eq!(
                decide(&f),
                Decision::Answer {
                    booking_dialogue: true
                }
            );
        }
        // A model answers bookings with its tools; a disabled action has no dialogue.
        let model = Facts {
            offline: false,
            ..facts(ask, &s)
        };
        let disabled = settings(&["handoff"]);
        for f in [model, facts(ask, &disabled)] {
            assert_eq!(
                decide(&f),
                Decision::Answer {
                    booking_dialogue: false
                }
            );
        }
    }

    #[test]
    fn an_unverified_sender_asking_to_change_a_booking_gets_the_owner_only_answer() {
        let s = settings(&["booking", "handoff"]);
        let unverified = |text| Facts {
            sender: SenderTrust::Unverified,
            ..facts(text, &s)
        };
        for text in [
            "Please cancel my appointment",
            "Can we reschedule the meeting?",
            "إلغاء الموعد لو سمحت",
        ] {
            assert_eq!(decide(&unverified(text)), Decision::OwnerOnly, "{text}");
            // The model answers with the same refusal: nobody is asked.
            let model = Facts {
                offline: false,
                ..unverified(text)
            };
            assert_eq!(decide(&model), Decision::OwnerOnly, "{text}");
            assert!(!Decision::OwnerOnly.grounds());
            // From the contact on file it is an ordinary booking turn.
            assert_eq!(
                decide(&facts(text, &s)),
                Decision::Answer {
                    booking_dialogue: true
                }
            );
        }
        // Questions and new meetings are answered as for anyone.
        assert_eq!(
            decide(&unverified("Can I book a consultation?")),
            Decision::Answer {
                booking_dialogue: true
            }
        );
        assert!(decide(&unverified("What are your opening hours?")).grounds());
        // A person asked for is still brought in; without booking there is nothing to refuse.
        assert!(matches!(
            decide(&unverified(
                "Cancel my appointment, I want to talk to a human"
            )),
            Decision::Handoff(_)
        ));
        let no_booking = settings(&["handoff"]);
        let f = Facts {
            sender: SenderTrust::Unverified,
            ..facts("Please cancel my appointment", &no_booking)
        };
        assert!(f.settings.enabled(Action::Handoff));
        assert!(decide(&f).grounds());
    }

    #[test]
    fn a_tool_escalation_becomes_the_plan_unless_one_exists_or_handoff_is_off() {
        let on = settings(&["handoff"]);
        let p = after_tools(&on, None, Some("angry customer".into())).unwrap();
        assert_eq!(
            (p.trigger, p.reason.as_str()),
            (Trigger::Tool, "angry customer")
        );
        let first = Plan {
            trigger: Trigger::Keyword,
            reason: "k".into(),
            keep_answer: false,
        };
        assert_eq!(
            after_tools(&on, Some(first.clone()), Some("x".into())),
            Some(first)
        );
        assert_eq!(after_tools(&on, None, None), None);
        assert_eq!(after_tools(&settings(&[]), None, Some("x".into())), None);
    }

    #[test]
    fn only_an_ungrounded_unhandled_question_counts_as_unanswered() {
        let answer = Decision::Answer {
            booking_dialogue: false,
        };
        assert!(unanswered(&answer, None, "question", false, false));
        assert!(!unanswered(&answer, None, "question", true, false));
        assert!(!unanswered(&answer, None, "question", false, true));
        assert!(!unanswered(&answer, None, "greeting", false, false));
        let plan = Plan {
            trigger: Trigger::Tool,
            reason: "r".into(),
            keep_answer: false,
        };
        assert!(!unanswered(&answer, Some(&plan), "question", false, false));
        assert!(!unanswered(&Decision::Echo, None, "question", false, false));
    }

    #[test]
    fn commit_rules_are_weighed_only_when_they_can_fire() {
        let mut s = settings(&["handoff"]);
        s.max_failed_answers = 2;
        s.lead_score_threshold = Some(60);
        let answer = Decision::Answer {
            booking_dialogue: false,
        };
        assert_eq!(
            before_commit(&answer, &s, None, false, Some(10)),
            AtCommit::Nothing
        );
        assert_eq!(
            before_commit(&answer, &s, None, true, None),
            AtCommit::Weigh
        );
        assert_eq!(
            before_commit(&answer, &s, None, false, Some(60)),
            AtCommit::Weigh
        );
        assert_eq!(
            before_commit(&Decision::Echo, &s, None, true, Some(90)),
            AtCommit::Nothing
        );
        let off = ActionSettings {
            max_failed_answers: 2,
            lead_score_threshold: Some(60),
            ..settings(&["leads"])
        };
        assert_eq!(
            before_commit(&answer, &off, None, true, Some(90)),
            AtCommit::Nothing
        );

        assert_eq!(at_commit(&s, 1, Some(10)), None);
        let p = at_commit(&s, 2, Some(90)).unwrap();
        assert_eq!(p.trigger, Trigger::Failures, "failures win over the lead");
        assert!(p.keep_answer);
        assert_eq!(
            at_commit(&s, 0, Some(75)).unwrap().trigger,
            Trigger::LeadScore
        );
        s.max_failed_answers = 0;
        assert_eq!(at_commit(&s, 9, None), None, "0 disables the failure rule");
    }
}
