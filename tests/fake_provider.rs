//! A local stand-in for a provider's REST API (Graph API, Twilio, Bot API): an axum server on a
//! free port that records every request and answers with queued or default responses. It speaks
//! HTTP like the real provider; nothing of Switchboard is mocked.
#![allow(dead_code)] // Each provider test uses a different subset.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A field of a JSON body, or of a `multipart/form-data` body (teloxide sends requests that
    /// may carry files, such as `setWebhook`, as multipart).
    pub fn field(&self, name: &str) -> Option<String> {
        if let Some(v) = self.json().get(name) {
            return Some(
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
        let text = String::from_utf8_lossy(&self.body);
        let marker = format!("name=\"{name}\"");
        let start = text.find(&marker)? + marker.len();
        let rest = &text[start..];
        let value_start = rest.find("\r\n\r\n")? + 4;
        let value = &rest[value_start..];
        Some(value[..value.find("\r\n")?].to_owned())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

type Responder = Box<dyn Fn(&Received, usize) -> (u16, Value) + Send + Sync>;

struct FakeState {
    received: Mutex<Vec<Received>>,
    queued: Mutex<VecDeque<(u16, Value)>>,
    default: Responder,
}

/// A running fake provider.
#[derive(Clone)]
pub struct FakeProvider {
    pub base: String,
    state: Arc<FakeState>,
}

impl FakeProvider {
    /// Starts a fake answering `default(request, index)` unless a queued response is waiting.
    pub async fn start(
        default: impl Fn(&Received, usize) -> (u16, Value) + Send + Sync + 'static,
    ) -> FakeProvider {
        let state = Arc::new(FakeState {
            received: Mutex::new(Vec::new()),
            queued: Mutex::new(VecDeque::new()),
            default: Box::new(default),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeProvider { base, state }
    }

    /// The next request gets this answer instead of the default.
    pub fn queue(&self, status: u16, body: Value) {
        self.state.queued.lock().unwrap().push_back((status, body));
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Requests whose path ends with `suffix`, ignoring case (the Bot API's method names are
    /// case-insensitive, and teloxide capitalises them).
    pub fn received_at(&self, suffix: &str) -> Vec<Received> {
        let suffix = suffix.to_ascii_lowercase();
        self.received()
            .into_iter()
            .filter(|r| r.path.to_ascii_lowercase().ends_with(&suffix))
            .collect()
    }

    /// Waits until at least `n` requests ended with `suffix`; returns them.
    pub async fn wait_for(&self, suffix: &str, n: usize) -> Vec<Received> {
        let ok = crate::helpers::eventually(Duration::from_secs(20), || async {
            self.received_at(suffix).len() >= n
        })
        .await;
        assert!(
            ok,
            "expected {n} requests to …{suffix}; got {:#?}",
            self.received()
        );
        self.received_at(suffix)
    }
}

async fn record(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let received = Received {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
        at: std::time::Instant::now(),
    };
    let index = {
        let mut all = state.received.lock().unwrap();
        all.push(received.clone());
        all.len() - 1
    };
    let queued = state.queued.lock().unwrap().pop_front();
    let (status, body) = queued.unwrap_or_else(|| (state.default)(&received, index));
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Json(body),
    )
}
