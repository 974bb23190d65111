"""Canonical article URLs: one spelling per article.

courlan (trafilatura's URL library) lower-cases the host, drops default ports, sorts the
query and removes tracking parameters (utm_*, fbclid, gclid ...); we also drop the fragment.

``absolute`` and ``canonical_url`` take any text and raise nothing but ``BadURL``: a link
from a feed is outside input, and a malformed one (``http://[::1``, ``https://[127.0.0.1]/``,
a host that is not NFKC-stable, a bad port, control characters, more than 8,192 characters) is one bad
item, never an error that escapes the item.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from courlan import normalize_url

ALLOWED_SCHEMES = {"http", "https"}
MAX_URL_LENGTH = 8192  # characters, before and after canonicalisation (the common server limit)

# What a browser strips around a link (C0 controls and space) and removes inside it.
_EDGE = "".join(chr(c) for c in range(0x21))
_TAB_NEWLINE = re.compile("[\t\n\r]")
# Left after that, these make a link unusable: C0 and C1 controls, DEL, lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Characters no host name can hold (RFC 3986 reg-name and IP literals, IDNs aside).
_BAD_HOST = re.compile(r"[\s<>\"{}|\\^`]")


class BadURL(ValueError):
    """A link that cannot be fetched (no host, unsupported scheme, malformed)."""


def _show(url: str) -> str:
    """``url`` for an error message: cut short, controls and surrogates escaped by repr."""
    return repr(url[:200])


def _tidy(link: str) -> str:
    """``link`` as a browser reads it: edges trimmed, tabs and newlines removed; else BadURL."""
    if not isinstance(link, str):
        raise BadURL(f"URL is not text: {type(link).__name__}")
    link = _TAB_NEWLINE.sub("", link.strip(_EDGE))
    if not link:
        raise BadURL("empty URL")
    if len(link) > MAX_URL_LENGTH:
        raise BadURL(f"URL longer than {MAX_URL_LENGTH} characters ({len(link)})")
    if _CONTROL.search(link):
        raise BadURL(f"URL with control characters or lone surrogates: {_show(link)}")
    return link


def absolute(link: str, base: str) -> str:
    """``link`` resolved against ``base``; ``BadURL`` when it cannot be.

    A link with a scheme is already absolute (RFC 3986, section 5.2.2, strict): it is never
    joined to the base, so ``http://`` alone is a URL without a host, not the base URL.
    """
    link = _tidy(link)
    try:
        if urlsplit(link).scheme:
            return link
        return urljoin(base, link)
    except ValueError as exc:  # urllib's own checks: brackets, NFKC-unstable netloc ...
        raise BadURL(f"malformed URL {_show(link)}: {exc}") from exc


def _check(url: str) -> tuple[str, str]:
    """(scheme, host) of an http(s) URL with a usable host and port; else BadURL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise BadURL(f"malformed URL {_show(url)}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise BadURL(f"unsupported URL scheme {parts.scheme or '(none)'!r}")
    if not host:
        raise BadURL(f"URL without a host: {_show(url)}")
    if _BAD_HOST.search(host):
        raise BadURL(f"URL with an invalid host: {_show(url)}")
    return scheme, host


def canonical_url(url: str) -> str:
    """The canonical form of an http(s) URL, or ``BadURL`` for anything else."""
    url = _tidy(url)
    _check(url)
    try:
        normalised = normalize_url(url)
        scheme, netloc, path, query, _fragment = urlsplit(normalised)
        given = urlsplit(url).query
        if given and (";" in given or any("=" not in part for part in given.split("&") if part)):
            # courlan drops valueless parameters (``?1``) and re-encodes ``;``: two stories
            # would share one URL, or a link would change its page. The publisher's query stays.
            query = given
        canonical = urlunsplit((scheme, netloc, path or "/", query, ""))
    except Exception as exc:  # courlan on hostile input: whatever it raises, the link is bad
        raise BadURL(f"malformed URL {_show(url)}: {type(exc).__name__}") from exc
    if len(canonical) > MAX_URL_LENGTH:
        raise BadURL(f"URL longer than {MAX_URL_LENGTH} characters once normalised ({len(canonical)})")
    if _CONTROL.search(canonical):
        raise BadURL(f"URL with control characters or lone surrogates: {_show(canonical)}")
    _check(canonical)
    return canonical


def fetchable_url(url: str) -> str:
    """An http(s) URL fit to fetch and store as given (a feed's address), else ``BadURL``.

    Unlike ``canonical_url`` it keeps the spelling: a feed is fetched where its operator
    said. Userinfo (``user@host``) is refused, as the address guard refuses it.
    """
    url = _tidy(url)
    _check(url)
    if "@" in urlsplit(url).netloc:
        raise BadURL(f"URL with user information: {_show(url)}")
    return url


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
