//! Identity emails — invitations and password-reset links — sent through the tenant's email
//! channel when it has an enabled one, else through the platform's SMTP settings (`smtp.*`).
//!
//! They are sent while the request waits, not queued: the person who invites or asks for a link
//! learns at once whether it left, and a link that could not be sent is not left behind
//! working (the caller rolls back or spends it).

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use switchboard_channels::email::{self, Notice};
use switchboard_channels::ChannelSettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::channels;
use switchboard_core::TenantId;

use crate::http::AppState;

/// The platform's own SMTP account, for identity emails of tenants without an email channel
/// (and of people who belong to no tenant).
#[derive(Clone, Debug, Deserialize)]
pub struct PlatformSmtp {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a local test server only).
    #[serde(default = "default_security")]
    pub security: String,
    pub username: Option<String>,
    pub password: Option<secrecy::SecretString>,
    /// The sender address, e.g. `no-reply@switchboard.example`.
    pub from_address: String,
    pub from_name: Option<String>,
}

fn default_port() -> u16 {
    587
}

fn default_security() -> String {
    "starttls".into()
}

impl PlatformSmtp {
    /// The same account as an email channel's settings, so one SMTP client sends both.
    pub fn channel_settings(&self) -> Result<email::Settings, String> {
        serde_json::from_value(json!({
            "from_address": self.from_address,
            "from_name": self.from_name,
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": self.security,
            "smtp_username": self.username,
            "smtp_password": self.password.as_ref().map(|p| p.expose_secret().to_owned()),
        }))
        .map_err(|e| format!("smtp settings: {e}"))
    }
}

/// One identity email.
#[derive(Clone, Debug)]
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// Seeds the Message-ID.
    pub key: &'a str,
}

/// Why an identity email did not leave.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "no way to send email: the tenant has no enabled email channel and the platform SMTP settings (smtp.host, smtp.from_address) are not set"
    )]
    NoSender,
    #[error("the email could not be sent: {0}")]
    Failed(String),
}

/// Sends `mail` through `tenant`'s first enabled email channel, else the platform SMTP account;
/// says which it used.
pub async fn send(
    state: &AppState,
    tenant: Option<TenantId>,
    mail: &Mail<'_>,
) -> Result<&'static str, MailError> {
    // A tenant's SMTP host is held to the egress policy; the platform's is the operator's.
    let (settings, via, egress) = match tenant_channel(state, tenant).await? {
        Some(s) => (
            s,
            "the tenant's email channel",
            state.services.outbound.egress,
        ),
        None => match &state.auth.platform_smtp {
            Some(p) => (
                p.channel_settings().map_err(MailError::Failed)?,
                "the platform SMTP account",
                switchboard_core::egress::Egress::Unrestricted,
            ),
            None => return Err(MailError::NoSender),
        },
    };
    let to = [mail.to.to_owned()];
    email::send_notice(
        &settings,
        egress,
        &Notice {
            to: &to,
            subject: mail.subject,
            text: mail.text,
            ics: None,
            key: mail.key,
        },
    )
    .await
    .map_err(|e| MailError::Failed(e.to_string()))?;
    Ok(via)
}

async fn tenant_channel(
    state: &AppState,
    tenant: Option<TenantId>,
) -> Result<Option<email::Settings>, MailError> {
    let Some(tenant) = tenant else {
        return Ok(None);
    };
    let failed = |e: &dyn std::fmt::Display| MailError::Failed(e.to_string());
    let mut tx = state
        .services
        .db
        .tenant(tenant)
        .await
        .map_err(|e| failed(&e))?;
    let record = channels::list_records(&mut tx)
        .await
        .map_err(|e| failed(&e))?
        .into_iter()
        .find(|r| r.channel.kind == ChannelKind::Email && r.channel.enabled);
    tx.commit().await.map_err(|e| failed(&e))?;
    let Some(record) = record else {
        return Ok(None);
    };
    match ChannelSettings::open(
        ChannelKind::Email,
        tenant,
        &record.config,
        record.secrets_enc.as_deref(),
        state.services.embedders.master_key(),
    ) {
        Ok(ChannelSettings::Email(s)) => Ok(Some(s)),
        Ok(_) => Ok(None),
        Err(e) => Err(failed(&e)),
    }
}
