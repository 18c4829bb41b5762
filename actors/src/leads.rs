//! Lead capture: contact fields, the lead score with its reasons, and the CRM webhook.
//! (Skeleton: filled in by the lead-capture work of issue 6.)

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::DbError;

use crate::actions::ActionCtx;
use crate::tools::Tool;

/// The lead tools (`capture_lead`), of action `leads`.
pub fn tools() -> Vec<Arc<dyn Tool>> {
    Vec::new()
}

/// The lead as it stands after a turn.
#[derive(Clone, Debug, Default)]
pub struct LeadState {
    /// 0–100, when scored.
    pub score: Option<i32>,
    pub reasons: Vec<String>,
    /// Contact fields for notifications (`name`, `email`, `phone`, `company`, `interest`).
    pub fields: Value,
}

/// Reads lead details the customer gave in `ctx.customer_text` (offline: email, phone, name,
/// company), stores them, rescores, and enqueues the CRM webhook when the lead changed.
pub async fn observe(_ctx: &ActionCtx<'_>) -> Result<LeadState, DbError> {
    Ok(LeadState::default())
}

/// The current lead state of the conversation's contact (for notifications and rules).
pub async fn current(_ctx: &ActionCtx<'_>) -> Result<LeadState, DbError> {
    Ok(LeadState::default())
}
