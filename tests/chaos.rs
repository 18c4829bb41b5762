//! The chaos suite, bounded for CI: the real binary killed with SIGKILL three times and its
//! PostgreSQL once while customers write on web chat, WhatsApp, Telegram, SMS and e-mail to
//! several tenants, book meetings, leave leads and ask for people, and the model fails in four
//! ways. Nothing is lost and nothing is duplicated: messages, replies, bookings, escalations,
//! notifications, CRM calls (`switchboard bench --suite chaos` is the full run).

use std::path::PathBuf;
use std::time::Duration;

use switchboard_runtime::bench::chaos::{execute, ChaosOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_the_server_and_the_database_lose_and_duplicate_nothing() {
    let opts = ChaosOptions {
        messages: 400,
        server_kills: 3,
        database_kills: 1,
        tenants: 3,
        customers: 3,
        concurrency: 16,
        server_bin: PathBuf::from(env!("CARGO_BIN_EXE_switchboard")),
        settle: Duration::from_secs(240),
        ..ChaosOptions::default()
    };
    let report = execute(&opts).await.expect("the chaos run completes");
    eprintln!("chaos: {report:?}");
    assert_eq!(report.failures(), Vec::<String>::new(), "{report:#?}");
    // The faults really happened, and the counts cover every message.
    assert_eq!((report.server_kills, report.database_kills), (3, 1));
    assert!(
        report.retried_sends > 0,
        "no send ever failed: the kills hit nothing"
    );
    assert!(report.redelivered > 0, "no message was delivered twice");
    assert_eq!(report.stored, 400);
    assert_eq!(report.answered + report.parked, 400);
    // Customers booked meetings, left leads and asked for people: the sales team heard (on
    // Telegram and by e-mail) and the CRM was called.
    assert!(report.bookings > 0, "no meeting was booked: {report:?}");
    assert!(report.escalations > 0, "nobody was escalated: {report:?}");
    assert!(
        report.notifications > 0,
        "the sales team heard nothing: {report:?}"
    );
    assert!(report.crm_calls > 0, "the CRM was never called: {report:?}");
    assert!(report.emails > 0, "no e-mail was sent: {report:?}");
    for fault in ["http_500", "http_429", "hang", "malformed_tool_call"] {
        assert!(
            report.model_faults.get(fault).copied().unwrap_or(0) > 0,
            "the model never injected {fault}: {report:?}"
        );
    }
}
