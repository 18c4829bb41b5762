//! The actor pipeline under faults: panics mid-turn, poison messages, bursts, idle actors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_actors::{FaultHook, FaultPoint};

use crate::helpers::*;

fn panic_when(marker: &'static str, times: usize, counter: Arc<AtomicUsize>) -> FaultHook {
    Arc::new(move |point: &FaultPoint<'_>| {
        let FaultPoint::BeforeCommit { customer_text, .. } = point;
        if customer_text.contains(marker) && counter.fetch_add(1, Ordering::SeqCst) < times {
            panic!("injected fault for {marker}");
        }
        None
    })
}

#[tokio::test]
async fn a_conversation_actor_that_panics_mid_turn_is_restarted_and_answers_once() {
    let panics = Arc::new(AtomicUsize::new(0));
    let app = spawn_app_with(|_| {}, Some(panic_when("PANIC-ONCE", 1, panics.clone()))).await;
    let s = session();
    let (status, _) = app
        .post_chat(
            app.demo_channel,
            &s,
            "c1",
            "What warranty do you give? PANIC-ONCE",
        )
        .await;
    assert_eq!(status, 202);
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(
        panics.load(Ordering::SeqCst),
        2,
        "one panicking attempt, one good attempt"
    );
    let history = app.history(app.demo_channel, &s).await;
    assert_eq!(
        history.iter().filter(|m| m["role"] == "agent").count(),
        1,
        "{history:#?}"
    );
    let mut owner = app.owner().await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM inbound_events")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("done", 2));
    app.stop().await;
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_parked_and_visible_to_admins() {
    let panics = Arc::new(AtomicUsize::new(0));
    let app = spawn_app_with(
        |s| s.pipeline.max_attempts = 3,
        Some(panic_when("POISON", usize::MAX, panics.clone())),
    )
    .await;
    let poisoned = session();
    app.post_chat(app.demo_channel, &poisoned, "c1", "POISON pill")
        .await;
    // Another conversation of the same tenant keeps working meanwhile.
    let healthy = session();
    app.post_chat(app.demo_channel, &healthy, "c1", "Hello")
        .await;
    app.wait_for_agent_replies(app.demo_channel, &healthy, 1)
        .await;

    let parked = eventually(Duration::from_secs(20), || async {
        let (_, body) = app.admin_get("/api/v1/events/parked?tenant=demo").await;
        body["parked"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert!(parked, "the poison event is parked");
    assert_eq!(
        panics.load(Ordering::SeqCst),
        3,
        "exactly max_attempts attempts were made"
    );
    let (_, body) = app.admin_get("/api/v1/events/parked?tenant=demo").await;
    let event = &body["parked"][0]["event"];
    assert_eq!(event["text"], "POISON pill");
    assert!(
        event["last_error"]
            .as_str()
            .unwrap()
            .contains("parked after 3"),
        "{event}"
    );
    // The customer is not left waiting: parking told them, once (see tests/resilience.rs).
    let history = app
        .wait_for_agent_replies(app.demo_channel, &poisoned, 1)
        .await;
    let agent: Vec<&serde_json::Value> = history.iter().filter(|m| m["role"] == "agent").collect();
    assert_eq!(agent.len(), 1, "{history:#?}");
    assert!(
        agent[0]["text"]
            .as_str()
            .unwrap()
            .contains("technical problem"),
        "{history:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_messages_is_answered_as_one_turn() {
    let app = spawn_app_with(|s| s.pipeline.debounce_ms = 400, None).await;
    let s = session();
    for (i, text) in [
        "Hi",
        "I have a villa in Dubai",
        "how much is a 10 kW system?",
    ]
    .iter()
    .enumerate()
    {
        let (status, _) = app
            .post_chat(app.demo_channel, &s, &format!("c{i}"), text)
            .await;
        assert_eq!(status, 202);
    }
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let history = app.history(app.demo_channel, &s).await;
    let roles: Vec<&str> = history
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["customer", "customer", "customer", "agent"]);
    let mut owner = app.owner().await;
    let count: i32 = sqlx::query_scalar("SELECT event_count FROM turns")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(count, 3);
    app.stop().await;
}

#[tokio::test]
async fn turns_of_one_conversation_run_in_order() {
    let app = spawn_app_with(|s| s.pipeline.debounce_ms = 0, None).await;
    let s = session();
    for i in 0..6 {
        app.post_chat(
            app.demo_channel,
            &s,
            &format!("c{i}"),
            &format!("question number {i} about panels"),
        )
        .await;
        app.wait_for_agent_replies(app.demo_channel, &s, i + 1)
            .await;
    }
    let history = app.history(app.demo_channel, &s).await;
    // Every customer message is followed by its answer, never by another customer's message.
    let roles: Vec<&str> = history
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["customer", "agent"].repeat(6));
    app.stop().await;
}

#[tokio::test]
async fn idle_conversation_actors_stop_and_are_respawned_on_the_next_message() {
    let app = spawn_app_with(|s| s.pipeline.idle_timeout_secs = 1, None).await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Hello").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let count = || async { app.agent_counts().await.live };
    assert_eq!(count().await, 1);
    let stopped = eventually(Duration::from_secs(10), || async { count().await == 0 }).await;
    assert!(stopped, "the idle actor stopped");
    app.post_chat(app.demo_channel, &s, "c2", "Thanks!").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 2).await;
    app.stop().await;
}

#[tokio::test]
async fn shutdown_abandons_a_slow_turn_safely_and_the_next_start_answers_it_once() {
    // A turn that is still thinking when the shutdown comes.
    let (hook, entered) = slow_once(Duration::from_secs(4));
    let app = spawn_app_with(|s| s.pipeline.shutdown_grace_secs = 1, Some(hook)).await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "SLOW question about inverters")
        .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            entered.load(Ordering::SeqCst) > 0
        })
        .await
    );

    let database = app.database.clone();
    let owner_url = app.owner_url.clone();
    let started = std::time::Instant::now();
    app.stop().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "shutdown waited the 1 s grace period for the turn, then abandoned it: took {took:?}"
    );

    // The abandoned turn wrote nothing: the event is still pending, no reply exists.
    use sqlx::Connection;
    let mut owner = sqlx::PgConnection::connect(&owner_url).await.unwrap();
    let (status, replies): (String, i64) = sqlx::query_as(
        "SELECT (SELECT status FROM inbound_events), (SELECT count(*) FROM messages WHERE role = 'agent')",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!((status.as_str(), replies), ("pending", 0));
    // Past the moment the slow turn would have finished: it was cancelled, not merely late.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let replies: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE role = 'agent'")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(replies, 0, "an abandoned turn never commits after shutdown");

    // The next start resumes the pending event and answers it exactly once.
    let app = spawn_app_on(&database, |_| {}, None).await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let history = app.history(app.demo_channel, &s).await;
    assert_eq!(
        history.iter().filter(|m| m["role"] == "agent").count(),
        1,
        "{history:#?}"
    );
    // The shutdown did not count against the event: only the successful attempt did.
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM inbound_events")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_turn_still_thinking_when_a_new_message_arrives_is_redone_with_both() {
    let calls = Arc::new(AtomicUsize::new(0));
    let hook: FaultHook = {
        let calls = calls.clone();
        Arc::new(move |_: &FaultPoint<'_>| {
            // The first turn thinks for a long time; the redo is quick.
            (calls.fetch_add(1, Ordering::SeqCst) == 0).then_some(Duration::from_secs(3))
        })
    };
    let app = spawn_app_with(|s| s.pipeline.debounce_ms = 50, Some(hook)).await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Do you sell batteries?")
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            calls.load(Ordering::SeqCst) == 1
        })
        .await
    );
    app.post_chat(app.demo_channel, &s, "c2", "And how long is the warranty?")
        .await;

    let history = app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let roles: Vec<&str> = history
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["customer", "customer", "agent"],
        "one answer to both: {history:#?}"
    );
    let mut owner = app.owner().await;
    let (turns, events_in_turn): (i64, i32) =
        sqlx::query_as("SELECT count(*), max(event_count) FROM turns")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!((turns, events_in_turn), (1, 2));
    // The cancelled attempt was given back: each event counts exactly one attempt.
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM inbound_events ORDER BY received_at")
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert_eq!(attempts, [1, 1]);
    assert_eq!(
        app.history(app.demo_channel, &s).await.len(),
        3,
        "no late second answer"
    );
    app.stop().await;
}

/// A customer who writes faster than a turn takes is still answered: newer messages cancel the
/// turn in flight only for a few seconds, then it answers what it has and the rest follow.
#[tokio::test]
async fn a_customer_who_keeps_writing_is_answered_while_still_writing() {
    // Every turn thinks for 1.5 s: longer than the gap between the customer's messages.
    let hook: FaultHook = Arc::new(|_: &FaultPoint<'_>| Some(Duration::from_millis(1500)));
    let app = spawn_app_with(|s| s.pipeline.debounce_ms = 0, Some(hook)).await;
    let s = session();
    let started = std::time::Instant::now();
    let mut first_reply_after = None;
    for i in 0..24 {
        app.post_chat(
            app.demo_channel,
            &s,
            &format!("c{i}"),
            &format!("Question number {i}"),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let replies = app
            .history(app.demo_channel, &s)
            .await
            .iter()
            .filter(|m| m["role"] == "agent")
            .count();
        if replies > 0 && first_reply_after.is_none() {
            first_reply_after = Some((started.elapsed(), i));
        }
    }
    let (after, at_message) = first_reply_after.expect("no reply while the customer kept writing");
    // Three seconds of coalescing plus one turn (1.5 s), with room for a slow machine.
    assert!(
        after < Duration::from_secs(8),
        "first reply after {after:?}"
    );
    assert!(at_message < 23, "answered only after the last message");
    app.stop().await;
}
