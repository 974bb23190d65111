-- Runs end 'aborted' when their process stopped or died before them (pipeline/runs.py): a
-- live run holds a session-level advisory lock, so the next run can tell a dead one at once.
ALTER TABLE ops.runs DROP CONSTRAINT IF EXISTS runs_status_check;
ALTER TABLE ops.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'aborted'));
COMMENT ON COLUMN ops.runs.status IS
    'running, succeeded, failed (database lost, ledger did not reconcile, unexpected error) or aborted (SIGTERM, Ctrl-C, or the process died: marked by the next run).';

-- An article whose entity and statement extraction failed or overran its limit is stored
-- anyway, with its text: the analysis is marked failed and completed later by
-- `newsflow retry` or `newsflow reprocess`. Only fetch and extraction failures leave no article.
ALTER TABLE articles ADD COLUMN IF NOT EXISTS nlp_error text;
COMMENT ON COLUMN articles.nlp_error IS
    'Why entity and statement extraction failed for this article (reason: message), else NULL. Such an article has its text but no mentions or statements yet; `newsflow retry` completes it.';
CREATE INDEX IF NOT EXISTS articles_nlp_failed ON articles (id) WHERE nlp_error IS NOT NULL;

-- The ledger: a stored item may carry reason nlp_failed (stored, analysis pending).
ALTER TABLE feed_items DROP CONSTRAINT IF EXISTS feed_items_check;
ALTER TABLE feed_items ADD CONSTRAINT feed_items_reason_check
    CHECK (CASE state WHEN 'quarantined' THEN reason IS NOT NULL
                      WHEN 'stored' THEN reason IS NULL OR reason = 'nlp_failed'
                      ELSE reason IS NULL END);
COMMENT ON COLUMN feed_items.reason IS
    'Reason code for quarantine (see README "Reason codes"); on a stored item, nlp_failed means the article is stored and its analysis is pending.';

-- Analysts filter on it: v_articles gains nlp_error as its last column.
CREATE OR REPLACE VIEW v_articles AS
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
       a.search_tsv,
       a.nlp_error
FROM articles a
LEFT JOIN feeds f ON f.id = a.feed_id;
COMMENT ON COLUMN v_articles.nlp_error IS
    'Why entity and statement extraction failed (its mentions and statements are pending), else NULL.';
