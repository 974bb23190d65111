"""Analysts' curation of entities: list, show, merge, split, rename (``newsflow entities ...``).

Every decision is written to ``entity_overrides`` as well as applied, so it wins over the
linking rules (``identity``) at every later run and ``newsflow reprocess``: a merged row keeps
``merged_into``, a split-off name is pinned to its own row, a renamed row is locked.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row, dict_row

from . import names


class EntityError(ValueError):
    """An entity command that cannot be done as asked (unknown id, alias not on the entity)."""


@dataclass(frozen=True)
class EntityRow:
    id: int
    name: str
    label: str
    mentions: int
    aliases: list[str]


_LIST = """
SELECT id, name, label, mention_count AS mentions, aliases FROM entities
WHERE merged_into IS NULL
  AND (%(label)s::text IS NULL OR label = %(label)s)
  AND (%(like)s::text IS NULL OR name ILIKE %(like)s
       OR EXISTS (SELECT FROM unnest(aliases) a WHERE a ILIKE %(like)s))
ORDER BY mention_count DESC, id
LIMIT %(limit)s
"""


def list_entities(
    conn: psycopg.Connection, *, label: str | None = None, like: str | None = None, limit: int = 50
) -> list[EntityRow]:
    pattern = None
    if like:
        pattern = "%" + like.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with conn.cursor(row_factory=class_row(EntityRow)) as cur:
        return cur.execute(_LIST, {"label": label, "like": pattern, "limit": limit}).fetchall()


def canonical(conn: psycopg.Connection, entity_id: int) -> int:
    """The canonical id an id (maybe of a row merged since) stands for."""
    row = conn.execute("SELECT entity_canonical(%(id)s)", {"id": entity_id}).fetchone()
    if row is None or row[0] is None:
        raise EntityError(f"no entity {entity_id}")
    return int(row[0])


def show(conn: psycopg.Connection, entity_id: int) -> dict[str, object]:
    """One entity: its canonical row, where an old id went, rows merged into it, overrides, counts."""
    target = canonical(conn, entity_id)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """
            SELECT id, name, label, key, aliases, mention_count AS mentions, surname, first_name,
                   middle_initial, suffix, org_key, acronym, place_code, name_locked, created_at
            FROM entities WHERE id = %(id)s
            """,
            {"id": target},
        ).fetchone()
        assert row is not None
        row["asked"] = entity_id
        row["merged"] = cur.execute(
            "SELECT id, name, label, merged_at FROM entities WHERE merged_into = %(id)s ORDER BY id", {"id": target}
        ).fetchall()
        row["overrides"] = cur.execute(
            "SELECT id, kind, name_key, other_id, value, created_at FROM entity_overrides "
            "WHERE entity_id = %(id)s OR other_id = %(id)s ORDER BY id",
            {"id": target},
        ).fetchall()
        counts = cur.execute(
            """
            SELECT (SELECT count(DISTINCT article_id) FROM entity_mentions WHERE entity_id = %(id)s) AS articles,
                   (SELECT count(*) FROM statements WHERE speaker_entity_id = %(id)s) AS statements
            """,
            {"id": target},
        ).fetchone()
        row.update(counts or {})
    return row


def merge(conn: psycopg.Connection, survivor: int, others: list[int]) -> int:
    """Merge ``others`` into ``survivor``; their names are pinned to it from now on."""
    with conn.transaction():
        target = canonical(conn, survivor)
        for other in others:
            loser = canonical(conn, other)
            if loser == target:
                continue
            keys = conn.execute(
                "SELECT key, name, aliases FROM entities WHERE id = %(id)s OR merged_into = %(id)s", {"id": loser}
            ).fetchall()
            conn.execute("SELECT entity_merge(%(loser)s, %(survivor)s)", {"loser": loser, "survivor": target})
            conn.execute(
                "INSERT INTO entity_overrides (kind, entity_id, other_id) VALUES ('merge', %(t)s, %(o)s)",
                {"t": target, "o": loser},
            )
            for key, name, _aliases in keys:
                _pin(conn, key, target)
                _pin(conn, names.fold(name), target)
    return target


def split(conn: psycopg.Connection, entity_id: int, alias: str) -> int:
    """Move the mentions written ``alias`` (and statements by them) off an entity onto their own row.

    The alias is pinned to the new row, so no rule puts it back. Returns the new row's id.
    """
    folded = names.fold(names.clean(alias) or alias)
    with conn.transaction():
        source = canonical(conn, entity_id)
        label_row = conn.execute("SELECT label FROM entities WHERE id = %(id)s", {"id": source}).fetchone()
        assert label_row is not None
        label = label_row[0]
        moved = conn.execute(
            "SELECT count(*) FROM entity_mentions WHERE entity_id = %(id)s AND lower(text) = %(alias)s",
            {"id": source, "alias": folded},
        ).fetchone()
        aliases = conn.execute("SELECT aliases FROM entities WHERE id = %(id)s", {"id": source}).fetchone()
        known = {names.fold(a) for a in (aliases[0] if aliases else [])}
        if not (moved and moved[0]) and folded not in known:
            raise EntityError(f"entity {source} has no mention or alias {alias!r}")
        own_key = conn.execute("SELECT key FROM entities WHERE id = %(id)s", {"id": source}).fetchone()
        key = folded if own_key is None or own_key[0] != folded else f"{folded} #split from {source}"
        row = conn.execute(
            """
            INSERT INTO entities (name, label, key, aliases)
            VALUES (%(name)s, %(label)s, %(key)s, ARRAY[%(name)s])
            ON CONFLICT (label, key) DO UPDATE SET merged_into = NULL, merged_at = NULL
            RETURNING id
            """,
            {"name": names.clean(alias) or alias, "label": label, "key": key},
        ).fetchone()
        assert row is not None
        new_id = row[0]
        if new_id == source:
            raise EntityError(f"{alias!r} is the name of entity {source} itself; rename it instead")
        conn.execute(
            "UPDATE entity_mentions SET entity_id = %(new)s WHERE entity_id = %(old)s AND lower(text) = %(alias)s",
            {"new": new_id, "old": source, "alias": folded},
        )
        conn.execute(
            """
            UPDATE statements SET speaker_entity_id = %(new)s
            WHERE speaker_entity_id = %(old)s AND (lower(speaker_mention) = %(alias)s OR lower(speaker) = %(alias)s)
            """,
            {"new": new_id, "old": source, "alias": folded},
        )
        conn.execute(
            """
            UPDATE entities SET mention_count = (SELECT count(*) FROM entity_mentions WHERE entity_id = entities.id),
                aliases = CASE WHEN id = %(old)s
                               THEN ARRAY(SELECT a FROM unnest(aliases) a WHERE lower(a) <> %(alias)s ORDER BY a)
                               ELSE aliases END
            WHERE id IN (%(old)s, %(new)s)
            """,
            {"old": source, "new": new_id, "alias": folded},
        )
        conn.execute(
            "INSERT INTO entity_overrides (kind, name_key, entity_id, other_id, value) "
            "VALUES ('split', %(key)s, %(new)s, %(old)s, %(alias)s)",
            {"key": folded, "new": new_id, "old": source, "alias": alias},
        )
        _pin(conn, folded, new_id)
    return new_id


def rename(conn: psycopg.Connection, entity_id: int, name: str) -> int:
    """Give an entity the name analysts see; rules never rename it afterwards."""
    if not name.strip():
        raise EntityError("a name cannot be empty")
    with conn.transaction():
        target = canonical(conn, entity_id)
        conn.execute(
            """
            UPDATE entities SET name = %(name)s, name_locked = true,
                aliases = ARRAY(SELECT DISTINCT a FROM unnest(aliases || ARRAY[name]) a ORDER BY a)
            WHERE id = %(id)s
            """,
            {"id": target, "name": name.strip()},
        )
        conn.execute(
            "INSERT INTO entity_overrides (kind, entity_id, value) VALUES ('rename', %(id)s, %(name)s)",
            {"id": target, "name": name.strip()},
        )
        _pin(conn, names.fold(name), target)
    return target


def _pin(conn: psycopg.Connection, name_key: str, entity_id: int) -> None:
    if name_key:
        conn.execute(
            "INSERT INTO entity_overrides (kind, name_key, entity_id) VALUES ('pin', %(key)s, %(id)s)",
            {"key": name_key, "id": entity_id},
        )
