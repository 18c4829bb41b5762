//! The one API error type: JSON `{"error": {"code", "message"}}` with the right status, and the
//! extractors that turn axum's rejections into it. Internal errors are logged once with their
//! cause and answered with a generic message that leaks nothing.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use switchboard_core::DbError;
use utoipa::ToSchema;

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a sentence for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case (`not_found`, `unauthorized`, `forbidden`, `invalid_body`, …).
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// Says what to do about it; never reveals internals.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429s; 503s get a default).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After: secs`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in, or send a valid credential (Authorization: Bearer <API key, session token or SWITCHBOARD_ADMIN_TOKEN>)",
        )
    }

    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, source = ?error.source(), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; the request was not applied",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        });
        // A 503 tells clients and providers to come back after the usual restart time.
        let retry_after = self.retry_after.map(|s| s.to_string()).or_else(|| {
            (self.status == StatusCode::SERVICE_UNAVAILABLE).then(|| UNAVAILABLE_RETRY_SECS.into())
        });
        let mut response = (self.status, body).into_response();
        if let Some(v) = retry_after.and_then(|v| axum::http::HeaderValue::from_str(&v).ok()) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// `Retry-After` of a 503: about how long the embedded database takes to come back.
const UNAVAILABLE_RETRY_SECS: &str = "2";

/// Whether a database error means the server is away (down, restarting, unreachable) rather
/// than that the request or the data is wrong.
fn database_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // The server is shutting down, restarting or in recovery.
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => ApiError::not_found(m),
            DbError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            DbError::Invalid(m) => ApiError::bad_request("invalid", m),
            DbError::Sql(e) if database_away(&e) => {
                tracing::warn!(error = %e, "database unavailable; answering 503");
                ApiError::unavailable(
                    "the database is not reachable right now and nothing was stored; retry in a few seconds",
                )
            }
            other => ApiError::internal(&other),
        }
    }
}

/// `Json<T>` whose rejections are API errors: malformed JSON → 400, wrong content type → 415,
/// body too large → 413, wrong shape → 422.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        _ => "malformed_json",
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts".into()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body as JSON with `Content-Type: application/json`".into()
        }
        _ => r.body_text(),
    };
    ApiError::new(status, code, message)
}
