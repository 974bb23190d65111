-- Web archives as sources (issue 16): WARC/ARC files, Common Crawl's CC-NEWS months and the
-- Wayback Machine feed the same ledger as feeds.
--
-- * Every WARC or ARC file read is a row of `feeds` with kind 'warc', never polled (enabled
--   false): its records are that source's items in `feed_items`, keyed by WARC-Record-ID (or
--   the record's offset), and the articles they give have it as their feed_id.
-- * `archive_files` is the per-file ledger: how far reading got (offset, records seen),
--   whether the file is done, and what was counted and skipped. A killed run resumes at the
--   offset reached; a finished file is never read again.
-- * `archive_listings` keeps a CC-NEWS month's list of files, so a rerun of a finished month
--   fetches nothing at all.
-- * `item_sources` says where an item was found when that is not simply its feed: an archive
--   page or sitemap of the feed (backfill), a WARC file and byte offset, a Wayback capture.

ALTER TABLE feeds ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'feed';
ALTER TABLE feeds DROP CONSTRAINT IF EXISTS feeds_kind_check;
ALTER TABLE feeds ADD CONSTRAINT feeds_kind_check CHECK (kind IN ('feed', 'warc'));
ALTER TABLE feeds DROP CONSTRAINT IF EXISTS feeds_archive_not_polled;
ALTER TABLE feeds ADD CONSTRAINT feeds_archive_not_polled CHECK (kind = 'feed' OR NOT enabled);
COMMENT ON COLUMN feeds.kind IS
    'feed: an RSS/Atom feed newsflow polls. warc: a WARC or ARC file read by `newsflow backfill --warc/--cc-news`; '
    'never polled, its records are its items.';

CREATE TABLE IF NOT EXISTS archive_listings (
    name       text PRIMARY KEY,
    url        text NOT NULL,
    files      integer NOT NULL,
    listed_at  timestamptz NOT NULL DEFAULT now(),
    final      boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE archive_listings IS
    'A CC-NEWS month''s list of WARC files (warc.paths.gz) as read. final: read after the month ended, so it '
    'will not grow and a rerun need not fetch it again.';

CREATE TABLE IF NOT EXISTS archive_files (
    feed_id        bigint PRIMARY KEY REFERENCES feeds (id) ON DELETE CASCADE,
    location       text NOT NULL,
    listing        text REFERENCES archive_listings (name) ON DELETE SET NULL,
    position       integer,
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'reading', 'done')),
    records_seen   bigint NOT NULL DEFAULT 0,
    offset_reached bigint NOT NULL DEFAULT 0,
    skipped        jsonb NOT NULL DEFAULT '{}'::jsonb,
    format         text,
    last_run_id    bigint,
    started_at     timestamptz,
    finished_at    timestamptz,
    last_error     text
);
COMMENT ON TABLE archive_files IS
    'The ledger of WARC/ARC files, one row per file (its feeds row, kind warc): how far reading got and what it counted.';
COMMENT ON COLUMN archive_files.offset_reached IS
    'Byte offset in the file (compressed) before which every record is settled: counted, skipped or in feed_items. A resumed read starts here.';
COMMENT ON COLUMN archive_files.records_seen IS 'Records read before offset_reached, of every type.';
COMMENT ON COLUMN archive_files.skipped IS
    'Records counted and not loaded, by why: request, metadata, revisit, warcinfo, http_status, off_domain, out_of_window, language ...';
CREATE INDEX IF NOT EXISTS archive_files_listing ON archive_files (listing, position);

CREATE TABLE IF NOT EXISTS item_sources (
    feed_id       bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    item_key      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('archive', 'paged', 'sitemap', 'warc', 'arc', 'wayback')),
    location      text NOT NULL,
    record_offset bigint,
    record_id     text,
    captured_at   timestamptz,
    PRIMARY KEY (feed_id, item_key)
);
COMMENT ON TABLE item_sources IS
    'Where a feed item was found when it was not in the feed document itself: an archive page, ?paged=N page or '
    'sitemap (location: its URL), a WARC/ARC file (location: the file, record_offset: the record''s byte offset), '
    'or a Wayback capture (location: the capture''s URL). Items with no row here came from their feed.';

CREATE OR REPLACE VIEW v_article_sources AS
SELECT i.article_id,
       i.state,
       f.id                                  AS feed_id,
       f.kind                                AS feed_kind,
       f.url                                 AS feed_url,
       coalesce(s.kind, 'feed')              AS source_kind,
       coalesce(s.location, f.url)           AS source,
       s.record_offset,
       s.record_id,
       s.captured_at,
       i.url                                 AS item_url,
       i.first_seen_at
FROM feed_items i
JOIN feeds f ON f.id = i.feed_id
LEFT JOIN item_sources s ON s.feed_id = i.feed_id AND s.item_key = i.item_key
WHERE i.article_id IS NOT NULL;
COMMENT ON VIEW v_article_sources IS
    'Every place an article was found (its first as stored, later ones as duplicate): a feed, an archive page or '
    'sitemap, a WARC file and byte offset, a Wayback capture.';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_analyst') THEN
        GRANT SELECT ON archive_listings, archive_files, item_sources, v_article_sources TO newsflow_analyst;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_loader') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON archive_listings, archive_files, item_sources TO newsflow_loader;
    END IF;
END $$;
