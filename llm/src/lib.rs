//! `switchboard-llm`: the model client.
//!
//! One [`LlmClient`] talks to one OpenAI-compatible chat-completions endpoint (OpenAI, Azure
//! OpenAI, Groq, Ollama, vLLM, llama.cpp server) through `async-openai`, with the policy the
//! product needs around it:
//!
//! * **Timeouts** on every attempt (`LlmConfig::timeout`). A hang is not retried on the same
//!   model — it would likely hang again — but the fallback model is tried.
//! * **Retries** of 429, 5xx and connection failures with exponential backoff, honouring
//!   `Retry-After` (seconds or an HTTP date) up to `max_retry_wait`; never of other 4xx.
//!   async-openai's own retry layer is replaced (see [`client`]), so this is the only retry.
//!   The arithmetic (backoff with a quarter of jitter, the `Retry-After` parser) is
//!   `switchboard_core::retry`, shared with every other retrying part of the product.
//! * An optional **fallback model**, tried when the primary one fails retryably.
//! * A **circuit breaker** ([`CircuitBreaker`], one per tenant, owned by the caller): after
//!   consecutive failed calls it opens for a cool-down and fails fast, then lets one probe through.
//!
//! The crate knows nothing about tenants, prompts or the database (of `switchboard-core` it uses
//! only the pure `retry` module): it turns [`ChatRequest`]s into
//! [`ChatResponse`]s. API keys live in [`secrecy::SecretString`] and never reach `Debug`, an error
//! or a log line.

pub mod breaker;
pub mod client;

use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
pub use switchboard_core::egress::Egress;

pub use breaker::{BreakerConfig, CircuitBreaker};
pub use client::{install_crypto_provider, LlmClient};

/// Where and how to call a model.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// Base URL up to and including `/v1` (e.g. `http://localhost:11434/v1` for Ollama).
    pub base_url: String,
    /// Bearer key; `None` for local servers that need none.
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Tried when `model` fails with a retryable error after its retries.
    pub fallback_model: Option<String>,
    pub temperature: Option<f32>,
    /// Upper bound on completion tokens per call.
    pub max_tokens: Option<u32>,
    /// Bound on one HTTP attempt, connection to last byte.
    pub timeout: Duration,
    /// Retries per model after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubled per retry, capped at `max_retry_wait`.
    pub backoff_base: Duration,
    /// Longest wait the client accepts between attempts. A `Retry-After` asking for more is not
    /// waited out: the model counts as failed (and the fallback is tried).
    pub max_retry_wait: Duration,
    /// Where the client may connect. `Unrestricted` by default: a config built from a tenant's
    /// own `base_url` must say [`Egress::PublicOnly`] (the brain does).
    pub egress: Egress,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "gpt-4o-mini".into(),
            fallback_model: None,
            temperature: None,
            max_tokens: None,
            timeout: Duration::from_secs(30),
            max_retries: 2,
            backoff_base: Duration::from_millis(250),
            max_retry_wait: Duration::from_secs(10),
            egress: Egress::Unrestricted,
        }
    }
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        content: Option<String>,
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

/// A tool the model may call: a name, what it does, and a JSON schema of its arguments.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A tool call as the model produced it. `arguments` is the model's raw text, which may not be
/// valid JSON: callers validate it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A request: the messages so far and the tools on offer (none: the model must answer in text).
#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
}

/// Tokens of one call as the provider reported them (estimated when it reported none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    pub fn total(&self) -> u32 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The model's answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatResponse {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// The model that answered (the fallback's name when it did).
    pub model: String,
    /// HTTP attempts made for this answer, across models.
    pub attempts: u32,
    pub used_fallback: bool,
}

/// Why a call failed after its retries (and fallback).
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model endpoint answered HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        /// What the provider's `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the model endpoint: {0}")]
    Connect(String),
    #[error("the model endpoint sent an answer we could not read: {0}")]
    Decode(String),
    #[error("the model endpoint of this tenant is failing; calls are paused for {0:?}")]
    CircuitOpen(Duration),
    #[error("invalid model request: {0}")]
    Invalid(String),
}

impl LlmError {
    /// Whether another attempt may succeed: 429, 5xx and connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => *status == 429 || *status >= 500,
            LlmError::Connect(_) => true,
            _ => false,
        }
    }

    /// Whether the fallback model is worth trying after this error (retryable ones and hangs).
    pub fn wants_fallback(&self) -> bool {
        self.is_retryable() || matches!(self, LlmError::Timeout(_))
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Http { status: 429, .. } => "rate_limited",
            LlmError::Http { status, .. } if *status >= 500 => "server_error",
            LlmError::Http { .. } => "client_error",
            LlmError::Timeout(_) => "timeout",
            LlmError::Connect(_) => "connect",
            LlmError::Decode(_) => "decode",
            LlmError::CircuitOpen(_) => "circuit_open",
            LlmError::Invalid(_) => "invalid",
        }
    }
}

/// Rough token count of `text` (four bytes per token, the usual rule of thumb for English; a
/// little pessimistic for Arabic, whose letters take two bytes). Used for context budgeting and
/// when a provider reports no usage.
pub fn estimate_tokens(text: &str) -> u32 {
    (text.len() as u32).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_reach_debug_output() {
        let config = LlmConfig {
            api_key: Some(SecretString::from("sk-very-secret")),
            ..LlmConfig::default()
        };
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        let client = LlmClient::new(config, CircuitBreaker::new(BreakerConfig::default()))
            .expect("client builds");
        assert!(!format!("{client:?}").contains("sk-very-secret"));
    }

    #[test]
    fn retryability_follows_the_policy() {
        let http = |status| LlmError::Http {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(http(429).is_retryable() && http(500).is_retryable() && http(503).is_retryable());
        assert!(
            !http(400).is_retryable() && !http(401).is_retryable() && !http(404).is_retryable()
        );
        let hang = LlmError::Timeout(Duration::from_secs(1));
        assert!(!hang.is_retryable() && hang.wants_fallback());
        assert!(!http(400).wants_fallback());
    }
}
