//! Channel adapters. Each channel kind turns provider requests into the common
//! [`InboundMessage`](switchboard_core::model::InboundMessage) and delivers the common outbound
//! message through the provider. Adapters verify and parse; they never touch the database and
//! know no HTTP server types — storing and routing belong to the runtime and the actors.
//!
//! Adding a channel kind means adding its module, its variant in [`ChannelSettings`] (settings,
//! secret fields, webhook) and one arm in [`Outbound::send`].

pub mod email;
pub mod email_imap;
pub mod limits;
pub mod outbound;
pub mod settings;
pub mod speech;
pub mod telegram;
pub mod transcript;
pub mod twilio;
pub mod webchat;
pub mod webhook;
pub mod whatsapp;

pub use outbound::{Choice, Delivery, Outbound, OutboundMessage, SendError, SendReceipt};
pub use settings::{secret_fields, split_secrets, webhook_path, ChannelSettings, InvalidSettings};
pub use webhook::{
    DeliveryState, Headers, InboundItem, Nonce, Rejection, Reply, Response, StatusUpdate,
    WebhookError, WebhookOutput, WebhookRequest,
};
