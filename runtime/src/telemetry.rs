//! Logging setup: one subscriber for the process, `pretty` or `json`, filtered by `RUST_LOG` or
//! the configured filter. Spans on the hot path carry `tenant_id` and `conversation_id`, so one
//! message can be followed from webhook to delivery.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), which
/// keeps tests that build several applications simple.
pub fn init(format: &str, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
