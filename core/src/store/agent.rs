//! A tenant's agent settings: which model answers (or the offline responder), its limits, the
//! monthly token budget and the tool allow-list. The API key is sealed with the master key and
//! the tenant id (see [`crate::secrets`]) and is never returned: admins see `has_api_key`.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::db::{DbError, TenantTx};
use crate::secrets::{MasterKey, SecretError};

/// Who answers a tenant's customers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AgentProvider {
    /// The deterministic offline responder (no model).
    Offline,
    /// An OpenAI-compatible chat-completions endpoint.
    OpenAi,
}

impl AgentProvider {
    fn as_str(self) -> &'static str {
        match self {
            AgentProvider::Offline => "offline",
            AgentProvider::OpenAi => "openai",
        }
    }
}

/// A tenant's stored settings (`None` fields fall back to platform defaults).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentSettings {
    pub provider: AgentProvider,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub fallback_model: Option<String>,
    pub has_api_key: bool,
    pub temperature: Option<f32>,
    pub max_tokens: Option<i32>,
    pub timeout_secs: Option<i32>,
    pub monthly_token_budget: Option<i64>,
    pub max_tool_steps: Option<i32>,
    pub allowed_tools: Option<Vec<String>>,
    pub utc_offset_minutes: i32,
    pub context_tokens: Option<i32>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub api_key_enc: Option<Vec<u8>>,
}

impl AgentSettings {
    /// Opens the sealed key, if there is one.
    pub fn api_key(
        &self,
        master: &MasterKey,
        tenant: crate::TenantId,
    ) -> Result<Option<SecretString>, SecretError> {
        self.api_key_enc
            .as_deref()
            .map(|sealed| master.open(tenant, sealed))
            .transpose()
    }
}

/// A change from an admin. The key: `Some` replaces it, `None` keeps it, and `clear_api_key`
/// removes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentSettingsUpdate {
    pub provider: Option<AgentProvider>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub fallback_model: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, write_only))]
    pub api_key: Option<SecretString>,
    #[serde(default)]
    pub clear_api_key: bool,
    pub temperature: Option<f32>,
    pub max_tokens: Option<i32>,
    pub timeout_secs: Option<i32>,
    pub monthly_token_budget: Option<i64>,
    pub max_tool_steps: Option<i32>,
    pub allowed_tools: Option<Vec<String>>,
    pub utc_offset_minutes: Option<i32>,
    pub context_tokens: Option<i32>,
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<f32>,
    Option<i32>,
    Option<i32>,
    Option<i64>,
    Option<i32>,
    Option<Vec<String>>,
    i32,
    Option<i32>,
    DateTime<Utc>,
);

/// The tenant's settings, or `None` when it never saved any.
pub async fn get(tx: &mut TenantTx) -> Result<Option<AgentSettings>, DbError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT provider, base_url, model, fallback_model, api_key_enc, temperature, max_tokens,
                timeout_secs, monthly_token_budget, max_tool_steps, allowed_tools,
                utc_offset_minutes, context_tokens, updated_at
           FROM agent_settings WHERE tenant_id = $1",
    )
    .bind(tx.tenant_id().0)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| AgentSettings {
        provider: if r.0 == "offline" {
            AgentProvider::Offline
        } else {
            AgentProvider::OpenAi
        },
        base_url: r.1,
        model: r.2,
        fallback_model: r.3,
        has_api_key: r.4.is_some(),
        api_key_enc: r.4,
        temperature: r.5,
        max_tokens: r.6,
        timeout_secs: r.7,
        monthly_token_budget: r.8,
        max_tool_steps: r.9,
        allowed_tools: r.10,
        utc_offset_minutes: r.11,
        context_tokens: r.12,
        updated_at: r.13,
    }))
}

fn invalid(m: impl Into<String>) -> DbError {
    DbError::Invalid(m.into())
}

fn check_text(name: &str, v: &Option<String>, max: usize) -> Result<(), DbError> {
    if let Some(v) = v {
        if v.trim().is_empty() || v.len() > max {
            return Err(invalid(format!("{name} must be 1 to {max} characters")));
        }
    }
    Ok(())
}

/// Applies `update` on top of the current settings (fields left out keep their value) and
/// returns the result. `known_tools` are the names an allow-list may contain.
pub async fn put(
    tx: &mut TenantTx,
    master: &MasterKey,
    update: AgentSettingsUpdate,
    known_tools: &[&str],
) -> Result<AgentSettings, DbError> {
    if let Some(url) = &update.base_url {
        crate::validate::http_url("base_url", url.trim(), 500).map_err(invalid)?;
    }
    check_text("model", &update.model, 200)?;
    check_text("fallback_model", &update.fallback_model, 200)?;
    if update
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return Err(invalid("temperature must be between 0 and 2"));
    }
    if update.max_tokens.is_some_and(|t| !(1..=32768).contains(&t)) {
        return Err(invalid("max_tokens must be between 1 and 32768"));
    }
    if update.timeout_secs.is_some_and(|t| !(1..=300).contains(&t)) {
        return Err(invalid("timeout_secs must be between 1 and 300"));
    }
    if update.monthly_token_budget.is_some_and(|b| b < 0) {
        return Err(invalid("monthly_token_budget must not be negative"));
    }
    if update
        .max_tool_steps
        .is_some_and(|s| !(0..=10).contains(&s))
    {
        return Err(invalid("max_tool_steps must be between 0 and 10"));
    }
    if update
        .utc_offset_minutes
        .is_some_and(|m| !(-840..=840).contains(&m))
    {
        return Err(invalid("utc_offset_minutes must be between -840 and 840"));
    }
    if update
        .context_tokens
        .is_some_and(|t| !(200..=100_000).contains(&t))
    {
        return Err(invalid("context_tokens must be between 200 and 100000"));
    }
    if let Some(tools) = &update.allowed_tools {
        if let Some(unknown) = tools.iter().find(|t| !known_tools.contains(&t.as_str())) {
            return Err(invalid(format!(
                "unknown tool `{unknown}`; known tools: {}",
                known_tools.join(", ")
            )));
        }
    }
    let tenant = tx.tenant_id();
    let current = get(tx).await?;
    let c = current.as_ref();
    let key = if update.clear_api_key {
        None
    } else if let Some(k) = &update.api_key {
        Some(master.seal(tenant, k))
    } else {
        c.and_then(|c| c.api_key_enc.clone())
    };
    let pick = |new: Option<String>, old: Option<&Option<String>>| {
        new.map(|s| s.trim().to_owned())
            .or_else(|| old.cloned().flatten())
    };
    let provider = update
        .provider
        .or(c.map(|c| c.provider))
        .unwrap_or(AgentProvider::OpenAi);
    sqlx::query(
        "INSERT INTO agent_settings (tenant_id, provider, base_url, model, fallback_model,
                api_key_enc, temperature, max_tokens, timeout_secs, monthly_token_budget,
                max_tool_steps, allowed_tools, utc_offset_minutes, context_tokens, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())
         ON CONFLICT (tenant_id) DO UPDATE SET
            provider = excluded.provider, base_url = excluded.base_url, model = excluded.model,
            fallback_model = excluded.fallback_model, api_key_enc = excluded.api_key_enc,
            temperature = excluded.temperature, max_tokens = excluded.max_tokens,
            timeout_secs = excluded.timeout_secs,
            monthly_token_budget = excluded.monthly_token_budget,
            max_tool_steps = excluded.max_tool_steps, allowed_tools = excluded.allowed_tools,
            utc_offset_minutes = excluded.utc_offset_minutes,
            context_tokens = excluded.context_tokens, updated_at = clock_timestamp()",
    )
    .bind(tenant.0)
    .bind(provider.as_str())
    .bind(pick(update.base_url, c.map(|c| &c.base_url)))
    .bind(pick(update.model, c.map(|c| &c.model)))
    .bind(pick(update.fallback_model, c.map(|c| &c.fallback_model)))
    .bind(key)
    .bind(update.temperature.or(c.and_then(|c| c.temperature)))
    .bind(update.max_tokens.or(c.and_then(|c| c.max_tokens)))
    .bind(update.timeout_secs.or(c.and_then(|c| c.timeout_secs)))
    .bind(
        update
            .monthly_token_budget
            .or(c.and_then(|c| c.monthly_token_budget)),
    )
    .bind(update.max_tool_steps.or(c.and_then(|c| c.max_tool_steps)))
    .bind(
        update
            .allowed_tools
            .or(c.and_then(|c| c.allowed_tools.clone())),
    )
    .bind(
        update
            .utc_offset_minutes
            .or(c.map(|c| c.utc_offset_minutes))
            .unwrap_or(0),
    )
    .bind(update.context_tokens.or(c.and_then(|c| c.context_tokens)))
    .execute(tx.conn())
    .await?;
    get(tx)
        .await?
        .ok_or_else(|| DbError::NotFound("agent settings".into()))
}
