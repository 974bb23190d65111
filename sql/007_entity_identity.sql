-- One canonical entity per real person, organisation and place across articles (issue 14).
--
-- Each entity row carries the parts it is matched by (a person's surname, first name, middle
-- initial and suffix; an organisation's name without legal form and its acronym; a country's
-- ISO code), every one indexed, so linking a mention is a few index lookups and never a scan.
-- Rows are never deleted when two prove to be one: the loser keeps its name and aliases and
-- points at the survivor (merged_into); its mentions and statements move to the survivor, and
-- an id an analyst saved still resolves (entity_canonical). Analysts' curation lives in
-- entity_overrides and wins over every rule, across reprocessing.

ALTER TABLE entities
    ADD COLUMN merged_into    bigint REFERENCES entities (id),
    ADD COLUMN merged_at      timestamptz,
    ADD COLUMN surname        text,
    ADD COLUMN first_name     text,
    ADD COLUMN middle_initial text,
    ADD COLUMN suffix         text,
    ADD COLUMN org_key        text,
    ADD COLUMN acronym        text,
    ADD COLUMN place_code     text,
    ADD COLUMN mention_count  bigint NOT NULL DEFAULT 0,
    ADD COLUMN name_locked    boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN entities.merged_into IS
    'The entity this row proved to be; NULL for a canonical row. Its mentions and statements moved there.';
COMMENT ON COLUMN entities.surname IS 'PERSON: folded last name ("van der beek"), or "prince andrew" for a titled name.';
COMMENT ON COLUMN entities.first_name IS 'PERSON: folded first name as first written; NULL for a surname alone.';
COMMENT ON COLUMN entities.middle_initial IS 'PERSON: middle initial when one was ever written.';
COMMENT ON COLUMN entities.suffix IS 'PERSON: generational suffix (jr, sr, ii, iii).';
COMMENT ON COLUMN entities.org_key IS 'Organisation name without legal form, article or punctuation (Apple Inc. -> apple).';
COMMENT ON COLUMN entities.acronym IS 'Initials of a multi-word name (General Motors -> GM).';
COMMENT ON COLUMN entities.place_code IS 'ISO 3166 alpha-2 code of a country (US, GB ...).';
COMMENT ON COLUMN entities.mention_count IS 'Mentions on this row now (kept by a trigger): which person dominates a surname.';
COMMENT ON COLUMN entities.name_locked IS 'An analyst named this entity (newsflow entities rename); rules never rename it.';

UPDATE entities e SET mention_count = c.n
FROM (SELECT entity_id, count(*) AS n FROM entity_mentions GROUP BY entity_id) c
WHERE c.entity_id = e.id;

CREATE INDEX entities_person_surname ON entities (surname) WHERE merged_into IS NULL AND surname IS NOT NULL;
CREATE INDEX entities_org_key ON entities (org_key) WHERE merged_into IS NULL AND org_key IS NOT NULL;
CREATE INDEX entities_acronym ON entities (acronym) WHERE merged_into IS NULL AND acronym IS NOT NULL;
CREATE INDEX entities_place_code ON entities (place_code) WHERE merged_into IS NULL AND place_code IS NOT NULL;
CREATE INDEX entities_key_any_label ON entities (key);  -- a name under any label, merged rows too
CREATE INDEX entities_merged_into ON entities (merged_into) WHERE merged_into IS NOT NULL;

-- Mention counts, kept per statement (one update per article, not per mention).
CREATE FUNCTION entity_mentions_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE entities e SET mention_count = e.mention_count + c.n
    FROM (SELECT entity_id, count(*) AS n FROM new_rows GROUP BY entity_id) c
    WHERE e.id = c.entity_id;
    RETURN NULL;
END $$;
CREATE FUNCTION entity_mentions_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE entities e SET mention_count = greatest(0, e.mention_count - c.n)
    FROM (SELECT entity_id, count(*) AS n FROM old_rows GROUP BY entity_id) c
    WHERE e.id = c.entity_id;
    RETURN NULL;
END $$;
CREATE TRIGGER entity_mentions_counted_insert AFTER INSERT ON entity_mentions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION entity_mentions_count_insert();
CREATE TRIGGER entity_mentions_counted_delete AFTER DELETE ON entity_mentions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION entity_mentions_count_delete();

-- The canonical row of any id, old or new.
CREATE FUNCTION entity_canonical(entity bigint) RETURNS bigint LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(id, merged_into, depth) AS (
        SELECT id, merged_into, 0 FROM entities WHERE id = entity
        UNION ALL
        SELECT e.id, e.merged_into, up.depth + 1 FROM entities e JOIN up ON e.id = up.merged_into
        WHERE up.depth < 50
    )
    SELECT id FROM up WHERE merged_into IS NULL LIMIT 1
$$;
COMMENT ON FUNCTION entity_canonical(bigint) IS 'The canonical entity id an old (merged) entity id now stands for.';

-- Merge one row into another: mentions, statements and aliases follow; history is kept.
CREATE FUNCTION entity_merge(loser bigint, survivor bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    target bigint := entity_canonical(survivor);
    moved  bigint;
BEGIN
    IF target IS NULL OR loser = target THEN
        RETURN target;
    END IF;
    UPDATE entity_mentions SET entity_id = target WHERE entity_id = loser;
    GET DIAGNOSTICS moved = ROW_COUNT;
    UPDATE statements SET speaker_entity_id = target WHERE speaker_entity_id = loser;
    UPDATE entities t SET
        aliases = ARRAY(SELECT DISTINCT a FROM unnest(t.aliases || l.aliases || ARRAY[l.name]) AS a ORDER BY a),
        mention_count = t.mention_count + moved,
        middle_initial = coalesce(t.middle_initial, l.middle_initial),
        first_name = coalesce(t.first_name, l.first_name)
    FROM entities l WHERE t.id = target AND l.id = loser;
    UPDATE entities SET merged_into = target, merged_at = now(), mention_count = 0 WHERE id = loser;
    UPDATE entities SET merged_into = target WHERE merged_into = loser;
    RETURN target;
END $$;
COMMENT ON FUNCTION entity_merge(bigint, bigint) IS
    'Merge entity loser into survivor: its mentions and statements move, aliases join, loser.merged_into = survivor.';

-- Analysts' curation: wins over every rule, survives reprocess.
CREATE TABLE entity_overrides (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('pin', 'merge', 'split', 'rename')),
    name_key   text,
    entity_id  bigint NOT NULL REFERENCES entities (id),
    other_id   bigint REFERENCES entities (id),
    value      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE entity_overrides IS
    'Analyst decisions about entity identity (newsflow entities merge/split/rename): a name pinned to an '
    'entity wins over the linking rules at every later run and reprocess.';
COMMENT ON COLUMN entity_overrides.name_key IS 'Folded name a pin applies to: a mention with this name links to entity_id.';
CREATE INDEX entity_overrides_name ON entity_overrides (name_key) WHERE kind = 'pin';
CREATE INDEX entity_overrides_entity ON entity_overrides (entity_id);
CREATE INDEX entity_overrides_other ON entity_overrides (other_id) WHERE other_id IS NOT NULL;

-- Entities as analysts see them: canonical rows only, with how they are written.
CREATE VIEW v_entities AS
SELECT e.id AS entity_id, e.name, e.label, e.aliases, e.mention_count AS mentions,
       e.surname, e.first_name, e.middle_initial, e.suffix, e.org_key, e.acronym, e.place_code,
       (SELECT array_agg(o.id ORDER BY o.id) FROM entities o WHERE o.merged_into = e.id) AS merged_ids
FROM entities e
WHERE e.merged_into IS NULL;
COMMENT ON VIEW v_entities IS
    'Canonical entities (one per real person, organisation, place): name, label, aliases, mention count, '
    'and the ids of rows merged into it (an old id resolves with entity_canonical(id)).';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_analyst') THEN
        GRANT SELECT ON v_entities, entity_overrides TO newsflow_analyst;
        GRANT EXECUTE ON FUNCTION entity_canonical(bigint) TO newsflow_analyst;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_loader') THEN
        GRANT SELECT, INSERT, UPDATE ON entity_overrides TO newsflow_loader;
        GRANT USAGE ON SEQUENCE entity_overrides_id_seq TO newsflow_loader;
    END IF;
END $$;
