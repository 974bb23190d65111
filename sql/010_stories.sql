-- Stories (issue 18): near-duplicate and syndicated copies of one text grouped, across outlets.
--
-- Every article belongs to one story (articles.story_id) with its role in it: first (the
-- earliest copy), copy (another outlet's copy), update (a later copy on an outlet that already
-- carried the story). Copies are found at store time by MinHash over word shingles
-- (pipeline/stories.py); the LSH band keys of every signature live here, in story_bands, so
-- every loader process, machine and restart probes the same index.
--
-- The duplicate rule changes: the same text is a duplicate only on the same outlet (a second
-- URL of one site); an exact copy on another outlet is a publication of its own and carries the
-- story. The unique key on content_hash becomes (outlet, content_hash).
--
-- Existing articles each start as a story of their own (story id = article id, role first);
-- `newsflow db upgrade` (or `newsflow stories --group`) then signs them in date order and
-- groups the copies among them.

CREATE FUNCTION outlet_of(url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$
    SELECT regexp_replace(
        lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/]*\]|[^/?#:]*)')),
        '^(www[0-9]*|m|mobile|amp)\.', '')
$$;
COMMENT ON FUNCTION outlet_of(text) IS
    'The outlet of a URL: its host, lower-cased, without a leading www., m., mobile. or amp. '
    '(https://www.example.com/a and https://m.example.com/b are one outlet).';

ALTER TABLE articles ADD COLUMN outlet text GENERATED ALWAYS AS (outlet_of(url)) STORED;
COMMENT ON COLUMN articles.outlet IS
    'The site that published the article (outlet_of(url)): the same text twice on one outlet is a duplicate, '
    'on two outlets two publications of one story.';

ALTER TABLE articles DROP CONSTRAINT IF EXISTS articles_content_hash_key;
CREATE UNIQUE INDEX articles_outlet_content_hash ON articles (outlet, content_hash) NULLS NOT DISTINCT;
CREATE INDEX articles_content_hash ON articles (content_hash);
COMMENT ON COLUMN articles.content_hash IS
    'sha256 of the normalised text; the same text under another URL of the same outlet is a duplicate.';

CREATE TABLE stories (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE stories IS
    'One row per story: a text and its near-duplicate or syndicated copies across outlets (articles.story_id).';

ALTER TABLE articles
    ADD COLUMN story_id   bigint REFERENCES stories (id),
    ADD COLUMN story_role text CHECK (story_role IN ('first', 'copy', 'update'));
COMMENT ON COLUMN articles.story_id IS 'The story this article is a copy of (stories.id); see v_stories.';
COMMENT ON COLUMN articles.story_role IS
    'first: the earliest copy of the story (published, else fetched); copy: another outlet''s; '
    'update: a later copy on an outlet that already carried the story.';
CREATE INDEX articles_story ON articles (story_id);

CREATE TABLE story_signatures (
    article_id bigint PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    version    text NOT NULL,
    words      integer NOT NULL,
    shingles   integer NOT NULL,
    hashvalues bytea NOT NULL
);
COMMENT ON TABLE story_signatures IS
    'The MinHash signature of each article''s text (pipeline/stories.py): 128 values, uint32 little-endian.';

-- No foreign key: an article's 64 band rows are written in its store transaction and a key
-- check per row would cost more than the probe. Rows of a deleted article find no signature
-- in the join and are ignored.
CREATE TABLE story_bands (
    band_key   bigint NOT NULL,
    article_id bigint NOT NULL,
    PRIMARY KEY (band_key, article_id)
);
COMMENT ON TABLE story_bands IS
    'LSH band keys of each signature: two articles sharing a key are candidate copies of one story.';

INSERT INTO stories (id, created_at) SELECT id, stored_at FROM articles ORDER BY id;
SELECT setval(pg_get_serial_sequence('stories', 'id'), greatest((SELECT max(id) FROM stories), 1),
              (SELECT max(id) FROM stories) IS NOT NULL);
UPDATE articles SET story_id = id, story_role = 'first';

-- Views ---------------------------------------------------------------------------------------

CREATE VIEW v_stories AS
WITH members AS (
    SELECT a.story_id, a.id, a.title, a.outlet, a.story_role,
           coalesce(a.published_at, a.fetched_at) AS dated_at,
           row_number() OVER (PARTITION BY a.story_id ORDER BY coalesce(a.published_at, a.fetched_at), a.id) AS n,
           row_number() OVER (PARTITION BY a.story_id, a.outlet ORDER BY coalesce(a.published_at, a.fetched_at), a.id)
               AS n_on_outlet
    FROM articles a
    WHERE a.story_id IS NOT NULL
)
SELECT story_id,
       max(title) FILTER (WHERE n = 1)                          AS title,
       max(id) FILTER (WHERE n = 1)                             AS first_article_id,
       max(outlet) FILTER (WHERE n = 1)                         AS first_outlet,
       min(dated_at)                                            AS first_seen_at,
       max(dated_at)                                            AS last_seen_at,
       (min(dated_at) AT TIME ZONE 'UTC')::date                 AS day,
       count(*)                                                 AS articles,
       count(*) FILTER (WHERE n_on_outlet = 1)                  AS outlets,
       count(*) FILTER (WHERE story_role = 'update')            AS updates,
       array_agg(outlet ORDER BY dated_at, id) FILTER (WHERE n_on_outlet = 1) AS outlet_list
FROM members
GROUP BY story_id;
COMMENT ON VIEW v_stories IS
    'One row per story: its first copy (title, article, outlet, time), how many articles and outlets carried it, '
    'and the outlets in the order they first carried it.';
COMMENT ON COLUMN v_stories.first_seen_at IS 'Earliest published_at (else fetch time) among the story''s articles.';
COMMENT ON COLUMN v_stories.outlets IS 'Distinct outlets (articles.outlet) that carried the story.';
COMMENT ON COLUMN v_stories.outlet_list IS 'The outlets, in the order they first carried the story.';

CREATE VIEW v_statement_outlets AS
WITH s AS (
    SELECT a.story_id, st.id AS statement_id, st.quote, st.kind,
           coalesce(e.name, st.speaker) AS speaker,
           a.id AS article_id, a.outlet,
           coalesce(a.published_at, a.fetched_at) AS dated_at,
           btrim(lower(regexp_replace(st.quote, '\W+', ' ', 'g'))) AS quote_key
    FROM statements st
    JOIN articles a ON a.id = st.article_id
    LEFT JOIN entities e ON e.id = st.speaker_entity_id
    WHERE a.story_id IS NOT NULL
), ranked AS (
    SELECT s.*,
           row_number() OVER (PARTITION BY story_id, quote_key ORDER BY dated_at, article_id, statement_id) AS n,
           row_number() OVER (PARTITION BY story_id, quote_key, outlet ORDER BY dated_at, article_id) AS n_on_outlet
    FROM s
)
SELECT story_id,
       max(quote) FILTER (WHERE n = 1)                              AS quote,
       max(speaker) FILTER (WHERE n = 1)                            AS speaker,
       max(kind) FILTER (WHERE n = 1)                               AS kind,
       max(statement_id) FILTER (WHERE n = 1)                       AS first_statement_id,
       min(dated_at)                                                AS first_seen_at,
       count(*) FILTER (WHERE n_on_outlet = 1)                      AS outlets,
       count(DISTINCT article_id)                                   AS articles,
       array_agg(outlet ORDER BY dated_at, article_id) FILTER (WHERE n_on_outlet = 1) AS outlet_list
FROM ranked
GROUP BY story_id, quote_key;
COMMENT ON VIEW v_statement_outlets IS
    'Statements grouped per story: one row per quote (compared without case and punctuation) with the speaker '
    'of its first copy and the outlets that carried it, so a quote carried by 40 outlets is one row.';
COMMENT ON COLUMN v_statement_outlets.outlet_list IS 'The outlets that carried the quote, in the order they first did.';
