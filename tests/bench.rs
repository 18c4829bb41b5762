//! `switchboard bench`'s open loop for real, through the library function the command calls:
//! a constant arrival rate over web chat and over signed WhatsApp webhooks (replies caught by
//! the harness's fake Graph API), with the echo responder. Every message offered must be
//! answered, and the result must carry the machine, the commit and the configuration that make
//! its figures comparable.

use std::time::Duration;

use serde_json::Value;
use switchboard_runtime::bench::{self, BenchOptions, Channel, Load, OpenLoad, Responder};

use crate::helpers::*;

async fn open_loop(channel: Channel) -> Value {
    let settings = test_settings(&fresh_database().await);
    let opts = BenchOptions {
        conversations: 2,
        responder: Responder::Echo,
        load: Load::Open(OpenLoad {
            rate: 20.0,
            duration: Duration::from_secs(1),
            channel,
        }),
    };
    bench::run(settings, opts).await.expect("the bench runs")
}

fn assert_described(result: &Value, channel: &str, conversations: u64) {
    assert_eq!(result["suite"], "pipeline");
    assert!(
        chrono::DateTime::parse_from_rfc3339(result["started_at"].as_str().unwrap()).is_ok(),
        "{result:#}"
    );
    assert!(!result["commit"].as_str().unwrap().is_empty());
    let machine = &result["machine"];
    assert!(machine["cpu_model"].is_string(), "{machine}");
    assert!(machine["cores"].as_u64().unwrap() >= 1);
    assert_eq!(machine["os"], std::env::consts::OS);
    assert_eq!(machine["arch"], std::env::consts::ARCH);
    let config = &result["config"];
    assert_eq!(config["mode"], "open", "{config}");
    assert_eq!(config["responder"], "echo");
    assert_eq!(config["channel"], channel);
    assert_eq!(config["rate"], 20.0);
    assert_eq!(config["duration_secs"], 1.0);
    assert_eq!(config["conversations"], conversations);
    assert_eq!(config["debounce_ms"], 0);
    assert!(!config["embedder"].as_str().unwrap().is_empty(), "{config}");
    // The server's real setting (the test server runs without fsync; `bench` alone has it on).
    assert!(
        matches!(config["fsync"].as_str(), Some("on" | "off")),
        "{config}"
    );
    assert!(result["raw_postgres"]["commits_per_sec"].as_f64().unwrap() > 0.0);
}

fn assert_every_message_answered(result: &Value) {
    let open = &result["open_loop"];
    assert_eq!(open["offered_per_sec"], 20.0, "{open:#}");
    assert_eq!(open["sent"], 20, "{open:#}");
    assert_eq!(open["accepted"], 20, "{open:#}");
    assert_eq!(open["refused"], 0, "{open:#}");
    assert_eq!(open["answered"], 20, "{open:#}");
    assert_eq!(open["unanswered"], 0, "{open:#}");
    let replies = open["replies"].as_u64().unwrap();
    assert!((1..=20).contains(&replies), "{open:#}");
    assert!(open["achieved_per_sec"].as_f64().unwrap() > 0.0);
    for figures in ["latency_ms", "ack_latency_ms"] {
        for p in ["p50", "p90", "p99", "p99.9", "max"] {
            assert!(
                open[figures][p].as_f64().is_some_and(|ms| ms >= 0.0),
                "{figures}.{p}: {open:#}"
            );
        }
    }
    assert_eq!(result["ratios"]["answered"], 1.0);
    // A run compares cleanly with itself.
    let comparison = bench::compare(result, result).expect("comparable with itself");
    assert_eq!(comparison.regressions().count(), 0);
    assert!(!comparison.figures.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_open_loop_over_web_chat_answers_every_message_and_describes_the_run() {
    let result = open_loop(Channel::Webchat).await;
    assert_described(&result, "webchat", 2);
    assert_every_message_answered(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_open_loop_over_signed_whatsapp_webhooks_answers_every_message() {
    let result = open_loop(Channel::Whatsapp).await;
    // 20 messages a second need at least 120 customers under WhatsApp's one-per-6-s cap.
    assert_described(&result, "whatsapp", 120);
    assert_eq!(result["config"]["whatsapp_numbers"], 1);
    assert_every_message_answered(&result);
}
