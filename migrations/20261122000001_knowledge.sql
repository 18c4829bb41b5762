-- Knowledge base: documents with their original content and status, structure-aware chunks,
-- BM25 full-text scoring inside PostgreSQL, embeddings from any model (several per chunk while a
-- tenant changes model), and per-tenant knowledge settings.
--
-- Full text: every chunk is indexed with the text-search configuration of its language
-- (`english`, `arabic`, or `simple`). Matching uses the GIN index on `tsv`; ranking is BM25:
-- `bm25` holds the document side of the score (saturated term frequencies, length-normalised)
-- as a pgvector `sparsevec` keyed by a hash of each lexeme, and the query side is the lexemes'
-- IDF from `kb_terms`/`kb_stats`, so the score is one sparse inner product per candidate.
--
-- Vectors: `chunk_embeddings` keeps one row per chunk and model. Search reads the tenant's
-- active model only. HNSW indexes exist for the common dimensions (partial expression indexes,
-- because a column holding vectors of several sizes cannot be indexed directly); other sizes are
-- searched exactly.

-- Keep the text of documents stored by the first version: it becomes their content and they are
-- indexed again. FORCE'd row-level security would hide the rows from a non-superuser owner, so
-- lift it for the copy.
ALTER TABLE documents NO FORCE ROW LEVEL SECURITY;
ALTER TABLE chunks NO FORCE ROW LEVEL SECURITY;

ALTER TABLE documents
    ADD COLUMN format         text NOT NULL DEFAULT 'text'
        CHECK (format IN ('text', 'markdown', 'html', 'pdf', 'csv', 'json')),
    ADD COLUMN content        bytea,
    ADD COLUMN content_type   text,
    ADD COLUMN size_bytes     integer NOT NULL DEFAULT 0,
    ADD COLUMN tags           text[] NOT NULL DEFAULT '{}',
    -- Bumped by every change of content; chunks are always of `indexed_version`.
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    ADD COLUMN indexed_version integer,
    ADD COLUMN status         text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'indexing', 'indexed', 'failed')),
    ADD COLUMN error          text,
    ADD COLUMN attempts       integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN locked_until   timestamptz,
    ADD COLUMN chunk_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN indexed_at     timestamptz;

ALTER TABLE documents ADD CONSTRAINT documents_title_length CHECK (length(title) BETWEEN 1 AND 500);
ALTER TABLE documents ALTER COLUMN language DROP DEFAULT;

UPDATE documents d
   SET content = convert_to(coalesce((SELECT string_agg(c.text, E'\n\n' ORDER BY c.position)
                                        FROM chunks c WHERE c.document_id = d.id), ''), 'UTF8'),
       size_bytes = coalesce((SELECT sum(octet_length(c.text)) FROM chunks c WHERE c.document_id = d.id), 0),
       source = coalesce(d.source, d.title || '.txt'),
       status = 'queued';

ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE INDEX documents_queue ON documents (next_attempt_at) WHERE status IN ('queued', 'indexing');
CREATE INDEX documents_tenant ON documents (tenant_id, created_at);

DROP TABLE chunks;

CREATE TABLE chunks (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id  uuid NOT NULL,
    position     integer NOT NULL,
    text         text NOT NULL,
    heading_path text[] NOT NULL DEFAULT '{}',
    -- Character offsets into the document's plain text, for citations.
    char_start   integer NOT NULL,
    char_end     integer NOT NULL,
    language     text NOT NULL,
    fts_config   regconfig NOT NULL,
    -- Title, headings and text, normalised (Arabic letter variants unified).
    search_text  text NOT NULL,
    tsv          tsvector GENERATED ALWAYS AS (to_tsvector(fts_config, search_text)) STORED,
    token_count  integer NOT NULL DEFAULT 0,
    bm25         sparsevec NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_document ON chunks (tenant_id, document_id, position);

-- Document frequency of each lexeme in a tenant's chunks, and the tenant's totals: BM25's IDF
-- and average length. Maintained in the transactions that add and remove chunks.
CREATE TABLE kb_terms (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    lexeme    text NOT NULL,
    df        integer NOT NULL,
    PRIMARY KEY (tenant_id, lexeme)
);

CREATE TABLE kb_stats (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chunk_count bigint NOT NULL DEFAULT 0,
    token_count bigint NOT NULL DEFAULT 0,
    -- Text-search configurations the tenant's chunks were indexed with (queries are parsed
    -- with each of them).
    configs     text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE chunk_embeddings (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    chunk_id  uuid NOT NULL,
    model     text NOT NULL,
    embedding vector NOT NULL,
    dims      integer GENERATED ALWAYS AS (vector_dims(embedding)) STORED,
    PRIMARY KEY (chunk_id, model),
    FOREIGN KEY (tenant_id, chunk_id) REFERENCES chunks (tenant_id, id) ON DELETE CASCADE
);
-- Keep vectors in the row (compression is tried, and they move out of line only beyond a page),
-- so scanning a tenant's vectors does not chase TOAST pointers.
ALTER TABLE chunk_embeddings ALTER COLUMN embedding SET STORAGE MAIN;
CREATE INDEX chunk_embeddings_tenant ON chunk_embeddings (tenant_id, model);
CREATE INDEX chunk_embeddings_hnsw_384 ON chunk_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384;
CREATE INDEX chunk_embeddings_hnsw_768 ON chunk_embeddings
    USING hnsw ((embedding::vector(768)) vector_cosine_ops) WHERE dims = 768;
CREATE INDEX chunk_embeddings_hnsw_1024 ON chunk_embeddings
    USING hnsw ((embedding::vector(1024)) vector_cosine_ops) WHERE dims = 1024;
CREATE INDEX chunk_embeddings_hnsw_1536 ON chunk_embeddings
    USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dims = 1536;

-- How a tenant's knowledge is embedded and searched. No row means the platform defaults.
CREATE TABLE knowledge_settings (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- 'local' (in-process model) or 'openai' (any OpenAI-compatible /embeddings endpoint).
    provider           text NOT NULL DEFAULT 'local' CHECK (provider IN ('local', 'openai')),
    model              text,
    base_url           text,
    -- AES-256-GCM with the tenant id as associated data; never returned by the API.
    api_key_enc        bytea,
    dimensions         integer CHECK (dimensions IS NULL OR dimensions BETWEEN 1 AND 16000),
    -- The model id whose vectors search reads, and the one being filled in when they differ.
    active_model       text,
    target_model       text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['chunks', 'kb_terms', 'kb_stats', 'chunk_embeddings', 'knowledge_settings']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant_id()) '
                       'WITH CHECK (tenant_id = app_tenant_id())', t);
        EXECUTE format('CREATE POLICY platform_access ON %I TO switchboard_platform USING (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO switchboard_app, switchboard_platform', t);
    END LOOP;
END
$$;

-- The sparse-vector dimension of a lexeme (1-based, 2^24 buckets).
CREATE FUNCTION kb_lexeme_dim(p_lexeme text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT (hashtext(p_lexeme) & 16777215) + 1 $$;

-- Number of tokens in a tsvector (each lexeme counted once per position).
CREATE FUNCTION kb_token_count(p_tsv tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer FROM unnest(p_tsv) $$;

-- The document side of BM25 (k1 = 1.2, b = 0.75) for a chunk, given the tenant's average chunk
-- length at indexing time.
CREATE FUNCTION kb_bm25_vector(p_tsv tsvector, p_avg_len double precision) RETURNS sparsevec
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$
        WITH t AS (SELECT lexeme, coalesce(array_length(positions, 1), 1)::double precision AS tf
                     FROM unnest(p_tsv)),
             n AS (SELECT coalesce(sum(tf), 0) AS len FROM t),
             w AS (SELECT kb_lexeme_dim(t.lexeme) AS dim,
                          sum(t.tf * 2.2 / (t.tf + 1.2 * (0.25 + 0.75 * n.len / greatest(p_avg_len, 1.0)))) AS v
                     FROM t, n GROUP BY 1)
        SELECT coalesce(('{' || string_agg(dim || ':' || v, ',' ORDER BY dim) || '}/16777216')::sparsevec,
                        '{}/16777216'::sparsevec)
          FROM w
    $$;

GRANT EXECUTE ON FUNCTION kb_lexeme_dim(text), kb_token_count(tsvector),
    kb_bm25_vector(tsvector, double precision) TO switchboard_app;

-- Claims the next document due for indexing, across tenants, for p_lease. Returns ids only.
CREATE FUNCTION platform_claim_document(p_lease interval)
    RETURNS TABLE (tenant_id uuid, document_id uuid, version integer, attempts integer)
    LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS $$
        WITH due AS (
            SELECT d.id
              FROM documents d
             WHERE (d.status = 'queued' AND d.next_attempt_at <= now())
                OR (d.status = 'indexing' AND d.locked_until < now())
             ORDER BY d.next_attempt_at, d.id
             LIMIT 1
             FOR UPDATE SKIP LOCKED
        )
        UPDATE documents d
           SET status = 'indexing', locked_until = now() + p_lease, attempts = d.attempts + 1
          FROM due
         WHERE d.id = due.id
        RETURNING d.tenant_id, d.id, d.version, d.attempts
    $$;

-- When the next queued document becomes due, so the indexer can sleep exactly that long.
CREATE FUNCTION platform_next_document_due()
    RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT min(CASE WHEN status = 'queued' THEN next_attempt_at ELSE locked_until END)
            FROM documents WHERE status IN ('queued', 'indexing') $$;

-- Tenants whose chunks are being re-embedded with a new model.
CREATE FUNCTION platform_reembedding_tenants()
    RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT tenant_id FROM knowledge_settings
           WHERE target_model IS NOT NULL AND target_model IS DISTINCT FROM active_model $$;

REVOKE ALL ON FUNCTION platform_claim_document(interval), platform_next_document_due(),
    platform_reembedding_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_claim_document(interval), platform_next_document_due(),
    platform_reembedding_tenants() TO switchboard_app;
ALTER FUNCTION platform_claim_document(interval) OWNER TO switchboard_platform;
ALTER FUNCTION platform_next_document_due() OWNER TO switchboard_platform;
ALTER FUNCTION platform_reembedding_tenants() OWNER TO switchboard_platform;

-- Deletes a tenant and, by cascade, everything it owns (scratch tenants of `kb eval`, and
-- tenants an operator removes).
CREATE FUNCTION platform_delete_tenant(p_id uuid)
    RETURNS boolean
    LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS $$ WITH d AS (DELETE FROM tenants WHERE id = p_id RETURNING 1) SELECT EXISTS (SELECT 1 FROM d) $$;
REVOKE ALL ON FUNCTION platform_delete_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_delete_tenant(uuid) TO switchboard_app;
ALTER FUNCTION platform_delete_tenant(uuid) OWNER TO switchboard_platform;
