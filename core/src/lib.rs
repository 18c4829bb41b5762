//! Shared vocabulary of Switchboard: typed ids, domain types, and the tenant-scoped store.
//!
//! Every crate that touches the database goes through [`db::Db`], which hands out
//! [`db::TenantTx`] transactions with the tenant already set for row-level security. There is
//! deliberately no API that runs a tenant query without a tenant; the few cross-tenant operations
//! the platform needs are the `platform_*` methods, backed by narrow SQL functions.

pub mod availability;
pub mod batch;
pub mod db;
pub mod egress;
pub mod ics;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod retry;
pub mod secrets;
pub mod store;
pub mod validate;

pub use db::{Db, DbError, TenantTx};
pub use ids::{
    ChannelId, ContactId, ConversationId, EventId, MessageId, OutboxId, TenantId, TurnId,
};
pub use secrets::{MasterKey, SecretError};
