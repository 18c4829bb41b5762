//! Live conversations and passivation: `switchboard bench --suite memory` for real on a small
//! crowd (every conversation goes live, they all passivate, and a passivated conversation
//! answers a new message in the same conversation), and the tenant supervisor's idle sweep
//! leaving a busy agent alone.

use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_actors::AgentCounts;
use switchboard_runtime::bench::memory::{self, MemoryOptions};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_memory_suite_wakes_every_conversation_passivates_them_and_a_passivated_one_answers()
{
    let settings = test_settings(&fresh_database().await);
    let opts = MemoryOptions {
        conversations: 2000,
        // Long enough for 2,000 wake-ups in a debug build beside other tests; short enough
        // for a test.
        idle_timeout: Duration::from_secs(10),
        probes: 3,
        settle: Duration::from_millis(300),
    };
    let warm = opts.warm_up() as u64;
    let result = memory::run(settings, opts)
        .await
        .expect("the memory suite runs");

    assert_eq!(result["suite"], "memory");
    assert!(!result["commit"].as_str().unwrap().is_empty());
    assert!(result["machine"]["cores"].as_u64().unwrap() >= 1);
    let config = &result["config"];
    assert_eq!(config["suite"], "memory", "{config}");
    assert_eq!(config["conversations"], 2000);
    assert_eq!(config["idle_timeout_secs"], 10);
    assert!(
        matches!(config["fsync"].as_str(), Some("on" | "off")),
        "{config}"
    );

    // Every conversation had a live agent, idle after its wake-up's turn.
    let live = &result["live"];
    assert_eq!(live["agents"], 2000 + warm, "{live:#}");
    assert_eq!(live["idle_agents"], 2000 + warm, "{live:#}");
    assert!(live["wake_seconds"].as_f64().unwrap() > 0.0);
    // The figures are there (their size is the bench's business, not a test's: this process
    // runs other tests beside).
    if cfg!(unix) {
        assert!(live["bytes_per_conversation"].is_number(), "{live:#}");
        for reading in ["baseline", "live", "passivated", "released"] {
            assert!(
                result["rss"][reading]["rss_bytes"].as_u64().unwrap() > 0,
                "{reading}: {:#}",
                result["rss"]
            );
        }
    }

    // They all passivated under the idle timeout.
    let passivation = &result["passivation"];
    assert_eq!(passivation["agents_after"], 0, "{passivation:#}");
    let took = passivation["passivation_seconds"].as_f64().unwrap();
    assert!(took >= 5.0, "not before the idle timeout: {passivation:#}");

    // A passivated conversation answers a new message, in the same conversation.
    let after = &result["after_passivation"];
    assert_eq!(after["messages"], 3, "{after:#}");
    assert_eq!(after["answered"], 3, "{after:#}");
    assert_eq!(after["same_conversation"], 3, "{after:#}");
    assert_eq!(after["agents_revived"], 3, "{after:#}");
}

#[tokio::test]
async fn an_agent_is_not_passivated_while_its_turn_runs_past_the_idle_timeout() {
    // A turn that thinks for three idle timeouts.
    let (hook, entered) = slow_once(Duration::from_secs(3));
    let app = spawn_app_with(|s| s.pipeline.idle_timeout_secs = 1, Some(hook)).await;
    let counts = || app.agent_counts();
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "SLOW question about inverters")
        .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            entered.load(Ordering::SeqCst) > 0
        })
        .await
    );
    // Sweeps come every 250 ms; for two seconds of a running turn, none stops its agent.
    for _ in 0..8 {
        assert_eq!(counts().await, AgentCounts { live: 1, idle: 0 });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let history = app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    assert_eq!(
        history.iter().filter(|m| m["role"] == "agent").count(),
        1,
        "{history:#?}"
    );
    // Quiet now: idle, then passivated after the timeout.
    assert!(
        eventually(Duration::from_secs(10), || async {
            counts().await == AgentCounts { live: 0, idle: 0 }
        })
        .await,
        "the agent passivated once its turn was done"
    );
    app.stop().await;
}
