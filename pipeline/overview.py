"""Plain-text tables of what is stored, for the terminal."""

from __future__ import annotations

import textwrap

import psycopg

OVERVIEW = """
SELECT a.id, a.title, a.published_at,
       (SELECT count(*) FROM entity_mentions m WHERE m.article_id = a.id) AS mentions,
       (SELECT count(*) FROM statements s WHERE s.article_id = a.id) AS statements
FROM articles a JOIN feeds f ON f.id = a.feed_id
WHERE f.url = %(feed_url)s
ORDER BY a.published_at NULLS LAST, a.id
"""

STATEMENTS = """
SELECT kind, coalesce(speaker, '(unknown)'), cue, quote FROM statements
WHERE article_id = %(article_id)s ORDER BY quote_start
"""


def stored_overview(conn: psycopg.Connection, feed_url: str, quote_width: int = 90) -> str:
    lines: list[str] = []
    for article_id, title, published, mentions, n_statements in conn.execute(OVERVIEW, {"feed_url": feed_url}):
        when = published.strftime("%Y-%m-%d %H:%M") if published else "undated"
        lines.append(f"[{article_id}] {title} ({when}; {mentions} entity mentions, {n_statements} statements)")
        for kind, speaker, cue, quote in conn.execute(STATEMENTS, {"article_id": article_id}):
            short = textwrap.shorten(quote.replace("\n", " "), quote_width, placeholder=" ...")
            lines.append(f"    {kind:<8} {speaker} ({cue}): {short}")
    return "\n".join(lines) if lines else "nothing stored for this feed"
