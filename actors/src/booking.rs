//! Meeting booking: the booking tools of the agent loop and the offline booking dialogue.
//! (Skeleton: filled in by the booking work of issue 6.)

use std::sync::Arc;

use switchboard_core::DbError;

use crate::actions::{ActionCtx, ActionReply};
use crate::tools::Tool;

/// The booking tools (`find_slots`, `book_meeting`, …), all of action `booking`.
pub fn tools() -> Vec<Arc<dyn Tool>> {
    Vec::new()
}

/// The offline responder's booking dialogue: answers a turn that asks for a meeting, picks an
/// offered slot, or cancels / reschedules a booking; `None` when the turn is not about booking.
pub async fn offline_turn(_ctx: &ActionCtx<'_>) -> Result<Option<ActionReply>, DbError> {
    Ok(None)
}
