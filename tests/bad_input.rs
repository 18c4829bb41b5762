//! Bad input gets a clear 4xx JSON error and stores nothing.

use serde_json::Value;

use crate::helpers::*;

async fn stored_events(app: &TestApp) -> i64 {
    let mut owner = app.owner().await;
    sqlx::query_scalar("SELECT count(*) FROM inbound_events")
        .fetch_one(&mut owner)
        .await
        .unwrap()
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn raw_post(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_store_nothing() {
    let app = spawn_app().await;
    let path = format!("/api/v1/webchat/{}/messages", app.demo_channel);

    let (s, b) = raw_post(
        &app,
        &path,
        "application/json",
        b"{\"session_id\": \"abc".to_vec(),
    )
    .await;
    assert_error(s, &b, 400, "malformed_json");

    let (s, b) = raw_post(
        &app,
        &path,
        "application/json",
        b"\xff\xfe not json".to_vec(),
    )
    .await;
    assert_error(s, &b, 400, "malformed_json");

    let (s, b) = raw_post(&app, &path, "text/plain", b"{}".to_vec()).await;
    assert_error(s, &b, 415, "unsupported_media_type");

    let (s, b) = raw_post(
        &app,
        &path,
        "application/json",
        br#"{"session_id":"session-1234"}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, 422, "invalid_body");

    let big = format!(
        r#"{{"session_id":"session-1234","client_message_id":"c1","text":"{}"}}"#,
        "x".repeat(200 * 1024)
    );
    let (s, b) = raw_post(&app, &path, "application/json", big.into_bytes()).await;
    assert_error(s, &b, 413, "payload_too_large");

    let (s, b) = app
        .post_chat(app.demo_channel, "bad session id!", "c1", "hi")
        .await;
    assert_error(s, &b, 422, "invalid_body");
    // A session id is the customer's credential: fewer than 128 bits (32 characters) are
    // refused, however well-formed (the old minimum was 8), and nothing is stored.
    for short in ["abcd1234", "0123456789abcdef0123456789abcde"] {
        let (s, b) = app.post_chat(app.demo_channel, short, "c1", "hi").await;
        assert_error(s, &b, 422, "invalid_body");
        let r = app
            .http
            .get(app.url(&format!(
                "/api/v1/webchat/{}/sessions/{short}/messages",
                app.demo_channel
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "reading with a short session id");
    }
    let (s, b) = app
        .post_chat(app.demo_channel, &session(), "c1", "   ")
        .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = app
        .post_chat(app.demo_channel, &session(), "c1", &"ع".repeat(4001))
        .await;
    assert_error(s, &b, 422, "invalid_body");

    let unknown = switchboard_core::ChannelId::new();
    let (s, b) = app.post_chat(unknown, &session(), "c1", "hi").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = raw_post(
        &app,
        "/api/v1/webchat/not-a-uuid/messages",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_error(s, &b, 404, "not_found");

    let resp = app.http.get(app.url("/api/v1/nope")).send().await.unwrap();
    let status = resp.status().as_u16();
    assert_error(status, &resp.json().await.unwrap(), 404, "not_found");
    let resp = app.http.delete(app.url(&path)).send().await.unwrap();
    let status = resp.status().as_u16();
    assert_error(
        status,
        &resp.json().await.unwrap(),
        405,
        "method_not_allowed",
    );

    assert_eq!(stored_events(&app).await, 0, "nothing was stored");

    // A good message afterwards still works: bad input corrupted nothing.
    let s = session();
    let (status, _) = app.post_chat(app.demo_channel, &s, "c1", "Hello").await;
    assert_eq!(status, 202);
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    app.stop().await;
}
