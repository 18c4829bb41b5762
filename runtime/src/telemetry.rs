//! Logging and trace export: one subscriber for the process.
//!
//! Logs go to stderr, `pretty` or `json`, filtered by `RUST_LOG` or the configured filter.
//! Spans on the hot path carry `tenant_id` and `conversation_id`, so one message can be
//! followed from webhook to delivery.
//!
//! The same spans can leave as OpenTelemetry traces over OTLP/HTTP (protobuf) when `serve` is
//! given a collector: `telemetry.otlp_endpoint`, or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (the base URL, `/v1/traces` appended) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
//! with the rest of the standard variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*`,
//! `OTEL_SDK_DISABLED`). Spans are batched by a task on the tokio runtime and sent with the
//! reqwest client the build already has; [`Telemetry::shutdown`] sends what is left. With no
//! endpoint nothing of this exists: no layer, no task, no connection.
//!
//! Traces have their own filter (`telemetry.trace_filter`), so quiet logs (`RUST_LOG=warn`)
//! do not empty the traces.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetrySettings;

/// The service name when neither the settings nor the environment give one.
const DEFAULT_SERVICE_NAME: &str = "switchboard";
/// Which spans are exported unless `telemetry.trace_filter` says otherwise.
const DEFAULT_TRACE_FILTER: &str = "info,sqlx=warn,ractor=warn";

/// What [`init`] set up; hold it while the process runs and [`shutdown`](Self::shutdown) it
/// at the end, so the spans of the last seconds are sent.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// The trace pipeline, when spans are exported.
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still batched and stops the exporter. Blocks until the batch task has
    /// answered, so call it outside async code, with the tokio runtime still running.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: could not send the last traces: {e}");
            }
        }
    }
}

/// Installs the global subscriber: logs as `format` (`pretty` or `json`) filtered by
/// `RUST_LOG` or `filter`, plus trace export when `traces` is given and an endpoint is
/// configured (see the module doc). Trace export spawns its batch task, so call this inside
/// a tokio runtime when `traces` is given. A second call installs nothing (tests build several
/// applications) and exports nothing.
pub fn init(format: &str, filter: &str, traces: Option<&TelemetrySettings>) -> Telemetry {
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if format == "json" {
        logs.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(log_filter)
            .boxed()
    } else {
        logs.compact().with_filter(log_filter).boxed()
    };
    let mut problem = None;
    let provider = traces
        .and_then(|t| otlp_target(t, &|k| std::env::var(k).ok()))
        .and_then(|target| match exporter(&target) {
            Ok(provider) => Some(provider),
            Err(e) => {
                problem = Some(e);
                None
            }
        });
    let spans = provider.as_ref().map(|p| {
        let filter = traces
            .and_then(|t| t.trace_filter.as_deref())
            .unwrap_or(DEFAULT_TRACE_FILTER);
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("switchboard"))
            .with_filter(EnvFilter::new(filter))
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok();
    if let Some(e) = problem {
        tracing::error!(error = %e, "trace export is off: the OTLP exporter could not be built");
    }
    match provider {
        Some(p) if installed => {
            tracing::info!("exporting traces over OTLP/HTTP");
            Telemetry { traces: Some(p) }
        }
        Some(p) => {
            // Another subscriber was there first; nothing would reach this exporter.
            let _ = p.shutdown();
            Telemetry::default()
        }
        None => Telemetry::default(),
    }
}

/// Where spans are sent, when they are.
#[derive(Clone, Debug, PartialEq)]
struct OtlpTarget {
    /// The full traces URL when the settings give it; `None`: the exporter reads the standard
    /// variables itself.
    traces_url: Option<String>,
    /// `None`: the SDK takes it from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`.
    service_name: Option<String>,
    /// A protocol asked for in the environment that is not OTLP/HTTP protobuf (the only one
    /// built in), to warn about.
    unsupported_protocol: Option<String>,
}

/// Decides from the settings and the environment (`env`) whether and where spans go; pure, so
/// the standard variables' rules are unit-tested without touching the process environment.
fn otlp_target(
    settings: &TelemetrySettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<OtlpTarget> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return None;
    }
    let configured = settings
        .otlp_endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let traces_url = match configured {
        Some(base) => Some(format!("{}/v1/traces", base.trim_end_matches('/'))),
        None if set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() =>
        {
            None
        }
        None => return None,
    };
    let named_in_attributes = set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
        a.split(',')
            .any(|kv| kv.trim_start().starts_with("service.name="))
    });
    let service_name = match settings.service_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => Some(name.to_owned()),
        _ if set("OTEL_SERVICE_NAME").is_some() || named_in_attributes => None,
        _ => Some(DEFAULT_SERVICE_NAME.to_owned()),
    };
    let unsupported_protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .filter(|p| p.trim() != "http/protobuf");
    Some(OtlpTarget {
        traces_url,
        service_name,
        unsupported_protocol,
    })
}

/// The trace pipeline: OTLP/HTTP protobuf exporter, batched on the tokio runtime.
fn exporter(
    target: &OtlpTarget,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    if let Some(p) = &target.unsupported_protocol {
        eprintln!("warning: OTLP protocol `{p}` is not built in; sending http/protobuf");
    }
    switchboard_llm::install_crypto_provider();
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(url) = &target.traces_url {
        builder = builder.with_endpoint(url.clone());
    }
    let exporter = builder.build()?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let mut resource = Resource::builder();
    if let Some(name) = &target.service_name {
        resource = resource.with_service_name(name.clone());
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn target(settings: &TelemetrySettings, env: &[(&str, &str)]) -> Option<OtlpTarget> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        otlp_target(settings, &|k| env.get(k).cloned())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(target(&TelemetrySettings::default(), &[]), None);
        assert_eq!(
            target(
                &TelemetrySettings::default(),
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", " "),
                    ("OTEL_SERVICE_NAME", "x")
                ]
            ),
            None
        );
    }

    #[test]
    fn the_standard_variables_turn_export_on_and_name_the_service() {
        let t = target(
            &TelemetrySettings::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")],
        )
        .expect("on");
        // The exporter reads the endpoint itself (and appends /v1/traces to this one).
        assert_eq!(t.traces_url, None);
        assert_eq!(t.service_name.as_deref(), Some("switchboard"));
        let t = target(
            &TelemetrySettings::default(),
            &[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://c:4318/v1/traces",
                ),
                ("OTEL_SERVICE_NAME", "sb-eu"),
            ],
        )
        .expect("on");
        assert_eq!(t.service_name, None, "the SDK reads OTEL_SERVICE_NAME");
        let t = target(
            &TelemetrySettings::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod, service.name=sb",
                ),
            ],
        )
        .expect("on");
        assert_eq!(t.service_name, None);
    }

    #[test]
    fn the_setting_wins_and_gets_the_traces_path() {
        let settings = TelemetrySettings {
            otlp_endpoint: Some("http://127.0.0.1:4318/".into()),
            service_name: Some("sb-test".into()),
            trace_filter: None,
        };
        let t = target(
            &settings,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4318")],
        )
        .expect("on");
        assert_eq!(
            t.traces_url.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(t.service_name.as_deref(), Some("sb-test"));
    }

    #[test]
    fn the_sdk_can_be_switched_off_and_other_protocols_are_reported() {
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")];
        assert_eq!(
            target(
                &TelemetrySettings::default(),
                &[on[0], ("OTEL_SDK_DISABLED", "TRUE")]
            ),
            None
        );
        assert_eq!(
            target(
                &TelemetrySettings::default(),
                &[on[0], ("OTEL_TRACES_EXPORTER", "none")]
            ),
            None
        );
        let t = target(
            &TelemetrySettings::default(),
            &[on[0], ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
        )
        .expect("on");
        assert_eq!(t.unsupported_protocol.as_deref(), Some("grpc"));
    }
}
