//! [`TurnContext`]: what a turn is about, as every step acting for it sees it — the rules, the
//! offline booking dialogue, lead capture, the model and its tools, the escalation. One value,
//! built once per turn from what the turn gathered (and once per preview, without a
//! conversation).

use switchboard_core::model::{ChannelKind, SenderTrust};
use switchboard_core::store::actions::{Action, ActionSettings};
use switchboard_core::{ConversationId, Db, EventId, TenantId};
use switchboard_knowledge::Embedders;
use switchboard_prompts::Lang;

use crate::actions::TurnActions;
use crate::Services;

/// The turn (or preview) being answered.
pub struct TurnContext<'a> {
    pub services: &'a Services,
    pub tenant: TenantId,
    pub tenant_name: &'a str,
    pub channel: ChannelKind,
    /// `None` in previews, which answer a text outside any conversation.
    pub conversation: Option<ConversationId>,
    /// The events this turn answers, oldest first (none in previews); the first one keys the
    /// turn's effects (see [`TurnContext::request_key`]).
    pub events: &'a [EventId],
    /// The customer's messages of this turn, joined.
    pub customer_text: &'a str,
    /// Whether they come from the contact on file. An unverified turn (email from another
    /// address into the contact's thread, or whose provider checks failed) does nothing only
    /// the contact may do: the tools that would are not offered
    /// ([`crate::tools::Tool::owner_only`]), the booking dialogue neither cancels nor moves, and
    /// lead capture changes no contact field.
    pub sender: SenderTrust,
    /// The language the customer wrote in (replies, holding messages and tool results use it).
    pub lang: Lang,
    /// The tenant's action settings: which actions are enabled, the handoff rules.
    pub settings: &'a ActionSettings,
    /// Where tools leave what the turn must do besides replying (escalate, offer choices).
    pub actions: &'a TurnActions,
    /// Previews: tools report what they would change and change nothing.
    pub dry_run: bool,
}

impl TurnContext<'_> {
    pub fn db(&self) -> &Db {
        &self.services.db
    }

    pub fn embedders(&self) -> &Embedders {
        &self.services.embedders
    }

    /// Whether the tenant enabled `action`.
    pub fn enabled(&self, action: Action) -> bool {
        self.settings.enabled(action)
    }

    /// The key of the request this turn answers: its first event's id. Effects are keyed by it,
    /// so a turn redone after a crash finds what its first run did instead of repeating it.
    /// `None` in previews.
    pub fn request_key(&self) -> Option<String> {
        self.conversation?;
        self.events.first().map(|e| e.to_string())
    }
}
