//! How each tenant's knowledge is embedded, and the embedders that do it.
//!
//! A tenant uses the platform's local model unless an admin configures an OpenAI-compatible
//! `/embeddings` endpoint (base URL, model, key, dimensions). The key is sealed with the master
//! key and the tenant id ([`MasterKey`]) and is never returned. Every stored vector records the
//! model id that made it; search reads the tenant's *active* model only. Changing the model sets
//! a *target*: the indexer fills in the target's vectors in the background and then switches, in
//! one transaction, so search keeps working with the old vectors until the new ones are complete.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::Row;
use switchboard_core::{DbError, MasterKey, TenantId, TenantTx};

use crate::embed::{EmbedError, Embedder, OpenAiEmbedConfig, OpenAiEmbedder};

/// Default model for the OpenAI-compatible provider.
pub const DEFAULT_OPENAI_MODEL: &str = "text-embedding-3-small";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = EmbeddingProvider))]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Local,
    OpenAi,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::Local => "local",
            Provider::OpenAi => "openai",
        }
    }
}

/// A tenant's knowledge settings as admins see them (the key only as `has_api_key`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KnowledgeSettings {
    pub provider: Provider,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub has_api_key: bool,
    pub dimensions: Option<i32>,
    /// Model whose vectors search uses.
    pub active_model: Option<String>,
    /// Model being filled in, when a change is in progress.
    pub target_model: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    api_key_enc: Option<Vec<u8>>,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings {
            provider: Provider::Local,
            model: None,
            base_url: None,
            has_api_key: false,
            dimensions: None,
            active_model: None,
            target_model: None,
            updated_at: None,
            api_key_enc: None,
        }
    }
}

/// A change of settings from an admin.
#[derive(Clone, Debug)]
pub struct SettingsUpdate {
    pub provider: Provider,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// `Some` replaces the stored key; `None` keeps it (switching to local drops it).
    pub api_key: Option<SecretString>,
    pub dimensions: Option<i32>,
}

pub async fn get(tx: &mut TenantTx) -> Result<KnowledgeSettings, DbError> {
    let row = sqlx::query(
        "SELECT provider, model, base_url, api_key_enc, dimensions, active_model, target_model,
                updated_at
           FROM knowledge_settings WHERE tenant_id = $1",
    )
    .bind(tx.tenant_id().0)
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(KnowledgeSettings::default());
    };
    let key: Option<Vec<u8>> = r.try_get(3)?;
    Ok(KnowledgeSettings {
        provider: if r.try_get::<&str, _>(0)? == "openai" {
            Provider::OpenAi
        } else {
            Provider::Local
        },
        model: r.try_get(1)?,
        base_url: r.try_get(2)?,
        has_api_key: key.is_some(),
        api_key_enc: key,
        dimensions: r.try_get(4)?,
        active_model: r.try_get(5)?,
        target_model: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

/// Errors resolving a tenant's embedder.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Secret(#[from] switchboard_core::SecretError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for SettingsError {
    fn from(e: sqlx::Error) -> Self {
        SettingsError::Db(e.into())
    }
}

/// Platform-wide embedding defaults.
#[derive(Clone, Debug)]
pub struct PlatformEmbedding {
    /// Base URL for tenants on the OpenAI-compatible provider that did not set their own.
    pub openai_base_url: String,
    /// Key for such tenants that did not set their own.
    pub openai_api_key: Option<SecretString>,
    pub timeout: Duration,
    /// Where a tenant's own `base_url` may point (the platform's URL is the operator's).
    pub egress: switchboard_core::egress::Egress,
}

impl Default for PlatformEmbedding {
    fn default() -> Self {
        PlatformEmbedding {
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_api_key: None,
            timeout: Duration::from_secs(30),
            egress: switchboard_core::egress::Egress::PublicOnly,
        }
    }
}

/// A tenant's remote embedder and the settings version it was built from.
type CachedEmbedder = (Option<DateTime<Utc>>, Embedder);

/// The embedders of every tenant: the shared local one, and OpenAI-compatible clients built
/// from each tenant's settings (cached until the settings change).
pub struct Embedders {
    local: Embedder,
    master_key: MasterKey,
    platform: PlatformEmbedding,
    cache: Mutex<HashMap<TenantId, CachedEmbedder>>,
    retrieval: crate::retrieve::RetrievalCache,
}

/// A tenant's embedders: the one new vectors are made with, and the one matching the vectors
/// search reads now (`None` while no vectors exist or the old remote model is gone).
#[derive(Clone)]
pub struct TenantEmbedders {
    pub desired: Embedder,
    pub active: Option<Embedder>,
    pub active_model: Option<String>,
    pub target_model: Option<String>,
}

impl Embedders {
    pub fn new(local: Embedder, master_key: MasterKey, platform: PlatformEmbedding) -> Embedders {
        Embedders {
            local,
            master_key,
            platform,
            cache: Mutex::new(HashMap::new()),
            retrieval: crate::retrieve::RetrievalCache::default(),
        }
    }

    pub fn local(&self) -> &Embedder {
        &self.local
    }

    /// The query-vector and result caches of [`crate::retrieve`].
    pub fn retrieval_cache(&self) -> &crate::retrieve::RetrievalCache {
        &self.retrieval
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }

    /// The embedder for `settings` of `tenant`.
    pub fn build(
        &self,
        tenant: TenantId,
        settings: &KnowledgeSettings,
    ) -> Result<Embedder, SettingsError> {
        if settings.provider == Provider::Local {
            return Ok(self.local.clone());
        }
        if let Some((at, e)) = self.cache.lock().expect("cache lock").get(&tenant) {
            if *at == settings.updated_at {
                return Ok(e.clone());
            }
        }
        // The platform's key only ever goes to the platform's endpoint: a tenant that names its
        // own base URL must bring its own key (as on the chat path, `Brains::client`).
        let api_key = match &settings.api_key_enc {
            Some(sealed) => Some(self.master_key.open(tenant, sealed)?),
            None if settings.base_url.is_none() => self.platform.openai_api_key.clone(),
            None => None,
        };
        let config = OpenAiEmbedConfig {
            base_url: settings
                .base_url
                .clone()
                .unwrap_or_else(|| self.platform.openai_base_url.clone()),
            api_key,
            model: settings
                .model
                .clone()
                .unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned()),
            dimensions: settings.dimensions.map(|d| d as u32),
            timeout: self.platform.timeout,
            egress: match settings.base_url {
                Some(_) => self.platform.egress,
                None => switchboard_core::egress::Egress::Unrestricted,
            },
            ..OpenAiEmbedConfig::default()
        };
        let embedder = Embedder::OpenAi(OpenAiEmbedder::new(config)?);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(tenant, (settings.updated_at, embedder.clone()));
        Ok(embedder)
    }

    /// Resolves the current tenant's embedders.
    pub async fn for_tenant(&self, tx: &mut TenantTx) -> Result<TenantEmbedders, SettingsError> {
        let settings = get(tx).await?;
        let desired = self.build(tx.tenant_id(), &settings)?;
        let desired_id = desired.model_id();
        let active = match settings.active_model.as_deref() {
            None => None,
            Some(m) if m == desired_id => Some(desired.clone()),
            Some(m) if m == self.local.model_id() => Some(self.local.clone()),
            Some(_) => None,
        };
        Ok(TenantEmbedders {
            desired,
            active,
            active_model: settings.active_model,
            target_model: settings.target_model,
        })
    }
}

/// Stores new settings for the current tenant. When they change the model, the change is
/// recorded as the target and the indexer re-embeds in the background.
pub async fn put(
    tx: &mut TenantTx,
    embedders: &Embedders,
    update: &SettingsUpdate,
) -> Result<KnowledgeSettings, SettingsError> {
    if let Some(url) = &update.base_url {
        switchboard_core::validate::http_url("base_url", url.trim(), 500)
            .map_err(SettingsError::Invalid)?;
    }
    if let Some(model) = &update.model {
        if model.trim().is_empty() || model.len() > 200 {
            return Err(SettingsError::Invalid(
                "model must be 1 to 200 characters".into(),
            ));
        }
    }
    if update.dimensions.is_some_and(|d| !(1..=16000).contains(&d)) {
        return Err(SettingsError::Invalid(
            "dimensions must be between 1 and 16000".into(),
        ));
    }
    let tenant = tx.tenant_id();
    let current = get(tx).await?;
    let local = update.provider == Provider::Local;
    let api_key_enc = match (&update.api_key, local) {
        (_, true) => None,
        (Some(k), false) => Some(embedders.master_key.seal(tenant, k)),
        (None, false) => current.api_key_enc.clone(),
    };
    let mut next = KnowledgeSettings {
        provider: update.provider,
        model: if local { None } else { update.model.clone() },
        base_url: if local {
            None
        } else {
            update.base_url.as_ref().map(|u| u.trim().to_owned())
        },
        has_api_key: api_key_enc.is_some(),
        dimensions: if local { None } else { update.dimensions },
        active_model: current.active_model.clone(),
        target_model: None,
        updated_at: Some(Utc::now()),
        api_key_enc,
    };
    let desired = embedders.build(tenant, &next)?.model_id();
    next.target_model = match &current.active_model {
        Some(active) if *active == desired => None,
        // Nothing embedded yet: the first document sets the active model.
        None => None,
        Some(_) => Some(desired),
    };
    sqlx::query(
        "INSERT INTO knowledge_settings (tenant_id, provider, model, base_url, api_key_enc,
                                         dimensions, active_model, target_model, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id) DO UPDATE
            SET provider = excluded.provider, model = excluded.model,
                base_url = excluded.base_url, api_key_enc = excluded.api_key_enc,
                dimensions = excluded.dimensions, target_model = excluded.target_model,
                updated_at = excluded.updated_at",
    )
    .bind(tenant.0)
    .bind(next.provider.as_str())
    .bind(&next.model)
    .bind(&next.base_url)
    .bind(&next.api_key_enc)
    .bind(next.dimensions)
    .bind(&next.active_model)
    .bind(&next.target_model)
    .bind(next.updated_at)
    .execute(tx.conn())
    .await?;
    Ok(next)
}
