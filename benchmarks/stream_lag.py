"""Publication-to-queryable lag of `newsflow run` on a loopback feed that keeps publishing.

    python benchmarks/stream_lag.py [--every 3] [--items 40] [--poll-min 1] [--poll-max 30]

A loopback feed publishes a new article every ``--every`` seconds (its pubDate is the
moment it appears). The stream runs until the last item has been out for a while, then the
lag ``articles.stored_at - articles.published_at`` is read for every article: median, p95,
max. Uses a fresh database on NEWSFLOW_BENCH_SERVER (default the local PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import Settings  # noqa: E402
from pipeline.loopback import LoopbackSite, Reply  # noqa: E402
from pipeline.stream import run_stream  # noqa: E402

PARAGRAPHS = [
    "The transport minister, Ana Ruiz, said on Monday that line {i} would reopen next week.",
    '"We have replaced every signal on line {i}," Ruiz said. "Trains will run every four minutes."',
    "Union leader Marc Bel said the staff of line {i} had not been consulted about the new timetable.",
    "The city council will vote on the budget for line {i} on Thursday, officials said.",
]


def page(i: int) -> bytes:
    body = "".join(f"<p>{p.format(i=i)}</p>" for p in PARAGRAPHS)
    return f"<html><body><article><h1>Line {i} reopens</h1>{body}</article></body></html>".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=3.0, help="seconds between publications")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--poll-min", type=float, default=1.0)
    parser.add_argument("--poll-max", type=float, default=30.0)
    args = parser.parse_args()

    server = os.environ.get("NEWSFLOW_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"newsflow_lag_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server)
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        settings = Settings.from_env()
        settings = replace(settings, database_url=url, limits=replace(settings.limits, host_min_delay=0.2))
        with LoopbackSite() as site:
            start = time.time()

            def feed(_h):
                n = min(args.items, 1 + int((time.time() - start) / args.every))
                items = "".join(
                    f"<item><title>Line {i}</title><link>{site.url(f'/line/{i}')}</link><guid>line-{i}</guid>"
                    f"<pubDate>{format_datetime(datetime.fromtimestamp(start + i * args.every, UTC), usegmt=True)}"
                    "</pubDate></item>"
                    for i in reversed(range(n))
                )
                body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Lag</title>{items}</channel></rss>'
                return Reply(200, body.encode(), {"Content-Type": "application/rss+xml"})

            site.routes["/feed.xml"] = feed
            for i in range(args.items):
                site.routes[f"/line/{i}"] = Reply(200, page(i), {"Content-Type": "text/html"})
            duration = args.items * args.every + max(args.poll_max, 10) + 10
            print(f"publishing {args.items} items every {args.every} s; streaming for {duration:.0f} s")
            run_stream(
                settings,
                [site.url("/feed.xml")],
                poll_min=args.poll_min,
                poll_max=args.poll_max,
                duration=duration,
                out=lambda line: print(line, flush=True),
            )
        with psycopg.connect(url) as conn:
            lags = [
                float(r[0])
                for r in conn.execute("SELECT extract(epoch FROM stored_at - published_at) FROM articles ORDER BY 1")
            ]
        if not lags:
            print("nothing stored")
            return
        p95 = lags[min(len(lags) - 1, int(round(0.95 * (len(lags) - 1))))]
        print(
            f"articles {len(lags)} of {args.items}; lag from publication to queryable: "
            f"median {statistics.median(lags):.1f} s, p95 {p95:.1f} s, max {lags[-1]:.1f} s "
            f"(poll-min {args.poll_min} s, poll-max {args.poll_max} s)"
        )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
