//! Inbound limits (issue 16, item 3), proven by attack: a flooding session is refused while
//! another is answered; event streams are capped per session and per address; slow clients
//! are cut off; unknown channel ids cost one query; an anonymous demo never spends the
//! platform's key.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_core::ChannelId;
use switchboard_runtime::config::{LimitsSettings, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// Posts as a client behind the proxy at `ip` (the app trusts `x-forwarded-for`); returns the
/// status, the `Retry-After` header and the body.
async fn post_from(
    app: &TestApp,
    ip: &str,
    session: &str,
    cid: &str,
    text: &str,
) -> (u16, Option<String>, Value) {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/webchat/{}/messages", app.demo_channel)))
        .header("x-forwarded-for", format!("10.9.9.9, {ip}"))
        .json(&json!({"session_id": session, "client_message_id": cid, "text": text}))
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

fn limited(tweak: impl FnOnce(&mut LimitsSettings)) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.limits = LimitsSettings {
            client_ip_header: Some("X-Forwarded-For".into()),
            ..LimitsSettings::default()
        };
        tweak(&mut s.limits);
    }
}

/// Time from posting one message to its answer in the history.
async fn answer_time(app: &TestApp, ip: &str, session: &str, cid: &str, n: usize) -> Duration {
    let started = Instant::now();
    let (status, _, body) = post_from(app, ip, session, cid, "What are your opening hours?").await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_agent_replies(app.demo_channel, session, n)
        .await;
    started.elapsed()
}

#[tokio::test]
async fn a_session_flooding_the_chat_is_refused_while_another_is_answered_as_usual() {
    // An address may post 120 at once, then one a second (slow enough for a loaded machine).
    let app = spawn_app_with(limited(|l| l.webchat_ip_per_minute = 60), None).await;
    let calm = session();
    let baseline = answer_time(&app, "198.51.100.9", &calm, "c1", 1).await;

    // 2,000 posts from one session, 50 at a time, while the calm customer asks again.
    let flood = session();
    let started = Instant::now();
    let flooding = {
        let (http, base, channel, flood) = (
            app.http.clone(),
            app.base.clone(),
            app.demo_channel,
            flood.clone(),
        );
        tokio::spawn(async move {
            let url = format!("{base}/api/v1/webchat/{channel}/messages");
            let mut results = Vec::new();
            for batch in 0..40 {
                let posts = (0..50).map(|i| {
                    let (http, url, flood) = (http.clone(), url.clone(), flood.clone());
                    async move {
                        let r = http
                            .post(&url)
                            .header("x-forwarded-for", "203.0.113.7")
                            .json(&json!({"session_id": flood, "client_message_id": format!("f{batch}-{i}"), "text": "spam spam spam"}))
                            .send()
                            .await
                            .expect("flood post");
                        let status = r.status().as_u16();
                        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        (status, retry, body["error"]["code"].clone())
                    }
                });
                results.extend(futures::future::join_all(posts).await);
            }
            results
        })
    };
    let under_flood = answer_time(&app, "198.51.100.9", &calm, "c2", 2).await;
    let results = flooding.await.unwrap();
    let elapsed = started.elapsed();

    let accepted = results.iter().filter(|r| r.0 == 202).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    eprintln!(
        "flood: {} posts in {:.1} s, {accepted} accepted, {} refused; the calm session answered in {:?} before and {:?} during",
        results.len(),
        elapsed.as_secs_f64(),
        refused.len(),
        baseline,
        under_flood
    );
    assert_eq!(accepted + refused.len(), 2000, "only 202 or 429");
    // A burst of 10, then 30 a minute.
    let allowed = 10 + (elapsed.as_secs_f64() / 2.0).ceil() as usize;
    assert!(
        (10..=allowed).contains(&accepted),
        "{accepted} accepted, at most {allowed} allowed"
    );
    assert!(refused
        .iter()
        .all(|r| r.1.is_some_and(|s| (1..=2).contains(&s)) && r.2 == "rate_limited"));
    // Exactly the accepted posts were stored.
    let stored = app
        .history(app.demo_channel, &flood)
        .await
        .iter()
        .filter(|m| m["role"] == "customer")
        .count();
    assert_eq!(stored, accepted);
    assert!(
        under_flood <= (baseline * 5).max(baseline + Duration::from_secs(3)),
        "the calm session waited {under_flood:?} (alone: {baseline:?})"
    );

    // One address, many sessions: its burst of 120, then one a second.
    let started = Instant::now();
    let mut statuses = Vec::new();
    for batch in 0..8 {
        let posts = (0..20).map(|i| {
            let app = &app;
            async move {
                let text = format!("hello {batch}-{i}");
                post_from(app, "192.0.2.44", &session(), "m1", &text)
                    .await
                    .0
            }
        });
        statuses.extend(futures::future::join_all(posts).await);
    }
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    let allowed = 120 + started.elapsed().as_secs_f64().ceil() as usize;
    assert!(statuses.contains(&429), "the address was never limited");
    assert!((120..=allowed).contains(&accepted), "{accepted} accepted");
    // Another address is not affected.
    let (status, _, _) = post_from(&app, "192.0.2.45", &session(), "m1", "hello").await;
    assert_eq!(status, 202);
    app.stop().await;
}

#[tokio::test]
async fn event_streams_are_capped_per_session_and_per_address() {
    let app = spawn_app_with(
        limited(|l| {
            l.streams_per_session = 2;
            l.streams_per_ip = 3;
        }),
        None,
    )
    .await;
    let open = |session: String, ip: &'static str| {
        let app = &app;
        async move {
            app.http
                .get(app.url(&format!(
                    "/api/v1/webchat/{}/sessions/{session}/events",
                    app.demo_channel
                )))
                .header("x-forwarded-for", ip)
                .send()
                .await
                .expect("events")
        }
    };
    let s = session();
    let first = open(s.clone(), "198.51.100.1").await;
    assert_eq!(first.status(), 200);
    let second = open(s.clone(), "198.51.100.1").await;
    assert_eq!(second.status(), 200);
    let third = open(s.clone(), "198.51.100.2").await;
    assert_eq!(third.status(), 429, "a third stream of one session");
    assert!(third.headers().contains_key("retry-after"));
    // The address's third stream, for another session, still fits; its fourth does not.
    let other = open(session(), "198.51.100.1").await;
    assert_eq!(other.status(), 200);
    let fourth = open(session(), "198.51.100.1").await;
    assert_eq!(fourth.status(), 429, "a fourth stream of one address");
    // A closed stream gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let again = open(s.clone(), "198.51.100.3").await;
        if again.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop((second, other));
    app.stop().await;
}

/// Reads until the server closes the connection; how long that took (or `None` past `limit`).
async fn closed_within(conn: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), conn.read(&mut buf))
            .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // an error response, then the close
        }
    }
}

#[tokio::test]
async fn slow_and_idle_clients_are_disconnected() {
    let app = spawn_app_with(
        limited(|l| {
            l.header_read_timeout_secs = 1;
            l.body_read_timeout_secs = 1;
        }),
        None,
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let limit = Duration::from_secs(8);

    // Slow loris: headers that never end.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = conn.write_all(b"a").await;
    }
    let took = closed_within(&mut conn, limit).await;
    assert!(
        took.is_some(),
        "a client trickling its headers kept the connection"
    );

    // An idle keep-alive connection after one answered request.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut conn, limit).await;
    assert!(took.is_some(), "an idle keep-alive connection was kept");

    // A body that stops arriving: refused, nothing stored.
    let s = session();
    let body = json!({"session_id": s, "client_message_id": "m1", "text": "hello"}).to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/webchat/{}/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.demo_channel,
        body.len() + 10
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, conn.read_to_end(&mut answer)).await;
    assert!(
        started.elapsed() < limit,
        "a stalled body kept the connection"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || !answer.starts_with("HTTP/1.1 2"),
        "a stalled body was accepted: {answer}"
    );
    assert!(app.history(app.demo_channel, &s).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn unknown_channel_ids_cost_one_lookup() {
    let app = spawn_app().await;
    let unknown = ChannelId::new();
    for i in 0..5 {
        let (status, body) = app
            .post_chat(unknown, &session(), "m1", &format!("hi {i}"))
            .await;
        assert_eq!(status, 404, "{body}");
    }
    // The server's cache, counted: the first miss asks the database, the next ones do not.
    let cache = switchboard_runtime::http::route_cache::RouteCache::default();
    for _ in 0..20 {
        assert!(cache
            .resolve(app.db.pool(), unknown)
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(cache.lookups(), 1);
    // A channel created afterwards is served at once (its id is new).
    let (status, body) = app
        .admin_post("/api/v1/tenants", json!({"slug": "fresh", "name": "Fresh"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let fresh: ChannelId = body["channels"][0]["id"].as_str().unwrap().parse().unwrap();
    assert!(cache.resolve(app.db.pool(), fresh).await.unwrap().is_some());
    assert!(cache.resolve(app.db.pool(), fresh).await.unwrap().is_some());
    assert_eq!(cache.lookups(), 2, "a known route is cached too");
    let (status, body) = app.post_chat(fresh, &session(), "m1", "hello").await;
    assert_eq!(status, 202, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn with_a_platform_key_the_anonymous_demo_is_off_unless_asked_for() {
    let database = fresh_database().await;
    let keyed = |demo: Option<bool>| {
        move |s: &mut Settings| {
            s.openai_api_key = Some("sk-platform-0123456789".to_owned().into());
            s.demo = demo;
        }
    };
    // A first start with the key: no demo tenant.
    let mut settings = test_settings(&database);
    keyed(None)(&mut settings);
    let app = switchboard_runtime::Application::build(
        settings,
        switchboard_runtime::BuildOptions { faults: None },
    )
    .await
    .unwrap();
    let db = app.services().db.clone();
    assert!(
        switchboard_core::store::platform::find_tenant(db.pool(), "demo")
            .await
            .unwrap()
            .is_none(),
        "the demo tenant was created although a platform key is configured"
    );
    drop(app);
    // Asked for explicitly, it is served.
    let app = spawn_app_on(&database, keyed(Some(true)), None).await;
    let (status, _) = app
        .post_chat(app.demo_channel, &session(), "m1", "hello")
        .await;
    assert_eq!(status, 202);
    app.stop().await;
    // Left to the default again: its public chat is switched off.
    let app = spawn_app_on(&database, keyed(None), None).await;
    let (status, body) = app
        .post_chat(app.demo_channel, &session(), "m1", "hello")
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "channel_disabled");
    app.stop().await;
}
