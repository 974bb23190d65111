"""RSS/Atom bytes to feed items (pure: no I/O).

feedparser only ever sees bytes wrapped in ``io.BytesIO``: given a ``str`` that looks like
a path or URL it would open it. Entity declarations are refused before parsing (billion
laughs). Items feedparser recovers from a malformed feed are kept.

The edge (RELIABILITY.md C1, I3, I4)
------------------------------------
Every text field of a ``ParsedFeed`` and its ``FeedItem``\\ s is cleaned here, once: no NUL,
no other control character but tab and newline, no lone surrogate, and a bounded length
(titles ``MAX_TITLE``, guids ``MAX_GUID``, links ``urls.MAX_URL_LENGTH``, the warning
``MAX_WARNING``). A link that cannot be used (malformed, not http(s), no host, too long) makes
its item ``link=None`` with a ``link_error``; the other items are unaffected.

Before feedparser sees the bytes, ``prepare`` removes what makes feedparser's own code
quadratic on hostile input, in linear time, so the parse is linear in the size of the feed:

* whatever precedes the root element (whitespace, junk, comments, a DOCTYPE) is dropped and
  the XML declaration rewritten as one short line: feedparser's ``replace_doctype`` runs
  ``^\\s*<!ENTITY`` / ``^\\s*<!DOCTYPE`` line by line over that prolog (quadratic in blank
  lines or ``<!DOCTYPE`` lines), and its encoding sniffer runs ``^<\\?.*encoding=..*\\?>``
  over the first line (quadratic in quotes on a one-line feed);
* author-like and category-like elements are renamed (``<author>`` becomes
  ``<nf-author>``, ``<dc:creator>`` ``<dc:nf-creator>``), so feedparser keeps their text as
  an unknown element: it would run an e-mail regex that is quadratic in the length of
  the text over every author, and de-duplicate categories by a list scan, quadratic in
  their number. newsflow reads neither;
* an element keeps at most ``MAX_ATTRIBUTES`` attributes (the SAX attribute lookup
  feedparser uses is linear per attribute) and a feed may declare at most
  ``MAX_NAMESPACE_PREFIXES`` namespace prefixes (every element in an unknown namespace is
  looked up by a scan of them);
* a whitespace run that would reach feedparser as ``WHITESPACE_RUN`` or more text pieces
  (blank lines, whitespace character references, whitespace-only CDATA sections) becomes
  one newline: feedparser strips leading whitespace pieces of XHTML content one
  ``del pieces[0]`` at a time;
* character references to characters XML forbids (``&#0;``, ``&#xD800;``, past U+10FFFF)
  are removed or replaced by U+FFFD, and raw C0 control bytes deleted: feedparser's
  fallback parser would raise on them, or pass NUL on.

HTML inside items is never processed (``sanitize_html`` and ``resolve_relative_uris`` off):
newsflow takes only titles, links, ids and dates from a feed.

Relative links resolve against ``xml:base`` when the feed gives one (feedparser applies
it, and ``prepare`` gives the root element the feed's URL as its base so that an entry's
``xml:base`` ends with the entry), else against the feed's own URL (RFC 4287, section 4.2.7
and RSS practice); never against the channel's ``<link>``. A link with a scheme is never
joined: ``http://`` alone is a bad link, not the feed's address, and so is any link that
resolves to the feed's own URL.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import feedparser

from .clean import clean_text
from .reasons import ItemError
from .urls import BadURL, absolute, canonical_url

FUTURE_TOLERANCE = timedelta(days=1)
MAX_TITLE = 1000
MAX_GUID = 2000
MAX_WARNING = 500
MAX_ATTRIBUTES = 32  # per element, namespace declarations aside
MAX_NAMESPACE_PREFIXES = 64  # distinct prefixes declared in one feed
WHITESPACE_RUN = 64  # text pieces (lines, references, CDATA sections) one whitespace run may make
MAX_DECLARATION = 1024  # bytes of an XML declaration; a longer one is ignored

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_FEED_ROOT = re.compile(rb"<(rss|feed|rdf:RDF|RDF)[\s>]", re.IGNORECASE)


@dataclass(frozen=True)
class FeedItem:
    key: str  # stable identity within its feed: see ``parse_feed``
    guid: str | None
    link: str | None  # canonical absolute URL, None when missing or unusable
    link_error: str | None  # why ``link`` is None
    title: str | None
    published_at: datetime | None
    # The link as the feed spelled it (resolved), when that differs from ``link``: it is what
    # is fetched. ``link``, the canonical form, is the article's identity (courlan drops
    # valueless query parameters and re-encodes the query, which some servers do not follow).
    fetch_url: str | None = None

    @property
    def fetch_link(self) -> str | None:
        return self.fetch_url or self.link


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    items: list[FeedItem]
    warning: str | None  # a malformed but usable feed, or items past the limit: for the feed's record
    dropped: int = 0  # items past ``max_items`` that were not read (``warning`` names the count)


# ---------------------------------------------------------------------------------------
# Before feedparser: linear-time rewriting of what would make it quadratic (see above)

_UTF8_BOM = codecs.BOM_UTF8
_WIDE = [  # (what the body starts with, its encoding, bytes of byte order mark to drop)
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\x00<\x00?", "utf-16-be", 0),
    (b"<\x00?\x00", "utf-16-le", 0),
    (b"\x4c\x6f\xa7\x94", "cp037", 0),  # "<?xm" in EBCDIC
]
_SPACE = re.compile(rb"[ \t\r\n]*")
_ROOT_START = re.compile(rb"<[A-Za-z_:\x80-\xff]")
_XML_DECL = re.compile(rb"<\?xml[ \t\r\n?]")
_DECL_ENCODING = re.compile(rb"""[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z][A-Za-z0-9._:-]{0,39})["']""")
_SUBSET_END = re.compile(rb"\][ \t\r\n]*>")
_DECL_STOP = re.compile(rb"[\[<>]")
_ROOT_NAME = re.compile(rb"<[^\s/>]+")
_MARKUP = re.compile(rb"<[A-Za-z_:\x80-\xff!?]")

# C0 controls XML forbids as raw bytes (tab, newline and carriage return stay).
_C0_BYTES = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))
# Character references that may name a character XML forbids; ``_fix_charref`` decides.
_SUSPECT_CHARREF = re.compile(  # possessive zeros: no backtracking over a run of them
    rb"&#(?:0+|0*+(?:[1-9]\d?|5529[6-9]|55[3-9]\d\d|5[67]\d{3}|6553[45]|[1-9]\d{6,})"
    rb"|[xX](?:0+|0*+(?:[1-9a-fA-F][0-9a-fA-F]?|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]|[1-9a-fA-F][0-9a-fA-F]{5,})));"
)

# Every code point str.isspace() accepts: raw in UTF-8, as a character reference, by name.
# Each whitespace token matches exactly one way (no alternative overlaps another): with
# overlapping alternatives a run that is not collapsed would backtrack exponentially.
_SPACE_CODEPOINTS = [0x9, 0xA, 0xD, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029]
_SPACE_CODEPOINTS += [0x202F, 0x205F, 0x3000]  # (0xB, 0xC, 0x1C-0x1F are removed as controls first)
_RAW_SPACE = b"|".join(re.escape(chr(c).encode()) for c in _SPACE_CODEPOINTS if c >= 0x80)
_DECIMAL_SPACE = b"|".join(str(c).encode() for c in _SPACE_CODEPOINTS)
_HEX_SPACE = b"|".join(
    sorted({f"{c:x}".encode() for c in _SPACE_CODEPOINTS} | {f"{c:X}".encode() for c in _SPACE_CODEPOINTS})
)
_WS_TOKEN = (
    rb"(?:[ \t\r\n]|" + _RAW_SPACE + rb"|[\x85\xa0](?<![\x80-\xff][\x85\xa0])"  # single-byte NBSP/NEL (cp1252, latin-*)
    rb"|&#0*(?:" + _DECIMAL_SPACE + rb");"
    rb"|&#[xX]0*(?:" + _HEX_SPACE + rb");"
    rb"|&(?:nbsp|ensp|emsp|thinsp);"
    rb"|<!\[CDATA\[(?:[ \t\r\n]|" + _RAW_SPACE + rb")*\]\]>)"
)
# Maximal runs of two or more tokens, each taken once (possessive: no retry inside a run);
# ``_collapse`` counts what splits a run into separate text pieces for feedparser.
_WS_RUN = re.compile(_WS_TOKEN + rb"{2,}+")

# Elements whose text feedparser runs its quadratic e-mail regex over, or whose values it
# de-duplicates by list scan; any namespace prefix (feedparser maps prefixes by namespace).
_NEUTRALISED = re.compile(
    rb"<(/?)([^\s<>/:=\"'!?]+:)?(author|creator|publisher|managingeditor|webmaster|owner"
    rb"|category|subject|keywords|tags)(?=[\s/>])",
    re.IGNORECASE,
)
_ATTRIBUTE = rb"""[ \t\r\n]+([^\s<>/"'=]+)[ \t\r\n]*=[ \t\r\n]*("[^"<]*"|'[^'<]*')"""
_MANY_ATTRIBUTES = re.compile(rb"<[^\s<>/!?\"'=]+(?:" + _ATTRIBUTE + rb"){%d,}" % (MAX_ATTRIBUTES + 1))
_ONE_ATTRIBUTE = re.compile(_ATTRIBUTE)
_NAMESPACE_PREFIX = re.compile(rb"""[ \t\r\n]xmlns:([^\s<>/"'=]+)[ \t\r\n]*=""")


def _fix_charref(match: re.Match[bytes]) -> bytes:
    reference = match.group(0)[2:-1]
    hexadecimal = reference[:1] in (b"x", b"X")
    digits = (reference[1:] if hexadecimal else reference).lstrip(b"0") or b"0"
    if len(digits) > 8:
        return b"&#xFFFD;"
    value = int(digits, 16 if hexadecimal else 10)
    if value < 0x20 and value not in (0x9, 0xA, 0xD):
        return b""
    if 0xD800 <= value <= 0xDFFF or value in (0xFFFE, 0xFFFF) or value > 0x10FFFF:
        return b"&#xFFFD;"
    return match.group(0)


def _collapse(match: re.Match[bytes]) -> bytes:
    """A whitespace run that feedparser would receive as ``WHITESPACE_RUN`` or more pieces
    (one per line, character reference or CDATA section) becomes one newline."""
    run = match.group(0)
    pieces = run.count(b"\n") + run.count(b"\r") + run.count(b"&") + run.count(b"<!")
    return b"\n" if pieces >= WHITESPACE_RUN else run


def _rename(match: re.Match[bytes]) -> bytes:
    closing, prefix, name = match.groups()
    return b"<" + closing + (prefix or b"") + b"nf-" + name


def _trim_attributes(match: re.Match[bytes]) -> bytes:
    text = match.group(0)
    first = _ONE_ATTRIBUTE.search(text)
    name = text[: first.start()] if first else text
    kept, others = [], 0
    for attribute in _ONE_ATTRIBUTE.finditer(text):
        key = attribute.group(1)
        if key == b"xmlns" or key.startswith(b"xmlns:"):
            kept.append(attribute.group(0))
        elif others < MAX_ATTRIBUTES:
            others += 1
            kept.append(attribute.group(0))
    return name + b"".join(kept)


def _with_base(document: bytes, base_url: str) -> bytes:
    name = _ROOT_NAME.match(document)
    end = document.find(b">")
    if not name or end < 0 or b"xml:base" in document[:end]:
        return document
    value = base_url.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    attribute = f' xml:base="{value}"'.encode("utf-8", "replace")
    return document[: name.end()] + attribute + document[name.end() :]


def _ascii_compatible(body: bytes) -> tuple[bytes, bool]:
    """``body`` in an ASCII-compatible encoding, and whether it is now UTF-8 for certain."""
    if body.startswith(_UTF8_BOM):
        return body[len(_UTF8_BOM) :], True
    for mark, codec, bom in _WIDE:
        if body.startswith(mark):
            return body[bom:].decode(codec, "replace").encode("utf-8"), True
    return body, False


def _split_prolog(data: bytes) -> tuple[bytes | None, bytes, int]:
    """(XML declaration, prolog, offset of the root element or -1), in one linear pass."""
    pos, size, declaration = 0, len(data), None
    while pos < size:
        pos = _SPACE.match(data, pos).end()
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
            if end < 0:
                break
            if declaration is None and _XML_DECL.match(data, pos) and end + 2 - pos <= MAX_DECLARATION:
                declaration = data[pos : end + 2]
            pos = end + 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                break
            pos = end + 3
        elif data.startswith(b"<!", pos):  # DOCTYPE, possibly with an internal subset
            found = _DECL_STOP.search(data, pos + 2)
            if not found:
                break
            if found.group(0) == b"<":  # unterminated: junk up to the next markup
                pos = found.start()
            elif found.group(0) == b">":
                pos = found.end()
            else:
                found = _SUBSET_END.search(data, found.end())
                if not found:
                    break
                pos = found.end()
        elif _ROOT_START.match(data, pos):
            return declaration, data[:pos], pos
        else:  # junk before the root: a PHP warning, a stray character
            following = _MARKUP.search(data, pos + 1)
            if not following:
                break
            pos = following.start()
    return declaration, data, -1


def _declared_encoding(declaration: bytes | None) -> str | None:
    found = _DECL_ENCODING.search(declaration) if declaration else None
    return found.group(1).decode("ascii").lower() if found else None


def _is_wide(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        return False


def _mostly_utf8(document: bytes) -> bytes | None:
    """``document`` as valid UTF-8 when it is UTF-8 with a few invalid bytes (each becomes
    U+FFFD); None when it is valid already or reads as another encoding (cp1252 ...)."""
    try:
        document.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    text = document.decode("utf-8", "replace")
    invalid = text.count("\ufffd") - document.count("\ufffd".encode())
    valid = sum(1 for ch in text if ord(ch) > 0x7F and ch != "\ufffd")
    return text.encode("utf-8") if valid >= invalid else None


def _transcode(document: bytes, encoding: str) -> bytes | None:
    """``document`` re-encoded as UTF-8 when ``encoding`` is an ASCII-compatible text
    encoding that decodes it (what feedparser would use first); else None."""
    if encoding == "gb2312":
        encoding = "gb18030"  # as feedparser does: the superset
    try:
        if codecs.lookup(encoding).name == "utf-8" or "<?xml".encode(encoding) != b"<?xml":
            return None
        return document.decode(encoding).encode("utf-8")
    except (LookupError, ValueError):  # unknown, not a text encoding, or not this encoding
        return None


def prepare(body: bytes, base_url: str | None = None) -> bytes:
    """The bytes handed to feedparser: ``body`` without the triggers of its quadratic paths.

    When the feed uses ``xml:base`` and its root element has none, the root is given
    ``xml:base="base_url"``: feedparser, parsing without a document URL, would otherwise
    let one element's ``xml:base`` go on applying to the elements after it.

    Linear in ``len(body)``: each step is one forward pass, a scan or a regular expression
    whose backtracking cannot go past the token (tag, reference, run) it is on.
    ``ItemError('feed_malformed')`` for what is refused outright: entity declarations, no
    root element, too many namespace prefixes.
    """
    data, utf8 = _ascii_compatible(bytes(body))
    declaration, prolog, root = _split_prolog(data)
    if _ENTITY_DECL.search(prolog) or _ENTITY_DECL.search(data, 0, 65536):
        raise ItemError("feed_malformed", "feed declares XML entities; refused before parsing")
    if root < 0:
        raise ItemError("feed_malformed", "not an RSS/Atom feed: no XML element in the body")
    document = data[root:]
    encoding = "utf-8" if utf8 else _declared_encoding(declaration)
    if encoding and _is_wide(encoding) and not utf8:
        encoding = None  # an ASCII declaration cannot be UTF-16/32 (what .NET writes): the bytes say UTF-8
    if not utf8 and encoding:
        transcoded = _transcode(document, encoding)
        if transcoded is not None:
            document, encoding = transcoded, "utf-8"
    if not utf8 and encoding in (None, "utf-8", "utf8"):
        mended = _mostly_utf8(document)
        if mended is not None:  # a stray invalid byte must not make feedparser read all of it as latin-2
            document, encoding = mended, "utf-8"
    prefixes = set(_NAMESPACE_PREFIX.findall(document))
    if len(prefixes) > MAX_NAMESPACE_PREFIXES:
        raise ItemError(
            "feed_malformed", f"feed declares {len(prefixes)} XML namespace prefixes (at most {MAX_NAMESPACE_PREFIXES})"
        )
    document = document.translate(None, _C0_BYTES)
    document = _SUSPECT_CHARREF.sub(_fix_charref, document)
    document = _WS_RUN.sub(_collapse, document)
    document = _NEUTRALISED.sub(_rename, document)
    document = _MANY_ATTRIBUTES.sub(_trim_attributes, document)
    if base_url and b"xml:base" in document:
        document = _with_base(document, base_url)
    if declaration is None and not utf8:
        return document
    label = f' encoding="{encoding}"' if encoding else ""
    return f'<?xml version="1.0"{label}?>\n'.encode("ascii") + document


# ---------------------------------------------------------------------------------------
# After feedparser: clean fields, resolve links, give every item a key

_SPACES = re.compile(r"\s+")


def _text(value: object, limit: int) -> str | None:
    """Clean text: no controls but tab and newline, no lone surrogates, at most ``limit``."""
    if not isinstance(value, str) or not value:
        return None
    value = clean_text(value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return value[:limit] or None


def _title(value: object) -> str | None:
    title = _text(value, MAX_TITLE * 4)
    return _SPACES.sub(" ", title)[:MAX_TITLE] if title else None


def _link(raw: str, base: str) -> tuple[str | None, str | None]:
    """(canonical absolute link, None) or (None, why not)."""
    link, _given, error = _links(raw, base)
    return link, error


def _links(raw: str, base: str) -> tuple[str | None, str | None, str | None]:
    """(canonical absolute link, the absolute link as given, None) or (None, None, why not)."""
    try:
        given = absolute(raw, base)
        return canonical_url(given), given, None
    except BadURL as exc:
        return None, None, clean_text(str(exc), MAX_WARNING)


def _date(entry: dict) -> datetime | None:
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(field)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
            if when > datetime.now(UTC) + FUTURE_TOLERANCE:
                return None  # a date in the future is a publisher's mistake, not a fact
            return when
    return None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def item_key(guid: str | None, link: str | None, title: str | None) -> str:
    """An item's key from its guid, else link, else title (see ``parse_feed`` for the rest)."""
    return _digest(guid or link or title or "")


def _content(entry: dict, index: int) -> str:
    """What an item holds besides guid, link and title: its text, dates and enclosures."""
    parts = [entry.get("summary")]
    parts += [c.get("value") for c in entry.get("content") or [] if isinstance(c, dict)]
    parts += [dict.get(entry, f) for f in ("published", "updated", "created")]  # no feedparser aliasing
    parts += [link.get("href") for link in entry.get("links") or [] if isinstance(link, dict)]
    text = "\x1e".join(clean_text(p) for p in parts if isinstance(p, str) and p.strip())
    return f"content\x1e{text}" if text else f"position\x1e{index}"


@dataclass
class _Entry:
    guid: str | None
    link: str | None
    link_error: str | None
    title: str | None
    published_at: datetime | None
    primary: str  # guid, else link, else title, else content
    secondary: str  # what tells apart two items with the same primary
    fetch_url: str | None = None


def parse_feed(body: bytes, feed_url: str, max_items: int = 10_000) -> ParsedFeed:
    """Parse feed bytes; ``ItemError('feed_malformed')`` when there is no feed in them.

    Never raises anything else. Only the first ``max_items`` items are read; the number of
    the others is ``dropped`` and named in ``warning``.

    Item keys (``FeedItem.key``), stable from one poll to the next:

    * the guid; else the canonical link (the raw link when unusable); else the title; else
      a digest of what the item holds (summary, content, dates, enclosures) - or, for an
      item with nothing at all, its position in the feed.
    * When items of one document share that basis but differ - a guid repeated with another
      link, two linkless items with one title and different text - every one of them is
      keyed by basis and link (or content), so each is read and none hides another, in
      whatever order the feed lists them. Items that agree (same guid and link, or the same
      link without a guid) are one item listed twice and read once.
    """
    if not isinstance(body, bytes | bytearray):
        raise TypeError("parse_feed takes bytes")
    if not body.strip():
        raise ItemError("feed_malformed", "empty feed body")
    prepared = prepare(body, feed_url)
    try:
        parsed = feedparser.parse(io.BytesIO(prepared), sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser on hostile bytes: the feed is bad, the run goes on
        message = clean_text(f"feed parser failed: {type(exc).__name__}: {exc}", MAX_WARNING)
        raise ItemError("feed_malformed", message) from exc
    if not parsed.entries and (parsed.bozo or not _FEED_ROOT.search(prepared, 0, 65536)):
        reason = parsed.get("bozo_exception")
        detail = f": {reason}" if reason else ""
        raise ItemError("feed_malformed", clean_text(f"not an RSS/Atom feed{detail}", MAX_WARNING))
    entries = parsed.entries[:max_items]
    dropped = max(0, len(parsed.entries) - max_items)
    try:
        itself = canonical_url(feed_url)
    except BadURL:
        itself = None
    read = [_read(entry, index, feed_url, itself) for index, entry in enumerate(entries)]
    variants: dict[str, set[str]] = {}
    for e in read:
        variants.setdefault(e.primary, set()).add(e.secondary)
    items: list[FeedItem] = []
    seen: set[str] = set()
    for e in read:
        key = _digest(e.primary) if len(variants[e.primary]) == 1 else _digest(e.primary, e.secondary)
        if key in seen:
            continue  # the same item listed twice in one document
        seen.add(key)
        items.append(FeedItem(key, e.guid, e.link, e.link_error, e.title, e.published_at, e.fetch_url))
    problems = []
    if dropped:
        noun = "item" if dropped == 1 else "items"
        problems.append(f"{dropped} {noun} past the first {max_items} not read (limit max_items_per_feed)")
    if parsed.bozo:
        problems.append(f"malformed feed, {len(items)} items recovered: {parsed.get('bozo_exception')}")
    site_url = None
    if isinstance(parsed.feed.get("link"), str):
        site_url, _ = _link(parsed.feed["link"], feed_url)
    return ParsedFeed(
        title=_title(parsed.feed.get("title")),
        site_url=site_url,
        items=items,
        warning=clean_text("; ".join(problems), MAX_WARNING) or None,
        dropped=dropped,
    )


def _read(entry: dict, index: int, feed_url: str, itself: str | None) -> _Entry:
    full_guid = _text(entry.get("id"), 1 << 30)
    guid = full_guid[:MAX_GUID] if full_guid else None
    raw_link = entry.get("link") if isinstance(entry.get("link"), str) else ""
    link = link_error = given = None
    if raw_link.strip():
        link, given, link_error = _links(raw_link, feed_url)
    elif full_guid and full_guid.startswith(("http://", "https://")):
        link, given, link_error = _links(full_guid, feed_url)
    else:
        link_error = "feed item has no link"
    if link is not None and link == itself:  # "", "#top", or "http://" under an xml:base: not an article
        link, link_error = None, clean_text(f"feed item link is the feed's own URL (raw link {raw_link[:200]!r})")
    title = _title(entry.get("title"))
    shown_link = link or _text(raw_link, 1 << 30) or ""
    if full_guid:
        primary, secondary = full_guid, shown_link
    elif shown_link:
        primary = secondary = shown_link
    elif title:
        primary, secondary = title, _content(entry, index)
    else:
        primary = _content(entry, index)
        secondary = primary
    fetch_url = given if link is not None and given != link else None
    return _Entry(guid, link, link_error, title, _date(entry), primary, secondary, fetch_url)
