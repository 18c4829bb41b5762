//! The chat-completions client and its retry/fallback/breaker policy.
//!
//! async-openai's default executor wraps every request in its own retry layer (three retries,
//! `Retry-After` in seconds only, no notion of our timeouts or breaker). We install our own
//! transport instead ([`StatusAware`]): the plain reqwest service, plus one step that turns any
//! non-2xx answer into an [`HttpFailure`] carrying the status and the parsed `Retry-After`
//! header, which async-openai's own error type would drop. [`LlmClient::chat`] then applies the
//! one retry policy of the product.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, FunctionCall, FunctionObject,
};
use secrecy::ExposeSecret;
use switchboard_core::retry::{parse_retry_after, Backoff, RETRY_AFTER_MAX};
use tracing::{debug, warn};

use crate::breaker::CircuitBreaker;
use crate::{
    estimate_tokens, ChatRequest, ChatResponse, Egress, LlmConfig, LlmError, Message, ToolCall,
    Usage,
};

/// A non-2xx answer, with what async-openai would otherwise lose.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {message}")]
pub struct HttpFailure {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub message: String,
}

/// The transport: reqwest, with non-2xx answers turned into [`HttpFailure`]s.
#[derive(Clone, Debug)]
struct StatusAware {
    inner: ReqwestService,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<reqwest013::Response, OpenAIError>> + Send>>;

impl tower::Service<HttpRequestFactory> for StatusAware {
    type Response = reqwest013::Response;
    type Error = OpenAIError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let fut = self.inner.call(request);
        Box::pin(async move {
            let response = fut.await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = response
                .headers()
                .get(reqwest013::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now(), RETRY_AFTER_MAX));
            let body = response.text().await.unwrap_or_default();
            Err(OpenAIError::Boxed(Box::new(HttpFailure {
                status: status.as_u16(),
                retry_after,
                message: error_message(&body),
            })))
        })
    }
}

/// The provider's error message (`{"error": {"message"}}`), or the start of the body.
fn error_message(body: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    let m = parsed.unwrap_or_else(|| body.to_owned());
    m.chars().take(300).collect()
}

/// Installs rustls' ring provider for the process, once. reqwest 0.13 is built here with
/// rustls but no provider of its own (no aws-lc C build), so every client of it — the model
/// client, the OTLP trace exporter — calls this before building one.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client of one endpoint with one configuration. Cheap to clone.
#[derive(Clone)]
pub struct LlmClient {
    inner: async_openai::Client<OpenAIConfig>,
    config: Arc<LlmConfig>,
    breaker: Arc<CircuitBreaker>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client for `config` whose calls go through `breaker` (shared by every client of the
    /// same tenant).
    pub fn new(config: LlmConfig, breaker: Arc<CircuitBreaker>) -> Result<LlmClient, LlmError> {
        install_crypto_provider();
        let egress = config.egress;
        egress
            .check_url(&config.base_url)
            .map_err(|e| LlmError::Invalid(format!("base_url: {e}")))?;
        let mut http = reqwest013::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest013::redirect::Policy::custom(
                move |attempt| match egress.check_redirect(
                    attempt.previous().len(),
                    5,
                    attempt.url().as_str(),
                ) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                },
            ));
        if egress == Egress::PublicOnly {
            http = http.dns_resolver(Arc::new(Resolver(egress)));
        }
        let http = http
            .build()
            .map_err(|e| LlmError::Invalid(format!("HTTP client: {e}")))?;
        let mut oa = OpenAIConfig::new()
            .with_api_base(config.base_url.trim_end_matches('/'))
            .with_api_key(
                config
                    .api_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned())
                    .unwrap_or_default(),
            );
        // OpenAIConfig reads OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment; a tenant's
        // endpoint must not inherit the platform's organisation.
        oa = oa.with_org_id("").with_project_id("");
        let inner = async_openai::Client::with_config(oa).with_http_service(StatusAware {
            inner: ReqwestService::new(http),
        });
        Ok(LlmClient {
            inner,
            config: Arc::new(config),
            breaker,
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// Sends `request`: primary model with retries, then the fallback model, all behind the
    /// breaker. One call counts as one success or failure for the breaker.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let permit = self.breaker.acquire().map_err(|wait| {
            let e = LlmError::CircuitOpen(wait);
            count_error(&e);
            e
        })?;
        let mut attempts = 0;
        let primary = self
            .with_retries(&self.config.model, request, &mut attempts)
            .await;
        let result = match primary {
            Err(e) if e.wants_fallback() && self.config.fallback_model.is_some() => {
                let fallback = self.config.fallback_model.as_deref().unwrap_or_default();
                warn!(error = %e, fallback, "primary model failed; trying the fallback model");
                metrics::counter!("switchboard_llm_fallbacks_total").increment(1);
                self.with_retries(fallback, request, &mut attempts)
                    .await
                    .map(|mut r| {
                        r.used_fallback = true;
                        r
                    })
            }
            other => other,
        };
        // A 4xx other than 429 is our request's fault (or the tenant's configuration), not a
        // sign that the endpoint is down: it does not open the breaker.
        let endpoint_failed = match &result {
            Ok(_) => false,
            Err(e) => e.wants_fallback() || matches!(e, LlmError::Decode(_)),
        };
        permit.record(!endpoint_failed);
        result.map(|mut r| {
            r.attempts = attempts;
            r
        })
    }

    async fn with_retries(
        &self,
        model: &str,
        request: &ChatRequest,
        attempts: &mut u32,
    ) -> Result<ChatResponse, LlmError> {
        let body = self.build(model, request);
        let mut retry = 0;
        loop {
            *attempts += 1;
            let started = Instant::now();
            let outcome = match tokio::time::timeout(
                self.config.timeout,
                self.inner.chat().create(body.clone()),
            )
            .await
            {
                Err(_) => Err(LlmError::Timeout(self.config.timeout)),
                Ok(r) => r
                    .map_err(|e| map_error(e, self.config.timeout))
                    .and_then(|response| convert(response, model, request)),
            };
            let error = match outcome {
                Ok(response) => {
                    metrics::histogram!("switchboard_llm_request_seconds", "outcome" => "ok")
                        .record(started.elapsed());
                    // Every model call of the product passes here (replies, summaries,
                    // previews), so the tokens are counted once, whoever asked.
                    metrics::counter!("switchboard_llm_tokens_total", "kind" => "prompt")
                        .increment(response.usage.prompt_tokens.into());
                    metrics::counter!("switchboard_llm_tokens_total", "kind" => "completion")
                        .increment(response.usage.completion_tokens.into());
                    return Ok(response);
                }
                Err(e) => {
                    metrics::histogram!("switchboard_llm_request_seconds", "outcome" => "error")
                        .record(started.elapsed());
                    count_error(&e);
                    e
                }
            };
            if !error.is_retryable() || retry >= self.config.max_retries {
                return Err(error);
            }
            let wait = match &error {
                LlmError::Http {
                    retry_after: Some(wait),
                    ..
                } => {
                    if *wait > self.config.max_retry_wait {
                        debug!(?wait, "Retry-After exceeds the longest accepted wait");
                        return Err(error);
                    }
                    *wait
                }
                _ => Backoff::new(self.config.backoff_base, self.config.max_retry_wait)
                    .with_jitter(0.25)
                    .delay(retry),
            };
            debug!(error = %error, ?wait, retry, "retrying the model call");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    fn build(&self, model: &str, request: &ChatRequest) -> CreateChatCompletionRequest {
        let messages = request.messages.iter().map(to_wire).collect();
        let tools: Vec<ChatCompletionTools> = request
            .tools
            .iter()
            .map(|t| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: t.name.clone(),
                        description: Some(t.description.clone()),
                        parameters: Some(t.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect();
        // OpenAI's newer models refuse `max_tokens` and want `max_completion_tokens`; most
        // self-hosted OpenAI-compatible servers (llama.cpp, older vLLM and Ollama) only know
        // `max_tokens`. Send what the endpoint understands.
        let openai_hosted = ["openai.com", "azure.com"]
            .iter()
            .any(|h| self.config.base_url.contains(h));
        #[allow(deprecated)]
        CreateChatCompletionRequest {
            messages,
            model: model.to_owned(),
            temperature: self.config.temperature,
            max_completion_tokens: self.config.max_tokens.filter(|_| openai_hosted),
            max_tokens: self.config.max_tokens.filter(|_| !openai_hosted),
            tools: (!tools.is_empty()).then_some(tools),
            ..Default::default()
        }
    }
}

#[allow(deprecated)] // The wire structs carry deprecated fields that we must still initialise.
fn to_wire(m: &Message) -> ChatCompletionRequestMessage {
    match m {
        Message::System { content } => {
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: content.clone().into(),
                name: None,
            })
        }
        Message::User { content } => {
            ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                content: content.clone().into(),
                name: None,
            })
        }
        Message::Assistant {
            content,
            tool_calls,
        } => ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
            content: content.clone().map(Into::into),
            tool_calls: (!tool_calls.is_empty()).then(|| {
                tool_calls
                    .iter()
                    .map(|c| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id: c.id.clone(),
                            function: FunctionCall {
                                name: c.name.clone(),
                                arguments: c.arguments.clone(),
                            },
                        })
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        Message::Tool {
            tool_call_id,
            content,
        } => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: content.clone().into(),
            tool_call_id: tool_call_id.clone(),
        }),
    }
}

fn convert(
    response: async_openai::types::chat::CreateChatCompletionResponse,
    model: &str,
    request: &ChatRequest,
) -> Result<ChatResponse, LlmError> {
    let Some(choice) = response.choices.into_iter().next() else {
        return Err(LlmError::Decode("the answer has no choices".into()));
    };
    let message = choice.message;
    let mut tool_calls = Vec::new();
    for (i, call) in message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match call {
            ChatCompletionMessageToolCalls::Function(f) => tool_calls.push(ToolCall {
                id: if f.id.is_empty() {
                    format!("call_{i}")
                } else {
                    f.id
                },
                name: f.function.name,
                arguments: f.function.arguments,
            }),
            ChatCompletionMessageToolCalls::Custom(c) => tool_calls.push(ToolCall {
                id: c.id,
                name: c.custom_tool.name,
                arguments: c.custom_tool.input,
            }),
        }
    }
    let content = message.content.filter(|c| !c.trim().is_empty());
    let usage = match response.usage {
        Some(u) => Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        },
        None => Usage {
            prompt_tokens: request
                .messages
                .iter()
                .map(|m| estimate_tokens(&serde_json::to_string(m).unwrap_or_default()))
                .sum(),
            completion_tokens: content.as_deref().map(estimate_tokens).unwrap_or(0),
        },
    };
    Ok(ChatResponse {
        content,
        tool_calls,
        usage,
        model: if response.model.is_empty() {
            model.to_owned()
        } else {
            response.model
        },
        attempts: 0,
        used_fallback: false,
    })
}

/// Counts a failed model request (`switchboard_llm_errors_total{kind}`); errors are rare, so
/// the label vector the macro builds for a non-literal label costs nothing that matters.
fn count_error(e: &LlmError) {
    metrics::counter!("switchboard_llm_errors_total", "kind" => e.kind()).increment(1);
}

fn map_error(e: OpenAIError, timeout: Duration) -> LlmError {
    match e {
        OpenAIError::Boxed(b) => match b.downcast::<HttpFailure>() {
            Ok(f) => LlmError::Http {
                status: f.status,
                message: f.message,
                retry_after: f.retry_after,
            },
            Err(other) => LlmError::Connect(other.to_string()),
        },
        OpenAIError::Reqwest(r) if r.is_timeout() => LlmError::Timeout(timeout),
        OpenAIError::Reqwest(r) if r.is_connect() => LlmError::Connect(r.to_string()),
        OpenAIError::Reqwest(r) if r.is_decode() || r.is_body() => LlmError::Decode(r.to_string()),
        OpenAIError::Reqwest(r) => LlmError::Connect(r.to_string()),
        OpenAIError::ApiError(a) => LlmError::Http {
            status: a.status_code.as_u16(),
            message: a.api_error.message,
            retry_after: None,
        },
        OpenAIError::JSONDeserialize(e, _) => LlmError::Decode(e.to_string()),
        other => LlmError::Invalid(other.to_string()),
    }
}

/// Resolves a tenant's model host through the platform's [`Egress`] policy, on every new
/// connection (reqwest 0.13's side of `Egress::http`, which serves reqwest 0.12).
struct Resolver(Egress);

impl reqwest013::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest013::dns::Name) -> reqwest013::dns::Resolving {
        let egress = self.0;
        Box::pin(async move {
            let addrs = egress.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest013::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use serde_json::{json, Value};

    use super::*;
    use crate::breaker::BreakerState;
    use crate::BreakerConfig;

    /// A chat-completions server answering with `respond(call number, model)`.
    async fn server(
        respond: impl Fn(usize, &str) -> axum::response::Response + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, respond) = (calls.clone(), Arc::new(respond));
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (c, respond) = (c.clone(), respond.clone());
                async move {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    respond(n, body["model"].as_str().unwrap_or_default())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/v1"), calls)
    }

    fn ok(text: &str) -> axum::response::Response {
        axum::Json(json!({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        }))
        .into_response()
    }

    fn status(code: u16, retry_after: Option<&str>) -> axum::response::Response {
        let mut r = (StatusCode::from_u16(code).unwrap(), "nope").into_response();
        if let Some(v) = retry_after {
            r.headers_mut().insert("retry-after", v.parse().unwrap());
        }
        r
    }

    fn client(base: String, fallback: Option<&str>, threshold: u32) -> LlmClient {
        LlmClient::new(
            LlmConfig {
                base_url: base,
                model: "primary".into(),
                fallback_model: fallback.map(Into::into),
                timeout: Duration::from_secs(2),
                backoff_base: Duration::from_millis(10),
                max_retry_wait: Duration::from_secs(1),
                ..LlmConfig::default()
            },
            CircuitBreaker::new(BreakerConfig {
                failure_threshold: threshold,
                cooldown: Duration::from_secs(60),
            }),
        )
        .unwrap()
    }

    fn hello() -> ChatRequest {
        ChatRequest {
            messages: vec![Message::User {
                content: "hello".into(),
            }],
            tools: vec![],
        }
    }

    #[tokio::test]
    async fn a_retry_after_longer_than_we_accept_goes_straight_to_the_fallback() {
        let (base, calls) = server(|_, model| match model {
            "primary" => status(429, Some("120")),
            _ => ok("from fallback"),
        })
        .await;
        let started = Instant::now();
        let r = client(base, Some("backup"), 3)
            .chat(&hello())
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "did not wait 120 s"
        );
        assert_eq!(r.content.as_deref(), Some("from fallback"));
        assert!(r.used_fallback);
        assert_eq!((r.attempts, calls.load(Ordering::SeqCst)), (2, 2));
    }

    #[tokio::test]
    async fn missing_usage_is_estimated_and_garbage_is_a_decode_error() {
        let (base, _) = server(|n, _| match n {
            0 => ok("four score and seven years"),
            _ => (StatusCode::OK, "{not json").into_response(),
        })
        .await;
        let c = client(base, None, 3);
        let r = c.chat(&hello()).await.unwrap();
        assert!(
            r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0,
            "{:?}",
            r.usage
        );
        let e = c.chat(&hello()).await.unwrap_err();
        assert!(matches!(e, LlmError::Decode(_)), "{e:?}");
    }

    #[tokio::test]
    async fn client_errors_do_not_open_the_breaker_but_server_errors_do() {
        let (base, calls) = server(|n, _| {
            if n < 3 {
                status(401, None)
            } else {
                status(503, None)
            }
        })
        .await;
        let c = client(base, None, 2);
        for _ in 0..3 {
            let e = c.chat(&hello()).await.unwrap_err();
            assert!(matches!(e, LlmError::Http { status: 401, .. }), "{e:?}");
        }
        assert_eq!(c.breaker().state(), BreakerState::Closed);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "401 is never retried");
        // Two calls of three 503 attempts each open it; the next call sends nothing.
        for _ in 0..2 {
            assert!(c.chat(&hello()).await.is_err());
        }
        assert_eq!(c.breaker().state(), BreakerState::Open);
        let before = calls.load(Ordering::SeqCst);
        assert!(matches!(
            c.chat(&hello()).await,
            Err(LlmError::CircuitOpen(_))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), before);
        assert_eq!(before, 3 + 2 * 3);
    }
}
