"""Feed parsing time on hostile shapes at size n and 2n, next to a plain feed of the same size.

    python benchmarks/feed_parse_scaling.py [--scale 1.0] [--repeat 3] [--no-feedparser] [--only NAME ...]

Each shape is a feed whose size grows with n in the way that makes bare feedparser
quadratic (issue 13, item 2): doubling n should double the time of ``parse_feed``, as it
does for the plain feed of the same byte size printed beside it; bare ``feedparser.parse``
(the same bytes, no ``feeds.prepare``) is timed too unless ``--no-feedparser``, and takes
four times as long at 2n. Times are the best of ``--repeat`` runs, in seconds.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feedparser  # noqa: E402

from pipeline.feeds import parse_feed  # noqa: E402
from pipeline.reasons import ItemError  # noqa: E402

HEAD = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>T</title><link>http://a.test/</link>'
)
TAIL = b"</channel></rss>"
ATOM = b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'


def item(i: int, extra: bytes = b"") -> bytes:
    return b"<item><title>Story %d</title><link>http://a.test/%d</link><guid>g%d</guid>%s</item>" % (i, i, i, extra)


def plain(size: int) -> bytes:
    """An ordinary feed of about ``size`` bytes."""
    body, i = [HEAD], 0
    total = len(HEAD) + len(TAIL)
    while total < size:
        one = item(i, b"<description>An ordinary summary of the story, a sentence or two long.</description>")
        body.append(one)
        total += len(one)
        i += 1
    return b"".join(body + [TAIL])


SHAPES: dict[str, tuple[int, Callable[[int], bytes], str]] = {
    # name: (n, feed of size parameter n, what grows)
    "leading_newlines": (20_000, lambda n: b"\n" * n + HEAD + item(1) + TAIL, "newlines before the root"),
    "prolog_doctypes": (
        4_000,
        lambda n: b'<?xml version="1.0"?>\n' + b"<!DOCTYPE\n" * n + b'<rss version="2.0"><channel>' + item(1) + TAIL,
        "<!DOCTYPE lines before the root",
    ),
    "author_email": (
        8_000,
        lambda n: HEAD + item(1, b"<author>a@" + b"a." * n + b"</author>") + TAIL,
        "length of one <author> (a@a.a.a...)",
    ),
    "authors_150kb": (
        40,
        lambda n: (
            HEAD + b"".join(item(i, b"<dc:creator>a@" + b"a." * 1800 + b"</dc:creator>") for i in range(n)) + TAIL
        ),
        "items with a 3.6 KB dc:creator each",
    ),
    "first_line_quotes": (
        8_000,
        lambda n: (
            b'<?xml version="1.0"?><rss version="2.0"><channel>'
            + item(1)
            + b'<x encoding="a"'
            + b' b=""' * n
            + b"/>"
            + TAIL
        ),
        "quotes on a one-line feed after encoding=",
    ),
    "categories": (
        4_000,
        lambda n: HEAD + item(1, b"".join(b"<category>c%d</category>" % i for i in range(n))) + TAIL,
        "distinct categories in one item",
    ),
    "attributes": (
        4_000,
        lambda n: HEAD + b"<item " + b" ".join(b'a%d="1"' % i for i in range(n)) + b"><title>t</title></item>" + TAIL,
        "attributes on one element",
    ),
    "xhtml_whitespace": (
        100_000,
        lambda n: (
            ATOM
            + b'<entry><id>e</id><title>t</title><link href="http://a.test/1"/><content type="xhtml">'
            + b"\n" * n
            + b'<div xmlns="http://www.w3.org/1999/xhtml">x</div></content></entry></feed>'
        ),
        "blank lines leading XHTML content",
    ),
    "namespace_prefixes": (
        2_000,
        lambda n: (
            b'<?xml version="1.0"?><rss version="2.0" '
            + b" ".join(b'xmlns:a%d="http://x.test/%d"' % (i, i) for i in range(n))
            + b"><channel>"
            + item(1, b"<a%d:x/>" % (n - 1) * n)
            + TAIL
        ),
        "namespace prefixes x elements in an unknown namespace",
    ),
}


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ours(body: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            return parse_feed(body, "http://a.test/feed.xml")
        except ItemError as exc:
            return exc

    return run


def bare(body: bytes) -> Callable[[], object]:
    return lambda: feedparser.parse(io.BytesIO(body), sanitize_html=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every shape's n")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-feedparser", action="store_true", help="do not time bare feedparser")
    parser.add_argument("--only", nargs="*", help="shape names")
    args = parser.parse_args()
    print(f"{'shape':20s} {'n':>8s} {'bytes':>10s}  {'parse_feed n':>12s} {'2n':>7s} {'x':>5s}", end="")
    print(f"  {'plain 2n':>8s}", end="")
    print("" if args.no_feedparser else f"  {'feedparser n':>12s} {'2n':>8s} {'x':>5s}")
    for name, (n, build, what) in SHAPES.items():
        if args.only and name not in args.only:
            continue
        n = max(1, int(n * args.scale))
        small, large = build(n), build(2 * n)
        a, b = best(ours(small), args.repeat), best(ours(large), args.repeat)
        outcome = ours(large)()
        p = best(ours(plain(len(large))), args.repeat)
        line = f"{name:20s} {n:8d} {len(large):10,d}  {a:12.4f} {b:7.4f} {b / max(a, 1e-9):5.1f}  {p:8.4f}"
        if not args.no_feedparser:
            fa, fb = best(bare(small), 1), best(bare(large), 1)
            line += f"  {fa:12.4f} {fb:8.4f} {fb / max(fa, 1e-9):5.1f}"
        print(line, flush=True)
        result = f"refused: {outcome.message}" if isinstance(outcome, ItemError) else f"{len(outcome.items)} items"
        print(f"{'':20s} ({what}; at 2n parse_feed gives {result[:90]})", flush=True)


if __name__ == "__main__":
    main()
