"""Print how well stories group syndicated copies: pairwise precision and recall by kind of change.

    python benchmarks/eval_stories.py [--aeb DIR] [--copies K] [--seed S] [--pure]
                                      [--database-url URL] [--keep]

The set is built at run time from ../shared/data/aeb (181 real news and blog pages with their
clean text; read in place, never copied). Each page of at least 100 words is a source story;
each source gets copies on other outlets, one per kind of change:

  boilerplate   another outlet's lines around the text (byline, newsletter, copyright, related)
  headline      a rewritten headline and dateline line in front of the text
  trimmed       the ending cut: the last 20-50 % of the paragraphs dropped
  extended      an ending added: 20-40 % more text (the last paragraphs of a page on another
                subject, at most a third of that page)
  local         a local paragraph inserted in the middle
  copyedit      light copy-edits: 3 % of the words changed, a few sentences dropped or merged
  combined      boilerplate, headline, a trimmed ending and copy-edits together
  update        the same outlet later: a new top paragraph and copy-edits (role "update")

and, to stay apart, different articles on the same subject: a long page (600+ words, 9+
paragraphs) is cut in three; its first third is the source, its second third another story
that quotes a sentence of the first and shares the page's names and vocabulary ("subject"),
and its last third a follow-up under up to two background paragraphs of the first, each under
a quarter of it ("follow-up").

Everything goes through the real store (``store.store_article`` into a scratch PostgreSQL
database, the band index probed as in production), sources first and copies in a shuffled
order. A pair of articles is predicted together when they end in one story. Recall is printed
by kind of change (pairs source-copy), precision over all predicted pairs, and the different
stories on one subject that were merged. ``--pure`` scores ``stories.same_story`` on the pairs
alone, without the database or LSH (quicker, for trying thresholds).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import scratch_database  # noqa: E402

from pipeline import db, store, stories  # noqa: E402
from pipeline.analyse import Analysis  # noqa: E402
from pipeline.extract import Extracted  # noqa: E402
from pipeline.feeds import FeedItem  # noqa: E402

DEFAULT_AEB = ROOT.parent / "shared" / "data" / "aeb"
MIN_SOURCE_WORDS = 100
KINDS = ["boilerplate", "headline", "trimmed", "extended", "local", "copyedit", "combined", "update"]

BOILERPLATE_TOP = [
    "By Staff Reporter | {outlet}",
    "Advertisement",
    "Share this article on Facebook, Twitter and email",
    "{outlet} - Updated {date}",
    "Listen to this article",
]
BOILERPLATE_BOTTOM = [
    "Sign up for the {outlet} morning newsletter to get the day's top stories in your inbox.",
    "Copyright {year} {outlet}. All rights reserved. This material may not be published, broadcast, "
    "rewritten or redistributed.",
    "Related: More stories from {outlet}",
    "Have a news tip? Contact the {outlet} newsroom.",
    "Follow us on social media for the latest updates.",
]
EDITS = {  # US/UK spellings, numbers, house style
    "percent": "per cent",
    "per cent": "percent",
    "color": "colour",
    "organization": "organisation",
    "said": "says",
    "says": "said",
    "Mr.": "Mr",
    "Dr.": "Dr",
    "U.S.": "US",
    "two": "2",
    "three": "3",
    "million": "mln",
    "and": "&",
    "however": "but",
    "about": "around",
    "also": "too",
}


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


# The set ------------------------------------------------------------------------------------


def copy_edit(text: str, rng: random.Random, share: float = 0.03) -> str:
    """Change about ``share`` of the words (house style, synonyms) and drop or merge a sentence or two."""
    out = []
    for para in paragraphs(text):
        sents = sentences(para)
        if len(sents) > 2 and rng.random() < 0.15:
            del sents[rng.randrange(1, len(sents))]
        words = " ".join(sents).split(" ")
        for i, w in enumerate(words):
            if rng.random() < share:
                words[i] = EDITS.get(w, rng.choice(["the", "a", "its", "new", "local", w.upper(), w + ","]))
        out.append(" ".join(words))
    return "\n\n".join(out)


def make_copies(text: str, other: str, outlet: str, rng: random.Random) -> dict[str, str]:
    paras = paragraphs(text)
    foreign = paragraphs(other)
    date = "2026-03-0" + str(rng.randint(1, 9))

    def boiler(body: str) -> str:
        top = [line.format(outlet=outlet, date=date) for line in rng.sample(BOILERPLATE_TOP, 2)]
        bottom = [line.format(outlet=outlet, year=2026) for line in rng.sample(BOILERPLATE_BOTTOM, 3)]
        return "\n\n".join([*top, body, *bottom])

    def headline(body: str) -> str:
        first = sentences(paras[0])[0].split()
        rewritten = " ".join(rng.sample(first, min(len(first), 9))).title()
        return f"{rewritten}\n\n{outlet.upper()} ({date}) - {body}"

    def trimmed(ps: list[str], share: float) -> list[str]:
        keep = max(1, round(len(ps) * (1 - share)))
        if len(ps) == 1:  # one long paragraph: cut its sentences instead
            sents = sentences(ps[0])
            return [" ".join(sents[: max(1, round(len(sents) * (1 - share)))])]
        return ps[:keep]

    # the added ending: the last paragraphs of a page on another subject, 20-40 % of this
    # text's length and never more than a third of that page (a whole other story is not an ending)
    words, foreign_words = len(text.split()), len(other.split())
    extra: list[str] = []
    n = 0
    for para in reversed(foreign):
        if n >= words * rng.uniform(0.2, 0.4) or n + len(para.split()) > foreign_words / 3:
            break
        extra.insert(0, para)
        n += len(para.split())
    local = (
        f"Local officials in {outlet.split('.')[0].title()} County said the news would be discussed at "
        f"the next council meeting on {date}, and residents were invited to send their questions in writing "
        f"before the end of the week. The county has faced similar questions before, a spokeswoman said."
    )
    middle = len(paras) // 2
    copies = {
        "boilerplate": boiler(text),
        "headline": headline(text),
        "trimmed": "\n\n".join(trimmed(paras, rng.uniform(0.2, 0.5))),
        "extended": "\n\n".join(paras + extra),
        "local": "\n\n".join(paras[:middle] + [local] + paras[middle:]),
        "copyedit": copy_edit(text, rng),
        "combined": boiler(headline(copy_edit("\n\n".join(trimmed(paras, rng.uniform(0.1, 0.3))), rng))),
        "update": "\n\n".join(
            [
                f"UPDATED {date}: This story has been updated with new information from officials "
                "and a statement released on Tuesday evening.",
                copy_edit(text, rng, 0.01),
            ]
        ),
    }
    return copies


def split_subject(text: str, rng: random.Random) -> tuple[str, str, str] | None:
    """A long page as three articles on one subject: the source (its first third), another
    story (the second third, quoting a sentence of the first) and a follow-up (the last third
    under two background paragraphs of the first); None when the page is too short."""
    paras = paragraphs(text)
    if len(text.split()) < 600 or len(paras) < 9:
        return None
    third = len(paras) // 3
    first, second, last = paras[:third], paras[third : 2 * third], paras[2 * third :]
    thirds = [stories.signature("\n".join(p)) for p in (first, second, last)]
    if max(stories.jaccard(x, y) for x, y in combinations(thirds, 2)) > 0.1:
        return None  # a templated page (a meal plan, a listing): its thirds are not different stories
    quote = rng.choice(sentences(" ".join(first)))
    other = "\n\n".join([*second[:1], quote, *second[1:]])
    background = [p for p in first[1:3] if len(p.split()) < len(" ".join(first).split()) / 4][:2]
    follow = "\n\n".join([*last[:2], *background, *last[2:]])
    return "\n\n".join(first), other, follow


def build(aeb: Path, seed: int) -> list[dict]:
    """Articles: {id, group, kind, outlet, text, source}; ``group`` is the gold story."""
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    texts = [
        (key, v["articleBody"]) for key, v in sorted(truth.items()) if len(v["articleBody"].split()) >= MIN_SOURCE_WORDS
    ]
    rng = random.Random(seed)
    whole = [page for _key, page in texts if split_subject(page, random.Random(0)) is None]
    articles: list[dict] = []
    for n, (_key, page) in enumerate(texts):
        group = f"s{n}"
        parts = split_subject(page, rng)
        text = parts[0] if parts else page
        articles.append({"group": group, "kind": "source", "outlet": "wire.example", "text": text, "source": group})
        other = whole[(n * 7) % len(whole)]  # a page that is a story in full, not cut in three
        for k, (kind, body) in enumerate(make_copies(text, other, f"herald{n % 17}.example", rng).items()):
            outlet = "wire.example" if kind == "update" else f"outlet{k}-{n}.example"
            articles.append({"group": group, "kind": kind, "outlet": outlet, "text": body, "source": group})
        if parts:
            _, other_story, follow = parts
            articles.append(
                {
                    "group": f"{group}-b",
                    "kind": "subject",
                    "outlet": "other.example",
                    "text": other_story,
                    "source": group,
                }
            )
            articles.append(
                {"group": f"{group}-f", "kind": "follow-up", "outlet": "later.example", "text": follow, "source": group}
            )
    for i, a in enumerate(articles):
        a["id"] = i
    return articles


# Scoring ------------------------------------------------------------------------------------


def score(articles: list[dict], predicted: dict[int, int]) -> None:
    """Print pairwise precision and recall, recall by kind, and same-subject merges."""
    gold_pairs, pred_pairs = set(), set()
    by_gold, by_pred = defaultdict(list), defaultdict(list)
    for a in articles:
        by_gold[a["group"]].append(a["id"])
        by_pred[predicted[a["id"]]].append(a["id"])
    for members in by_gold.values():
        gold_pairs |= set(combinations(sorted(members), 2))
    for members in by_pred.values():
        pred_pairs |= set(combinations(sorted(members), 2))
    tp = len(gold_pairs & pred_pairs)
    precision = tp / len(pred_pairs) if pred_pairs else 1.0
    recall = tp / len(gold_pairs) if gold_pairs else 1.0
    print(f"articles {len(articles)}  gold stories {len(by_gold)}  predicted stories {len(by_pred)}")
    print(
        f"pairwise precision {precision:.4f}  recall {recall:.4f}  ({tp} of {len(gold_pairs)} gold pairs, "
        f"{len(pred_pairs)} predicted)"
    )
    source_of = {a["group"]: a["id"] for a in articles if a["kind"] == "source"}
    found, total = Counter(), Counter()
    for a in articles:
        if a["kind"] in KINDS:
            total[a["kind"]] += 1
            found[a["kind"]] += predicted[a["id"]] == predicted[source_of[a["group"]]]
    print("recall by kind of change (copy in the source's story):")
    for kind in KINDS:
        print(f"  {kind:<12} {found[kind] / total[kind]:.3f}  ({found[kind]}/{total[kind]})")
    merged = Counter()
    apart = Counter()
    for a in articles:
        if a["kind"] in ("subject", "follow-up"):
            apart[a["kind"]] += 1
            src = source_of[a["source"]]
            siblings = [b["id"] for b in articles if b["source"] == a["source"] and b["group"] != a["group"]]
            merged[a["kind"]] += any(predicted[a["id"]] == predicted[s] for s in [src, *siblings])
    print("different stories on one subject merged with the source or each other:")
    for kind in ("subject", "follow-up"):
        print(f"  {kind:<12} {merged[kind]} of {apart[kind]}")


def pure(articles: list[dict]) -> dict[int, int]:
    """Union-find over pairs that ``same_story`` accepts (no LSH, no database)."""
    sigs = {a["id"]: stories.signature(a["text"]) for a in articles}
    parent = {i: i for i in sigs}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in combinations(sorted(sigs), 2):
        if stories.same_story(sigs[i], sigs[j]):
            parent[find(i)] = find(j)
    return {i: find(i) for i in sigs}


def through_store(articles: list[dict], url: str, seed: int) -> dict[int, int]:
    """Store every article through ``store.store_article``; its story is the prediction."""
    order = [a for a in articles if a["kind"] == "source"]
    rest = [a for a in articles if a["kind"] != "source"]
    random.Random(seed).shuffle(rest)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    seconds = []
    with db.connect(url) as conn:
        db.upgrade(conn)
        feed = store.register_feed(conn, "https://feeds.example/rss")
        run_id = conn.execute("INSERT INTO ops.runs (kind) VALUES ('eval') RETURNING id").fetchone()[0]
        for n, a in enumerate(order + rest):
            link = f"https://{a['outlet']}/{a['group']}/{a['kind']}/{a['id']}"
            item = FeedItem(key=link, guid=link, link=link, link_error=None, title=None, published_at=None)
            ex = Extracted(
                title=None,
                text=a["text"],
                published_at=None,
                author=None,
                language="en",
                site_name=None,
                description=None,
            )
            page = store.Page(
                url=link, html=b"", content_type="text/html", fetched_at=base + timedelta(minutes=n), extracted=ex
            )
            started = time.perf_counter()
            state, article_id = store.store_article(
                conn, run_id, feed.id, item, page, Analysis(skipped="eval"), base + timedelta(minutes=n)
            )
            seconds.append(time.perf_counter() - started)
            a["article_id"] = article_id
            a["state"] = state
        story = dict(conn.execute("SELECT id, story_id FROM articles").fetchall())
        roles = Counter(conn.execute("SELECT story_role FROM articles a WHERE url LIKE '%%/update/%%'").fetchall())
    seconds.sort()
    print(
        f"store_article: median {seconds[len(seconds) // 2] * 1000:.1f} ms, "
        f"p95 {seconds[int(len(seconds) * 0.95)] * 1000:.1f} ms per article (signature, probe, insert, no NLP)"
    )
    print(f"roles of the same-outlet updates: {dict((k[0], v) for k, v in roles.items())}")
    states = Counter(a["state"] for a in articles)
    print(f"store states: {dict(states)}")
    return {a["id"]: story[a["article_id"]] for a in articles}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aeb", type=Path, default=DEFAULT_AEB)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--pure", action="store_true", help="score same_story on pairs, without the database")
    parser.add_argument("--database-url", help="an existing database to use (default: a scratch database)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    articles = build(args.aeb, args.seed)
    t = stories.THRESHOLDS
    print(
        f"signature {stories.SIGNATURE_VERSION}; thresholds jaccard {t.jaccard}, containment {t.containment} "
        f"(jaccard >= {t.jaccard_floor}), short under {t.min_words} words"
    )
    if args.pure:
        predicted = pure(articles)
    else:
        with scratch_database(args.database_url, args.keep) as url:
            predicted = through_store(articles, url, args.seed)
    score(articles, predicted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
