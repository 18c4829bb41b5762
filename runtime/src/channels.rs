//! Channel configuration shared by the admin API and the CLI: create, show, change and delete
//! a tenant's channels. Credentials are split out of the settings by the kind's adapter, sealed
//! with the master key for the tenant (AES-256-GCM, tenant id as associated data) and never
//! shown again; views list only the names of the secrets that are set.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use switchboard_channels::{split_secrets, webhook_path, ChannelSettings};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::channels::{self, ChannelRecord, ChannelUpdate};
use switchboard_core::{ChannelId, Db, DbError, MasterKey, TenantId};
use utoipa::ToSchema;

/// Why a channel change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChannelConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Everything channel configuration needs.
#[derive(Clone, Copy)]
pub struct ChannelConfigurator<'a> {
    pub db: &'a Db,
    pub key: &'a MasterKey,
    /// Public base URL of this deployment, for the webhook URLs shown to admins.
    pub public_base_url: &'a str,
    /// Where the channel's provider endpoints may point.
    pub egress: switchboard_core::egress::Egress,
}

fn seal(key: &MasterKey, tenant: TenantId, secrets: &Map<String, Value>) -> Option<Vec<u8>> {
    if secrets.is_empty() {
        return None;
    }
    let plain = SecretString::from(Value::Object(secrets.clone()).to_string());
    Some(key.seal(tenant, &plain))
}

impl ChannelConfigurator<'_> {
    /// Creates a channel after checking its settings.
    pub async fn create(
        &self,
        tenant: TenantId,
        kind: ChannelKind,
        name: &str,
        mut config: Map<String, Value>,
    ) -> Result<ChannelRecord, ChannelConfigError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ChannelConfigError::Invalid(
                "name must be 1 to 200 characters".into(),
            ));
        }
        let secrets = split_secrets(kind, &mut config);
        ChannelSettings::parse(kind, &config, &secrets)
            .map_err(|e| ChannelConfigError::Invalid(e.0))?
            .check_endpoints(self.egress)
            .map_err(|e| ChannelConfigError::Invalid(e.0))?;
        let sealed = seal(self.key, tenant, &secrets);
        let mut tx = self.db.tenant(tenant).await?;
        let record =
            channels::create_configured(&mut tx, kind, name, &config, sealed.as_deref()).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Changes a channel. `config` is merged into the current settings (a `null` removes a
    /// field); secrets given replace the stored ones, others are kept.
    pub async fn update(
        &self,
        tenant: TenantId,
        id: ChannelId,
        name: Option<&str>,
        enabled: Option<bool>,
        config: Option<Map<String, Value>>,
    ) -> Result<ChannelRecord, ChannelConfigError> {
        let mut tx = self.db.tenant(tenant).await?;
        let current = channels::get(&mut tx, id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("channel {id}")))?;
        let kind = current.channel.kind;
        let mut new_config = None;
        let mut new_sealed = None;
        if let Some(mut patch) = config {
            let patch_secrets = split_secrets(kind, &mut patch);
            let mut public = current.config.clone();
            merge(&mut public, patch);
            let mut secrets = match &current.secrets_enc {
                None => Map::new(),
                Some(sealed) => {
                    let plain = self.key.open(tenant, sealed).map_err(|e| {
                        ChannelConfigError::Invalid(format!(
                            "the stored credentials cannot be opened ({e}); give every secret again"
                        ))
                    });
                    match plain {
                        Ok(p) => serde_json::from_str(secrecy::ExposeSecret::expose_secret(&p))
                            .unwrap_or_default(),
                        Err(e) if patch_secrets.is_empty() => return Err(e),
                        Err(_) => Map::new(),
                    }
                }
            };
            merge(&mut secrets, patch_secrets);
            ChannelSettings::parse(kind, &public, &secrets)
                .map_err(|e| ChannelConfigError::Invalid(e.0))?
                .check_endpoints(self.egress)
                .map_err(|e| ChannelConfigError::Invalid(e.0))?;
            new_sealed = seal(self.key, tenant, &secrets);
            new_config = Some(public);
        }
        if let Some(n) = name {
            if n.trim().is_empty() || n.chars().count() > 200 {
                return Err(ChannelConfigError::Invalid(
                    "name must be 1 to 200 characters".into(),
                ));
            }
        }
        channels::update(
            &mut tx,
            id,
            ChannelUpdate {
                name: name.map(str::trim),
                enabled,
                config: new_config.as_ref(),
                secrets_enc: new_sealed.as_deref(),
            },
        )
        .await?;
        let record = channels::get(&mut tx, id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("channel {id}")))?;
        tx.commit().await?;
        Ok(record)
    }

    /// The channel's settings, opened (for health checks).
    pub fn open(&self, record: &ChannelRecord) -> Result<ChannelSettings, ChannelConfigError> {
        ChannelSettings::open(
            record.channel.kind,
            record.channel.tenant_id,
            &record.config,
            record.secrets_enc.as_deref(),
            self.key,
        )
        .map_err(|e| ChannelConfigError::Invalid(e.0))
    }

    /// The URL to paste into the provider's console, if the kind has a webhook.
    pub fn webhook_url(&self, kind: ChannelKind, id: ChannelId) -> Option<String> {
        webhook_path(kind, id).map(|p| format!("{}{p}", self.public_base_url.trim_end_matches('/')))
    }

    /// What admins see of a channel: public settings, the names of the secrets that are set
    /// (never their values), the webhook URL and the health fields.
    pub fn view(&self, record: &ChannelRecord) -> ChannelView {
        let c = &record.channel;
        let secrets: Vec<&'static str> = switchboard_channels::secret_fields(c.kind)
            .iter()
            .copied()
            .filter(|_| record.secrets_enc.is_some())
            .collect();
        ChannelView {
            id: c.id,
            tenant_id: c.tenant_id,
            kind: c.kind,
            name: c.name.clone(),
            enabled: c.enabled,
            created_at: c.created_at,
            updated_at: record.updated_at,
            config: record.config.clone(),
            secrets_set: secrets,
            webhook_url: self.webhook_url(c.kind, c.id),
            transcript_webhook_url: (c.kind == ChannelKind::Voice).then(|| {
                format!(
                    "{}/webhooks/voice/{}/transcript",
                    self.public_base_url.trim_end_matches('/'),
                    c.id
                )
            }),
            health: ChannelHealthFields {
                last_inbound_at: record.last_inbound_at,
                last_error: record.last_error.clone(),
                last_error_at: record.last_error_at,
            },
        }
    }
}

/// A channel as admins see it: public settings, the names of the secrets that are set (never
/// their values), the URLs to give the provider, and the health fields.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: ChannelId,
    pub tenant_id: TenantId,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The kind's public settings (credentials are never shown).
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Names of the secret settings that are set.
    pub secrets_set: Vec<&'static str>,
    /// The URL to paste into the provider's console (kinds with a webhook).
    pub webhook_url: Option<String>,
    /// Voice channels: the generic speech-to-text webhook.
    pub transcript_webhook_url: Option<String>,
    pub health: ChannelHealthFields,
}

/// When the last verified inbound request arrived, and the last error.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChannelHealthFields {
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Merges `patch` into `target`; `null` removes a key.
fn merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}
