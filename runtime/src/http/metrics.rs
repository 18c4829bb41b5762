//! `GET /metrics`: Prometheus text format, behind the admin token like every operational
//! surface. Metrics carry no tenant labels, so they never reveal one tenant to another.
//!
//! The recorder is process-global (the `metrics` facade has one), so it is installed once and
//! shared by every application the process builds (tests build many).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the Prometheus recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "switchboard_inbound_total",
        "Inbound messages by channel and result (accepted, duplicate)."
    );
    describe_counter!("switchboard_turns_total", "Agent turns by outcome.");
    describe_histogram!(
        "switchboard_turn_seconds",
        Unit::Seconds,
        "Duration of answered turns."
    );
    describe_counter!(
        "switchboard_deliveries_total",
        "Outbound deliveries by channel and result (sent, retry, failed)."
    );
    describe_counter!(
        "switchboard_webhook_rejected_total",
        "Webhooks refused before anything was stored, by channel kind and reason (missing_signature, bad_signature, stale_timestamp, malformed)."
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
        "switchboard_events_parked_total",
        "Inbound events parked after repeated failures."
    );
    describe_counter!(
        "switchboard_technical_holding_messages_total",
        "Messages telling a customer the agent gave up on their message after repeated technical failures (sent once per parking, with the escalation when handoff is enabled)."
    );
    describe_counter!(
        "switchboard_retrieval_failures_total",
        "Turns answered without knowledge because retrieval failed, by reason (error, timeout)."
    );
    describe_counter!(
        "switchboard_actor_restarts_total",
        "Supervisor restarts by actor kind."
    );
    describe_counter!(
        "switchboard_embedded_postgres_restarts_total",
        "Deaths of the embedded PostgreSQL after which it was started again."
    );
    describe_gauge!(
        "switchboard_conversation_agents",
        "Live conversation actors."
    );
}

/// The process's metrics in Prometheus text format (no tenant labels).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn render() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle().render(),
    )
}
