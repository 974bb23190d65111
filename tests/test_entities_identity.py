"""Cross-article identity in the database: linking rules, late merges, curation, --speaker.

Articles are written through ``store.write_analysis`` with hand-made clusters, so each test
says exactly which names an article holds and in which order articles arrive.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from pipeline import db, entity_admin, identity, store
from pipeline.analyse import Analysis
from pipeline.analyst import quotes
from pipeline.entities import Cluster, Mention

_n = itertools.count()


def article(conn, *names: tuple[str, str] | str) -> tuple[int, dict[str, int]]:
    """Store an article naming ``names`` (text, or (text, label); PERSON by default), one
    mention and one cluster each; returns its id and name -> entity id."""
    n = next(_n)
    text = " ".join(n if isinstance(n, str) else n[0] for n in names) + f" {n}"
    with conn.transaction():
        article_id = conn.execute(
            """
            INSERT INTO articles (url, title, text, language, raw_html, content_type, fetched_at, content_hash,
                                  word_count, extractor_version, nlp_version)
            VALUES (%(url)s, 't', %(text)s, 'en', '', 'text/plain', now(), %(hash)s, 1, 'test', 'test')
            RETURNING id
            """,
            {"url": f"https://example.test/{n}", "text": text, "hash": hashlib.sha256(text.encode()).hexdigest()},
        ).fetchone()[0]
        return article_id, relink(conn, article_id, names)


def relink(conn, article_id: int, names) -> dict[str, int]:
    clusters, mentions, at = {}, [], 0
    for i, item in enumerate(names):
        text, label = (item, "PERSON") if isinstance(item, str) else item
        clusters[i] = Cluster(id=i, label=label, name=text, aliases={text})
        mentions.append(Mention(at, at + len(text), text, label, i))
        at += len(text) + 1
    store.write_analysis(conn, article_id, Analysis(mentions=mentions, clusters=clusters))
    rows = conn.execute(
        "SELECT text, entity_id FROM entity_mentions WHERE article_id = %(id)s", {"id": article_id}
    ).fetchall()
    return dict(rows)


@pytest.fixture
def idb(conn):
    db.upgrade(conn)
    return conn


def canonical(conn, entity_id: int) -> int:
    return conn.execute("SELECT entity_canonical(%(id)s)", {"id": entity_id}).fetchone()[0]


def name_of(conn, entity_id: int) -> str:
    return conn.execute("SELECT name FROM entities WHERE id = entity_canonical(%(id)s)", {"id": entity_id}).fetchone()[
        0
    ]


def test_lone_surname_joins_the_one_person_with_it(idb):
    _a, first = article(idb, "Barack Obama")
    _b, later = article(idb, "Obama")
    assert later["Obama"] == first["Barack Obama"]


def test_a_surname_row_merges_when_the_full_name_arrives(idb):
    a, early = article(idb, "Obama")
    idb.execute(
        "INSERT INTO statements (article_id, kind, quote, quote_start, quote_end, speaker, speaker_entity_id, "
        "extractor_version) VALUES (%(a)s, 'direct', 'Yes we can', 0, 10, 'Obama', %(e)s, 'test')",
        {"a": a, "e": early["Obama"]},
    )
    _b, late = article(idb, "Barack Obama")
    survivor = late["Barack Obama"]
    assert canonical(idb, early["Obama"]) == survivor  # an old id still resolves
    merged = idb.execute("SELECT merged_into FROM entities WHERE id = %(id)s", {"id": early["Obama"]}).fetchone()
    assert merged == (survivor,)
    on = idb.execute("SELECT count(*) FROM entity_mentions WHERE entity_id = %(id)s", {"id": survivor}).fetchone()
    assert on == (2,)  # nothing lost: both mentions on the survivor
    said = idb.execute("SELECT speaker_entity_id FROM statements").fetchall()
    assert said == [(survivor,)]
    assert [q.speaker for q in quotes(idb, "Obama")] == [q.speaker for q in quotes(idb, "Barack Obama")]
    assert quotes(idb, "Barack Obama")[0].quote == "Yes we can"


def test_relatives_never_share_a_row(idb):
    for _ in range(4):
        article(idb, "Donald Trump")
    article(idb, "Melania Trump")
    article(idb, "Ivanka Trump")
    article(idb, "Donald Trump Jr.")
    article(idb, "Hillary Clinton")
    article(idb, "Bill Clinton")
    article(idb, "Barack Obama", "Michelle Obama")
    rows = idb.execute(
        "SELECT name FROM entities WHERE merged_into IS NULL AND label = 'PERSON' ORDER BY name"
    ).fetchall()
    assert [r[0] for r in rows] == [
        "Barack Obama",
        "Bill Clinton",
        "Donald Trump",
        "Donald Trump Jr.",
        "Hillary Clinton",
        "Ivanka Trump",
        "Melania Trump",
        "Michelle Obama",
    ]
    # "Trump" alone is the Trump who dominates the name; "Clinton" alone is nobody's yet.
    _x, lone = article(idb, "Trump", "Clinton")
    assert name_of(idb, lone["Trump"]) == "Donald Trump"
    assert name_of(idb, lone["Clinton"]) == "Clinton"


@pytest.mark.parametrize(
    "variants",
    [
        ["James B. Comey", "James Comey", "Comey"],
        ["Loretta E. Lynch", "Loretta Lynch"],
        ["Joe Biden", "Joseph R. Biden", "Joseph R. Biden Jr.", "Biden"],
        ["Chairperson Donna Brazile", "Donna Brazile"],
    ],
)
def test_one_person_however_written(idb, variants):
    ids = {article(idb, v)[1][v] for v in variants}
    assert len({canonical(idb, i) for i in ids}) == 1


def test_countries_organisations_and_labels(idb):
    ids = [
        article(idb, (name, label))[1][name]
        for name, label in [
            ("United States", "GPE"),
            ("U.S.", "GPE"),
            ("US", "ORG"),
            ("USA", "GPE"),
            ("America", "GPE"),
        ]
    ]
    assert {canonical(idb, i) for i in ids} == {canonical(idb, ids[0])}
    assert name_of(idb, ids[1]) == "United States"
    uk = [article(idb, (n, "GPE"))[1][n] for n in ("UK", "U.K.", "Britain", "United Kingdom")]
    assert len({canonical(idb, i) for i in uk}) == 1
    apple = [article(idb, (n, "ORG"))[1][n] for n in ("Apple Inc.", "Apple")]
    assert len({canonical(idb, i) for i in apple}) == 1
    # A person the recogniser tags ORG elsewhere is still that person.
    for _ in range(3):
        article(idb, "Donald Trump")
    _a, org = article(idb, ("Trump", "ORG"))
    assert name_of(idb, org["Trump"]) == "Donald Trump"
    # SpaceX tagged PERSON is the organisation.
    _b, first = article(idb, ("SpaceX", "ORG"))
    _c, again = article(idb, ("SpaceX", "PERSON"))
    assert canonical(idb, again["SpaceX"]) == canonical(idb, first["SpaceX"])


def _partition(conn) -> set[frozenset[str]]:
    rows = conn.execute("SELECT entity_id, text FROM entity_mentions").fetchall()
    groups: dict[int, set[str]] = {}
    for entity_id, text in rows:
        groups.setdefault(entity_id, set()).add(text)
    return {frozenset(g) for g in groups.values()}


ARTICLES = [
    ["Obama"],
    ["Barack Obama", "Michelle Obama"],
    ["Barack Obama"],
    ["Barack Obama"],
    ["Obama"],
    ["Comey"],
    ["James Comey"],
]


@pytest.mark.parametrize(
    "order", [ARTICLES, ARTICLES[::-1], ARTICLES[2:] + ARTICLES[:2], ARTICLES[1::2] + ARTICLES[::2]]
)
def test_the_outcome_does_not_depend_on_arrival_order(idb, order):
    for names in order:
        article(idb, *names)
    assert _partition(idb) == {
        frozenset({"Obama", "Barack Obama"}),
        frozenset({"Michelle Obama"}),
        frozenset({"Comey", "James Comey"}),
    }


def test_curation_wins_over_rules_and_survives_relinking(idb):
    a, first = article(idb, "Joe Biden")
    b, second = article(idb, "Hunter Biden")
    c, third = article(idb, ("Biden Foundation", "ORG"))
    d, fourth = article(idb, "Biden")  # Joe dominates nothing yet: Hunter is in play
    joe, hunter = first["Joe Biden"], second["Hunter Biden"]

    entity_admin.merge(idb, joe, [fourth["Biden"]])  # the analyst knows that "Biden" was Joe
    entity_admin.merge(idb, hunter, [third["Biden Foundation"]])  # (say) the row was Hunter's
    entity_admin.rename(idb, joe, "Joseph R. Biden Jr.")
    assert canonical(idb, fourth["Biden"]) == joe
    _e, fifth = article(idb, "Joe Biden", "Biden")
    split_off = entity_admin.split(idb, joe, "Biden")  # ... and changes their mind
    assert canonical(idb, fifth["Joe Biden"]) == joe

    # Relink every article, as reprocess does: the decisions hold.
    for article_id, names in [
        (a, ["Joe Biden"]),
        (b, ["Hunter Biden"]),
        (c, [("Biden Foundation", "ORG")]),
        (d, ["Biden"]),
    ]:
        with idb.transaction():
            got = relink(idb, article_id, names)
        entity = canonical(idb, next(iter(got.values())))
        assert entity == {a: joe, b: hunter, c: hunter, d: split_off}[article_id]
    shown = entity_admin.show(idb, third["Biden Foundation"])
    assert shown["id"] == hunter and [m["id"] for m in shown["merged"]] == [third["Biden Foundation"]]
    assert name_of(idb, joe) == "Joseph R. Biden Jr."
    listed = entity_admin.list_entities(idb, label="PERSON", like="biden")
    assert {r.name for r in listed} >= {"Hunter Biden", "Joseph R. Biden Jr.", "Biden"}


def test_lookup_resolves_what_an_analyst_types(idb):
    for _ in range(3):
        article(idb, "Barack Obama")
    article(idb, "Michelle Obama")
    barack = identity.lookup(idb, "Barack Obama")
    assert identity.lookup(idb, "Obama") == barack == identity.lookup(idb, "Mr. Obama")
    assert identity.lookup(idb, "Nobody Known") == []


def test_linking_lookups_use_indexes_not_scans(idb):
    """Resolution never scans ``entities``: every lookup of the candidate query is an index scan."""
    idb.execute(
        """
        INSERT INTO entities (name, label, key, surname, first_name, org_key, acronym, place_code, mention_count)
        SELECT 'Person ' || i, 'PERSON', 'person ' || i, 'surname' || (i % 5000), 'first' || i,
               NULL, NULL, NULL, i % 97
        FROM generate_series(1, 30000) AS i
        """
    )
    idb.execute(
        """
        INSERT INTO entities (name, label, key, org_key, acronym)
        SELECT 'Org ' || i, 'ORG', 'org ' || i, 'org ' || i, 'O' || (i % 900)
        FROM generate_series(1, 20000) AS i
        """
    )
    idb.execute("ANALYZE entities")
    plan = "\n".join(
        r[0]
        for r in idb.execute(
            "EXPLAIN " + identity.CANDIDATES,
            {
                "surnames": ["surname17", "obama"],
                "org_keys": ["org 5"],
                "acronyms": ["GM"],
                "codes": ["US"],
                "keys": ["barack obama", "obama"],
            },
        )
    )
    assert "Seq Scan on entities" not in plan, plan
