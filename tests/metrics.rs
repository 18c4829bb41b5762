//! `GET /metrics` (issue 16, metrics): a tenant's inbound and outbound messages by channel,
//! webhook rejections by reason, rate-limit refusals, turn, model and retrieval latency as real
//! histograms, model tokens and errors, the outbox backlog with its oldest age and the parked
//! events read from the database, the tenant label's cardinality limit — and trace export over
//! OTLP to a local collector.
//!
//! The recorder is the process's, and `cargo test` runs every test in one process: other tests
//! count into the same families at the same time. So these tests assert exact values only on
//! series of their own tenant (every test's tenant is new) and on the backlog (read from the
//! test's own database at scrape time), and `>=` deltas or the presence of a family otherwise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::channels_whatsapp::sign;
use crate::fake_provider::FakeProvider;
use crate::helpers::*;

const APP_SECRET: &str = "metrics-app-secret";
const PHONE_NUMBER_ID: &str = "106540352242000";
/// A WhatsApp customer the fake Graph API always refuses to deliver to (HTTP 500).
const UNREACHABLE: &str = "971500000099";
const REACHABLE: &str = "971500000001";
/// A word that makes the fake model answer 400.
const REFUSED: &str = "refuse-me";

/// A fake Graph API: sends to [`UNREACHABLE`] fail with 500, every other send is accepted.
async fn fake_graph() -> FakeProvider {
    FakeProvider::start(|req, i| {
        if !req.path.ends_with("/messages") {
            return (
                200,
                json!({"id": PHONE_NUMBER_ID, "display_phone_number": "15550001111"}),
            );
        }
        if req.json()["to"] == UNREACHABLE {
            (
                500,
                json!({"error": {"message": "temporarily down", "type": "OAuthException", "code": 2}}),
            )
        } else {
            (
                200,
                json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.out-{i}")}]}),
            )
        }
    })
    .await
}

/// A fake OpenAI-compatible model: answers every chat completion, except those mentioning
/// [`REFUSED`], which get a 400 (a client error: not retried, the turn degrades to the
/// offline answer).
async fn fake_model() -> FakeProvider {
    FakeProvider::start(|req, i| {
        if !req.path.ends_with("/chat/completions") {
            return (404, json!({}));
        }
        if String::from_utf8_lossy(&req.body).contains(REFUSED) {
            return (
                400,
                json!({"error": {"message": "bad request", "type": "invalid_request_error"}}),
            );
        }
        (
            200,
            json!({
                "id": format!("chatcmpl-{i}"),
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Model answer."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 15, "total_tokens": 35},
            }),
        )
    })
    .await
}

/// A WhatsApp channel of the demo tenant on `graph`; returns its webhook URL.
async fn whatsapp_channel(app: &TestApp, graph: &FakeProvider) -> String {
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "whatsapp", "name": "WhatsApp", "config": {
                "phone_number_id": PHONE_NUMBER_ID,
                "api_base_url": graph.base,
                "app_secret": APP_SECRET,
                "access_token": "metrics-access-token",
                "verify_token": "metrics-verify-token",
            }}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["channel"]["webhook_url"].as_str().unwrap().to_owned()
}

/// A WhatsApp notification of one text message from `from`.
fn whatsapp_message(from: &str, id: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Layla"}, "wa_id": from}],
            "messages": [{"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}}],
        }}]}],
    }))
    .unwrap()
}

async fn post_webhook(app: &TestApp, url: &str, body: &[u8], signature: &str) -> u16 {
    app.http
        .post(url)
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until the page's `series` has exactly `value`; returns the last page.
async fn wait_for_metric(app: &TestApp, series: &str, value: f64) -> String {
    let page = Arc::new(Mutex::new(String::new()));
    let ok = eventually(Duration::from_secs(20), || {
        let page = page.clone();
        async move {
            let text = app.metrics().await;
            let hit = metric(&text, series) == Some(value);
            *page.lock().unwrap() = text;
            hit
        }
    })
    .await;
    let page = page.lock().unwrap().clone();
    assert!(ok, "expected {series} {value} in:\n{page}");
    page
}

/// Every line of the family `name` (its samples), for failure messages.
fn family(page: &str, name: &str) -> String {
    page.lines()
        .filter(|l| l.starts_with(name))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sum of a counter's series whose labels include every one of `labels`.
fn sum_of(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (series, value) = rest.rsplit_once(' ')?;
            (series.starts_with('{') && labels.iter().all(|want| series.contains(want)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

#[tokio::test]
async fn metrics_count_a_tenants_messages_rejections_refusals_and_model_calls() {
    let model = fake_model().await;
    let graph = fake_graph().await;
    let app = spawn_app_with(
        |s| {
            s.openai_base_url = Some(format!("{}/v1", model.base));
            s.openai_api_key = Some("sk-platform-test".to_owned().into());
            s.llm.backoff_ms = 20;
            // One session may post twice in a burst, then once a minute.
            s.limits.webchat_session_burst = 2;
            s.limits.webchat_session_per_minute = 1;
        },
        None,
    )
    .await;
    let before = app.metrics().await;
    let tenant = app.demo_tenant;
    let series = |name, channel, third| tenant_series(name, tenant, channel, third);

    // Web chat: a customer asks twice and is answered twice by the model.
    let calm = session();
    for (i, text) in ["What are your opening hours?", "And on Fridays?"]
        .iter()
        .enumerate()
    {
        let (status, body) = app
            .post_chat(app.demo_channel, &calm, &format!("c{i}"), text)
            .await;
        assert_eq!(status, 202, "{body}");
        app.wait_for_agent_replies(app.demo_channel, &calm, i + 1)
            .await;
    }
    // A flooding session: its third post at once is refused (429), and not counted inbound.
    let flood = session();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, _) = app
            .post_chat(app.demo_channel, &flood, &format!("f{i}"), "Hello?")
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [202, 202, 429]);
    // A message the model refuses (400): the turn degrades to the offline answer.
    let refused = session();
    let (status, _) = app
        .post_chat(
            app.demo_channel,
            &refused,
            "r1",
            &format!("Please {REFUSED}"),
        )
        .await;
    assert_eq!(status, 202);
    app.wait_for_agent_replies(app.demo_channel, &refused, 1)
        .await;

    // WhatsApp: a signed message is stored and answered through the Graph API; a forged one is
    // refused and counted with its reason.
    let url = whatsapp_channel(&app, &graph).await;
    let body = whatsapp_message(REACHABLE, "wamid.metrics-1", "Do you install panels?");
    assert_eq!(
        post_webhook(&app, &url, &body, &sign(APP_SECRET, &body)).await,
        200
    );
    let forged = whatsapp_message(REACHABLE, "wamid.metrics-2", "forged");
    assert_eq!(
        post_webhook(&app, &url, &forged, &sign("not-the-secret", &forged)).await,
        403
    );
    graph.wait_for("/messages", 1).await;

    // This tenant's own series: exact.
    let page = wait_for_metric(
        &app,
        &series("switchboard_outbound_total", "whatsapp", ("result", "sent")),
        1.0,
    )
    .await;
    let inbound = |channel, result| {
        metric(
            &page,
            &series("switchboard_inbound_total", channel, ("result", result)),
        )
    };
    let all_inbound = family(&page, "switchboard_inbound_total");
    assert_eq!(inbound("webchat", "accepted"), Some(5.0), "{all_inbound}");
    assert_eq!(inbound("whatsapp", "accepted"), Some(1.0), "{all_inbound}");
    // Every web-chat reply committed is counted once (the flooding session's two posts may
    // have been answered together or apart).
    let webchat_sent = series("switchboard_outbound_total", "webchat", ("result", "sent"));
    let mut owner = app.owner().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = app.metrics().await;
        let replies: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             JOIN channels ch ON ch.id = c.channel_id \
             WHERE m.role = 'agent' AND ch.kind = 'webchat'",
        )
        .fetch_one(&mut owner)
        .await
        .unwrap();
        let counted = metric(&page, &webchat_sent).unwrap_or(0.0);
        if replies >= 4 && counted == replies as f64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "web-chat replies counted: {counted}, in the database: {replies}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = app.metrics().await;
    assert_eq!(
        metric(
            &page,
            &series(
                "switchboard_webhook_rejected_total",
                "whatsapp",
                ("reason", "bad_signature")
            )
        ),
        Some(1.0),
        "{}",
        family(&page, "switchboard_webhook_rejected_total")
    );

    // Shared families: at least what this test did.
    let grew = |name: &str, labels: &[&str], by: f64| {
        let (then, now) = (sum_of(&before, name, labels), sum_of(&page, name, labels));
        assert!(
            now >= then + by,
            "{name}{labels:?} grew from {then} to {now}, expected +{by}:\n{}",
            family(&page, name)
        );
    };
    grew(
        "switchboard_rate_limited_total",
        &["what=\"webchat_post\""],
        1.0,
    );
    grew(
        "switchboard_llm_errors_total",
        &["kind=\"client_error\""],
        1.0,
    );
    // At least four answered model calls (two calm, the flood's — its two posts possibly
    // answered together — and the WhatsApp one), 20 prompt and 15 completion tokens each.
    grew("switchboard_llm_tokens_total", &["kind=\"prompt\""], 80.0);
    grew(
        "switchboard_llm_tokens_total",
        &["kind=\"completion\""],
        60.0,
    );
    grew("switchboard_turns_total", &["outcome=\"answered\""], 4.0);

    // Latencies are Prometheus histograms (buckets, not quantiles), so they add up across
    // processes.
    for (name, series) in [
        (
            "switchboard_turn_seconds",
            "switchboard_turn_seconds_bucket{le=\"",
        ),
        (
            "switchboard_llm_request_seconds",
            "switchboard_llm_request_seconds_bucket{outcome=\"ok\",le=\"",
        ),
        (
            "switchboard_llm_request_seconds",
            "switchboard_llm_request_seconds_bucket{outcome=\"error\",le=\"",
        ),
        (
            "switchboard_retrieval_seconds",
            "switchboard_retrieval_seconds_bucket{source=\"search\",le=\"",
        ),
    ] {
        assert!(
            page.contains(&format!("# TYPE {name} histogram")),
            "{name} is a histogram:\n{}",
            family(&page, name)
        );
        assert!(
            page.contains(series) && page.contains(&format!("{name}_count")),
            "{series}… in:\n{}",
            family(&page, name)
        );
    }
    assert!(
        page.contains("switchboard_turn_seconds_bucket{le=\"60\"}"),
        "turns have buckets up to the turn timeout:\n{}",
        family(&page, "switchboard_turn_seconds")
    );
    assert!(
        page.contains("switchboard_live_actors{actor=\"conversation\"}")
            && page.contains("switchboard_live_actors{actor=\"tenant\"}"),
        "{}",
        family(&page, "switchboard_live_actors")
    );
    // Every family has its help text.
    for name in [
        "switchboard_inbound_total",
        "switchboard_outbound_total",
        "switchboard_webhook_rejected_total",
        "switchboard_rate_limited_total",
        "switchboard_llm_errors_total",
        "switchboard_llm_tokens_total",
        "switchboard_outbox_backlog",
        "switchboard_outbox_oldest_age_seconds",
        "switchboard_events_parked",
    ] {
        assert!(
            page.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
    }
    app.stop().await;
}

async fn scalar_f64(c: &mut PgConnection, sql: &str) -> f64 {
    sqlx::query_scalar::<_, f64>(sql)
        .fetch_one(c)
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_show_the_outbox_backlog_its_oldest_age_and_the_parked_events() {
    let graph = fake_graph().await;
    let app = spawn_app_with(|s| s.pipeline.retry_backoff_ms = 20, None).await;
    // Nothing waits yet: the backlog is read from this test's own database, so it is exact.
    let page = app.metrics().await;
    for gauge in [
        "switchboard_outbox_backlog",
        "switchboard_outbox_oldest_age_seconds",
        "switchboard_inbound_events_pending",
        "switchboard_events_parked",
        "switchboard_effects_backlog",
    ] {
        assert!(
            page.contains(&format!("# TYPE {gauge} gauge")),
            "{gauge}: {page}"
        );
        assert_eq!(metric(&page, gauge), Some(0.0), "{gauge}");
    }

    // A reply the provider keeps refusing waits in the outbox; a message whose turns keep
    // failing is parked.
    let mut owner = app.owner().await;
    sqlx::raw_sql(BREAK_TURNS)
        .execute(&mut owner)
        .await
        .unwrap();
    let url = whatsapp_channel(&app, &graph).await;
    let body = whatsapp_message(UNREACHABLE, "wamid.backlog-1", "Are you open today?");
    assert_eq!(
        post_webhook(&app, &url, &body, &sign(APP_SECRET, &body)).await,
        200
    );
    let broken = format!("broken-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = app
        .post_chat(app.demo_channel, &broken, "b1", "Hello?")
        .await;
    assert_eq!(status, 202);
    graph.wait_for("/messages", 1).await;

    let page = wait_for_metric(&app, "switchboard_events_parked", 1.0).await;
    let page = if metric(&page, "switchboard_outbox_backlog") == Some(1.0) {
        page
    } else {
        // The parked conversation's holding message may still be on its way.
        wait_for_metric(&app, "switchboard_outbox_backlog", 1.0).await
    };
    let in_db = scalar_f64(
        &mut owner,
        "SELECT count(*)::float8 FROM outbox WHERE status IN ('pending', 'sending')",
    )
    .await;
    assert_eq!(in_db, 1.0, "the WhatsApp reply is the one waiting");
    // Its age: at least the time since it was written (measured after the scrape), and no
    // more than the test has run.
    let age_now = scalar_f64(
        &mut owner,
        "SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM outbox \
         WHERE status IN ('pending', 'sending')",
    )
    .await;
    let age = metric(&page, "switchboard_outbox_oldest_age_seconds").expect("the age gauge");
    assert!(
        age > 0.0 && age <= age_now,
        "age {age}, in the database now {age_now}"
    );
    let parked = scalar_f64(
        &mut owner,
        "SELECT count(*)::float8 FROM inbound_events WHERE status = 'parked'",
    )
    .await;
    assert_eq!(parked, 1.0);
    app.stop().await;
}

#[tokio::test]
async fn metrics_give_tenants_past_the_configured_limit_the_label_other() {
    let app = spawn_app_with(|s| s.metrics.max_tenant_labels = 1, None).await;
    let other_series = |result| {
        tenant_series(
            "switchboard_inbound_total",
            "other",
            "webchat",
            ("result", result),
        )
    };
    let others_before = metric(&app.metrics().await, &other_series("accepted")).unwrap_or(0.0);

    // The demo tenant is the first this application sees: it gets its id as label.
    let s = session();
    let (status, _) = app.post_chat(app.demo_channel, &s, "m1", "Hello").await;
    assert_eq!(status, 202);
    // A second tenant is past the limit of one.
    let (status, body) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "metrics-second", "name": "Second"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let second = body["tenant"]["id"].as_str().unwrap().to_owned();
    let second_chat: switchboard_core::ChannelId =
        body["channels"][0]["id"].as_str().unwrap().parse().unwrap();
    let s2 = session();
    for i in 0..2 {
        let (status, _) = app
            .post_chat(second_chat, &s2, &format!("m{i}"), "Hello")
            .await;
        assert_eq!(status, 202);
    }
    app.wait_for_agent_replies(second_chat, &s2, 1).await;

    let page = app.metrics().await;
    let inbound = family(&page, "switchboard_inbound_total");
    assert_eq!(
        metric(
            &page,
            &tenant_series(
                "switchboard_inbound_total",
                app.demo_tenant,
                "webchat",
                ("result", "accepted")
            )
        ),
        Some(1.0),
        "{inbound}"
    );
    assert!(
        !page.contains(&second),
        "the second tenant has no label:\n{inbound}"
    );
    let others = metric(&page, &other_series("accepted")).unwrap_or(0.0);
    assert!(others >= others_before + 2.0, "{inbound}");
    app.stop().await;
}

/// What a local OTLP/HTTP collector received: the `POST /v1/traces` requests.
#[derive(Clone, Default)]
struct Collector {
    posts: Arc<Mutex<Vec<Post>>>,
}

/// One export request: its content type and body.
struct Post {
    content_type: String,
    body: Vec<u8>,
}

/// One exported span, decoded.
struct Span {
    /// The `service.name` of its resource.
    service: String,
    name: String,
    /// Its attributes with string values.
    attributes: Vec<(String, String)>,
}

impl Span {
    fn has(&self, key: &str, value: &str) -> bool {
        self.attributes.iter().any(|(k, v)| k == key && v == value)
    }
}

impl Collector {
    /// Starts the collector on 127.0.0.1; returns it and its base URL.
    async fn start() -> (Collector, String) {
        let collector = Collector::default();
        let posts = collector.posts.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let posts = posts.clone();
                    async move {
                        let content_type = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        posts.lock().unwrap().push(Post {
                            content_type,
                            body: body.to_vec(),
                        });
                        // An empty ExportTraceServiceResponse.
                        (
                            [("content-type", "application/x-protobuf")],
                            Vec::<u8>::new(),
                        )
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (collector, base)
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use prost::Message;
        let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(Any::StringValue(s)) => s.clone(),
            _ => String::new(),
        };
        let mut out = Vec::new();
        for post in self.posts.lock().unwrap().iter() {
            assert_eq!(post.content_type, "application/x-protobuf");
            let request = ExportTraceServiceRequest::decode(post.body.as_slice())
                .expect("an OTLP protobuf export request");
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .map(|a| text(&a.value))
                    .unwrap_or_default();
                for span in resource.scope_spans.iter().flat_map(|s| &s.spans) {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect();
                    out.push(Span {
                        service: service.clone(),
                        name: span.name.clone(),
                        attributes,
                    });
                }
            }
        }
        out
    }
}

/// The real binary with the standard `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` in
/// its own environment (no other test's process sees them): the spans of a web-chat message,
/// with the tenant's id, reach the collector as OTLP protobuf, and the spans still open at
/// shutdown (the dispatcher's lifetime) are sent when the process stops.
#[tokio::test]
async fn traces_of_a_web_chat_turn_reach_an_otlp_collector() {
    let (collector, endpoint) = Collector::start().await;
    let database = fresh_database().await;
    let port = free_port();
    let data_dir = std::env::temp_dir().join(format!("sb-otlp-{}", uuid::Uuid::new_v4().simple()));
    let service = format!("sb-otlp-{}", uuid::Uuid::new_v4().simple());
    let mut child = KillOnDrop(start_binary(
        &database,
        port,
        &data_dir,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", service.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    ));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let channels = get(format!("{base}/api/v1/channels?tenant=demo")).await;
    let channel = channels["channels"][0]["id"].as_str().unwrap().to_owned();
    let tenants = get(format!("{base}/api/v1/tenants")).await;
    let tenant = tenants["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "demo")
        .expect("the demo tenant")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let s = session();
    let status = http
        .post(format!("{base}/api/v1/webchat/{channel}/messages"))
        .json(&json!({"session_id": s, "client_message_id": "c1", "text": "What are your opening hours?"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);

    // The post's span and the turn's, both carrying the tenant, arrive within the batch delay.
    let has = |name: &str| {
        collector
            .spans()
            .iter()
            .any(|s| s.service == service && s.name == name && s.has("tenant_id", &tenant))
    };
    let arrived = eventually(Duration::from_secs(20), || async {
        has("post_message") && has("turn")
    })
    .await;
    let names = |c: &Collector| {
        c.spans()
            .into_iter()
            .map(|s| format!("{}/{}", s.service, s.name))
            .collect::<Vec<_>>()
    };
    assert!(arrived, "spans received: {:?}", names(&collector));
    assert!(
        !collector.spans().iter().any(|s| s.name == "dispatcher"),
        "the dispatcher's span lasts as long as the process"
    );

    // Stopped with SIGTERM: the last spans are flushed before the process exits.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let exited = eventually(Duration::from_secs(30), || {
        let done = child.0.try_wait().unwrap().is_some();
        async move { done }
    })
    .await;
    assert!(exited, "the server stopped");
    assert!(
        collector
            .spans()
            .iter()
            .any(|s| s.service == service && s.name == "dispatcher"),
        "spans received: {:?}",
        names(&collector)
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
