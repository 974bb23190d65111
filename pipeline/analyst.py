"""The analysts' read side: search, quotes by speaker, and the figures behind the report.

Every query reads the views of ``sql/003_analyst.sql`` and nothing else, so it runs as the
read-only ``newsflow_analyst`` role. Queries are parameterised by name; the optional filters
are composed with ``psycopg.sql``, never by formatting values into SQL.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import class_row

HIGHLIGHT = "**"
_MARKS = f'StartSel="{HIGHLIGHT}", StopSel="{HIGHLIGHT}"'
_QUOTE_HEADLINE = f"HighlightAll=true, {_MARKS}"  # a quote is short: show all of it
_ARTICLE_HEADLINE = f'MaxWords=30, MinWords=10, MaxFragments=2, FragmentDelimiter=" ... ", {_MARKS}'
_RELATIVE = re.compile(r"^(\d+)\s*([dw])$")


class SchemaMissing(RuntimeError):
    """The database has no analyst views yet (migrations not applied)."""


def parse_since(value: str) -> datetime:
    """``YYYY-MM-DD``, an ISO timestamp, or ``7d`` / ``2w`` (days or weeks ago), as UTC.

    A date means its midnight in UTC, like the ``day`` columns of the views.
    """
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        n, unit = int(relative.group(1)), relative.group(2)
        days = n * 7 if unit == "w" else n
        start = datetime.now(UTC).date() - timedelta(days=days)
        return datetime(start.year, start.month, start.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {value!r} (use YYYY-MM-DD, an ISO timestamp, or 7d / 2w)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ensure_schema(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT to_regclass('public.v_statements') IS NOT NULL").fetchone()
    if not (row and row[0]):
        raise SchemaMissing("the database has no analyst views: run `newsflow db upgrade` first")


def _like(fragment: str) -> str:
    """A case-insensitive LIKE pattern matching ``fragment`` anywhere, wildcards escaped."""
    escaped = fragment.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """A match in a quote (``source='quote'``) or in an article's title or text."""

    source: str
    day: date
    speaker: str | None
    kind: str | None
    snippet: str
    title: str | None
    url: str
    rank: float


_QUOTE_HITS = """
SELECT 'quote' AS source, s.day, s.speaker, s.kind, s.quote AS body, s.article_title AS title,
       s.article_url AS url, ts_rank(s.quote_tsv, q.tsq) AS rank, s.dated_at
FROM v_statements s, q
WHERE s.quote_tsv @@ q.tsq AND s.dated_at >= coalesce(%(since)s::timestamptz, '-infinity')
  {speaker_filter}
ORDER BY s.dated_at DESC, rank DESC
LIMIT %(limit)s
"""

_ARTICLE_HITS = """
SELECT 'article' AS source, a.day, NULL::text AS speaker, NULL::text AS kind,
       coalesce(t.text, '') AS body, a.title, a.url, ts_rank(a.search_tsv, q.tsq) AS rank, a.dated_at
FROM v_articles a JOIN articles t ON t.id = a.article_id, q
WHERE a.search_tsv @@ q.tsq AND a.dated_at >= coalesce(%(since)s::timestamptz, '-infinity')
  {speaker_filter}
ORDER BY a.dated_at DESC, rank DESC
LIMIT %(limit)s
"""

_SEARCH = """
WITH q AS (SELECT websearch_to_tsquery('english', %(query)s) AS tsq),
quote_hits AS ({quotes}),
article_hits AS ({articles})
SELECT h.source, h.day, h.speaker, h.kind,
       ts_headline('english', h.body, q.tsq,
                   CASE h.source WHEN 'quote' THEN %(quote_headline)s ELSE %(article_headline)s END
       ) AS snippet,
       h.title, h.url, h.rank
FROM (SELECT * FROM quote_hits UNION ALL SELECT * FROM article_hits) h, q
ORDER BY h.source DESC, h.dated_at DESC, h.rank DESC
"""


def search(
    conn: psycopg.Connection,
    query: str,
    *,
    speaker: str | None = None,
    since: datetime | None = None,
    limit: int = 20,
) -> list[Hit]:
    """Quotes and articles matching ``query`` (web-search syntax: "a phrase", or, -word).

    Quotes come first, then articles, each newest first, at most ``limit`` of each. With
    ``speaker``, quotes are those of the entities the name stands for (a name that is no
    entity: speakers whose name contains it), and articles those quoting such a speaker.
    """
    ensure_schema(conn)
    quote_filter = article_filter = sql.SQL("")
    speaker_ids: list[int] = []
    if speaker:
        speaker_ids = speaker_entities(conn, speaker)  # "Obama" = "Barack Obama", as in quotes()
        match = "speaker_entity_id = ANY(%(speaker_ids)s)" if speaker_ids else "speaker ILIKE %(speaker)s"
        quote_filter = sql.SQL("AND s." + match)
        article_filter = sql.SQL(
            "AND EXISTS (SELECT FROM v_statements x WHERE x.article_id = a.article_id AND x." + match + ")"
        )
    statement = sql.SQL(_SEARCH).format(
        quotes=sql.SQL(_QUOTE_HITS).format(speaker_filter=quote_filter),
        articles=sql.SQL(_ARTICLE_HITS).format(speaker_filter=article_filter),
    )
    params = {
        "query": query,
        "since": since,
        "limit": limit,
        "speaker": _like(speaker) if speaker else None,
        "speaker_ids": speaker_ids,
        "quote_headline": _QUOTE_HEADLINE,
        "article_headline": _ARTICLE_HEADLINE,
    }
    with conn.cursor(row_factory=class_row(Hit)) as cur:
        return cur.execute(statement, params).fetchall()


# Quotes by speaker --------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    day: date
    speaker: str
    kind: str
    cue: str | None
    quote: str
    title: str | None
    url: str


_QUOTES = """
SELECT day, speaker, kind, cue, quote, article_title AS title, article_url AS url
FROM v_statements
WHERE {speaker_filter} AND dated_at >= coalesce(%(since)s::timestamptz, '-infinity')
ORDER BY dated_at DESC, article_id, quote_start
LIMIT %(limit)s
"""


def speaker_entities(conn: psycopg.Connection, speaker: str) -> list[int]:
    """The canonical entities a typed speaker name stands for, by the entity linking rules.

    "Obama" and "Barack Obama" are the same person's row ("Obama" alone is the Obama who
    dominates the name). Empty on a database without entity identity (before migration 7).
    """
    row = conn.execute("SELECT to_regclass('public.entity_overrides') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return []
    from .identity import lookup

    return lookup(conn, speaker)


def _speaker_filter(conn: psycopg.Connection, speaker: str, column: str = "speaker") -> tuple[sql.Composable, dict]:
    """Statements of the entities ``speaker`` names; the name as written when it names none."""
    ids = speaker_entities(conn, speaker)
    if ids:
        return sql.SQL("{} = ANY(%(speaker_ids)s)").format(sql.Identifier(f"{column}_entity_id")), {"speaker_ids": ids}
    return sql.SQL("{} ILIKE %(speaker)s").format(sql.Identifier(column)), {"speaker": _like(speaker)}


def quotes(conn: psycopg.Connection, speaker: str, *, since: datetime | None = None, limit: int = 50) -> list[Quote]:
    """What a speaker said, newest articles first.

    ``speaker`` is resolved to canonical entities as the linker would ("Obama" = "Barack
    Obama"); a name that is no entity matches speakers whose name contains it, any case.
    """
    ensure_schema(conn)
    where, params = _speaker_filter(conn, speaker)
    query = sql.SQL(_QUOTES).format(speaker_filter=where)
    with conn.cursor(row_factory=class_row(Quote)) as cur:
        return cur.execute(query, {**params, "since": since, "limit": limit}).fetchall()


# Figures for the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: date
    articles: int
    statements: int


@dataclass(frozen=True)
class SpeakerCount:
    speaker: str
    statements: int
    articles: int
    direct: int
    indirect: int
    mixed: int


@dataclass(frozen=True)
class EntityCount:
    entity: str
    label: str
    articles: int
    mentions: int


@dataclass(frozen=True)
class PairCount:
    entity_a: str
    label_a: str
    entity_b: str
    label_b: str
    articles: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    items: int
    retrying: int


@dataclass(frozen=True)
class Totals:
    articles: int
    statements: int
    speakers: int
    entities: int
    feeds: int
    quarantined: int


_SINCE = "coalesce(%(since)s::timestamptz, '-infinity')"

_ACTIVITY = f"""
SELECT day, sum(articles)::int AS articles, sum(statements)::int AS statements
FROM (
    SELECT day, 1 AS articles, statements FROM v_articles WHERE dated_at >= {_SINCE}
) per_article
GROUP BY day ORDER BY day
"""

_TOP_SPEAKERS = f"""
SELECT speaker, count(*)::int AS statements, count(DISTINCT article_id)::int AS articles,
       (count(*) FILTER (WHERE kind = 'direct'))::int AS direct,
       (count(*) FILTER (WHERE kind = 'indirect'))::int AS indirect,
       (count(*) FILTER (WHERE kind = 'mixed'))::int AS mixed
FROM v_statements
WHERE speaker_entity_id IS NOT NULL AND dated_at >= {_SINCE}
GROUP BY speaker_entity_id, speaker
ORDER BY statements DESC, articles DESC, speaker
LIMIT %(limit)s
"""

_TOP_ENTITIES = f"""
SELECT e.name AS entity, e.label, count(DISTINCT m.article_id)::int AS articles,
       count(*)::int AS mentions
FROM entity_mentions m
JOIN entities e ON e.id = m.entity_id
JOIN v_articles a ON a.article_id = m.article_id
WHERE a.dated_at >= {_SINCE}
GROUP BY e.id, e.name, e.label
ORDER BY articles DESC, mentions DESC, entity
LIMIT %(limit)s
"""

_TOP_PAIRS = f"""
SELECT entity_a, label_a, entity_b, label_b, count(*)::int AS articles
FROM v_comentions
WHERE dated_at >= {_SINCE}
GROUP BY entity_a_id, entity_a, label_a, entity_b_id, entity_b, label_b
ORDER BY articles DESC, least(sum(mentions_a), sum(mentions_b)) DESC, entity_a, entity_b
LIMIT %(limit)s
"""

_QUARANTINE_REASONS = f"""
SELECT reason, count(*)::int AS items, (count(*) FILTER (WHERE transient))::int AS retrying
FROM v_quarantine
WHERE dated_at >= {_SINCE}
GROUP BY reason
ORDER BY items DESC, reason
"""

_TOTALS = f"""
SELECT
    (SELECT count(*) FROM v_articles WHERE dated_at >= {_SINCE})::int AS articles,
    (SELECT count(*) FROM v_statements WHERE dated_at >= {_SINCE})::int AS statements,
    (SELECT count(DISTINCT speaker_entity_id) FROM v_statements WHERE dated_at >= {_SINCE})::int
        AS speakers,
    (SELECT count(DISTINCT m.entity_id) FROM entity_mentions m
       JOIN v_articles a ON a.article_id = m.article_id WHERE a.dated_at >= {_SINCE})::int AS entities,
    (SELECT count(DISTINCT feed_id) FROM v_articles WHERE dated_at >= {_SINCE})::int AS feeds,
    (SELECT count(*) FROM v_quarantine WHERE dated_at >= {_SINCE})::int AS quarantined
"""


def _rows(conn: psycopg.Connection, cls: type, query: str, params: dict[str, object]) -> list:
    with conn.cursor(row_factory=class_row(cls)) as cur:
        return cur.execute(query, params).fetchall()  # type: ignore[arg-type]  # module constants


def activity(conn: psycopg.Connection, since: datetime | None) -> list[DayCount]:
    """Articles and statements per day (UTC) that has any article."""
    return _rows(conn, DayCount, _ACTIVITY, {"since": since})


def top_speakers(conn: psycopg.Connection, since: datetime | None, limit: int = 15) -> list[SpeakerCount]:
    """Speakers identified as entities, by number of statements."""
    return _rows(conn, SpeakerCount, _TOP_SPEAKERS, {"since": since, "limit": limit})


def top_entities(conn: psycopg.Connection, since: datetime | None, limit: int = 15) -> list[EntityCount]:
    """Entities by the number of articles naming them."""
    return _rows(conn, EntityCount, _TOP_ENTITIES, {"since": since, "limit": limit})


def top_pairs(conn: psycopg.Connection, since: datetime | None, limit: int = 15) -> list[PairCount]:
    """Pairs of entities by the number of articles naming both."""
    return _rows(conn, PairCount, _TOP_PAIRS, {"since": since, "limit": limit})


def quarantine_reasons(conn: psycopg.Connection, since: datetime | None) -> list[ReasonCount]:
    """Quarantined feed items by reason (items dated by their feed date, else first sighting)."""
    return _rows(conn, ReasonCount, _QUARANTINE_REASONS, {"since": since})


def totals(conn: psycopg.Connection, since: datetime | None) -> Totals:
    rows = _rows(conn, Totals, _TOTALS, {"since": since})
    return rows[0]


# Terminal tables ----------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int | None]) -> str:
    """A plain-text table; cells wrap within their column's width (None: never wrap).

    Words are never split, so a URL longer than its column overflows instead of breaking.
    """
    cells: list[list[list[str]]] = []
    for row in [headers, *rows]:
        wrapped = []
        for value, width in zip(row, widths, strict=True):
            text = "" if value is None else str(value)
            lines: list[str] = []
            for part in text.split("\n"):
                if width is None:
                    lines.append(part)
                else:
                    lines += textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False) or [""]
            wrapped.append(lines or [""])
        cells.append(wrapped)
    col_widths = [max(len(line) for row in cells for line in row[i]) for i in range(len(headers))]
    spaced = any(len(c) > 1 for row in cells[1:] for c in row)  # blank lines between tall rows
    out: list[str] = []
    for n, row in enumerate(cells):
        height = max(len(c) for c in row)
        if spaced and n > 1:
            out.append("")
        for i in range(height):
            parts = [(col[i] if i < len(col) else "").ljust(w) for col, w in zip(row, col_widths, strict=True)]
            out.append("  ".join(parts).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in col_widths))
    return "\n".join(out)


def _text_width(fixed: int, minimum: int = 40) -> int:
    columns = shutil.get_terminal_size((120, 24)).columns
    return max(minimum, columns - fixed)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _with_source(text: str, title: str | None, url: str, width: int) -> str:
    """The text, then the article it is from: its title (shortened) and URL on their own lines."""
    title_line = textwrap.shorten(f"in: {title or '(untitled)'}", width, placeholder=" ...")
    return f"{_one_line(text)}\n{title_line}\n{url}"


def hits_table(hits: Sequence[Hit]) -> str:
    if not hits:
        return "no matches"
    width = _text_width(10 + 2 + 22 + 2)
    rows = [
        (
            h.day.isoformat(),
            h.speaker or ("(article)" if h.source == "article" else "(unknown)"),
            _with_source(h.snippet, h.title, h.url, width),
        )
        for h in hits
    ]
    return render_table(("date", "speaker", "match"), rows, (None, 22, width))


def quotes_table(found: Sequence[Quote]) -> str:
    if not found:
        return "no statements found"
    width = _text_width(10 + 2 + 22 + 2 + 8 + 2)
    rows = [(q.day.isoformat(), q.speaker, q.kind, _with_source(q.quote, q.title, q.url, width)) for q in found]
    return render_table(("date", "speaker", "kind", "statement"), rows, (None, 22, None, width))


# Stories (sql/010_stories.sql) ------------------------------------------------------------


@dataclass(frozen=True)
class StoryCount:
    story_id: int
    title: str | None
    first_seen_at: datetime
    first_outlet: str | None
    outlets: int
    articles: int
    updates: int
    outlet_list: list[str]


@dataclass(frozen=True)
class CarriedQuote:
    story_id: int
    quote: str
    speaker: str | None
    kind: str
    first_seen_at: datetime
    outlets: int
    outlet_list: list[str]


_CARRIED_STORIES = f"""
SELECT story_id, title, first_seen_at, first_outlet, outlets::int, articles::int, updates::int, outlet_list
FROM v_stories
WHERE first_seen_at >= {_SINCE} AND outlets >= %(min_outlets)s
ORDER BY outlets DESC, articles DESC, first_seen_at, story_id
LIMIT %(limit)s
"""

_CARRIED_QUOTES = f"""
SELECT story_id, quote, speaker, kind, first_seen_at, outlets::int, outlet_list
FROM v_statement_outlets
WHERE first_seen_at >= {_SINCE} AND outlets >= %(min_outlets)s
ORDER BY outlets DESC, first_seen_at, story_id, quote
LIMIT %(limit)s
"""


def carried_stories(
    conn: psycopg.Connection, since: datetime | None, *, min_outlets: int = 1, limit: int = 20
) -> list[StoryCount]:
    """Stories first seen from ``since`` on, by the number of outlets that carried them."""
    return _rows(conn, StoryCount, _CARRIED_STORIES, {"since": since, "min_outlets": min_outlets, "limit": limit})


def carried_quotes(
    conn: psycopg.Connection, since: datetime | None, *, min_outlets: int = 2, limit: int = 15
) -> list[CarriedQuote]:
    """Quotes by the number of outlets that carried them (one row per quote and story)."""
    return _rows(conn, CarriedQuote, _CARRIED_QUOTES, {"since": since, "min_outlets": min_outlets, "limit": limit})


def _outlets(names: Sequence[str], shown: int = 6) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def stories_table(found: Sequence[StoryCount]) -> str:
    if not found:
        return "no stories found"
    width = _text_width(16 + 2 + 7 + 2 + 8 + 2)
    rows = [
        (
            f"{s.first_seen_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            s.outlets,
            s.articles,
            f"{_one_line(s.title or '(untitled)')}\nfirst: {s.first_outlet}\nalso: {_outlets(s.outlet_list[1:])}"
            if s.outlets > 1
            else f"{_one_line(s.title or '(untitled)')}\nfirst: {s.first_outlet}",
        )
        for s in found
    ]
    return render_table(("first seen (UTC)", "outlets", "articles", "story"), rows, (None, None, None, width))
