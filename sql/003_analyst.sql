-- The analysts' side: full-text search, indexes for the usual filters, documented views, and
-- the two database roles (newsflow_analyst reads, newsflow_loader writes). See docs/analysts.md.
--
-- Dates: an article is dated by its published time, or by when it was fetched if the page and
-- feed gave none (dated_at); "day" is that moment's calendar date in UTC.

-- Full-text search ----------------------------------------------------------------------------
-- Generated columns, so every insert and update keeps them current without triggers. Text is
-- capped at 200,000 characters: a tsvector may not exceed 1 MB and an article must never be
-- refused by the database because it is long.

ALTER TABLE articles ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', left(coalesce(title, ''), 2000)), 'A')
    || setweight(to_tsvector('english', left(text, 200000)), 'B')
) STORED;
COMMENT ON COLUMN articles.search_tsv IS
    'English full-text index of title (weight A) and text (weight B, first 200,000 characters). '
    'Query with: search_tsv @@ websearch_to_tsquery(''english'', ''...'').';
CREATE INDEX articles_search ON articles USING gin (search_tsv);

ALTER TABLE statements ADD COLUMN quote_tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('english', left(quote, 200000))
) STORED;
COMMENT ON COLUMN statements.quote_tsv IS
    'English full-text index of the quote. Query with: quote_tsv @@ websearch_to_tsquery(''english'', ''...'').';
CREATE INDEX statements_search ON statements USING gin (quote_tsv);

-- Indexes for the common filters -------------------------------------------------------------
-- 001 already indexes articles.published_at, articles.feed_id, entity_mentions.entity_id and
-- statements.speaker_entity_id.

CREATE INDEX articles_dated_at ON articles ((coalesce(published_at, fetched_at)));
CREATE INDEX statements_speaker ON statements (speaker);
CREATE INDEX entities_name ON entities (name);
CREATE INDEX feed_items_feed_state ON feed_items (feed_id, state);

-- Views ---------------------------------------------------------------------------------------

CREATE VIEW v_articles AS
SELECT a.id                                                      AS article_id,
       a.title,
       a.url,
       a.published_at,
       coalesce(a.published_at, a.fetched_at)                    AS dated_at,
       (coalesce(a.published_at, a.fetched_at) AT TIME ZONE 'UTC')::date AS day,
       a.feed_id,
       f.title                                                   AS feed_title,
       f.url                                                     AS feed_url,
       a.site_name,
       a.author,
       a.language,
       a.description,
       a.word_count,
       a.nlp_skipped,
       (SELECT count(*) FROM entity_mentions m WHERE m.article_id = a.id) AS mentions,
       (SELECT count(*) FROM statements s WHERE s.article_id = a.id)      AS statements,
       a.search_tsv
FROM articles a
LEFT JOIN feeds f ON f.id = a.feed_id;
COMMENT ON VIEW v_articles IS
    'One row per article with its date, feed and counts of entity mentions and statements; '
    'search with search_tsv @@ websearch_to_tsquery(''english'', ''...'').';
COMMENT ON COLUMN v_articles.dated_at IS 'published_at, or fetch time when the article has no date.';
COMMENT ON COLUMN v_articles.day IS 'Calendar date of dated_at in UTC.';

CREATE VIEW v_statements AS
SELECT s.id                                                      AS statement_id,
       s.article_id,
       coalesce(e.name, s.speaker)                               AS speaker,
       s.speaker_entity_id,
       e.label                                                   AS speaker_label,
       s.speaker_mention,
       s.kind,
       s.cue,
       s.quote,
       a.title                                                   AS article_title,
       a.url                                                     AS article_url,
       a.published_at,
       coalesce(a.published_at, a.fetched_at)                    AS dated_at,
       (coalesce(a.published_at, a.fetched_at) AT TIME ZONE 'UTC')::date AS day,
       a.feed_id,
       f.title                                                   AS feed_title,
       f.url                                                     AS feed_url,
       s.quote_start,
       s.quote_end,
       s.quote_tsv
FROM statements s
JOIN articles a ON a.id = s.article_id
LEFT JOIN entities e ON e.id = s.speaker_entity_id
LEFT JOIN feeds f ON f.id = a.feed_id;
COMMENT ON VIEW v_statements IS
    'Who said what, ready to read: each statement with its speaker name, article title, URL, date and feed.';
COMMENT ON COLUMN v_statements.speaker IS
    'Canonical name of the speaker entity (the same person across articles), else the speaker as written; '
    'NULL when nobody could be identified.';
COMMENT ON COLUMN v_statements.speaker_label IS 'Entity label of the speaker: PERSON, ORG, GPE, NORP ...';
COMMENT ON COLUMN v_statements.kind IS
    'direct (verbatim in quote marks), indirect (reported speech), mixed (reported speech with a quoted fragment).';
COMMENT ON COLUMN v_statements.dated_at IS 'The article''s published_at, or its fetch time when it has no date.';
COMMENT ON COLUMN v_statements.day IS 'Calendar date of dated_at in UTC.';

CREATE VIEW v_speaker_daily AS
SELECT day,
       speaker,
       speaker_entity_id,
       count(*)                                   AS statements,
       count(DISTINCT article_id)                 AS articles,
       count(*) FILTER (WHERE kind = 'direct')    AS direct,
       count(*) FILTER (WHERE kind = 'indirect')  AS indirect,
       count(*) FILTER (WHERE kind = 'mixed')     AS mixed
FROM v_statements
WHERE speaker IS NOT NULL
GROUP BY day, speaker, speaker_entity_id;
COMMENT ON VIEW v_speaker_daily IS
    'Statements per speaker per day (UTC), split by kind; statements without a speaker are left out.';

CREATE VIEW v_entity_daily AS
SELECT (coalesce(a.published_at, a.fetched_at) AT TIME ZONE 'UTC')::date AS day,
       e.id                         AS entity_id,
       e.name                       AS entity,
       e.label,
       count(*)                     AS mentions,
       count(DISTINCT m.article_id) AS articles
FROM entity_mentions m
JOIN entities e ON e.id = m.entity_id
JOIN articles a ON a.id = m.article_id
GROUP BY 1, e.id, e.name, e.label;
COMMENT ON VIEW v_entity_daily IS
    'Mentions of each entity per day (UTC): how often it was named and in how many articles.';

CREATE VIEW v_comentions AS
SELECT x.article_id,
       a.title                                                   AS article_title,
       coalesce(a.published_at, a.fetched_at)                    AS dated_at,
       (coalesce(a.published_at, a.fetched_at) AT TIME ZONE 'UTC')::date AS day,
       ex.id       AS entity_a_id,
       ex.name     AS entity_a,
       ex.label    AS label_a,
       x.mentions  AS mentions_a,
       ey.id       AS entity_b_id,
       ey.name     AS entity_b,
       ey.label    AS label_b,
       y.mentions  AS mentions_b
FROM (SELECT article_id, entity_id, count(*) AS mentions FROM entity_mentions GROUP BY 1, 2) x
JOIN (SELECT article_id, entity_id, count(*) AS mentions FROM entity_mentions GROUP BY 1, 2) y
  ON y.article_id = x.article_id
JOIN entities ex ON ex.id = x.entity_id
JOIN entities ey ON ey.id = y.entity_id
JOIN articles a ON a.id = x.article_id
WHERE (ex.name, ex.id) < (ey.name, ey.id);
COMMENT ON VIEW v_comentions IS
    'Pairs of entities named in the same article, one row per article and pair; entity_a sorts before '
    'entity_b by name. Aggregate it, or use v_comention_pairs for all-time totals.';

CREATE VIEW v_comention_pairs AS
SELECT entity_a_id, entity_a, label_a, entity_b_id, entity_b, label_b,
       count(*)  AS articles,
       min(day)  AS first_day,
       max(day)  AS last_day
FROM v_comentions
GROUP BY entity_a_id, entity_a, label_a, entity_b_id, entity_b, label_b;
COMMENT ON VIEW v_comention_pairs IS
    'Each pair of entities ever named in the same article: in how many articles, first and last day.';

CREATE VIEW v_quarantine AS
SELECT i.id                                            AS item_id,
       i.feed_id,
       f.title                                         AS feed_title,
       f.url                                           AS feed_url,
       i.url                                           AS item_url,
       i.title                                         AS item_title,
       i.published_at,
       coalesce(i.published_at, i.first_seen_at)       AS dated_at,
       (coalesce(i.published_at, i.first_seen_at) AT TIME ZONE 'UTC')::date AS day,
       i.reason,
       i.message,
       i.transient,
       i.attempts,
       i.first_seen_at,
       i.last_seen_at
FROM feed_items i
JOIN feeds f ON f.id = i.feed_id
WHERE i.state = 'quarantined';
COMMENT ON VIEW v_quarantine IS
    'Feed items that could not be stored, with the reason code and message (reason codes: README).';
COMMENT ON COLUMN v_quarantine.transient IS 'True when later runs retry the item (timeouts, connection failures ...).';
COMMENT ON COLUMN v_quarantine.dated_at IS 'The item''s date in its feed, or when newsflow first saw it.';

CREATE VIEW v_feed_health AS
SELECT f.id                                  AS feed_id,
       f.url                                 AS feed_url,
       f.title                               AS feed_title,
       f.status,
       f.enabled,
       f.consecutive_failures,
       f.last_fetched_at,
       f.last_success_at,
       f.last_error_reason,
       f.last_error,
       f.disabled_reason,
       coalesce(i.items, 0)                  AS items,
       coalesce(i.stored, 0)                 AS stored,
       coalesce(i.duplicate, 0)              AS duplicate,
       coalesce(i.quarantined, 0)            AS quarantined,
       coalesce(i.retrying, 0)               AS retrying,
       round(coalesce(i.quarantined, 0)::numeric / nullif(i.items, 0), 3) AS quarantine_rate,
       coalesce(a.articles, 0)               AS articles,
       a.latest_article_at
FROM feeds f
LEFT JOIN (
    SELECT feed_id,
           count(*)                                                  AS items,
           count(*) FILTER (WHERE state = 'stored')                  AS stored,
           count(*) FILTER (WHERE state = 'duplicate')               AS duplicate,
           count(*) FILTER (WHERE state = 'quarantined')             AS quarantined,
           count(*) FILTER (WHERE state = 'quarantined' AND transient) AS retrying
    FROM feed_items GROUP BY feed_id
) i ON i.feed_id = f.id
LEFT JOIN (
    SELECT feed_id, count(*) AS articles, max(coalesce(published_at, fetched_at)) AS latest_article_at
    FROM articles GROUP BY feed_id
) a ON a.feed_id = f.id;
COMMENT ON VIEW v_feed_health IS
    'One row per feed: its fetch status and errors, what became of its items, and its newest article.';
COMMENT ON COLUMN v_feed_health.retrying IS 'Quarantined items with a transient reason, retried by later runs.';
COMMENT ON COLUMN v_feed_health.quarantine_rate IS 'Share of the feed''s items that ended in quarantine (0 to 1).';

-- Roles -------------------------------------------------------------------------------------
-- Roles belong to the whole cluster, while grants belong to this database. The roles are
-- created once, by the first migration whose user may create roles (another database's
-- migration may be creating them at the same moment, hence the exception handlers); their
-- settings are set only then, so an operator's later ALTER ROLE is never overwritten. Grants
-- and default privileges (tables added by later migrations) are made in every database.
-- Neither role has a password: an operator sets one (ALTER ROLE ... PASSWORD) to use it.

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE FUNCTION ops.grant_newsflow_roles() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    may_create_roles boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create_roles FROM pg_roles WHERE rolname = current_user;

    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_analyst') THEN
        IF may_create_roles THEN
            BEGIN
                CREATE ROLE newsflow_analyst LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
                ALTER ROLE newsflow_analyst SET statement_timeout = '2min';
                ALTER ROLE newsflow_analyst SET idle_in_transaction_session_timeout = '10min';
                COMMENT ON ROLE newsflow_analyst IS
                    'newsflow analysts: read-only access to the newsflow tables and views, queries time out.';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by another database's migration
            END;
        ELSE
            RAISE NOTICE 'role newsflow_analyst does not exist and % may not create roles: not created',
                current_user;
        END IF;
    END IF;

    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_loader') THEN
        IF may_create_roles THEN
            BEGIN
                CREATE ROLE newsflow_loader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
                COMMENT ON ROLE newsflow_loader IS
                    'newsflow ingestion: reads and writes the newsflow tables; cannot change the schema.';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        ELSE
            RAISE NOTICE 'role newsflow_loader does not exist and % may not create roles: not created',
                current_user;
        END IF;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_analyst') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO newsflow_analyst', current_database());
        GRANT USAGE ON SCHEMA public TO newsflow_analyst;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO newsflow_analyst;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO newsflow_analyst;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_loader') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO newsflow_loader', current_database());
        GRANT USAGE ON SCHEMA public, ops TO newsflow_loader;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, ops TO newsflow_loader;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public, ops TO newsflow_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO newsflow_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops GRANT USAGE, SELECT ON SEQUENCES TO newsflow_loader;
    END IF;
END
$fn$;
COMMENT ON FUNCTION ops.grant_newsflow_roles() IS
    'Creates newsflow_analyst (read-only, statement timeout) and newsflow_loader (reads and writes) when '
    'they are missing and the caller may create roles, then grants them their privileges in this '
    'database. Migration 003 runs it; run it again as a superuser if the roles were created later.';
REVOKE ALL ON FUNCTION ops.grant_newsflow_roles() FROM PUBLIC;

SELECT ops.grant_newsflow_roles();
