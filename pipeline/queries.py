"""Every SQL statement newsflow runs against its own tables, parameterised by name.

Kept in one module so the schema contract (sql/*.sql) and its uses can be read side by side.
"""

UPSERT_FEED = """
INSERT INTO feeds (url) VALUES (%(url)s)
ON CONFLICT (url_key) DO UPDATE SET url = EXCLUDED.url
RETURNING id, url, etag, last_modified, enabled, status, moved_to, poll_interval_seconds, consecutive_failures
"""

FEED_FETCHED = """
UPDATE feeds SET
    title = coalesce(%(title)s, title),
    site_url = coalesce(%(site_url)s, site_url),
    etag = coalesce(%(etag)s, etag),
    last_modified = coalesce(%(last_modified)s, last_modified),
    moved_to = coalesce(%(moved_to)s, moved_to),
    last_fetched_at = now(),
    last_success_at = now(),
    consecutive_failures = 0,
    failure_score = 0,
    status = 'active',
    enabled = true,
    disabled_reason = NULL,
    last_error_reason = %(warning_reason)s,
    last_error = %(warning)s,
    items_last_poll = %(new_items)s,
    poll_interval_seconds = %(poll_seconds)s,
    next_poll_at = now() + make_interval(secs => %(poll_seconds)s)
WHERE id = %(id)s
"""

FEED_FAILED = """
UPDATE feeds SET
    last_fetched_at = now(),
    consecutive_failures = consecutive_failures + 1,
    failure_score = failure_score + %(weight)s,
    last_error_reason = %(reason)s,
    last_error = %(message)s,
    status = CASE WHEN failure_score + %(weight)s >= %(disable_after)s THEN 'disabled' ELSE 'failing' END,
    enabled = enabled AND failure_score + %(weight)s < %(disable_after)s,
    disabled_reason = CASE WHEN failure_score + %(weight)s >= %(disable_after)s
                           THEN %(reason)s || ': ' || %(message)s ELSE disabled_reason END,
    next_poll_at = now() + make_interval(secs => %(poll_seconds)s)
WHERE id = %(id)s
"""

SAVE_VALIDATORS = """
UPDATE feeds SET etag = %(etag)s, last_modified = %(last_modified)s WHERE id = %(id)s
"""

KNOWN_ITEMS = """
SELECT item_key, state,
       transient AND updated_at <= now() - make_interval(secs => %(retry_after)s * attempts) AS retry_now
FROM feed_items
WHERE feed_id = %(feed_id)s AND item_key = ANY(%(keys)s)
"""

TOUCH_ITEMS = """
UPDATE feed_items SET last_seen_at = now()
WHERE feed_id = %(feed_id)s AND item_key = ANY(%(keys)s)
"""

ARTICLE_BY_URL = "SELECT id FROM articles WHERE url_key = md5(%(url)s)"

# The article a conflicting insert ran into: the same URL, or the same text on the same outlet
# (an exact copy on another outlet is a publication of its own: sql/010_stories.sql).
ARTICLE_BY_URL_OR_HASH = """
SELECT id FROM articles
WHERE url_key = md5(%(url)s) OR (content_hash = %(content_hash)s AND outlet = outlet_of(%(url)s))
ORDER BY id LIMIT 1
"""

INSERT_ARTICLE = """
INSERT INTO articles (
    url, feed_id, title, text, published_at, author, language, site_name, description,
    raw_html, content_type, fetched_at, content_hash, word_count, extractor_version,
    nlp_version, nlp_skipped, nlp_error, processed_at,
    page_published_at, feed_published_at, published_at_source
) VALUES (
    %(url)s, %(feed_id)s, %(title)s, %(text)s, %(published_at)s, %(author)s, %(language)s,
    %(site_name)s, %(description)s, %(raw_html)s, %(content_type)s, %(fetched_at)s,
    %(content_hash)s, %(word_count)s, %(extractor_version)s, %(nlp_version)s,
    %(nlp_skipped)s, %(nlp_error)s, now(),
    %(page_published_at)s, %(feed_published_at)s, %(published_at_source)s
)
ON CONFLICT DO NOTHING
RETURNING id
"""

# An article's mentions (and statements) in one statement: one array per column, unnested
# in order (ids follow the list), instead of a round trip per row.
INSERT_MENTIONS = """
INSERT INTO entity_mentions (article_id, entity_id, text, label, start, "end")
SELECT %(article_id)s, m.entity_id, m.text, m.label, m.start, m."end"
FROM unnest(%(entity_id)s::bigint[], %(text)s::text[], %(label)s::text[], %(start)s::int[], %(end)s::int[])
    WITH ORDINALITY AS m (entity_id, text, label, start, "end", n)
ORDER BY m.n
ON CONFLICT DO NOTHING
"""

INSERT_STATEMENTS = """
INSERT INTO statements (
    article_id, kind, quote, quote_start, quote_end, speaker, speaker_mention,
    speaker_start, speaker_end, speaker_entity_id, cue, cue_start, cue_end, extractor_version
)
SELECT
    %(article_id)s, s.kind, s.quote, s.quote_start, s.quote_end, s.speaker, s.speaker_mention,
    s.speaker_start, s.speaker_end, s.speaker_entity_id, s.cue, s.cue_start, s.cue_end, %(extractor_version)s
FROM unnest(
    %(kind)s::text[], %(quote)s::text[], %(quote_start)s::int[], %(quote_end)s::int[], %(speaker)s::text[],
    %(speaker_mention)s::text[], %(speaker_start)s::int[], %(speaker_end)s::int[],
    %(speaker_entity_id)s::bigint[], %(cue)s::text[], %(cue_start)s::int[], %(cue_end)s::int[]
) WITH ORDINALITY AS s (
    kind, quote, quote_start, quote_end, speaker, speaker_mention, speaker_start, speaker_end,
    speaker_entity_id, cue, cue_start, cue_end, n
)
ORDER BY s.n
ON CONFLICT DO NOTHING
"""

DELETE_DERIVED = """
WITH m AS (DELETE FROM entity_mentions WHERE article_id = %(article_id)s)
DELETE FROM statements WHERE article_id = %(article_id)s
"""

UPSERT_ITEM = """
INSERT INTO feed_items (
    feed_id, item_key, guid, url, title, published_at, state, reason, message, transient,
    article_id
) VALUES (
    %(feed_id)s, %(item_key)s, %(guid)s, %(url)s, %(title)s, %(published_at)s, %(state)s,
    %(reason)s, %(message)s, %(transient)s, %(article_id)s
)
ON CONFLICT (feed_id, item_key) DO UPDATE SET
    url = EXCLUDED.url,
    title = EXCLUDED.title,
    published_at = EXCLUDED.published_at,
    state = EXCLUDED.state,
    reason = EXCLUDED.reason,
    message = EXCLUDED.message,
    transient = EXCLUDED.transient,
    article_id = EXCLUDED.article_id,
    attempts = feed_items.attempts + 1,
    last_seen_at = now(),
    updated_at = now()
RETURNING id
"""

INSERT_RUN_ITEM = """
INSERT INTO ops.run_items (run_id, item_id, state, reason)
VALUES (%(run_id)s, %(item_id)s, %(state)s, %(reason)s)
ON CONFLICT (run_id, item_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason
"""

START_RUN = "INSERT INTO ops.runs (kind) VALUES (%(kind)s) RETURNING id"

# A run is alive while the session that started it holds its advisory lock (pipeline/runs.py):
# key = lock_class << 32 | run id, which pg_locks shows as classid, objid with objsubid 1.
LOCK_RUN = "SELECT pg_advisory_lock(%(key)s)"
UNLOCK_RUN = "SELECT pg_advisory_unlock(%(key)s)"
ABORT_ORPHANED_RUNS = """
UPDATE ops.runs r SET
    status = 'aborted', finished_at = now(),
    message = concat_ws('; ', r.message, 'the process running it ended before the run did')
WHERE r.status = 'running'
  AND NOT EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid::bigint = %(lock_class)s AND l.objid::bigint = (r.id & 4294967295))
RETURNING r.id
"""

RUN_LEDGER_STATES = """
SELECT state, count(*) FROM ops.run_items WHERE run_id = %(run_id)s GROUP BY state
UNION ALL
SELECT CASE state WHEN 'reprocessed' THEN 'stored' ELSE 'quarantined' END, count(*)
FROM ops.run_articles WHERE run_id = %(run_id)s GROUP BY state
"""

FINISH_RUN = """
UPDATE ops.runs SET
    finished_at = now(), status = %(status)s, feeds = %(feeds)s, seen = %(seen)s,
    stored = %(stored)s, duplicate = %(duplicate)s, quarantined = %(quarantined)s,
    unchanged = %(unchanged)s, message = %(message)s
WHERE id = %(id)s
"""

DONE_ITEM_URLS = """
SELECT DISTINCT url FROM feed_items
WHERE feed_id = %(feed_id)s AND url = ANY(%(urls)s) AND state IN ('stored', 'duplicate')
"""

# Reprocessing: {date_column} is composed with psycopg.sql.Identifier (published_at or fetched_at).
REPROCESS_IDS = """
SELECT id FROM articles
WHERE (%(since)s::timestamptz IS NULL OR {date_column} >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR {date_column} < %(until)s)
  AND (NOT %(outdated_only)s
       OR extractor_version IS DISTINCT FROM %(extractor_version)s
       OR (nlp_skipped IS NULL AND nlp_version IS DISTINCT FROM %(nlp_version)s))
  AND (NOT %(analysis_failed_only)s OR nlp_error IS NOT NULL)
  AND id BETWEEN %(first_id)s AND %(last_id)s
ORDER BY id
"""

REPROCESS_SOURCES = """
SELECT id, url, raw_html, feed_published_at FROM articles WHERE id = ANY(%(ids)s) ORDER BY id
"""

LOCK_ARTICLE = "SELECT id FROM articles WHERE id = %(id)s FOR UPDATE"

UPDATE_REPROCESSED = """
UPDATE articles SET
    title = %(title)s, text = %(text)s, published_at = coalesce(%(published_at)s, published_at),
    page_published_at = %(page_published_at)s, published_at_source = %(published_at_source)s,
    author = %(author)s, language = %(language)s, site_name = %(site_name)s,
    description = %(description)s, content_hash = %(content_hash)s, word_count = %(word_count)s,
    extractor_version = %(extractor_version)s, nlp_version = %(nlp_version)s,
    nlp_skipped = %(nlp_skipped)s, nlp_error = NULL, processed_at = now()
WHERE id = %(id)s
"""

ANALYSIS_PENDING_COUNT = "SELECT count(*) FROM articles WHERE nlp_error IS NOT NULL"

# An article's analysis is complete: its ledger rows no longer say it is pending.
CLEAR_ANALYSIS_PENDING = """
UPDATE feed_items SET reason = NULL, message = NULL, transient = false, updated_at = now()
WHERE article_id = %(article_id)s AND state = 'stored' AND reason = 'nlp_failed'
"""

INSERT_RUN_ARTICLE = """
INSERT INTO ops.run_articles (run_id, article_id, state, reason, message)
VALUES (%(run_id)s, %(article_id)s, %(state)s, %(reason)s, %(message)s)
ON CONFLICT (run_id, article_id) DO UPDATE SET
    state = EXCLUDED.state, reason = EXCLUDED.reason, message = EXCLUDED.message
"""

RUN_COUNTS = """
SELECT id, kind, status, seen, stored, duplicate, quarantined, message FROM ops.runs
WHERE id = ANY(%(ids)s) ORDER BY id
"""

ENABLED_FEEDS = "SELECT url FROM feeds WHERE enabled ORDER BY id"

RECENT_RUNS = """
SELECT id, kind, status, started_at, finished_at, feeds, seen, stored, duplicate, quarantined, unchanged, message
FROM ops.runs ORDER BY id DESC LIMIT %(limit)s
"""

FAILING_FEEDS = """
SELECT url, status, consecutive_failures, last_error_reason, last_error, last_success_at, disabled_reason
FROM feeds WHERE status <> 'active' OR consecutive_failures > 0
ORDER BY consecutive_failures DESC, url
"""

QUARANTINE_BY_REASON = """
SELECT reason, transient, count(*) FROM feed_items WHERE state = 'quarantined'
GROUP BY reason, transient ORDER BY count(*) DESC, reason
"""

RETRYABLE_ITEMS = """
SELECT i.feed_id, i.item_key, i.guid, i.url, i.title, i.published_at, f.url AS feed_url
FROM feed_items i JOIN feeds f ON f.id = i.feed_id
WHERE i.state = 'quarantined'
  AND (%(reason)s::text IS NULL OR i.reason = %(reason)s)
  AND (i.transient OR %(include_permanent)s)
ORDER BY i.feed_id, i.id
LIMIT %(limit)s
"""

STATEMENT_IDS = "SELECT id FROM statements WHERE article_id = %(article_id)s ORDER BY id"

NOTIFY = "SELECT pg_notify(%(channel)s, %(payload)s)"

DUE_FEEDS = """
SELECT id, url, etag, last_modified, enabled, status, moved_to, poll_interval_seconds, consecutive_failures
FROM feeds
WHERE enabled AND (next_poll_at IS NULL OR next_poll_at <= now())
ORDER BY next_poll_at NULLS FIRST, id
"""

NEXT_DUE = "SELECT min(next_poll_at) FROM feeds WHERE enabled"

STORED_SINCE = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.95) WITHIN GROUP (ORDER BY lag)
FROM (
    SELECT extract(epoch FROM a.stored_at - a.published_at) AS lag
    FROM articles a WHERE a.stored_at >= %(since)s AND a.published_at IS NOT NULL
) lags
"""

TAIL_STATEMENTS = """
SELECT s.id, a.id, a.title, coalesce(e.name, s.speaker), s.kind, s.cue, s.quote
FROM statements s
JOIN articles a ON a.id = s.article_id
LEFT JOIN entities e ON e.id = s.speaker_entity_id
WHERE s.id = ANY(%(ids)s)
  AND (%(speaker)s::text IS NULL OR coalesce(e.name, s.speaker) ILIKE '%%' || %(speaker)s || '%%')
  AND (%(entity)s::text IS NULL OR EXISTS (
        SELECT 1 FROM entity_mentions m JOIN entities me ON me.id = m.entity_id
        WHERE m.article_id = a.id AND me.name ILIKE '%%' || %(entity)s || '%%'))
ORDER BY s.id
"""


# Stories (pipeline/stories.py, sql/010_stories.sql) ------------------------------------------

# Held to the end of the article's transaction, in key order (no deadlock between loaders):
# two loaders storing copies of one story share band keys, so the second waits for the first
# to commit and then finds its bands.
LOCK_STORY_KEYS = """
SELECT pg_advisory_xact_lock(k) FROM unnest(%(keys)s::bigint[]) WITH ORDINALITY AS u (k, n) ORDER BY n
"""

# Candidate copies: articles sharing band keys, most shared first, with their signatures and
# stories; an exact copy of the text (any outlet) is always a candidate.
STORY_CANDIDATES = """
WITH hits AS (
    SELECT article_id, count(*) AS shared FROM story_bands
    WHERE band_key = ANY(%(keys)s::bigint[])
    GROUP BY article_id
    ORDER BY count(*) DESC, article_id
    LIMIT %(limit)s
), exact AS (
    SELECT id AS article_id, %(bands)s::bigint AS shared FROM articles
    WHERE content_hash = %(content_hash)s AND story_id IS NOT NULL
    ORDER BY id LIMIT 1
)
SELECT a.id, a.story_id, c.shared, s.hashvalues, s.shingles, s.words, a.content_hash = %(content_hash)s
FROM (SELECT * FROM hits UNION ALL SELECT * FROM exact) c
JOIN articles a ON a.id = c.article_id
LEFT JOIN story_signatures s ON s.article_id = a.id AND s.version = %(version)s
WHERE a.story_id IS NOT NULL AND a.id <> %(article_id)s
"""

INSERT_STORY = "INSERT INTO stories DEFAULT VALUES RETURNING id"

STORY_SIZE = "SELECT count(*) FROM articles WHERE story_id = %(story_id)s"

# Serialises writers of one story's roles (two loaders joining it through different bands).
LOCK_STORY = "SELECT id FROM stories WHERE id = %(story_id)s FOR UPDATE"

START_STORY = "UPDATE articles SET story_id = %(story_id)s, story_role = 'first' WHERE id = %(article_id)s"

# Put an article in a story, and give every member its role again: the earliest is first, a
# later one on an outlet that already carried the story an update, the others copies. Only
# rows whose story or role changes are written.
JOIN_STORY = """
WITH members AS (
    SELECT id, outlet, coalesce(published_at, fetched_at) AS dated_at FROM articles
    WHERE story_id = %(story_id)s OR id = %(article_id)s
), roles AS (
    SELECT id,
           CASE WHEN row_number() OVER (ORDER BY dated_at, id) = 1 THEN 'first'
                WHEN row_number() OVER (PARTITION BY outlet ORDER BY dated_at, id) > 1 THEN 'update'
                ELSE 'copy' END AS role
    FROM members
)
UPDATE articles a SET story_id = %(story_id)s, story_role = r.role
FROM roles r
WHERE a.id = r.id AND (a.story_id IS DISTINCT FROM %(story_id)s OR a.story_role IS DISTINCT FROM r.role)
"""

UPSERT_SIGNATURE = """
INSERT INTO story_signatures (article_id, version, words, shingles, hashvalues)
VALUES (%(article_id)s, %(version)s, %(words)s, %(shingles)s, %(hashvalues)s)
ON CONFLICT (article_id) DO UPDATE SET
    version = EXCLUDED.version, words = EXCLUDED.words, shingles = EXCLUDED.shingles, hashvalues = EXCLUDED.hashvalues
"""

INSERT_BANDS = """
INSERT INTO story_bands (band_key, article_id)
SELECT k, %(article_id)s FROM unnest(%(keys)s::bigint[]) AS k
ON CONFLICT DO NOTHING
"""

# A story left without articles (its only member moved when the migration grouped it).
DELETE_EMPTY_STORY = """
DELETE FROM stories s WHERE s.id = %(story_id)s AND NOT EXISTS (SELECT FROM articles a WHERE a.story_id = s.id)
"""

# Articles stored before stories existed, in id order.
UNSIGNED_ARTICLES = """
SELECT a.id, a.text, a.content_hash, a.story_id FROM articles a
LEFT JOIN story_signatures s ON s.article_id = a.id
WHERE s.article_id IS NULL AND a.id > %(after)s
ORDER BY a.id
LIMIT %(limit)s
"""

STORY_COUNTS = """
SELECT count(*) AS stories, count(*) FILTER (WHERE outlets > 1) AS carried
FROM v_stories
"""


# Article metadata (issue 17, sql/009).
INSERT_ARTICLE_AUTHORS = """
INSERT INTO article_authors (article_id, position, name, name_key)
SELECT %(article_id)s, a.position, a.name, a.name_key
FROM unnest(%(position)s::smallint[], %(name)s::text[], %(name_key)s::text[]) AS a (position, name, name_key)
ON CONFLICT (article_id, position) DO UPDATE SET name = EXCLUDED.name, name_key = EXCLUDED.name_key
"""

# How many pages of a host carry each of these lines (fingerprints as signed 64-bit integers).
HOST_LINE_PAGES = """
SELECT fingerprint, pages FROM host_line_fingerprints
WHERE host = %(host)s AND fingerprint = ANY(%(fingerprints)s::bigint[])
"""

# One more page of the host carries each of these lines (each fingerprint once per page).
RECORD_HOST_LINES = """
INSERT INTO host_line_fingerprints AS h (host, fingerprint)
SELECT %(host)s, f FROM unnest(%(fingerprints)s::bigint[]) AS f
ORDER BY f
ON CONFLICT (host, fingerprint) DO UPDATE SET pages = h.pages + 1, last_seen_at = now()
"""
