"""Canonical article URLs: one spelling per article.

courlan (trafilatura's URL library) lower-cases the host, drops default ports, sorts the
query and removes tracking parameters (utm_*, fbclid, gclid ...); we also drop the fragment.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from courlan import normalize_url

ALLOWED_SCHEMES = {"http", "https"}


class BadURL(ValueError):
    """A link that cannot be fetched (no host, unsupported scheme, malformed)."""


def absolute(link: str, base: str) -> str:
    return urljoin(base, link.strip())


def canonical_url(url: str) -> str:
    """The canonical form of an http(s) URL, or ``BadURL`` for anything else."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BadURL(f"malformed URL {url[:200]!r}") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise BadURL(f"unsupported URL scheme {parts.scheme or '(none)'!r}")
    if not parts.hostname:
        raise BadURL(f"URL without a host: {url[:200]!r}")
    try:
        normalised = normalize_url(url)
    except (ValueError, TypeError) as exc:
        raise BadURL(f"malformed URL {url[:200]!r}") from exc
    scheme, netloc, path, query, _fragment = urlsplit(normalised)
    return urlunsplit((scheme, netloc, path or "/", query, ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
