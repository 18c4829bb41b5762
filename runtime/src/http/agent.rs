//! Admin API of the agent's brain: model settings (the key is write-only), token usage and
//! budget, alerts, the tool catalogue, and versioned prompts with diff, rollback and preview.
//! Each route acts for the tenant of the request ([`crate::auth::Scope`]) except the tool
//! catalogue.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::brain::{self, body_of, Think, UsageLog};
use switchboard_actors::responder;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::agent::{self, AgentSettingsUpdate};
use switchboard_core::store::prompts::{self, PromptFields, PromptVersion};
use switchboard_core::store::usage;
use switchboard_prompts::agent::{validate, PromptBody};
use switchboard_prompts::diff::diff_bodies;
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::Scope;

pub(crate) fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// `GET /api/v1/agent/settings?tenant=…`: the tenant's settings (`null` when it has none) and
/// what actually answers (`offline`, `tenant`, `platform`).
pub async fn get_settings(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let s = agent::get(&mut tx).await?;
    tx.commit().await?;
    let platform = state.services.brains.config().platform.as_ref();
    let effective = match &s {
        Some(s) if s.provider == agent::AgentProvider::Offline => "offline",
        Some(_) => "tenant",
        None if platform.is_some() => "platform",
        None => "offline",
    };
    Ok(Json(json!({
        "settings": s,
        "effective": effective,
        "platform_model": platform.map(|p| &p.model),
        "breaker": state.services.brains.breaker_state(tenant.id),
    })))
}

/// `PUT /api/v1/agent/settings?tenant=…` with any of `provider` (`openai`|`offline`),
/// `base_url`, `model`, `fallback_model`, `api_key` (write-only), `clear_api_key`,
/// `temperature`, `max_tokens`, `timeout_secs`, `monthly_token_budget`, `max_tool_steps`,
/// `allowed_tools`, `utc_offset_minutes`, `context_tokens`. Omitted fields keep their value.
pub async fn put_settings(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AgentSettingsUpdate>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let brains = &state.services.brains;
    let names = brains.tools().names();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let s = agent::put(&mut tx, brains.master_key(), body, &names)
        .await
        .map_err(|e| match e {
            switchboard_core::DbError::Invalid(m) => unprocessable("invalid_settings", m),
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(Json(json!({"settings": s})))
}

/// `GET /api/v1/agent/usage?tenant=…[&conversation=id]`: this month's tokens (total, by
/// purpose, by conversation), the budget and what remains; with `conversation`, that
/// conversation's all-time totals too.
pub async fn get_usage(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<UsageParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let report = usage::month_report(&mut tx).await?;
    let settings = agent::get(&mut tx).await?;
    let conversation = match &p.conversation {
        Some(raw) => {
            let id: Uuid = raw.parse().map_err(|_| {
                ApiError::bad_request("invalid_conversation", "not a conversation id")
            })?;
            Some(usage::conversation_totals(&mut tx, id.into()).await?)
        }
        None => None,
    };
    tx.commit().await?;
    let budget = settings.and_then(|s| s.monthly_token_budget);
    let used = report["total"]["total_tokens"].as_i64().unwrap_or(0);
    Ok(Json(json!({
        "month": report,
        "monthly_token_budget": budget,
        "remaining": budget.map(|b| (b - used).max(0)),
        "conversation": conversation,
    })))
}

#[derive(Debug, Deserialize)]
pub struct UsageParams {
    conversation: Option<String>,
}

/// `GET /api/v1/agent/alerts?tenant=…`
pub async fn list_alerts(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let alerts = usage::alerts(&mut tx, 200).await?;
    tx.commit().await?;
    Ok(Json(json!({"alerts": alerts})))
}

/// `GET /api/v1/agent/tools`: the tools the agent can be allowed, with their JSON schemas.
pub async fn list_tools(State(state): State<AppState>) -> Json<Value> {
    let tools = state
        .services
        .brains
        .tools()
        .allowed(None, &Default::default());
    let specs = switchboard_actors::tools::ToolRegistry::specs(&tools);
    Json(json!({"tools": specs}))
}

// ---- prompts -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptBodyIn {
    persona: Option<String>,
    instructions: Option<String>,
    guardrails: Option<String>,
    channel_styles: Option<std::collections::BTreeMap<String, String>>,
    note: Option<String>,
    /// Start from this version's fields (fields given here override them).
    based_on: Option<i32>,
}

fn fields_of(body: &PromptBody, note: Option<String>) -> PromptFields {
    PromptFields {
        persona: body.persona.clone(),
        instructions: body.instructions.clone(),
        guardrails: body.guardrails.clone(),
        channel_styles: serde_json::to_value(&body.channel_styles).unwrap_or_default(),
        note,
    }
}

/// Merges `input` over `base` and validates the templates.
fn merged(base: PromptBody, input: &PromptBodyIn) -> Result<PromptBody, ApiError> {
    let body = PromptBody {
        persona: input.persona.clone().unwrap_or(base.persona),
        instructions: input.instructions.clone().unwrap_or(base.instructions),
        guardrails: input.guardrails.clone().unwrap_or(base.guardrails),
        channel_styles: input.channel_styles.clone().unwrap_or(base.channel_styles),
    };
    if body.channel_styles.values().any(|v| v.len() > 4000)
        || input.note.as_ref().is_some_and(|n| n.len() > 1000)
    {
        return Err(unprocessable(
            "invalid_prompt",
            "a channel style may have up to 4000 characters, a note up to 1000",
        ));
    }
    if body.persona.len() > 8000 || body.instructions.len() > 16000 || body.guardrails.len() > 8000
    {
        return Err(unprocessable(
            "invalid_prompt",
            "persona and guardrails may have up to 8000 characters, instructions up to 16000",
        ));
    }
    validate(&body).map_err(|e| unprocessable("invalid_prompt", e.to_string()))?;
    Ok(body)
}

fn version_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no prompt version `{raw}`")))
}

/// Who wrote a version: the caller (signed-in person, API key, platform administrator), never
/// a name in the body.
fn author_of(scope: &Scope) -> String {
    scope.caller.actor().label.chars().take(200).collect()
}

/// `GET /api/v1/prompts?tenant=…`: every version (newest first) and the published one.
pub async fn list_prompts(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let versions = prompts::list(&mut tx).await?;
    tx.commit().await?;
    let published = versions
        .iter()
        .find(|v| v.status == "published")
        .map(|v| v.version);
    Ok(Json(json!({
        "versions": versions,
        "published_version": published,
        "builtin": PromptBody::builtin(),
    })))
}

/// `POST /api/v1/prompts?tenant=…`: a new draft (201).
pub async fn create_prompt(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<PromptBodyIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = scope.tenant.clone();
    let author = author_of(&scope);
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let base = match input.based_on {
        Some(n) => body_of(
            &prompts::by_number(&mut tx, n)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no prompt version {n}")))?,
        ),
        None => PromptBody::builtin(),
    };
    let body = merged(base, &input)?;
    let v = prompts::create_draft(
        &mut tx,
        &fields_of(&body, input.note.clone()),
        &author,
        input.based_on,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"version": v}))))
}

/// `GET /api/v1/prompts/{id}?tenant=…`
pub async fn get_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let v = prompts::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no prompt version `{raw}`")))?;
    tx.commit().await?;
    Ok(Json(json!({"version": v})))
}

/// `PUT /api/v1/prompts/{id}?tenant=…`: edits a draft (409 for published or archived ones).
pub async fn update_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<PromptBodyIn>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let current = prompts::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no prompt version `{raw}`")))?;
    let body = merged(body_of(&current), &input)?;
    let v = prompts::update_draft(
        &mut tx,
        id,
        &fields_of(&body, input.note.clone().or(current.note)),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"version": v})))
}

/// `DELETE /api/v1/prompts/{id}?tenant=…`: deletes a draft.
pub async fn delete_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let deleted = prompts::delete_draft(&mut tx, id).await?;
    tx.commit().await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no draft `{raw}`")))
    }
}

/// `POST /api/v1/prompts/{id}/publish?tenant=…`: the draft answers from the next turn on.
pub async fn publish_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let v = prompts::publish(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(json!({"version": v})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    version: i32,
}

/// `POST /api/v1/prompts/rollback?tenant=…` with `{"version": N}`: publishes a new version
/// copying N (history only grows; turns keep pointing at the version that produced them).
pub async fn rollback_prompt(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let author = author_of(&scope);
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let v = prompts::rollback(&mut tx, body.version, &author).await?;
    tx.commit().await?;
    Ok(Json(json!({"version": v})))
}

#[derive(Debug, Deserialize)]
pub struct DiffParams {
    from: Option<i32>,
    to: Option<i32>,
}

/// `GET /api/v1/prompts/diff?tenant=…&from=N&to=M`: a unified diff per field (`from=0` is the
/// built-in prompt).
pub async fn diff_prompts(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<DiffParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let (Some(from), Some(to)) = (p.from, p.to) else {
        return Err(ApiError::bad_request(
            "missing_versions",
            "pass ?from=<version>&to=<version> (0 is the built-in prompt)",
        ));
    };
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let mut load = async |n: i32| -> Result<PromptBody, ApiError> {
        if n == 0 {
            return Ok(PromptBody::builtin());
        }
        Ok(body_of(&prompts::by_number(&mut tx, n).await?.ok_or_else(
            || ApiError::not_found(format!("no prompt version {n}")),
        )?))
    };
    let a = load(from).await?;
    let b = load(to).await?;
    tx.commit().await?;
    let fields = diff_bodies(&a, &b, &format!("v{from}"), &format!("v{to}"));
    Ok(Json(json!({"from": from, "to": to, "fields": fields})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    message: String,
    /// A version to answer with (typically a draft); default: the published one.
    version_id: Option<Uuid>,
    /// The channel to style the answer for (default `webchat`).
    channel: Option<ChannelKind>,
}

/// `POST /api/v1/prompts/preview?tenant=…`: runs a full agent turn in memory — retrieval, the
/// prompt (a draft if given), the model and its tools in dry-run mode — and returns the reply,
/// the tool calls and the tokens used. Nothing reaches a customer: no message, no outbox row,
/// no contact change. The tokens are recorded as `preview` usage (they were spent).
pub async fn preview(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<Value>, ApiError> {
    let tenant = scope.tenant.clone();
    let message = body.message.trim();
    if message.is_empty() || message.chars().count() > 4000 {
        return Err(unprocessable(
            "invalid_message",
            "message must be 1 to 4000 characters",
        ));
    }
    let services = &state.services;
    let version: Option<PromptVersion> = match body.version_id {
        Some(id) => {
            let mut tx = services.db.tenant(tenant.id).await?;
            let v = prompts::get(&mut tx, id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no prompt version `{id}`")))?;
            tx.commit().await?;
            Some(v)
        }
        None => None,
    };
    let passages = responder::ground(
        &services.db,
        &services.embedders,
        tenant.id,
        message,
        responder::GROUNDING_HITS,
    )
    .await?;
    let log = UsageLog::default();
    let action_settings = {
        let mut tx = services.db.tenant(tenant.id).await?;
        let s = switchboard_core::store::actions::get(&mut tx).await?;
        tx.commit().await?;
        s
    };
    let turn_actions = switchboard_actors::actions::TurnActions::default();
    let thought = brain::think(
        services,
        Think {
            tenant: tenant.id,
            tenant_name: &tenant.name,
            channel: body.channel.unwrap_or(ChannelKind::Webchat),
            conversation: None,
            customer_text: message,
            passages: &passages,
            dry_run: true,
            prompt_override: version.clone(),
            purpose: "preview",
            deadline: services.config.turn_timeout,
            mind: None,
            action_settings: &action_settings,
            actions: &turn_actions,
            handback_note: None,
        },
        &log,
    )
    .await;
    let spent = log.take();
    if !spent.is_empty() {
        let mut tx = services.db.tenant(tenant.id).await?;
        usage::record(&mut tx, None, None, &spent).await?;
        tx.commit().await?;
    }
    let thought = thought?;
    let prompt_tokens: u32 = spent.iter().map(|u| u.prompt_tokens).sum();
    let completion_tokens: u32 = spent.iter().map(|u| u.completion_tokens).sum();
    Ok(Json(json!({
        "reply": thought.reply.text,
        "responder": thought.reply.responder,
        "metadata": thought.reply.metadata,
        "prompt_version": version.as_ref().map(|v| v.version),
        "tool_calls": thought.tool_calls,
        "usage": {
            "calls": spent,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })))
}
