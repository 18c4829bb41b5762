//! Switchboard's integration tests: one binary, run against a real embedded PostgreSQL with
//! pgvector (started once per test run; every test gets a fresh database cloned from a migrated
//! template), the real HTTP server on a free port, and — for crash tests — the real binary.

mod fake_provider;
mod helpers;

mod admin;
mod analytics;
mod bad_input;
mod bench;
mod bookings;
mod brain;
mod channels_email;
mod channels_telegram;
mod channels_twilio;
mod channels_whatsapp;
mod chaos;
mod cli;
mod console;
mod crash;
mod dispatcher;
mod egress;
mod embedded;
mod group_commit;
mod handoff;
mod identity;
mod inbox;
mod knowledge;
mod leads;
mod limits;
mod memory;
mod metrics;
mod openapi;
mod pipeline;
mod portable;
mod resilience;
mod tenancy;
mod webchat;
