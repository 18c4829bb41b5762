//! The client against a local stub provider over real HTTP.

use std::sync::Mutex;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap as AxumHeaders;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::*;
use crate::embed::{EmbedKind, Embedder};

const KEY: &str = "sk-test-SECRET-0123456789";

/// What the stub answers to one request.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// One request as the stub saw it.
struct Seen {
    at: Instant,
    authorization: Option<String>,
    body: Value,
}

type Script = dyn Fn(usize, &Value) -> Reply + Send + Sync;

struct StubState {
    script: Box<Script>,
    seen: Mutex<Vec<Seen>>,
}

/// A provider on 127.0.0.1 answering `POST /v1/embeddings` by calling `script` with the request's
/// number (from 0) and JSON body.
struct Stub {
    base_url: String,
    state: Arc<StubState>,
}

impl Stub {
    async fn start(script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(StubState {
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    fn config(&self) -> OpenAiEmbedConfig {
        OpenAiEmbedConfig {
            base_url: self.base_url.clone(),
            api_key: Some(KEY.into()),
            model: "test-embed".into(),
            max_retries: 3,
            timeout: Duration::from_secs(5),
            ..OpenAiEmbedConfig::default()
        }
    }

    fn embedder(&self, config: OpenAiEmbedConfig) -> Embedder {
        Embedder::OpenAi(
            OpenAiEmbedder::new(config)
                .unwrap()
                .with_retry_base_delay(Duration::from_millis(10)),
        )
    }

    fn requests(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }
}

async fn handle(
    State(state): State<Arc<StubState>>,
    headers: AxumHeaders,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.clone(),
        });
        seen.len() - 1
    };
    let reply = (state.script)(n, &body);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json");
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// A successful answer: input `t<k>` gets the (unnormalised) vector `[k, 1, 0, 0]`, and the
/// items are listed in reverse so that the client must reorder them by `index`.
fn answer(body: &Value) -> Reply {
    let inputs = body["input"].as_array().unwrap();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| {
            let k: f32 = text.as_str().unwrap()[1..].parse().unwrap();
            json!({"object": "embedding", "index": i, "embedding": [k, 1.0, 0.0, 0.0]})
        })
        .collect();
    Reply::json(
        200,
        json!({"object": "list", "data": data, "model": body["model"]}),
    )
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("t{k}")).collect()
}

/// The vector [`answer`] gives `t<k>`, normalised.
fn expected(k: usize) -> Vec<f32> {
    let mut v = vec![k as f32, 1.0, 0.0, 0.0];
    l2_normalize(&mut v);
    v
}

#[tokio::test]
async fn batches_requests_and_restores_input_order() {
    let stub = Stub::start(|_, body| answer(body)).await;
    let e = stub.embedder(OpenAiEmbedConfig {
        batch_size: 3,
        ..stub.config()
    });
    assert_eq!(e.dims(), None);
    let out = e.embed(&texts(7), EmbedKind::Passage).await.unwrap();
    assert_eq!(out, (0..7).map(expected).collect::<Vec<_>>());
    assert_eq!(e.dims(), Some(4), "learned from the first answer");

    let seen = stub.state.seen.lock().unwrap();
    let sizes: Vec<usize> = seen
        .iter()
        .map(|s| s.body["input"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen[1].body["input"], json!(["t3", "t4", "t5"]));
    assert_eq!(seen[0].body["model"], "test-embed");
    assert_eq!(seen[0].body["encoding_format"], "float");
    assert!(seen[0].body.get("dimensions").is_none());
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
}

#[tokio::test]
async fn sends_dimensions_and_names_the_shortened_space() {
    let stub = Stub::start(|_, body| answer(body)).await;
    let e = stub.embedder(OpenAiEmbedConfig {
        dimensions: Some(4),
        api_key: None,
        ..stub.config()
    });
    assert_eq!(e.model_id(), "openai/test-embed@4");
    assert_eq!(e.dims(), Some(4));
    e.embed(&texts(2), EmbedKind::Query).await.unwrap();
    let seen = stub.state.seen.lock().unwrap();
    assert_eq!(seen[0].body["dimensions"], 4);
    assert_eq!(seen[0].authorization, None);
}

#[tokio::test]
async fn honours_retry_after_on_429_then_succeeds() {
    let stub = Stub::start(|n, body| match n {
        0 => Reply::json(429, json!({"error": {"message": "Rate limit reached"}}))
            .header("retry-after", "1"),
        _ => answer(body),
    })
    .await;
    // A backoff of several seconds would be chosen without the header; the answer must come
    // after about the one second asked for instead.
    let e = Embedder::OpenAi(
        OpenAiEmbedder::new(stub.config())
            .unwrap()
            .with_retry_base_delay(Duration::from_secs(8)),
    );
    let out = e.embed(&texts(2), EmbedKind::Query).await.unwrap();
    assert_eq!(out, vec![expected(0), expected(1)]);
    let seen = stub.state.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let stub = Stub::start(|n, body| match n {
        0 => Reply::json(500, json!({"error": {"message": "internal"}})),
        1 => Reply::json(503, json!({"error": {"message": "overloaded"}})),
        _ => answer(body),
    })
    .await;
    let out = stub
        .embedder(stub.config())
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap();
    assert_eq!(out, vec![expected(0)]);
    assert_eq!(stub.requests(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_carry_the_provider_message() {
    let stub = Stub::start(|_, _| {
        Reply::json(
            400,
            json!({"error": {"message": "Invalid 'input': empty string", "type": "invalid_request_error"}}),
        )
    })
    .await;
    let err = stub
        .embedder(stub.config())
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    assert_eq!(stub.requests(), 1);
    assert!(!err.is_transient());
    match &err {
        EmbedError::Http {
            status, message, ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(message, "Invalid 'input': empty string");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(err.to_string().contains("HTTP 400"), "{err}");
}

#[tokio::test]
async fn gives_up_on_rate_limiting_after_the_retry_budget() {
    let stub = Stub::start(|_, _| {
        Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after", "0")
    })
    .await;
    let err = stub
        .embedder(OpenAiEmbedConfig {
            max_retries: 2,
            ..stub.config()
        })
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    assert_eq!(stub.requests(), 3);
    assert!(err.is_transient());
    assert!(
        matches!(&err, EmbedError::RateLimited { attempts: 3, message, .. } if message == "slow down"),
        "{err:?}"
    );
}

#[tokio::test]
async fn times_out_each_attempt_and_reports_a_timeout() {
    let stub = Stub::start(|_, body| Reply {
        delay: Duration::from_secs(3),
        ..answer(body)
    })
    .await;
    let started = Instant::now();
    let err = stub
        .embedder(OpenAiEmbedConfig {
            timeout: Duration::from_millis(200),
            max_retries: 1,
            ..stub.config()
        })
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stub.requests(), 2);
    assert!(err.is_transient());
    assert!(
        matches!(err, EmbedError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_provider_is_a_transient_connection_error() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = Embedder::OpenAi(
        OpenAiEmbedder::new(OpenAiEmbedConfig {
            base_url: format!("http://{addr}/v1"),
            max_retries: 1,
            ..OpenAiEmbedConfig::default()
        })
        .unwrap()
        .with_retry_base_delay(Duration::from_millis(1)),
    );
    let err = e.embed(&texts(1), EmbedKind::Query).await.unwrap_err();
    assert!(err.is_transient());
    assert!(
        matches!(err, EmbedError::Connection { attempts: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_answers_are_invalid_responses_and_not_retried() {
    let cases: Vec<(&str, Box<Script>)> = vec![
        (
            "2 embeddings for 3 inputs",
            Box::new(|_, body: &Value| {
                let mut reply: Value = serde_json::from_str(&answer(body).body).unwrap();
                reply["data"].as_array_mut().unwrap().pop();
                Reply::json(200, reply)
            }),
        ),
        (
            "appears twice",
            Box::new(|_, _: &Value| {
                let item = json!({"index": 0, "embedding": [1.0, 0.0]});
                Reply::json(200, json!({"data": [item, item, item]}))
            }),
        ),
        (
            "earlier ones had 2",
            Box::new(|_, _: &Value| {
                Reply::json(
                    200,
                    json!({"data": [
                        {"index": 0, "embedding": [1.0, 0.0]},
                        {"index": 1, "embedding": [1.0, 0.0, 0.0]},
                        {"index": 2, "embedding": [1.0, 0.0]},
                    ]}),
                )
            }),
        ),
        (
            "is zero or not finite",
            Box::new(|_, _: &Value| {
                Reply::json(
                    200,
                    json!({"data": [
                        {"index": 0, "embedding": [1.0, 0.0]},
                        {"index": 1, "embedding": [1e39, 0.0]},
                        {"index": 2, "embedding": [0.0, 0.0]},
                    ]}),
                )
            }),
        ),
        (
            "not an embeddings answer",
            Box::new(|_, _: &Value| Reply::json(200, json!({"data": [{"index": 0}]}))),
        ),
    ];
    for (expected_reason, script) in cases {
        let stub = Stub::start(script).await;
        let err = stub
            .embedder(stub.config())
            .embed(&texts(3), EmbedKind::Passage)
            .await
            .unwrap_err();
        assert_eq!(stub.requests(), 1, "{expected_reason}");
        assert!(!err.is_transient());
        match &err {
            EmbedError::InvalidResponse { model_id, reason } => {
                assert_eq!(model_id, "openai/test-embed");
                assert!(reason.contains(expected_reason), "{reason}");
            }
            other => panic!("expected an invalid response, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn configured_dimensions_are_enforced() {
    let stub = Stub::start(|_, body| answer(body)).await;
    let err = stub
        .embedder(OpenAiEmbedConfig {
            dimensions: Some(8),
            ..stub.config()
        })
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("has 4 dimensions, expected 8"),
        "{err}"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_debug_output_or_errors() {
    // A provider that echoes the key it was sent, as some do on authentication failures.
    let stub = Stub::start(|_, _| {
        Reply::json(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}}),
        )
    })
    .await;
    let config = stub.config();
    let embedder = stub.embedder(config.clone());
    let err = embedder
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    let shown = [
        format!("{config:?}"),
        format!("{embedder:?}"),
        format!("{err}"),
        format!("{err:?}"),
    ];
    for text in &shown {
        assert!(!text.contains(KEY), "key leaked: {text}");
        assert!(!text.contains("SECRET"), "key leaked: {text}");
    }
    assert!(
        shown[2].contains("Incorrect API key provided: [redacted]"),
        "{}",
        shown[2]
    );
    assert!(shown[1].contains("[redacted]"), "{}", shown[1]);
}

#[test]
fn base_url_credentials_stay_out_of_errors() {
    let err = OpenAiEmbedder::new(OpenAiEmbedConfig {
        base_url: "https://user:hunter2@exa mple.com/v1".into(),
        ..OpenAiEmbedConfig::default()
    })
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let ok = OpenAiEmbedder::new(OpenAiEmbedConfig {
        base_url: "https://user:hunter2@example.com/v1/".into(),
        ..OpenAiEmbedConfig::default()
    })
    .unwrap();
    assert_eq!(ok.inner.endpoint, "https://example.com/v1/embeddings");
    assert!(!format!("{ok:?}").contains("hunter2"));
}

#[test]
fn model_ids_and_known_dimensions() {
    let e = OpenAiEmbedder::new(OpenAiEmbedConfig::default()).unwrap();
    assert_eq!(e.model_id(), "openai/text-embedding-3-small");
    assert_eq!(e.dims(), Some(1536));
    let e = OpenAiEmbedder::new(OpenAiEmbedConfig {
        model: "text-embedding-3-large".into(),
        dimensions: Some(256),
        ..OpenAiEmbedConfig::default()
    })
    .unwrap();
    assert_eq!(e.model_id(), "openai/text-embedding-3-large@256");
    assert_eq!(e.dims(), Some(256));
    assert!(OpenAiEmbedder::new(OpenAiEmbedConfig {
        batch_size: 0,
        ..OpenAiEmbedConfig::default()
    })
    .is_err());
}

#[test]
fn retry_after_is_read_from_the_header_and_capped() {
    // The parser itself (seconds, dates, garbage) is `switchboard_core::retry`'s, tested there.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let with = |value: &str| {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        retry_after(&h, now)
    };
    assert_eq!(with("7"), Some(Duration::from_secs(7)));
    assert_eq!(with("3600"), Some(RETRY_AFTER_CAP));
    assert_eq!(with("soon"), None);
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
}

#[test]
fn backoff_grows_exponentially_with_jitter_and_a_cap() {
    let base = Duration::from_millis(100);
    for attempt in 1..=4 {
        let full = base * 2u32.pow(attempt - 1);
        let d = backoff(base, attempt);
        assert!(d >= full / 2 && d < full, "attempt {attempt}: {d:?}");
    }
    assert!(backoff(base, 40) <= BACKOFF_CAP);
    let samples: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(base, 3)).collect();
    assert!(samples.len() > 1, "jitter varies");
}
