-- A tenant's knowledge generation: a number that changes whenever anything a search can return
-- or depend on changes (chunks, their vectors, a document's title, source or tags, which model
-- search reads). Turns read it with the rest of their state and reuse a search result computed
-- for the same generation and the same question, so a repeated question costs no search; any
-- change of the knowledge makes earlier results unreachable at once, on every node.
CREATE TABLE kb_generations (
    -- No foreign key: rows are written by triggers on tables a tenant's deletion cascades
    -- through, after the tenant row is gone. A deleted tenant leaves one row of two numbers.
    tenant_id  uuid PRIMARY KEY,
    generation bigint NOT NULL DEFAULT 0
);

ALTER TABLE kb_generations ENABLE ROW LEVEL SECURITY;
ALTER TABLE kb_generations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kb_generations USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY platform_access ON kb_generations TO switchboard_platform USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON kb_generations TO switchboard_app, switchboard_platform;

-- Statement-level: one upsert per tenant touched by the statement, however many rows it wrote.
-- Each trigger names its transition table `changed`.
CREATE FUNCTION kb_bump_generation() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kb_generations AS g (tenant_id, generation)
    SELECT DISTINCT tenant_id, 1 FROM changed
    ON CONFLICT (tenant_id) DO UPDATE SET generation = g.generation + 1;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['chunks', 'chunk_embeddings', 'knowledge_settings']
    LOOP
        EXECUTE format('CREATE TRIGGER kb_generation_ins AFTER INSERT ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION kb_bump_generation()', t);
        EXECUTE format('CREATE TRIGGER kb_generation_upd AFTER UPDATE ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION kb_bump_generation()', t);
        EXECUTE format('CREATE TRIGGER kb_generation_del AFTER DELETE ON %I '
                       'REFERENCING OLD TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION kb_bump_generation()', t);
    END LOOP;
END
$$;

-- Documents change often while they are indexed (status, leases); only what a hit shows or a
-- search filters on counts. A deleted document's chunks go by cascade and count there.
CREATE FUNCTION kb_bump_generation_documents() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kb_generations AS g (tenant_id, generation)
    SELECT DISTINCT n.tenant_id, 1
      FROM changed n JOIN changed_before o ON o.id = n.id
     WHERE n.title IS DISTINCT FROM o.title
        OR n.source IS DISTINCT FROM o.source
        OR n.tags IS DISTINCT FROM o.tags
    ON CONFLICT (tenant_id) DO UPDATE SET generation = g.generation + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER kb_generation_upd AFTER UPDATE ON documents
    REFERENCING NEW TABLE AS changed OLD TABLE AS changed_before FOR EACH STATEMENT
    EXECUTE FUNCTION kb_bump_generation_documents();

-- The generation of the current tenant (0 before its knowledge first changes).
CREATE FUNCTION kb_generation() RETURNS bigint
    LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT generation FROM kb_generations WHERE tenant_id = app_tenant_id()), 0)
$$;
