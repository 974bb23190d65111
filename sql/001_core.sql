-- newsflow core schema: feeds, the item ledger, articles and what is extracted from them.
-- Run bookkeeping lives in schema "ops" so the analysts' tables stay stable across reruns.

CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE feeds (
    id                   bigserial PRIMARY KEY,
    url                  text NOT NULL,
    url_key              text GENERATED ALWAYS AS (md5(url)) STORED UNIQUE,
    title                text,
    site_url             text,
    etag                 text,
    last_modified        text,
    last_fetched_at      timestamptz,
    last_success_at      timestamptz,
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'failing', 'disabled')),
    enabled              boolean NOT NULL DEFAULT true,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error_reason    text,
    last_error           text,
    disabled_reason      text,
    next_poll_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE feeds IS 'RSS/Atom feeds newsflow follows, with their HTTP cache validators and health.';

CREATE TABLE articles (
    id                bigserial PRIMARY KEY,
    url               text NOT NULL,
    url_key           text GENERATED ALWAYS AS (md5(url)) STORED UNIQUE,
    feed_id           bigint REFERENCES feeds (id) ON DELETE SET NULL,
    title             text,
    text              text NOT NULL,
    published_at      timestamptz,
    author            text,
    language          text,
    site_name         text,
    description       text,
    raw_html          bytea NOT NULL,
    content_type      text,
    fetched_at        timestamptz NOT NULL,
    content_hash      text NOT NULL UNIQUE,
    word_count        integer NOT NULL DEFAULT 0,
    extractor_version text NOT NULL,
    nlp_version       text,
    nlp_skipped       text,
    processed_at      timestamptz,
    stored_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE articles IS 'One row per article: canonical URL, clean text, metadata and the raw HTML it came from.';
COMMENT ON COLUMN articles.url IS 'Canonical URL: tracking parameters (utm_*, fbclid ...) and fragment removed.';
COMMENT ON COLUMN articles.raw_html IS 'The page bytes as fetched, kept so extraction can be rerun without refetching.';
COMMENT ON COLUMN articles.content_hash IS 'sha256 of the normalised text; the same text under another URL is a duplicate.';
COMMENT ON COLUMN articles.nlp_skipped IS 'Why entity and statement extraction did not run (e.g. not_english), else NULL.';
CREATE INDEX articles_published_at ON articles (published_at);
CREATE INDEX articles_feed ON articles (feed_id);

CREATE TABLE entities (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    label      text NOT NULL,
    key        text NOT NULL,
    aliases    text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (label, key)
);
COMMENT ON TABLE entities IS 'One row per canonical real-world entity (person, organisation, place, group), across articles.';
CREATE INDEX entities_surname ON entities (label, split_part(key, ' ', -1));
COMMENT ON COLUMN entities.key IS 'Normalised name used for matching: case-folded, no possessive, no leading "the".';

CREATE TABLE entity_mentions (
    id         bigserial PRIMARY KEY,
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    entity_id  bigint NOT NULL REFERENCES entities (id),
    text       text NOT NULL,
    label      text NOT NULL,
    start      integer NOT NULL,
    "end"      integer NOT NULL,
    UNIQUE (article_id, start, "end")
);
COMMENT ON TABLE entity_mentions IS 'Every surface mention of an entity; start/end are character offsets into articles.text.';
CREATE INDEX entity_mentions_entity ON entity_mentions (entity_id);

CREATE TABLE statements (
    id                bigserial PRIMARY KEY,
    article_id        bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('direct', 'indirect', 'mixed')),
    quote             text NOT NULL,
    quote_start       integer NOT NULL,
    quote_end         integer NOT NULL,
    speaker           text,
    speaker_mention   text,
    speaker_start     integer,
    speaker_end       integer,
    speaker_entity_id bigint REFERENCES entities (id),
    cue               text,
    cue_start         integer,
    cue_end           integer,
    extractor_version text NOT NULL,
    UNIQUE (article_id, quote_start, quote_end)
);
COMMENT ON TABLE statements IS 'Who said what: quotes and reported speech with their speaker and reporting verb (cue).';
COMMENT ON COLUMN statements.kind IS 'direct (verbatim in quote marks), indirect (reported speech), mixed (reported speech with a quoted fragment).';
COMMENT ON COLUMN statements.quote IS 'The reported content without quote marks; quote_start/quote_end are offsets into articles.text.';
COMMENT ON COLUMN statements.speaker IS 'Canonical speaker name, or the speaker mention text when it resolves to no entity.';
COMMENT ON COLUMN statements.speaker_mention IS 'The speaker as written at the attribution ("he", "Peskov", "the spokesman").';
CREATE INDEX statements_article ON statements (article_id);
CREATE INDEX statements_speaker_entity ON statements (speaker_entity_id);

CREATE TABLE feed_items (
    id            bigserial PRIMARY KEY,
    feed_id       bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    item_key      text NOT NULL,
    guid          text,
    url           text,
    title         text,
    published_at  timestamptz,
    state         text NOT NULL CHECK (state IN ('stored', 'duplicate', 'quarantined')),
    reason        text,
    message       text,
    transient     boolean NOT NULL DEFAULT false,
    article_id    bigint REFERENCES articles (id) ON DELETE SET NULL,
    attempts      integer NOT NULL DEFAULT 1,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (feed_id, item_key),
    CHECK ((state = 'quarantined') = (reason IS NOT NULL))
);
COMMENT ON TABLE feed_items IS 'The item ledger: every feed item ever seen and the state it ended in (stored, duplicate, quarantined with a reason).';
COMMENT ON COLUMN feed_items.reason IS 'Reason code for quarantine: see README "Reason codes".';
CREATE INDEX feed_items_state ON feed_items (state, reason);
CREATE INDEX feed_items_article ON feed_items (article_id);

CREATE TABLE ops.runs (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed')),
    feeds       integer NOT NULL DEFAULT 0,
    seen        integer NOT NULL DEFAULT 0,
    stored      integer NOT NULL DEFAULT 0,
    duplicate   integer NOT NULL DEFAULT 0,
    quarantined integer NOT NULL DEFAULT 0,
    unchanged   integer NOT NULL DEFAULT 0,
    message     text
);
COMMENT ON TABLE ops.runs IS 'One row per ingest/backfill/reprocess run with its ledger counts.';

CREATE TABLE ops.run_items (
    run_id  bigint NOT NULL REFERENCES ops.runs (id) ON DELETE CASCADE,
    item_id bigint NOT NULL REFERENCES feed_items (id) ON DELETE CASCADE,
    state   text NOT NULL,
    reason  text,
    PRIMARY KEY (run_id, item_id)
);
COMMENT ON TABLE ops.run_items IS 'What each run did with each item it processed; reconciles ops.runs counts.';
