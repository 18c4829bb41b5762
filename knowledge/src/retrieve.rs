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
//! A third remembers each tenant's resolved embedder for its generation, so a new question does
//! not read the embedding settings again.
//!
//! All caches are bounded (least recently used entries go first) and live in
//! [`crate::Embedders`], which every caller already holds. Concurrent misses of one key are
//! computed once: when fifty conversations ask the same new question at the same moment, one
//! of them embeds and searches and the others wait for its answer. A failed computation is not
//! kept; the next caller tries again.

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
/// Tenants' resolved embedders kept, by knowledge generation.
const RESOLVED: usize = 1024;

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

/// A bounded map from keys to values computed at most once at a time.
struct Memo<K: Hash + Eq, V> {
    slots: Mutex<LruCache<K, Arc<tokio::sync::OnceCell<Arc<V>>>>>,
}

impl<K: Hash + Eq + Clone, V> Memo<K, V> {
    fn new(capacity: usize) -> Self {
        Memo {
            slots: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The value of `key`, computing it with `compute` unless it is known or being computed
    /// (then this waits for that computation). Returns whether the value was reused.
    async fn get_or_try<E, F, Fut>(&self, key: &K, compute: F) -> Result<(Arc<V>, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get(key) {
                Some(s) => Arc::clone(s),
                None => {
                    let s = Arc::new(tokio::sync::OnceCell::new());
                    slots.insert(key.clone(), Arc::clone(&s));
                    s
                }
            }
        };
        if let Some(v) = slot.get() {
            return Ok((Arc::clone(v), true));
        }
        let mut computed = false;
        let v = slot
            .get_or_try_init(|| async {
                computed = true;
                compute().await.map(Arc::new)
            })
            .await?;
        Ok((Arc::clone(v), !computed))
    }
}

/// The caches of [`retrieve`]; one per process, inside [`Embedders`].
pub struct RetrievalCache {
    vectors: Memo<VectorKey, Vec<f32>>,
    results: Memo<ResultKey, Retrieved>,
    /// A tenant's active embedder and model, by knowledge generation: the embedding settings
    /// and the stored vectors' model only change with the generation.
    resolved: Memo<(TenantId, i64), Option<(Embedder, String)>>,
}

impl Default for RetrievalCache {
    fn default() -> Self {
        RetrievalCache {
            vectors: Memo::new(QUERY_VECTORS),
            results: Memo::new(RESULTS),
            resolved: Memo::new(RESOLVED),
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
    let computed = cache
        .vectors
        .get_or_try(&key, || async {
            let mut v = embedder
                .embed(std::slice::from_ref(&key.text), EmbedKind::Query)
                .await?;
            if v.is_empty() {
                return Err(crate::embed::EmbedError::InvalidResponse {
                    model_id: model.clone(),
                    reason: "no vector for the query".into(),
                });
            }
            Ok(v.swap_remove(0))
        })
        .await;
    match computed {
        Ok((vector, reused)) => {
            let source = if reused { "cache" } else { "model" };
            metrics::counter!("switchboard_query_vectors_total", "source" => source).increment(1);
            Some(QueryVector {
                model,
                vector: vector.as_ref().clone(),
            })
        }
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
    let started = std::time::Instant::now();
    let Some(generation) = generation else {
        let found = search_now(db, embedders, tenant, params, None).await;
        metrics::histogram!("switchboard_retrieval_seconds", "source" => "search")
            .record(started.elapsed());
        return found;
    };
    let key = ResultKey {
        tenant,
        generation,
        params: params.clone(),
    };
    let (found, reused) = embedders
        .retrieval_cache()
        .results
        .get_or_try(&key, || async {
            search_now(db, embedders, tenant, params, Some(generation)).await
        })
        .await?;
    // Literal labels: the macros then build no label vector per retrieval.
    if reused {
        metrics::counter!("switchboard_retrievals_total", "source" => "cache").increment(1);
        metrics::histogram!("switchboard_retrieval_seconds", "source" => "cache")
            .record(started.elapsed());
    } else {
        metrics::counter!("switchboard_retrievals_total", "source" => "search").increment(1);
        metrics::histogram!("switchboard_retrieval_seconds", "source" => "search")
            .record(started.elapsed());
    }
    Ok(Retrieved {
        cached: reused,
        ..found.as_ref().clone()
    })
}

/// The tenant's active embedder and its model, reused for a known knowledge `generation`.
async fn resolve(
    db: &Db,
    embedders: &Embedders,
    tenant: TenantId,
    generation: Option<i64>,
) -> Result<Option<(Embedder, String)>, DbError> {
    let load = || async {
        let mut tx = db.tenant(tenant).await?;
        let e = crate::indexer::active_embedder(embedders, &mut tx).await?;
        tx.commit().await?;
        Ok::<_, DbError>(e)
    };
    match generation {
        None => load().await,
        Some(g) => {
            let cache = embedders.retrieval_cache();
            let (e, _) = cache.resolved.get_or_try(&(tenant, g), load).await?;
            Ok(e.as_ref().clone())
        }
    }
}

/// Embeds and searches, without the result cache.
async fn search_now(
    db: &Db,
    embedders: &Embedders,
    tenant: TenantId,
    params: &SearchParams,
    generation: Option<i64>,
) -> Result<Retrieved, DbError> {
    let embedder = if params.mode == SearchMode::FullText {
        None
    } else {
        resolve(db, embedders, tenant, generation).await?
    };
    let vector = match embedder {
        Some((e, model)) => embed_query(embedders, tenant, &e, model, &params.query).await,
        None => None,
    };
    let mut tx = db.tenant(tenant).await?;
    let hits = crate::search(&mut tx, params, vector.as_ref()).await?;
    tx.commit().await?;
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

    #[tokio::test]
    async fn concurrent_misses_compute_once_and_failures_are_not_kept() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let memo: Arc<Memo<String, usize>> = Arc::new(Memo::new(8));
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..10).map(|_| {
            let (memo, runs) = (Arc::clone(&memo), Arc::clone(&runs));
            tokio::spawn(async move {
                memo.get_or_try(&"q".to_owned(), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok::<_, ()>(42)
                })
                .await
                .unwrap()
            })
        });
        let mut results = Vec::new();
        for c in calls.collect::<Vec<_>>() {
            results.push(c.await);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| *r.as_ref().unwrap().0 == 42));
        assert_eq!(results.iter().filter(|r| !r.as_ref().unwrap().1).count(), 1);

        let failed = memo
            .get_or_try(&"bad".to_owned(), || async { Err::<usize, _>("down") })
            .await;
        assert!(failed.is_err());
        let retried = memo
            .get_or_try(&"bad".to_owned(), || async { Ok::<_, &str>(7) })
            .await
            .unwrap();
        assert_eq!((*retried.0, retried.1), (7, false));
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
