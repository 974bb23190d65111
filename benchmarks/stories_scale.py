"""Print the cost of story lookup and insert with a million stored signatures.

    python benchmarks/stories_scale.py [--n 1000000] [--probes 200] [--aeb DIR]
                                       [--database-url URL] [--keep]

Fills a scratch PostgreSQL database (created on ``NEWSFLOW_TEST_DATABASE_URL`` or
127.0.0.1:5432, dropped afterwards unless ``--keep``) with ``--n`` articles, each in a story
of its own with a synthetic signature (random MinHash values) and its 64 band keys, the way
``store`` writes them; the bulk load is outside the timings. Then stores ``--probes`` real
texts (AEB pages, half of them as edited copies of the other half) through the production
functions, each in its own transaction like ``store_article``: the advisory locks on the band
keys, the index probe and confirmation (``store.matching_story``), the story, the signature
and the band rows. It prints the time per article of the signature, of the lookup and of the
insert (median and 95th percentile), whether every copy found its original, and the size of
the band table, its index and the signatures. It asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import scratch_database  # noqa: E402

from pipeline import db, store, stories  # noqa: E402

DEFAULT_AEB = ROOT.parent / "shared" / "data" / "aeb"
BATCH = 50_000


def bulk_load(conn: psycopg.Connection, n: int) -> float:
    """``n`` articles, stories, synthetic signatures and their band rows; returns seconds."""
    started = time.perf_counter()
    rng = np.random.default_rng(18)
    with conn.transaction():
        conn.execute("INSERT INTO stories (id) SELECT g FROM generate_series(1, %(n)s) g", {"n": n})
        conn.execute("SELECT setval(pg_get_serial_sequence('stories', 'id'), %(n)s)", {"n": n})
        conn.execute(
            """
            INSERT INTO articles (id, url, text, raw_html, fetched_at, content_hash, extractor_version,
                                  story_id, story_role)
            SELECT g, 'https://outlet' || (g %% 5000) || '.example/' || g, '', '', now() - g * interval '1 second',
                   md5(g::text), 'scale', g, 'first'
            FROM generate_series(1, %(n)s) g
            """,
            {"n": n},
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('articles', 'id'), %(n)s)", {"n": n})
    # band rows without their index, then the index built once: how a restore or a backfill
    # of this size is loaded; the timed inserts below go through the index.
    conn.execute("ALTER TABLE story_bands DROP CONSTRAINT story_bands_pkey")
    for first in range(1, n + 1, BATCH):
        last = min(n, first + BATCH - 1)
        count = last - first + 1
        values = rng.integers(0, 2**32, size=(count, stories.NUM_PERM), dtype=np.uint64).astype("<u4")
        keys = rng.integers(-(2**63), 2**63 - 1, size=(count, stories.BANDS), dtype=np.int64)
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY story_signatures (article_id, version, words, shingles, hashvalues) FROM STDIN") as cp:
                for i in range(count):
                    cp.write_row((first + i, stories.SIGNATURE_VERSION, 500, 480, values[i].tobytes()))
            with cur.copy("COPY story_bands (band_key, article_id) FROM STDIN") as cp:
                for i in range(count):
                    for key in keys[i]:
                        cp.write_row((int(key), first + i))
        print(f"  loaded {last:,} of {n:,} ({time.perf_counter() - started:.0f} s)", flush=True)
    conn.execute("ALTER TABLE story_bands ADD PRIMARY KEY (band_key, article_id)")
    conn.execute("VACUUM ANALYZE story_bands")
    conn.execute("VACUUM ANALYZE story_signatures")
    conn.execute("VACUUM ANALYZE articles")
    return time.perf_counter() - started


def probe_texts(aeb: Path, count: int) -> list[tuple[str, str, int | None]]:
    """(url, text, index of its original or None): originals, then edited copies of them."""
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    bodies = [v["articleBody"] for _k, v in sorted(truth.items()) if len(v["articleBody"].split()) >= 150]
    half = min(count // 2, len(bodies))
    out: list[tuple[str, str, int | None]] = [(f"https://wire.example/{i}", bodies[i], None) for i in range(half)]
    for i in range(half):
        words = bodies[i].split()
        copy = " ".join(words[: int(len(words) * 0.8)]) + " Copyright 2026 The Herald. All rights reserved."
        out.append((f"https://herald.example/{i}", copy, i))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="signatures stored before the probes")
    parser.add_argument("--probes", type=int, default=200, help="articles stored and timed")
    parser.add_argument("--aeb", type=Path, default=DEFAULT_AEB)
    parser.add_argument("--database-url", help="an existing, empty database (default: a scratch database)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    print(f"signature {stories.SIGNATURE_VERSION}; {args.n:,} stored signatures, {args.probes} timed articles")
    with scratch_database(args.database_url, args.keep, "newsflow_scale") as url, db.connect(url) as conn:
        db.upgrade(conn)
        print(f"bulk load: {bulk_load(conn, args.n):.0f} s")
        sign_ms, lookup_ms, insert_ms = [], [], []
        ids: dict[int, int] = {}
        found = 0
        for n, (link, text, original) in enumerate(probe_texts(args.aeb, args.probes)):
            started = time.perf_counter()
            sig = stories.signature(text)
            signed = time.perf_counter()
            digest = f"{n:064x}"
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO articles (url, text, raw_html, fetched_at, content_hash, extractor_version) "
                    "VALUES (%(url)s, %(text)s, '', now(), %(digest)s, 'scale') RETURNING id",
                    {"url": link, "text": text, "digest": digest},
                ).fetchone()
                article_id = row[0]
                before_lookup = time.perf_counter()
                store.lock_story_keys(conn, sig, digest)
                story_id = store.matching_story(conn, article_id, digest, sig)
                looked_up = time.perf_counter()
                if story_id is None:
                    story_id = conn.execute("INSERT INTO stories DEFAULT VALUES RETURNING id").fetchone()[0]
                    store.put_in_story(conn, article_id, story_id, new=True)
                else:
                    store.put_in_story(conn, article_id, story_id)
                store.sign_article(conn, article_id, sig)
                inserted = time.perf_counter()
            ids[n] = story_id
            if original is not None and ids.get(original) == story_id:
                found += 1
            sign_ms.append((signed - started) * 1000)
            lookup_ms.append((looked_up - before_lookup) * 1000)
            insert_ms.append((inserted - looked_up) * 1000)
        copies = sum(1 for *_x, o in probe_texts(args.aeb, args.probes) if o is not None)

        def show(name: str, values: list[float]) -> None:
            values = sorted(values)
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(f"  {name:<28} median {statistics.median(values):6.2f} ms   p95 {p95:6.2f} ms")

        print(f"per article, at {args.n:,} stored signatures:")
        show("signature (parent process)", sign_ms)
        show("lookup (locks, probe, confirm)", lookup_ms)
        show("insert (story, signature, bands)", insert_ms)
        show("lookup + insert", [a + b for a, b in zip(lookup_ms, insert_ms, strict=True)])
        print(f"copies that found their original: {found} of {copies}")
        sizes = conn.execute(
            """
            SELECT pg_size_pretty(pg_relation_size('story_bands')),
                   pg_size_pretty(pg_relation_size('story_bands_pkey')),
                   pg_size_pretty(pg_total_relation_size('story_signatures')),
                   (SELECT count(*) FROM story_bands)
            """
        ).fetchone()
        print(f"story_bands: {sizes[3]:,} rows, table {sizes[0]}, index {sizes[1]}; story_signatures {sizes[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
