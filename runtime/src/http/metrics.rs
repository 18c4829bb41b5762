//! `GET /metrics`: Prometheus text format, behind the platform credential like every
//! operational surface (its `tenant` labels name tenants, so no tenant may read it).
//!
//! Two sources make one page:
//! - the process's own counters, gauges and histograms, recorded where things happen through
//!   the `metrics` facade (those labelled by tenant through `switchboard_core::metrics`, which
//!   caps how many tenants get a label of their own), and rendered by the Prometheus recorder;
//! - the pipeline's backlog, which is database state shared by every process of a cluster,
//!   read at scrape time with one statement (`platform_pipeline_backlog`, counts only, across
//!   tenants) and written after the recorder's part. Read per scrape rather than kept in
//!   process gauges, it is exact for the database this application serves, even when one
//!   process runs several applications (the tests do).
//!
//! The recorder is process-global (the `metrics` facade has one), so it is installed once and
//! shared by every application the process builds. Histograms are real Prometheus histograms
//! (buckets per family below, so they aggregate across processes), and [`upkeep`] folds their
//! samples into the buckets every few seconds, so memory stays flat when nobody scrapes.
//!
//! Every family is described here, and listed in ARCHITECTURE.md (*Metrics*).

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use switchboard_core::store::platform::{self, Backlog};
use tokio::sync::watch;
use tracing::warn;

use super::AppState;

/// Buckets of histograms not listed below (seconds).
const DEFAULT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A turn: milliseconds with the offline responder, seconds with a model and tools, up to the
/// turn timeout (60 s by default).
const TURN_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];
/// One model request: a fast local model in tens of milliseconds, a large hosted one in
/// seconds, up to the per-attempt timeout (30 s by default).
const LLM_BUCKETS: &[f64] = &[
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
];
/// A knowledge search: a cached one in microseconds, a full hybrid search in milliseconds,
/// up to the retrieval budget (at most 10 s).
const RETRIEVAL_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// Longest wait for the backlog query; past it the page is served without the backlog.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the Prometheus recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(DEFAULT_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("switchboard_turn_seconds".into()),
                    TURN_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("switchboard_llm_request_seconds".into()),
                    LLM_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("switchboard_retrieval_seconds".into()),
                    RETRIEVAL_BUCKETS,
                )
            })
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

/// Folds histogram samples into their buckets every few seconds until `shutdown` turns true
/// (the recorder keeps raw samples until then, which would grow without scrapes).
pub async fn upkeep(mut shutdown: watch::Receiver<bool>) {
    let handle = handle();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    use switchboard_core::metrics::{INBOUND_TOTAL, OUTBOUND_TOTAL, WEBHOOK_REJECTED_TOTAL};

    // Traffic, by tenant (capped: `metrics.max_tenant_labels`, then `other`) and channel.
    describe_counter!(
        INBOUND_TOTAL,
        "Inbound customer messages stored, by tenant, channel and result (accepted, duplicate, voice_untranscribed)."
    );
    describe_counter!(
        OUTBOUND_TOTAL,
        "Outbound delivery attempts, by tenant, channel and result (sent, rate_limited, retry, failed)."
    );
    describe_counter!(
        WEBHOOK_REJECTED_TOTAL,
        "Webhooks refused before anything was stored, by tenant, channel and reason (missing_signature, bad_signature, stale_timestamp, bad_token, replayed_token, malformed)."
    );
    describe_counter!(
        "switchboard_unknown_channel_total",
        "Requests for a channel id that does not exist, by whether the answer came from the cache."
    );
    describe_counter!(
        "switchboard_delivery_reports_total",
        "Delivery reports from providers (status webhooks) by channel and state."
    );
    describe_counter!(
        "switchboard_redeliveries_total",
        "Outbox rows delivered again after an interrupted attempt (possible duplicates)."
    );
    describe_counter!(
        "switchboard_rate_limited_total",
        "Requests and work refused or put off by a limit, by what (webchat_post, webchat_stream, send_cap, turn_budget, sign_in)."
    );

    // Turns.
    describe_counter!("switchboard_turns_total", "Agent turns by outcome.");
    describe_histogram!(
        "switchboard_turn_seconds",
        Unit::Seconds,
        "Duration of answered turns, from the end of the debounce to the committed reply."
    );
    describe_counter!(
        "switchboard_events_parked_total",
        "Inbound events parked after repeated failures."
    );
    describe_counter!(
        "switchboard_technical_holding_messages_total",
        "Messages telling a customer the agent gave up on their message after repeated technical failures (sent once per parking, with the escalation when handoff is enabled)."
    );
    describe_counter!(
        "switchboard_escalations_total",
        "Escalations to the human team, by trigger."
    );

    // Knowledge.
    describe_histogram!(
        "switchboard_retrieval_seconds",
        Unit::Seconds,
        "Duration of knowledge retrievals, by source (search, cache)."
    );
    describe_counter!(
        "switchboard_retrievals_total",
        "Knowledge retrievals of turns, by source (search, cache)."
    );
    describe_counter!(
        "switchboard_query_vectors_total",
        "Query embeddings, by source (model, cache)."
    );
    describe_counter!(
        "switchboard_retrieval_failures_total",
        "Turns answered without knowledge because retrieval failed, by reason (error, timeout)."
    );

    // The model.
    describe_histogram!(
        "switchboard_llm_request_seconds",
        Unit::Seconds,
        "Duration of single model requests (each retry is one), by outcome (ok, error)."
    );
    describe_counter!(
        "switchboard_llm_errors_total",
        "Failed model requests by kind (rate_limited, server_error, client_error, timeout, connect, decode, circuit_open, invalid)."
    );
    describe_counter!(
        "switchboard_llm_tokens_total",
        "Model tokens used, by kind (prompt, completion)."
    );
    describe_counter!(
        "switchboard_llm_fallbacks_total",
        "Model calls that went on to the fallback model."
    );
    describe_counter!(
        "switchboard_llm_degraded_total",
        "Turns answered by the offline responder because the model failed, by reason."
    );
    describe_counter!(
        "switchboard_llm_prompt_leaks_blocked_total",
        "Model replies replaced because they quoted the system prompt."
    );
    describe_counter!(
        "switchboard_tool_calls_total",
        "Tool calls of the model, by whether they succeeded."
    );
    describe_counter!(
        "switchboard_budget_exhausted_alerts_total",
        "Monthly token budgets used up (one alert per tenant and month)."
    );
    describe_counter!(
        "switchboard_budget_fallback_replies_total",
        "Replies given without the model because the tenant's token budget was used up."
    );

    // Effects, actors, the process.
    describe_counter!(
        "switchboard_effects_total",
        "Effects (notifications, invitations, CRM webhooks) by kind and result."
    );
    describe_counter!(
        "switchboard_effect_redeliveries_total",
        "Effects attempted again after an interrupted attempt (possible duplicates)."
    );
    describe_gauge!(
        "switchboard_live_actors",
        "Live actors of this process, by actor (conversation, tenant)."
    );
    describe_counter!(
        "switchboard_actor_restarts_total",
        "Supervisor restarts by actor kind."
    );
    describe_counter!(
        "switchboard_embedded_postgres_restarts_total",
        "Deaths of the embedded PostgreSQL after which it was started again."
    );
    describe_counter!(
        "switchboard_audit_failures_total",
        "Audit entries that could not be written."
    );
}

/// The process's metrics, then the pipeline's backlog, in Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let mut page = handle().render();
    match tokio::time::timeout(BACKLOG_TIMEOUT, platform::backlog(state.services.db.pool())).await {
        Ok(Ok(backlog)) => write_backlog(&mut page, &backlog),
        Ok(Err(e)) => warn!(error = %e, "could not read the pipeline's backlog for /metrics"),
        Err(_) => warn!(
            timeout = ?BACKLOG_TIMEOUT,
            "reading the pipeline's backlog for /metrics took too long"
        ),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page,
    )
}

/// Appends the backlog gauges (database state, the same in every process of a cluster: take
/// `max`, not `sum`, across instances).
fn write_backlog(page: &mut String, b: &Backlog) {
    let gauges: [(&str, &str, f64); 5] = [
        (
            "switchboard_outbox_backlog",
            "Outbound messages not yet delivered (pending, deferred, or being sent), all tenants.",
            b.outbox as f64,
        ),
        (
            "switchboard_outbox_oldest_age_seconds",
            "Age of the oldest outbound message not yet delivered (0 when none).",
            b.outbox_oldest_seconds,
        ),
        (
            "switchboard_inbound_events_pending",
            "Inbound events waiting for a turn, all tenants.",
            b.events_pending as f64,
        ),
        (
            "switchboard_events_parked",
            "Inbound events parked after repeated failures and not yet retried by an admin, all tenants.",
            b.events_parked as f64,
        ),
        (
            "switchboard_effects_backlog",
            "Effects (notifications, invitations, CRM webhooks) not yet done, all tenants.",
            b.effects as f64,
        ),
    ];
    if !page.is_empty() && !page.ends_with('\n') {
        page.push('\n');
    }
    for (name, help, value) in gauges {
        // Writing to a String does not fail.
        let _ = write!(
            page,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_is_written_as_gauges_in_the_text_format() {
        let mut page = "switchboard_turns_total{outcome=\"answered\"} 3".to_owned();
        write_backlog(
            &mut page,
            &Backlog {
                outbox: 4,
                outbox_oldest_seconds: 12.5,
                events_pending: 0,
                events_parked: 2,
                effects: 1,
            },
        );
        assert!(page.contains("answered\"} 3\n# HELP switchboard_outbox_backlog "));
        assert!(page
            .contains("# TYPE switchboard_outbox_backlog gauge\nswitchboard_outbox_backlog 4\n"));
        assert!(page.contains("switchboard_outbox_oldest_age_seconds 12.5\n"));
        assert!(page.contains("switchboard_events_parked 2\n"));
        assert!(page.contains("switchboard_inbound_events_pending 0\n"));
        assert!(page.contains("switchboard_effects_backlog 1\n"));
    }
}
