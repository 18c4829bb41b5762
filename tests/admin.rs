//! The admin API never answers without the admin token; health and readiness report truthfully.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn admin_routes_require_the_token() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/tenants",
        "/api/v1/channels",
        "/api/v1/events/parked",
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let r = app
            .http
            .get(app.url(path))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let (status, _) = app.admin_get(path).await;
        assert_eq!(status, 200, "{path} with the token");
    }
    let r = app
        .http
        .post(app.url("/api/v1/tenants"))
        .json(&json!({"slug": "sneaky", "name": "Sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, body) = app.admin_get("/api/v1/tenants").await;
    assert!(body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["slug"] != "sneaky"));
    app.stop().await;
}

#[tokio::test]
async fn tenants_and_channels_can_be_created_and_listed() {
    let app = spawn_app().await;
    let (status, body) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "nour-cafe", "name": "مقهى نور", "default_language": "ar"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "nour-cafe", "name": "again"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app
        .admin_post("/api/v1/tenants", json!({"slug": "Bad Slug", "name": "x"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = app.admin_get("/api/v1/channels?tenant=nour-cafe").await;
    let channels = body["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0]["kind"], "webchat");
    let (status, _) = app.admin_get("/api/v1/channels?tenant=missing").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["actors"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_exposed_to_admins_only() {
    let app = spawn_app().await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "c1", "Hello").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let needles = [
        tenant_series(
            "switchboard_inbound_total",
            app.demo_tenant,
            "webchat",
            ("result", "accepted"),
        ),
        "switchboard_turns_total{outcome=\"answered\"}".to_owned(),
        tenant_series(
            "switchboard_outbound_total",
            app.demo_tenant,
            "webchat",
            ("result", "sent"),
        ),
        "switchboard_turn_seconds_bucket".to_owned(),
        "switchboard_live_actors{actor=\"conversation\"}".to_owned(),
    ];
    // The reply can be visible a moment before the actor and the dispatcher record it.
    eventually(std::time::Duration::from_secs(10), || async {
        let text = app.metrics().await;
        needles.iter().all(|n| text.contains(n.as_str()))
    })
    .await;
    let text = app.metrics().await;
    for needle in needles {
        assert!(text.contains(&needle), "missing {needle} in:\n{text}");
    }
    app.stop().await;
}
