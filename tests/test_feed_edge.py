"""The feed edge (issue 13, items 2, 9 and 10): what ``parse_feed`` hands on is clean, bounded
and complete, and what it hands feedparser cannot make feedparser quadratic.

No wall-clock assertions: the tests check what makes parsing linear (the triggers are gone
from the bytes feedparser sees, the quadratic functions are not reached) by counting.
``benchmarks/feed_parse_scaling.py`` prints the times.
"""

from __future__ import annotations

import io
import re
import xml.sax.xmlreader
from html import escape

import feedparser
import feedparser.mixin
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import feeds
from pipeline.feeds import MAX_ATTRIBUTES, MAX_GUID, MAX_TITLE, ParsedFeed, parse_feed, prepare
from pipeline.ingest import ingest
from pipeline.reasons import ItemError
from pipeline.urls import MAX_URL_LENGTH, BadURL, absolute, canonical_url

from .pages import news_page

FEED_URL = "http://site.test/feeds/main.xml"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")


def rss_bytes(
    items: bytes, *, channel_title: bytes = b"T", head: bytes = b'<?xml version="1.0" encoding="utf-8"?>'
) -> bytes:
    return (
        head + b'<rss version="2.0"><channel><title>' + channel_title + b"</title><link>http://site.test/</link>"
        b"<description>d</description>" + items + b"</channel></rss>"
    )


def item(title: bytes = b"t", link: bytes | None = None, guid: bytes | None = None, extra: bytes = b"") -> bytes:
    parts = [b"<item><title>", title, b"</title>"]
    if link is not None:
        parts += [b"<link>", link, b"</link>"]
    if guid is not None:
        parts += [b'<guid isPermaLink="false">', guid, b"</guid>"]
    return b"".join(parts + [extra, b"</item>"])


def assert_clean(parsed: ParsedFeed) -> None:
    """Every text field: no NUL, no C0 control but tab and newline, no lone surrogate, bounded."""
    fields = [(parsed.title, MAX_TITLE), (parsed.site_url, MAX_URL_LENGTH), (parsed.warning, 500)]
    for i in parsed.items:
        fields += [(i.title, MAX_TITLE), (i.guid, MAX_GUID), (i.link, MAX_URL_LENGTH), (i.link_error, 500), (i.key, 64)]
    for value, limit in fields:
        if value is None:
            continue
        assert isinstance(value, str) and not UNSAFE.search(value), repr(value)[:300]
        assert len(value) <= limit
        value.encode("utf-8")  # would raise on a lone surrogate
    for i in parsed.items:
        assert (i.link is None) != (i.link_error is None), i
        if i.link is not None:
            assert canonical_url(i.link) == i.link


# ---------------------------------------------------------------------------------------
# A. Fields are cleaned once, at the edge


BAD_LINKS = [
    b"http://[::1",
    b"https://[127.0.0.1]/",
    b"http://a]b/",
    "http://site.test\u2100/x".encode(),
    "http://\u2100/".encode(),
    b"http://",
    b"https://",
    b"http:",
    b"http://site.test:99999/x",
    b"http://site.test:port/x",
    b"javascript:alert(1)",
    b"http://site.test/" + b"a" * MAX_URL_LENGTH,
    b"http://site.test/a\x7fb",  # DEL
    b"http://exa mple.test/",
]


def test_bad_links_are_bad_items_and_the_others_are_unaffected():
    body = rss_bytes(
        item(b"before", b"http://site.test/before", b"g-before")
        + b"".join(item(b"bad %d" % n, link, b"g%d" % n) for n, link in enumerate(BAD_LINKS))
        + item(b"after", b"/after", b"g-after")
    )
    parsed = parse_feed(body, FEED_URL)
    assert_clean(parsed)
    before, *bad, after = parsed.items
    assert before.link == "http://site.test/before" and after.link == "http://site.test/after"
    assert len(bad) == len(BAD_LINKS)
    for i in bad:
        assert i.link is None and i.link_error, i
    assert str(MAX_URL_LENGTH) in bad[BAD_LINKS.index(b"http://site.test/" + b"a" * MAX_URL_LENGTH)].link_error
    assert "host" in bad[BAD_LINKS.index(b"http://")].link_error


def test_nul_and_c0_controls_are_removed_from_links_as_from_any_text():
    body = rss_bytes(item(b"a", b"http://site.test/a&#0;b\x00c&#x7;d", b"g"))
    assert parse_feed(body, FEED_URL).items[0].link == "http://site.test/abcd"


@pytest.mark.parametrize(
    "link", [b"http://[::1", b"https://[127.0.0.1]/", b"http://a]b/", "http://\u2100/".encode(), b"http://"]
)
def test_absolute_and_canonical_url_raise_only_bad_url(link):
    with pytest.raises(BadURL):
        canonical_url(absolute(link.decode(), FEED_URL))
    with pytest.raises(BadURL):
        canonical_url(link.decode())


@pytest.mark.parametrize(
    "text",
    [
        b"a\x00b",
        b"a&#0;b",
        b"a&#x0;b",
        b"a&#xD800;b",
        b"a&#55296;b",
        b"a&#x110000;b",
        b"a&#99999999999;b",
        b"a\x07b\x1b",
    ],
)
def test_nul_controls_and_surrogates_never_leave_the_parser(text):
    body = rss_bytes(item(b"title " + text, b"http://site.test/a", b"guid " + text), channel_title=b"channel " + text)
    parsed = parse_feed(body, FEED_URL)
    assert_clean(parsed)
    (only,) = parsed.items
    assert only.title.startswith("title a") and only.guid.startswith("guid a") and parsed.title.startswith("channel a")
    assert only.link == "http://site.test/a"


def test_long_fields_are_bounded_and_long_guids_keep_their_identity():
    long_title = b"word " * 1000
    guid_a, guid_b = b"g" * 3000 + b"A", b"g" * 3000 + b"B"
    body = rss_bytes(item(long_title, b"http://site.test/a", guid_a) + item(b"b", b"http://site.test/b", guid_b))
    parsed = parse_feed(body, FEED_URL)
    assert_clean(parsed)
    a, b = parsed.items
    assert len(a.title) == MAX_TITLE and len(a.guid) == MAX_GUID
    assert a.guid == b.guid and a.key != b.key  # cut for storage, keyed by the whole guid


FEED_TEXT = st.text(max_size=60)


def _as_xml(text: str, how: str) -> bytes:
    if how == "escaped":
        return escape(text, quote=False).encode("utf-8", "surrogatepass")
    if how == "charrefs":
        return "".join(f"&#{ord(c)};" for c in text).encode()
    return text.encode("utf-8", "surrogatepass")  # raw: may be invalid XML, invalid UTF-8


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=FEED_TEXT,
    guid=FEED_TEXT,
    link=st.one_of(FEED_TEXT, st.builds(lambda t: "http://" + t, FEED_TEXT), st.builds(lambda t: "/" + t, FEED_TEXT)),
    channel=FEED_TEXT,
    how=st.sampled_from(["escaped", "charrefs", "raw"]),
)
def test_parse_feed_on_arbitrary_field_text(title, guid, link, channel, how):
    body = rss_bytes(
        item(_as_xml(title, how), _as_xml(link, how), _as_xml(guid, how))
        + item(b"good", b"http://site.test/good", b"g"),
        channel_title=_as_xml(channel, how),
    )
    try:
        parsed = parse_feed(body, FEED_URL)
    except ItemError as exc:
        assert exc.reason == "feed_malformed"
        return
    assert_clean(parsed)
    assert any(i.link == "http://site.test/good" for i in parsed.items)


URLISH = st.text(
    alphabet=st.sampled_from(list("ahtps:/[]@%?#.:1 \t\x00\u2100\ud800\uff0e")) | st.characters(), max_size=40
)


@settings(max_examples=500, deadline=None)
@given(
    link=st.one_of(
        st.text(max_size=80),
        URLISH,
        st.builds(
            lambda a, b: a + "://" + b,
            st.sampled_from(["http", "https", "HTTP", "ftp", ""]) | st.text(max_size=8),
            URLISH,
        ),
    )
)
def test_url_functions_raise_only_bad_url(link):
    for call in (lambda: canonical_url(link), lambda: canonical_url(absolute(link, FEED_URL))):
        try:
            url = call()
        except BadURL:
            continue
        assert url.startswith(("http://", "https://")) and not UNSAFE.search(url) and len(url) <= MAX_URL_LENGTH
        assert canonical_url(url) == url


PARAGRAPHS = [
    "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
    '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
    "The council approved the budget in a vote of nine to two after a long debate.",
    "Olsen said the extension would let larger ferries dock during the winter storms.",
]


def test_nul_and_bad_links_reach_the_ledger_not_a_database_error(settings, conn, site):
    site.add("/good", news_page("Harbour extension approved", PARAGRAPHS))
    body = rss_bytes(
        item(b"nul \x00 title &#0; &#xD800;", site.url("/good").encode(), b"guid-\x00-1")
        + item(b"bracket", b"http://[::1", b"guid-2")
        + item(b"empty scheme", b"http://", b"guid-3")
    )
    feed = site.add("/feed.xml", body, "application/rss+xml")
    summary = ingest(settings, [feed])
    assert summary.seen == 3 and not summary.feeds_failed
    rows = conn.execute("SELECT guid, title, state, reason FROM feed_items ORDER BY guid").fetchall()
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("guid--1", "stored", None),
        ("guid-2", "quarantined", "bad_url"),
        ("guid-3", "quarantined", "bad_url"),
    ]
    assert "\x00" not in rows[0][1]


# ---------------------------------------------------------------------------------------
# B. What feedparser is given cannot make it quadratic


def _calls(monkeypatch, owner, name: str) -> list[int]:
    count = [0]
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return count


def bare_feedparser(body: bytes):
    return feedparser.parse(io.BytesIO(body), sanitize_html=False)


def test_nothing_precedes_the_root_but_a_one_line_declaration():
    feed = rss_bytes(item(b"a", b"http://site.test/a", b"a"), head=b"")
    for prolog in [
        b"\n" * 40_000,
        b'<?xml version="1.0" encoding="utf-8"?>' + b" \n" * 40_000,
        b'<?xml version="1.0"?>\n' + b"<!DOCTYPE\n" * 2_000,
        b'Warning: junk in /var/www/feed.php on line 3\n<?xml version="1.0"?>\n<!-- a comment -->\n'
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://x.test/rss.dtd">\n',
    ]:
        prepared = prepare(prolog + feed)
        first, rest = prepared.split(b"\n", 1) if prepared.startswith(b"<?") else (b"", prepared)
        assert len(first) < 60 and rest.startswith(b"<rss"), prepared[:100]
        assert [i.link for i in parse_feed(prolog + feed, FEED_URL).items] == ["http://site.test/a"]


def test_the_first_line_is_short_on_a_one_line_feed():
    """feedparser's encoding sniffer is quadratic in the quotes of the first line."""
    body = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>' + item(b"a", b"http://site.test/a")
    body += b'<x encoding="a"' + b' b=""' * 5000 + b"/></channel></rss>"
    first_line = prepare(body).split(b"\n", 1)[0]
    assert first_line == b'<?xml version="1.0" encoding="utf-8"?>'
    assert len(parse_feed(body, FEED_URL).items) == 1


AUTHORS = (
    b"<author>a@" + b"a." * 300 + b"</author>"
    b"<dc:creator>a@" + b"a." * 300 + b"</dc:creator>"
    b"<DC:Creator>x</DC:Creator>"
    b"<itunes:author>a@a.a</itunes:author><itunes:owner><itunes:email>a@a.a</itunes:email></itunes:owner>"
    b"<managingEditor>a@a.a</managingEditor><webMaster>a@a.a</webMaster><dc:publisher>a@a.a</dc:publisher>"
    b"<category>one</category><category>two</category><dc:subject>s</dc:subject><media:keywords>k, l</media:keywords>"
)
NAMESPACES = (
    b'<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:DC="http://purl.org/dc/elements/1.1/" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
    b'xmlns:media="http://search.yahoo.com/mrss/">'
)


def test_author_and_category_elements_never_reach_their_quadratic_code(monkeypatch):
    """The e-mail regex over author text and the list scan over categories are not run."""
    body = rss_bytes(b"".join(item(b"t%d" % n, b"http://site.test/%d" % n, extra=AUTHORS) for n in range(3)), head=b"")
    body = NAMESPACES + body.split(b'<rss version="2.0">', 1)[1]
    authors = _calls(monkeypatch, feedparser.mixin._FeedParserMixin, "_sync_author_detail")
    tags = _calls(monkeypatch, feedparser.mixin._FeedParserMixin, "_add_tag")
    bare_feedparser(body)
    assert authors[0] >= 3 * 7 and tags[0] >= 3 * 4  # the paths exist, and this feed reaches them
    authors[0] = tags[0] = 0
    parsed = parse_feed(body, FEED_URL)
    assert authors[0] == 0 and tags[0] == 0
    assert [i.link for i in parsed.items] == [f"http://site.test/{n}" for n in range(3)]
    assert not re.search(
        rb"<(/?)([\w]+:)?(author|creator|owner|managingeditor|webmaster|publisher|category)[\s/>]", prepare(body), re.I
    )


def test_an_element_keeps_a_bounded_number_of_attributes(monkeypatch):
    """SAX's attribute lookup by qname is a scan: per element, quadratic in its attributes."""
    many = b" ".join(b'a%d="1"' % n for n in range(2000))
    body = rss_bytes(
        b"<item " + many + b' xmlns:x="http://x.test/"><title>t</title><link>http://site.test/a</link></item>'
    )
    lookups = _calls(monkeypatch, xml.sax.xmlreader.AttributesNSImpl, "getValueByQName")
    bare_feedparser(body)
    assert lookups[0] >= 2000
    lookups[0] = 0
    assert [i.link for i in parse_feed(body, FEED_URL).items] == ["http://site.test/a"]
    assert lookups[0] <= MAX_ATTRIBUTES + 10


def test_too_many_namespace_prefixes_are_refused():
    declarations = b" ".join(b'xmlns:p%d="http://x.test/%d"' % (n, n) for n in range(500))
    body = (
        b'<rss version="2.0" ' + declarations + b"><channel>" + item(b"a", b"http://site.test/a") + b"</channel></rss>"
    )
    with pytest.raises(ItemError) as err:
        parse_feed(body, FEED_URL)
    assert err.value.reason == "feed_malformed" and "namespace" in err.value.message


@pytest.mark.parametrize("blank", [b"\n", b"&#32;", b"&#x20;", b"&#160;", b"\xc2\xa0\n", b"<![CDATA[ ]]>", b"&nbsp;"])
def test_whitespace_runs_are_collapsed(blank):
    """feedparser removes leading whitespace pieces of XHTML content one ``del pieces[0]`` at a time."""
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>e</id>'
        b'<link href="http://site.test/a"/><title>t</title><content type="xhtml">'
        + blank * 5000
        + b'<div xmlns="http://www.w3.org/1999/xhtml">x</div></content></entry></feed>'
    )
    prepared = prepare(body)
    assert blank * 64 not in prepared and len(prepared) < 400
    assert [i.link for i in parse_feed(body, FEED_URL).items] == ["http://site.test/a"]


def test_encodings_survive_preparation():
    utf16 = rss_bytes(item("Zürich".encode(), b"http://site.test/z"), head=b'<?xml version="1.0" encoding="utf-16"?>')
    latin = rss_bytes(
        item("Zürich".encode("latin-1"), b"http://site.test/z"), head=b'<?xml version="1.0" encoding="iso-8859-1"?>'
    )
    gb = rss_bytes(
        item("北京".encode("gb2312"), b"http://site.test/z"), head=b'<?xml version="1.0" encoding="gb2312"?>'
    )
    for body, title in [
        (utf16.decode().encode("utf-16"), "Zürich"),
        (b"\xef\xbb\xbf" + utf16.replace(b"utf-16", b"utf-8"), "Zürich"),
        (latin, "Zürich"),
        (gb, "北京"),
    ]:
        (only,) = parse_feed(body, FEED_URL).items
        assert only.title == title and only.link == "http://site.test/z"


# ---------------------------------------------------------------------------------------
# C. Nothing silently lost


def test_items_past_the_cap_are_counted_and_named():
    body = rss_bytes(b"".join(item(b"t%d" % n, b"http://site.test/%d" % n, b"g%d" % n) for n in range(12)))
    parsed = parse_feed(body, FEED_URL, max_items=10)
    assert len(parsed.items) == 10 and parsed.dropped == 2
    assert "2 items past the first 10 not read" in parsed.warning
    assert parse_feed(body, FEED_URL).dropped == 0 and parse_feed(body, FEED_URL).warning is None


def test_a_repeated_guid_with_another_link_is_another_item():
    a, b = item(b"a", b"http://site.test/a", b"same"), item(b"b", b"http://site.test/b", b"same")
    first = parse_feed(rss_bytes(a + b), FEED_URL).items
    second = parse_feed(rss_bytes(b + a), FEED_URL).items
    assert len(first) == 2 and len({i.key for i in first}) == 2
    assert {(i.link, i.key) for i in first} == {(i.link, i.key) for i in second}  # whatever the order
    assert len(parse_feed(rss_bytes(a + a), FEED_URL).items) == 1  # listed twice: one item
    alone = parse_feed(rss_bytes(a), FEED_URL).items[0]
    assert alone.key == feeds.item_key("same", None, None)  # an ordinary guid keeps its key


def test_items_without_guid_link_or_title_do_not_share_a_key():
    bare = [
        b"<item><description>first story</description></item>",
        b"<item><description>second story</description></item>",
        b"<item><pubDate>Wed, 09 Nov 2022 11:32:00 GMT</pubDate></item>",
        b"<item></item>",
        b"<item></item>",
        b"<item><title>same title</title><description>one</description></item>",
        b"<item><title>same title</title><description>two</description></item>",
    ]
    parsed = parse_feed(rss_bytes(b"".join(bare)), FEED_URL)
    assert len(parsed.items) == len(bare) and len({i.key for i in parsed.items}) == len(bare)
    again = parse_feed(rss_bytes(b"".join(bare)), FEED_URL)
    assert [i.key for i in again.items] == [i.key for i in parsed.items]  # stable from poll to poll
    assert all(i.link is None and i.link_error for i in parsed.items)


# ---------------------------------------------------------------------------------------
# D. Relative links


def test_relative_links_resolve_against_xml_base_else_the_feed_url():
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
<link href="http://www.site.test/"/>
<entry><id>1</id><title>no base</title><link href="stories/1"/></entry>
<entry><id>2</id><title>root relative</title><link href="/stories/2"/></entry>
<entry xml:base="http://cdn.site.test/base/"><id>3</id><title>base</title><link href="stories/3"/></entry>
<entry xml:base="/other/"><id>4</id><title>relative base</title><link href="stories/4"/></entry>
<entry><id>5</id><title>scheme only</title><link href="http://"/></entry>
<entry><id>6</id><title>protocol relative</title><link href="//cdn.site.test/6"/></entry>
</feed>"""
    links = [(i.link, i.link_error) for i in parse_feed(atom, FEED_URL).items]
    assert links[0] == ("http://site.test/feeds/stories/1", None)
    assert links[1] == ("http://site.test/stories/2", None)
    assert links[2] == ("http://cdn.site.test/base/stories/3", None)
    assert links[3] == ("http://site.test/other/stories/4", None)
    assert links[4][0] is None and "own URL" in links[4][1]
    assert links[5] == ("http://cdn.site.test/6", None)
    parsed = parse_feed(atom, FEED_URL)
    assert parsed.site_url == "http://www.site.test/"
    no_base = atom.replace(b' xml:base="http://cdn.site.test/base/"', b"").replace(b' xml:base="/other/"', b"")
    links = [(i.link, i.link_error) for i in parse_feed(no_base, FEED_URL).items]
    assert links[2] == ("http://site.test/feeds/stories/3", None)
    assert links[4][0] is None and "host" in links[4][1]  # no base given to feedparser: the raw link


def test_relative_rss_links_resolve_against_the_feed_url_not_the_channel_link():
    body = rss_bytes(item(b"a", b"story-a", b"a")).replace(
        b"http://site.test/</link>", b"http://www.other.test/x/</link>"
    )
    assert parse_feed(body, FEED_URL).items[0].link == "http://site.test/feeds/story-a"
