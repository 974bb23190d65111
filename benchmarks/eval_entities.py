"""Print cross-document entity figures: MEANTIME coreference and a Wikinews person identity table.

    python benchmarks/eval_entities.py [--corpus meantime|wikinews|both] [--order given|reverse|shuffle]
                                       [--database-url URL] [--keep] [--rows N]

Each corpus is ingested into a scratch PostgreSQL database of its own (created on
``NEWSFLOW_TEST_DATABASE_URL`` or 127.0.0.1:5432 and dropped afterwards unless ``--keep``) through
the real path: spaCy, ``analyse_doc``, then ``store.write_analysis`` article by article, so the
cross-article linking an analyst sees is what is scored.

MEANTIME (../shared/data/meantime-en, CC BY 4.0): every gold entity mention whose head is a proper
noun and whose class is PER, ORG or LOC (the "named mentions") is aligned to the stored mention that
covers its head token; the stored mention's ``entity_id`` is the system cluster (a gold mention
no stored mention covers is a singleton). Scores: MUC, B³, CEAFe and their mean, the CoNLL F1.

Wikinews (../shared/data/wikinews, CC BY 2.5): for each person in benchmarks/wikinews_people.json,
the stored mentions written as one of their variants; the share of them on one row whose name is
the person's full name (a person passes at 95 %), and whether relatives ever share a row.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import scratch_database  # noqa: E402

from pipeline import db, store  # noqa: E402
from pipeline.analyse import analyse_doc  # noqa: E402
from pipeline.nlp import load_model  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PEOPLE = Path(__file__).resolve().parent / "wikinews_people.json"
NAMED_CLASSES = {"PER", "ORG", "LOC"}
PASS_SHARE = 0.95


# Corpora ---------------------------------------------------------------------------------------


def meantime_docs(folder: Path) -> tuple[list[tuple[str, str]], list[dict], dict]:
    """(doc key, text) in corpus order, the gold named mentions, and token char offsets.

    The text is rebuilt from the tokenised CoNLL file: the title and dateline as paragraphs
    of their own, then the sentences, tokens joined by spaces except before closing and
    after opening punctuation.
    """
    tokens: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    with (folder / "meantime.conll").open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 4:
                continue
            doc, sent, _tok, word = parts[0], int(parts[1]), int(parts[2]), parts[3]
            if doc not in tokens:
                order.append(doc)
            tokens[doc][sent].append(word)
    docs: list[tuple[str, str]] = []
    offsets: dict[tuple[str, int, int], tuple[int, int]] = {}
    no_space_before = {",", ".", ";", ":", "!", "?", ")", "]", "'s", "’s", "n't", "%", "'", "''"}
    no_space_after = {"(", "[", "$", "``"}
    for doc in order:
        text = ""
        for sent in sorted(tokens[doc]):
            if text:
                text += "\n\n" if sent <= 2 else " "
            prev = None
            for i, word in enumerate(tokens[doc][sent]):
                if prev is not None and word not in no_space_before and prev not in no_space_after:
                    text += " "
                offsets[(doc, sent, i)] = (len(text), len(text) + len(word))
                text += word
                prev = word
        docs.append((doc, text))
    gold = []
    for m in json.loads((folder / "entities_mentions.json").read_text(encoding="utf-8")):
        if m["mention_type"] in NAMED_CLASSES and m["mention_head_pos"] == "PROPN":
            head = offsets.get((m["conll_doc_key"], m["sent_id"], m["mention_head_id"]))
            if head is None:
                continue
            gold.append(
                {
                    "doc": m["conll_doc_key"],
                    "head": head,
                    "chain": m["coref_chain"].rsplit("_", 1)[-1],
                    "type": m["mention_type"],
                    "text": m["tokens_str"],
                }
            )
    return docs, gold, offsets


def wikinews_docs(folder: Path) -> list[tuple[str, str]]:
    csv.field_size_limit(1 << 30)
    out = []
    for path in sorted(folder.glob("wikinews_*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                out.append((row["url"], f"{row['title']}\n\n{row['text']}"))
    return out


# The scratch database --------------------------------------------------------------------------


def ingest(url: str, nlp, docs: list[tuple[str, str]]) -> dict[str, int]:
    """Store each document as an article with its analysis; returns doc key -> article id."""
    ids: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        db.upgrade(conn)
        texts = [text for _key, text in docs]
        for (key, text), doc in zip(docs, nlp.pipe(texts, batch_size=16), strict=True):
            analysis = analyse_doc(doc)
            with conn.transaction():
                row = conn.execute(
                    """
                    INSERT INTO articles (url, title, text, language, raw_html, content_type, fetched_at,
                                          content_hash, word_count, extractor_version, nlp_version)
                    VALUES (%(url)s, %(title)s, %(text)s, 'en', '', 'text/plain', now(),
                            %(hash)s, %(words)s, 'eval', %(nlp_version)s)
                    RETURNING id
                    """,
                    {
                        "url": f"https://eval.invalid/{hashlib.sha1(key.encode()).hexdigest()}",
                        "title": key,
                        "text": text,
                        "hash": hashlib.sha256(f"{key}\n{text}".encode()).hexdigest(),
                        "words": len(text.split()),
                        "nlp_version": analysis.version,
                    },
                ).fetchone()
                assert row is not None
                store.write_analysis(conn, row[0], analysis)
            ids[key] = row[0]
    return ids


def stored_mentions(url: str) -> list[tuple[int, int, int, int, str, str, str]]:
    """(article id, start, end, entity id, mention text, entity name, entity label)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            """
            SELECT m.article_id, m.start, m."end", m.entity_id, m.text, e.name, e.label
            FROM entity_mentions m JOIN entities e ON e.id = m.entity_id
            ORDER BY m.article_id, m.start
            """
        ).fetchall()


# Coreference scores ----------------------------------------------------------------------------


def muc(key: list[set], response: list[set]) -> tuple[float, float]:
    def recall(k: list[set], r: list[set]) -> float:
        where = {m: i for i, c in enumerate(r) for m in c}
        num = den = 0
        for cluster in k:
            parts = {where.get(m, ("alone", m)) for m in cluster}
            num += len(cluster) - len(parts)
            den += len(cluster) - 1
        return num / den if den else 0.0

    return recall(key, response), recall(response, key)


def b_cubed(key: list[set], response: list[set]) -> tuple[float, float]:
    def recall(k: list[set], r: list[set]) -> float:
        where = {m: c for c in r for m in c}
        total = sum(len(c) for c in k)
        return sum(len(c & where.get(m, {m})) / len(c) for c in k for m in c) / total if total else 0.0

    return recall(key, response), recall(response, key)


def _max_assignment(weights: list[list[float]]) -> float:
    """Largest total weight of a one-to-one assignment (Hungarian method, rows <= columns)."""
    n, m = len(weights), len(weights[0])
    cost = [[-w for w in row] for row in weights]
    inf = float("inf")
    u, v, p, way = [0.0] * (n + 1), [0.0] * (m + 1), [0] * (m + 1), [0] * (m + 1)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    return sum(weights[p[j] - 1][j - 1] for j in range(1, m + 1) if p[j])


def ceaf_e(key: list[set], response: list[set]) -> tuple[float, float]:
    """Entity-based CEAF (phi4), aligned per connected component of overlapping clusters."""
    where = defaultdict(set)
    for j, c in enumerate(response):
        for m in c:
            where[m].add(j)
    seen_k: set[int] = set()
    total = 0.0
    for start in range(len(key)):
        if start in seen_k:
            continue
        ks, rs, todo = {start}, set(), [start]
        while todo:  # the component of key and response clusters linked by shared mentions
            i = todo.pop()
            for m in key[i]:
                for j in where.get(m, ()):
                    if j not in rs:
                        rs.add(j)
                        for i2, c in enumerate(key):
                            if i2 not in ks and response[j] & c:
                                ks.add(i2)
                                todo.append(i2)
        seen_k |= ks
        if not rs:
            continue
        kl, rl = sorted(ks), sorted(rs)
        w = [[2 * len(key[i] & response[j]) / (len(key[i]) + len(response[j])) for j in rl] for i in kl]
        if len(kl) > len(rl):
            w = [list(col) for col in zip(*w, strict=True)]
        total += _max_assignment(w)
    return total / len(key) if key else 0.0, total / len(response) if response else 0.0


def f1(recall: float, precision: float) -> float:
    return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


# Reports ---------------------------------------------------------------------------------------


def stored_names(url: str) -> dict[int, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute("SELECT id, name || ' (' || label || ')' FROM entities").fetchall())


def _print_chain_errors(gold, key_clusters, response_clusters, entity_names, n: int) -> None:
    """The gold chains spread over most rows, and the rows holding most gold chains."""
    where = {m: r for r, ms in response_clusters.items() for m in ms}
    chain_of = {m: c for c, ms in key_clusters.items() for m in ms}

    def label(r) -> str:
        return "(no stored mention)" if isinstance(r, tuple) else f"#{r} {entity_names.get(r, '?')}"

    split = sorted(key_clusters.items(), key=lambda kv: -len({where[m] for m in kv[1]}))
    print("  gold chains split over several rows:")
    for chain, ms in split[:n]:
        rows = Counter(label(where[m]) for m in ms)
        if len(rows) > 1:
            print(f"    {gold[min(ms)]['text']!r} ({chain}): " + "; ".join(f"{c}x {r}" for r, c in rows.most_common(6)))
    merged = sorted(
        ((r, ms) for r, ms in response_clusters.items() if not isinstance(r, tuple)),
        key=lambda kv: -len({chain_of[m] for m in kv[1]}),
    )
    print("  rows holding several gold chains:")
    for r, ms in merged[:n]:
        chains = Counter(gold[min(key_clusters[chain_of[m]])]["text"] for m in ms)
        if len(chains) > 1:
            print(f"    {label(r)}: " + "; ".join(f"{c}x {t!r}" for t, c in chains.most_common(6)))


def evaluate_meantime(url: str, nlp, order: str, seed: int, errors: int = 0) -> dict[str, float]:
    docs, gold, _offsets = meantime_docs(DATA / "meantime-en")
    docs = reorder(docs, order, seed)
    started = time.perf_counter()
    ids = ingest(url, nlp, docs)
    elapsed = time.perf_counter() - started
    by_article: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for article_id, start, end, entity_id, *_rest in stored_mentions(url):
        by_article[article_id].append((start, end, entity_id))
    key_clusters: dict[str, set] = defaultdict(set)
    response_clusters: dict[object, set] = defaultdict(set)
    aligned = 0
    for n, g in enumerate(gold):
        key_clusters[g["chain"]].add(n)
        hs, he = g["head"]
        covering = [(e - s, eid) for s, e, eid in by_article[ids[g["doc"]]] if s <= hs and he <= e]
        if covering:
            aligned += 1
            response_clusters[min(covering)[1]].add(n)
        else:
            response_clusters[("alone", n)].add(n)
    key, response = list(key_clusters.values()), list(response_clusters.values())
    if errors:
        _print_chain_errors(gold, key_clusters, response_clusters, stored_names(url), errors)
    scores = {"MUC": muc(key, response), "B3": b_cubed(key, response), "CEAFe": ceaf_e(key, response)}
    out = {name: f1(r, p) for name, (r, p) in scores.items()}
    out["CoNLL"] = sum(out[n] for n in ("MUC", "B3", "CEAFe")) / 3
    print(
        f"MEANTIME: {len(docs)} articles ({elapsed:.0f} s), {len(gold)} gold named mentions in "
        f"{len(key)} chains, {aligned} ({aligned / len(gold):.1%}) covered by a stored mention"
    )
    for name, (r, p) in scores.items():
        print(f"  {name:6s} R {r:.3f}  P {p:.3f}  F1 {out[name]:.3f}")
    print(f"  CoNLL F1 {out['CoNLL']:.3f}")
    return out


def _norm(text: str) -> str:
    return " ".join(text.replace("’", "'").removesuffix("'s").split()).casefold()


def evaluate_wikinews(url: str, nlp, order: str, seed: int, rows_shown: int) -> dict[str, float]:
    gold = json.loads(PEOPLE.read_text(encoding="utf-8"))
    docs = reorder(wikinews_docs(DATA / "wikinews"), order, seed)
    started = time.perf_counter()
    ingest(url, nlp, docs)
    elapsed = time.perf_counter() - started
    mentions = stored_mentions(url)
    print(f"Wikinews: {len(docs)} articles ({elapsed:.0f} s); gold of {PEOPLE.name} with 3 or more mentions")
    out: dict[str, float] = {}
    for section in ("people", "things"):
        ok, counted, full_rows, per_person = identity_table(gold[section], mentions, rows_shown)
        print(f"  {section} on one row named in full (>= {PASS_SHARE:.0%} of mentions): {ok} of {counted}")
        out[f"{section}_ok"], out[section] = ok, counted
        if section == "people":
            shared = []
            for group in gold["relatives"]:
                for i, a in enumerate(group):
                    for b in group[i + 1 :]:
                        both = set(per_person[a]) & set(per_person[b]) & (full_rows[a] | full_rows[b])
                        if both:
                            shared.append(f"{a} / {b}: rows {sorted(both)}")
            print(f"  relatives sharing a row: {len(shared)}" + "".join(f"\n    {s}" for s in shared))
            out["relatives_shared"] = len(shared)
    labels: dict[str, set[str]] = defaultdict(set)
    for *_x, name, label in mentions:
        labels[_norm(name)].add(label)
    several = sum(len(v) > 1 for v in labels.values())
    out["names_under_several_labels"] = several
    print(f"  entity names stored under more than one label: {several}")
    return out


def identity_table(gold: list[dict], mentions: list, rows_shown: int):
    """Per gold entry: its mentions, the rows they sit on, the share on its best full-named row."""
    variant_of: dict[str, str] = {}
    for person in gold:
        for v in person["full"] + person["short"]:
            variant_of[_norm(v)] = person["name"]
    full_names = {p["name"]: {_norm(v) for v in p["full"]} for p in gold}
    per_person: dict[str, Counter] = defaultdict(Counter)
    names: dict[int, str] = {}
    full_rows: dict[str, set[int]] = defaultdict(set)
    for _a, _s, _e, entity_id, text, name, _label in mentions:
        person = variant_of.get(_norm(text.removeprefix("the ").removeprefix("The ")))
        if person is None:
            continue
        per_person[person][entity_id] += 1
        names[entity_id] = name
        if _norm(text) in full_names[person]:
            full_rows[person].add(entity_id)
    print(f"  {'name':26s} {'mentions':>8s} {'rows':>4s} {'share':>6s}  row name")
    passed = counted = 0
    for person in gold:
        rows = per_person.get(person["name"], Counter())
        total = sum(rows.values())
        if total < 3:
            continue
        counted += 1
        best, n = max(
            ((eid, c) for eid, c in rows.items() if _norm(names[eid]) in full_names[person["name"]]),
            key=lambda x: x[1],
            default=(None, 0),
        )
        share = n / total
        passed += share >= PASS_SHARE
        shown = names[best] if best is not None else "(no row named in full)"
        flag = "ok" if share >= PASS_SHARE else "--"
        print(f"  {person['name']:26s} {total:8d} {len(rows):4d} {share:6.1%}  {flag} {shown}")
        if rows_shown:
            for eid, c in rows.most_common(rows_shown):
                print(f"      {c:5d}  #{eid} {names[eid]}")
    return passed, counted, full_rows, per_person


def reorder(docs: list, order: str, seed: int) -> list:
    if order == "reverse":
        return docs[::-1]
    if order == "shuffle":
        docs = docs[:]
        random.Random(seed).shuffle(docs)
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["meantime", "wikinews", "both"], default="both")
    parser.add_argument("--order", choices=["given", "reverse", "shuffle"], default="given")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="en_core_web_sm")
    parser.add_argument("--database-url", help="an empty database to use instead of a scratch one")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--errors", type=int, default=0, help="show the N worst MEANTIME chains and rows")
    parser.add_argument("--rows", type=int, default=0, help="show each person's N largest rows")
    args = parser.parse_args()
    nlp = load_model(args.model)
    if args.corpus in ("meantime", "both"):
        with scratch_database(args.database_url, args.keep) as url:
            evaluate_meantime(url, nlp, args.order, args.seed, args.errors)
    if args.corpus in ("wikinews", "both"):
        with scratch_database(args.database_url, args.keep) as url:
            evaluate_wikinews(url, nlp, args.order, args.seed, args.rows)


if __name__ == "__main__":
    main()
