//! The background indexer: parses, chunks and embeds queued documents, and re-embeds tenants
//! whose model changed.
//!
//! Documents are claimed across tenants with a lease (`platform_claim_document`), so a crash
//! mid-way leaves the document to be claimed again when the lease runs out; work resumes on the
//! next start. A document whose content changed while it was being indexed is left to the newer
//! version: the write transaction re-checks the version it claimed.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use switchboard_core::retry::Backoff;
use switchboard_core::{Db, DbError, TenantId};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::chunk::{chunk_document, ChunkConfig};
use crate::embed::{EmbedKind, Embedder};
use crate::index::{
    chunk_language, chunks_missing_vectors, embedding_text, lock_tenant, replace_chunks,
    search_text, store_vectors, PreparedChunk,
};
use crate::parse::parse;
use crate::settings::Embedders;
use crate::vector_literal;

#[derive(Clone, Debug)]
pub struct IndexerConfig {
    pub chunk: ChunkConfig,
    /// How long a claimed document stays ours before another indexer may take it.
    pub lease: Duration,
    /// Attempts before a document whose embedding keeps failing is marked failed.
    pub max_attempts: i32,
    /// Chunks re-embedded per batch when a tenant's model changes.
    pub reembed_batch: i64,
    /// Longest sleep between looks at the queue (wake-ups come sooner when work arrives).
    pub poll: Duration,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            chunk: ChunkConfig::default(),
            lease: Duration::from_secs(600),
            max_attempts: 5,
            reembed_batch: 64,
            poll: Duration::from_secs(5),
        }
    }
}

/// What happened to one claimed document.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Indexed {
        chunks: usize,
    },
    Failed(String),
    /// An error that may pass; the document is queued again later.
    Retry(String),
    /// The document was deleted or changed meanwhile.
    Superseded,
}

#[derive(Clone)]
pub struct Indexer {
    db: Db,
    embedders: Arc<Embedders>,
    config: IndexerConfig,
    wake: Arc<Notify>,
}

impl Indexer {
    pub fn new(db: Db, embedders: Arc<Embedders>, config: IndexerConfig) -> Indexer {
        Indexer {
            db,
            embedders,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the loop (call after queueing a document or changing a model).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    pub fn embedders(&self) -> &Arc<Embedders> {
        &self.embedders
    }

    pub fn chunk_config(&self) -> ChunkConfig {
        self.config.chunk
    }

    /// Runs until `stop` turns true. Errors are logged and retried after a pause.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let worked = match self.step().await {
                Ok(worked) => worked,
                Err(e) => {
                    tracing::warn!(error = %e, "knowledge indexer step failed; retrying");
                    false
                }
            };
            if worked {
                continue;
            }
            let sleep = self.next_sleep().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn next_sleep(&self) -> Duration {
        let due: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT platform_next_document_due()")
                .fetch_one(self.db.pool())
                .await
                .ok()
                .flatten();
        match due {
            Some(at) => (at - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(self.config.poll),
            None => self.config.poll,
        }
    }

    /// Does one unit of work: indexes one due document, or re-embeds one batch. Returns whether
    /// there was anything to do.
    pub async fn step(&self) -> Result<bool, DbError> {
        if let Some((tenant, doc, version)) = self.claim().await? {
            let outcome = self.index(tenant, doc, version).await?;
            tracing::info!(tenant_id = %tenant.0, document_id = %doc, ?outcome, "document indexed");
            return Ok(true);
        }
        let tenants: Vec<Uuid> =
            sqlx::query_scalar("SELECT tenant_id FROM platform_reembedding_tenants()")
                .fetch_all(self.db.pool())
                .await?;
        let mut worked = false;
        for t in tenants {
            match self.reembed_batch(TenantId(t)).await {
                Ok(w) => worked |= w,
                Err(e) => {
                    tracing::warn!(tenant_id = %t, error = %e, "re-embedding failed; will retry")
                }
            }
        }
        Ok(worked)
    }

    /// Processes every due document now (for the CLI and tests). Returns how many it handled.
    pub async fn drain(&self) -> Result<usize, DbError> {
        let mut n = 0;
        while self.step().await? {
            n += 1;
        }
        Ok(n)
    }

    async fn claim(&self) -> Result<Option<(TenantId, Uuid, i32)>, DbError> {
        let row =
            sqlx::query("SELECT tenant_id, document_id, version FROM platform_claim_document($1)")
                .bind(self.config.lease)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(match row {
            Some(r) => Some((TenantId(r.try_get(0)?), r.try_get(1)?, r.try_get(2)?)),
            None => None,
        })
    }

    /// Indexes one claimed document version.
    pub async fn index(
        &self,
        tenant: TenantId,
        doc: Uuid,
        version: i32,
    ) -> Result<Outcome, DbError> {
        let mut tx = self.db.tenant(tenant).await?;
        let row = sqlx::query(
            "SELECT title, source, content_type, content, language, attempts
               FROM documents
              WHERE tenant_id = $1 AND id = $2 AND version = $3 AND status = 'indexing'",
        )
        .bind(tenant.0)
        .bind(doc)
        .bind(version)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(Outcome::Superseded);
        };
        let title: String = row.try_get(0)?;
        let source: Option<String> = row.try_get(1)?;
        let content_type: Option<String> = row.try_get(2)?;
        let content: Option<Vec<u8>> = row.try_get(3)?;
        let language: String = row.try_get(4)?;
        let attempts: i32 = row.try_get(5)?;
        let embedders = self.embedders.for_tenant(&mut tx).await;
        tx.commit().await?;

        let source = source.unwrap_or_else(|| format!("{title}.txt"));
        let content = content.unwrap_or_default();
        // Parsing is CPU work on untrusted bytes: keep it off the async workers.
        let parsed = {
            let (source, content_type) = (source.clone(), content_type.clone());
            tokio::task::spawn_blocking(move || parse(&source, content_type.as_deref(), &content))
                .await
        };
        let parsed = match parsed {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return self.fail(tenant, doc, version, e.to_string()).await,
            Err(_) => {
                return self
                    .fail(
                        tenant,
                        doc,
                        version,
                        format!("{source}: the parser crashed on this file"),
                    )
                    .await
            }
        };
        let chunks = chunk_document(&parsed, &self.config.chunk);
        if chunks.is_empty() {
            return self
                .fail(
                    tenant,
                    doc,
                    version,
                    format!("{source}: no text found to index"),
                )
                .await;
        }
        let embedder = match embedders {
            Ok(e) => e.desired,
            Err(e) => {
                return self
                    .fail(tenant, doc, version, format!("embedding settings: {e}"))
                    .await
            }
        };
        let inputs: Vec<String> = chunks.iter().map(|c| embedding_text(&title, c)).collect();
        let vectors = match embedder.embed(&inputs, EmbedKind::Passage).await {
            Ok(v) => v,
            Err(e) if e.is_transient() && attempts < self.config.max_attempts => {
                return self
                    .retry(tenant, doc, version, attempts, format!("embedding: {e}"))
                    .await
            }
            Err(e) => {
                return self
                    .fail(tenant, doc, version, format!("embedding: {e}"))
                    .await
            }
        };
        let model = embedder.model_id();
        let prepared: Vec<PreparedChunk<'_>> = chunks
            .iter()
            .zip(&vectors)
            .map(|(c, v)| {
                let (language, fts_config) = chunk_language(&language, &c.text);
                PreparedChunk {
                    chunk: c,
                    language,
                    fts_config,
                    search_text: search_text(&title, c, fts_config),
                    embedding: Some(v.as_slice()),
                }
            })
            .collect();

        let mut tx = self.db.tenant(tenant).await?;
        lock_tenant(&mut tx).await?;
        let current: Option<(i32, String)> = sqlx::query_as(
            "SELECT version, status FROM documents WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(tenant.0)
        .bind(doc)
        .fetch_optional(tx.conn())
        .await?;
        if current != Some((version, "indexing".to_owned())) {
            tx.rollback().await?;
            return Ok(Outcome::Superseded);
        }
        replace_chunks(&mut tx, doc, &prepared, Some(&model)).await?;
        sqlx::query(
            "UPDATE documents
                SET status = 'indexed', indexed_version = version, chunk_count = $3, error = NULL,
                    locked_until = NULL, indexed_at = now(), format = $4
              WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(doc)
        .bind(prepared.len() as i32)
        .bind(parsed.format.as_str())
        .execute(tx.conn())
        .await?;
        // The first vectors of a tenant make their model the active one; vectors of another
        // model than the active one mean a change is under way.
        sqlx::query(
            "INSERT INTO knowledge_settings (tenant_id, active_model) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE
                SET active_model = coalesce(knowledge_settings.active_model, excluded.active_model),
                    target_model = CASE
                        WHEN coalesce(knowledge_settings.active_model, excluded.active_model) = excluded.active_model
                        THEN knowledge_settings.target_model ELSE excluded.active_model END",
        )
        .bind(tenant.0)
        .bind(&model)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Outcome::Indexed {
            chunks: prepared.len(),
        })
    }

    async fn fail(
        &self,
        tenant: TenantId,
        doc: Uuid,
        version: i32,
        reason: String,
    ) -> Result<Outcome, DbError> {
        let mut tx = self.db.tenant(tenant).await?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', error = $4, locked_until = NULL
              WHERE tenant_id = $1 AND id = $2 AND version = $3 AND status = 'indexing'",
        )
        .bind(tenant.0)
        .bind(doc)
        .bind(version)
        .bind(&reason)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        tracing::warn!(tenant_id = %tenant.0, document_id = %doc, %reason, "document failed to index");
        Ok(Outcome::Failed(reason))
    }

    async fn retry(
        &self,
        tenant: TenantId,
        doc: Uuid,
        version: i32,
        attempts: i32,
        reason: String,
    ) -> Result<Outcome, DbError> {
        // 5 s doubled per failed attempt, the exponent at most 8 (about 21 minutes).
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(5 << 8))
            .delay(attempts.max(0) as u32);
        let mut tx = self.db.tenant(tenant).await?;
        sqlx::query(
            "UPDATE documents
                SET status = 'queued', error = $4, locked_until = NULL,
                    next_attempt_at = now() + $5
              WHERE tenant_id = $1 AND id = $2 AND version = $3 AND status = 'indexing'",
        )
        .bind(tenant.0)
        .bind(doc)
        .bind(version)
        .bind(&reason)
        .bind(backoff)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Outcome::Retry(reason))
    }

    /// Embeds one batch of a tenant's chunks with its target model, or switches to the target
    /// when every chunk has a vector of it. Returns whether it did anything.
    async fn reembed_batch(
        &self,
        tenant: TenantId,
    ) -> Result<bool, crate::settings::SettingsError> {
        let mut tx = self.db.tenant(tenant).await?;
        let e = self.embedders.for_tenant(&mut tx).await?;
        let desired_id = e.desired.model_id();
        let Some(target) = e.target_model.clone() else {
            tx.rollback().await?;
            return Ok(false);
        };
        if target != desired_id {
            // The settings changed again: aim at the newest model.
            sqlx::query("UPDATE knowledge_settings SET target_model = $2 WHERE tenant_id = $1")
                .bind(tenant.0)
                .bind(&desired_id)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            return Ok(true);
        }
        let missing = chunks_missing_vectors(&mut tx, &target, self.config.reembed_batch).await?;
        tx.commit().await?;
        if missing.is_empty() {
            let mut tx = self.db.tenant(tenant).await?;
            lock_tenant(&mut tx).await?;
            let still_missing = chunks_missing_vectors(&mut tx, &target, 1).await?;
            if !still_missing.is_empty() {
                tx.rollback().await?;
                return Ok(true);
            }
            sqlx::query(
                "UPDATE knowledge_settings SET active_model = target_model, target_model = NULL
                  WHERE tenant_id = $1 AND target_model = $2",
            )
            .bind(tenant.0)
            .bind(&target)
            .execute(tx.conn())
            .await?;
            sqlx::query("DELETE FROM chunk_embeddings WHERE tenant_id = $1 AND model <> $2")
                .bind(tenant.0)
                .bind(&target)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            tracing::info!(tenant_id = %tenant.0, model = %target, "knowledge re-embedded; now searching with the new model");
            return Ok(true);
        }
        let texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
        let vectors = e.desired.embed(&texts, EmbedKind::Passage).await?;
        let ids: Vec<Uuid> = missing.iter().map(|(id, _)| *id).collect();
        let literals: Vec<String> = vectors.iter().map(|v| vector_literal(v)).collect();
        let mut tx = self.db.tenant(tenant).await?;
        store_vectors(&mut tx, &target, &ids, &literals).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The embedder and model id of the current tenant's searchable vectors; `None` when the tenant
/// has no vectors yet or its embedder cannot be built (search then runs on full text alone).
/// Resolve inside a short transaction, then embed outside it with
/// [`crate::retrieve::embed_query`].
pub async fn active_embedder(
    embedders: &Embedders,
    tx: &mut switchboard_core::TenantTx,
) -> Result<Option<(Embedder, String)>, DbError> {
    match embedders.for_tenant(tx).await {
        Ok(e) => Ok(e.active.zip(e.active_model)),
        Err(crate::settings::SettingsError::Db(e)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "query embedding unavailable; searching full text only");
            Ok(None)
        }
    }
}
