//! Client for OpenAI-compatible embedding endpoints (`POST {base_url}/embeddings`).
//!
//! Texts are sent in batches (`input` array, `encoding_format: "float"`) and the answer's vectors
//! are put back in input order by their `index`. Transient failures — HTTP 429, 408 and 5xx,
//! connection errors and timeouts — are retried with exponential backoff and jitter, waiting
//! instead for the provider's `Retry-After` (seconds or HTTP-date, capped) when it sends one.
//! Other 4xx answers fail at once with the provider's `error.message`.
//!
//! The API key lives in a [`SecretString`]: it is sent only as `Authorization: Bearer` (a header
//! reqwest marks sensitive), never printed by `Debug`, and scrubbed from provider messages that
//! echo it before they reach an error or a log line.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use switchboard_core::egress::Egress;
use switchboard_core::retry::{parse_retry_after, Backoff};

use super::{blocking, l2_normalize, EmbedError};

/// The longest `Retry-After` honoured; a provider asking for more is retried after this anyway
/// (and the retry budget still bounds the total).
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// The longest computed backoff between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// How much of an unparseable error body is quoted in an error.
const MESSAGE_CHARS: usize = 300;

/// Where and how to reach an OpenAI-compatible embeddings endpoint.
#[derive(Clone, Debug)]
pub struct OpenAiEmbedConfig {
    /// API root, e.g. `https://api.openai.com/v1`; `/embeddings` is appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer`; `None` for local servers that need no key.
    pub api_key: Option<SecretString>,
    /// e.g. `text-embedding-3-small`.
    pub model: String,
    /// Asks the provider to shorten vectors to this many dimensions (text-embedding-3 models).
    pub dimensions: Option<u32>,
    /// Texts per request.
    pub batch_size: usize,
    /// Limit on one request, from connecting to the end of the answer.
    pub timeout: Duration,
    /// Retries of one batch after its first attempt.
    pub max_retries: u32,
    /// Where the client may connect: [`Egress::PublicOnly`] for a tenant's own `base_url`;
    /// `Unrestricted` (the default) for the operator's endpoints.
    pub egress: Egress,
}

impl Default for OpenAiEmbedConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "text-embedding-3-small".into(),
            dimensions: None,
            batch_size: 64,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            egress: Egress::Unrestricted,
        }
    }
}

/// An embeddings client; cloning shares the connection pool.
#[derive(Clone)]
pub struct OpenAiEmbedder {
    inner: Arc<Inner>,
    /// First backoff delay, doubled on each retry (tests shorten it).
    retry_base_delay: Duration,
}

struct Inner {
    config: OpenAiEmbedConfig,
    client: reqwest::Client,
    url: Url,
    /// The URL without credentials or query, for errors and logs.
    endpoint: String,
    /// The dimension seen in the first valid answer, when it could not be known beforehand;
    /// later answers must match it.
    learned_dims: OnceLock<usize>,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("OpenAiEmbedder")
            .field("endpoint", &self.inner.endpoint)
            .field("model", &c.model)
            .field("api_key", &c.api_key.as_ref().map(|_| "[redacted]"))
            .field("dimensions", &c.dimensions)
            .field("batch_size", &c.batch_size)
            .field("timeout", &c.timeout)
            .field("max_retries", &c.max_retries)
            .finish()
    }
}

impl OpenAiEmbedder {
    /// A client for `config`; fails on an unusable URL or batch size.
    pub fn new(config: OpenAiEmbedConfig) -> Result<Self, EmbedError> {
        if config.batch_size == 0 {
            return Err(EmbedError::Config("batch_size must be at least 1".into()));
        }
        if config.dimensions == Some(0) {
            return Err(EmbedError::Config("dimensions must be at least 1".into()));
        }
        let joined = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        let url = Url::parse(&joined).map_err(|e| {
            EmbedError::Config(format!(
                "embedding base_url {:?} is not a valid URL: {e}",
                redact_url(&config.base_url)
            ))
        })?;
        let mut shown = url.clone();
        // Both only fail for URLs that cannot carry credentials, which then have none to hide.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        config.egress.check_url(url.as_str()).map_err(|e| {
            EmbedError::Config(format!(
                "embedding base_url {:?}: {e}",
                redact_url(&config.base_url)
            ))
        })?;
        let client = config
            .egress
            .http(reqwest::Client::builder().timeout(config.timeout), 5)
            .build()
            .map_err(|e| EmbedError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                url,
                endpoint: shown.to_string(),
                learned_dims: OnceLock::new(),
            }),
            retry_base_delay: Duration::from_millis(500),
        })
    }

    /// Sets the first backoff delay (default 500 ms), doubled on each further retry.
    pub fn with_retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry_base_delay = delay;
        self
    }

    /// `openai/<model>`, or `openai/<model>@<dimensions>` when the vectors are shortened (a
    /// shortened vector is not comparable with a full one).
    pub fn model_id(&self) -> String {
        let c = &self.inner.config;
        match c.dimensions {
            Some(d) => format!("openai/{}@{d}", c.model),
            None => format!("openai/{}", c.model),
        }
    }

    /// The configured `dimensions`, else the known size of OpenAI's models, else the size seen
    /// in the first answer.
    pub fn dims(&self) -> Option<usize> {
        let c = &self.inner.config;
        c.dimensions
            .map(|d| d as usize)
            .or_else(|| known_dims(&c.model))
            .or_else(|| self.inner.learned_dims.get().copied())
    }

    pub(super) async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.inner.config.batch_size) {
            let body = self.request_body(batch)?;
            let answer = self.send(body).await?;
            let this = self.clone();
            let count = batch.len();
            // Parsing a batch of 64 × 1536 floats is real CPU work: off the async workers.
            let vectors = blocking(move || this.parse(answer.as_ref(), count)).await?;
            out.extend(vectors);
        }
        Ok(out)
    }

    fn request_body(&self, batch: &[String]) -> Result<Vec<u8>, EmbedError> {
        let c = &self.inner.config;
        let mut body = serde_json::json!({
            "model": c.model,
            "input": batch,
            "encoding_format": "float",
        });
        if let Some(d) = c.dimensions {
            body["dimensions"] = d.into();
        }
        serde_json::to_vec(&body).map_err(|e| EmbedError::Config(e.to_string()))
    }

    /// Posts one batch, retrying transient failures; returns the successful answer's body.
    async fn send(&self, body: Vec<u8>) -> Result<impl AsRef<[u8]> + Send + 'static, EmbedError> {
        let attempts = self.inner.config.max_retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(&body).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            if !failure.is_retryable() || attempt >= attempts {
                return Err(self.give_up(failure, attempt));
            }
            let delay = match failure.retry_after() {
                Some(wait) => wait,
                None => backoff(self.retry_base_delay, attempt),
            };
            tracing::warn!(
                endpoint = %self.inner.endpoint,
                attempt,
                of = attempts,
                delay_ms = delay.as_millis() as u64,
                failure = %failure,
                "embedding request failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, body: &[u8]) -> Result<impl AsRef<[u8]> + Send + 'static, Failure> {
        let mut request = self
            .inner
            .client
            .post(self.inner.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(key) = &self.inner.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return response.bytes().await.map_err(|e| self.transport(e));
        }
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.unwrap_or_default();
        Err(Failure::Status {
            status,
            message: self.redact(&provider_message(&body, status)),
            retry_after,
        })
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::Timeout
        } else {
            // `without_url`: the URL is already in the error's context, perhaps with credentials.
            Failure::Connection(self.redact(&error_chain(&e.without_url())))
        }
    }

    fn give_up(&self, failure: Failure, attempts: u32) -> EmbedError {
        let endpoint = self.inner.endpoint.clone();
        match failure {
            Failure::Status {
                status, message, ..
            } if status == StatusCode::TOO_MANY_REQUESTS => EmbedError::RateLimited {
                endpoint,
                attempts,
                message,
            },
            Failure::Status {
                status, message, ..
            } => EmbedError::Http {
                endpoint,
                status: status.as_u16(),
                message,
            },
            Failure::Timeout => EmbedError::Timeout {
                endpoint,
                timeout: self.inner.config.timeout,
                attempts,
            },
            Failure::Connection(message) => EmbedError::Connection {
                endpoint,
                attempts,
                message,
            },
        }
    }

    /// Replaces any occurrence of the API key (some providers echo it back) with `[redacted]`.
    fn redact(&self, text: &str) -> String {
        match &self.inner.config.api_key {
            Some(key) if !key.expose_secret().is_empty() => {
                text.replace(key.expose_secret(), "[redacted]")
            }
            _ => text.to_owned(),
        }
    }

    /// Checks an answer and returns its vectors, normalised, in input order.
    fn parse(&self, body: &[u8], count: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let invalid = |reason: String| EmbedError::InvalidResponse {
            model_id: self.model_id(),
            reason,
        };
        let answer: Answer = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("not an embeddings answer: {e}")))?;
        if answer.data.len() != count {
            return Err(invalid(format!(
                "{} embeddings for {count} inputs",
                answer.data.len()
            )));
        }
        let expected = self.dims();
        let mut out: Vec<Option<Vec<f32>>> = vec![None; count];
        for item in answer.data {
            let dims = item.embedding.len();
            if dims == 0 || expected.is_some_and(|e| e != dims) {
                return Err(invalid(format!(
                    "embedding {} has {dims} dimensions, expected {}",
                    item.index,
                    expected.map_or("a non-empty vector".to_owned(), |e| e.to_string())
                )));
            }
            let learned = *self.inner.learned_dims.get_or_init(|| dims);
            if learned != dims {
                return Err(invalid(format!(
                    "embedding {} has {dims} dimensions, earlier ones had {learned}",
                    item.index
                )));
            }
            let slot = out
                .get_mut(item.index)
                .ok_or_else(|| invalid(format!("index {} out of range 0..{count}", item.index)))?;
            if slot.is_some() {
                return Err(invalid(format!("index {} appears twice", item.index)));
            }
            let mut v = item.embedding;
            if v.iter().any(|x| !x.is_finite()) || !l2_normalize(&mut v) {
                return Err(invalid(format!(
                    "embedding {} is zero or not finite",
                    item.index
                )));
            }
            *slot = Some(v);
        }
        // Every slot is filled: `count` distinct in-range indices were seen.
        Ok(out.into_iter().flatten().collect())
    }
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    index: usize,
}

/// One failed attempt, before deciding whether to retry.
#[derive(Debug)]
enum Failure {
    Status {
        status: StatusCode,
        message: String,
        retry_after: Option<Duration>,
    },
    Timeout,
    Connection(String),
}

impl Failure {
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            Failure::Timeout | Failure::Connection(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status {
                status, message, ..
            } => write!(f, "HTTP {}: {message}", status.as_u16()),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Connection(message) => f.write_str(message),
        }
    }
}

/// Vector sizes of OpenAI's own embedding models at full length.
fn known_dims(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

/// The wait before retrying after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`,
/// capped, then scaled by a random factor in [0.5, 1) so that clients failing together do not
/// retry together.
fn backoff(base: Duration, attempt: u32) -> Duration {
    Backoff::new(base, BACKOFF_CAP)
        .with_jitter(0.5)
        .delay(attempt.saturating_sub(1))
}

/// The wait a `Retry-After` header asks for (delay-seconds or HTTP-date), capped.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse_retry_after(
        headers.get(RETRY_AFTER)?.to_str().ok()?,
        now,
        RETRY_AFTER_CAP,
    )
}

/// The provider's explanation: `error.message` (OpenAI's shape), `error` or `message` as a
/// string, else the start of the body, else the status's reason phrase.
fn provider_message(body: &[u8], status: StatusCode) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let message = json
            .pointer("/error/message")
            .or_else(|| json.get("error"))
            .or_else(|| json.get("message"))
            .and_then(|m| m.as_str());
        if let Some(m) = message {
            return m.to_owned();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        text.chars().take(MESSAGE_CHARS).collect()
    }
}

/// An error with its causes, `outer: inner: innermost`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A URL for an error message, with any `user:password@` replaced.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
