//! Text embeddings for the knowledge base: turning passages and queries into unit vectors.
//!
//! [`Embedder`] is the one type the rest of the crate holds. It is a cheap-to-clone enum over the
//! four ways Switchboard can embed text:
//!
//! * [`LocalEmbedder`]: all-MiniLM-L6-v2 run in-process on the CPU (the default; the model is
//!   installed by `bash scripts/setup.sh`, so it needs no network at run time).
//! * [`OpenAiEmbedder`]: any OpenAI-compatible `POST /embeddings` endpoint.
//! * [`HashedEmbedder`]: character n-gram feature hashing, no model at all; language-agnostic, so
//!   it catches Arabic spelling and prefix variants that a small English model does not.
//! * [`CompositeEmbedder`]: a weighted concatenation of the others, for hybrid similarity.
//!
//! Invariants every variant keeps:
//!
//! * [`Embedder::embed`] returns exactly one vector per input, in input order, each of length
//!   [`Embedder::dims`] (once known), finite and L2-normalised — except that a text with no
//!   features at all (an empty string for [`HashedEmbedder`]) yields the all-zero vector, whose
//!   cosine with anything is 0.
//! * [`Embedder::model_id`] names the vector space. Vectors carrying different ids are never
//!   compared; the id never contains a credential.
//! * CPU-bound work (tokenising, inference, hashing, parsing large JSON responses) runs on tokio's
//!   blocking pool, never on the async worker threads.
//!
//! This module does no database IO: storing and searching vectors belongs to the callers.

mod composite;
mod hashed;
mod local;
mod openai;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use composite::{CompositeEmbedder, Gate};
pub use hashed::HashedEmbedder;
pub use local::{default_model_dir, settle_kernel_threads, LocalEmbedder, MODEL_DIR_ENV};
pub use openai::{OpenAiEmbedConfig, OpenAiEmbedder};

/// Whether a text is a search query or a stored passage. Asymmetric models embed the two
/// differently; every embedder here is symmetric and treats them alike, but callers say which
/// they mean so that an asymmetric model can be added without changing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbedKind {
    Query,
    Passage,
}

/// A configured way to embed text. Cloning is cheap (reference counts and a shared HTTP client).
#[derive(Clone, Debug)]
pub enum Embedder {
    Local(Arc<LocalEmbedder>),
    OpenAi(OpenAiEmbedder),
    Hashed(HashedEmbedder),
    Composite(Arc<CompositeEmbedder>),
}

impl Embedder {
    /// Stable id recorded with every stored vector, e.g. `"local/all-MiniLM-L6-v2"` or
    /// `"openai/text-embedding-3-small"`. Never contains a key. Vectors of different ids are
    /// never compared.
    pub fn model_id(&self) -> String {
        match self {
            Embedder::Local(e) => e.model_id(),
            Embedder::OpenAi(e) => e.model_id(),
            Embedder::Hashed(e) => e.model_id(),
            Embedder::Composite(e) => e.model_id(),
        }
    }

    /// The output dimension, when it is known before the first call: always for the local,
    /// hashed and composite (of known parts) embedders; for OpenAI when configured with
    /// `dimensions` or for a known model, and otherwise after the first successful call.
    pub fn dims(&self) -> Option<usize> {
        match self {
            Embedder::Local(e) => Some(e.dims()),
            Embedder::OpenAi(e) => e.dims(),
            Embedder::Hashed(e) => Some(e.dims()),
            Embedder::Composite(e) => e.dims(),
        }
    }

    /// One L2-normalised vector per input text, in input order.
    pub async fn embed(
        &self,
        texts: &[String],
        kind: EmbedKind,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            // A single query joins the queries of concurrent turns in one forward pass.
            Embedder::Local(e) if kind == EmbedKind::Query && texts.len() == 1 => {
                Ok(vec![e.embed_query(texts[0].clone()).await?])
            }
            Embedder::Local(e) => {
                let e = Arc::clone(e);
                let texts = texts.to_vec();
                blocking(move || e.embed_blocking(&texts)).await
            }
            Embedder::OpenAi(e) => e.embed(texts).await,
            Embedder::Hashed(e) => {
                let e = e.clone();
                let texts = texts.to_vec();
                blocking(move || Ok(e.embed_blocking(&texts))).await
            }
            // Boxed: a composite embeds through its parts, which makes this future recursive.
            Embedder::Composite(e) => e.embed(texts, kind).await,
        }
    }
}

/// Why embedding failed. Messages are written for an operator and never contain an API key.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// One of the model files is not there.
    #[error(
        "embedding model not found in {}: missing {missing}; run `bash scripts/setup.sh` or set {}",
        dir.display(),
        MODEL_DIR_ENV
    )]
    ModelMissing { dir: PathBuf, missing: String },
    /// The model files are there but could not be read as a BERT model and tokenizer.
    #[error("embedding model in {} could not be loaded: {reason}", dir.display())]
    ModelUnloadable { dir: PathBuf, reason: String },
    /// The local model failed while computing embeddings.
    #[error("local embedding model failed: {0}")]
    Inference(String),
    /// The provider answered with an error status (not retried, or still failing after retries).
    #[error("embedding provider {endpoint} answered HTTP {status}: {message}")]
    Http {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// The provider kept answering 429 until the retries ran out.
    #[error("embedding provider {endpoint} is rate limiting: still HTTP 429 after {attempts} attempts: {message}")]
    RateLimited {
        endpoint: String,
        attempts: u32,
        message: String,
    },
    /// The request did not complete within the configured timeout, on every attempt.
    #[error("embedding request to {endpoint} timed out after {timeout:?} ({attempts} attempts)")]
    Timeout {
        endpoint: String,
        timeout: Duration,
        attempts: u32,
    },
    /// The provider could not be reached (connection refused, DNS, TLS, reset), on every attempt.
    #[error("could not reach embedding provider {endpoint} ({attempts} attempts): {message}")]
    Connection {
        endpoint: String,
        attempts: u32,
        message: String,
    },
    /// The answer was not a usable set of embeddings: wrong count, wrong or inconsistent
    /// dimension, non-finite or zero vectors, or unparseable JSON.
    #[error("invalid embedding response from {model_id}: {reason}")]
    InvalidResponse { model_id: String, reason: String },
    /// The embedder was configured with impossible values.
    #[error("invalid embedder configuration: {0}")]
    Config(String),
    /// The blocking task running the work panicked or was cancelled.
    #[error("embedding task failed: {0}")]
    Task(String),
}

impl EmbedError {
    /// Whether trying the same call again later may succeed: rate limiting, timeouts, connection
    /// failures and server-side (5xx, 408) errors. Missing models, bad configuration, client
    /// errors and malformed answers will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            EmbedError::RateLimited { .. }
            | EmbedError::Timeout { .. }
            | EmbedError::Connection { .. } => true,
            EmbedError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            EmbedError::ModelMissing { .. }
            | EmbedError::ModelUnloadable { .. }
            | EmbedError::Inference(_)
            | EmbedError::InvalidResponse { .. }
            | EmbedError::Config(_)
            | EmbedError::Task(_) => false,
        }
    }
}

/// Runs CPU-bound work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, EmbedError>
where
    F: FnOnce() -> Result<T, EmbedError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EmbedError::Task(e.to_string()))?
}

/// Scales `v` to unit length in place; returns false (leaving `v` alone) when its norm is zero
/// or not finite.
fn l2_normalize(v: &mut [f32]) -> bool {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    true
}

/// Cosine similarity of two unit vectors (their dot product). For tests and callers that rank
/// in memory.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_the_ones_worth_retrying() {
        let http = |status| EmbedError::Http {
            endpoint: "http://x/embeddings".into(),
            status,
            message: "m".into(),
        };
        assert!(http(500).is_transient());
        assert!(http(503).is_transient());
        assert!(!http(400).is_transient());
        assert!(!http(401).is_transient());
        assert!(EmbedError::Timeout {
            endpoint: "e".into(),
            timeout: Duration::from_secs(1),
            attempts: 3
        }
        .is_transient());
        assert!(!EmbedError::ModelMissing {
            dir: "/nowhere".into(),
            missing: "config.json".into()
        }
        .is_transient());
    }

    #[test]
    fn missing_model_error_tells_the_operator_what_to_do() {
        let msg = EmbedError::ModelMissing {
            dir: "/srv/model".into(),
            missing: "model.safetensors".into(),
        }
        .to_string();
        assert!(msg.contains("/srv/model"), "{msg}");
        assert!(msg.contains("bash scripts/setup.sh"), "{msg}");
        assert!(msg.contains(MODEL_DIR_ENV), "{msg}");
    }

    #[test]
    fn normalising_keeps_direction_and_refuses_zero() {
        let mut v = vec![3.0, 4.0];
        assert!(l2_normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0; 3];
        assert!(!l2_normalize(&mut z));
        assert_eq!(z, vec![0.0; 3]);
    }

    #[tokio::test]
    async fn empty_input_gives_empty_output_without_work() {
        let e = Embedder::Hashed(HashedEmbedder::default());
        assert!(e.embed(&[], EmbedKind::Query).await.unwrap().is_empty());
    }
}
