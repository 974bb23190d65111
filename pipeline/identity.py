"""Cross-article entity identity in PostgreSQL: which ``entities`` row a cluster is.

``entities.find_mentions`` groups one article's mentions into clusters; this module links
each cluster to one canonical row across all articles, by explicit rules (``names``):

- an analyst's pin (``entity_overrides``) wins over everything;
- a country, however written (U.S., USA, America, United States), is its ISO code's row;
- a person's full name joins a compatible full name (same last name, the same or
  nickname-equal first name, no conflicting middle initial or suffix);
- a lone surname joins the one person who dominates that surname, and only when no other
  known person with it is in play; otherwise it stays a surname row until evidence arrives;
- an organisation joins its name without legal form (Apple Inc. = Apple), an acronym the one
  organisation it abbreviates;
- a name tagged with another label elsewhere joins the row it already has (one label per
  entity), and a name seen before under a row that was merged resolves to the survivor.

When evidence arrives late (a row made from a lone "Obama" and, later, Barack Obama), the
rows merge (``entity_merge`` in sql/007): mentions and statements follow the survivor and the
old row keeps ``merged_into``. Every lookup is one indexed query per article for all its
clusters; nothing scans ``entities``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from . import names
from .entities import Cluster, entity_key

DOMINANCE = 3  # a person "dominates" a surname with this many times the mentions of the next
PLACE_LABELS = {"GPE", "LOC"}
CROSS_LABELS = {"ORG", "GPE", "LOC", "FAC"}  # labels the recogniser confuses for one thing

_FIELDS = [
    "id",
    "label",
    "key",
    "name",
    "surname",
    "first_name",
    "middle_initial",
    "suffix",
    "org_key",
    "acronym",
    "place_code",
    "mention_count",
    "name_locked",
]


def _columns(t: str) -> str:
    """The columns a candidate row needs, from table alias ``t``; ``curated``: an analyst decided on it."""
    return ", ".join(f"{t}.{f}" for f in _FIELDS) + (
        f", (EXISTS (SELECT FROM entity_overrides o WHERE o.entity_id = {t}.id)"
        f" OR EXISTS (SELECT FROM entity_overrides o WHERE o.other_id = {t}.id)) AS curated"
    )


CANDIDATES = f"""
SELECT {_columns("e")}, NULL::text AS via_key FROM entities e
WHERE e.merged_into IS NULL AND e.surname = ANY(%(surnames)s)
UNION ALL
SELECT {_columns("e")}, NULL FROM entities e WHERE e.merged_into IS NULL AND e.org_key = ANY(%(org_keys)s)
UNION ALL
SELECT {_columns("e")}, NULL FROM entities e WHERE e.merged_into IS NULL AND e.acronym = ANY(%(acronyms)s)
UNION ALL
SELECT {_columns("e")}, NULL FROM entities e WHERE e.merged_into IS NULL AND e.place_code = ANY(%(codes)s)
UNION ALL
SELECT {_columns("c")}, e.key
FROM entities e JOIN entities c ON c.id = coalesce(e.merged_into, e.id)
WHERE e.key = ANY(%(keys)s)
"""

PINS = """
SELECT o.name_key, coalesce(e.merged_into, e.id)
FROM entity_overrides o JOIN entities e ON e.id = o.entity_id
WHERE o.kind = 'pin' AND o.name_key = ANY(%(keys)s)
ORDER BY o.id
"""

# New rows, several in one statement; a (label, key) already there returns that row.
UPSERT = """
INSERT INTO entities (name, label, key, aliases, surname, first_name, middle_initial, suffix, org_key,
                      acronym, place_code)
SELECT r.name, r.label, r.key, r.aliases, r.surname, r.first_name, r.middle_initial, r.suffix, r.org_key,
       r.acronym, r.place_code
FROM ROWS FROM (jsonb_to_recordset(%(rows)s) AS (
    name text, label text, key text, aliases text[], surname text, first_name text, middle_initial text,
    suffix text, org_key text, acronym text, place_code text)) WITH ORDINALITY AS r
ORDER BY r.ordinality
ON CONFLICT (label, key) DO UPDATE SET
    aliases = ARRAY(SELECT DISTINCT a FROM unnest(entities.aliases || EXCLUDED.aliases) AS a ORDER BY a),
    surname = coalesce(entities.surname, EXCLUDED.surname),
    first_name = coalesce(entities.first_name, EXCLUDED.first_name),
    middle_initial = coalesce(entities.middle_initial, EXCLUDED.middle_initial),
    org_key = coalesce(entities.org_key, EXCLUDED.org_key),
    acronym = coalesce(entities.acronym, EXCLUDED.acronym),
    place_code = coalesce(entities.place_code, EXCLUDED.place_code)
RETURNING id, label, key, merged_into
"""

# Rows a cluster joined: aliases, and what the name adds (a middle initial; a suffix-less
# name shows the suffix is optional; a fuller name becomes the display name unless locked).
UPDATE_JOINED = """
UPDATE entities e SET
    aliases = ARRAY(SELECT DISTINCT a FROM unnest(e.aliases || j.aliases) AS a ORDER BY a),
    middle_initial = coalesce(e.middle_initial, j.middle_initial),
    first_name = coalesce(e.first_name, j.first_name),
    suffix = CASE WHEN j.drop_suffix THEN NULL ELSE e.suffix END,
    surname = coalesce(e.surname, j.surname),
    org_key = coalesce(e.org_key, j.org_key),
    acronym = coalesce(e.acronym, j.acronym),
    place_code = coalesce(e.place_code, j.place_code),
    name = CASE WHEN NOT e.name_locked AND j.name IS NOT NULL THEN j.name ELSE e.name END
FROM (SELECT * FROM jsonb_to_recordset(%(rows)s) AS (
    id bigint, aliases text[], middle_initial text, first_name text, drop_suffix boolean, surname text,
    org_key text, acronym text, place_code text, name text)) j
WHERE e.id = j.id
  AND (NOT e.aliases @> j.aliases
       OR j.drop_suffix AND e.suffix IS NOT NULL
       OR e.middle_initial IS NULL AND j.middle_initial IS NOT NULL
       OR e.first_name IS NULL AND j.first_name IS NOT NULL
       OR e.surname IS NULL AND j.surname IS NOT NULL
       OR e.org_key IS NULL AND j.org_key IS NOT NULL
       OR e.place_code IS NULL AND j.place_code IS NOT NULL
       OR j.name IS NOT NULL AND NOT e.name_locked AND e.name IS DISTINCT FROM j.name)
"""

MERGE = "SELECT entity_merge(%(loser)s, %(survivor)s)"


@dataclass
class Plan:
    """What one cluster is, by the rules, before the database is asked."""

    cluster: Cluster
    label: str
    name: str
    key: str
    person: names.PersonName | None = None
    org_key: str | None = None
    acronym: str | None = None  # the cluster's own letters, when it is an acronym
    initials: str | None = None  # a multi-word organisation's initials
    place_code: str | None = None
    as_person: names.PersonName | None = None  # an ORG-tagged name that reads as a person's
    aliases: list[str] = field(default_factory=list)

    def new_row(self) -> dict[str, object]:
        p = self.person
        return {
            "name": self.name,
            "label": self.label,
            "key": self.key,
            "aliases": self.aliases,
            "surname": p.surname if p else None,
            "first_name": (p.first or None) if p and p.last else None,
            "middle_initial": (p.middle_initial or None) if p else None,
            "suffix": (p.suffix or None) if p else None,
            "org_key": self.org_key,
            "acronym": self.initials or None,
            "place_code": self.place_code,
        }


def plan(cluster: Cluster) -> Plan:
    name = names.clean(cluster.name) or cluster.name
    label = cluster.label
    aliases = sorted({a for a in cluster.aliases | {cluster.name} if a})
    code = names.place_code(name) if label in PLACE_LABELS or names.as_acronym(name) or label == "ORG" else None
    if code and (label in PLACE_LABELS or label == "ORG" and names.as_acronym(name)):
        pretty = names.place_name(code)
        return Plan(cluster, "GPE", pretty, entity_key(pretty), place_code=code, aliases=aliases)
    if label == "PERSON" and names.is_not_a_person(name):
        label = "ORG"
    if label == "PERSON":
        person = names.parse_person(name)
        if person.last or person.title:
            return Plan(cluster, label, _without_titles(name, person), person.key(), person=person, aliases=aliases)
    out = Plan(cluster, label, name, entity_key(name), aliases=aliases)
    if label in CROSS_LABELS:
        out.org_key = names.org_key(name) or None
        out.acronym = names.as_acronym(name) or None
        out.initials = names.acronym_of(name) or None
        words = name.split()
        if 2 <= len(words) <= 3 and all(w[:1].isupper() and w[1:].islower() for w in words):
            person = names.parse_person(name)
            out.as_person = person if person.is_full else None
    return out


def _without_titles(name: str, person: names.PersonName) -> str:
    """ "Chairperson Donna Brazile" -> "Donna Brazile": the name from its first name on."""
    if person.title or not person.first:
        return name
    words = name.split()
    for i, w in enumerate(words):
        if names.fold(w).rstrip(".") == person.first:
            return " ".join(words[i:])
    return name


def link(conn: psycopg.Connection, clusters: Iterable[Cluster]) -> dict[int, int]:
    """Cluster id -> canonical entity id for one article's clusters (inside its transaction)."""
    plans = [plan(c) for c in sorted(clusters, key=lambda c: c.id)]
    if not plans:
        return {}
    folded = sorted(
        {names.fold(p.name) for p in plans} | {names.fold(p.cluster.name) for p in plans} | {p.key for p in plans}
    )
    lone_words = {p.key for p in plans if " " not in p.key}
    # One round trip for both lookups (pipeline mode).
    cur, pin_cur = conn.cursor(row_factory=dict_row), conn.cursor()
    with conn.pipeline():
        cur.execute(
            CANDIDATES,
            {
                "surnames": sorted(
                    {p.person.surname for p in plans if p.person}
                    | {p.as_person.surname for p in plans if p.as_person}
                    | lone_words
                ),
                "org_keys": sorted({p.org_key for p in plans if p.org_key}),
                "acronyms": sorted({p.acronym for p in plans if p.acronym} | {p.initials for p in plans if p.initials}),
                "codes": sorted({p.place_code for p in plans if p.place_code}),
                "keys": sorted({p.key for p in plans} | {names.org_key(p.name) for p in plans if p.org_key}),
            },
        )
        pin_cur.execute(PINS, {"keys": folded})
    rows = cur.fetchall()
    pins = dict(pin_cur.fetchall())
    cur.close()
    pin_cur.close()
    by_id: dict[int, dict] = {}
    by_key: dict[str, list[dict]] = {}
    for r in rows:  # a row found by several lookups comes once per lookup
        row = by_id.setdefault(r["id"], r)
        for k in (row["key"], r["via_key"]):
            if k is not None and all(x["id"] != row["id"] for x in by_key.setdefault(k, [])):
                by_key[k].append(row)
    candidates = list(by_id.values())

    out: dict[int, int] = {}
    joined: dict[int, dict[str, object]] = {}
    fresh: list[Plan] = []
    merges: list[tuple[int, int]] = []
    in_article: dict[str, dict[int, int]] = {}  # surname -> full-named people of this article
    for p in plans:
        pinned = next((pins[k] for k in (p.key, names.fold(p.name), names.fold(p.cluster.name)) if k in pins), None)
        target = pinned if pinned is not None else _decide(p, candidates, by_key)
        if target is None:
            fresh.append(p)
            continue
        out[p.cluster.id] = target
        row = by_id.get(target)
        _note_join(joined, target, p, row)
        if p.person is not None and p.person.is_full:
            people = in_article.setdefault(p.person.surname, {})
            people[target] = people.get(target, 0) + 1
        # The row this exact name made before, now known to be someone else's: one entity.
        for same in by_key.get(p.key, []):
            if same["id"] != target and same["label"] == p.label and _may_merge(same, p):
                merges.append((same["id"], target))

    if fresh:
        # One new row per thing: "AirTanker Ltd." and "AirTanker" in one article are one.
        new_rows: dict[tuple[str, str], dict[str, object]] = {}
        stands_for: dict[int, tuple[str, str]] = {}
        by_org: dict[str, tuple[str, str]] = {}
        for p in fresh:
            row_key = by_org.get(p.org_key, (p.label, p.key)) if p.org_key else (p.label, p.key)
            if p.org_key:
                by_org.setdefault(p.org_key, row_key)
            row = new_rows.setdefault(row_key, p.new_row())
            row["aliases"] = sorted(set(row["aliases"]) | set(p.aliases))  # type: ignore[arg-type]
            stands_for[p.cluster.id] = row_key
        upsert = conn.cursor()
        with conn.pipeline():  # the new rows and the joined rows' updates in one round trip
            upsert.execute(UPSERT, {"rows": Jsonb(list(new_rows.values()))})
            if joined:
                conn.execute(UPDATE_JOINED, {"rows": Jsonb(list(joined.values()))})
                joined = {}
        made = upsert.fetchall()
        upsert.close()
        ids = {(label, key): merged or entity_id for entity_id, label, key, merged in made}
        for p in fresh:
            target = ids[stands_for[p.cluster.id]]
            out[p.cluster.id] = target
            if p.person is not None and p.person.is_full:
                people = in_article.setdefault(p.person.surname, {})
                people[target] = people.get(target, 0) + 1
            if p.initials and p.label == "ORG":
                merges += _acronym_rows_to_merge(p.initials, target, candidates)
    for surname, people in in_article.items():
        merges += _surname_merges(surname, people, candidates)
    if joined:
        conn.execute(UPDATE_JOINED, {"rows": Jsonb(list(joined.values()))})
    done: set[int] = set()
    curated = {r["id"] for r in candidates if r["curated"]}
    for loser, survivor in merges:
        if loser not in done and loser != survivor and loser not in curated:
            conn.execute(MERGE, {"loser": loser, "survivor": survivor})
            done.add(loser)
    if done:  # a cluster linked to a row merged just now follows its survivor
        canonical = dict(
            conn.execute(
                "SELECT id, entity_canonical(id) FROM unnest(%(ids)s::bigint[]) AS id",
                {"ids": sorted(set(out.values()))},
            ).fetchall()
        )
        out = {c: canonical.get(e) or e for c, e in out.items()}
    return out


def _decide(p: Plan, candidates: list[dict], by_key: dict[str, list[dict]]) -> int | None:
    """The existing row this cluster is, by the rules; None for a new row."""
    if p.place_code:
        rows = [r for r in candidates if r["place_code"] == p.place_code] or [
            r for r in by_key.get(p.key, []) if r["label"] in PLACE_LABELS
        ]
        return _most_mentioned(rows)
    if p.person is not None:
        return _decide_person(p.person, candidates, by_key, p)
    if p.as_person is not None:
        # A person's full name tagged ORG here is still that person.
        fits = [
            r
            for r in candidates
            if r["label"] == "PERSON" and r["first_name"] and names.compatible(p.as_person, _row_person(r))
        ]
        if fits:
            return _most_mentioned(fits)
    if " " not in p.key and p.label in {"ORG", "GPE"} and not p.acronym:
        # A single word of another label may be a person's surname ("Trump" tagged ORG), unless
        # the word is better known as an organisation or place ("Ford").
        person = _dominant_person(p.key, candidates)
        if person is not None:
            rivals = [
                r for r in by_key.get(p.key, []) + candidates if r["label"] != "PERSON" and r["org_key"] == p.org_key
            ]
            if by_id_count(person, candidates) > max((r["mention_count"] for r in rivals), default=-1):
                return person
    if p.acronym:
        rows = [r for r in candidates if r["acronym"] == p.acronym and r["label"] in CROSS_LABELS]
        best = _dominant(rows)
        if best is not None:
            return best
    if p.org_key:
        rows = [r for r in candidates if r["org_key"] == p.org_key and r["label"] in CROSS_LABELS]
        rows = rows or [r for r in by_key.get(p.org_key, []) if r["label"] == p.label]
        if rows:
            same = [r for r in rows if r["label"] == p.label]
            return _most_mentioned(same or rows)
    rows = by_key.get(p.key, [])
    same = [r for r in rows if r["label"] == p.label]
    if same:
        return _most_mentioned(same)
    if p.label in CROSS_LABELS:
        cross = [r for r in rows if r["label"] in CROSS_LABELS]
        if cross:
            return _most_mentioned(cross)
    return None


def _decide_person(
    person: names.PersonName, candidates: list[dict], by_key: dict[str, list[dict]], p: Plan
) -> int | None:
    people = [r for r in candidates if r["label"] == "PERSON" and r["surname"] == person.surname]
    if person.is_full:
        fits = [r for r in people if r["first_name"] and names.compatible(person, _row_person(r))]
        if fits:
            exact = [r for r in fits if r["key"] == p.key or (r["suffix"] or "") == person.suffix]
            return _most_mentioned(exact or fits)
        # "Northrop Grumman" tagged PERSON here, known as an organisation: that organisation.
        known = [r for r in by_key.get(p.key, []) if r["label"] in CROSS_LABELS]
        return _most_mentioned(known)
    if person.title and not person.last:  # "Prince Andrew": the title is part of the name
        rows = [r for r in by_key.get(p.key, []) if r["label"] == "PERSON"]
        return _most_mentioned(rows)
    dominant = _dominant_person(person.surname, candidates)
    if dominant is not None:
        return dominant
    # A single word no full-named person owns, known as an organisation or place ("Ryanair"):
    # that row; else the surname's own row until a full name claims it.
    other = [r for r in by_key.get(p.key, []) if r["label"] in CROSS_LABELS - PLACE_LABELS]
    if other:  # a place is not a person's surname row ("Jordan")
        return _most_mentioned(other)
    lone = [r for r in people if not r["first_name"]]
    return _most_mentioned(lone)


def by_id_count(entity_id: int, candidates: list[dict]) -> int:
    return next((r["mention_count"] for r in candidates if r["id"] == entity_id), 0)


def _row_person(r: dict) -> names.PersonName:
    return names.PersonName("", r["first_name"] or "", r["middle_initial"] or "", r["surname"] or "", r["suffix"] or "")


def _dominant_person(surname: str, candidates: list[dict]) -> int | None:
    """The one full-named person who dominates ``surname``, if there is one."""
    people = [r for r in candidates if r["label"] == "PERSON" and r["surname"] == surname and r["first_name"]]
    return _dominant(people)


def _dominant(rows: list[dict]) -> int | None:
    if not rows:
        return None
    ranked = sorted(rows, key=lambda r: (-r["mention_count"], r["id"]))
    if len(ranked) == 1:
        return ranked[0]["id"]
    top, second = ranked[0]["mention_count"], ranked[1]["mention_count"]
    return ranked[0]["id"] if top >= DOMINANCE * max(second, 1) and top >= 3 else None


def _most_mentioned(rows: list[dict]) -> int | None:
    if not rows:
        return None
    return min(rows, key=lambda r: (-r["mention_count"], r["id"]))["id"]


def _may_merge(row: dict, p: Plan) -> bool:
    """An exact-name row may fold into the rule's choice: a lone surname or an organisation name."""
    if p.person is not None:
        return not p.person.is_full and not row["first_name"] and not p.person.title
    return bool(p.org_key or p.place_code)


def _surname_merges(surname: str, in_article: dict[int, int], candidates: list[dict]) -> list[tuple[int, int]]:
    """Rows made from a lone surname that now belong to the person who dominates it.

    Evaluated whenever an article names a person with this surname, with that article's
    people counted in: the surname's row joins once one person dominates it (and the people in
    play with that surname are counted), whatever order the articles came in.
    """
    counts = {
        r["id"]: r["mention_count"]
        for r in candidates
        if r["label"] == "PERSON" and r["surname"] == surname and r["first_name"]
    }
    for target, n in in_article.items():
        counts[target] = counts.get(target, 0) + n
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return []
    top, n = ranked[0]
    if len(ranked) > 1 and not (n >= DOMINANCE * max(ranked[1][1], 1) and n >= 3):
        return []
    return [
        (r["id"], top)
        for r in candidates
        if r["id"] != top
        and not r["first_name"]
        and r["key"] == surname
        and (r["label"] == "PERSON" or (r["label"] in CROSS_LABELS and r["mention_count"] * DOMINANCE <= n))
    ]


def _acronym_rows_to_merge(initials: str, target: int, candidates: list[dict]) -> list[tuple[int, int]]:
    """Rows made from an acronym alone ("GM") once the one organisation it abbreviates exists."""
    others = [r for r in candidates if r["acronym"] == initials and r["id"] != target and r["label"] == "ORG"]
    if others:
        return []
    return [
        (r["id"], target)
        for r in candidates
        if r["id"] != target and r["label"] == "ORG" and r["key"] == initials.casefold() and r["acronym"] is None
    ]


def _note_join(joined: dict[int, dict[str, object]], target: int, p: Plan, row: dict | None) -> None:
    entry = joined.setdefault(
        target,
        {
            "id": target,
            "aliases": [],
            "middle_initial": None,
            "first_name": None,
            "drop_suffix": False,
            "surname": None,
            "org_key": None,
            "acronym": None,
            "place_code": None,
            "name": None,
        },
    )
    entry["aliases"] = sorted(set(entry["aliases"]) | set(p.aliases))  # type: ignore[arg-type]
    person = p.person
    if person is not None and person.is_full and row is not None and row["label"] == "PERSON":
        entry["middle_initial"] = entry["middle_initial"] or person.middle_initial or None
        if not row["first_name"]:
            entry["first_name"] = person.first
            entry["name"] = p.name  # a surname row learns who it is
        if row["suffix"] and not person.suffix:
            entry["drop_suffix"] = True
    if row is not None and row["surname"] is None and person is not None:
        entry["surname"] = person.surname
    if row is not None and p.place_code and row["place_code"] is None:
        entry["place_code"] = p.place_code
        entry["name"] = p.name
    if row is not None and p.org_key and row["org_key"] is None and row["label"] == p.label:
        entry["org_key"] = p.org_key
        entry["acronym"] = p.initials


def lookup(conn: psycopg.Connection, text: str) -> list[int]:
    """Canonical entities a name typed by an analyst stands for, by the linking rules.

    "Obama" and "Barack Obama" give the same row: a lone surname is the person who dominates
    it (all of its people when none does), a full name every compatible full name, "US" the
    country. Read-only; an empty list when nothing is known by that name.
    """
    p = plan(Cluster(id=0, label="PERSON", name=text.strip(), aliases={text.strip()}))
    if p.label == "PERSON" and p.person is None:
        p = plan(Cluster(id=0, label="ORG", name=text.strip(), aliases={text.strip()}))
    keys = sorted({p.key, names.fold(text), names.org_key(text)})
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            CANDIDATES,
            {
                "surnames": sorted({p.person.surname} if p.person else {names.fold(text)}),
                "org_keys": [names.org_key(text)],
                "acronyms": [names.as_acronym(text)] if names.as_acronym(text) else [],
                "codes": [p.place_code] if p.place_code else [],
                "keys": keys,
            },
        ).fetchall()
    pins = dict(conn.execute(PINS, {"keys": keys}).fetchall())
    if pins:
        return sorted(set(pins.values()))
    if p.place_code:
        return sorted({r["id"] for r in rows if r["place_code"] == p.place_code})
    if p.person is not None and p.person.is_full:
        return sorted(
            {
                r["id"]
                for r in rows
                if r["label"] == "PERSON" and r["first_name"] and names.compatible(p.person, _row_person(r))
            }
            | {r["id"] for r in rows if r["via_key"] == p.key}
        )
    if p.person is not None and not p.person.title:
        dominant = _dominant_person(p.person.surname, rows)
        if dominant is not None:
            return [dominant]
        people = {r["id"] for r in rows if r["label"] == "PERSON" and r["surname"] == p.person.surname}
        if people:
            return sorted(people)
    return sorted({r["id"] for r in rows if r["via_key"] in keys or r["org_key"] == names.org_key(text)})


BACKFILL_BATCH = 2000


def consolidate(conn: psycopg.Connection) -> dict[str, int]:
    """Bring a database linked by older rules to one row per thing, without losing a mention.

    Fills the matching columns of rows made before migration 7, then merges (``entity_merge``,
    so every merged row keeps ``merged_into`` and its mentions and statements move): rows of
    one country; compatible full names of a person; a lone surname into the person who
    dominates it; organisations with one name without legal form. Rows an analyst decided on
    are left alone. Idempotent; ``newsflow entities consolidate`` and ``newsflow db upgrade``
    run it.
    """
    filled = _backfill_columns(conn)
    merged = 0
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_columns('e')}, NULL::text AS via_key FROM entities e WHERE e.merged_into IS NULL"
        ).fetchall()
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["place_code"]:
            groups.setdefault(("place", r["place_code"]), []).append(r)
        elif r["label"] == "PERSON" and r["surname"]:
            groups.setdefault(("person", r["surname"]), []).append(r)
        elif r["org_key"] and r["label"] in CROSS_LABELS:
            groups.setdefault(("org", r["org_key"]), []).append(r)
    for (kind, value), members in list(groups.items()):
        if kind == "org" and " " not in value and ("person", value) in groups:
            # "Obama" tagged ORG: the person's, when a person dominates the name (decided below).
            groups[("person", value)] += members
            del groups[(kind, value)]
    for (kind, _value), members in sorted(groups.items()):
        pairs = _group_merges(kind, members)
        if not pairs:
            continue
        with conn.transaction():
            for loser, survivor in pairs:
                conn.execute(MERGE, {"loser": loser, "survivor": survivor})
                merged += 1
    return {"filled": filled, "merged": merged}


def _group_merges(kind: str, members: list[dict]) -> list[tuple[int, int]]:
    members = [r for r in members if not r["curated"]]
    ranked = sorted(members, key=lambda r: (-r["mention_count"], r["id"]))
    if len(ranked) < 2:
        return []
    if kind in ("place", "org"):
        return [(r["id"], ranked[0]["id"]) for r in ranked[1:]]
    # People: compatible full names join the most mentioned of them; then the lone surname.
    heads: list[tuple[dict, int]] = []  # (representative row, total mentions)
    pairs: list[tuple[int, int]] = []
    for r in ranked:
        if not r["first_name"]:
            continue
        person = _row_person(r)
        for i, (head, total) in enumerate(heads):
            if names.compatible(person, _row_person(head)):
                pairs.append((r["id"], head["id"]))
                heads[i] = (head, total + r["mention_count"])
                break
        else:
            heads.append((r, r["mention_count"]))
    heads.sort(key=lambda h: -h[1])
    lone = [r for r in ranked if not r["first_name"]]
    if heads and lone:
        top = heads[0][1]
        second = heads[1][1] if len(heads) > 1 else 0
        if len(heads) == 1 or (top >= DOMINANCE * max(second, 1) and top >= 3):
            pairs += [
                (r["id"], heads[0][0]["id"])
                for r in lone
                if r["label"] == "PERSON" or r["mention_count"] * DOMINANCE <= top
            ]
    elif not heads and len(lone) > 1:
        people = [r for r in lone if r["label"] == "PERSON"]
        orgs = [r for r in lone if r["label"] != "PERSON"]
        keep = (orgs or people)[0]
        pairs += [(r["id"], keep["id"]) for r in lone if r is not keep and r["label"] == keep["label"]]
    return pairs


_FILL = """
UPDATE entities e SET surname = f.surname, first_name = f.first_name, middle_initial = f.middle_initial,
    suffix = f.suffix, org_key = f.org_key, acronym = f.acronym, place_code = f.place_code
FROM jsonb_to_recordset(%(rows)s) AS f(id bigint, surname text, first_name text, middle_initial text,
    suffix text, org_key text, acronym text, place_code text)
WHERE e.id = f.id
"""


def _backfill_columns(conn: psycopg.Connection) -> int:
    """Matching columns for rows that have none (made before migration 7), in batches by id."""
    done, last = 0, 0
    while True:
        batch = conn.execute(
            """
            SELECT id, label, name FROM entities
            WHERE id > %(last)s AND merged_into IS NULL
              AND surname IS NULL AND org_key IS NULL AND place_code IS NULL
            ORDER BY id LIMIT %(n)s
            """,
            {"last": last, "n": BACKFILL_BATCH},
        ).fetchall()
        if not batch:
            return done
        fills = []
        for entity_id, label, name in batch:
            p = plan(Cluster(id=0, label=label, name=name, aliases={name}))
            row = p.new_row()
            if p.label != label and not (p.place_code and label in CROSS_LABELS | {"PERSON"}):
                row.update(surname=None, first_name=None, middle_initial=None, suffix=None)
            fills.append({"id": entity_id, **{k: row[k] for k in _FILL_FIELDS}})
        with conn.transaction():
            conn.execute(_FILL, {"rows": Jsonb(fills)})
        done += len(fills)
        last = batch[-1][0]


_FILL_FIELDS = ("surname", "first_name", "middle_initial", "suffix", "org_key", "acronym", "place_code")
