//! The Switchboard runtime: configuration, telemetry, the embedded database, the HTTP surface
//! and the application that wires them to the actor tree. This is the only crate that knows
//! about HTTP, configuration files, signals and processes; `main.rs` only parses the command line.

pub mod app;
pub mod auth;
pub mod bench;
pub mod bench_kb;
pub mod channels;
pub mod chat;
pub mod config;
pub mod demo;
pub mod email_polling;
pub mod embedded_pg;
pub mod http;
pub mod kb;
pub mod knowledge;
pub mod pollers;
pub mod preflight;
pub mod telegram_polling;
pub mod telemetry;
pub mod tenants;
pub mod users;

pub use app::{Application, BuildOptions};
pub use config::Settings;
