//! Channel adapters. Each channel kind turns provider requests into the common
//! [`InboundMessage`](switchboard_core::model::InboundMessage) and delivers the common outbound
//! message through the provider. Adapters verify and parse; they never touch the database —
//! storing and routing belong to the runtime and the actors.
//!
//! Adding a channel kind means adding its module and one arm in [`Outbound::send`].

pub mod outbound;
pub mod webchat;

pub use outbound::{Outbound, OutboundMessage, SendError, SendReceipt};
