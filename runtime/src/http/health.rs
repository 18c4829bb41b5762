//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use switchboard_actors::RootMsg;

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and the actor tree is alive: ready to take traffic.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db_ok = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(state.services.db.pool()),
    )
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
        Json(json!({
            "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
            "database": word(db_ok),
            "actors": word(actors_ok),
        })),
    )
}
