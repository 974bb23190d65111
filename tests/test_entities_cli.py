"""A database linked by the old rules is consolidated without losing a mention; the entities commands."""

from __future__ import annotations

from pipeline import db
from pipeline.cli import main

from .test_entities_identity import article, canonical


def _old_rows(conn) -> dict[str, int]:
    """Rows as the old exact-name linker left them: one per spelling, no matching columns."""
    ids = {}
    for name, label, n in [
        ("Barack Obama", "PERSON", 5),
        ("Obama", "PERSON", 3),
        ("Obama", "ORG", 1),
        ("Michelle Obama", "PERSON", 1),
        ("James B. Comey", "PERSON", 2),
        ("James Comey", "PERSON", 4),
        ("US", "GPE", 3),
        ("U.S.", "GPE", 2),
        ("United States", "GPE", 6),
        ("Apple Inc.", "ORG", 1),
        ("Apple", "ORG", 2),
        ("Donald Trump", "PERSON", 9),
        ("Donald Trump Jr.", "PERSON", 2),
    ]:
        with conn.transaction():
            entity_id = conn.execute(
                "INSERT INTO entities (name, label, key, aliases) VALUES (%(n)s, %(l)s, lower(%(n)s), ARRAY[%(n)s]) "
                "RETURNING id",
                {"n": name, "l": label},
            ).fetchone()[0]
            article_id, _ = article(conn)
            for i in range(n):
                conn.execute(
                    'INSERT INTO entity_mentions (article_id, entity_id, text, label, start, "end") '
                    "VALUES (%(a)s, %(e)s, %(t)s, %(l)s, %(s)s, %(s)s + 1)",
                    {"a": article_id, "e": entity_id, "t": name, "l": label, "s": 10 + 2 * i},
                )
        ids[f"{name}/{label}"] = entity_id
    return ids


def test_consolidate_merges_old_split_rows_without_losing_a_mention(conn):
    db.upgrade(conn)
    ids = _old_rows(conn)
    before = conn.execute("SELECT count(*) FROM entity_mentions").fetchone()[0]
    from pipeline.identity import consolidate

    done = consolidate(conn)
    assert done["merged"] >= 6
    assert conn.execute("SELECT count(*) FROM entity_mentions").fetchone()[0] == before
    same = [
        ["Barack Obama/PERSON", "Obama/PERSON"],
        ["James B. Comey/PERSON", "James Comey/PERSON"],
        ["US/GPE", "U.S./GPE", "United States/GPE"],
        ["Apple Inc./ORG", "Apple/ORG"],
    ]
    for group in same:
        assert len({canonical(conn, ids[k]) for k in group}) == 1, group
    apart = ["Barack Obama/PERSON", "Michelle Obama/PERSON", "Donald Trump/PERSON", "Donald Trump Jr./PERSON"]
    assert len({canonical(conn, ids[k]) for k in apart}) == len(apart)
    counts = dict(
        conn.execute(
            "SELECT e.id, count(m.id) FROM entities e LEFT JOIN entity_mentions m ON m.entity_id = e.id "
            "WHERE e.merged_into IS NULL GROUP BY e.id"
        ).fetchall()
    )
    assert counts[canonical(conn, ids["Barack Obama/PERSON"])] == 9  # with "Obama" tagged ORG
    assert consolidate(conn)["merged"] == 0  # idempotent


def test_entities_commands(settings, monkeypatch, capsys, conn):
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    db.upgrade(conn)
    _a, first = article(conn, "Barack Obama")
    _b, second = article(conn, ("Obama Foundation", "ORG"))
    assert main(["entities", "list", "--label", "PERSON", "--like", "obama"]) == 0
    assert "Barack Obama" in capsys.readouterr().out
    assert main(["entities", "merge", str(first["Barack Obama"]), str(second["Obama Foundation"])]) == 0
    capsys.readouterr()
    assert main(["entities", "show", str(second["Obama Foundation"])]) == 0
    out = capsys.readouterr().out
    assert f"was merged into {first['Barack Obama']}" in out and "Obama Foundation" in out
    assert main(["entities", "rename", str(first["Barack Obama"]), "Barack H. Obama"]) == 0
    assert main(["entities", "split", str(first["Barack Obama"]), "--alias", "Obama Foundation"]) == 0
    capsys.readouterr()
    assert main(["entities", "list", "--like", "obama"]) == 0
    out = capsys.readouterr().out
    assert "Barack H. Obama" in out and "Obama Foundation" in out
    assert main(["entities", "show", "999999"]) == 2
    assert main(["entities", "consolidate"]) == 0
