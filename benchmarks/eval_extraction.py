"""Print extraction quality: text precision/recall/F1 and publication-date accuracy.

    python benchmarks/eval_extraction.py [--aeb ../shared/data/aeb] [--dates FILE] [--json FILE]

Text: token-bag precision, recall and F1 of each page's text against its ground truth
(whitespace tokens, multisets, summed over pages: the scoring of benchmarks/throughput.py
and of the AEB's published figures), for ``pipeline.extract.extract_article`` next to
``trafilatura.extract`` with its default options and with ``favor_precision``.

Dates: on how many pages a publication day was found, and on how many it is the right
day, for newsflow (by the source that won: jsonld, meta, htmldate, url …) next to htmldate
alone, fast and extensive search, called the way its README shows. The gold day comes from
``--dates`` (default benchmarks/aeb_dates.json: see its ``_about``), or a ``date`` field
in the ground truth when a set has one. A date is right when its day, in the offset the
page wrote it in, is the gold day.

Any set laid out as AEB is (``ground-truth.json`` with ``articleBody`` and ``url`` per id,
``html/<id>.html.gz``) can be scored the same way.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import warnings
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_AEB = ROOT.parent / "shared" / "data" / "aeb"
DEFAULT_DATES = ROOT / "benchmarks" / "aeb_dates.json"


def token_counts(truth: str, predicted: str) -> tuple[int, int, int]:
    """(shared, predicted, true) whitespace-token counts, as bags (multisets)."""
    t, p = Counter(truth.split()), Counter(predicted.split())
    return sum((t & p).values()), sum(p.values()), sum(t.values())


def prf(counts: list[tuple[int, int, int]]) -> tuple[float, float, float]:
    shared, predicted, true = (sum(c[i] for c in counts) for i in range(3))
    precision = shared / predicted if predicted else 0.0
    recall = shared / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def load(aeb: Path, dates_file: Path | None) -> list[dict]:
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    gold_dates: dict[str, str] = {}
    if dates_file and dates_file.exists():
        gold_dates = json.loads(dates_file.read_text(encoding="utf-8"))["dates"]
    pages = []
    for key in sorted(truth):
        path = aeb / "html" / f"{key}.html.gz"
        html = gzip.decompress(path.read_bytes()) if path.exists() else (aeb / "html" / f"{key}.html").read_bytes()
        day = truth[key].get("date") or gold_dates.get(key)
        pages.append({"id": key, "html": html, "url": truth[key]["url"], "body": truth[key]["articleBody"], "day": day})
    return pages


def _day(when: datetime | str | None) -> str | None:
    if when is None:
        return None
    return when.date().isoformat() if isinstance(when, datetime) else str(when)[:10]


def run(pages: list[dict]) -> dict:
    import trafilatura
    from htmldate import find_date

    from pipeline.extract import extract_article
    from pipeline.reasons import ItemError

    texts: dict[str, list] = defaultdict(list)
    dates: dict[str, Counter] = defaultdict(Counter)  # system -> found/right/found:<source>/right:<source>
    seconds: Counter = Counter()
    worst: list[tuple[float, str, int, int]] = []
    gold_pages = sum(1 for p in pages if p["day"])
    for page in pages:
        html, url, body, gold = page["html"], page["url"], page["body"], page["day"]
        started = time.perf_counter()
        try:
            ex = extract_article(html, url)
            text, when = ex.text, ex.published_at
            source = getattr(ex, "published_at_source", None) or "trafilatura"
            when = getattr(ex, "page_published_at", when)
        except ItemError:
            text, when, source = "", None, None
        seconds["newsflow"] += time.perf_counter() - started
        counts = token_counts(body, text)
        texts["newsflow extract_article"].append(counts)
        worst.append((prf([counts])[2], page["id"], counts[1], counts[2]))
        started = time.perf_counter()
        texts["trafilatura.extract (defaults)"].append(token_counts(body, trafilatura.extract(html, url=url) or ""))
        seconds["trafilatura"] += time.perf_counter() - started
        texts["trafilatura.extract (favor_precision)"].append(
            token_counts(body, trafilatura.extract(html, url=url, favor_precision=True) or "")
        )
        if not gold:
            continue
        tree = trafilatura.load_html(html)
        systems = {"newsflow": (_day(when), source)}
        for label, extensive in (("htmldate fast", False), ("htmldate extensive", True)):
            started = time.perf_counter()
            found = (
                find_date(tree, extensive_search=extensive, original_date=True, url=url) if tree is not None else None
            )
            seconds[label] += time.perf_counter() - started
            systems[label] = (_day(found), None)
        for label, (day, source) in systems.items():
            if day is None:
                continue
            dates[label]["found"] += 1
            dates[label]["right"] += day == gold
            if source:
                dates[label][f"found:{source}"] += 1
                dates[label][f"right:{source}"] += day == gold
    worst.sort()
    return {
        "pages": len(pages),
        "gold_dated_pages": gold_pages,
        "text": {label: prf(c) for label, c in texts.items()},
        "dates": {label: dict(c) for label, c in dates.items()},
        "seconds": dict(seconds),
        "worst_text": [(round(f, 3), key[:12], predicted, true) for f, key, predicted, true in worst[:12]],
    }


def report(figures: dict) -> None:
    print(f"{figures['pages']} pages; {figures['gold_dated_pages']} with a gold publication day")
    print("text, token-bag over all pages:")
    for label, (p, r, f1) in figures["text"].items():
        print(f"  {label:<40} P {p:.3f}  R {r:.3f}  F1 {f1:.3f}")
    print("publication day (found / right, right share of all gold-dated pages):")
    n = figures["gold_dated_pages"] or 1
    for label, c in figures["dates"].items():
        line = (
            f"  {label:<22} found {c.get('found', 0):>4}  right {c.get('right', 0):>4}  ({c.get('right', 0) / n:.3f})"
        )
        sources = sorted(k.split(":", 1)[1] for k in c if k.startswith("found:"))
        if sources:
            line += "   by source: " + ", ".join(f"{s} {c.get('right:' + s, 0)}/{c['found:' + s]}" for s in sources)
        print(line)
    print("seconds:", ", ".join(f"{k} {v:.1f}" for k, v in figures["seconds"].items()))
    print("lowest text F1 (F1, id, predicted tokens, true tokens):")
    for row in figures["worst_text"]:
        print("  ", *row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aeb", type=Path, default=DEFAULT_AEB, help="a set laid out as AEB")
    parser.add_argument("--dates", type=Path, default=DEFAULT_DATES, help="gold publication days (JSON)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    figures = run(load(args.aeb, args.dates))
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
