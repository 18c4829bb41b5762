//! Retrieval indexes of one large tenant: a partial HNSW index over its vectors (one per vector
//! dimension it uses) and a partial GIN index over its chunks' text.
//!
//! Measured with `switchboard bench --suite knowledge` (README): an index shared by all tenants
//! serves one tenant badly — the filtered HNSW walk spends itself on other tenants' vectors and
//! found only 28–65% of the true top 10 — while scanning a tenant's own rows grows with its size.
//! So a tenant with at least `min_chunks` chunks gets indexes of its own, created with `CREATE
//! INDEX CONCURRENTLY` (no writer waits) and dropped again when the tenant shrinks below half
//! that size or is deleted. Smaller tenants are scanned exactly, which is as fast and exact.
//!
//! Index DDL needs the table owner, so [`reconcile`] takes an owner connection; which tenants
//! qualify comes from the `platform_kb_large_tenants` function through the application pool.
//! Search finds an index by its name ([`vector_index_name`]) in the catalog, so the catalog is
//! the only record of what exists.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::{Executor, PgConnection};
use switchboard_core::{Db, DbError, TenantId};

/// Tenants with at least this many chunks get indexes of their own, by default. Below it, exact
/// scans of the tenant's rows take a few milliseconds (README, scale figures).
pub const DEFAULT_MIN_CHUNKS: i64 = 5_000;
/// pgvector's HNSW index takes `vector` columns of up to 2,000 dimensions; larger vectors are
/// always scanned exactly.
pub const MAX_INDEXED_DIMS: i32 = 2_000;
/// HNSW graph degree and build-time beam. Measured on the knowledge benchmark's 10,000-vector
/// tenant, recall@10 against exact search at `ef_search` 100 / 200 / 400: pgvector's defaults
/// (16, 64) 0.85 / 0.93 / 0.985; (16, 200) 0.90 / 0.95 / 0.99; (32, 200) 0.945 / 0.99 / 1.0, so
/// search can use `ef_search` 200 (about 5 ms there instead of 10 at 400). Building takes about
/// twice as long as with the defaults (some 20 s for 10,000 vectors on 2 cores), in the
/// background.
pub const HNSW_M: u32 = 32;
pub const HNSW_EF_CONSTRUCTION: u32 = 200;
/// Name prefix of every per-tenant index.
const PREFIX: &str = "kb_t_";

/// The partial HNSW index over `tenant`'s vectors of `dims` dimensions.
pub fn vector_index_name(tenant: TenantId, dims: i32) -> String {
    format!("{PREFIX}{}_v{dims}", tenant.0.simple())
}

/// The partial GIN index over `tenant`'s chunk text.
pub fn text_index_name(tenant: TenantId) -> String {
    format!("{PREFIX}{}_fts", tenant.0.simple())
}

/// What one [`reconcile`] pass changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    /// Indexes whose creation failed (logged; the next pass tries again).
    pub failed: Vec<String>,
    /// False when another process holds the keeper's lock and this pass did nothing.
    pub ran: bool,
}

/// Creates the indexes large tenants lack and drops those of tenants that shrank below half of
/// `min_chunks` or no longer exist. `owner` must be a connection of the tables' owner and not in
/// a transaction. Only one process reconciles at a time (a session advisory lock); the others
/// return at once with `ran: false`.
pub async fn reconcile(
    db: &Db,
    owner: &mut PgConnection,
    min_chunks: i64,
) -> Result<Reconciled, DbError> {
    let min_chunks = min_chunks.max(1);
    let locked: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext('switchboard.kb_tenant_indexes'))",
    )
    .fetch_one(&mut *owner)
    .await?;
    if !locked {
        return Ok(Reconciled::default());
    }
    let result = reconcile_locked(db, owner, min_chunks).await;
    let unlock =
        sqlx::query("SELECT pg_advisory_unlock(hashtext('switchboard.kb_tenant_indexes'))")
            .execute(&mut *owner)
            .await;
    let out = result?;
    unlock?;
    Ok(out)
}

async fn reconcile_locked(
    db: &Db,
    owner: &mut PgConnection,
    min_chunks: i64,
) -> Result<Reconciled, DbError> {
    let mut out = Reconciled {
        ran: true,
        ..Reconciled::default()
    };
    // Tenants down to half the threshold keep what they have, so a tenant hovering around the
    // threshold does not rebuild its indexes again and again.
    let tenants: Vec<(uuid::Uuid, i64, Vec<i32>)> =
        sqlx::query_as("SELECT tenant_id, chunk_count, dims FROM platform_kb_large_tenants($1)")
            .bind((min_chunks / 2).max(1))
            .fetch_all(db.pool())
            .await?;
    let mut keep = BTreeSet::new();
    // (name, statement) of the indexes that should exist.
    let mut wanted = Vec::new();
    for (tenant, chunks, dims) in &tenants {
        let tenant = TenantId(*tenant);
        let mut names = vec![(text_index_name(tenant), text_index_sql(tenant))];
        for d in dims.iter().filter(|d| **d <= MAX_INDEXED_DIMS) {
            names.push((vector_index_name(tenant, *d), vector_index_sql(tenant, *d)));
        }
        for (name, sql) in names {
            keep.insert(name.clone());
            if *chunks >= min_chunks {
                wanted.push((name, sql));
            }
        }
    }
    let existing: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, i.indisvalid AND i.indisready
           FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
          WHERE c.relkind = 'i' AND c.relname LIKE 'kb\\_t\\_%'
            AND c.relnamespace = current_schema()::regnamespace",
    )
    .fetch_all(&mut *owner)
    .await?;
    let mut valid = BTreeSet::new();
    for (name, ok) in existing {
        // An invalid index is what an interrupted CREATE INDEX CONCURRENTLY leaves behind.
        if !ok || !keep.contains(&name) {
            (&mut *owner)
                .execute(
                    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quote_ident(&name)).as_str(),
                )
                .await?;
            tracing::info!(index = %name, "dropped a per-tenant retrieval index");
            out.dropped.push(name);
        } else {
            valid.insert(name);
        }
    }
    if wanted.iter().any(|(name, _)| !valid.contains(name)) {
        (&mut *owner)
            .execute("SET maintenance_work_mem = '256MB'")
            .await?;
    }
    for (name, sql) in wanted {
        if valid.contains(&name) {
            continue;
        }
        let started = std::time::Instant::now();
        match (&mut *owner).execute(sql.as_str()).await {
            Ok(_) => {
                tracing::info!(index = %name, seconds = started.elapsed().as_secs_f64(),
                    "created a per-tenant retrieval index");
                out.created.push(name);
            }
            Err(e) => {
                tracing::warn!(index = %name, error = %e, "could not create a per-tenant index");
                let _ = (&mut *owner)
                    .execute(
                        format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quote_ident(&name))
                            .as_str(),
                    )
                    .await;
                out.failed.push(name);
            }
        }
    }
    Ok(out)
}

fn vector_index_sql(tenant: TenantId, dims: i32) -> String {
    format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON chunk_embeddings
             USING hnsw ((embedding::vector({dims})) vector_cosine_ops)
             WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})
             WHERE tenant_id = '{}' AND dims = {dims}",
        quote_ident(&vector_index_name(tenant, dims)),
        tenant.0
    )
}

fn text_index_sql(tenant: TenantId) -> String {
    format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON chunks USING gin (tsv)
             WHERE tenant_id = '{}'",
        quote_ident(&text_index_name(tenant)),
        tenant.0
    )
}

/// Index names are built from a UUID and digits only; quoting keeps that an invariant.
fn quote_ident(name: &str) -> String {
    debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_identifiers_and_are_distinct_per_dimension() {
        let t = TenantId(uuid::Uuid::now_v7());
        let v = vector_index_name(t, 1536);
        assert!(v.len() <= 63, "{v}");
        assert!(v.starts_with("kb_t_") && v.ends_with("_v1536"));
        assert_ne!(vector_index_name(t, 384), vector_index_name(t, 768));
        assert_ne!(text_index_name(t), vector_index_name(t, 384));
        let sql = vector_index_sql(t, 384);
        assert!(sql.contains(&format!("tenant_id = '{}'", t.0)));
        assert!(sql.contains("vector(384)") && sql.contains("dims = 384"));
    }
}
