-- Retrieval indexes per large tenant instead of across all tenants.
--
-- Measured with `switchboard bench --suite knowledge` at 1M chunks over 1,000 tenants: an HNSW
-- index over every tenant's vectors, filtered to one tenant, found only 28-65% of that tenant's
-- true top 10 (the graph walk is spent on other tenants' vectors), and every insert paid for a
-- graph of a million nodes. A partial HNSW index per large tenant (`WHERE tenant_id = … AND dims
-- = …`) finds them all in a few milliseconds; small tenants are scanned exactly, which is as
-- fast. The runtime creates and drops these indexes (`knowledge::tenant_indexes`), because index
-- DDL needs the table owner; this migration only removes the shared HNSW indexes.
DROP INDEX IF EXISTS chunk_embeddings_hnsw_384;
DROP INDEX IF EXISTS chunk_embeddings_hnsw_768;
DROP INDEX IF EXISTS chunk_embeddings_hnsw_1024;
DROP INDEX IF EXISTS chunk_embeddings_hnsw_1536;
-- The shared GIN index goes too: under row-level security it could not serve a search at all
-- (see kb_fts_candidates below), and through that function its posting lists span every tenant,
-- so a frequent word costs a bitmap of the whole table. Small tenants filter their own rows;
-- large ones have a partial GIN index each.
DROP INDEX IF EXISTS chunks_tsv;

-- Tenants with at least p_min_chunks chunks, and the vector dimensions their embeddings have:
-- what the index keeper should have an index for. Ids and counts only.
CREATE FUNCTION platform_kb_large_tenants(p_min_chunks bigint)
    RETURNS TABLE (tenant_id uuid, chunk_count bigint, dims integer[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
        SELECT s.tenant_id, s.chunk_count,
               ARRAY(SELECT DISTINCT e.dims FROM chunk_embeddings e
                      WHERE e.tenant_id = s.tenant_id AND e.dims IS NOT NULL ORDER BY 1)
          FROM kb_stats s
         WHERE s.chunk_count >= p_min_chunks
    $$;
REVOKE ALL ON FUNCTION platform_kb_large_tenants(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_kb_large_tenants(bigint) TO switchboard_app;
ALTER FUNCTION platform_kb_large_tenants(bigint) OWNER TO switchboard_platform;

-- Full-text candidates of the current tenant: chunks matching p_query, best BM25 first.
--
-- Why a function: under row-level security PostgreSQL evaluates a query's own conditions only
-- after the policy's, unless their operators are LEAKPROOF, and the text-search match operator
-- `@@` is not. So the GIN index could never serve `tsv @@ query` for the application role, and
-- every search read all of the tenant's chunks. This function runs as `switchboard_platform`
-- (whose policy admits every row) and takes the tenant from the transaction's `app.tenant_id`
-- — the very setting the policies use — never from an argument, so it cannot reach another
-- tenant. The statement is planned with the tenant id as a literal, so a partial GIN index for
-- a large tenant (`knowledge::tenant_indexes`) is used when it exists.
CREATE FUNCTION kb_fts_candidates(p_query tsquery, p_weights sparsevec, p_limit integer,
                                  p_tags text[])
    RETURNS TABLE (id uuid, score float8)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public ROWS 50
    AS $$
    DECLARE
        v_tenant uuid := app_tenant_id();
    BEGIN
        IF v_tenant IS NULL THEN
            RAISE EXCEPTION 'kb_fts_candidates needs app.tenant_id' USING ERRCODE = '42501';
        END IF;
        RETURN QUERY EXECUTE format(
            'SELECT c.id, -(c.bm25 <#> $1) AS score
               FROM chunks c
              WHERE c.tenant_id = %L AND c.tsv @@ $2 %s
              ORDER BY c.bm25 <#> $1, c.id
              LIMIT $3',
            v_tenant,
            CASE WHEN cardinality(p_tags) > 0 THEN
                'AND EXISTS (SELECT 1 FROM documents d
                              WHERE d.id = c.document_id AND d.tenant_id = c.tenant_id
                                AND d.tags @> $4)'
            ELSE '' END)
        USING p_weights, p_query, p_limit, p_tags;
    END
    $$;
REVOKE ALL ON FUNCTION kb_fts_candidates(tsquery, sparsevec, integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kb_fts_candidates(tsquery, sparsevec, integer, text[]) TO switchboard_app;
ALTER FUNCTION kb_fts_candidates(tsquery, sparsevec, integer, text[]) OWNER TO switchboard_platform;
