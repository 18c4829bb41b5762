//! Turning a stored document into searchable chunks, atomically.
//!
//! Parsing, chunking and embedding happen outside any transaction; the result replaces the
//! document's chunks in one transaction that also keeps the full-text statistics (`kb_terms`,
//! `kb_stats`) exact. Writers of one tenant's chunks take a transaction-scoped advisory lock so
//! their statistics updates never interleave; readers never wait, and see either the old chunks
//! or the new ones.

use sqlx::Row;
use switchboard_core::{DbError, TenantTx};
use switchboard_prompts::detect_language;
use uuid::Uuid;

use crate::chunk::Chunk;
use crate::{fts_config_for, vector_literal};

/// Serialises writers of the current tenant's chunks until the transaction ends.
pub async fn lock_tenant(tx: &mut TenantTx) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('kb:' || $1::text, 0))")
        .bind(tx.tenant_id().0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Removes a document's chunks (and, by cascade, their vectors) and their statistics.
pub async fn remove_chunks(tx: &mut TenantTx, document: Uuid) -> Result<u64, DbError> {
    let tenant = tx.tenant_id().0;
    let removed: i64 = sqlx::query_scalar(
        "WITH gone AS (
            DELETE FROM chunks WHERE tenant_id = $1 AND document_id = $2
            RETURNING tsv, token_count),
          t AS (SELECT x.lexeme, count(*) AS n
                  FROM gone, unnest(gone.tsv) AS x(lexeme, positions, weights)
                 GROUP BY x.lexeme),
          u AS (UPDATE kb_terms k SET df = k.df - t.n FROM t
                 WHERE k.tenant_id = $1 AND k.lexeme = t.lexeme RETURNING 1),
          s AS (UPDATE kb_stats SET chunk_count = chunk_count - (SELECT count(*) FROM gone),
                       token_count = token_count - (SELECT coalesce(sum(token_count), 0) FROM gone)
                 WHERE tenant_id = $1 RETURNING 1)
         SELECT (SELECT count(*) FROM gone) + 0 * ((SELECT count(*) FROM u) + (SELECT count(*) FROM s))",
    )
    .bind(tenant)
    .bind(document)
    .fetch_one(tx.conn())
    .await?;
    if removed > 0 {
        sqlx::query("DELETE FROM kb_terms WHERE tenant_id = $1 AND df <= 0")
            .bind(tenant)
            .execute(tx.conn())
            .await?;
    }
    Ok(removed as u64)
}

/// A chunk ready to store: its text, where it came from, and its vector.
pub struct PreparedChunk<'a> {
    pub chunk: &'a Chunk,
    pub language: String,
    pub fts_config: &'static str,
    pub search_text: String,
    pub embedding: Option<&'a [f32]>,
}

/// The language and text-search configuration of a chunk: the document's language when an
/// admin set one, otherwise detected from the chunk's own text.
pub fn chunk_language(document_language: &str, text: &str) -> (String, &'static str) {
    if document_language != "auto" {
        if let Some(cfg) = fts_config_for(document_language) {
            return (document_language.to_owned(), cfg);
        }
    }
    let lang = detect_language(text).code().to_owned();
    let cfg = fts_config_for(&lang).unwrap_or("simple");
    (lang, cfg)
}

/// What full text indexes for a chunk: title, headings and text, prepared for the chunk's
/// text-search configuration ([`crate::fts::prepare`]).
pub fn search_text(title: &str, chunk: &Chunk, fts_config: &str) -> String {
    let mut s = String::with_capacity(title.len() + chunk.text.len() + 64);
    s.push_str(title);
    for h in &chunk.heading_path {
        s.push('\n');
        s.push_str(h);
    }
    s.push('\n');
    s.push_str(&chunk.text);
    crate::fts::prepare(&s, fts_config)
}

/// What the embedder sees for a chunk: the same context as full text, unnormalised.
pub fn embedding_text(title: &str, chunk: &Chunk) -> String {
    let mut s = String::with_capacity(title.len() + chunk.text.len() + 64);
    s.push_str(title);
    if !chunk.heading_path.is_empty() {
        s.push('\n');
        s.push_str(&chunk.heading_path.join(" › "));
    }
    s.push('\n');
    s.push_str(&chunk.text);
    s
}

/// Replaces the document's chunks with `chunks` (vectors made by `model`), keeping the full-text
/// statistics exact. The caller holds [`lock_tenant`] and commits.
pub async fn replace_chunks(
    tx: &mut TenantTx,
    document: Uuid,
    chunks: &[PreparedChunk<'_>],
    model: Option<&str>,
) -> Result<(), DbError> {
    let tenant = tx.tenant_id().0;
    remove_chunks(tx, document).await?;
    if chunks.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = chunks.iter().map(|_| Uuid::now_v7()).collect();
    let positions: Vec<i32> = chunks.iter().map(|c| c.chunk.position as i32).collect();
    let texts: Vec<&str> = chunks.iter().map(|c| c.chunk.text.as_str()).collect();
    // Heading paths travel as one JSON array per chunk (SQL arrays cannot be ragged).
    let headings: Vec<String> = chunks
        .iter()
        .map(|c| serde_json::to_string(&c.chunk.heading_path).unwrap_or_else(|_| "[]".into()))
        .collect();
    let starts: Vec<i32> = chunks.iter().map(|c| c.chunk.char_start as i32).collect();
    let ends: Vec<i32> = chunks.iter().map(|c| c.chunk.char_end as i32).collect();
    let languages: Vec<&str> = chunks.iter().map(|c| c.language.as_str()).collect();
    let configs: Vec<&str> = chunks.iter().map(|c| c.fts_config).collect();
    let search: Vec<&str> = chunks.iter().map(|c| c.search_text.as_str()).collect();
    sqlx::query(
        "INSERT INTO chunks (id, tenant_id, document_id, position, text, heading_path, char_start,
                             char_end, language, fts_config, search_text, bm25)
         SELECT i.id, $1, $2, i.position, i.text,
                ARRAY(SELECT jsonb_array_elements_text(i.headings::jsonb)),
                i.char_start, i.char_end, i.language, i.cfg::regconfig, i.search_text,
                '{}/16777216'::sparsevec
           FROM unnest($3::uuid[], $4::int[], $5::text[], $6::text[], $7::int[], $8::int[],
                       $9::text[], $10::text[], $11::text[])
                AS i(id, position, text, headings, char_start, char_end, language, cfg, search_text)",
    )
    .bind(tenant)
    .bind(document)
    .bind(&ids)
    .bind(&positions)
    .bind(&texts)
    .bind(&headings)
    .bind(&starts)
    .bind(&ends)
    .bind(&languages)
    .bind(&configs)
    .bind(&search)
    .execute(tx.conn())
    .await?;
    // Lengths first, then the tenant's totals, then BM25 weights against the new average, then
    // document frequencies (in lexeme order, so concurrent upserts cannot deadlock).
    sqlx::query(
        "WITH upd AS (
            UPDATE chunks SET token_count = kb_token_count(tsv)
             WHERE tenant_id = $1 AND document_id = $2
            RETURNING token_count)
         INSERT INTO kb_stats (tenant_id, chunk_count, token_count, configs)
         SELECT $1, count(*), coalesce(sum(token_count), 0), $3 FROM upd
         ON CONFLICT (tenant_id) DO UPDATE
            SET chunk_count = kb_stats.chunk_count + excluded.chunk_count,
                token_count = kb_stats.token_count + excluded.token_count,
                configs = ARRAY(SELECT DISTINCT c FROM unnest(kb_stats.configs || excluded.configs) c ORDER BY c)",
    )
    .bind(tenant)
    .bind(document)
    .bind({
        let mut c: Vec<&str> = configs.clone();
        c.sort_unstable();
        c.dedup();
        c
    })
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE chunks c
            SET bm25 = kb_bm25_vector(c.tsv, s.token_count::float8 / greatest(s.chunk_count, 1))
           FROM kb_stats s
          WHERE s.tenant_id = $1 AND c.tenant_id = $1 AND c.document_id = $2",
    )
    .bind(tenant)
    .bind(document)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "INSERT INTO kb_terms (tenant_id, lexeme, df)
         SELECT $1, x.lexeme, count(*)
           FROM chunks c, unnest(c.tsv) AS x(lexeme, positions, weights)
          WHERE c.tenant_id = $1 AND c.document_id = $2
          GROUP BY x.lexeme
          ORDER BY x.lexeme
         ON CONFLICT (tenant_id, lexeme) DO UPDATE SET df = kb_terms.df + excluded.df",
    )
    .bind(tenant)
    .bind(document)
    .execute(tx.conn())
    .await?;
    if let Some(model) = model {
        let mut with_vec: Vec<Uuid> = Vec::new();
        let mut vectors: Vec<String> = Vec::new();
        for (id, c) in ids.iter().zip(chunks) {
            if let Some(v) = c.embedding {
                with_vec.push(*id);
                vectors.push(vector_literal(v));
            }
        }
        store_vectors(tx, model, &with_vec, &vectors).await?;
    }
    Ok(())
}

/// Stores vectors of `model` for chunks (replacing any of the same model).
pub async fn store_vectors(
    tx: &mut TenantTx,
    model: &str,
    chunk_ids: &[Uuid],
    vectors: &[String],
) -> Result<(), DbError> {
    if chunk_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, embedding)
         SELECT $1, v.id, $2, v.embedding::vector
           FROM unnest($3::uuid[], $4::text[]) AS v(id, embedding)
           JOIN chunks c ON c.id = v.id AND c.tenant_id = $1
         ON CONFLICT (chunk_id, model) DO UPDATE SET embedding = excluded.embedding",
    )
    .bind(tx.tenant_id().0)
    .bind(model)
    .bind(chunk_ids)
    .bind(vectors)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Chunks of the current tenant that have no vector of `model` yet, oldest first.
pub async fn chunks_missing_vectors(
    tx: &mut TenantTx,
    model: &str,
    limit: i64,
) -> Result<Vec<(Uuid, String)>, DbError> {
    let rows = sqlx::query(
        "SELECT c.id, d.title, c.heading_path, c.text
           FROM chunks c JOIN documents d ON d.id = c.document_id AND d.tenant_id = $1
          WHERE c.tenant_id = $1
            AND NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.chunk_id = c.id AND e.model = $2)
          ORDER BY c.id
          LIMIT $3",
    )
    .bind(tx.tenant_id().0)
    .bind(model)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            let title: String = r.try_get(1)?;
            let heading_path: Vec<String> = r.try_get(2)?;
            let text: String = r.try_get(3)?;
            let chunk = Chunk {
                position: 0,
                text,
                heading_path,
                char_start: 0,
                char_end: 0,
            };
            Ok((r.try_get(0)?, embedding_text(&title, &chunk)))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
