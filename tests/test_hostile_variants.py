"""Hostile variants of cases already covered elsewhere, and new kinds (RELIABILITY.md I1-I4).

Most cases share one world (a module-scoped database, two loopback sites, one batch of
feeds) that is ingested twice: every item of every feed must end in ``feed_items`` as stored,
duplicate or quarantined with a reason; good items next to bad ones are stored; every run
ends; a feed that fails is recorded with a reason and the others go on. Each case is then
one parametrised assertion on what the two runs left behind, so the file costs two ingests
plus a few cheap command-line runs (feeds with no items: no NLP worker is needed).

Cases marked ``xfail(strict=True)`` are failures found by this file: the reason says what
breaks and where. When one is fixed its test XPASSes (a failure): remove its mark.
"""

from __future__ import annotations

import html
import os
import random
import string
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest

from pipeline.config import Limits, Settings
from pipeline.ingest import ingest
from pipeline.loopback import LoopbackSite, Reply

from .conftest import _with_dbname
from .pages import FeedEntry, news_page, rss

REPO = Path(__file__).resolve().parents[1]
PARAGRAPHS = [
    "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
    '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
    "The council approved the budget in a vote of nine to two after a long debate.",
    "Olsen said the extension would let larger ferries dock during the winter storms.",
]
QUARANTINED = "quarantined"
STORED_OR_DUP = ("stored", "duplicate")


def page_text(key: str) -> list[str]:
    """Four paragraphs of English whose text (and so content hash) is unique to ``key``."""
    return [f"In report {key}, " + p[0].lower() + p[1:] for p in PARAGRAPHS]


def good_page(key: str, **kwargs) -> str:
    return news_page(f"Harbour report {key}", page_text(key), **kwargs)


def rword(rng: random.Random, n: int) -> str:
    """A capitalised word of random letters: PostgreSQL cannot compress it into an index."""
    return rng.choice(string.ascii_uppercase) + "".join(rng.choice(string.ascii_lowercase) for _ in range(n))


def raw_rss(items: str, *, title: str = "Feed", link: str = "http://example.invalid/", decl: str | None = None) -> str:
    decl = '<?xml version="1.0" encoding="UTF-8"?>' if decl is None else decl
    return (
        f'{decl}\n<rss version="2.0"><channel><title>{title}</title><link>{link}</link>'
        f"<description>d</description>{items}</channel></rss>"
    )


def raw_item(
    guid: str | None, link: str | None = None, title: str = "t", extra: str = "", *, permalink: bool = False
) -> str:
    parts = [f"<title>{html.escape(title)}</title>"] if title is not None else []
    if link is not None:
        parts.append(f"<link>{html.escape(link)}</link>")
    if guid is not None:
        attr = "" if permalink else ' isPermaLink="false"'
        parts.append(f"<guid{attr}>{html.escape(guid)}</guid>")
    return "<item>" + "".join(parts) + extra + "</item>"


# ---------------------------------------------------------------------------------------
# The world: every feed below is ingested in one run, then again in a second run


@dataclass
class World:
    site: LoopbackSite
    other: LoopbackSite  # a second origin: its robots.txt is hostile
    url: str
    feeds: dict[str, str]  # name -> feed URL
    listed: dict[str, set[str]]  # feed name -> the guids it lists
    summaries: list
    items: dict[tuple[str, str], tuple[str, str | None, str | None]]  # (feed name, guid) -> state, reason, message
    titles: dict[tuple[str, str], str | None]
    feed_rows: dict[str, dict]
    runs: list[tuple]
    articles: list[tuple]


ITEM_CASES: dict[str, tuple[object, object]] = {}  # guid -> (expected states, expected reasons or None)


def _item_feed(b: str, port: int) -> str:
    """Feed ``items``: one item per malformed, hostile or odd field, next to good ones."""
    items = []

    def add(guid, link, expect_state, expect_reason=None, title="t", extra="", permalink=False, with_guid=True):
        items.append(raw_item(guid if with_guid else None, link, title, extra, permalink=permalink))
        ITEM_CASES[guid] = (expect_state, expect_reason)

    blocked = ("blocked_address", "bad_url")
    unresolvable = ("connection", "bad_url")
    add("good-a", f"{b}/good-a", STORED_OR_DUP)
    add("good-b", f"{b}/good-b", STORED_OR_DUP)
    add("pct00", f"{b}/good-a%00", QUARANTINED, ("http_status", "bad_url"))
    add("backslash", f"http:\\\\127.0.0.1:{port}\\good-a", QUARANTINED, ("bad_url",))
    add("zero-host", "http://0/", QUARANTINED, blocked)
    add("decimal-ip", f"http://2130706433:{port}/good-a", QUARANTINED, blocked)
    add("hex-ip", f"http://0x7f000001:{port}/good-a", QUARANTINED, blocked)
    add("octal-ip", f"http://0177.0.0.1:{port}/good-a", QUARANTINED, blocked)
    add("short-ip", f"http://127.1:{port}/good-a", QUARANTINED, blocked)
    add("zwsp-host", f"http://127.0.0\u200b.1:{port}/good-a", QUARANTINED, blocked)
    add("fullwidth-host", f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/good-a", QUARANTINED, blocked)
    add("trailing-dot-host", f"http://127.0.0.1.:{port}/good-a", QUARANTINED, blocked + ("connection",))
    add("localhost-name", f"http://localhost:{port}/good-a", QUARANTINED, blocked)
    add("mapped-v6", f"http://[::ffff:127.0.0.1]:{port}/good-a", QUARANTINED, blocked)
    add("port-0", "http://127.0.0.1:0/x", QUARANTINED, blocked)
    add("port-65536", "http://127.0.0.1:65536/x", QUARANTINED, ("bad_url",))
    add("port-negative", "http://127.0.0.1:-1/x", QUARANTINED, ("bad_url",))
    add("empty-userinfo", f"http://@127.0.0.1:{port}/good-a", QUARANTINED, ("bad_url",))
    add("javascript", "javascript:alert(1)", QUARANTINED, ("bad_url",))
    add("data-url", "data:text/html,<p>x</p>", QUARANTINED, ("bad_url",))
    add("file-url", "file:///etc/passwd", QUARANTINED, ("bad_url",))
    add("idn-host", "http://b\u00fccher.example/x", QUARANTINED, unresolvable)
    add("bad-punycode", "http://xn--a.example/x", QUARANTINED, unresolvable)
    add("long-label", "http://" + "a" * 70 + ".example/", QUARANTINED, unresolvable)
    add("empty-label", "http://a..b/", QUARANTINED, unresolvable)
    add("bidi-host", f"http://127.0.0.1\u202e:{port}/good-a", QUARANTINED, unresolvable + ("blocked_address",))
    add("v6-zone", "http://[fe80::1%25eth0]/", QUARANTINED, unresolvable + ("blocked_address",))
    add("bidi-path", f"{b}/good-b\u202e", QUARANTINED, ("http_status",))
    add("tab-in-link", f"{b}/go\tod-b", STORED_OR_DUP)
    add("upper-scheme", f"HTTP://127.0.0.1:{port}/good-b", STORED_OR_DUP)
    add("spaced-link", f"  \n {b}/good-b#top \n ", STORED_OR_DUP)
    add("long-query", f"{b}/good-c?" + "q=1&" * 900, STORED_OR_DUP)
    # a guid that is a URL on another host, and no link: the guid is the link, refused
    items.append("<item><title>t</title><guid>http://169.254.169.254/latest/meta-data/</guid></item>")
    ITEM_CASES["http://169.254.169.254/latest/meta-data/"] = (QUARANTINED, blocked)
    items.append("<item><title>t</title><guid>http://[::1]:80/</guid></item>")
    ITEM_CASES["http://[::1]:80/"] = (QUARANTINED, blocked)
    # dates: none of them may stop the item or be stored outside a sane range
    dates = {
        "year-0": "Sat, 01 Jan 0000 00:00:00 GMT",
        "year-9999": "Fri, 31 Dec 9999 23:59:59 GMT",
        "year-1-tz": "Mon, 01 Jan 0001 00:00:00 +9999",
        "leap-second": "Sat, 31 Dec 2016 23:59:60 GMT",
        "word-now": "now",
        "negative-epoch": "-1",
        "tz-9999": "Mon, 02 Jan 2006 15:04:05 +9999",
        "tz-minus-2359": "Mon, 02 Jan 2006 15:04:05 -2359",
    }
    for guid, value in dates.items():
        add(guid, f"{b}/good-c?d={guid}", STORED_OR_DUP, extra=f"<pubDate>{value}</pubDate>")
    dc = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    for guid, value in {
        "dc-zero": "0000-00-00T00:00:00Z",
        "dc-5-digit-year": "99999-12-31T00:00:00Z",
        "dc-month-13": "2020-13-45T25:61:61+25:00",
    }.items():
        add(guid, f"{b}/good-c?d={guid}", STORED_OR_DUP, extra=f"<dc:date {dc}>{value}</dc:date>")
    add("bidi-title", f"{b}/good-d", STORED_OR_DUP, title="\u202eevil\u2066x\u2069 \ufeff\u200b title \U0001f600")
    add("huge-title", f"{b}/good-d?t=1", STORED_OR_DUP, title="T" * 100_000)
    add("huge-guid-" + "g" * 10_000, f"{b}/good-d?t=2", STORED_OR_DUP)
    add("many-categories", f"{b}/good-d?t=3", STORED_OR_DUP, extra="<category>c</category>" * 10_000)
    add(
        "huge-description",
        f"{b}/good-d?t=4",
        STORED_OR_DUP,
        extra="<description>" + "word " * 20_000 + "</description>",
    )
    add(
        "hostile-enclosure",
        f"{b}/good-d?t=5",
        STORED_OR_DUP,
        extra=f'<enclosure url="{b}/x&#1;\u202e" type="audio/mpeg" length="-1"/><source url="javascript:x">s</source>',
    )
    add(
        "nested-markup",
        f"{b}/good-d?t=6",
        STORED_OR_DUP,
        extra="<description>" + "&lt;div&gt;" * 5000 + "x" + "&lt;/div&gt;" * 5000 + "</description>",
    )
    add("cdata-link", None, STORED_OR_DUP, extra=f"<link><![CDATA[{b}/good-d?t=7]]></link>")
    return raw_rss(
        "".join(items),
        title="Feed \u202e&#x1;&#xD800; \U0001f600",
        link=f"{b}/\u202e\x01&#0;",
    )


_item_feed("http://127.0.0.1:9", 9)  # fills ITEM_CASES at import, for the parametrisation below

PAGE_CASES: dict[str, tuple[str, str | None]] = {}  # guid -> (state, reason) expected
PAGE_XFAIL: dict[str, str] = {}


def _page_feed(site: LoopbackSite) -> str:
    rng = random.Random(13)
    b = site.base
    entries = []

    def page(key, body, ctype="text/html; charset=utf-8", expect=("stored", None), xfail=None):
        site.add(f"/page/{key}", body, ctype)
        entries.append(FeedEntry(key, f"{b}/page/{key}", guid=key))
        PAGE_CASES[key] = expect
        if xfail:
            PAGE_XFAIL[key] = xfail

    g = good_page
    page("plain", g("plain"))
    page("raw-nul", g("raw-nul").replace("In report raw-nul,", "In report \x00 raw\x00nul,").encode())
    page("raw-controls", news_page("Ctrl\x01\x1b[31m", [p + "\x0b\x0c\x1b[2J\x7f" for p in page_text("raw-controls")]))
    page("bidi", news_page("\u202eTitle\u202c", ["\u202e" + p + "\u2066\u2069\ufeff\u200b" for p in page_text("bidi")]))
    page("charset-utf7", g("charset-utf7").encode(), "text/html; charset=utf-7")
    page("charset-unknown", g("charset-unknown").encode(), "text/html; charset=x-bogus-42")
    page("charset-empty-quoted", g("charset-empty-quoted").encode(), 'text/html; charset=""')
    page(
        "meta-charset-lie",
        g("meta-charset-lie").replace('<meta charset="utf-8">', '<meta charset="utf-16">').encode(),
        "text/html",
    )
    page(
        "latin1-as-utf8",
        news_page("Caf\u00e9", [p + " caf\u00e9" for p in page_text("latin1-as-utf8")]).encode("latin-1"),
    )
    page(
        "jsonld-odd-types",
        g("jsonld-odd-types").replace(
            "</head>",
            '<script type="application/ld+json">{"@type":"NewsArticle","datePublished":["x",{"a":1}],'
            '"author":{"name":["a"]},"headline":null,"@graph":7}</script>'
            '<script type="application/ld+json">[1, "x", null, {"@type": ["NewsArticle"], "author": 5}]</script>'
            "</head>",
        ),
    )
    page(
        "ssrf-meta",
        g("ssrf-meta").replace(
            "</head>",
            '<meta http-equiv="refresh" content="0;url=http://169.254.169.254/"><base href="javascript:alert(1)">'
            '<link rel="canonical" href="http://169.254.169.254/x"><link rel="amphtml" href="http://[::1"></head>',
        ),
    )
    page("title-1mb", g("title-1mb").replace("<title>", "<title>" + "T" * 1_000_000))
    page("script-flood", g("script-flood").replace("</head>", "<script>var a=1;</script>" * 20_000 + "</head>"))
    page("single-token-200k", news_page("Token", page_text("single-token-200k") + [rword(rng, 200_000)]))
    page(
        "date-year-1",
        g("date-year-1").replace(
            "</head>", '<meta property="article:published_time" content="0001-01-01T00:00:00+14:00"></head>'
        ),
    )
    # found failing by this file, fixed since
    page(
        "charref-control",
        news_page("Ref", page_text("charref-control")).replace("In report", "In &#1; report"),
    )
    page(
        "charref-fffe",
        news_page("Ref", page_text("charref-fffe")).replace("In report", "In &#xFFFE; report"),
    )
    page(
        "jsonld-deep",
        g("jsonld-deep").replace(
            "</head>", '<script type="application/ld+json">' + "[" * 100_000 + "]" * 100_000 + "</script></head>"
        ),
    )
    page(
        "date-overflow",
        g("date-overflow").replace(
            "</head>",
            '<script type="application/ld+json">{"@type":"NewsArticle","datePublished":"9999-12-31T23:59:00Z"}</script>'
            '<meta name="x" content="9999-12-31T23:59:30+00:01"></head>',
        ),
    )
    page(
        "long-author",
        good_page("long-author", author=rword(rng, 2000) + " " + rword(rng, 2000)),
    )
    page(
        "utf16-page",
        g("utf16-page").encode("utf-16"),
        "text/html; charset=utf-16",
    )
    return site.add("/pages.xml", rss(entries), "application/rss+xml")


def _endless_feed(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"<item><title>x</title></item>" * 100
    try:
        while True:
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    except OSError:
        pass


# feed name -> acceptable last_error_reason after the runs (None: the feed succeeded)
FEED_CASES: dict[str, tuple] = {}
FEED_XFAIL: dict[str, str] = {}


def _feeds(site: LoopbackSite, other: LoopbackSite) -> tuple[dict[str, str], dict[str, set[str]]]:
    b = site.base
    feeds: dict[str, str] = {}
    listed: dict[str, set[str]] = {}

    def feed(name, body, ctype="application/rss+xml", status=200, headers=None, expect=(None,), guids=(), xfail=None):
        feeds[name] = site.add(f"/feed/{name}", body, ctype, status, headers)
        listed[name] = set(guids)
        FEED_CASES[name] = expect
        if xfail:
            FEED_XFAIL[name] = xfail

    def one(guid, path="/good-a"):
        return rss([FeedEntry(guid, f"{b}{path}", guid=guid)])

    for key in ("good-a", "good-b", "good-c", "good-d"):
        site.add(f"/{key}", good_page(key))
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    feeds["items"] = site.add("/feed/items", _item_feed(b, site.server.server_address[1]), "application/rss+xml")
    listed["items"] = set(ITEM_CASES)
    FEED_CASES["items"] = (None,)
    feeds["pages"] = _page_feed(site)
    listed["pages"] = set(PAGE_CASES)
    FEED_CASES["pages"] = (None,)

    # transport and HTTP oddities, one feed each
    feed("bad-location", b"", status=301, headers={"Location": "http://[::1"}, expect=("connection", "bad_url"))
    feed(
        "redirect-loop", b"", status=301, headers={"Location": "/feed/redirect-loop-2"}, expect=("too_many_redirects",)
    )
    site.add("/feed/redirect-loop-2", b"", status=301, headers={"Location": "/feed/redirect-loop"})
    feed(
        "redirect-self-query",
        b"",
        status=308,
        headers={"Location": "/feed/redirect-self-query?x=1"},
        expect=("too_many_redirects",),
    )
    site.routes["/feed/redirect-self-query?x=1"] = Reply(301, b"", {"Location": "/feed/redirect-self-query?x=2"})
    feed("fake-gzip", one("fake-gzip"), headers={"Content-Encoding": "gzip"}, expect=("connection",))
    feed("fake-brotli", one("fake-brotli"), headers={"Content-Encoding": "br"}, expect=("connection",))
    feed(
        "fake-gzip-listed",
        one("fake-gzip-listed"),
        headers={"Content-Encoding": "x-unknown, gzip"},
        expect=("connection",),
    )
    site.routes["/feed/endless"] = _endless_feed
    feeds["endless"], listed["endless"] = site.url("/feed/endless"), set()
    FEED_CASES["endless"] = ("too_large", "timeout")
    feed("status-600", b"x", "text/plain", 600, expect=("http_status",))
    feed("status-204", b"", status=204, expect=("feed_malformed",))
    feed("status-299", one("status-299"), status=299, guids=["status-299"])
    feed("status-300", b"", "text/plain", 300, headers={"Location": "/feed/status-299"}, expect=("feed_malformed",))
    feed("location-blank", b"", status=301, headers={"Location": " "}, expect=("http_status", "bad_url"))
    feed("location-file", b"", status=301, headers={"Location": "file:///etc/passwd"}, expect=("bad_url",))
    feed("location-port", b"", status=301, headers={"Location": "http://127.0.0.1:99999/"}, expect=("bad_url",))
    feed(
        "location-other-port", b"", status=302, headers={"Location": other.url("/feed/ok")}, expect=("blocked_address",)
    )
    feed("location-latin1", b"", status=301, headers={"Location": "/feed/caf\u00e9"}, guids=["via-latin1-location"])
    site.add("/feed/caf%C3%A9", one("via-latin1-location"), "application/rss+xml")
    feed("etag-8kb", one("etag-8kb"), headers={"ETag": '"' + "e" * 8000 + '"'}, guids=["etag-8kb"])
    feed("cookie-4kb", one("cookie-4kb"), headers={"Set-Cookie": "a=" + "c" * 4000}, guids=["cookie-4kb"])
    feed(
        "content-type-latin1",
        one("content-type-latin1"),
        "application/rss+xml; charset=\u00e9",
        guids=["content-type-latin1"],
    )
    feed("etag-latin1", one("etag-latin1"), headers={"ETag": '"caf\u00e9"'}, guids=["etag-latin1"])
    feed(
        "last-modified-latin1",
        one("last-modified-latin1"),
        headers={"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT \u00e9"},
        guids=["last-modified-latin1"],
    )

    # encodings and XML oddities: every item points at a good page (stored or duplicate)
    items = "".join(raw_item(f"enc-{i}", f"{b}/good-b", f"T\u00e9{i} \u65e5") for i in range(2))

    def enc(name, data: bytes, expect=(None,), xfail=None):
        feed(name, data, expect=expect, guids=["enc-0", "enc-1"], xfail=xfail)

    def doc(decl=None, pre="", body=items):
        return raw_rss(
            body, title="Caf\u00e9 \u65e5\u672c", decl=(decl or '<?xml version="1.0" encoding="utf-8"?>') + pre
        )

    enc("utf16-bom", doc('<?xml version="1.0" encoding="utf-16"?>').encode("utf-16"))
    enc("utf16be-decl-no-bom", doc('<?xml version="1.0" encoding="utf-16"?>').encode("utf-16-be"))
    enc("utf32-bom", doc('<?xml version="1.0" encoding="utf-32"?>').encode("utf-32"))
    enc("double-utf8-bom", b"\xef\xbb\xbf\xef\xbb\xbf" + doc().encode())
    enc("declared-latin1-is-utf8", doc('<?xml version="1.0" encoding="iso-8859-1"?>').encode())
    warned = (None, "feed_malformed")  # read, with a warning on the feed
    enc("declared-unknown", doc('<?xml version="1.0" encoding="x-klingon"?>').encode(), warned)
    enc("declared-utf7", doc('<?xml version="1.0" encoding="utf-7"?>').encode(), warned)
    enc("declared-rot13", doc('<?xml version="1.0" encoding="rot13"?>').encode(), warned)
    enc(
        "doctype-public",
        doc(
            pre='<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
            '"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
        ).encode(),
    )
    enc(
        "doctype-subset-no-entity",
        doc(pre='<!DOCTYPE rss [ <!ELEMENT rss ANY> <!ATTLIST item x CDATA "y"> ]>').encode(),
    )
    enc("doctype-system-file", doc(pre='<!DOCTYPE rss SYSTEM "file:///etc/passwd">').encode())
    enc("stylesheet-pi", doc(pre='<?xml-stylesheet href="http://169.254.169.254/x.xsl" type="text/xsl"?>').encode())
    enc(
        "xinclude",
        doc(
            body=items.replace(
                "</item>",
                '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
                "</item>",
                1,
            )
        ).encode(),
    )
    enc("undefined-entity", doc(body=items.replace("<title>T", "<title>&foo;T", 1)).encode(), warned)
    enc(
        "declared-utf16-is-utf8",
        doc('<?xml version="1.0" encoding="utf-16"?>').encode(),
    )
    # the item titles, guids and links must survive one invalid byte in another item's title
    mixed = raw_item("mojibake:bad", f"{b}/good-b", "x").replace("<title>x", "<title>bad \udc81 byte") + raw_item(
        "mojibake:cafe", f"{b}/caf\u00e9-page", "Caf\u00e9"
    )
    site.add("/caf%C3%A9-page", good_page("cafe"))
    feed(
        "invalid-utf8-byte",
        raw_rss(mixed, title="Caf\u00e9").encode("utf-8", "surrogateescape"),
        guids=["mojibake:bad", "mojibake:cafe"],
        expect=(None, "feed_malformed"),
    )

    # links rewritten by canonicalisation are fetched rewritten
    site.routes["/story?1"] = Reply(200, good_page("story-1").encode(), {"Content-Type": "text/html"})
    site.routes["/story?2"] = Reply(200, good_page("story-2").encode(), {"Content-Type": "text/html"})
    site.routes["/s?a=1;b=2"] = Reply(200, good_page("semicolon").encode(), {"Content-Type": "text/html"})
    feed(
        "query-links",
        rss(
            [
                FeedEntry("1", f"{b}/story?1", guid="story-1"),
                FeedEntry("2", f"{b}/story?2", guid="story-2"),
                FeedEntry("3", f"{b}/s?a=1;b=2", guid="semicolon"),
            ]
        ),
        guids=["story-1", "story-2", "semicolon"],
    )

    # the same items in two feeds whose URLs differ only by tracking parameters and a fragment
    both = rss(
        [FeedEntry("a", f"{b}/good-a?utm_source=x", guid="twin-a"), FeedEntry("c", f"{b}/good-c#x", guid="twin-c")]
    )
    feed("twin", both, guids=["twin-a", "twin-c"])
    feeds["twin-tracked"] = feeds["twin"] + "?utm_source=newsletter&fbclid=1"
    listed["twin-tracked"] = {"twin-a", "twin-c"}
    FEED_CASES["twin-tracked"] = (None,)

    # a site whose robots.txt is larger than the body cap
    other.add("/robots.txt", "User-agent: *\nAllow: /\n" + "# filler line of a big robots.txt\n" * 60_000, "text/plain")
    other.add("/big-robots-page", good_page("big-robots"))
    feeds["big-robots"] = other.add(
        "/feed/ok", rss([FeedEntry("r", other.url("/big-robots-page"), guid="big-robots")]), "application/rss+xml"
    )
    listed["big-robots"] = {"big-robots"}
    FEED_CASES["big-robots"] = (None,)
    return feeds, listed


@pytest.fixture(scope="module")
def world(pg_server: str, tmp_path_factory: pytest.TempPathFactory):
    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(pg_server, name)
    limits = replace(Limits(), host_min_delay=0.01, page_timeout=20.0, feed_timeout=10.0, max_body_bytes=1_500_000)
    settings = Settings(database_url=url, home=tmp_path_factory.mktemp("hv") / "home", limits=limits, nlp_workers=1)
    try:
        with LoopbackSite() as site, LoopbackSite() as other:
            feeds, listed = _feeds(site, other)
            order = list(feeds.values())
            summaries = [ingest(settings, order), ingest(settings, order)]
            with psycopg.connect(url, autocommit=True) as conn:
                by_url = {u: n for n, u in feeds.items()}
                items, titles = {}, {}
                rows = conn.execute(
                    "SELECT f.url, i.guid, i.state, i.reason, i.message, i.title"
                    " FROM feed_items i JOIN feeds f ON f.id = i.feed_id"
                ).fetchall()
                for feed_url, guid, state, reason, message, title in rows:
                    feed_name = by_url.get(feed_url, feed_url)
                    items[(feed_name, guid or "")] = (state, reason, message)
                    titles[(feed_name, guid)] = title
                feed_rows = {
                    by_url.get(r[0], r[0]): {"reason": r[1], "error": r[2], "success": r[3]}
                    for r in conn.execute("SELECT url, last_error_reason, last_error, last_success_at FROM feeds")
                }
                runs = conn.execute(
                    "SELECT id, status, seen, stored, duplicate, quarantined, message FROM ops.runs"
                ).fetchall()
                articles = conn.execute("SELECT url, published_at FROM articles").fetchall()
            yield World(site, other, url, feeds, listed, summaries, items, titles, feed_rows, runs, articles)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------
# Invariants over the whole world


def test_every_run_ends_and_reconciles(world):
    assert [s.status for s in world.summaries] == ["succeeded", "succeeded"], [s.message for s in world.summaries]
    assert len(world.runs) == 2
    for run_id, status, seen, stored, duplicate, quarantined, message in world.runs:
        assert status == "succeeded", (run_id, message)
        assert seen == stored + duplicate + quarantined


def test_every_listed_item_is_in_the_ledger(world):
    """I1 for every feed that parsed: each listed guid has exactly one row."""
    missing = {}
    for feed_name, guids in world.listed.items():
        if world.feed_rows.get(feed_name, {}).get("success") is None:
            continue  # the feed itself failed: covered by the feed cases
        lost = {g for g in guids if (feed_name, g[:2000]) not in world.items}  # guids are kept to 2000 chars
        if lost:
            missing[feed_name] = sorted(lost)[:5]
    assert not missing


def test_published_dates_are_sane(world):
    for url, published in world.articles:
        assert published is None or 1995 <= published.year <= 2100, (url, published)


# ---------------------------------------------------------------------------------------
# Item fields


@pytest.mark.parametrize("guid", sorted(g[:60] for g in ITEM_CASES) if ITEM_CASES else [])
def test_item_field_variant(world, guid):
    full = next(g for g in ITEM_CASES if g[:60] == guid)
    states, reasons = ITEM_CASES[full]
    key = ("items", full[:2000])
    assert key in world.items, f"item {guid!r} not in the ledger"
    state, reason, message = world.items[key]
    if states == QUARANTINED:
        assert state == "quarantined" and reason in reasons, (state, reason, message)
    else:
        assert state in states, (state, reason, message)


def test_item_titles_kept_but_bounded(world):
    assert world.titles[("items", "bidi-title")] == "\u202eevil\u2066x\u2069 \ufeff\u200b title \U0001f600"
    assert len(world.titles[("items", "huge-title")]) <= 1000


# ---------------------------------------------------------------------------------------
# Pages


def _page_params():
    # built at import: _page_feed fills PAGE_CASES when the world is made, so list the keys here
    keys = [
        "plain",
        "raw-nul",
        "raw-controls",
        "bidi",
        "charset-utf7",
        "charset-unknown",
        "charset-empty-quoted",
        "meta-charset-lie",
        "latin1-as-utf8",
        "jsonld-odd-types",
        "ssrf-meta",
        "title-1mb",
        "script-flood",
        "single-token-200k",
        "date-year-1",
    ]
    xfails: dict[str, str] = {}  # none left: the failures this file found on pages are fixed
    keys += ["charref-control", "charref-fffe", "jsonld-deep", "date-overflow", "long-author", "utf16-page"]
    return keys + [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=r)) for k, r in xfails.items()]


@pytest.mark.parametrize("key", _page_params())
def test_page_variant_is_stored(world, key):
    state, reason, message = world.items[("pages", key)]
    assert PAGE_CASES[key] == ("stored", None)
    assert (state, reason) == ("stored", None), message


# ---------------------------------------------------------------------------------------
# Feeds: transport, HTTP, encodings


def _feed_params():
    names = [
        "items",
        "pages",
        "bad-location",
        "redirect-loop",
        "redirect-self-query",
        "fake-gzip",
        "fake-brotli",
        "fake-gzip-listed",
        "endless",
        "status-600",
        "status-204",
        "status-299",
        "status-300",
        "location-blank",
        "location-file",
        "location-port",
        "location-other-port",
        "location-latin1",
        "etag-8kb",
        "cookie-4kb",
        "content-type-latin1",
        "utf16-bom",
        "utf16be-decl-no-bom",
        "utf32-bom",
        "double-utf8-bom",
        "declared-latin1-is-utf8",
        "declared-unknown",
        "declared-utf7",
        "declared-rot13",
        "doctype-public",
        "doctype-subset-no-entity",
        "doctype-system-file",
        "stylesheet-pi",
        "xinclude",
        "undefined-entity",
        "query-links",
        "twin",
        "twin-tracked",
        "big-robots",
        "invalid-utf8-byte",
    ]
    xfails: dict[str, str] = {}  # none left: the failures this file found on feeds are fixed
    names += ["etag-latin1", "last-modified-latin1", "declared-utf16-is-utf8"]
    return names + [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=r)) for n, r in xfails.items()]


@pytest.mark.parametrize("name", _feed_params())
def test_feed_variant(world, name):
    row = world.feed_rows[name]
    expected = FEED_CASES[name]
    assert row["reason"] in expected, (row["reason"], row["error"])
    if None in expected:
        assert row["success"] is not None
        assert row["reason"] is None or row["error"].startswith("malformed feed"), row["error"]
        for guid in world.listed[name]:
            state, reason, message = world.items[(name, guid[:2000])]
            assert state in STORED_OR_DUP or (
                name in ("items", "pages", "query-links", "invalid-utf8-byte", "big-robots")
            ), (guid, state, reason, message)
    else:
        assert row["error"] and "Traceback" not in row["error"]


def test_twin_feeds_store_each_article_once(world):
    for guid in ("twin-a", "twin-c"):
        states = [world.items[(f, guid)][0] for f in ("twin", "twin-tracked")]
        assert all(s in STORED_OR_DUP for s in states) and states.count("stored") <= 1, states


@pytest.mark.parametrize(
    "guid",
    [
        "story-1",
        "story-2",
        "semicolon",
    ],
)
def test_links_with_odd_queries_fetch_their_own_page(world, guid):
    state, reason, message = world.items[("query-links", guid)]
    assert (state, reason) == ("stored", None), message


def test_big_robots_txt_does_not_block_the_site(world):
    state, reason, message = world.items[("big-robots", "big-robots")]
    assert (state, reason) == ("stored", None), message


def test_invalid_utf8_byte_spoils_only_its_item(world):
    state, reason, message = world.items[("invalid-utf8-byte", "mojibake:cafe")]
    assert (state, reason) == ("stored", None), message
    assert world.titles[("invalid-utf8-byte", "mojibake:cafe")] == "Caf\u00e9"


# ---------------------------------------------------------------------------------------
# Feed URLs from the user: the API and the command line


def _empty_feed(site: LoopbackSite, path: str, headers: dict[str, str] | None = None) -> str:
    return site.add(path, raw_rss(""), "application/rss+xml", headers=headers)


@pytest.mark.parametrize(
    "bad",
    [
        "/bad\x00.xml",
        "/bad\udcff.xml",
        "/bad \t feed.xml",
        "/bad\u202e.xml",
        "/" + "x" * 100_000,
    ],
)
def test_one_bad_feed_url_does_not_stop_the_others(settings, conn, site, bad):
    first, second = _empty_feed(site, "/one.xml"), _empty_feed(site, "/two.xml")
    summary = ingest(settings, [first, site.base + bad, second])
    assert summary.status == "succeeded"
    polled = {r[0] for r in conn.execute("SELECT url FROM feeds WHERE last_success_at IS NOT NULL")}
    assert {first, second} <= polled
    assert conn.execute("SELECT count(*) FROM ops.runs WHERE status <> 'succeeded'").fetchone()[0] == 0


def _cli(args: list[str], database_url: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        NEWSFLOW_DATABASE_URL=database_url,
        NEWSFLOW_HOME=str(home),
        NEWSFLOW_HOST_MIN_DELAY="0.01",
        NEWSFLOW_NLP_WORKERS="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def _polled(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT url FROM feeds WHERE last_success_at IS NOT NULL")}


def test_cli_feed_arguments_with_spaces_and_crlf_file(database_url, conn, site, tmp_path):
    first, second, third = (_empty_feed(site, f"/{n}.xml") for n in ("one", "two", "three"))
    feeds_file = tmp_path / "feeds.txt"
    feeds_file.write_bytes(f"# comment\r\n  {third}\t\r\n\r\n".encode())
    done = _cli(
        ["ingest", "--feed", f" {first} ", "--feed", f"\u00a0{second}\t", "--feeds", str(feeds_file)],
        database_url,
        tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert {first, second, third} <= _polled(conn)


def test_cli_feeds_file_with_bom(database_url, conn, site, tmp_path):
    first, second = _empty_feed(site, "/one.xml"), _empty_feed(site, "/two.xml")
    feeds_file = tmp_path / "feeds.txt"
    feeds_file.write_bytes(b"\xef\xbb\xbf" + f"{first}\r\n{second}\r\n".encode())
    done = _cli(["ingest", "--feeds", str(feeds_file)], database_url, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert {first, second} <= _polled(conn)
    assert "feed failed" not in done.stdout, done.stdout


def test_cli_feeds_file_with_nul_line(database_url, conn, site, tmp_path):
    first, second = _empty_feed(site, "/one.xml"), _empty_feed(site, "/two.xml")
    feeds_file = tmp_path / "feeds.txt"
    feeds_file.write_bytes(f"{first}\n{site.base}/a\x00b.xml\n{second}\n".encode())
    done = _cli(["ingest", "--feeds", str(feeds_file)], database_url, tmp_path / "home")
    assert "Traceback" not in done.stderr
    assert {first, second} <= _polled(conn), done.stderr
    assert done.returncode == 0, done.stderr


def test_cli_non_ascii_etag_second_poll(database_url, conn, site, tmp_path):
    feed = _empty_feed(site, "/etag.xml", headers={"ETag": '"caf\u00e9"'})
    first = _cli(["ingest", "--feed", feed], database_url, tmp_path / "home")
    assert first.returncode == 0, first.stderr
    second = _cli(["ingest", "--feed", feed], database_url, tmp_path / "home")
    assert "Traceback" not in second.stderr, second.stderr[-2000:]
    reason = conn.execute("SELECT last_error_reason FROM feeds").fetchone()[0]
    assert reason is None
