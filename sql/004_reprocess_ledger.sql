-- The ledger of reprocessing runs: what each run did with each article it re-derived.
-- Reprocessing works on articles, not feed items, so it has its own table next to
-- ops.run_items; ops.runs counts for kind 'reprocess' reconcile with it
-- (seen = stored + quarantined, where stored means reprocessed and quarantined means failed).

CREATE TABLE ops.run_articles (
    run_id     bigint NOT NULL REFERENCES ops.runs (id) ON DELETE CASCADE,
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    state      text NOT NULL CHECK (state IN ('reprocessed', 'failed')),
    reason     text,
    message    text,
    PRIMARY KEY (run_id, article_id),
    CHECK ((state = 'failed') = (reason IS NOT NULL))
);
COMMENT ON TABLE ops.run_articles IS 'What each reprocess run did with each article: reprocessed, or failed with a reason code (the article is then left as it was).';
CREATE INDEX run_articles_article ON ops.run_articles (article_id);
