"""Where a feed keeps its history: RFC 5005 archive/paged links and WordPress ``?paged=N`` pages.

Pure functions over bytes and URLs, no I/O: ``pipeline.backfill`` fetches, these read. A feed
document's own links (``<atom:link rel="prev-archive">`` in RSS, ``<link rel="next">`` in
Atom) say where older entries are; entry-level links are never followed.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
# Links towards older entries. RFC 5005 section 4 (archived feeds) walks ``prev-archive``;
# section 3 (paged feeds) leaves the direction to the publisher, so both ``next`` and
# ``previous`` are followed and the caller's visited set keeps the walk finite.
OLDER_RELS = ("prev-archive", "next", "previous", "prev")
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    # recover=True: a feed feedparser accepted as "malformed but usable" still has its links.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        recover=True,
    )


def feed_links(body: bytes, base_url: str) -> dict[str, list[str]]:
    """The feed-level ``rel`` links of a feed document, absolute, by relation.

    Looks at the children of an Atom ``<feed>`` or an RSS ``<channel>`` only. Documents
    that declare entities or do not parse give no links (the feed parser reports them).
    """
    if _ENTITY_DECL.search(body[:65536]) or not body.strip():
        return {}
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError:
        return {}
    if root is None:
        return {}
    containers = [root]
    containers += [child for child in root if isinstance(child.tag, str) and etree.QName(child).localname == "channel"]
    links: dict[str, list[str]] = {}
    for container in containers:
        for child in container:
            if not isinstance(child.tag, str) or etree.QName(child).localname != "link":
                continue
            rel = (child.get("rel") or "").strip().lower()
            href = (child.get("href") or "").strip()
            if not rel or not href:
                continue  # an RSS <link>text</link> is the site, not a page of the feed
            absolute = urljoin(base_url, href)
            if urlsplit(absolute).scheme.lower() not in ("http", "https"):
                continue
            bucket = links.setdefault(rel, [])
            if absolute not in bucket:
                bucket.append(absolute)
    return links


def older_pages(links: dict[str, list[str]]) -> list[str]:
    """The pages a history walk should visit next, archive links first."""
    out: list[str] = []
    for rel in OLDER_RELS:
        for url in links.get(rel, []):
            if url not in out:
                out.append(url)
    return out


def paged_url(feed_url: str, page: int) -> str:
    """``feed_url`` asking for page ``page`` the WordPress way (``?paged=N``).

    Other query parameters are kept; an existing ``paged`` is replaced.
    """
    if page < 1:
        raise ValueError("pages are numbered from 1")
    parts = urlsplit(feed_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "paged"]
    query.append(("paged", str(page)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
