//! Repository functions, one module per concern. Each takes a [`TenantTx`](crate::TenantTx)
//! (tenant data) or the pool (the `platform` module only), never a bare connection.

pub mod actions;
pub mod agent;
pub mod analytics;
pub mod audit;
pub mod bookings;
pub mod channels;
pub mod contacts;
pub mod effects;
pub mod group;
pub mod handoff;
pub mod identity;
pub mod inbox;
pub mod ingest;
pub mod leads;
pub mod memory;
pub mod messages;
pub mod outbox;
pub mod platform;
pub mod prompts;
pub mod turns;
pub mod usage;
pub mod webhook_tokens;
