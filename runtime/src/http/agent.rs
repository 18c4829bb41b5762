//! Admin API of the agent's brain: model settings (the key is write-only), token usage and
//! budget, alerts, the tool catalogue, and versioned prompts with diff, rollback and preview.
//! Each route acts for the tenant of the request ([`crate::auth::Scope`]) except the tool
//! catalogue.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_actors::brain::{self, body_of, Think, UsageLog};
use switchboard_actors::context::TurnContext;
use switchboard_actors::responder;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::agent::{self, AgentSettings, AgentSettingsUpdate};
use switchboard_core::store::prompts::{self, PromptFields, PromptVersion};
use switchboard_core::store::usage::{self, Alert, Purpose, Totals, UsageRecord};
use switchboard_llm::breaker::BreakerState;
use switchboard_llm::ToolSpec;
use switchboard_prompts::agent::{validate, PromptBody};
use switchboard_prompts::diff::{diff_bodies, FieldDiff};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::{AuditDetail, Scope};

pub(crate) fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The tenant's model settings and what actually answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSettingsView {
    /// `null` when the tenant never saved any (the API key is never returned).
    pub settings: Option<AgentSettings>,
    /// What answers: `offline`, `tenant` (its own model) or `platform` (the platform's).
    pub effective: &'static str,
    /// The platform's model, when one is configured.
    pub platform_model: Option<String>,
    /// The tenant's circuit breaker, once its model has been called.
    pub breaker: Option<BreakerState>,
}

/// Model settings as saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSettingsSaved {
    pub settings: AgentSettings,
}

/// This month's token use and the budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    /// This month (UTC): `total`, `by_purpose` and `by_conversation` token totals.
    pub month: Value,
    pub monthly_token_budget: Option<i64>,
    /// Tokens left this month under the budget.
    pub remaining: Option<i64>,
    /// With `?conversation=`: that conversation's all-time totals.
    pub conversation: Option<Totals>,
}

/// Alerts for the tenant's administrators (budget used up, …), newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
}

/// The tools an agent can be allowed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolList {
    pub tools: Vec<ToolSpec>,
}

/// Every prompt version and the published one.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptList {
    /// Newest first.
    pub versions: Vec<PromptVersion>,
    pub published_version: Option<i32>,
    /// The built-in prompt (version 0 in diffs).
    pub builtin: PromptBody,
}

/// One prompt version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptOne {
    pub version: PromptVersion,
}

/// A unified diff per field between two versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptDiff {
    pub from: i32,
    pub to: i32,
    pub fields: Vec<FieldDiff>,
}

/// What the agent would answer, computed in memory.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub reply: String,
    /// What answered (`llm`, `offline`, …).
    pub responder: &'static str,
    pub metadata: Value,
    /// The prompt version used (`null`: the published one or the built-in prompt).
    pub prompt_version: Option<i32>,
    /// The tool calls the model made (dry run: nothing happened).
    pub tool_calls: Vec<Value>,
    /// The knowledge passages retrieved for the message and given to the agent, best first,
    /// with the fused score and each retriever's rank and score.
    pub passages: Vec<switchboard_knowledge::search::Hit>,
    pub usage: PreviewUsage,
}

/// The tokens a preview spent (recorded as `preview` usage).
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewUsage {
    pub calls: Vec<UsageRecord>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// `GET /api/v1/agent/settings?tenant=…`: the tenant's settings (`null` when it has none) and
/// what actually answers (`offline`, `tenant`, `platform`).
#[utoipa::path(
    get,
    path = "/api/v1/agent/settings",
    tag = "agent",
    responses((status = 200, description = "The settings and what answers", body = AgentSettingsView))
)]
pub async fn get_settings(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<AgentSettingsView>, ApiError> {
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
    Ok(Json(AgentSettingsView {
        settings: s,
        effective,
        platform_model: platform.map(|p| p.model.clone()),
        breaker: state.services.brains.breaker_state(tenant.id),
    }))
}

/// `PUT /api/v1/agent/settings?tenant=…` with any of `provider` (`openai`|`offline`),
/// `base_url`, `model`, `fallback_model`, `api_key` (write-only), `clear_api_key`,
/// `temperature`, `max_tokens`, `timeout_secs`, `monthly_token_budget`, `max_tool_steps`,
/// `allowed_tools`, `utc_offset_minutes`, `context_tokens`. Omitted fields keep their value.
#[utoipa::path(
    put,
    path = "/api/v1/agent/settings",
    summary = "Changes the tenant's model settings; omitted fields keep their value.",
    tag = "agent",
    request_body = AgentSettingsUpdate,
    responses(
        (status = 200, description = "The settings as saved (the API key is write-only)", body = AgentSettingsSaved),
        (status = 422, description = "`invalid_settings`"),
    )
)]
pub async fn put_settings(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AgentSettingsUpdate>,
) -> Result<(Extension<AuditDetail>, Json<AgentSettingsSaved>), ApiError> {
    let tenant = scope.tenant.clone();
    let brains = &state.services.brains;
    let names = brains.tools().names();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let before = agent::get(&mut tx).await?;
    let s = agent::put(&mut tx, brains.master_key(), body, &names)
        .await
        .map_err(|e| match e {
            switchboard_core::DbError::Invalid(m) => unprocessable("invalid_settings", m),
            other => other.into(),
        })?;
    // A literal or local address is refused now; names are checked on every connection.
    if let Some(url) = &s.base_url {
        state
            .services
            .outbound
            .egress
            .check_url(url)
            .map_err(|e| unprocessable("invalid_settings", format!("`base_url`: {e}")))?;
    }
    tx.commit().await?;
    let detail = AuditDetail::new("agent.settings", "tenant", tenant.id.to_string())
        .before_state(&before)
        .after_state(&s);
    Ok((Extension(detail), Json(AgentSettingsSaved { settings: s })))
}

/// `GET /api/v1/agent/usage?tenant=…[&conversation=id]`: this month's tokens (total, by
/// purpose, by conversation), the budget and what remains; with `conversation`, that
/// conversation's all-time totals too.
#[utoipa::path(
    get,
    path = "/api/v1/agent/usage",
    tag = "agent",
    params(UsageParams),
    responses(
        (status = 200, description = "This month's tokens, the budget and what remains", body = UsageReport),
        (status = 400, description = "`invalid_conversation`: not a conversation id"),
    )
)]
pub async fn get_usage(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
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
    Ok(Json(UsageReport {
        month: report,
        monthly_token_budget: budget,
        remaining: budget.map(|b| (b - used).max(0)),
        conversation,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// A conversation id: add its all-time totals.
    conversation: Option<String>,
}

/// `GET /api/v1/agent/alerts?tenant=…`
#[utoipa::path(
    get,
    path = "/api/v1/agent/alerts",
    summary = "Lists alerts for the tenant's administrators, newest first.",
    tag = "agent",
    responses((status = 200, description = "Up to 200 alerts, newest first", body = AlertList))
)]
pub async fn list_alerts(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<AlertList>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let alerts = usage::alerts(&mut tx, 200).await?;
    tx.commit().await?;
    Ok(Json(AlertList { alerts }))
}

/// `GET /api/v1/agent/tools`: the tools the agent can be allowed, with their JSON schemas.
#[utoipa::path(
    get,
    path = "/api/v1/agent/tools",
    tag = "agent",
    responses((status = 200, description = "Every tool, with the JSON schema of its arguments", body = ToolList))
)]
pub async fn list_tools(State(state): State<AppState>) -> Json<ToolList> {
    let tools = state.services.brains.tools().allowed(
        None,
        &Default::default(),
        switchboard_core::model::SenderTrust::Verified,
    );
    let specs = switchboard_actors::tools::ToolRegistry::specs(&tools);
    Json(ToolList { tools: specs })
}

// ---- prompts -------------------------------------------------------------------------------

/// A prompt version's fields; omitted ones come from `based_on` (or the current draft, or the
/// built-in prompt). The texts are minijinja templates, checked when saved.
#[derive(Debug, Deserialize, ToSchema)]
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
#[utoipa::path(
    get,
    path = "/api/v1/prompts",
    tag = "prompts",
    responses((status = 200, description = "Every version, the published one's number and the built-in prompt", body = PromptList))
)]
pub async fn list_prompts(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<PromptList>, ApiError> {
    let tenant = scope.tenant.clone();
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let versions = prompts::list(&mut tx).await?;
    tx.commit().await?;
    let published = versions
        .iter()
        .find(|v| v.status == "published")
        .map(|v| v.version);
    Ok(Json(PromptList {
        versions,
        published_version: published,
        builtin: PromptBody::builtin(),
    }))
}

/// `POST /api/v1/prompts?tenant=…`: a new draft (201).
#[utoipa::path(
    post,
    path = "/api/v1/prompts",
    summary = "Creates a draft prompt version.",
    tag = "prompts",
    request_body = PromptBodyIn,
    responses(
        (status = 201, description = "The new draft", body = PromptOne),
        (status = 404, description = "No version numbered `based_on`"),
        (status = 422, description = "`invalid_prompt`: a template does not render, or a field is too long"),
    )
)]
pub async fn create_prompt(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<PromptBodyIn>,
) -> Result<(StatusCode, Json<PromptOne>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(PromptOne { version: v })))
}

/// `GET /api/v1/prompts/{id}?tenant=…`
#[utoipa::path(
    get,
    path = "/api/v1/prompts/{version_id}",
    summary = "Shows a prompt version.",
    tag = "prompts",
    params(("version_id" = String, Path, description = "The version's id")),
    responses(
        (status = 200, description = "The version", body = PromptOne),
        (status = 404, description = "No version has this id"),
    )
)]
pub async fn get_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<PromptOne>, ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let v = prompts::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no prompt version `{raw}`")))?;
    tx.commit().await?;
    Ok(Json(PromptOne { version: v }))
}

/// `PUT /api/v1/prompts/{id}?tenant=…`: edits a draft (409 for published or archived ones).
#[utoipa::path(
    put,
    path = "/api/v1/prompts/{version_id}",
    tag = "prompts",
    params(("version_id" = String, Path, description = "The draft's id")),
    request_body = PromptBodyIn,
    responses(
        (status = 200, description = "The draft as changed", body = PromptOne),
        (status = 404, description = "No version has this id"),
        (status = 409, description = "`conflict`: only drafts can be edited"),
        (status = 422, description = "`invalid_prompt`"),
    )
)]
pub async fn update_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<PromptBodyIn>,
) -> Result<(Extension<AuditDetail>, Json<PromptOne>), ApiError> {
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
        &fields_of(&body, input.note.clone().or(current.note.clone())),
    )
    .await?;
    tx.commit().await?;
    let detail = AuditDetail::new("prompt.update", "prompt", id.to_string())
        .before_state(&current)
        .after_state(&v);
    Ok((Extension(detail), Json(PromptOne { version: v })))
}

/// `DELETE /api/v1/prompts/{id}?tenant=…`: deletes a draft.
#[utoipa::path(
    delete,
    path = "/api/v1/prompts/{version_id}",
    tag = "prompts",
    params(("version_id" = String, Path, description = "The draft's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No draft has this id"),
    )
)]
pub async fn delete_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetail>), ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let before = prompts::get(&mut tx, id).await?;
    let deleted = prompts::delete_draft(&mut tx, id).await?;
    tx.commit().await?;
    match (deleted, before) {
        (true, Some(before)) => {
            let detail =
                AuditDetail::new("prompt.delete", "prompt", id.to_string()).before_state(&before);
            Ok((StatusCode::NO_CONTENT, Extension(detail)))
        }
        _ => Err(ApiError::not_found(format!("no draft `{raw}`"))),
    }
}

/// `POST /api/v1/prompts/{id}/publish?tenant=…`: the draft answers from the next turn on.
#[utoipa::path(
    post,
    path = "/api/v1/prompts/{version_id}/publish",
    summary = "Publishes a draft: it answers from the next turn on.",
    tag = "prompts",
    params(("version_id" = String, Path, description = "The draft's id")),
    responses(
        (status = 200, description = "Published; the previous version is archived", body = PromptOne),
        (status = 404, description = "No version has this id"),
        (status = 409, description = "`conflict`: only drafts can be published"),
    )
)]
pub async fn publish_prompt(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(Extension<AuditDetail>, Json<PromptOne>), ApiError> {
    let tenant = scope.tenant.clone();
    let id = version_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let before = prompts::published(&mut tx).await?;
    let v = prompts::publish(&mut tx, id).await?;
    tx.commit().await?;
    // Before: the version that answered until now (none: the built-in prompt).
    let detail = AuditDetail::new("prompt.publish", "prompt", id.to_string())
        .before_state(&before)
        .after_state(&v);
    Ok((Extension(detail), Json(PromptOne { version: v })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version number to publish again.
    version: i32,
}

/// `POST /api/v1/prompts/rollback?tenant=…` with `{"version": N}`: publishes a new version
/// copying N (history only grows; turns keep pointing at the version that produced them).
#[utoipa::path(
    post,
    path = "/api/v1/prompts/rollback",
    summary = "Publishes a new version copying version N (history only grows).",
    tag = "prompts",
    request_body = RollbackBody,
    responses(
        (status = 200, description = "The new published version, a copy of N", body = PromptOne),
        (status = 404, description = "No version has this number"),
    )
)]
pub async fn rollback_prompt(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<(Extension<AuditDetail>, Json<PromptOne>), ApiError> {
    let tenant = scope.tenant.clone();
    let author = author_of(&scope);
    let mut tx = state.services.db.tenant(tenant.id).await?;
    let before = prompts::published(&mut tx).await?;
    let v = prompts::rollback(&mut tx, body.version, &author).await?;
    tx.commit().await?;
    let detail = AuditDetail::new("prompt.rollback", "prompt", v.id.to_string())
        .before_state(&before)
        .after_state(&v);
    Ok((Extension(detail), Json(PromptOne { version: v })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// A version number (0: the built-in prompt). Required.
    from: Option<i32>,
    /// A version number (0: the built-in prompt). Required.
    to: Option<i32>,
}

/// `GET /api/v1/prompts/diff?tenant=…&from=N&to=M`: a unified diff per field (`from=0` is the
/// built-in prompt).
#[utoipa::path(
    get,
    path = "/api/v1/prompts/diff",
    tag = "prompts",
    params(DiffParams),
    responses(
        (status = 200, description = "A unified diff per field", body = PromptDiff),
        (status = 400, description = "`missing_versions`: pass both `from` and `to`"),
        (status = 404, description = "No version has one of these numbers"),
    )
)]
pub async fn diff_prompts(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<DiffParams>,
) -> Result<Json<PromptDiff>, ApiError> {
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
    Ok(Json(PromptDiff { from, to, fields }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// A customer's message, 1 to 4000 characters.
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
#[utoipa::path(
    post,
    path = "/api/v1/prompts/preview",
    tag = "prompts",
    request_body = PreviewBody,
    responses(
        (status = 200, description = "The reply, the tool calls (not carried out) and the tokens spent", body = Preview),
        (status = 404, description = "No prompt version has `version_id`"),
        (status = 422, description = "`invalid_message`"),
    )
)]
pub async fn preview(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<Preview>, ApiError> {
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
        None,
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
    let ctx = TurnContext {
        services,
        tenant: tenant.id,
        tenant_name: &tenant.name,
        channel: body.channel.unwrap_or(ChannelKind::Webchat),
        conversation: None,
        events: &[],
        customer_text: message,
        // A preview is the admin's own text: nothing is withheld from it.
        sender: switchboard_core::model::SenderTrust::Verified,
        lang: switchboard_prompts::detect_language(message),
        settings: &action_settings,
        actions: &turn_actions,
        dry_run: true,
    };
    let thought = brain::think(
        Think {
            ctx: &ctx,
            passages: &passages,
            prompt_override: version.clone(),
            purpose: Purpose::Preview,
            deadline: services.config.turn_timeout,
            mind: None,
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
    Ok(Json(Preview {
        reply: thought.reply.text,
        responder: thought.reply.responder.as_str(),
        metadata: thought.reply.metadata,
        prompt_version: version.as_ref().map(|v| v.version),
        tool_calls: thought.tool_calls,
        passages,
        usage: PreviewUsage {
            calls: spent,
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        },
    }))
}
