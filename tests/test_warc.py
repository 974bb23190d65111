"""WARC and ARC input: the reader on hostile files, loading with filters, the per-file ledger,
kill -9 and rerun, CC-NEWS months over a loopback imitation of Common Crawl.

Every archive is written at test time: WARC records with FastWARC (one gzip member per
record, as Common Crawl writes them), ARC files by hand (FastWARC writes no ARC; warcio,
a dev dependency, reads them back to check they are well-formed ARC). The pages are made
here (tests/pages.py), not taken from AEB.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastwarc import GzipWriter, WarcRecord, WarcRecordType

from pipeline.backfill import Window
from pipeline.webarchive.load import Filters, load_warc, read_domains
from pipeline.webarchive.reader import LocalSource, Record, Unreadable, detect_format, records

from .conftest import table_counts
from .pages import news_page

ROOT = Path(__file__).resolve().parents[1]
SINCE, UNTIL = "2022-11-01", "2022-11-30"
WORDS = [
    "harbour",
    "council",
    "grain",
    "tariff",
    "ferry",
    "bridge",
    "library",
    "clinic",
    "budget",
    "rail",
    "water",
    "court",
    "festival",
    "market",
]


# --- building archives -----------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    url: str
    published: str | None  # the page's article:published_time, YYYY-MM-DD
    captured: str  # WARC-Date, YYYY-MM-DD

    @property
    def slug(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


def paragraphs(slug: str) -> list[str]:
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(slug))
    words = [WORDS[(seed + i * 5) % len(WORDS)] for i in range(60)]
    return [
        f"The {slug.replace('-', ' ')} story began with the {' '.join(words[:14])} at the town hall.",
        f"Officials said on Tuesday that the {' '.join(words[14:34])} would be reviewed next month.",
        f"Residents described the {' '.join(words[34:60])} as the main worry of the season.",
    ]


CP1252_SENTENCE = (
    "The caf\u00e9 \u2014 a \u201clocal treasure\u201d \u2014 reopens after repairs costing \u20ac2 million."
)


def page_html(page: Page, encoding: str = "utf-8") -> bytes:
    published = f"{page.published}T09:30:00Z" if page.published else None
    paras = paragraphs(page.slug)
    if encoding != "utf-8":
        paras.insert(1, CP1252_SENTENCE)
    text = news_page(f"Story {page.slug.replace('-', ' ')}", paras, published=published)
    if encoding != "utf-8":
        text = text.replace('<meta charset="utf-8">', "")  # the charset only in the HTTP header
    return text.encode(encoding)


def http_response(body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200) -> bytes:
    reason = {200: "OK", 404: "Not Found", 301: "Moved Permanently"}.get(status, "OK")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


def warc_record(
    kind: WarcRecordType,
    uri: str,
    date: str,
    block: bytes,
    content_type: str = "application/http; msgtype=response",
    extra: dict[str, str] | None = None,
) -> WarcRecord:
    record = WarcRecord()
    record.init_headers(kind)
    record.headers["WARC-Target-URI"] = uri
    record.headers["WARC-Date"] = f"{date}T10:00:00Z"
    record.headers["Content-Type"] = content_type
    for name, value in (extra or {}).items():
        record.headers[name] = value
    record.set_bytes_content(block)
    return record


def response(page: Page, encoding: str = "utf-8") -> WarcRecord:
    charset = "windows-1252" if encoding == "cp1252" else encoding
    return warc_record(
        WarcRecordType.response,
        page.url,
        page.captured,
        http_response(page_html(page, encoding), f"text/html; charset={charset}"),
    )


def members(records_: list[WarcRecord]) -> list[bytes]:
    """Each record as its own gzip member."""
    out = []
    for record in records_:
        buffer = io.BytesIO()
        writer = GzipWriter(buffer)
        record.write(writer)
        writer.finish()
        out.append(buffer.getvalue())
    return out


def corrupt(member: bytes) -> bytes:
    """The member with bytes in the middle of its deflate data flipped."""
    data = bytearray(member)
    middle = len(data) // 2
    for i in range(middle, min(len(data) - 8, middle + 12)):
        data[i] ^= 0xA5
    return bytes(data)


def arc_file(pages: list[tuple[Page, bytes]], gz: bool) -> bytes:
    """An ARC v1 file: the filedesc header record, then one record per page."""
    version = b"1 0 newsflow-test\nURL IP-address Archive-date Content-type Archive-length\n"
    blocks = [b"filedesc://test.arc 0.0.0.0 20221105000000 text/plain %d\n" % len(version) + version + b"\n"]
    for page, body in pages:
        block = http_response(body)
        date = page.captured.replace("-", "") + "101500"
        blocks.append(f"{page.url} 192.0.2.7 {date} text/html {len(block)}\n".encode() + block + b"\n")
    if gz:
        return b"".join(gzip.compress(b) for b in blocks)
    return b"".join(blocks)


DOMAIN = "wire.example"
OTHER = "elsewhere.example"


def url(slug: str, host: str = DOMAIN) -> str:
    return f"https://{host}/news/{slug}"


IN_WINDOW = [
    Page(url("harbour-vote"), "2022-11-03", "2022-11-03"),
    Page(url("grain-prices"), "2022-11-10", "2022-11-11"),
    Page(url("ferry-strike"), None, "2022-11-15"),  # no date in the page: its WARC-Date counts
    Page(url("late-capture"), "2022-11-28", "2022-12-04"),  # captured after the window, published in it
]
OUT_OF_WINDOW = [
    Page(url("old-story"), "2022-09-01", "2022-11-05"),  # captured in the window, published before
    Page(url("captured-before"), "2022-10-20", "2022-10-21"),  # ruled out by its WARC-Date alone
    Page(url("december-story"), "2022-12-02", "2022-12-03"),
]
OFF_DOMAIN = [Page(url("elsewhere-news", OTHER), "2022-11-04", "2022-11-04")]
CP1252 = Page(url("cafe-reopens"), "2022-11-12", "2022-11-12")


def mixed_warc(path: Path) -> dict[str, int]:
    """A WARC with every kind of record the loader must tell apart; returns the expected skips."""
    pdf = Page(url("annual-report.pdf"), None, "2022-11-06")
    truncated = Page(url("cut-short"), "2022-11-07", "2022-11-07")
    broken = Page(url("broken-member"), "2022-11-08", "2022-11-08")
    parts: list[WarcRecord] = [
        warc_record(WarcRecordType.warcinfo, "", "2022-11-03", b"software: test\r\n", "application/warc-fields"),
        warc_record(
            WarcRecordType.request,
            IN_WINDOW[0].url,
            "2022-11-03",
            b"GET /news/harbour-vote HTTP/1.1\r\nHost: wire.example\r\n\r\n",
            "application/http; msgtype=request",
        ),
        response(IN_WINDOW[0]),
        warc_record(
            WarcRecordType.metadata, IN_WINDOW[0].url, "2022-11-03", b"fetchTimeMs: 12\r\n", "application/warc-fields"
        ),
        response(IN_WINDOW[1]),
        warc_record(
            WarcRecordType.revisit,
            IN_WINDOW[1].url,
            "2022-11-12",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
            extra={"WARC-Profile": "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"},
        ),
        warc_record(
            WarcRecordType.response, pdf.url, pdf.captured, http_response(b"%PDF-1.7\n% binary", "application/pdf")
        ),
        warc_record(
            WarcRecordType.response,
            truncated.url,
            truncated.captured,
            http_response(page_html(truncated)[:300]),
            extra={"WARC-Truncated": "length"},
        ),
        response(broken),  # its gzip member is corrupted below
        response(IN_WINDOW[2]),
        warc_record(
            WarcRecordType.response, url("missing"), "2022-11-09", http_response(b"<html>gone</html>", status=404)
        ),
        *[response(p) for p in OUT_OF_WINDOW + OFF_DOMAIN],
        response(CP1252, "cp1252"),
        response(IN_WINDOW[3]),
    ]
    blobs = members(parts)
    broken_at = 8
    blobs[broken_at] = corrupt(blobs[broken_at])
    path.write_bytes(b"".join(blobs))
    return {
        "warcinfo": 1,
        "request": 1,
        "metadata": 1,
        "revisit": 1,
        "http_status": 1,
        "off_domain": 1,
        "out_of_window": 3,
    }


def domains_file(tmp_path: Path, *hosts: str) -> Path:
    path = tmp_path / "domains.txt"
    path.write_text("# listed sites\n" + "\n".join(hosts) + "\n", encoding="utf-8")
    return path


# --- the reader (no database) ----------------------------------------------------------------


def _read_all(path: Path, start: int = 0) -> list[Record | Unreadable]:
    source = LocalSource(path)
    return list(records(source, detect_format(source), start))


def test_reader_steps_over_a_corrupt_member_and_resumes_at_offsets(tmp_path):
    pages = [Page(url(f"story-{i}"), "2022-11-02", "2022-11-02") for i in range(8)]
    blobs = members([response(p) for p in pages])
    blobs[3] = corrupt(blobs[3])
    path = tmp_path / "c.warc.gz"
    path.write_bytes(b"".join(blobs))
    out = _read_all(path)
    offsets = [sum(len(b) for b in blobs[:i]) for i in range(len(blobs))]
    assert [type(r).__name__ for r in out] == ["Record"] * 3 + ["Unreadable"] + ["Record"] * 4
    assert [r.offset for r in out] == offsets
    assert "corrupt gzip member" in out[3].message
    assert [r.uri for r in out if isinstance(r, Record)] == [p.url for i, p in enumerate(pages) if i != 3]
    assert out[0].payload == page_html(pages[0])
    # a read resumed at a record's offset starts with that record
    assert [r.uri for r in _read_all(path, offsets[5])] == [p.url for p in pages[5:]]


def test_reader_on_a_file_cut_short_and_an_uncompressed_file(tmp_path):
    pages = [Page(url(f"cut-{i}"), "2022-11-02", "2022-11-02") for i in range(3)]
    blobs = members([response(p) for p in pages])
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(blobs[0] + blobs[1] + blobs[2][: len(blobs[2]) // 2])
    out = _read_all(path)
    assert [type(r).__name__ for r in out] == ["Record", "Record", "Unreadable"]
    assert out[2].offset == len(blobs[0]) + len(blobs[1])

    plain = io.BytesIO()
    for p in pages:
        response(p).write(plain)
    path = tmp_path / "plain.warc"
    path.write_bytes(plain.getvalue())
    assert detect_format(LocalSource(path)) == "warc"
    assert [r.uri for r in _read_all(path)] == [p.url for p in pages]


def test_reader_reads_arc_files(tmp_path):
    pages = [Page(url(f"arc-{i}"), "2022-11-02", "2022-11-04") for i in range(3)]
    bodies = [(p, page_html(p)) for p in pages]
    for gz in (False, True):
        path = tmp_path / ("old.arc.gz" if gz else "old.arc")
        path.write_bytes(arc_file(bodies, gz))
        assert detect_format(LocalSource(path)) == ("arc.gz" if gz else "arc")
        out = _read_all(path)
        assert [r.type for r in out] == ["warcinfo", "response", "response", "response"]
        assert [r.uri for r in out[1:]] == [p.url for p in pages]
        assert out[1].payload == bodies[0][1] and out[1].status == 200 and out[1].content_type == "text/html"
        assert out[1].date.isoformat() == "2022-11-04T10:15:00+00:00"
        warcio = pytest.importorskip("warcio.archiveiterator")  # an independent reader agrees
        with open(path, "rb") as f:
            theirs = [
                (r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
                for r in warcio.ArchiveIterator(f, arc2warc=True)
                if r.rec_type == "response"
            ]
        assert theirs == [(p.url, body) for p, body in bodies]


def test_domains_file_and_filters(tmp_path):
    domains = read_domains(domains_file(tmp_path, "www.wire.example", "https://news.other.example/feed", "# x"))
    assert domains == {"wire.example", "news.other.example"}
    filters = Filters(domains)
    assert filters.host_listed("wire.example") and filters.host_listed("live.wire.example")
    assert not filters.host_listed("notwire.example") and not filters.host_listed("other.example")


# --- loading into the ledger -----------------------------------------------------------------


def _stored(conn: psycopg.Connection) -> list[str]:
    return sorted(r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles"))


def test_warc_loads_exactly_the_window_of_the_listed_domains(settings, conn, tmp_path):
    path = tmp_path / "CC-NEWS-test.warc.gz"
    expected_skips = mixed_warc(path)
    filters = Filters(read_domains(domains_file(tmp_path, DOMAIN)), Window.parse(SINCE, UNTIL))
    result = load_warc(settings, [str(path)], filters)
    summary = result.summary
    assert summary.status == "succeeded", summary.message
    assert _stored(conn) == sorted(p.slug for p in [*IN_WINDOW, CP1252])
    quarantined = dict(conn.execute("SELECT reason, count(*) FROM feed_items WHERE state = 'quarantined' GROUP BY 1"))
    assert quarantined == {"not_html": 1, "too_large": 1, "connection": 1}  # PDF, truncated, corrupt member
    assert dict(summary.quarantined) == quarantined and summary.stored == 5
    row = conn.execute("SELECT state, records_seen, skipped, format FROM archive_files").fetchone()
    assert row[0] == "done" and row[3] == "warc.gz"
    assert row[1] == 17  # every record, of every type, the unreadable member included
    assert row[2] == expected_skips
    # where each article came from: the file and the record's byte offset
    sources = conn.execute(
        "SELECT source_kind, source, record_offset, captured_at FROM v_article_sources WHERE state = 'stored'"
    ).fetchall()
    assert {s[0] for s in sources} == {"warc"} and {s[1] for s in sources} == {path.resolve().as_uri()}
    data = path.read_bytes()
    for _kind, _source, offset, _captured in sources:
        assert data[offset : offset + 3] == b"\x1f\x8b\x08"
    # the cp1252 page's text came out right; WARC-Date became fetched_at; dates from the page
    text, fetched = conn.execute("SELECT text, fetched_at FROM articles WHERE url LIKE '%%cafe-reopens'").fetchone()
    assert CP1252_SENTENCE in text
    assert fetched.isoformat().startswith("2022-11-12T10:00")
    dated = dict(conn.execute("SELECT url, published_at FROM articles"))
    assert dated[url("ferry-strike")].isoformat() == "2022-11-15T10:00:00+00:00"  # no date in the page: WARC-Date
    assert dated[url("late-capture")].date().isoformat() == "2022-11-28"
    feed = conn.execute("SELECT kind, enabled FROM feeds").fetchone()
    assert feed == ("warc", False)  # never polled

    counts = table_counts(conn)
    again = load_warc(settings, [str(path)], filters)
    assert again.summary.status == "succeeded" and again.summary.seen == 0
    assert again.totals.files[0].state == "already done"
    assert table_counts(conn) == counts


def test_warc_dedups_against_feed_articles_and_reads_arc(settings, conn, site, tmp_path):
    from pipeline.ingest import ingest

    from .pages import FeedEntry, rss

    story = Page(site.url("/news/river-bridge"), "2022-11-05", "2022-11-05")
    site.add("/news/river-bridge", page_html(story))
    site.add("/feed.xml", rss([FeedEntry("River", story.url, "Sat, 05 Nov 2022 09:00:00 GMT")]), "application/rss+xml")
    assert ingest(settings, [site.url("/feed.xml")]).stored == 1
    copy = Page(site.url("/amp/river-bridge"), "2022-11-05", "2022-11-06")  # the same text under another URL
    fresh = Page(site.url("/news/arc-only"), "2022-11-09", "2022-11-09")
    path = tmp_path / "legacy.arc.gz"
    path.write_bytes(arc_file([(story, page_html(story)), (copy, page_html(story)), (fresh, page_html(fresh))], True))
    # default domains: the hosts of the feeds newsflow follows
    result = load_warc(settings, [str(path)], Filters(window=Window.parse(SINCE, UNTIL)))
    assert result.summary.status == "succeeded", result.summary.message
    assert (result.summary.stored, result.summary.duplicate) == (1, 2)
    assert site.hits("/news/arc-only") == 0  # the archive's bytes, not a fetch
    kinds = conn.execute("SELECT source_kind, count(*) FROM v_article_sources GROUP BY 1 ORDER BY 1").fetchall()
    assert kinds == [("arc", 3), ("feed", 1)]


def test_load_refuses_without_domains(settings, tmp_path):
    path = tmp_path / "x.warc.gz"
    path.write_bytes(b"".join(members([response(IN_WINDOW[0])])))
    with pytest.raises(ValueError, match="no domains"):
        load_warc(settings, [str(path)])


# --- kill -9 in the middle of a file, then a rerun -------------------------------------------

KILL_PAGES = [
    Page(url(f"kill-story-{i:02d}"), f"2022-11-{1 + i % 28:02d}", f"2022-11-{1 + i % 28:02d}") for i in range(36)
]

_LOADER = """
import sys
from pipeline.webarchive import load
load.BATCH_ITEMS = 6
from pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli_load(database_url: str, args: list[str], home: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "NEWSFLOW_DATABASE_URL": database_url,
        "NEWSFLOW_HOME": str(home),
        "NEWSFLOW_NLP_WORKERS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", _LOADER, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _snapshot(url_: str) -> dict:
    with psycopg.connect(url_) as c:
        return {
            "counts": table_counts(c),
            "articles": c.execute(
                "SELECT url, content_hash, published_at, fetched_at FROM articles ORDER BY url"
            ).fetchall(),
            "items": c.execute("SELECT item_key, state, reason, url FROM feed_items ORDER BY item_key").fetchall(),
            "statements": c.execute(
                "SELECT a.url, s.quote, s.speaker FROM statements s"
                " JOIN articles a ON a.id = s.article_id ORDER BY 1, 2"
            ).fetchall(),
            "file": c.execute("SELECT state, records_seen, skipped FROM archive_files").fetchall(),
        }


@pytest.fixture
def second_database(pg_server):
    import uuid

    from .conftest import _with_dbname

    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_kill_9_in_the_middle_of_a_warc_then_rerun_equals_an_uninterrupted_run(database_url, second_database, tmp_path):
    path = tmp_path / "kill.warc.gz"
    path.write_bytes(b"".join(members([response(p) for p in KILL_PAGES])))
    domains = domains_file(tmp_path, DOMAIN)
    args = ["backfill", "--warc", str(path), "--domains", str(domains), "--since", SINCE, "--until", UNTIL]

    proc = _cli_load(database_url, args, tmp_path / "home1")
    deadline = time.monotonic() + 240
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with psycopg.connect(database_url) as c:
            exists = c.execute("SELECT to_regclass('public.articles') IS NOT NULL").fetchone()[0]
            stored = c.execute("SELECT count(*) FROM articles").fetchone()[0] if exists else 0
        if stored >= 9:  # past the first batch (a saved offset) and into the second
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with psycopg.connect(database_url) as c:
        interrupted = c.execute("SELECT count(*) FROM articles").fetchone()[0]
        offset = c.execute("SELECT state, offset_reached FROM archive_files").fetchone()
    assert 0 < interrupted < len(KILL_PAGES) and offset[0] == "reading" and offset[1] > 0

    rerun = _cli_load(database_url, args, tmp_path / "home1")
    out = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, out[-2000:]
    clean = _cli_load(second_database, args, tmp_path / "home2")
    out = clean.communicate(timeout=300)[0].decode()
    assert clean.returncode == 0, out[-2000:]
    resumed, uninterrupted = _snapshot(database_url), _snapshot(second_database)
    assert resumed == uninterrupted
    assert len(resumed["articles"]) == len(KILL_PAGES)
    with psycopg.connect(database_url) as c:
        runs_ = c.execute("SELECT status, unchanged FROM ops.runs ORDER BY id").fetchall()
    assert [r[0] for r in runs_] == ["aborted", "succeeded"]  # the killed run, marked by the rerun


def test_cli_backfill_warc(settings, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    path = tmp_path / "cli.warc.gz"
    path.write_bytes(b"".join(members([response(p) for p in IN_WINDOW[:2] + OFF_DOMAIN])))
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    args = ["backfill", "--warc", str(path), "--domains", str(domains_file(tmp_path, DOMAIN))]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stored" in out and "off_domain 1" in out
    assert main(["backfill", "--warc", str(path), "--feed", "http://x.test/feed", "--since", SINCE]) == 2
    assert "one source" in capsys.readouterr().err


# --- CC-NEWS by month over a loopback imitation of Common Crawl ------------------------------

MONTH_DIR = "/crawl-data/CC-NEWS/2022/11"


class CommonCrawl:
    """Serves ``warc.paths.gz`` and the WARC files, honouring ``Range``; can drop a transfer once."""

    def __init__(self, site, files: dict[str, bytes]):  # noqa: ANN001
        self.files, self.ranges = files, []
        self.drop: dict[str, int] = {}  # file -> the request (1, 2 ...) whose transfer breaks halfway
        paths = "".join(f"crawl-data/CC-NEWS/2022/11/{name}\n" for name in files)
        site.add(f"{MONTH_DIR}/warc.paths.gz", gzip.compress(paths.encode()), "application/octet-stream")
        for name in files:
            site.routes[f"{MONTH_DIR}/{name}"] = self._handler(name)

    def _handler(self, name: str):  # noqa: ANN202
        def handle(h):  # noqa: ANN001, ANN202
            data = self.files[name]
            asked = h.headers.get("Range")
            start = int(asked.split("=", 1)[1].split("-", 1)[0]) if asked else 0
            self.ranges.append((name, start))
            broken = self.drop.get(name) == sum(1 for n, _ in self.ranges if n == name)
            body = data[start:]
            h.send_response(206 if asked else 200)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(len(body)))
            if asked:
                h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            h.end_headers()
            if broken:  # the connection breaks halfway through the file
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                h.close_connection = True
                return None
            h.wfile.write(body)
            return None

        return handle


def _rows(url_: str) -> dict:
    with psycopg.connect(url_) as c:
        return {
            "articles": c.execute(
                "SELECT url, content_hash, published_at, fetched_at FROM articles ORDER BY url"
            ).fetchall(),
            "items": c.execute("SELECT item_key, state, reason, url FROM feed_items ORDER BY item_key").fetchall(),
            "files": c.execute("SELECT state, records_seen, skipped FROM archive_files ORDER BY position").fetchall(),
        }


def test_cc_news_month_loads_the_same_rows_resumes_and_refetches_nothing(
    settings, database_url, second_database, site, tmp_path, monkeypatch
):
    from dataclasses import replace

    from pipeline.webarchive import load
    from pipeline.webarchive.ccnews import load_month

    monkeypatch.setattr(load, "BATCH_ITEMS", 2)  # saved offsets every two records: a resume has one to use
    first = tmp_path / "CC-NEWS-20221101000000-00001.warc.gz"
    mixed_warc(first)
    second = tmp_path / "CC-NEWS-20221115000000-00002.warc.gz"
    second.write_bytes(b"".join(members([response(p) for p in KILL_PAGES[:16]])))
    crawl = CommonCrawl(site, {first.name: first.read_bytes(), second.name: second.read_bytes()})
    crawl.drop[second.name] = 2  # the first request reads the file's format, the second its records
    filters = Filters(read_domains(domains_file(tmp_path, DOMAIN)), Window.parse(SINCE, UNTIL))

    result = load_month(settings, "2022-11", filters, base=site.base)
    assert result.summary.status == "succeeded", result.summary.message
    resumed_at = [start for name, start in crawl.ranges if name == second.name]
    # format, records (broken halfway), records again from the saved offset, the last member's check
    assert len(resumed_at) == 4 and resumed_at[:2] == [0, 0] and 0 < resumed_at[2] < resumed_at[3]
    assert [f.state for f in result.totals.files] == ["done", "done"]

    local = replace(settings, database_url=second_database)
    assert load_warc(local, [str(first), str(second)], filters).summary.status == "succeeded"
    assert _rows(database_url) == _rows(second_database)  # the same rows as the files read from disk
    assert len(_rows(database_url)["articles"]) == 5 + 16

    # a rerun of the month fetches nothing at all: the list is final, every file done
    requests = len(site.requests)
    again = load_month(settings, "2022-11", filters, base=site.base)
    assert again.summary.status == "succeeded" and again.summary.seen == 0
    assert len(site.requests) == requests

    # a run killed inside the second file resumes there: the first is never read again
    with psycopg.connect(database_url, autocommit=True) as c:
        offset = c.execute(
            "SELECT record_offset FROM item_sources s JOIN feeds f ON f.id = s.feed_id"
            " WHERE f.url LIKE %s ORDER BY record_offset OFFSET 5 LIMIT 1",
            ("%00002.warc.gz",),
        ).fetchone()[0]
        c.execute(
            "UPDATE archive_files SET state = 'reading', offset_reached = %s WHERE location LIKE %s",
            (offset, "%00002.warc.gz"),
        )
    crawl.ranges.clear()
    resumed = load_month(settings, "2022-11", filters, base=site.base)
    assert resumed.summary.status == "succeeded"
    assert crawl.ranges[0] == (second.name, offset) and {name for name, _ in crawl.ranges} == {second.name}
    assert resumed.summary.unchanged == 16 - 5 and resumed.summary.seen == 0


def test_language_filter_uses_the_declaration_then_the_text(settings, conn, tmp_path):
    english = Page(url("english-story"), "2022-11-03", "2022-11-03")
    german = news_page("Stadtrat", ["Der Stadtrat hat am Dienstag beschlossen, die alte Brücke zu sanieren."] * 4)
    french = news_page("Conseil", ["Le conseil municipal a décidé mardi de rénover le vieux pont de la ville."] * 4)
    french = french.replace('<html lang="en">', "<html>")  # declares nothing: its text decides
    parts = [
        response(english),
        warc_record(
            WarcRecordType.response,
            url("stadtrat"),
            "2022-11-04",
            http_response(german.replace('lang="en"', 'lang="de"').encode()),
        ),
        warc_record(WarcRecordType.response, url("conseil"), "2022-11-05", http_response(french.encode())),
    ]
    path = tmp_path / "languages.warc.gz"
    path.write_bytes(b"".join(members(parts)))
    result = load_warc(settings, [str(path)], Filters(frozenset({DOMAIN}), language="en"))
    assert result.summary.status == "succeeded"
    assert _stored(conn) == ["english-story"]
    assert result.totals.skipped == {"language": 2}
