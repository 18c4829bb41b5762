//! The outbound dispatcher: rows it cannot deliver are failed with a visible reason, and rows
//! whose delivery lease expired (a dispatcher died mid-send) are delivered again.

use std::time::Duration;

use sqlx::Row;

use crate::helpers::*;

#[tokio::test]
async fn undeliverable_rows_fail_visibly_and_expired_leases_are_redelivered() {
    let app = spawn_app().await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Hello").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let mut owner = app.owner().await;
    let conv =
        sqlx::query("SELECT tenant_id, channel_id, conversation_id, payload FROM outbox LIMIT 1")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    let (tenant, channel, conversation): (uuid::Uuid, uuid::Uuid, uuid::Uuid) =
        (conv.get(0), conv.get(1), conv.get(2));
    let payload: serde_json::Value = conv.get(3);

    let broken = uuid::Uuid::now_v7();
    let stuck = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, idempotency_key, payload)
         VALUES ($1, $2, $3, $4, 'test:broken', '{\"nothing\": \"useful\"}')",
    )
    .bind(broken)
    .bind(tenant)
    .bind(channel)
    .bind(conversation)
    .execute(&mut owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, idempotency_key, payload, status, attempts, locked_until)
         VALUES ($1, $2, $3, $4, 'test:stuck', $5, 'sending', 1, now() - interval '1 minute')",
    )
    .bind(stuck)
    .bind(tenant)
    .bind(channel)
    .bind(conversation)
    .bind(&payload)
    .execute(&mut owner)
    .await
    .unwrap();

    let settled = eventually(Duration::from_secs(10), || async {
        let mut c = app.owner().await;
        let states: Vec<(String, i32, Option<String>)> = sqlx::query_as(
            "SELECT status, attempts, last_error FROM outbox WHERE id = ANY($1) ORDER BY id",
        )
        .bind(vec![broken, stuck])
        .fetch_all(&mut c)
        .await
        .unwrap();
        states[0].0 == "failed" && states[1].0 == "sent"
    })
    .await;
    assert!(
        settled,
        "the broken row failed and the stuck row was delivered"
    );
    let (error, attempts): (String, i32) =
        sqlx::query_as("SELECT last_error, attempts FROM outbox WHERE id = $1")
            .bind(broken)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(error.contains("unreadable outbox payload"), "{error}");
    assert_eq!(attempts, 1, "a permanent failure is not retried");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = $1")
        .bind(stuck)
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "the expired lease was claimed once more");
    // The possible duplicate is not silent: it is counted (and logged).
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("switchboard_redeliveries_total"),
        "{metrics}"
    );
    app.stop().await;
}
