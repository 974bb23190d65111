"""Writes to PostgreSQL: feeds, the item ledger, articles with what was extracted.

One transaction per article with its mentions, statements and ledger row: a failure
leaves nothing of the article behind, and a rerun finds the item still unprocessed.
Loads are idempotent: unique keys on canonical URL and content hash, ``ON CONFLICT``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

import psycopg

from . import boilerplate, dates, identity, names, stories
from . import queries as q
from .analyse import Analysis
from .entities import Cluster
from .extract import EXTRACTOR_VERSION, Extracted, content_hash
from .feeds import FeedItem


@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    etag: str | None
    last_modified: str | None
    enabled: bool
    status: str
    moved_to: str | None = None
    poll_interval_seconds: float | None = None
    consecutive_failures: int = 0

    @property
    def fetch_url(self) -> str:
        """Where to fetch the feed: its new address after a permanent redirect."""
        return self.moved_to or self.url


@dataclass(frozen=True)
class Page:
    """A fetched and extracted article page, ready to store."""

    url: str
    html: bytes
    content_type: str
    fetched_at: datetime
    extracted: Extracted


def register_feed(conn: psycopg.Connection, url: str) -> FeedRow:
    with conn.transaction():
        row = conn.execute(q.UPSERT_FEED, {"url": url}).fetchone()
    assert row is not None
    return FeedRow(*row)


FEED_LOCK_CLASS = 7_431_003  # first key of pg_advisory_lock(int, int); the second is the feed id


def lock_feed(conn: psycopg.Connection, feed_id: int, wait_seconds: float) -> bool:
    """Take the feed's session advisory lock, waiting at most ``wait_seconds``.

    Held until the connection closes: one loader per feed at a time.
    """
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %(ms)s, true)", {"ms": f"{max(1, int(wait_seconds * 1000))}ms"})
        try:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_lock(%(cls)s, %(id)s)", {"cls": FEED_LOCK_CLASS, "id": feed_id % 2_147_483_647}
                )
        except psycopg.errors.LockNotAvailable:
            return False
    return True


def feed_fetched(
    conn: psycopg.Connection,
    feed_id: int,
    *,
    title: str | None,
    site_url: str | None,
    etag: str | None,
    last_modified: str | None,
    warning: str | None,
    poll_seconds: float,
    new_items: int = 0,
    moved_to: str | None = None,
    warning_reason: str | None = None,
) -> None:
    """A successful poll; ``warning`` (with its reason code) says what was off with the feed."""
    if warning is not None and warning_reason is None:
        warning_reason = "feed_malformed"
    with conn.transaction():
        conn.execute(
            q.FEED_FETCHED,
            {
                "id": feed_id,
                "title": title,
                "site_url": site_url,
                "etag": etag,
                "last_modified": last_modified,
                "warning": warning,
                "warning_reason": warning_reason if warning is not None else None,
                "poll_seconds": poll_seconds,
                "new_items": new_items,
                "moved_to": moved_to,
            },
        )


def feed_failed(
    conn: psycopg.Connection,
    feed_id: int,
    reason: str,
    message: str,
    *,
    disable_after: int,
    poll_seconds: float,
    weight: float = 1.0,
) -> None:
    with conn.transaction():
        conn.execute(
            q.FEED_FAILED,
            {
                "id": feed_id,
                "reason": reason,
                "message": message[:2000],
                "disable_after": disable_after,
                "poll_seconds": poll_seconds,
                "weight": weight,
            },
        )


def save_validators(conn: psycopg.Connection, feed_id: int, etag: str | None, last_modified: str | None) -> None:
    with conn.transaction():
        conn.execute(q.SAVE_VALIDATORS, {"id": feed_id, "etag": etag, "last_modified": last_modified})


def known_items(
    conn: psycopg.Connection, feed_id: int, keys: list[str], retry_after: float = 0.0
) -> dict[str, tuple[str, bool]]:
    """Ledger state of these items and whether each is due for a retry now.

    A transiently quarantined item is due once ``retry_after`` x its attempts have passed.
    """
    rows = conn.execute(q.KNOWN_ITEMS, {"feed_id": feed_id, "keys": keys, "retry_after": retry_after}).fetchall()
    return {key: (state, retry_now) for key, state, retry_now in rows}


def touch_items(conn: psycopg.Connection, feed_id: int, keys: list[str]) -> None:
    if keys:
        with conn.transaction():
            conn.execute(q.TOUCH_ITEMS, {"feed_id": feed_id, "keys": keys})


def article_for_url(conn: psycopg.Connection, url: str) -> int | None:
    row = conn.execute(q.ARTICLE_BY_URL, {"url": url}).fetchone()
    return row[0] if row else None


def _record_item(
    conn: psycopg.Connection,
    run_id: int,
    feed_id: int,
    item: FeedItem,
    *,
    state: str,
    reason: str | None = None,
    message: str | None = None,
    transient: bool = False,
    article_id: int | None = None,
    url: str | None = None,
) -> int:
    row = conn.execute(
        q.UPSERT_ITEM,
        {
            "feed_id": feed_id,
            "item_key": item.key,
            "guid": item.guid,
            "url": url or item.link,
            "title": item.title,
            "published_at": item.published_at,
            "state": state,
            "reason": reason,
            "message": message[:2000] if message else None,
            "transient": transient,
            "article_id": article_id,
        },
    ).fetchone()
    assert row is not None
    conn.execute(q.INSERT_RUN_ITEM, {"run_id": run_id, "item_id": row[0], "state": state, "reason": reason})
    return row[0]


def quarantine(
    conn: psycopg.Connection,
    run_id: int,
    feed_id: int,
    item: FeedItem,
    reason: str,
    message: str,
    transient: bool,
) -> None:
    with conn.transaction():
        _record_item(
            conn,
            run_id,
            feed_id,
            item,
            state="quarantined",
            reason=reason,
            message=message,
            transient=transient,
        )


def mark_duplicate(
    conn: psycopg.Connection,
    run_id: int,
    feed_id: int,
    item: FeedItem,
    article_id: int,
    url: str | None = None,
) -> None:
    with conn.transaction():
        _record_item(conn, run_id, feed_id, item, state="duplicate", article_id=article_id, url=url)


def _entity_ids(conn: psycopg.Connection, clusters: Iterable[Cluster]) -> dict[int, int]:
    """Link in-article clusters to canonical ``entities`` rows, creating them as needed.

    The rules, and the indexed lookups they need, live in ``identity`` (one owner for name
    matching): compatible full names, a lone surname only to the person who dominates it,
    countries by ISO code, organisations without legal form, analysts' pins first.
    """
    return identity.link(conn, clusters)


def write_analysis(conn: psycopg.Connection, article_id: int, analysis: Analysis) -> None:
    """Replace an article's derived rows (mentions, statements) with ``analysis``."""
    conn.execute(q.DELETE_DERIVED, {"article_id": article_id})
    entity_ids = _entity_ids(conn, analysis.clusters.values())
    if analysis.mentions:
        conn.execute(
            q.INSERT_MENTIONS,
            {
                "article_id": article_id,
                "entity_id": [entity_ids[m.cluster] for m in analysis.mentions],
                "text": [m.text for m in analysis.mentions],
                "label": [analysis.clusters[m.cluster].label for m in analysis.mentions],
                "start": [m.start for m in analysis.mentions],
                "end": [m.end for m in analysis.mentions],
            },
        )
    if analysis.statements:
        rows = [s.as_dict() for s in analysis.statements]
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        columns["speaker_entity_id"] = [
            entity_ids.get(s.speaker_cluster) if s.speaker_cluster is not None else None for s in analysis.statements
        ]
        conn.execute(q.INSERT_STATEMENTS, {**columns, "article_id": article_id, "extractor_version": analysis.version})


def store_article(
    conn: psycopg.Connection,
    run_id: int,
    feed_id: int,
    item: FeedItem,
    page: Page,
    analysis: Analysis,
    published_at: datetime | None,
) -> tuple[str, int]:
    """Store one article with everything derived from it, atomically.

    Returns ("stored", id) or ("duplicate", id of the article it duplicates). The stored
    ``published_at`` settles the page's date against the feed item's (``dates.settle``);
    the ``published_at`` given is used only when neither has one. Lines the host's other
    pages carry are left out of the text first (``host_boilerplate``). A duplicate is the same
    URL, or the same text on the same outlet; a copy on another outlet is stored and joins the
    story of the text it copies (``join_story``).
    """
    host = host_of(page.url)
    original = page.extracted
    ex, analysis = host_boilerplate(conn, host, original, analysis)
    settled, source = dates.settle(ex.published_at, ex.published_at_source, item.published_at)
    if settled is None and published_at is not None:
        settled = published_at
    digest = content_hash(ex.text)
    sig = stories.signature(ex.text)
    with conn.transaction():
        lock_story_keys(conn, sig, digest)
        row = conn.execute(
            q.INSERT_ARTICLE,
            {
                "url": page.url,
                "feed_id": feed_id,
                "title": ex.title,
                "text": ex.text,
                "published_at": settled,
                "page_published_at": ex.published_at,
                "feed_published_at": item.published_at,
                "published_at_source": source if settled is not None else None,
                "author": ex.author,
                "language": ex.language,
                "site_name": ex.site_name,
                "description": ex.description,
                "raw_html": page.html,
                "content_type": page.content_type,
                "fetched_at": page.fetched_at,
                "content_hash": digest,
                "word_count": len(ex.text.split()),
                "extractor_version": EXTRACTOR_VERSION,
                "nlp_version": None if analysis.skipped or analysis.error else analysis.version,
                "nlp_skipped": analysis.skipped,
                "nlp_error": analysis.error,
            },
        ).fetchone()
        if row is None:
            existing = conn.execute(q.ARTICLE_BY_URL_OR_HASH, {"url": page.url, "content_hash": digest}).fetchone()
            assert existing is not None, "conflict without a conflicting row"
            _record_item(conn, run_id, feed_id, item, state="duplicate", article_id=existing[0], url=page.url)
            return "duplicate", existing[0]
        article_id = row[0]
        join_story(conn, article_id, digest, sig)
        write_authors(conn, article_id, ex.authors)
        record_host_lines(conn, host, original)
        write_analysis(conn, article_id, analysis)
        # An article stored without its analysis says so in the ledger; `newsflow retry` completes it.
        pending = "nlp_failed" if analysis.error else None
        _record_item(
            conn,
            run_id,
            feed_id,
            item,
            state="stored",
            reason=pending,
            message=analysis.error,
            transient=pending is not None,
            article_id=article_id,
            url=page.url,
        )
        notify_stored(conn, article_id, feed_id)
    return "stored", article_id


STORY_CANDIDATES = 32  # signatures compared per article: those sharing the most band keys


def _hash_key(digest: str) -> int:
    return int.from_bytes(bytes.fromhex(digest[:16]), "little", signed=True)


def lock_story_keys(conn: psycopg.Connection, sig: stories.Signature, digest: str) -> None:
    """Hold the article's band keys and text hash until its transaction ends.

    Two loaders storing copies of one story at once share keys: the second waits for the
    first to commit and then finds its bands, so the copies end in one story. Keys are taken
    in order, so loaders never wait on each other in a cycle.
    """
    keys = sorted({*sig.band_keys, _hash_key(digest)})
    conn.execute(q.LOCK_STORY_KEYS, {"keys": keys})


def matching_story(conn: psycopg.Connection, article_id: int, digest: str, sig: stories.Signature) -> int | None:
    """The story of the closest stored copy of this text, or None when it starts a story.

    Candidates come from index probes of ``story_bands``; each is confirmed on its full
    signature (``stories.same_story``). An exact copy of the text on another outlet is the
    same story whatever its length.
    """
    rows = conn.execute(
        q.STORY_CANDIDATES,
        {
            "keys": list(sig.band_keys),
            "limit": STORY_CANDIDATES,
            "content_hash": digest,
            "bands": stories.BANDS + 1,
            "version": stories.SIGNATURE_VERSION,
            "article_id": article_id,
        },
    ).fetchall()
    best: tuple[float, int] | None = None
    for _id, story_id, _shared, hashvalues, shingles, words, exact in rows:
        if exact:
            closeness = 3.0
        elif hashvalues is None:
            continue
        else:
            other = stories.from_row(hashvalues, shingles, words)
            if not stories.same_story(sig, other):
                continue
            closeness = stories.score(sig, other)
        if best is None or (closeness, -story_id) > (best[0], -best[1]):
            best = (closeness, story_id)
    return best[1] if best else None


def sign_article(conn: psycopg.Connection, article_id: int, sig: stories.Signature) -> None:
    """Store the signature and band keys of an article that has none yet.

    (A new signature version would be a migration that empties ``story_bands`` and signs
    every article again: bands are found by key, not by article.)
    """
    conn.execute(
        q.UPSERT_SIGNATURE,
        {
            "article_id": article_id,
            "version": stories.SIGNATURE_VERSION,
            "words": sig.words,
            "shingles": sig.shingles,
            "hashvalues": sig.hashvalues,
        },
    )
    if sig.band_keys:
        conn.execute(q.INSERT_BANDS, {"article_id": article_id, "keys": list(sig.band_keys)})


def put_in_story(conn: psycopg.Connection, article_id: int, story_id: int, *, new: bool = False) -> None:
    """Make the article a member of ``story_id`` and give every member its role again."""
    if new:
        conn.execute(q.START_STORY, {"story_id": story_id, "article_id": article_id})
        return
    conn.execute(q.LOCK_STORY, {"story_id": story_id})
    conn.execute(q.JOIN_STORY, {"story_id": story_id, "article_id": article_id})


def join_story(conn: psycopg.Connection, article_id: int, digest: str, sig: stories.Signature) -> int:
    """Put a newly stored article in its story (a new one when it copies none); sign it.

    Runs inside the article's transaction, after ``lock_story_keys``.
    """
    story_id = matching_story(conn, article_id, digest, sig)
    new = story_id is None
    if story_id is None:
        row = conn.execute(q.INSERT_STORY).fetchone()
        assert row is not None
        story_id = row[0]
    put_in_story(conn, article_id, story_id, new=new)
    sign_article(conn, article_id, sig)
    return story_id


def group_unsigned(conn: psycopg.Connection, *, batch: int = 200) -> dict[str, int]:
    """Sign the articles stored before stories existed and group the copies among them.

    Run by ``newsflow db upgrade`` after migration 010 (each article then is a story of its
    own) and by ``newsflow stories --group``. One transaction per article, oldest id first, so
    an interrupted run resumes where it stopped. An article already sharing its story with
    others only gets its signature (membership stays); one alone joins the story it copies.
    """
    counts = {"signed": 0, "grouped": 0}
    after = 0
    while True:
        rows = conn.execute(q.UNSIGNED_ARTICLES, {"after": after, "limit": batch}).fetchall()
        if not rows:
            return counts
        for article_id, text, digest, own_story in rows:
            after = article_id
            sig = stories.signature(text)
            with conn.transaction():
                lock_story_keys(conn, sig, digest)
                alone = own_story is None or conn.execute(q.STORY_SIZE, {"story_id": own_story}).fetchone()[0] <= 1
                story_id = matching_story(conn, article_id, digest, sig) if alone else None
                if story_id is not None and story_id != own_story:
                    put_in_story(conn, article_id, story_id)
                    if own_story is not None:
                        conn.execute(q.DELETE_EMPTY_STORY, {"story_id": own_story})
                    counts["grouped"] += 1
                elif own_story is None:
                    row = conn.execute(q.INSERT_STORY).fetchone()
                    assert row is not None
                    put_in_story(conn, article_id, row[0], new=True)
                sign_article(conn, article_id, sig)
            counts["signed"] += 1


def host_of(url: str) -> str | None:
    """The host whose pages share boilerplate: lower case, without "www."."""
    host = urlsplit(url).hostname
    return host.removeprefix("www.") if host else None


def _fingerprint_ints(prints: Iterable[str]) -> list[int]:
    return sorted({int.from_bytes(bytes.fromhex(p), "big", signed=True) for p in prints})


def _fingerprint_hex(value: int) -> str:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big").hex()


def _candidate_lines(ex: Extracted) -> list[str]:
    """Fingerprints of the lines short enough to be boilerplate (the only ones recorded)."""
    lines = ex.text.split("\n")
    if len(lines) != len(ex.line_fingerprints):
        return []
    limit = boilerplate.HOST_MAX_WORDS
    return [p for line, p in zip(lines, ex.line_fingerprints, strict=True) if len(line.split()) <= limit]


def record_host_lines(conn: psycopg.Connection, host: str | None, ex: Extracted) -> None:
    """Count one more page of ``host`` for each short line of the stored page."""
    prints = _candidate_lines(ex)
    if host and prints:
        conn.execute(q.RECORD_HOST_LINES, {"host": host, "fingerprints": _fingerprint_ints(prints)})


def host_boilerplate(
    conn: psycopg.Connection, host: str | None, ex: Extracted, analysis: Analysis
) -> tuple[Extracted, Analysis]:
    """The article without the lines many other pages of its host carry (one indexed lookup).

    The analysis was made on the full text in a worker: its spans are moved to the shorter
    text, and mentions and statements inside a dropped line go with it.
    """
    prints = _candidate_lines(ex)
    if not host or not prints:
        return ex, analysis
    rows = conn.execute(q.HOST_LINE_PAGES, {"host": host, "fingerprints": _fingerprint_ints(prints)}).fetchall()
    seen = {_fingerprint_hex(f): n for f, n in rows}
    drop = boilerplate.recurring_lines(ex.text, ex.line_fingerprints, seen)
    if not drop:
        return ex, analysis
    text, cuts = boilerplate.cut_lines(ex.text, drop)
    gone = set(drop)
    kept_prints = tuple(p for i, p in enumerate(ex.line_fingerprints) if i not in gone)
    return replace(ex, text=text, line_fingerprints=kept_prints), _analysis_after_cuts(analysis, cuts)


def _analysis_after_cuts(analysis: Analysis, cuts: list[tuple[int, int, int]]) -> Analysis:
    def keeps(*spans: tuple[int | None, int | None]) -> bool:
        return all(a is None or b is None or boilerplate.span_survives(a, b, cuts) for a, b in spans)

    def at(offset: int | None, end: bool = False) -> int | None:
        return None if offset is None else boilerplate.moved(offset, end, cuts)

    mentions = [
        replace(m, start=at(m.start), end=at(m.end, True)) for m in analysis.mentions if keeps((m.start, m.end))
    ]
    statements = [
        replace(
            s,
            quote_start=at(s.quote_start),
            quote_end=at(s.quote_end, True),
            speaker_start=at(s.speaker_start),
            speaker_end=at(s.speaker_end, True),
            cue_start=at(s.cue_start),
            cue_end=at(s.cue_end, True),
        )
        for s in analysis.statements
        if keeps((s.quote_start, s.quote_end), (s.speaker_start, s.speaker_end), (s.cue_start, s.cue_end))
    ]
    used = {m.cluster for m in mentions} | {s.speaker_cluster for s in statements if s.speaker_cluster is not None}
    clusters = {k: c for k, c in analysis.clusters.items() if k in used}
    return replace(analysis, mentions=mentions, statements=statements, clusters=clusters)


def write_authors(conn: psycopg.Connection, article_id: int, authors: Iterable[str]) -> None:
    """The article's authors, in byline order, each with its parsed-name key."""
    people = list(authors)
    if people:
        conn.execute(
            q.INSERT_ARTICLE_AUTHORS,
            {
                "article_id": article_id,
                "position": list(range(1, len(people) + 1)),
                "name": people,
                "name_key": [names.parse_person(n).key() for n in people],
            },
        )


NOTIFY_CHANNEL = "newsflow_articles"
_IDS_PER_NOTIFICATION = 500  # keeps each payload well under PostgreSQL's 8000-byte limit


def notify_stored(conn: psycopg.Connection, article_id: int, feed_id: int | None) -> None:
    """Tell listeners an article and its statements are queryable (delivered at commit).

    Payload: JSON ``{"article_id", "feed_id", "statement_ids"}``, ids only, never bodies.
    An article with many statements is announced in several notifications.
    """
    ids = [r[0] for r in conn.execute(q.STATEMENT_IDS, {"article_id": article_id})]
    chunks = [ids[i : i + _IDS_PER_NOTIFICATION] for i in range(0, len(ids), _IDS_PER_NOTIFICATION)] or [[]]
    for chunk in chunks:
        payload = json.dumps({"article_id": article_id, "feed_id": feed_id, "statement_ids": chunk})
        conn.execute(q.NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": payload})


def done_urls(conn: psycopg.Connection, feed_id: int, urls: list[str]) -> set[str]:
    """Which of ``urls`` this feed already stored or matched, under any item key.

    A backfill finds the same article in the feed (keyed by guid) and in a sitemap (keyed
    by URL); the URL is what tells it the work is done.
    """
    if not urls:
        return set()
    rows = conn.execute(q.DONE_ITEM_URLS, {"feed_id": feed_id, "urls": urls}).fetchall()
    return {row[0] for row in rows}
