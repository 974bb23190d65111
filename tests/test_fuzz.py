"""Property tests: the feed, extraction and quote stages on arbitrary input never crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import extract_article
from pipeline.feeds import parse_feed
from pipeline.quotes import find_quotes
from pipeline.reasons import ItemError

FEEDISH = st.one_of(
    st.binary(max_size=4000),
    st.builds(
        lambda head, items, tail: head + b"".join(items) + tail,
        st.sampled_from(
            [b'<?xml version="1.0"?><rss version="2.0"><channel>', b"<feed xmlns='http://www.w3.org/2005/Atom'>", b""]
        ),
        st.lists(
            st.builds(
                lambda t, link: b"<item><title>" + t + b"</title><link>" + link + b"</link></item>",
                st.binary(max_size=40),
                st.sampled_from([b"http://a.test/x", b"/rel", b"javascript:x", b"", b"\xff\xfe", b"file:///etc"]),
            ),
            max_size=8,
        ),
        st.sampled_from([b"</channel></rss>", b"</feed>", b"", b"<!ENTITY x 'y'>"]),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FEEDISH)
def test_parse_feed_on_any_bytes(body):
    try:
        parsed = parse_feed(body, "http://a.test/feed.xml")
    except ItemError as exc:
        assert exc.reason == "feed_malformed"
        return
    for item in parsed.items:
        assert item.key
        assert item.link is None or item.link.startswith(("http://", "https://"))


HTMLISH = st.one_of(
    st.binary(max_size=3000),
    st.builds(
        lambda words, junk: (
            b"<html><body><article>"
            + b"".join(b"<p>" + w.encode("utf-8", "surrogatepass") + b"</p>" for w in words)
            + junk
            + b"</article></body></html>"
        ),
        st.lists(st.text(max_size=120), max_size=12),
        st.binary(max_size=200),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HTMLISH)
def test_extract_article_on_any_bytes(body):
    try:
        extracted = extract_article(body, "http://a.test/page")
    except ItemError as exc:
        assert exc.reason in {"extraction_empty", "extraction_failed"}
        return
    assert "\x00" not in extracted.text
    extracted.text.encode("utf-8")  # no lone surrogates


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \n\"'“”‘’«».,")), max_size=300))
def test_quote_spans_are_valid(text):
    for q in find_quotes(text):
        assert 0 <= q.open_at < q.close_at <= len(text)
        for start, end in q.parts:
            assert q.open_at < start <= end <= q.close_at
