//! Wiring of the knowledge base: the platform's local embedder (loaded once per process), the
//! master key that seals tenants' credentials, and the indexer's configuration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use secrecy::ExposeSecret;
use switchboard_core::Db;
use switchboard_core::MasterKey;
use switchboard_knowledge::chunk::ChunkConfig;
use switchboard_knowledge::embed::{
    default_model_dir, CompositeEmbedder, Embedder, Gate, HashedEmbedder, LocalEmbedder,
};
use switchboard_knowledge::settings::PlatformEmbedding;
use switchboard_knowledge::{Embedders, Indexer, IndexerConfig};
use tracing::{info, warn};

use crate::config::{KnowledgeConfig, Settings};

/// The local embedder for `config`, shared by every application in this process (the model is
/// about 90 MB; tests start many applications).
pub fn local_embedder(config: &KnowledgeConfig) -> anyhow::Result<Embedder> {
    type Cache = Mutex<HashMap<(String, Option<PathBuf>), Embedder>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (
        format!("{}/{}", config.local_model, config.ngram_dims),
        config.model_dir.clone(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(e) = cache.lock().expect("embedder cache").get(&key) {
        return Ok(e.clone());
    }
    let embedder = build_local(config)?;
    cache
        .lock()
        .expect("embedder cache")
        .insert(key, embedder.clone());
    Ok(embedder)
}

fn build_local(config: &KnowledgeConfig) -> anyhow::Result<Embedder> {
    let load_minilm = || -> Option<Arc<LocalEmbedder>> {
        let dir = config.model_dir.clone().or_else(default_model_dir)?;
        match LocalEmbedder::load(&dir) {
            Ok(m) => {
                info!(dir = %dir.display(), "loaded the local embedding model");
                Some(Arc::new(m))
            }
            Err(e) => {
                warn!(error = %e, "could not load the local embedding model");
                None
            }
        }
    };
    let hashed = HashedEmbedder::new(config.ngram_dims)
        .map_err(|e| anyhow::anyhow!("knowledge.ngram_dims: {e}"))?;
    let ngram = || Embedder::Hashed(hashed.clone());
    Ok(match config.local_model.as_str() {
        "ngram" => ngram(),
        "minilm" | "minilm+ngram" => match load_minilm() {
            Some(m) if config.local_model == "minilm" => Embedder::Local(m),
            // Routed by script: MiniLM knows English-like text only, so Arabic text is embedded
            // by its character n-grams and everything else by MiniLM.
            Some(m) => Embedder::Composite(Arc::new(
                CompositeEmbedder::new(vec![(Embedder::Local(m), 1.0), (ngram(), 1.0)])
                    .map_err(|e| anyhow::anyhow!("local embedder: {e}"))?
                    .gate(0, Gate::NotArabic)
                    .gate(1, Gate::Arabic),
            )),
            None if config.model_dir.is_some() => bail!(
                "the embedding model in {} could not be loaded (see the log); fix knowledge.model_dir or run `bash scripts/setup.sh`",
                config.model_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default()
            ),
            None => {
                warn!("the local embedding model is not installed (run `bash scripts/setup.sh`); using character n-gram vectors until it is, then re-embedding");
                ngram()
            }
        },
        other => bail!("knowledge.local_model `{other}` is not one of minilm, minilm+ngram, ngram"),
    })
}

/// The master key: `SWITCHBOARD_MASTER_KEY`, or a key generated into the data directory.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(k) = &settings.master_key {
        return MasterKey::from_hex(k.expose_secret()).context("SWITCHBOARD_MASTER_KEY is invalid");
    }
    let path = settings.data_dir.join("master-key");
    let existed = path.exists();
    let hex = crate::app::local_secret(&path)?;
    if !existed {
        info!(path = %path.display(), "generated a master key for secrets at rest (set SWITCHBOARD_MASTER_KEY to manage it yourself; losing it makes stored credentials unreadable)");
    }
    MasterKey::from_hex(&hex)
        .with_context(|| format!("{} is not a valid master key", path.display()))
}

pub fn platform_embedding(settings: &Settings) -> PlatformEmbedding {
    let mut p = PlatformEmbedding::default();
    if let Some(url) = &settings.openai_base_url {
        p.openai_base_url = url.clone();
    }
    p.openai_api_key = settings.openai_api_key.clone();
    p.egress = settings.egress();
    p
}

/// The embedders and the indexer of an application (or of a CLI command working without one).
pub fn stack(settings: &Settings, db: &Db) -> anyhow::Result<(Arc<Embedders>, Indexer)> {
    let embedders = Arc::new(Embedders::new(
        local_embedder(&settings.knowledge)?,
        master_key(settings)?,
        platform_embedding(settings),
    ));
    let indexer = Indexer::new(
        db.clone(),
        embedders.clone(),
        indexer_config(&settings.knowledge)?,
    );
    Ok((embedders, indexer))
}

pub fn indexer_config(config: &KnowledgeConfig) -> anyhow::Result<IndexerConfig> {
    let chunk = ChunkConfig::new(config.chunk_max_chars, config.chunk_overlap_chars)
        .map_err(|e| anyhow::anyhow!("knowledge chunk settings: {e}"))?;
    Ok(IndexerConfig {
        chunk,
        ..IndexerConfig::default()
    })
}

/// One pass of the index keeper ([`switchboard_knowledge::tenant_indexes::reconcile`]) on a
/// fresh owner connection.
pub async fn keep_indexes_once(
    db: &Db,
    owner_url: &secrecy::SecretString,
    min_chunks: i64,
) -> anyhow::Result<switchboard_knowledge::tenant_indexes::Reconciled> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(owner_url.expose_secret())
        .await
        .context("could not connect as the schema owner")?;
    let result = switchboard_knowledge::tenant_indexes::reconcile(db, &mut conn, min_chunks).await;
    let _ = conn.close().await;
    Ok(result?)
}

/// Keeps large tenants' own retrieval indexes in line: a pass at start-up, then one every
/// `knowledge.tenant_index_check_secs`, until `stop`. A pass cut short by shutdown leaves at
/// most an invalid index, which the next pass drops and rebuilds.
pub async fn run_index_keeper(
    db: Db,
    owner_url: secrecy::SecretString,
    config: KnowledgeConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = std::time::Duration::from_secs(config.tenant_index_check_secs.max(1));
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            result = keep_indexes_once(&db, &owner_url, config.tenant_index_min_chunks) => {
                if let Err(e) = result {
                    warn!(error = %format!("{e:#}"), "the retrieval index keeper failed; will retry");
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
