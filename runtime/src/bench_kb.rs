//! `switchboard bench --suite knowledge`: retrieval latency and recall at scale.
//!
//! On a scratch embedded PostgreSQL it loads `--chunks` synthetic chunks spread over
//! `--tenants` tenants, one of which owns 1% of them, each chunk with text (a Zipf-like
//! vocabulary, so full text has frequent and rare words) and a 384-dimensional unit vector drawn
//! around one of many cluster centres (so nearest neighbours are meaningful, as with real
//! embeddings). Indexes are built after loading, as a bulk import would, and the large tenant
//! gets its own retrieval indexes as the server's index keeper would give it. Then it runs queries
//! through the normal search path ([`switchboard_knowledge::search`]) for the large tenant and for
//! small ones, and reports latency percentiles per strategy and recall@10 of the approximate
//! strategies against exact search. The result is printed as JSON.

use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use switchboard_core::TenantId;
use switchboard_knowledge::search::{QueryVector, VectorStrategy};
use switchboard_knowledge::{SearchMode, SearchParams};

use crate::app::open_database;
use crate::config::Settings;

const DIMS: usize = 384;
const MODEL: &str = "bench/synthetic-384";

#[derive(Clone, Debug)]
pub struct KbBenchOptions {
    pub chunks: usize,
    pub tenants: usize,
    pub queries: usize,
    /// Reuse the dataset of an earlier run in the same `DATABASE_URL` database.
    pub reuse: bool,
}

fn percentiles(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| {
        if v.is_empty() {
            0.0
        } else {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            (v[i] * 100.0).round() / 100.0
        }
    };
    json!({"p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": p(1.0)})
}

pub async fn run(mut settings: Settings, opts: KbBenchOptions) -> anyhow::Result<Value> {
    anyhow::ensure!(opts.tenants >= 2, "--tenants must be at least 2");
    anyhow::ensure!(
        opts.chunks >= opts.tenants * 10,
        "--chunks must be at least 10 per tenant"
    );
    let scratch = std::env::temp_dir().join(format!(
        "switchboard-bench-kb-{}",
        uuid::Uuid::new_v4().simple()
    ));
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&scratch)?;
        settings.data_dir = scratch.clone();
        settings.pg.durable = false;
        settings.pg.shared_buffers = "4GB".into();
    }
    let database = open_database(&settings).await?;
    let owner_url = secrecy::ExposeSecret::expose_secret(&database.owner_url).to_owned();
    let db = database.db.clone();
    let result = async {
        let started = Instant::now();
        let existing = if opts.reuse {
            anyhow::ensure!(
                settings.database_url.is_some(),
                "--reuse needs DATABASE_URL (a scratch database starts empty)"
            );
            existing_dataset(&owner_url, &opts).await?
        } else {
            None
        };
        let (big, small) = match existing {
            Some(tenants) => tenants,
            None => load(&owner_url, &opts).await?,
        };
        let indexes = crate::knowledge::keep_indexes_once(
            &db,
            &database.owner_url,
            settings.knowledge.tenant_index_min_chunks,
        )
        .await?;
        let load_secs = started.elapsed().as_secs_f64();
        let queries = make_queries(&owner_url, big, &small, opts.queries).await?;
        // Warm the caches, as on a server that has been answering for a while.
        for (tenant, text, vector) in queries.0.iter().chain(&queries.1) {
            let qv = QueryVector {
                model: MODEL.into(),
                vector: vector.clone(),
            };
            let mut tx = db.tenant(*tenant).await?;
            switchboard_knowledge::search(&mut tx, &SearchParams::new(text.clone(), 10), Some(&qv))
                .await?;
            tx.commit().await?;
        }
        let mut report = serde_json::Map::new();
        for (class, qs) in [("large_tenant", &queries.0), ("small_tenants", &queries.1)] {
            let mut exact_lat = Vec::new();
            let mut auto_lat = Vec::new();
            let mut ann_lat = Vec::new();
            let mut hybrid_lat = Vec::new();
            let mut fts_lat = Vec::new();
            let (mut auto_recall, mut ann_recall) = (Vec::new(), Vec::new());
            for (tenant, text, vector) in qs.iter() {
                let qv = QueryVector {
                    model: MODEL.into(),
                    vector: vector.clone(),
                };
                let run = |mode: SearchMode, strategy: VectorStrategy| {
                    let db = db.clone();
                    let qv = qv.clone();
                    let text = text.clone();
                    let tenant = *tenant;
                    async move {
                        let params = SearchParams {
                            mode,
                            strategy,
                            candidates: 50,
                            ..SearchParams::new(text, 10)
                        };
                        let t = Instant::now();
                        let mut tx = db.tenant(tenant).await?;
                        let hits =
                            switchboard_knowledge::search(&mut tx, &params, Some(&qv)).await?;
                        tx.commit().await?;
                        let ms = t.elapsed().as_secs_f64() * 1000.0;
                        anyhow::Ok((ms, hits.into_iter().map(|h| h.chunk_id).collect::<Vec<_>>()))
                    }
                };
                let (ms, exact) = run(SearchMode::Vector, VectorStrategy::Exact).await?;
                exact_lat.push(ms);
                let (ms, auto) = run(SearchMode::Vector, VectorStrategy::Auto).await?;
                auto_lat.push(ms);
                let (ms, ann) = run(SearchMode::Vector, VectorStrategy::Ann).await?;
                ann_lat.push(ms);
                let (ms, _) = run(SearchMode::Hybrid, VectorStrategy::Auto).await?;
                hybrid_lat.push(ms);
                let (ms, _) = run(SearchMode::FullText, VectorStrategy::Auto).await?;
                fts_lat.push(ms);
                let recall = |got: &[uuid::Uuid]| {
                    if exact.is_empty() {
                        1.0
                    } else {
                        got.iter().filter(|id| exact.contains(id)).count() as f64
                            / exact.len() as f64
                    }
                };
                auto_recall.push(recall(&auto));
                ann_recall.push(recall(&ann));
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            report.insert(
                class.into(),
                json!({
                    "queries": qs.len(),
                    "latency_ms": {
                        "vector_exact": percentiles(exact_lat),
                        "vector_auto": percentiles(auto_lat),
                        "vector_hnsw": percentiles(ann_lat),
                        "hybrid_auto": percentiles(hybrid_lat),
                        "full_text": percentiles(fts_lat),
                    },
                    "recall@10_vs_exact": {
                        "vector_auto": (mean(&auto_recall) * 1000.0).round() / 1000.0,
                        "vector_hnsw": (mean(&ann_recall) * 1000.0).round() / 1000.0,
                    },
                }),
            );
        }
        anyhow::Ok(json!({
            "chunks": opts.chunks,
            "tenants": opts.tenants,
            "large_tenant_chunks": opts.chunks / 100,
            "dims": DIMS,
            "load_seconds": (load_secs * 10.0).round() / 10.0,
            "tenant_index_min_chunks": settings.knowledge.tenant_index_min_chunks,
            "tenant_indexes_created": indexes.created,
            "results": Value::Object(report),
        }))
    }
    .await;
    database.db.close().await;
    if let Some(pg) = database.embedded {
        pg.stop().await?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Loads the synthetic knowledge base as the schema owner; returns the large tenant and the
/// small ones.
async fn load(owner_url: &str, opts: &KbBenchOptions) -> anyhow::Result<(TenantId, Vec<TenantId>)> {
    let mut conn = sqlx::PgConnection::connect(owner_url).await?;
    conn.execute("SET maintenance_work_mem = '4GB'; SET max_parallel_maintenance_workers = 1; SET synchronous_commit = off")
        .await?;
    let tenants: Vec<uuid::Uuid> = (0..opts.tenants).map(|_| uuid::Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO tenants (id, slug, name)
         SELECT id, 'bench-' || ord, 'Bench tenant ' || ord FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord)",
    )
    .bind(&tenants)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO documents (id, tenant_id, title, source, language, status, content, indexed_version)
         SELECT id, id, 'Bench document', 'bench.txt', 'en', 'indexed', NULL, 1 FROM unnest($1::uuid[]) AS t(id)",
    )
    .bind(&tenants)
    .execute(&mut conn)
    .await?;
    // Cluster centres, and a vocabulary of 20,000 words drawn log-uniformly (Zipf-like).
    conn.execute(
        "CREATE TEMP TABLE centres AS
           SELECT c, l2_normalize(ARRAY(SELECT random_normal() FROM generate_series(1, 384) WHERE c IS NOT NULL)::vector) AS v
             FROM generate_series(0, 1999) c",
    )
    .await?;
    // Drop the foreign key while loading; it is checked once at the end.
    conn.execute("ALTER TABLE chunks DROP CONSTRAINT IF EXISTS chunks_tenant_id_document_id_fkey")
        .await?;
    let big = opts.chunks / 100;
    let per_small = (opts.chunks - big) / (opts.tenants - 1);
    // Tenant i owns chunk numbers [start_i, start_i + n_i); tenant 0 is the large one.
    let batch = 50_000usize;
    let total = big + per_small * (opts.tenants - 1);
    let mut done = 0usize;
    while done < total {
        let n = batch.min(total - done);
        sqlx::query(
            "WITH nums AS (SELECT g FROM generate_series($1::bigint, $2::bigint - 1) g),
                  owned AS (
                    SELECT g, CASE WHEN g < $3 THEN 1 ELSE 2 + (g - $3) / $4 END AS ord FROM nums)
             INSERT INTO chunks (id, tenant_id, document_id, position, text, char_start, char_end,
                                 language, fts_config, search_text, bm25)
             SELECT gen_random_uuid(), t.id, t.id, o.g, w.text, 0, length(w.text), 'en', 'simple', w.text,
                    '{}/16777216'::sparsevec
               FROM owned o
               JOIN (SELECT id, ord FROM unnest($5::uuid[]) WITH ORDINALITY AS x(id, ord)) t ON t.ord = o.ord
               CROSS JOIN LATERAL (
                 SELECT string_agg('w' || floor(exp(random() * ln(20000)))::int, ' ') AS text
                   FROM generate_series(1, 40) WHERE o.g IS NOT NULL) w",
        )
        .bind(done as i64)
        .bind((done + n) as i64)
        .bind(big as i64)
        .bind(per_small as i64)
        .bind(&tenants)
        .execute(&mut conn)
        .await
        .context("loading chunks")?;
        done += n;
        tracing::info!(done, total, "loaded chunks");
    }
    conn.execute("UPDATE chunks SET token_count = kb_token_count(tsv)")
        .await?;
    conn.execute(
        "INSERT INTO kb_stats (tenant_id, chunk_count, token_count)
         SELECT tenant_id, count(*), sum(token_count) FROM chunks GROUP BY tenant_id",
    )
    .await?;
    conn.execute(
        "UPDATE chunks c SET bm25 = kb_bm25_vector(c.tsv, s.token_count::float8 / s.chunk_count)
           FROM kb_stats s WHERE s.tenant_id = c.tenant_id",
    )
    .await?;
    conn.execute(
        "INSERT INTO kb_terms (tenant_id, lexeme, df)
         SELECT c.tenant_id, x.lexeme, count(*) FROM chunks c, unnest(c.tsv) AS x(lexeme, positions, weights)
          GROUP BY 1, 2",
    )
    .await?;
    // Each vector: a random centre plus Gaussian noise, normalised.
    conn.execute(
        "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, embedding)
         SELECT c.tenant_id, c.id, 'bench/synthetic-384',
                l2_normalize((SELECT (ARRAY(SELECT x + 0.08 * random_normal() FROM unnest(ce.v::real[]) x))::vector))
           FROM chunks c
           JOIN centres ce ON ce.c = (abs(hashtext(c.id::text)) % 2000)",
    )
    .await
    .context("loading vectors")?;
    sqlx::query(
        "INSERT INTO knowledge_settings (tenant_id, active_model) SELECT id, $2 FROM unnest($1::uuid[]) AS t(id)",
    )
    .bind(&tenants)
    .bind(MODEL)
    .execute(&mut conn)
    .await?;
    conn.execute(
        "ALTER TABLE chunks ADD FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE",
    )
    .await
    .context("checking the foreign key")?;
    for table in [
        "chunks",
        "chunk_embeddings",
        "kb_terms",
        "kb_stats",
        "documents",
    ] {
        conn.execute(format!("VACUUM ANALYZE {table}").as_str())
            .await?;
    }
    conn.close().await?;
    let ids: Vec<TenantId> = tenants.into_iter().map(TenantId).collect();
    Ok((ids[0], ids[1..].to_vec()))
}

/// The tenants of a dataset an earlier run loaded with the same sizes, if there is one.
async fn existing_dataset(
    owner_url: &str,
    opts: &KbBenchOptions,
) -> anyhow::Result<Option<(TenantId, Vec<TenantId>)>> {
    let mut conn = sqlx::PgConnection::connect(owner_url).await?;
    let rows: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT t.id, (SELECT count(*) FROM chunks c WHERE c.tenant_id = t.id)
           FROM tenants t WHERE t.slug LIKE 'bench-%'
          ORDER BY substr(t.slug, 7)::int",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    let total: i64 = rows.iter().map(|(_, n)| n).sum();
    if rows.len() != opts.tenants
        || rows.first().map(|(_, n)| *n) != Some((opts.chunks / 100) as i64)
        || (total - opts.chunks as i64).abs() > opts.tenants as i64
    {
        if !rows.is_empty() {
            anyhow::bail!(
                "the database holds a different benchmark dataset ({} tenants, {total} chunks); use a fresh database",
                rows.len()
            );
        }
        return Ok(None);
    }
    let ids: Vec<TenantId> = rows.into_iter().map(|(id, _)| TenantId(id)).collect();
    Ok(Some((ids[0], ids[1..].to_vec())))
}

type Query = (TenantId, String, Vec<f32>);

/// Queries: half for the large tenant, half for random small ones; each a few words and a
/// vector near one of the tenant's own chunks.
async fn make_queries(
    owner_url: &str,
    big: TenantId,
    small: &[TenantId],
    n: usize,
) -> anyhow::Result<(Vec<Query>, Vec<Query>)> {
    let mut conn = sqlx::PgConnection::connect(owner_url).await?;
    let mut out = (Vec::new(), Vec::new());
    for i in 0..n {
        let tenant = if i % 2 == 0 {
            big
        } else {
            small[(i * 7919) % small.len()]
        };
        let (text, vector): (String, String) = sqlx::query_as(
            "SELECT (SELECT string_agg(w, ' ') FROM (SELECT w FROM unnest(string_to_array(c.text, ' ')) w ORDER BY random() LIMIT 4) s),
                    l2_normalize((SELECT (ARRAY(SELECT x + 0.05 * random_normal() FROM unnest(e.embedding::real[]) x))::vector))::text
               FROM chunks c JOIN chunk_embeddings e ON e.chunk_id = c.id
              WHERE c.tenant_id = $1
              OFFSET floor(random() * (SELECT least(count(*), 1000) FROM chunks WHERE tenant_id = $1)) LIMIT 1",
        )
        .bind(tenant.0)
        .fetch_one(&mut conn)
        .await?;
        let vector: Vec<f32> = serde_json::from_str(&vector)?;
        if i % 2 == 0 {
            out.0.push((tenant, text, vector));
        } else {
            out.1.push((tenant, text, vector));
        }
    }
    conn.close().await?;
    Ok(out)
}
