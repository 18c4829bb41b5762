//! A fake WhatsApp Cloud API (Meta Graph API) for the open loop: it accepts every send the way
//! Graph does (`POST /{version}/{phone_number_id}/messages` with a bearer token, answered with
//! a fresh `wamid`) and records when each arrived, which is when the customer would have got
//! the reply.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

/// A running fake Graph API.
pub(super) struct FakeGraph {
    /// Base URL to configure as the channels' `api_base_url`.
    pub base: String,
    state: Arc<Recorder>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    /// Arrival time of every send, by the `wamid` it was given.
    sends: Mutex<HashMap<String, Instant>>,
    /// Sends refused because they were malformed (a bug in the sender, reported by the run).
    malformed: AtomicU64,
}

impl FakeGraph {
    pub async fn start() -> anyhow::Result<FakeGraph> {
        let state = Arc::new(Recorder::default());
        let app = axum::Router::new()
            .route("/{version}/{phone}/messages", axum::routing::post(send))
            .route("/{version}/{id}", axum::routing::get(read_number))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeGraph {
            base,
            state,
            server,
        })
    }

    /// Arrival times of the sends so far, by `wamid`.
    pub fn sends(&self) -> HashMap<String, Instant> {
        self.state.sends.lock().expect("sends").clone()
    }

    pub fn malformed(&self) -> u64 {
        self.state.malformed.load(Ordering::Relaxed)
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn send(
    State(state): State<Arc<Recorder>>,
    Path((_version, _phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: Json<Value>,
) -> (StatusCode, Json<Value>) {
    let at = Instant::now();
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    if !authorised || body["messaging_product"] != "whatsapp" || to.is_empty() {
        state.malformed.fetch_add(1, Ordering::Relaxed);
        // Graph's answer to a bad request: code 100, "Invalid parameter" (permanent).
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}),
            ),
        );
    }
    let wamid = format!(
        "wamid.bench-out-{}",
        state.next.fetch_add(1, Ordering::Relaxed)
    );
    state.sends.lock().expect("sends").insert(wamid.clone(), at);
    (
        StatusCode::OK,
        Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        })),
    )
}

/// The phone number read by a channel health check.
async fn read_number(Path((_version, id)): Path<(String, String)>) -> Json<Value> {
    Json(json!({"id": id, "display_phone_number": "15550000000", "verified_name": "Bench"}))
}
