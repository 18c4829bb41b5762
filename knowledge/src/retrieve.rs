//! The one way to read a tenant's knowledge for a question: resolve the tenant's embedder in a
//! short read transaction, embed the query outside any transaction, search in a second one.
//!
//! Two caches make a repeated question cheap, and neither can serve stale or foreign data:
//!
//! * **Query vectors**, keyed by the model id and the query text as the model sees it (the
//!   local model splits on whitespace before anything else, so runs of whitespace do not change
//!   its vector). Vectors of the shared local model are shared by every tenant; vectors
//!   from a tenant's own provider are kept for that tenant only, since a tenant chooses its
//!   provider's address and could otherwise plant vectors for another tenant's questions.
//! * **Results**, keyed by the tenant, its knowledge *generation* and every search parameter.
//!   The generation (`kb_generation()`, see the migration `kb_generation`) changes in the same
//!   transaction as any change of chunks, vectors, document titles, sources or tags, or of the
//!   model search reads; a result computed for an older generation can no longer be looked up.
//!   Only callers that read the generation (a conversation's turn reads it with the rest of its
//!   state) use this cache; the search API and `kb eval` always search.
//!
//! Both caches are bounded (least recently used entries go first) and live in
//! [`crate::Embedders`], which every caller already holds.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use hashlink::LruCache;
use switchboard_core::{Db, DbError, TenantId};

use crate::embed::{EmbedKind, Embedder};
use crate::search::{QueryVector, SearchMode, SearchParams};
use crate::{Embedders, Hit};

/// Query vectors kept (a 384-float vector is 1.5 KB: about 6 MB at most).
const QUERY_VECTORS: usize = 4096;
/// Search results kept (a few passages each).
const RESULTS: usize = 4096;

/// What a retrieval found.
#[derive(Clone, Debug)]
pub struct Retrieved {
    pub hits: Vec<Hit>,
    /// The model whose vectors took part, if any.
    pub model: Option<String>,
    /// Whether the result came from the result cache.
    pub cached: bool,
}

/// Who may reuse a cached query vector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scope {
    /// The platform's local model: the same for everyone.
    Shared,
    /// A tenant's own provider.
    Tenant(TenantId),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct VectorKey {
    scope: Scope,
    model: String,
    text: String,
}

/// Every input of a search, so equal keys always mean equal results for one generation.
#[derive(Clone, Debug, PartialEq)]
struct ResultKey {
    tenant: TenantId,
    generation: i64,
    params: SearchParams,
}

impl Eq for ResultKey {}

impl Hash for ResultKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.tenant.hash(state);
        self.generation.hash(state);
        let p = &self.params;
        p.query.hash(state);
        p.k.hash(state);
        p.min_score.to_bits().hash(state);
        p.mode.hash(state);
        p.candidates.hash(state);
        p.fts_weight.to_bits().hash(state);
        p.vector_weight.to_bits().hash(state);
        p.strategy.hash(state);
        p.fusion.hash(state);
        p.tags.hash(state);
    }
}

/// The caches of [`retrieve`]; one per process, inside [`Embedders`].
pub struct RetrievalCache {
    vectors: Mutex<LruCache<VectorKey, Arc<Vec<f32>>>>,
    results: Mutex<LruCache<ResultKey, Arc<Vec<Hit>>>>,
}

impl Default for RetrievalCache {
    fn default() -> Self {
        RetrievalCache {
            vectors: Mutex::new(LruCache::new(QUERY_VECTORS)),
            results: Mutex::new(LruCache::new(RESULTS)),
        }
    }
}

impl std::fmt::Debug for RetrievalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrievalCache").finish_non_exhaustive()
    }
}

/// The text as the local model reads it: whitespace runs as one space, trimmed (BERT's
/// tokenizer splits on whitespace before anything else, so these give the same word pieces).
/// Case is kept: lowercasing a word alone is not always what the tokenizer does to it.
fn local_model_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl RetrievalCache {
    fn vector(&self, key: &VectorKey) -> Option<Arc<Vec<f32>>> {
        self.vectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn keep_vector(&self, key: VectorKey, vector: Arc<Vec<f32>>) {
        self.vectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, vector);
    }

    fn result(&self, key: &ResultKey) -> Option<Arc<Vec<Hit>>> {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn keep_result(&self, key: ResultKey, hits: Arc<Vec<Hit>>) {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, hits);
    }
}

/// Embeds `query` for `tenant` with `embedder` (whose vectors are stored as `model`), reusing a
/// cached vector when there is one; logs and returns `None` when the embedder fails, so search
/// falls back to full text.
pub async fn embed_query(
    embedders: &Embedders,
    tenant: TenantId,
    embedder: &Embedder,
    model: String,
    query: &str,
) -> Option<QueryVector> {
    let shared = matches!(embedder, Embedder::Local(_) | Embedder::Hashed(_));
    let key = VectorKey {
        scope: if shared {
            Scope::Shared
        } else {
            Scope::Tenant(tenant)
        },
        model: model.clone(),
        text: if matches!(embedder, Embedder::Local(_)) {
            local_model_text(query)
        } else {
            query.to_owned()
        },
    };
    let cache = embedders.retrieval_cache();
    if let Some(v) = cache.vector(&key) {
        metrics::counter!("switchboard_query_vectors_total", "source" => "cache").increment(1);
        return Some(QueryVector {
            model,
            vector: v.as_ref().clone(),
        });
    }
    match embedder
        .embed(std::slice::from_ref(&key.text), EmbedKind::Query)
        .await
    {
        Ok(mut v) if !v.is_empty() => {
            metrics::counter!("switchboard_query_vectors_total", "source" => "model").increment(1);
            let vector = v.swap_remove(0);
            cache.keep_vector(key, Arc::new(vector.clone()));
            Some(QueryVector { model, vector })
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "query embedding failed; searching full text only");
            None
        }
    }
}

/// The tenant's knowledge for `params.query`: hybrid search (or `params.mode`) with the
/// tenant's active embedder. With `generation` (the tenant's `kb_generation()` read by the
/// caller), an identical earlier search of the same generation is reused instead.
pub async fn retrieve(
    db: &Db,
    embedders: &Embedders,
    tenant: TenantId,
    params: &SearchParams,
    generation: Option<i64>,
) -> Result<Retrieved, DbError> {
    let key = generation.map(|generation| ResultKey {
        tenant,
        generation,
        params: params.clone(),
    });
    let cache = embedders.retrieval_cache();
    if let Some(hits) = key.as_ref().and_then(|k| cache.result(k)) {
        metrics::counter!("switchboard_retrievals_total", "source" => "cache").increment(1);
        return Ok(Retrieved {
            hits: hits.as_ref().clone(),
            model: None,
            cached: true,
        });
    }
    let embedder = if params.mode == SearchMode::FullText {
        None
    } else {
        let mut tx = db.tenant(tenant).await?;
        let e = crate::indexer::active_embedder(embedders, &mut tx).await?;
        tx.commit().await?;
        e
    };
    let vector = match embedder {
        Some((e, model)) => embed_query(embedders, tenant, &e, model, &params.query).await,
        None => None,
    };
    let mut tx = db.tenant(tenant).await?;
    let hits = crate::search(&mut tx, params, vector.as_ref()).await?;
    tx.commit().await?;
    metrics::counter!("switchboard_retrievals_total", "source" => "search").increment(1);
    if let Some(k) = key {
        cache.keep_result(k, Arc::new(hits.clone()));
    }
    Ok(Retrieved {
        hits,
        model: vector.map(|v| v.model),
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_models_text_ignores_whitespace_runs_only() {
        assert_eq!(
            local_model_text("  What are\tyour \n Opening HOURS? "),
            "What are your Opening HOURS?"
        );
        assert_ne!(
            local_model_text("opening hours"),
            local_model_text("openinghours")
        );
        assert_eq!(local_model_text("مرحبا   بكم"), "مرحبا بكم");
    }

    #[test]
    fn result_keys_differ_by_every_search_input() {
        let base = ResultKey {
            tenant: TenantId(uuid::Uuid::nil()),
            generation: 1,
            params: SearchParams::new("q", 5),
        };
        let hash = |k: &ResultKey| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        };
        let variants = [
            ResultKey {
                generation: 2,
                ..base.clone()
            },
            ResultKey {
                params: SearchParams::new("q2", 5),
                ..base.clone()
            },
            ResultKey {
                params: SearchParams::new("q", 6),
                ..base.clone()
            },
            ResultKey {
                params: SearchParams {
                    min_score: 0.1,
                    ..base.params.clone()
                },
                ..base.clone()
            },
            ResultKey {
                params: SearchParams {
                    tags: vec!["x".into()],
                    ..base.params.clone()
                },
                ..base.clone()
            },
            ResultKey {
                tenant: TenantId(uuid::Uuid::from_u128(1)),
                ..base.clone()
            },
        ];
        for v in &variants {
            assert_ne!(v, &base);
            assert_ne!(hash(v), hash(&base), "{v:?}");
        }
        assert_eq!(hash(&base.clone()), hash(&base));
    }
}
