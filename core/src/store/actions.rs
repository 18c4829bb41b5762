//! A tenant's action settings: which actions the agent may take (booking, handoff, leads), the
//! rules that bring a human in, where the sales team is notified, and the CRM webhook. The CRM
//! signing secret is sealed with the master key and the tenant id and never returned (admins see
//! `has_crm_secret`).

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::secrets::{MasterKey, SecretError};

/// An action a tenant can enable for its agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Offering slots, booking, cancelling and rescheduling meetings.
    Booking,
    /// Bringing a human from the sales team in.
    Handoff,
    /// Capturing leads (contact fields, score, CRM webhook).
    Leads,
}

impl Action {
    /// The action's name as stored and as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Booking => "booking",
            Action::Handoff => "handoff",
            Action::Leads => "leads",
        }
    }
}

/// The names of the actions a tenant can enable.
pub const ACTIONS: [&str; 3] = [
    Action::Booking.as_str(),
    Action::Handoff.as_str(),
    Action::Leads.as_str(),
];

/// A tenant's settings (defaults when it never saved any).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionSettings {
    pub enabled: Vec<String>,
    pub handoff_keywords: Vec<String>,
    pub max_failed_answers: i32,
    pub lead_score_threshold: Option<i32>,
    pub renotify_after_minutes: i32,
    pub max_renotify: i32,
    pub expected_wait_minutes: i32,
    pub notify_emails: Vec<String>,
    pub notify_telegram_chat_id: Option<String>,
    pub notify_email_channel_id: Option<Uuid>,
    pub notify_telegram_channel_id: Option<Uuid>,
    pub crm_webhook_url: Option<String>,
    pub has_crm_secret: bool,
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub crm_secret_enc: Option<Vec<u8>>,
}

impl Default for ActionSettings {
    fn default() -> Self {
        ActionSettings {
            enabled: ACTIONS.iter().map(|s| s.to_string()).collect(),
            handoff_keywords: Vec::new(),
            max_failed_answers: 2,
            lead_score_threshold: None,
            renotify_after_minutes: 15,
            max_renotify: 3,
            expected_wait_minutes: 15,
            notify_emails: Vec::new(),
            notify_telegram_chat_id: None,
            notify_email_channel_id: None,
            notify_telegram_channel_id: None,
            crm_webhook_url: None,
            has_crm_secret: false,
            updated_at: None,
            crm_secret_enc: None,
        }
    }
}

impl ActionSettings {
    /// Whether `action` is enabled.
    pub fn enabled(&self, action: Action) -> bool {
        self.enabled.iter().any(|a| a == action.as_str())
    }

    /// Opens the sealed CRM secret, if there is one.
    pub fn crm_secret(
        &self,
        master: &MasterKey,
        tenant: crate::TenantId,
    ) -> Result<Option<SecretString>, SecretError> {
        self.crm_secret_enc
            .as_deref()
            .map(|sealed| master.open(tenant, sealed))
            .transpose()
    }
}

/// A change from an admin: absent fields keep their value. The CRM secret: `Some` replaces it,
/// `clear_crm_secret` removes it. `null` clears the optional fields that allow it.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionSettingsUpdate {
    pub enabled: Option<Vec<String>>,
    pub handoff_keywords: Option<Vec<String>>,
    pub max_failed_answers: Option<i32>,
    #[serde(default, deserialize_with = "double_option")]
    pub lead_score_threshold: Option<Option<i32>>,
    pub renotify_after_minutes: Option<i32>,
    pub max_renotify: Option<i32>,
    pub expected_wait_minutes: Option<i32>,
    pub notify_emails: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub notify_telegram_chat_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub notify_email_channel_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "double_option")]
    pub notify_telegram_channel_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "double_option")]
    pub crm_webhook_url: Option<Option<String>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, write_only))]
    pub crm_secret: Option<SecretString>,
    #[serde(default)]
    pub clear_crm_secret: bool,
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Why an update was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The tenant's settings (defaults when none were saved).
pub async fn get(tx: &mut TenantTx) -> Result<ActionSettings, DbError> {
    let row = sqlx::query(
        "SELECT enabled, handoff_keywords, max_failed_answers, lead_score_threshold,
                renotify_after_minutes, max_renotify, expected_wait_minutes, notify_emails,
                notify_telegram_chat_id, notify_email_channel_id, notify_telegram_channel_id,
                crm_webhook_url, crm_secret_enc, updated_at
           FROM action_settings",
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(ActionSettings::default());
    };
    settings_from(&r)
}

/// The settings in a row with the columns of `action_settings`.
pub(crate) fn settings_from(r: &sqlx::postgres::PgRow) -> Result<ActionSettings, DbError> {
    let crm_secret_enc: Option<Vec<u8>> = r.try_get("crm_secret_enc")?;
    Ok(ActionSettings {
        enabled: r.try_get("enabled")?,
        handoff_keywords: r.try_get("handoff_keywords")?,
        max_failed_answers: r.try_get("max_failed_answers")?,
        lead_score_threshold: r.try_get("lead_score_threshold")?,
        renotify_after_minutes: r.try_get("renotify_after_minutes")?,
        max_renotify: r.try_get("max_renotify")?,
        expected_wait_minutes: r.try_get("expected_wait_minutes")?,
        notify_emails: r.try_get("notify_emails")?,
        notify_telegram_chat_id: r.try_get("notify_telegram_chat_id")?,
        notify_email_channel_id: r.try_get("notify_email_channel_id")?,
        notify_telegram_channel_id: r.try_get("notify_telegram_channel_id")?,
        crm_webhook_url: r.try_get("crm_webhook_url")?,
        has_crm_secret: crm_secret_enc.is_some(),
        updated_at: r.try_get("updated_at")?,
        crm_secret_enc,
    })
}

/// Applies `update` to the tenant's settings and returns the result.
pub async fn put(
    tx: &mut TenantTx,
    master: &MasterKey,
    update: ActionSettingsUpdate,
) -> Result<ActionSettings, SettingsError> {
    let tenant = tx.tenant_id();
    let mut s = get(tx).await?;
    let invalid = |m: &str| Err(SettingsError::Invalid(m.to_owned()));
    if let Some(enabled) = update.enabled {
        if let Some(bad) = enabled.iter().find(|a| !ACTIONS.contains(&a.as_str())) {
            return Err(SettingsError::Invalid(format!(
                "unknown action `{bad}`; the actions are {}",
                ACTIONS.join(", ")
            )));
        }
        let mut enabled = enabled;
        enabled.sort();
        enabled.dedup();
        s.enabled = enabled;
    }
    if let Some(k) = update.handoff_keywords {
        let k: Vec<String> = k
            .into_iter()
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty())
            .collect();
        if k.len() > 100 || k.iter().any(|w| w.chars().count() > 100) {
            return invalid("at most 100 handoff keywords of at most 100 characters each");
        }
        s.handoff_keywords = k;
    }
    if let Some(n) = update.max_failed_answers {
        if !(0..=20).contains(&n) {
            return invalid("`max_failed_answers` must be between 0 and 20");
        }
        s.max_failed_answers = n;
    }
    if let Some(t) = update.lead_score_threshold {
        if t.is_some_and(|t| !(1..=100).contains(&t)) {
            return invalid("`lead_score_threshold` must be between 1 and 100, or null");
        }
        s.lead_score_threshold = t;
    }
    if let Some(n) = update.renotify_after_minutes {
        if !(1..=10080).contains(&n) {
            return invalid("`renotify_after_minutes` must be between 1 and 10080");
        }
        s.renotify_after_minutes = n;
    }
    if let Some(n) = update.max_renotify {
        if !(0..=20).contains(&n) {
            return invalid("`max_renotify` must be between 0 and 20");
        }
        s.max_renotify = n;
    }
    if let Some(n) = update.expected_wait_minutes {
        if !(1..=10080).contains(&n) {
            return invalid("`expected_wait_minutes` must be between 1 and 10080");
        }
        s.expected_wait_minutes = n;
    }
    if let Some(emails) = update.notify_emails {
        let emails: Vec<String> = emails.into_iter().map(|e| e.trim().to_owned()).collect();
        if emails.len() > 20 {
            return invalid("at most 20 notification addresses");
        }
        if let Some(bad) = emails.iter().find(|e| !crate::validate::email(e)) {
            return Err(SettingsError::Invalid(format!(
                "`{bad}` is not an email address"
            )));
        }
        s.notify_emails = emails;
    }
    if let Some(chat) = update.notify_telegram_chat_id {
        let chat = chat.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        // The Bot API takes numeric chat ids (groups and channels are negative).
        if chat.as_deref().is_some_and(|c| c.parse::<i64>().is_err()) {
            return invalid("`notify_telegram_chat_id` must be a numeric Telegram chat id");
        }
        s.notify_telegram_chat_id = chat;
    }
    for (given, kind, slot) in [
        (
            update.notify_email_channel_id,
            "email",
            &mut s.notify_email_channel_id,
        ),
        (
            update.notify_telegram_channel_id,
            "telegram",
            &mut s.notify_telegram_channel_id,
        ),
    ] {
        if let Some(id) = given {
            if let Some(id) = id {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1")
                        .bind(id)
                        .fetch_optional(tx.conn())
                        .await
                        .map_err(DbError::from)?;
                if found.as_deref() != Some(kind) {
                    return Err(SettingsError::Invalid(format!(
                        "channel {id} is not one of this tenant's {kind} channels"
                    )));
                }
            }
            *slot = id;
        }
    }
    if let Some(url) = update.crm_webhook_url {
        let url = url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
        if let Some(u) = &url {
            crate::validate::http_url("crm_webhook_url", u, 2000)
                .map_err(SettingsError::Invalid)?;
        }
        s.crm_webhook_url = url;
    }
    if update.clear_crm_secret {
        s.crm_secret_enc = None;
    }
    if let Some(secret) = update.crm_secret {
        let len = secret.expose_secret().len();
        if !(16..=512).contains(&len) {
            return invalid("`crm_secret` must be 16 to 512 characters");
        }
        s.crm_secret_enc = Some(master.seal(tenant, &secret));
    }
    if s.crm_webhook_url.is_some() && s.crm_secret_enc.is_none() {
        return invalid("a CRM webhook needs a `crm_secret` to sign its requests");
    }
    sqlx::query(
        "INSERT INTO action_settings (tenant_id, enabled, handoff_keywords, max_failed_answers,
                lead_score_threshold, renotify_after_minutes, max_renotify, expected_wait_minutes,
                notify_emails, notify_telegram_chat_id, notify_email_channel_id,
                notify_telegram_channel_id, crm_webhook_url, crm_secret_enc, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())
         ON CONFLICT (tenant_id) DO UPDATE SET
                enabled = EXCLUDED.enabled, handoff_keywords = EXCLUDED.handoff_keywords,
                max_failed_answers = EXCLUDED.max_failed_answers,
                lead_score_threshold = EXCLUDED.lead_score_threshold,
                renotify_after_minutes = EXCLUDED.renotify_after_minutes,
                max_renotify = EXCLUDED.max_renotify,
                expected_wait_minutes = EXCLUDED.expected_wait_minutes,
                notify_emails = EXCLUDED.notify_emails,
                notify_telegram_chat_id = EXCLUDED.notify_telegram_chat_id,
                notify_email_channel_id = EXCLUDED.notify_email_channel_id,
                notify_telegram_channel_id = EXCLUDED.notify_telegram_channel_id,
                crm_webhook_url = EXCLUDED.crm_webhook_url,
                crm_secret_enc = EXCLUDED.crm_secret_enc, updated_at = now()",
    )
    .bind(tenant.0)
    .bind(&s.enabled)
    .bind(&s.handoff_keywords)
    .bind(s.max_failed_answers)
    .bind(s.lead_score_threshold)
    .bind(s.renotify_after_minutes)
    .bind(s.max_renotify)
    .bind(s.expected_wait_minutes)
    .bind(&s.notify_emails)
    .bind(&s.notify_telegram_chat_id)
    .bind(s.notify_email_channel_id)
    .bind(s.notify_telegram_channel_id)
    .bind(&s.crm_webhook_url)
    .bind(&s.crm_secret_enc)
    .execute(tx.conn())
    .await
    .map_err(DbError::from)?;
    Ok(get(tx).await?)
}
