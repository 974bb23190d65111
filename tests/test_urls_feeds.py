"""URL canonicalisation and feed parsing on bytes."""

import pytest

from pipeline.feeds import parse_feed
from pipeline.reasons import ItemError
from pipeline.urls import BadURL, absolute, canonical_url


def test_canonical_url_drops_tracking_and_fragment():
    url = "HTTP://Example.COM:80/news/story?utm_source=rss&utm_medium=feed&id=7&fbclid=x#top"
    assert canonical_url(url) == "http://example.com/news/story?id=7"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "ftp://x.org/a", "http:///nohost"])
def test_canonical_url_refuses_non_http(url):
    with pytest.raises(BadURL):
        canonical_url(url)


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://site.test/</link>
<item><title>A</title><link>/a?utm_campaign=x</link><guid>g1</guid>
<pubDate>Wed, 09 Nov 2022 11:32:00 GMT</pubDate></item>
<item><title>A again</title><link>/a</link><guid>g1</guid></item>
<item><title>No link</title></item>
<item><title>Bad</title><link>javascript:void(0)</link></item>
<item><title>Future</title><link>http://site.test/f</link><pubDate>Wed, 09 Nov 2999 11:32:00 GMT</pubDate></item>
</channel></rss>"""


def test_parse_feed_items():
    parsed = parse_feed(RSS, "http://site.test/rss.xml")
    assert parsed.title == "T"
    first, no_link, bad, future = parsed.items
    assert first.link == "http://site.test/a" and first.published_at.year == 2022
    assert no_link.link is None and "no link" in no_link.link_error
    assert bad.link is None and "scheme" in bad.link_error
    assert future.published_at is None


def test_parse_feed_refuses_entities_and_non_feeds():
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel><title>&a;</title></channel></rss>'
    for body in (bomb, b"", b"<html><body>Error 500</body></html>", b'{"json": true}'):
        with pytest.raises(ItemError) as err:
            parse_feed(body, "http://site.test/rss.xml")
        assert err.value.reason == "feed_malformed"


def test_parse_feed_takes_only_bytes():
    with pytest.raises(TypeError):
        parse_feed("/etc/passwd", "http://site.test/")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "https://[127.0.0.1]/",
        "http://a]b/",
        "http://\u2100/",
        "http://",
        "http://site.test:99999/",
        "http://site.test:port/",
        "http://exa mple.test/",
        "http://site.test/a\x00b",
        "http://site.test/a\ud800",
        "http://site.test/" + "a" * 9000,
    ],
)
def test_malformed_urls_are_bad_urls_not_value_errors(url):
    with pytest.raises(BadURL):
        canonical_url(url)
    with pytest.raises(BadURL):
        canonical_url(absolute(url, "http://site.test/feed.xml"))


def test_absolute_never_joins_a_link_that_has_a_scheme():
    base = "http://site.test/feeds/rss.xml"
    assert absolute("story", base) == "http://site.test/feeds/story"
    assert absolute("/story", base) == "http://site.test/story"
    assert absolute("//cdn.test/x", base) == "http://cdn.test/x"
    assert absolute("http://", base) == "http://"  # not the base: a URL without a host
    assert absolute(" \thttp://other.test/a\nb ", base) == "http://other.test/ab"  # as a browser reads it
    with pytest.raises(BadURL):
        absolute("  ", base)
