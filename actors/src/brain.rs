//! The agent's brain: which mind answers a tenant (offline responder or a model), the model's
//! tool-calling loop, conversation memory, the monthly token budget, and the guard on replies.
//!
//! [`think`] is called by the turn *outside* any transaction: it reads what it needs in short
//! transactions of its own, calls the model (which may take seconds), and returns a [`Reply`]
//! plus the token usage it spent (in a [`UsageLog`] owned by the caller, so usage of a call
//! that is cancelled half-way is not lost). It never writes customer-visible data: the turn
//! commits the reply, its outbox row and its usage in one transaction. The only writes here are
//! the once-a-month budget alert and what tools do (the current contact's name and email).
//!
//! Failure policy: a model that fails (after retries, fallback model and breaker — see
//! `switchboard-llm`) or overruns the turn's thinking time never fails the turn; the customer
//! gets the offline responder's grounded answer and the reply's metadata says why
//! (`degraded`). A budget that is used up gets a polite fallback in the customer's language.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard_core::model::Role;
use switchboard_core::store::agent::{self, AgentProvider, AgentSettings};
use switchboard_core::store::memory;
use switchboard_core::store::prompts::{self as prompt_store, PromptVersion};
use switchboard_core::store::usage::{self, Purpose, UsageRecord};
use switchboard_core::{ConversationId, DbError, MasterKey, TenantId, TenantTx};
use switchboard_knowledge::Hit;
use switchboard_llm::{
    estimate_tokens, BreakerConfig, ChatRequest, CircuitBreaker, LlmClient, LlmConfig, LlmError,
    Message,
};
use switchboard_prompts::agent::{
    budget_exhausted_reply, leaks_system_prompt, refusal_reply, render_system_prompt,
    KnowledgeItem, SUMMARY_INSTRUCTIONS,
};
use switchboard_prompts::{detect_intent, PromptBody, PromptContext};
use tracing::{info, warn};

use crate::context::TurnContext;
use crate::responder::{self, Reply, Responder};
use crate::tools::{dispatch, ToolRegistry};
use crate::Services;

/// Most characters of new messages sent to one summary call.
const MAX_SUMMARY_INPUT_CHARS: usize = 24_000;

/// The platform's own model, used by tenants that configured none.
#[derive(Clone, Debug)]
pub struct PlatformModel {
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    pub fallback_model: Option<String>,
}

/// Limits and defaults of every tenant's agent.
#[derive(Clone, Debug)]
pub struct BrainConfig {
    /// `None`: tenants without settings of their own get the offline responder.
    pub platform: Option<PlatformModel>,
    /// Default per-attempt timeout (tenants may set their own).
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub max_retry_wait: Duration,
    pub breaker: BreakerConfig,
    /// Model calls that may request tools in one turn (the next call must answer in text).
    pub max_tool_steps: u32,
    /// Bad tool calls (unknown tool, malformed or invalid arguments) tolerated in one turn
    /// before tools are withdrawn.
    pub max_tool_errors: u32,
    /// Tool calls executed per model answer (the rest are refused).
    pub max_calls_per_step: usize,
    /// Tokens of history sent with each request.
    pub context_tokens: u32,
    /// Most recent messages considered for the history.
    pub history_messages: i64,
    /// Unsummarised messages that trigger a new rolling summary.
    pub summary_after: i64,
    /// Most recent messages left out of a new summary (they travel verbatim).
    pub keep_recent: i64,
    /// Where a tenant's own `base_url` may point (the platform's model is the operator's).
    pub egress: switchboard_core::egress::Egress,
}

impl Default for BrainConfig {
    fn default() -> Self {
        BrainConfig {
            platform: None,
            timeout: Duration::from_secs(30),
            max_retries: 2,
            backoff_base: Duration::from_millis(250),
            max_retry_wait: Duration::from_secs(10),
            breaker: BreakerConfig::default(),
            max_tool_steps: 4,
            max_tool_errors: 3,
            max_calls_per_step: 4,
            context_tokens: 3000,
            history_messages: 40,
            summary_after: 30,
            keep_recent: 10,
            egress: switchboard_core::egress::Egress::PublicOnly,
        }
    }
}

/// The model clients and circuit breakers of every tenant, and the tool registry.
pub struct Brains {
    config: BrainConfig,
    master_key: MasterKey,
    tools: ToolRegistry,
    /// A tenant's client, with the settings fingerprint it was built from.
    clients: Mutex<HashMap<TenantId, (String, LlmClient)>>,
    /// Conversations whose summary is being refreshed (one refresh at a time each).
    summarising: Mutex<std::collections::HashSet<ConversationId>>,
}

/// Token usage spent by a turn so far. Owned by the caller of [`think`], so that calls made
/// before a cancellation are still accounted for.
#[derive(Debug, Default)]
pub struct UsageLog(Mutex<Vec<UsageRecord>>);

impl UsageLog {
    pub fn push(&self, r: UsageRecord) {
        self.0.lock().expect("usage log").push(r);
    }
    pub fn take(&self) -> Vec<UsageRecord> {
        std::mem::take(&mut *self.0.lock().expect("usage log"))
    }
    /// Puts records back (a commit that did not happen).
    pub fn extend(&self, records: Vec<UsageRecord>) {
        self.0.lock().expect("usage log").extend(records);
    }
}

/// Who answers a tenant right now.
pub enum Mind {
    Offline,
    Model(Box<ModelMind>),
}

/// A model-backed agent, resolved from the tenant's settings.
pub struct ModelMind {
    pub client: LlmClient,
    /// `None`: the built-in prompt.
    pub prompt: Option<PromptVersion>,
    pub allowed_tools: Option<Vec<String>>,
    pub max_tool_steps: u32,
    pub context_tokens: u32,
    pub utc_offset_minutes: i32,
    pub budget: Option<i64>,
    pub used_this_month: i64,
}

impl Brains {
    pub fn new(config: BrainConfig, master_key: MasterKey) -> Brains {
        Brains {
            config,
            master_key,
            tools: ToolRegistry::standard(),
            clients: Mutex::new(HashMap::new()),
            summarising: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn config(&self) -> &BrainConfig {
        &self.config
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// The state of a tenant's circuit breaker, if it has a client.
    pub fn breaker_state(
        &self,
        tenant: TenantId,
    ) -> Option<switchboard_llm::breaker::BreakerState> {
        self.clients
            .lock()
            .expect("clients")
            .get(&tenant)
            .map(|(_, c)| c.breaker().state())
    }

    /// Resolves the current tenant's mind (in the caller's transaction).
    pub async fn mind(&self, tx: &mut TenantTx) -> Result<Mind, DbError> {
        let tenant = tx.tenant_id();
        let settings = agent::get(tx).await?;
        let client = match self.client(tenant, settings.as_ref()) {
            Some(c) => c,
            None => return Ok(Mind::Offline),
        };
        let prompt = prompt_store::published(tx).await?;
        let used_this_month = usage::month_total(tx).await?;
        let s = settings.as_ref();
        Ok(Mind::Model(Box::new(ModelMind {
            client,
            prompt,
            allowed_tools: s.and_then(|s| s.allowed_tools.clone()),
            max_tool_steps: s
                .and_then(|s| s.max_tool_steps)
                .map(|n| n as u32)
                .unwrap_or(self.config.max_tool_steps),
            context_tokens: s
                .and_then(|s| s.context_tokens)
                .map(|n| n as u32)
                .unwrap_or(self.config.context_tokens),
            utc_offset_minutes: s.map(|s| s.utc_offset_minutes).unwrap_or(0),
            budget: s.and_then(|s| s.monthly_token_budget),
            used_this_month,
        })))
    }

    /// Whether a tenant whose agent provider is `provider` (`None`: no agent settings saved)
    /// answers offline, known without reading anything more ([`Brains::mind`] otherwise).
    pub fn offline_by_provider(&self, provider: Option<&str>) -> bool {
        match provider {
            Some(p) => p == "offline",
            None => self.config.platform.is_none(),
        }
    }

    /// The tenant's client: its own settings, else the platform model, else none (offline).
    fn client(&self, tenant: TenantId, settings: Option<&AgentSettings>) -> Option<LlmClient> {
        let c = &self.config;
        let (fingerprint, config) = match settings {
            Some(s) if s.provider == AgentProvider::Offline => return None,
            Some(s) => {
                let platform = c.platform.as_ref();
                // The platform's key only ever goes to the platform's endpoint: a tenant that
                // names its own base URL must bring its own key.
                let api_key = match s.api_key(&self.master_key, tenant) {
                    Ok(Some(k)) => Some(k),
                    Ok(None) if s.base_url.is_none() => platform.and_then(|p| p.api_key.clone()),
                    Ok(None) => None,
                    Err(e) => {
                        warn!(error = %e, "the tenant's model API key cannot be opened; answering offline");
                        return None;
                    }
                };
                let config = LlmConfig {
                    base_url: s
                        .base_url
                        .clone()
                        .or_else(|| platform.map(|p| p.base_url.clone()))
                        .unwrap_or_else(|| LlmConfig::default().base_url),
                    api_key,
                    model: s
                        .model
                        .clone()
                        .or_else(|| platform.map(|p| p.model.clone()))
                        .unwrap_or_else(|| LlmConfig::default().model),
                    fallback_model: s
                        .fallback_model
                        .clone()
                        .or_else(|| platform.and_then(|p| p.fallback_model.clone())),
                    temperature: s.temperature,
                    max_tokens: s.max_tokens.map(|t| t as u32),
                    timeout: s
                        .timeout_secs
                        .map(|t| Duration::from_secs(t as u64))
                        .unwrap_or(c.timeout),
                    max_retries: c.max_retries,
                    backoff_base: c.backoff_base,
                    max_retry_wait: c.max_retry_wait,
                    egress: match s.base_url {
                        Some(_) => c.egress,
                        None => switchboard_core::egress::Egress::Unrestricted,
                    },
                };
                (s.updated_at.to_rfc3339(), config)
            }
            None => {
                let p = c.platform.as_ref()?;
                let config = LlmConfig {
                    base_url: p.base_url.clone(),
                    api_key: p.api_key.clone(),
                    model: p.model.clone(),
                    fallback_model: p.fallback_model.clone(),
                    timeout: c.timeout,
                    max_retries: c.max_retries,
                    backoff_base: c.backoff_base,
                    max_retry_wait: c.max_retry_wait,
                    ..LlmConfig::default()
                };
                ("platform".to_owned(), config)
            }
        };
        let mut clients = self.clients.lock().expect("clients");
        if let Some((fp, client)) = clients.get(&tenant) {
            if *fp == fingerprint {
                return Some(client.clone());
            }
        }
        // New settings get a fresh breaker: an admin who fixed the endpoint should not wait out
        // the old one's cool-down.
        match LlmClient::new(config, CircuitBreaker::new(c.breaker)) {
            Ok(client) => {
                clients.insert(tenant, (fingerprint, client.clone()));
                Some(client)
            }
            Err(e) => {
                warn!(error = %e, "could not build the tenant's model client; answering offline");
                None
            }
        }
    }
}

/// What one turn (or preview) thinks about.
pub struct Think<'a> {
    /// The turn: tenant, conversation (`None` in previews), the customer's text, the tools'
    /// context.
    pub ctx: &'a TurnContext<'a>,
    pub passages: &'a [Hit],
    /// Previews: answer with this version instead of the published one.
    pub prompt_override: Option<PromptVersion>,
    /// What the model calls are recorded as.
    pub purpose: Purpose,
    /// How long the model may take in total before the offline answer is used.
    pub deadline: Duration,
    /// The tenant's mind, when the caller already resolved it in one of its transactions
    /// (the turn does, in the transaction that counts its attempt).
    pub mind: Option<Mind>,
    /// What a human did while owning the conversation, told to the model once on resuming.
    pub handback_note: Option<&'a str>,
}

/// The reply, and what the model did on the way (for previews and metadata).
pub struct Thought {
    pub reply: Reply,
    pub tool_calls: Vec<Value>,
}

/// Computes the reply of one turn. See the module documentation for the policy.
pub async fn think(mut input: Think<'_>, usage_log: &UsageLog) -> Result<Thought, DbError> {
    let turn = input.ctx;
    let services = turn.services;
    let brains = &services.brains;
    let mind = match input.mind.take() {
        Some(m) => m,
        None => {
            let mut tx = services.db.tenant(turn.tenant).await?;
            let m = brains.mind(&mut tx).await?;
            tx.commit().await?;
            m
        }
    };
    let offline = |degraded: Option<&str>| {
        let mut r = responder::offline(turn.tenant_name, turn.customer_text, input.passages);
        if let Some(why) = degraded {
            r.metadata["degraded"] = json!(why);
        }
        Thought {
            reply: r,
            tool_calls: Vec::new(),
        }
    };
    let mut mind = match mind {
        Mind::Offline => return Ok(offline(None)),
        Mind::Model(m) => m,
    };
    if let Some(p) = input.prompt_override.clone() {
        mind.prompt = Some(p);
    }
    let lang = turn.lang;
    let intent = intent_of(turn.customer_text);

    if let Some(budget) = mind.budget.filter(|b| mind.used_this_month >= *b) {
        budget_alert(services, turn.tenant, budget, mind.used_this_month).await;
        return Ok(Thought {
            reply: Reply {
                text: budget_exhausted_reply(lang, turn.tenant_name),
                responder: Responder::Budget,
                metadata: json!({"intent": intent, "lang": lang.code(), "budget_exhausted": true}),
                intent,
                prompt_version_id: None,
            },
            tool_calls: Vec::new(),
        });
    }

    // Memory: the rolling summary and the recent messages that fit the context budget.
    let (history, summary, customer_name) = match turn.conversation {
        Some(conversation) => {
            let events = turn.events;
            let mut tx = services.db.tenant(turn.tenant).await?;
            let m = memory::memory(&mut tx, conversation, events).await?;
            let recent = memory::recent(
                &mut tx,
                conversation,
                events,
                m.summary_through_seq.unwrap_or(0),
                brains.config.history_messages,
            )
            .await?;
            tx.commit().await?;
            (
                fit_history(recent, mind.context_tokens),
                m.summary,
                m.contact_name,
            )
        }
        None => (Vec::new(), None, None),
    };

    // A human just handed the conversation back: the model learns what happened, once.
    let summary = match (summary, input.handback_note) {
        (s, None) => s,
        (None, Some(n)) => Some(n.to_owned()),
        (Some(s), Some(n)) => Some(format!("{s}\n\n{n}")),
    };
    let body = mind
        .prompt
        .as_ref()
        .map(body_of)
        .unwrap_or_else(PromptBody::builtin);
    let knowledge: Vec<KnowledgeItem> = input
        .passages
        .iter()
        .map(|p| KnowledgeItem {
            title: p.title.clone(),
            text: p.text.clone(),
        })
        .collect();
    let canary = format!("sb-{}", uuid::Uuid::new_v4().simple());
    let local_time = (Utc::now() + chrono::Duration::minutes(mind.utc_offset_minutes.into()))
        .format("%Y-%m-%d %H:%M (%A)")
        .to_string();
    let ctx = PromptContext {
        tenant_name: turn.tenant_name,
        customer_name: customer_name.as_deref(),
        channel: turn.channel.as_str(),
        local_time: &local_time,
        language: lang,
        knowledge: &knowledge,
        summary: summary.as_deref(),
        canary: &canary,
        unverified_sender: !turn.sender.is_verified(),
    };
    let rendered = match render_system_prompt(&body, &ctx) {
        Ok(r) => r,
        Err(e) => {
            // Versions are validated when saved; this only happens if the frame changed
            // under an old version. The built-in prompt still answers.
            warn!(error = %e, "the prompt version does not render; using the built-in prompt");
            render_system_prompt(&PromptBody::builtin(), &ctx)
                .map_err(|e| DbError::Invalid(e.to_string()))?
        }
    };
    let mut messages = vec![Message::System {
        content: rendered.system.clone(),
    }];
    messages.extend(history);
    messages.push(Message::User {
        content: turn.customer_text.to_owned(),
    });

    let tools = brains
        .tools
        .allowed(mind.allowed_tools.as_deref(), turn.settings, turn.sender);
    let mut trace = Vec::new();
    let looped = tokio::time::timeout(
        input.deadline,
        tool_loop(
            &mind,
            brains.config(),
            messages,
            &tools,
            turn,
            input.purpose,
            usage_log,
            &mut trace,
        ),
    )
    .await;
    let prompt_version_id = mind.prompt.as_ref().map(|p| p.id);
    let outcome = match looped {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            warn!(error = %e, kind = e.kind(), "the model failed; answering offline");
            metrics::counter!("switchboard_llm_degraded_total", "reason" => e.kind()).increment(1);
            let mut t = offline(Some(e.kind()));
            t.tool_calls = trace;
            return Ok(t);
        }
        Err(_) => {
            warn!(deadline = ?input.deadline, "the model overran the turn's thinking time; answering offline");
            metrics::counter!("switchboard_llm_degraded_total", "reason" => "deadline")
                .increment(1);
            let mut t = offline(Some("deadline"));
            t.tool_calls = trace;
            return Ok(t);
        }
    };
    let Some(mut text) = outcome.text else {
        metrics::counter!("switchboard_llm_degraded_total", "reason" => "empty").increment(1);
        let mut t = offline(Some("empty_answer"));
        t.tool_calls = trace;
        return Ok(t);
    };
    let mut leaked = false;
    if leaks_system_prompt(&text, &rendered, &canary) {
        warn!("a model reply quoted the system prompt; replaced with a refusal");
        metrics::counter!("switchboard_llm_prompt_leaks_blocked_total").increment(1);
        text = refusal_reply(lang);
        leaked = true;
    }
    let knowledge_refs: Vec<Value> = input
        .passages
        .iter()
        .map(|p| json!({"document_id": p.document_id, "chunk_id": p.chunk_id, "title": p.title, "score": p.score}))
        .collect();
    Ok(Thought {
        reply: Reply {
            text,
            responder: Responder::Llm,
            metadata: json!({
                "intent": intent,
                "lang": lang.code(),
                "model": outcome.model,
                "used_fallback": outcome.used_fallback,
                "steps": outcome.steps,
                "tool_calls": trace.len(),
                "prompt_version_id": prompt_version_id,
                "prompt_version": mind.prompt.as_ref().map(|p| p.version),
                "knowledge": knowledge_refs,
                "blocked_prompt_leak": leaked,
            }),
            intent,
            prompt_version_id,
        },
        tool_calls: trace,
    })
}

fn intent_of(text: &str) -> String {
    serde_json::to_value(detect_intent(text))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "question".into())
}

/// The prompt body of a stored version.
pub fn body_of(v: &PromptVersion) -> PromptBody {
    PromptBody {
        persona: v.persona.clone(),
        instructions: v.instructions.clone(),
        guardrails: v.guardrails.clone(),
        channel_styles: serde_json::from_value(v.channel_styles.clone()).unwrap_or_default(),
    }
}

/// The newest messages that fit `budget` tokens, oldest first, as chat messages. Staff replies
/// travel as the assistant's, marked as such.
fn fit_history(recent: Vec<memory::HistoryMessage>, budget: u32) -> Vec<Message> {
    let mut used = 0;
    let mut out = Vec::new();
    for m in recent.into_iter().rev() {
        let cost = estimate_tokens(&m.text) + 4;
        if used + cost > budget {
            break;
        }
        used += cost;
        out.push(match m.role {
            Role::Customer => Message::User { content: m.text },
            Role::Human => Message::Assistant {
                content: Some(format!("(a member of staff wrote:) {}", m.text)),
                tool_calls: Vec::new(),
            },
            _ => Message::Assistant {
                content: Some(m.text),
                tool_calls: Vec::new(),
            },
        });
    }
    out.reverse();
    out
}

struct LoopOutcome {
    text: Option<String>,
    model: String,
    used_fallback: bool,
    steps: u32,
}

/// The bounded tool loop: up to `max_tool_steps` answers may call tools; bad calls are answered
/// with an error the model can correct, up to `max_tool_errors` of them; then tools are
/// withdrawn and the next answer must be text.
#[allow(clippy::too_many_arguments)]
async fn tool_loop(
    mind: &ModelMind,
    config: &BrainConfig,
    mut messages: Vec<Message>,
    tools: &[Arc<dyn crate::tools::Tool>],
    ctx: &TurnContext<'_>,
    purpose: Purpose,
    usage_log: &UsageLog,
    trace: &mut Vec<Value>,
) -> Result<LoopOutcome, LlmError> {
    let specs = ToolRegistry::specs(tools);
    let mut tool_errors = 0;
    let mut steps = 0;
    loop {
        let offer = !specs.is_empty()
            && steps < mind.max_tool_steps
            && tool_errors < config.max_tool_errors;
        let request = ChatRequest {
            messages: messages.clone(),
            tools: if offer { specs.clone() } else { Vec::new() },
        };
        let response = mind.client.chat(&request).await?;
        steps += 1;
        usage_log.push(UsageRecord {
            purpose,
            model: response.model.clone(),
            prompt_tokens: response.usage.prompt_tokens,
            completion_tokens: response.usage.completion_tokens,
        });
        if !offer || response.tool_calls.is_empty() {
            return Ok(LoopOutcome {
                text: response.content,
                model: response.model,
                used_fallback: response.used_fallback,
                steps,
            });
        }
        messages.push(Message::Assistant {
            content: response.content.clone(),
            tool_calls: response.tool_calls.clone(),
        });
        for (i, call) in response.tool_calls.iter().enumerate() {
            let result = if i >= config.max_calls_per_step {
                Err(format!(
                    "too many tool calls in one answer; at most {} are run",
                    config.max_calls_per_step
                ))
            } else {
                dispatch(tools, ctx, &call.name, &call.arguments).await
            };
            let (content, ok) = match &result {
                Ok(v) => (json!({"ok": true, "result": v}).to_string(), true),
                Err(e) => {
                    tool_errors += 1;
                    (json!({"ok": false, "error": e}).to_string(), false)
                }
            };
            metrics::counter!("switchboard_tool_calls_total", "ok" => if ok { "true" } else { "false" })
                .increment(1);
            trace.push(json!({
                "name": call.name.chars().take(64).collect::<String>(),
                "arguments": call.arguments.chars().take(500).collect::<String>(),
                "ok": ok,
                "result": result.as_ref().ok(),
                "error": result.as_ref().err(),
            }));
            messages.push(Message::Tool {
                tool_call_id: call.id.clone(),
                content,
            });
        }
    }
}

/// Raises the budget alert once per tenant and month (with a metric and a warning the first
/// time). Best effort: a failure to record it never fails the turn.
async fn budget_alert(services: &Services, tenant: TenantId, budget: i64, used: i64) {
    let period = Utc::now().format("%Y-%m").to_string();
    let raised = async {
        let mut tx = services.db.tenant(tenant).await?;
        let raised = usage::raise_alert(
            &mut tx,
            "token_budget_exhausted",
            &period,
            &format!(
                "The monthly token budget ({budget} tokens) is used up ({used} used in {period}); \
                 customers get a fallback reply until the budget is raised or the month ends."
            ),
            json!({"budget": budget, "used": used}),
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, DbError>(raised)
    }
    .await;
    match raised {
        Ok(true) => {
            warn!(%tenant, budget, used, "a tenant's monthly token budget is exhausted; admins alerted");
            metrics::counter!("switchboard_budget_exhausted_alerts_total").increment(1);
        }
        Ok(false) => {}
        Err(e) => warn!(error = %e, "could not record the budget alert"),
    }
    metrics::counter!("switchboard_budget_fallback_replies_total").increment(1);
}

/// Folds older messages of a long conversation into its rolling summary, when enough have
/// accumulated. Best effort, after the turn's commit: a failure leaves the old summary.
pub async fn refresh_summary(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<bool, DbError> {
    /// Unmarks the conversation however the refresh ends (even by a panic or an abort).
    struct Marked<'a>(
        &'a Mutex<std::collections::HashSet<ConversationId>>,
        ConversationId,
    );
    impl Drop for Marked<'_> {
        fn drop(&mut self) {
            self.0.lock().expect("summarising").remove(&self.1);
        }
    }
    let set = &services.brains.summarising;
    if !set.lock().expect("summarising").insert(conversation) {
        return Ok(false);
    }
    let _marked = Marked(set, conversation);
    summarise(services, tenant, conversation).await
}

async fn summarise(
    services: &Services,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<bool, DbError> {
    let config = services.brains.config();
    let mut tx = services.db.tenant(tenant).await?;
    let m = memory::memory(&mut tx, conversation, &[]).await?;
    if m.unsummarised < config.summary_after {
        tx.commit().await?;
        return Ok(false);
    }
    let Mind::Model(mind) = services.brains.mind(&mut tx).await? else {
        tx.commit().await?;
        return Ok(false);
    };
    let after = m.summary_through_seq.unwrap_or(0);
    // Everything but the most recent `keep_recent` messages goes into the summary.
    let all = memory::between(&mut tx, conversation, after, i64::MAX).await?;
    tx.commit().await?;
    if mind.budget.is_some_and(|b| mind.used_this_month >= b) {
        return Ok(false);
    }
    let fold = all.len().saturating_sub(config.keep_recent.max(0) as usize);
    if fold == 0 {
        return Ok(false);
    }
    let through = all[fold - 1].seq;
    let transcript: String = all[..fold]
        .iter()
        .map(|m| {
            let who = match m.role {
                Role::Customer => "Customer",
                Role::Human => "Staff",
                _ => "Assistant",
            };
            format!("{who}: {}\n", m.text)
        })
        .collect();
    // If summaries kept failing, the backlog can be long: keep its most recent part.
    let skip = transcript
        .chars()
        .count()
        .saturating_sub(MAX_SUMMARY_INPUT_CHARS);
    let transcript: String = transcript.chars().skip(skip).collect();
    let request = ChatRequest {
        messages: vec![
            Message::System {
                content: SUMMARY_INSTRUCTIONS.into(),
            },
            Message::User {
                content: format!(
                    "Previous summary:\n{}\n\nNew messages:\n{transcript}",
                    m.summary.as_deref().unwrap_or("(none)")
                ),
            },
        ],
        tools: Vec::new(),
    };
    let response = match mind.client.chat(&request).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "could not refresh a conversation summary");
            return Ok(false);
        }
    };
    let mut tx = services.db.tenant(tenant).await?;
    usage::record(
        &mut tx,
        Some(conversation),
        None,
        &[UsageRecord {
            purpose: Purpose::Summary,
            model: response.model.clone(),
            prompt_tokens: response.usage.prompt_tokens,
            completion_tokens: response.usage.completion_tokens,
        }],
    )
    .await?;
    let stored = match response.content {
        Some(summary) => {
            let summary: String = summary.chars().take(4000).collect();
            memory::set_summary(&mut tx, conversation, &summary, through).await?
        }
        None => false,
    };
    tx.commit().await?;
    if stored {
        info!(%conversation, through, "conversation summary refreshed");
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: i64, role: Role, text: &str) -> memory::HistoryMessage {
        memory::HistoryMessage {
            seq,
            role,
            text: text.into(),
        }
    }

    #[test]
    fn history_keeps_the_newest_messages_that_fit() {
        let recent = vec![
            msg(1, Role::Customer, &"old ".repeat(200)),
            msg(2, Role::Agent, "answer two"),
            msg(3, Role::Human, "staff reply"),
            msg(4, Role::Customer, "newest question"),
        ];
        let fitted = fit_history(recent, 40);
        assert_eq!(fitted.len(), 3, "the 800-character message does not fit");
        assert_eq!(
            fitted[0],
            Message::Assistant {
                content: Some("answer two".into()),
                tool_calls: vec![]
            }
        );
        assert!(
            matches!(&fitted[1], Message::Assistant { content: Some(c), .. } if c.contains("staff"))
        );
        assert_eq!(
            fitted[2],
            Message::User {
                content: "newest question".into()
            }
        );
    }
}
