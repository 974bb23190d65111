"""The ``newsflow`` command.

Errors a user can cause (a bad file, an unreachable database, a missing model) end with a
one-line message and exit status 2, never a traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import db
from .config import Settings

log = logging.getLogger("newsflow")


class UsageError(Exception):
    """Bad input from the user: printed as a message, exit status 2."""


def _read_feed_file(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()  # a BOM is not part of a URL
    except OSError as exc:
        raise UsageError(f"cannot read feeds file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"feeds file {path} is not UTF-8 text") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _progress_printer(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="item", file=sys.stderr, leave=False)
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return progress


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    with db.connect(db.database_url(settings)) as conn:
        applied = db.upgrade(conn)
        version = db.current_version(conn)
        if "007_entity_identity.sql" in applied:  # rows linked by the older rules: one row per thing
            from .identity import consolidate

            consolidate(conn)
        # Articles stored before stories (migration 010, applied now or by an earlier ingest):
        # group their copies. Nothing to do costs one query.
        from .store import group_unsigned

        grouped = group_unsigned(conn)
    if grouped["signed"]:
        print(f"stories: signed {grouped['signed']} older articles, {grouped['grouped']} joined another story")
    print(
        f"applied {', '.join(applied)}" if applied else "database is up to date",
        f"(schema version {version})",
    )
    return 0


def cmd_db_url(settings: Settings, args: argparse.Namespace) -> int:
    print(db.database_url(settings))
    return 0


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from .ingest import ingest

    feeds = list(args.feed or [])
    for path in args.feeds or []:
        feeds += _read_feed_file(path)
    if not feeds:
        raise UsageError("no feeds given: use --feed URL or --feeds FILE")
    summary = ingest(settings, feeds, progress=_progress_printer(sys.stderr.isatty()))
    print(summary.table())
    return 0 if summary.status == "succeeded" else 1


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from .demo import serve_demo_site
    from .ingest import ingest
    from .loopback import LoopbackSite
    from .overview import stored_overview

    # Our own loopback server: no need to wait a polite second between requests.
    settings = settings.with_(limits=settings.limits.__class__(**{**settings.limits.__dict__, "host_min_delay": 0.05}))
    with LoopbackSite() as site:
        feed_url = serve_demo_site(site)
        print(f"serving the sample site at {site.base}; ingesting {feed_url}")
        summary = ingest(settings, [feed_url], progress=_progress_printer(sys.stderr.isatty()))
    print(summary.table())
    print()
    with db.connect(db.database_url(settings)) as conn:
        print(stored_overview(conn, feed_url))
    where = settings.database_url and "NEWSFLOW_DATABASE_URL" or f"the embedded database in {settings.home}"
    print(f"\nstored in {where}")
    return 0 if summary.status == "succeeded" else 1


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from .ledger import status_report

    with db.connect(db.database_url(settings)) as conn:
        db.upgrade(conn)
        print(status_report(conn, runs=args.runs))
    return 0


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    from .ledger import retry, retry_analyses

    summary = retry(settings, args.reason, include_permanent=args.all)
    if summary.seen == 0:
        which = f"with reason {args.reason}" if args.reason else ""
        print(
            f"no quarantined items {which} to retry" + ("" if args.all else " (transient reasons only; --all for all)")
        )
    print(summary.table())
    ok = summary.status == "succeeded"
    if args.reason in (None, "nlp_failed"):
        completed = retry_analyses(settings)
        if completed is not None:
            print(completed.table())
            ok = ok and completed.status == "succeeded"
    return 0 if ok else 1


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from .stream import Stream, run_stream

    feeds = list(args.feed or [])
    for path in args.feeds or []:
        feeds += _read_feed_file(path)
    stream = Stream(settings, feeds, out=lambda line: print(line, flush=True))

    def stop(signum: int, _frame: object) -> None:
        print(f"received {signal.Signals(signum).name}: finishing in-flight items", flush=True)
        stream.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    summary = run_stream(
        settings, poll_min=args.poll_min, poll_max=args.poll_max, duration=args.duration, stream=stream
    )
    print(summary.table())
    return 0 if summary.status == "succeeded" else 1


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from .stream import tail

    tail(
        settings,
        speaker=args.speaker,
        entity=args.entity,
        limit=args.limit,
        timeout=args.timeout,
        out=lambda line: print(line, flush=True),
    )
    return 0


def cmd_statements(settings: Settings, args: argparse.Namespace) -> int:
    from .analyse import analyse_doc
    from .nlp import load_model

    nlp = load_model(settings.spacy_model)
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name} is not UTF-8 text") from exc
        analysis = analyse_doc(nlp(text))
        for statement in analysis.statements:
            record = {"file": name, **statement.as_dict()}
            print(json.dumps(record, ensure_ascii=False))
    return 0


# Analysts' commands (docs/analysts.md): read-only, they never apply migrations.


def _since(value: str):
    from .analyst import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    except OverflowError as exc:  # "99999999999d": before the first representable date
        raise argparse.ArgumentTypeError(f"too far back: {value[:40]!r}") from exc


def _bounded(kind: type, low: float, high: float):
    """An argparse ``type``: a number of ``kind`` from ``low`` to ``high``, else a usage error.

    Every numeric option is bounded, so a value no database column or timer could hold ends
    as a one-line usage error (exit status 2) and never reaches PostgreSQL or ``select``.
    """
    what = "a whole number" if kind is int else "a number"

    def parse(value: str):
        try:
            number = kind(value)
        except (ValueError, OverflowError):
            number = None
        if number is None or not low <= number <= high:  # NaN fails both comparisons
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise argparse.ArgumentTypeError(f"{what} from {low:.15g} to {high:.15g} expected, not {shown!r}")
        return number

    return parse


_DAY = 86_400.0
_rows = _bounded(int, 1, 100_000)  # --limit of search and quotes, status --runs: rows shown
_statements = _bounded(int, 1, 1_000_000_000)  # tail --limit
_poll_seconds = _bounded(float, 0.1, 30 * _DAY)  # stored as an interval and a next-poll time
_run_seconds = _bounded(float, 0.001, 366 * _DAY)  # run --duration, tail --timeout


def _analyst_connection(settings: Settings):
    from .analyst import SchemaMissing, ensure_schema

    conn = db.connect(db.database_url(settings))
    try:
        ensure_schema(conn)
    except SchemaMissing as exc:
        conn.close()
        raise UsageError(str(exc)) from exc
    return conn


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from .analyst import hits_table, search

    with _analyst_connection(settings) as conn:
        hits = search(conn, args.text, speaker=args.speaker, since=args.since, limit=args.limit)
    print(hits_table(hits))
    return 0


def cmd_quotes(settings: Settings, args: argparse.Namespace) -> int:
    from .analyst import quotes, quotes_table

    with _analyst_connection(settings) as conn:
        found = quotes(conn, args.speaker, since=args.since, limit=args.limit)
    print(quotes_table(found))
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from .report import build_report

    with _analyst_connection(settings) as conn:
        index = build_report(conn, Path(args.out), args.since)
    print(f"report written to {index}")
    return 0


def cmd_stories(settings: Settings, args: argparse.Namespace) -> int:
    if args.group:
        from .store import group_unsigned

        with db.connect(db.database_url(settings)) as conn:
            db.upgrade(conn)
            done = group_unsigned(conn)
        print(f"signed {done['signed']} articles stored before stories; {done['grouped']} joined another story")
        return 0
    from .analyst import carried_stories, stories_table

    with _analyst_connection(settings) as conn:
        found = carried_stories(conn, args.since, min_outlets=args.min_outlets, limit=args.limit)
    print(stories_table(found))
    return 0


def _add_analyst_commands(sub) -> None:
    since_help = "only articles dated from then on: YYYY-MM-DD (UTC), an ISO timestamp, or 7d / 2w ago"
    search_parser = sub.add_parser("search", help="full-text search of quotes and article text")
    search_parser.add_argument("text", help='words to find; "a phrase", or, -word work as in web search')
    search_parser.add_argument("--speaker", metavar="NAME", help="only quotes by speakers whose name contains NAME")
    search_parser.add_argument("--since", type=_since, metavar="DATE", help=since_help)
    search_parser.add_argument("--limit", type=_rows, default=20, help="most quotes and most articles shown")
    search_parser.set_defaults(func=cmd_search)

    quotes_parser = sub.add_parser("quotes", help="what a speaker said, newest first")
    quotes_parser.add_argument("--speaker", required=True, metavar="NAME", help="a name or part of one")
    quotes_parser.add_argument("--since", type=_since, metavar="DATE", help=since_help)
    quotes_parser.add_argument("--limit", type=_rows, default=50, help="most statements shown")
    quotes_parser.set_defaults(func=cmd_quotes)

    stories_parser = sub.add_parser("stories", help="stories and the outlets that carried them, most carried first")
    stories_parser.add_argument("--since", type=_since, metavar="DATE", help="only stories first seen from then on")
    stories_parser.add_argument(
        "--min-outlets", type=_rows, default=1, metavar="N", help="only stories carried by at least N outlets"
    )
    stories_parser.add_argument("--limit", type=_rows, default=20, help="most stories shown")
    stories_parser.add_argument(
        "--group", action="store_true", help="group the articles stored before stories existed (db upgrade does it)"
    )
    stories_parser.set_defaults(func=cmd_stories)

    report_parser = sub.add_parser("report", help="write an HTML report with plots to a directory")
    report_parser.add_argument("--since", type=_since, metavar="DATE", help=since_help + " (default: all)")
    report_parser.add_argument("--out", required=True, metavar="DIR", help="directory for index.html and PNGs")
    report_parser.set_defaults(func=cmd_report)


# History commands (docs/airflow.md): the same jobs the newsflow_backfill and
# newsflow_reprocess DAGs run, for users without Airflow.


def _bound(value: str) -> str:
    from .backfill import parse_bound

    try:
        parse_bound(value, end=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from . import backfill as bf

    given = {
        "--feed": bool(args.feed) and not args.wayback,
        "--warc": bool(args.warc),
        "--cc-news": bool(args.cc_news),
        "--wayback": args.wayback,
    }
    if sum(given.values()) != 1:
        raise UsageError(
            "backfill reads one source: --feed URL, --warc PATH..., --cc-news YYYY-MM or --wayback --feed URL"
        )
    window = bf.Window.parse(args.since, args.until) if args.since else None
    if given["--feed"] or given["--wayback"]:
        if window is None or not args.feed:
            raise UsageError("--feed URL and --since DATE are needed to backfill a feed")
        if args.wayback:
            result = bf.backfill_wayback(settings, args.feed, window, base=args.wayback_base)
        else:
            result = bf.backfill(settings, args.feed, window, progress=_progress_printer(sys.stderr.isatty()))
    else:
        filters = bf.archive_filters(args.domains, window, args.language)
        if args.warc:
            result = bf.backfill_warc(settings, args.warc, filters, all_domains=args.all_domains)
        else:
            result = bf.backfill_cc_news(
                settings, args.cc_news, filters, base=args.cc_news_base, all_domains=args.all_domains
            )
    print(result.table())
    return 0 if result.summary.status == "succeeded" else 1


def cmd_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from .reprocess import reprocess
    from .tasks import reprocess_selection

    if not args.since and not args.outdated_only:
        raise UsageError("say what to reprocess: --since DATE (and --until DATE), or --outdated-only")
    selection = reprocess_selection(args.since, args.until, args.by, args.outdated_only)
    summary = reprocess(settings, selection, progress=_progress_printer(sys.stderr.isatty()))
    print(summary.table())
    return 0 if summary.status == "succeeded" else 1


def _add_history_commands(sub) -> None:
    date_help = "YYYY-MM-DD (a whole UTC day; --until is included) or an ISO date-time"
    bf = sub.add_parser(
        "backfill",
        help="load older articles: a feed's archives, ?paged=N pages and sitemaps; WARC files; CC-NEWS; Wayback",
    )
    bf.add_argument("--feed", metavar="URL", help="the feed URL (its history, or with --wayback its captures)")
    bf.add_argument("--since", type=_bound, metavar="DATE", help=date_help + " (required with --feed)")
    bf.add_argument("--until", type=_bound, metavar="DATE", help=date_help + " (default: now)")
    archives = bf.add_argument_group("web archives (docs: README, 'Backfill from web archives')")
    archives.add_argument("--warc", nargs="+", metavar="PATH_OR_URL", help="WARC or ARC files, gzipped or not")
    archives.add_argument("--cc-news", metavar="YYYY-MM", help="a month of Common Crawl's news crawl")
    archives.add_argument("--cc-news-base", metavar="URL", help="where CC-NEWS is served (default: Common Crawl's)")
    archives.add_argument("--wayback", action="store_true", help="the --feed's archived copies in the Wayback Machine")
    archives.add_argument("--wayback-base", metavar="URL", help="the Wayback Machine (default: web.archive.org)")
    archives.add_argument("--domains", metavar="FILE", help="sites to load, one a line (default: the feeds' hosts)")
    archives.add_argument("--all-domains", action="store_true", help="load every site in the archive")
    archives.add_argument("--language", metavar="CODE", help="only pages in this language (ISO 639-1, e.g. en)")
    bf.set_defaults(func=cmd_backfill)

    rp = sub.add_parser("reprocess", help="redo extraction and NLP from stored raw HTML (no refetching)")
    rp.add_argument("--since", type=_bound, metavar="DATE", help=date_help)
    rp.add_argument("--until", type=_bound, metavar="DATE", help=date_help + " (default: no end)")
    rp.add_argument("--by", choices=["published", "fetched"], default="published", help="the date the range applies to")
    rp.add_argument(
        "--outdated-only",
        action="store_true",
        help="only articles made by another extractor or NLP version than the current one",
    )
    rp.set_defaults(func=cmd_reprocess)


# Entity curation (pipeline/entity_admin.py): decisions are stored as overrides that win over
# the linking rules at every later run and reprocess.


def cmd_entities(settings: Settings, args: argparse.Namespace) -> int:
    from . import entity_admin as admin

    with db.connect(db.database_url(settings)) as conn:
        db.upgrade(conn)
        if args.entities_command == "list":
            rows = admin.list_entities(conn, label=args.label, like=args.like, limit=args.limit)
            for r in rows:
                others = [a for a in r.aliases if a != r.name][:6]
                also = f"  ({'; '.join(others)})" if others else ""
                print(f"{r.id:>8}  {r.label:<6} {r.mentions:>7}  {r.name}{also}")
            if not rows:
                print("no entities match")
            return 0
        if args.entities_command == "show":
            shown = admin.show(conn, args.id)
            if shown["asked"] != shown["id"]:
                print(f"entity {shown['asked']} was merged into {shown['id']}")
            fields = "id name label key mentions articles statements surname first_name middle_initial suffix"
            for field in (fields + " org_key acronym place_code").split():
                if shown.get(field) not in (None, ""):
                    print(f"{field:>15}: {shown[field]}")
            print(f"{'aliases':>15}: {'; '.join(shown['aliases'])}")
            for m in shown["merged"]:
                print(f"{'merged':>15}: {m['id']} {m['name']} ({m['label']})")
            for o in shown["overrides"]:
                detail = o["value"] or o["name_key"] or o["other_id"] or ""
                print(f"{'override':>15}: {o['kind']} {detail}")
            return 0
        if args.entities_command == "consolidate":
            from .identity import consolidate

            done = consolidate(conn)
            print(f"matching columns filled for {done['filled']} entities; {done['merged']} rows merged")
            return 0
        if args.entities_command == "merge":
            target = admin.merge(conn, args.id, args.others)
            print(f"merged {', '.join(map(str, args.others))} into {target}")
            return 0
        if args.entities_command == "split":
            new_id = admin.split(conn, args.id, args.alias)
            print(f"{args.alias!r} is now entity {new_id}")
            return 0
        target = admin.rename(conn, args.id, args.name)
        print(f"entity {target} is now named {args.name!r}")
        return 0


def _add_entity_commands(sub) -> None:
    ent = sub.add_parser("entities", help="list, show and curate canonical entities (people, organisations, places)")
    ent_sub = ent.add_subparsers(dest="entities_command", required=True)
    ls = ent_sub.add_parser("list", help="canonical entities, most mentioned first")
    ls.add_argument("--label", choices=["PERSON", "ORG", "GPE", "LOC", "NORP", "FAC"], help="only this label")
    ls.add_argument("--like", metavar="TEXT", help="name or an alias contains TEXT (any case)")
    ls.add_argument("--limit", type=_rows, default=50, help="most entities shown")
    show = ent_sub.add_parser("show", help="one entity: names, counts, merged rows, overrides (old ids resolve)")
    show.add_argument("id", type=int)
    merge = ent_sub.add_parser("merge", help="merge the other entities into the first; the names follow it from now on")
    merge.add_argument("id", type=int, help="the entity that stays")
    merge.add_argument("others", type=int, nargs="+", metavar="ID", help="entities merged into it")
    split = ent_sub.add_parser("split", help="move the mentions written ALIAS off an entity onto their own")
    split.add_argument("id", type=int)
    split.add_argument("--alias", required=True, metavar="TEXT", help="the name as written in the mentions")
    rename = ent_sub.add_parser("rename", help="the name analysts see for an entity; rules never change it")
    rename.add_argument("id", type=int)
    rename.add_argument("name")
    consolidate = ent_sub.add_parser(
        "consolidate", help="merge rows that older versions split (one row per person, organisation, country)"
    )
    for p in (ls, show, merge, split, rename, consolidate):
        p.set_defaults(func=cmd_entities)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsflow",
        description="Ingest RSS/Atom feeds into PostgreSQL with clean text, entities and statements.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    db_parser = sub.add_parser("db", help="database management")
    db_sub = db_parser.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply pending schema migrations").set_defaults(func=cmd_db_upgrade)
    db_sub.add_parser("url", help="print the database URL in use").set_defaults(func=cmd_db_url)

    ingest_parser = sub.add_parser("ingest", help="fetch feeds and store their new articles")
    ingest_parser.add_argument("--feed", action="append", metavar="URL", help="a feed URL (repeatable)")
    ingest_parser.add_argument("--feeds", action="append", metavar="FILE", help="a file with one feed URL a line")
    ingest_parser.set_defaults(func=cmd_ingest)

    sub.add_parser("demo", help="serve the bundled sample site on loopback and ingest it").set_defaults(func=cmd_demo)

    st = sub.add_parser("statements", help="print the statements in plain-text articles as JSON lines")
    st.add_argument("files", nargs="+", metavar="FILE")
    st.set_defaults(func=cmd_statements)

    run = sub.add_parser("run", help="keep polling feeds when due and stream new items into the database")
    run.add_argument("--feed", action="append", metavar="URL", help="also follow this feed (repeatable)")
    run.add_argument("--feeds", action="append", metavar="FILE", help="register and follow the feeds in FILE")
    run.add_argument("--poll-min", type=_poll_seconds, metavar="SECONDS", help="shortest polling interval of a feed")
    run.add_argument("--poll-max", type=_poll_seconds, metavar="SECONDS", help="longest polling interval of a feed")
    run.add_argument(
        "--duration", type=_run_seconds, metavar="SECONDS", help="stop after this long (default: until a signal)"
    )
    run.set_defaults(func=cmd_run)

    tail_parser = sub.add_parser("tail", help="print new statements as they are stored")
    tail_parser.add_argument("--speaker", metavar="NAME", help="only statements by speakers matching NAME")
    tail_parser.add_argument("--entity", metavar="NAME", help="only statements from articles mentioning NAME")
    tail_parser.add_argument("--limit", type=_statements, help="stop after this many statements")
    tail_parser.add_argument("--timeout", type=_run_seconds, metavar="SECONDS", help="stop after this long")
    tail_parser.set_defaults(func=cmd_tail)

    status = sub.add_parser("status", help="recent runs, failing feeds and quarantine counts by reason")
    status.add_argument("--runs", type=_rows, default=10, help="how many recent runs to show")
    status.set_defaults(func=cmd_status)

    retry = sub.add_parser("retry", help="process quarantined items again (transient reasons unless --all)")
    retry.add_argument("--reason", metavar="R", help="only items quarantined with this reason code")
    retry.add_argument("--all", action="store_true", help="also retry items whose reason is permanent")
    retry.set_defaults(func=cmd_retry)
    _add_analyst_commands(sub)
    _add_history_commands(sub)
    _add_entity_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from .runs import RunAborted, Terminated, raise_on_sigterm

    # A run stopped by SIGTERM ends its record 'aborted' (`newsflow run` sets its own clean stop).
    restore_sigterm = raise_on_sigterm()
    try:
        settings = Settings.from_env()
        return args.func(settings, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except Exception as exc:
        if args.debug:
            raise
        from .nlp import ModelUnavailable

        known = (UsageError, db.DatabaseUnavailable, RunAborted, ModelUnavailable, ValueError, OSError)
        prefix = "error" if isinstance(exc, known) else f"unexpected error ({type(exc).__name__})"
        print(f"newsflow: {prefix}: {exc}", file=sys.stderr)
        return 2
    finally:
        restore_sigterm()


if __name__ == "__main__":
    sys.exit(main())
