-- The pipeline's backlog for `GET /metrics` (issue 16, metrics), across tenants, in one
-- statement: counts and one age, never content. Each part reads a partial index
-- (`outbox_due`, `inbound_events_pending`, `inbound_events_parked`, `effects_due`), so a scrape
-- costs in proportion to what is waiting, not to what was ever stored.
--
-- `outbox_oldest_seconds` is the age of the oldest reply not yet delivered (pending, deferred
-- by a rate limit, or being sent), 0 when there is none: the number to alert on when a
-- provider is down.
CREATE FUNCTION platform_pipeline_backlog()
    RETURNS TABLE (outbox_backlog bigint, outbox_oldest_seconds double precision,
                   events_pending bigint, events_parked bigint, effects_backlog bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$ SELECT o.n, o.oldest,
                 (SELECT count(*) FROM inbound_events WHERE status = 'pending'),
                 (SELECT count(*) FROM inbound_events WHERE status = 'parked'),
                 (SELECT count(*) FROM effects WHERE status IN ('pending', 'sending'))
            FROM (SELECT count(*) AS n,
                         COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::double precision
                             AS oldest
                    FROM outbox WHERE status IN ('pending', 'sending')) o $$;

REVOKE ALL ON FUNCTION platform_pipeline_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_pipeline_backlog() TO switchboard_app;
ALTER FUNCTION platform_pipeline_backlog() OWNER TO switchboard_platform;
