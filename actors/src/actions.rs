//! What a turn does besides replying: the shared vocabulary of the actions (booking, handoff,
//! lead capture) and the `escalate` tool.
//!
//! Tools run while the model thinks, before the turn commits. Effects that must commit with the
//! reply (an escalation and its notifications) are therefore *requested* here, in
//! [`TurnActions`], and carried out by the turn inside its final transaction; effects that must
//! be decided while the model is still talking (a booking: is the slot free?) happen in the tool
//! itself under an idempotency key derived from the request ([`crate::context::TurnContext::request_key`]), so a turn redone after a crash finds them instead of repeating them.

use std::sync::Mutex;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_channels::Choice;
use switchboard_core::store::actions::Action;
use switchboard_core::EventId;

use crate::tools::{ToolError, TurnContext, TypedTool};

/// What tools asked of the turn, collected while it thinks.
#[derive(Debug, Default)]
pub struct TurnActions(Mutex<Requested>);

#[derive(Clone, Debug, Default)]
pub struct Requested {
    /// A human should take over, for this reason.
    pub escalate: Option<String>,
    /// Choices to attach to the reply (reply buttons where the channel has them).
    pub choices: Vec<Choice>,
    /// Facts for the reply's metadata (`booking_id`, …).
    pub metadata: serde_json::Map<String, Value>,
}

impl TurnActions {
    pub fn escalate(&self, reason: &str) {
        let mut r = self.0.lock().expect("turn actions");
        if r.escalate.is_none() {
            r.escalate = Some(reason.chars().take(500).collect());
        }
    }
    pub fn offer(&self, choices: Vec<Choice>) {
        self.0.lock().expect("turn actions").choices = choices;
    }
    pub fn note(&self, key: &str, value: Value) {
        self.0
            .lock()
            .expect("turn actions")
            .metadata
            .insert(key.to_owned(), value);
    }
    pub fn take(&self) -> Requested {
        std::mem::take(&mut *self.0.lock().expect("turn actions"))
    }
}

/// The key of a request made of `events`: its first event's id.
pub fn request_key(events: &[EventId]) -> String {
    events
        .first()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "none".into())
}

/// A reply produced by an action flow instead of the knowledge responder.
#[derive(Clone, Debug)]
pub struct ActionReply {
    pub text: String,
    pub choices: Vec<Choice>,
    /// `meeting`, `booking_confirmed`, …
    pub intent: String,
    pub metadata: Value,
}

/// `escalate_to_human`: brings in the sales team.
pub struct Escalate;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateArgs {
    /// Why a human is needed, for the sales team.
    #[schemars(length(min = 1, max = 500))]
    reason: String,
}

impl TypedTool for Escalate {
    type Args = EscalateArgs;
    fn name(&self) -> &'static str {
        "escalate_to_human"
    }
    fn action(&self) -> Option<Action> {
        Some(Action::Handoff)
    }
    fn description(&self) -> &'static str {
        "Hand the conversation to a human from the sales team: when the customer asks for a \
         person, when you cannot help, or when a qualified lead should talk to sales. The \
         customer is told a colleague will reply; you stop answering until the human hands the \
         conversation back. Give a short reason for the team."
    }
    fn run<'a>(
        &'a self,
        ctx: &'a TurnContext<'a>,
        a: EscalateArgs,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let reason = a.reason.trim();
            if ctx.dry_run || ctx.conversation.is_none() {
                return Ok(json!({"escalated": false, "dry_run": true, "reason": reason}));
            }
            ctx.actions.escalate(reason);
            Ok(json!({
                "escalated": true,
                "note": "A human from the sales team will take over. Tell the customer briefly; \
                         the holding message with the expected wait is added for you."
            }))
        })
    }
}
