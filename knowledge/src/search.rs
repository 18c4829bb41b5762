//! Hybrid retrieval inside PostgreSQL: BM25 full text and vector similarity, each ranked within
//! the tenant, fused, and only then filtered by score.
//!
//! * **Full text.** The query is turned into lexemes with each text-search configuration the
//!   knowledge base uses (`english`, `arabic`, `simple`); lexemes that occur in none of the
//!   tenant's chunks drop out when joined with `kb_terms`, and the rest carry their IDF. Chunks
//!   matching any lexeme (GIN index; a large tenant's own partial one) are ranked by the inner
//!   product of their stored BM25 vector with the query's IDF vector. In large tenants, terms
//!   found in more than a tenth of the chunks only score; they do not find chunks
//!   ([`COMMON_TERM_DF`]).
//! * **Vectors.** The query is embedded with the tenant's active model and compared by cosine
//!   distance with that model's vectors only: through the tenant's own partial HNSW index when
//!   it is large enough to have one ([`crate::tenant_indexes`]), by an exact scan of its vectors
//!   otherwise.
//! * **Fusion.** By default a convex combination, `score = (w_f·bm25/max_bm25 + w_v·cos/max_cos)
//!   / (w_f + w_v)` over each retriever's candidates (0.6/0.4, measured with `kb eval`);
//!   optionally reciprocal rank fusion, `Σ wᵢ / (60 + rankᵢ)` normalised so first place in every
//!   retriever scores 1. Either way the score is in [0, 1] and the threshold applies to it, after
//!   fusion, so a chunk found by only one retriever is never dropped before the other has had its
//!   say.
//!
//! Every statement runs in the caller's [`TenantTx`] and names the tenant in its `WHERE` clause
//! as well, so row-level security and the indexes agree on the scope.

use crate::fts::prepare;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use switchboard_core::{DbError, TenantTx};
use uuid::Uuid;

use crate::vector_literal;

/// Reciprocal-rank-fusion constant (Cormack et al.).
const RRF_K: f64 = 60.0;
/// Tenants with at least this many chunks match a query only on its uncommon terms (see
/// [`COMMON_TERM_DF`]); smaller tenants match every term, which costs little at their size.
pub const COMMON_TERMS_MIN_CHUNKS: i64 = 5_000;
/// A query term found in more than this share of a large tenant's chunks is *common*: it adds to
/// the score of the chunks found through the other terms, but does not find chunks itself (as
/// Lucene's common-terms query does). Otherwise one frequent word makes full text score nearly
/// every chunk of the tenant; a chunk that has only common words scores too low to rank anyway.
/// A query made only of common terms matches on all of them.
pub const COMMON_TERM_DF: f64 = 0.1;
/// Text-search configurations whose lexemes a query is matched with.
const QUERY_CONFIGS: [&str; 3] = ["english", "arabic", "simple"];

/// Which retrievers take part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    #[default]
    Hybrid,
    FullText,
    Vector,
}

/// How the two rankings are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Weighted mean of each retriever's score divided by its best score among the candidates
    /// (BM25 / max BM25, cosine / max cosine): a convex combination of scores normalised by their
    /// theoretical minimum (0) and observed maximum.
    #[default]
    Convex,
    /// Weighted reciprocal rank fusion, `Σ wᵢ / (60 + rankᵢ)`, normalised so that first place in
    /// every retriever scores 1.
    Rrf,
}

/// How the vector retriever reaches its candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VectorStrategy {
    /// The tenant's own HNSW index when it has one (large tenants, see
    /// [`crate::tenant_indexes`]), an exact scan of its vectors otherwise.
    #[default]
    Auto,
    /// Always scan the tenant's vectors exactly.
    Exact,
    /// Prefer an HNSW index (iterative scan) even where the planner would not.
    Ann,
}

/// A search request.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchParams {
    pub query: String,
    /// Results wanted (1..=200).
    pub k: usize,
    /// Minimum fused score in [0, 1], applied after fusion.
    pub min_score: f64,
    pub mode: SearchMode,
    /// Candidates each retriever contributes before fusion (at least `k`).
    pub candidates: usize,
    /// Weights of the full-text and vector retrievers in the fusion.
    pub fts_weight: f64,
    pub vector_weight: f64,
    pub strategy: VectorStrategy,
    pub fusion: Fusion,
    /// Only chunks of documents carrying all these tags.
    pub tags: Vec<String>,
}

impl SearchParams {
    pub fn new(query: impl Into<String>, k: usize) -> SearchParams {
        SearchParams {
            query: query.into(),
            k,
            min_score: 0.0,
            mode: SearchMode::Hybrid,
            candidates: 50,
            // Measured with `kb eval` (README): 0.6/0.4 is within 0.01 of the best mix on both
            // the English (SciFact) and the Arabic (XQuAD-R) set.
            fts_weight: 0.6,
            vector_weight: 0.4,
            strategy: VectorStrategy::Auto,
            fusion: Fusion::Convex,
            tags: Vec::new(),
        }
    }
}

/// The query's embedding and the model that made it.
#[derive(Clone, Debug)]
pub struct QueryVector {
    pub model: String,
    pub vector: Vec<f32>,
}

/// One retriever's view of a hit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetrieverScore {
    /// 1-based rank among that retriever's candidates.
    pub rank: u32,
    /// BM25 score for full text; cosine similarity for vectors.
    pub score: f64,
}

/// A ranked chunk with what is needed to cite it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SearchHit))]
pub struct Hit {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub title: String,
    pub source: Option<String>,
    pub heading_path: Vec<String>,
    pub position: i32,
    pub char_start: i32,
    pub char_end: i32,
    pub language: String,
    pub text: String,
    /// Fused score in [0, 1].
    pub score: f64,
    pub full_text: Option<RetrieverScore>,
    pub vector: Option<RetrieverScore>,
}

/// Runs a search in the current tenant. `vector` is the query embedding (with the model that
/// made it); without one, or in [`SearchMode::FullText`], only full text runs.
pub async fn search(
    tx: &mut TenantTx,
    params: &SearchParams,
    vector: Option<&QueryVector>,
) -> Result<Vec<Hit>, DbError> {
    let k = params.k.clamp(1, 200);
    let candidates = params.candidates.max(k).min(1000) as i64;
    let tenant = tx.tenant_id().0;
    let use_fts = params.mode != SearchMode::Vector;
    let use_vec = params.mode != SearchMode::FullText && vector.is_some();

    let (fts_query, fts_vector) = if use_fts {
        bm25_query(tx, &params.query).await?
    } else {
        (None, None)
    };
    let fts_on = fts_query.is_some();
    let fts_weight = if fts_on {
        params.fts_weight.max(0.0)
    } else {
        0.0
    };
    let vec_weight = if use_vec {
        params.vector_weight.max(0.0)
    } else {
        0.0
    };
    // Normalise by the retrievers asked for, so a chunk that full text did not find scores at
    // most the vector retriever's share even when the query had no known word.
    let norm_weight = if use_fts {
        params.fts_weight.max(0.0)
    } else {
        0.0
    } + vec_weight;
    if fts_weight + vec_weight == 0.0 || norm_weight == 0.0 {
        return Ok(Vec::new());
    }

    // Through `kb_fts_candidates`, so the GIN indexes can serve the match (see the migration
    // `tenant_indexes`: under row-level security they cannot).
    let fts_cte = if fts_on {
        "SELECT id, score FROM kb_fts_candidates($2::tsquery, $3::sparsevec, $4::int, $7::text[])"
            .to_owned()
    } else {
        "SELECT NULL::uuid AS id, NULL::float8 AS score WHERE false".to_owned()
    };
    let dims = vector.map_or(0, |qv| qv.vector.len());
    // Plans are made for this tenant's parameters, not a generic plan that cannot know whether
    // the tenant owns ten chunks or ten million (nor use its partial indexes). The same round
    // trip asks whether the tenant has its own HNSW index for this vector size.
    let index_name = (dims as i64 <= crate::tenant_indexes::MAX_INDEXED_DIMS as i64)
        .then(|| crate::tenant_indexes::vector_index_name(tx.tenant_id(), dims as i32));
    let has_index: bool = sqlx::query_scalar(
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true) IS NOT NULL
            AND coalesce((SELECT i.indisvalid AND i.indisready FROM pg_index i
                           WHERE i.indexrelid = to_regclass($1)), false)",
    )
    .bind(index_name.filter(|_| use_vec && params.strategy == VectorStrategy::Auto))
    .fetch_one(tx.conn())
    .await?;
    let strategy = match params.strategy {
        VectorStrategy::Auto if use_vec && has_index => VectorStrategy::Ann,
        VectorStrategy::Auto => VectorStrategy::Exact,
        s => s,
    };
    let vec_cte = if use_vec {
        let indexed = strategy != VectorStrategy::Exact
            && dims as i64 <= crate::tenant_indexes::MAX_INDEXED_DIMS as i64;
        // The cast to a fixed dimension and the `dims` predicate let the planner use the
        // tenant's partial HNSW index for that size; the tag filter stays inside the query. The
        // distance is computed once per row and ordered by.
        let (expr, extra) = if indexed {
            (
                format!("(e.embedding::vector({dims}))"),
                format!(" AND e.dims = {dims}"),
            )
        } else {
            ("e.embedding".to_owned(), String::new())
        };
        let tag_filter_vec = if params.tags.is_empty() {
            ""
        } else {
            " AND EXISTS (SELECT 1 FROM chunks c JOIN documents td ON td.id = c.document_id
                           WHERE c.id = e.chunk_id AND td.tags @> $7)"
        };
        format!(
            "SELECT id, 1 - distance AS score FROM (
               SELECT e.chunk_id AS id, {expr} <=> $6::vector AS distance
                 FROM chunk_embeddings e
                WHERE e.tenant_id = $1 AND e.model = $5{extra}{tag_filter_vec}
                ORDER BY 2
                LIMIT $4) ann"
        )
    } else {
        "SELECT NULL::uuid AS id, NULL::float8 AS score WHERE false".to_owned()
    };
    let fused_expr = match params.fusion {
        Fusion::Rrf => format!(
            "(coalesce($8 / ({RRF_K} + fr.rank), 0) + coalesce($9 / ({RRF_K} + vr.rank), 0)) / ($12 / ({RRF_K} + 1))"
        ),
        Fusion::Convex => {
            "(coalesce($8 * fr.norm, 0) + coalesce($9 * vr.norm, 0)) / $12".to_owned()
        }
    };
    let sql = format!(
        "WITH fts AS MATERIALIZED ({fts_cte}),
              vec AS MATERIALIZED ({vec_cte}),
              fr AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank,
                            score / nullif(max(score) OVER (), 0) AS norm
                       FROM fts),
              vr AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank,
                            greatest(score, 0) / nullif(max(greatest(score, 0)) OVER (), 0) AS norm
                       FROM vec),
              fused AS MATERIALIZED (
                SELECT coalesce(fr.id, vr.id) AS id,
                       fr.rank AS f_rank, fr.score AS f_score, vr.rank AS v_rank, vr.score AS v_score,
                       {fused_expr} AS fused
                  FROM fr FULL JOIN vr ON fr.id = vr.id)
         SELECT h.id, h.document_id, d.title, d.source, h.heading_path, h.position, h.char_start,
                h.char_end, h.language, h.text, f.fused, f.f_rank, f.f_score, f.v_rank, f.v_score
           FROM fused f
           -- One lookup by primary key per candidate (the fence keeps the planner from hashing
           -- all of a large tenant's chunks instead, which it did when it misjudged sizes).
           CROSS JOIN LATERAL (
             SELECT c.id, c.document_id, c.heading_path, c.position, c.char_start, c.char_end,
                    c.language, c.text
               FROM chunks c WHERE c.id = f.id AND c.tenant_id = $1 OFFSET 0) h
           CROSS JOIN LATERAL (
             SELECT d.title, d.source
               FROM documents d WHERE d.id = h.document_id AND d.tenant_id = $1 OFFSET 0) d
          WHERE f.fused >= $10
          ORDER BY f.fused DESC, h.document_id, h.position
          LIMIT $11"
    );
    if use_vec && strategy != VectorStrategy::Exact {
        // Let the HNSW scan go on until enough rows pass the model filter (a tenant being
        // re-embedded has vectors of two models in its index); candidates are re-ranked by the
        // fusion, so relaxed order is safe.
        // ef_search 200 for 50 candidates: recall@10 0.99 against exact search with the
        // tenant indexes' build parameters (see `tenant_indexes::HNSW_M`).
        let ef = (candidates as usize * 4).clamp(100, 1000);
        sqlx::query(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
                    set_config('hnsw.ef_search', $1, true),
                    set_config('enable_sort', 'off', true)",
        )
        .bind(ef.to_string())
        .execute(tx.conn())
        .await?;
    }
    let (model, vec_text) = match vector {
        Some(qv) => (qv.model.clone(), vector_literal(&qv.vector)),
        None => (String::new(), "[0]".to_owned()),
    };
    let rows = sqlx::query(&sql)
        .bind(tenant)
        .bind(fts_query.unwrap_or_default())
        .bind(fts_vector.unwrap_or_else(|| "{}/16777216".to_owned()))
        .bind(candidates)
        .bind(model)
        .bind(vec_text)
        .bind(&params.tags)
        .bind(fts_weight)
        .bind(vec_weight)
        .bind(params.min_score)
        .bind(k as i64)
        .bind(norm_weight)
        .fetch_all(tx.conn())
        .await?;
    if use_vec && strategy != VectorStrategy::Exact {
        sqlx::query("SELECT set_config('enable_sort', 'on', true)")
            .execute(tx.conn())
            .await?;
    }
    rows.into_iter()
        .map(|r| {
            let score = |rank: Option<i64>, score: Option<f64>| {
                rank.zip(score).map(|(rank, score)| RetrieverScore {
                    rank: rank as u32,
                    score,
                })
            };
            Ok(Hit {
                chunk_id: r.try_get(0)?,
                document_id: r.try_get(1)?,
                title: r.try_get(2)?,
                source: r.try_get(3)?,
                heading_path: r.try_get(4)?,
                position: r.try_get(5)?,
                char_start: r.try_get(6)?,
                char_end: r.try_get(7)?,
                language: r.try_get(8)?,
                text: r.try_get(9)?,
                score: r.try_get(10)?,
                full_text: score(r.try_get(11)?, r.try_get(12)?),
                vector: score(r.try_get(13)?, r.try_get(14)?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The tsquery (any of the lexemes) and the BM25 query vector (IDF per lexeme dimension) for
/// `query` in the current tenant; `None` when no lexeme of the query occurs in its chunks.
async fn bm25_query(
    tx: &mut TenantTx,
    query: &str,
) -> Result<(Option<String>, Option<String>), DbError> {
    let tenant = tx.tenant_id().0;
    // The query is parsed with every configuration the tenant's chunks use (the three common
    // ones before anything is indexed), each from text prepared the way that configuration's
    // chunks were; lexemes no chunk has drop out in the join with `kb_terms`.
    let rows = sqlx::query(
        "WITH cfgs AS (
            SELECT c FROM kb_stats s, unnest(s.configs) c WHERE s.tenant_id = $1
            UNION SELECT unnest($5::text[]) WHERE NOT EXISTS (
                SELECT 1 FROM kb_stats s WHERE s.tenant_id = $1 AND cardinality(s.configs) > 0)),
          lex AS (
            SELECT DISTINCT x AS lexeme
              FROM cfgs,
                   unnest(tsvector_to_array(to_tsvector(cfgs.c::regconfig,
                       CASE cfgs.c WHEN 'arabic' THEN $3 WHEN 'simple' THEN $4 ELSE $2 END))) x)
         SELECT t.lexeme, kb_lexeme_dim(t.lexeme) AS dim,
                ln(1.0 + (s.chunk_count - t.df + 0.5) / (t.df + 0.5))::float8 AS idf,
                t.df::float8 > $6 * s.chunk_count AND s.chunk_count >= $7 AS common
           FROM lex
           JOIN kb_terms t ON t.tenant_id = $1 AND t.lexeme = lex.lexeme AND t.df > 0
           JOIN kb_stats s ON s.tenant_id = $1
          ORDER BY dim",
    )
    .bind(tenant)
    .bind(query)
    .bind(prepare(query, "arabic"))
    .bind(prepare(query, "simple"))
    .bind(QUERY_CONFIGS.as_slice())
    .bind(COMMON_TERM_DF)
    .bind(COMMON_TERMS_MIN_CHUNKS)
    .fetch_all(tx.conn())
    .await?;
    let terms = rows
        .iter()
        .map(|r| {
            Ok(QueryTerm {
                lexeme: r.try_get(0)?,
                dim: r.try_get(1)?,
                idf: r.try_get(2)?,
                common: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(match bm25_parts(&terms) {
        Some((q, v)) => (Some(q), Some(v)),
        None => (None, None),
    })
}

/// A query lexeme known to the tenant's chunks.
#[derive(Clone, Debug, PartialEq)]
struct QueryTerm {
    lexeme: String,
    /// Its dimension in the BM25 sparse vectors (`kb_lexeme_dim`).
    dim: i32,
    idf: f64,
    /// Found in more than [`COMMON_TERM_DF`] of a large tenant's chunks.
    common: bool,
}

/// The tsquery that finds candidates and the IDF vector that scores them, from terms sorted by
/// dimension. Every term scores; only the uncommon ones find chunks, unless all are common.
fn bm25_parts(terms: &[QueryTerm]) -> Option<(String, String)> {
    if terms.is_empty() {
        return None;
    }
    let all_common = terms.iter().all(|t| t.common);
    let mut tsquery = String::new();
    let mut weights: Vec<(i32, f64)> = Vec::with_capacity(terms.len());
    for t in terms {
        if all_common || !t.common {
            if !tsquery.is_empty() {
                tsquery.push_str(" | ");
            }
            tsquery.push_str(&quote_lexeme(&t.lexeme));
        }
        match weights.last_mut() {
            // Two lexemes hashed to one dimension: their weights add up, as in the documents.
            Some((d, w)) if *d == t.dim => *w += t.idf,
            _ => weights.push((t.dim, t.idf)),
        }
    }
    let mut vector = String::from("{");
    for (i, (dim, w)) in weights.iter().enumerate() {
        if i > 0 {
            vector.push(',');
        }
        vector.push_str(&format!("{dim}:{}", w.max(1e-6)));
    }
    vector.push_str("}/16777216");
    Some((tsquery, vector))
}

/// A lexeme as a tsquery operand: single-quoted, with quotes doubled and backslashes escaped.
fn quote_lexeme(lexeme: &str) -> String {
    let mut out = String::with_capacity(lexeme.len() + 2);
    out.push('\'');
    for c in lexeme.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexemes_are_quoted_for_tsquery() {
        assert_eq!(quote_lexeme("panel"), "'panel'");
        assert_eq!(quote_lexeme("it's"), "'it''s'");
        assert_eq!(quote_lexeme("a\\b"), "'a\\\\b'");
        assert_eq!(quote_lexeme("الألواح"), "'الألواح'");
    }

    fn term(lexeme: &str, dim: i32, idf: f64, common: bool) -> QueryTerm {
        QueryTerm {
            lexeme: lexeme.into(),
            dim,
            idf,
            common,
        }
    }

    #[test]
    fn common_terms_score_but_do_not_find_chunks() {
        let (q, v) = bm25_parts(&[
            term("the", 3, 0.05, true),
            term("quokka", 7, 6.5, false),
            term("panel", 9, 2.0, false),
        ])
        .unwrap();
        assert_eq!(q, "'quokka' | 'panel'");
        assert_eq!(v, "{3:0.05,7:6.5,9:2}/16777216");
    }

    #[test]
    fn a_query_of_common_terms_only_matches_on_all_of_them() {
        let (q, _) =
            bm25_parts(&[term("solar", 1, 0.3, true), term("panel", 2, 0.2, true)]).unwrap();
        assert_eq!(q, "'solar' | 'panel'");
        assert_eq!(bm25_parts(&[]), None);
    }

    #[test]
    fn lexemes_sharing_a_dimension_add_their_weights() {
        let (q, v) = bm25_parts(&[term("a1", 5, 1.5, false), term("b2", 5, 2.0, false)]).unwrap();
        assert_eq!(q, "'a1' | 'b2'");
        assert_eq!(v, "{5:3.5}/16777216");
    }
}
