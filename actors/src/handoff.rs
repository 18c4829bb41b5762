//! Human handoff: escalations, the holding message, notifications to the sales team, reminders
//! of unclaimed escalations, and hand-back.

use switchboard_core::DbError;

use crate::Services;

/// Sends the reminders of unclaimed escalations that are due.
pub async fn send_due_reminders(_services: &Services) -> Result<(), DbError> {
    Ok(())
}
