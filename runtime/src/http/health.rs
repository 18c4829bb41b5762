//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use switchboard_actors::RootMsg;
use utoipa::ToSchema;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;
use crate::embedded_pg::ServerState;

/// Whether the process serves HTTP.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Whether the server can take traffic, and what is missing when it cannot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `ok`, `down`, or `restarting` (the embedded PostgreSQL is being started again).
    pub database: &'static str,
    /// `ok` or `down` (absent while the database restarts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<&'static str>,
    /// Why the embedded database restarts (only then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process serves HTTP", body = Liveness))
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// The database answers and the actor tree is alive: ready to take traffic. While the embedded
/// PostgreSQL is being restarted after a death, the answer is 503 without waiting for the pool.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers and the actor tree is alive", body = Readiness),
        (status = 503, description = "Not ready: the database or the actors are down, or the embedded database restarts", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let embedded = state.embedded_pg.as_ref().map(|s| s.borrow().clone());
    if let Some(ServerState::Restarting { reason, .. }) = &embedded {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not_ready",
                database: "restarting",
                actors: None,
                reason: Some(reason.clone()),
            }),
        );
    }
    let db_ok = tokio::time::timeout(Duration::from_secs(2), state.services.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let actors_ok = matches!(
        state
            .root
            .call(RootMsg::Ping, Some(Duration::from_secs(2)))
            .await,
        Ok(ractor::rpc::CallResult::Success(_))
    );
    let status = if db_ok && actors_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "down" };
    (
        status,
        Json(Readiness {
            status: if status == StatusCode::OK {
                "ready"
            } else {
                "not_ready"
            },
            database: word(db_ok),
            actors: Some(word(actors_ok)),
            reason: None,
        }),
    )
}

/// How long a request waits for the embedded PostgreSQL to come back from a death before it is
/// answered 503 (a restart with crash recovery usually takes under a second).
const DATABASE_WAIT: Duration = Duration::from_secs(5);

/// While the embedded PostgreSQL is being restarted after a death, requests that need the
/// database wait for it (briefly), then get 503 with `Retry-After` — rather than hanging on the
/// pool's connection attempts until the client gives up. Nothing is stored by a refused request,
/// and providers retry a 503.
pub async fn database_gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(pg) = &state.embedded_pg {
        let mut pg = pg.clone();
        let restarting = matches!(*pg.borrow(), ServerState::Restarting { .. });
        if restarting {
            let back = tokio::time::timeout(DATABASE_WAIT, pg.wait_for(ServerState::is_up)).await;
            if !matches!(back, Ok(Ok(_))) {
                return ApiError::unavailable(
                    "the database is restarting and nothing was stored; retry in a few seconds",
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}
