-- Article metadata at archive grade (issue 17): both publication dates and which one won,
-- authors as rows analysts can join, and each host's recurring lines.
--
-- * `published_at` stays the one date to filter and plot by; `page_published_at` is what the
--   page says (structured data, htmldate's search, the URL), `feed_published_at` what the feed
--   item said, and `published_at_source` which of them `published_at` holds (see
--   pipeline/dates.py `settle` and the README). Rows stored before this migration have NULL
--   in all three.
-- * `article_authors`: one row per author of an article, in byline order. `name_key` is the
--   parsed name (pipeline/names.py), the key a PERSON entity of the same name has.
-- * `host_line_fingerprints`: on how many stored pages of a host each line of text was seen
--   (a 64-bit fingerprint of the normalised line, pipeline/boilerplate.py). A short line seen
--   on enough other pages of its host is the site's, not the story's, and is left out of the
--   text stored from then on.

ALTER TABLE articles ADD COLUMN IF NOT EXISTS page_published_at timestamptz;
ALTER TABLE articles ADD COLUMN IF NOT EXISTS feed_published_at timestamptz;
ALTER TABLE articles ADD COLUMN IF NOT EXISTS published_at_source text;
ALTER TABLE articles DROP CONSTRAINT IF EXISTS articles_published_at_source_check;
ALTER TABLE articles ADD CONSTRAINT articles_published_at_source_check CHECK (
    published_at_source IN ('jsonld', 'meta', 'itemprop', 'time', 'htmldate', 'url', 'feed')
);
COMMENT ON COLUMN articles.published_at IS
    'Publication time: the page''s stated date (JSON-LD, meta tags, URL), else the feed''s; '
    'published_at_source says which.';
COMMENT ON COLUMN articles.page_published_at IS
    'Publication time the page gives: structured data, else htmldate''s search of the page, else the URL''s day.';
COMMENT ON COLUMN articles.feed_published_at IS 'Publication time the feed item (or sitemap, archive listing) gave.';
COMMENT ON COLUMN articles.published_at_source IS
    'Where published_at comes from: jsonld, meta, itemprop, time (the page''s structured data), '
    'htmldate (inferred from the page), url (the day in the URL) or feed.';

CREATE TABLE IF NOT EXISTS article_authors (
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    position   smallint NOT NULL,
    name       text NOT NULL,
    name_key   text NOT NULL,
    PRIMARY KEY (article_id, position)
);
CREATE INDEX IF NOT EXISTS article_authors_name_key ON article_authors (name_key);
COMMENT ON TABLE article_authors IS
    'Authors of each article, in byline order. name_key is the parsed name (entities.key of the PERSON of that name).';

CREATE TABLE IF NOT EXISTS host_line_fingerprints (
    host          text NOT NULL,
    fingerprint   bigint NOT NULL,
    pages         integer NOT NULL DEFAULT 1,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, fingerprint)
);
COMMENT ON TABLE host_line_fingerprints IS
    'On how many stored pages of a host each line of article text was seen: the host''s recurring lines '
    '(newsletter boxes, standards notes, widget labels) are left out of text stored later.';
