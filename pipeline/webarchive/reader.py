"""WARC and ARC records from a local file or a URL, streamed: never the whole file in memory.

WARC files (gzipped or not) are read with FastWARC, the fastest maintained WARC reader
(Apache-2.0). FastWARC reads no ARC, the Internet Archive's format before WARC; an ARC record
is a one-line header (``URL IP date content-type [...] length``) and that many bytes, read
here. A URL is read over HTTP through the run's ``Fetcher`` (its address guard, its pinned
address and politeness), from a byte offset with ``Range`` when a read resumes.

A gzipped WARC holds one gzip member per record. When a member is corrupt, FastWARC's
stream stops with an error; the reader then walks the members one at a time from the last
record it handed out (each member decompressed on its own with ``zlib`` and parsed with
FastWARC), reports the corrupt member as ``Unreadable`` with its byte offset, finds the
next gzip member start after it, and streams on from there: the rest of the file is read.

Every record knows its byte offset in the (compressed) file: a read can resume there.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from fastwarc import ArchiveIterator, WarcRecordType

from ..fetch import TRANSIENT_STATUS, Fetcher, Origin
from ..reasons import ItemError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_SIZE = 1 << 16
MEMBER_MAX = 64 << 20  # decompressed: a gzip member larger than this is not one record
CAREFUL_GOOD_MEMBERS = 4  # members read one by one after an error before streaming again
FORMATS = ("warc.gz", "warc", "arc.gz", "arc")

_TYPES = {
    int(WarcRecordType.warcinfo): "warcinfo",
    int(WarcRecordType.response): "response",
    int(WarcRecordType.resource): "resource",
    int(WarcRecordType.request): "request",
    int(WarcRecordType.metadata): "metadata",
    int(WarcRecordType.revisit): "revisit",
    int(WarcRecordType.conversion): "conversion",
    int(WarcRecordType.continuation): "continuation",
}


class ArchiveError(OSError):
    """The file cannot be opened or read on (``transient``: worth another try later)."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass
class Record:
    """One archive record: its headers, and its HTTP payload when it was wanted."""

    offset: int  # where its gzip member (or, uncompressed, the record) starts in the file
    type: str  # response, request, metadata, revisit, warcinfo, resource ...; ARC records are responses
    uri: str | None = None
    date: datetime | None = None
    record_id: str | None = None
    truncated: str | None = None  # WARC-Truncated: length, time, disconnect, unspecified
    status: int | None = None
    content_type: str = ""  # the HTTP Content-Type, lower case, without parameters
    language: str | None = None  # the HTTP Content-Language
    payload: bytes | None = None  # read only for records the caller wanted, up to the cap
    too_large: bool = False  # the payload exceeded the cap (the rest was skipped)
    skip: str | None = None  # why the caller's ``wanted`` ruled it out on its headers


@dataclass
class Unreadable:
    """Bytes of the file that hold no readable record (a corrupt gzip member, garbage)."""

    offset: int
    message: str


Wanted = Callable[[Record], bool]


@dataclass(frozen=True)
class _Want:
    accepts: Wanted
    cap: int

    def __call__(self, record: Record) -> bool:
        return self.accepts(record)


# --- sources: where the bytes come from ---------------------------------------------------


class Stream(Protocol):
    def read(self, size: int = -1) -> bytes: ...

    def tell(self) -> int: ...

    def close(self) -> None: ...


class Source(Protocol):
    location: str

    def open(self, offset: int) -> Stream: ...


@dataclass
class LocalSource:
    path: Path

    @property
    def location(self) -> str:
        return self.path.resolve().as_uri()

    def open(self, offset: int) -> Stream:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise ArchiveError(f"cannot open {self.path}: {exc.strerror}") from exc
        f.seek(offset)
        return f


class _HttpStream:
    """The body of a streamed HTTP response, read in chunks; ``tell`` is the file offset."""

    def __init__(self, response: httpx.Response, offset: int, url: str):
        self._response, self._url = response, url
        self._chunks = response.iter_raw()
        self._buffer = bytearray()
        self._pos = offset
        self.failed: ArchiveError | None = None  # kept: FastWARC turns it into a plain OSError

    def read(self, size: int = -1) -> bytes:
        """What has arrived, up to ``size`` bytes (at least one unless at the end), as a socket
        gives it: the records in the bytes received are parsed before the next ones arrive."""
        while not self._buffer or size < 0:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            except httpx.HTTPError as exc:
                self.failed = ArchiveError(
                    f"reading {self._url[:200]} failed: {type(exc).__name__}: {exc}", transient=True
                )
                raise self.failed from exc
            self._buffer += chunk
        n = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        self._pos += n
        return out

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._response.close()


@dataclass
class HttpSource:
    """A WARC file at a URL, read through ``fetcher``; ``trusted`` is the operator's origin for it."""

    fetcher: Fetcher
    url: str
    trusted: Origin | str | None = None

    @property
    def location(self) -> str:
        return self.url

    def open(self, offset: int) -> Stream:
        limits = self.fetcher.limits
        current = self.url
        for _hop in range(limits.max_redirects + 1):
            try:
                host, _port, addresses = self.fetcher.guard.resolve(current, self.trusted)
            except ItemError as exc:
                raise ArchiveError(f"{exc.reason}: {exc.message}", transient=exc.transient) from exc
            parts = urlsplit(current)
            address = addresses[0]
            pinned_host = f"[{address}]" if ":" in address else address
            netloc = pinned_host + (f":{parts.port}" if parts.port else "")
            pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept-Encoding": "identity", "Accept": "*/*"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            # per read, not total: a 1 GB file takes minutes, a stalled connection does not
            timeout = httpx.Timeout(limits.page_timeout, connect=limits.connect_timeout)
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            request = self.fetcher.client.build_request(
                "GET", pinned, headers=headers, timeout=timeout, extensions=extensions
            )
            self.fetcher.limiter.acquire(host)
            try:
                response = self.fetcher.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise ArchiveError(
                    f"cannot fetch {current[:200]}: {type(exc).__name__}: {exc}", transient=True
                ) from exc
            finally:
                self.fetcher.limiter.release(host)
            if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("location"):
                response.close()
                current = urljoin(current, response.headers["location"])
                continue
            if response.status_code >= 400:
                response.close()
                raise ArchiveError(
                    f"HTTP {response.status_code} from {current[:200]}",
                    transient=response.status_code in TRANSIENT_STATUS,
                )
            stream = _HttpStream(response, 0 if response.status_code == 200 else offset, current)
            if response.status_code == 200 and offset:  # the server ignored Range: skip to the offset
                while stream.tell() < offset and stream.read(min(READ_SIZE, offset - stream.tell())):
                    pass
            return stream
        raise ArchiveError(f"more than {limits.max_redirects} redirects from {self.url[:200]}")


def source_for(location: str, fetcher: Fetcher) -> Source:
    """A URL (http, https) or a local path (or ``file:`` URL)."""
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        return HttpSource(fetcher, location, trusted=location)  # the operator named it: its origin is trusted
    if scheme == "file":
        from urllib.request import url2pathname

        return LocalSource(Path(url2pathname(urlsplit(location).path)))
    if scheme and len(scheme) > 1:
        raise ArchiveError(f"not a file path or http(s) URL: {location[:200]!r}")
    return LocalSource(Path(location).expanduser())


# --- formats ---------------------------------------------------------------------------------


def detect_format(source: Source) -> str:
    """``warc.gz``, ``warc``, ``arc.gz`` or ``arc``, from the file's first bytes."""
    stream = source.open(0)
    try:
        head = b""
        while len(head) < 4096 and (chunk := stream.read(READ_SIZE)):
            head += chunk
    finally:
        stream.close()
    gz = head.startswith(b"\x1f\x8b")
    inner = head
    if gz:
        try:
            inner = zlib.decompressobj(wbits=31).decompress(head, 64)
        except zlib.error as exc:
            raise ArchiveError(f"{source.location[:200]}: first gzip member unreadable: {exc}") from exc
    if inner.startswith(b"WARC/"):
        kind = "warc"
    elif inner.startswith(b"filedesc://"):
        kind = "arc"
    else:
        raise ArchiveError(f"{source.location[:200]} is not a WARC or ARC file")
    return kind + (".gz" if gz else "")


def records(
    source: Source, fmt: str, start: int = 0, wanted: Wanted | None = None, cap: int = 10 << 20
) -> Iterator[Record | Unreadable]:
    """Every record from byte ``start`` on; payloads (up to ``cap`` bytes) read only for records
    ``wanted`` accepts, so a record ruled out by its headers costs no copy of its page."""
    want = _Want(wanted or (lambda _r: True), cap)
    if fmt == "warc.gz":
        yield from _warc_gz(source, start, want)
    elif fmt == "warc":
        yield from _warc_plain(source, start, want)
    elif fmt == "arc.gz":
        yield from _careful(source, start, want, skip_first=False, arc=True, until_clean=False)
    elif fmt == "arc":
        yield from _arc_plain(source, start, want)
    else:
        raise ValueError(f"unknown archive format {fmt!r}")


# --- WARC ------------------------------------------------------------------------------------


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _read_capped(read: Callable[[int], bytes], cap: int) -> tuple[bytes, bool]:
    parts, size = [], 0
    while size <= cap:
        chunk = read(min(READ_SIZE, cap + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    data = b"".join(parts)
    return (b"", True) if len(data) > cap else (data, False)


def _from_fastwarc(rec, offset: int, want: _Want) -> Record | Unreadable:  # noqa: ANN001 - a WarcRecord
    headers = rec.headers
    kind = _TYPES.get(int(rec.record_type))
    if headers.get("WARC-Type") is None or kind is None:
        return Unreadable(offset, "a record without WARC headers (cut short or corrupt)")
    record = Record(
        offset=offset,
        type=kind,
        uri=(headers.get("WARC-Target-URI") or "").strip("<> ") or None,
        date=_date(headers.get("WARC-Date")),
        record_id=headers.get("WARC-Record-ID"),
        truncated=headers.get("WARC-Truncated"),
    )
    if rec.is_http:
        http = rec.http_headers
        record.status = http.status_code
        record.content_type = (http.get("Content-Type") or "").split(";")[0].strip().lower()
        record.language = http.get("Content-Language")
    if kind in ("response", "resource") and want(record):
        record.payload, record.too_large = _read_capped(rec.reader.read, want.cap)
    return record


def _iterator(stream) -> ArchiveIterator:  # noqa: ANN001
    return ArchiveIterator(stream, parse_http=True, auto_decode="all")


def _warc_gz(source: Source, start: int, want: _Want) -> Iterator[Record | Unreadable]:
    pos = start
    while True:
        handled: int | None = None
        stream = source.open(pos)
        try:
            # One record behind: a record is handed out once the next one has been read, which
            # proves its gzip member complete; the last one's member is checked on its own.
            previous: Record | Unreadable | None = None
            for rec in _iterator(stream):
                record = _from_fastwarc(rec, rec.stream_pos, want)
                if previous is not None:
                    yield previous
                    handled = previous.offset
                previous = record
            if previous is not None:
                yield previous if _member_complete(source, previous.offset) else _cut_short(previous)
            return
        except ArchiveError:
            raise
        except Exception as exc:  # noqa: BLE001 - FastWARC raises OSError or ValueError on corrupt input
            if getattr(stream, "failed", None) is not None:
                raise stream.failed from exc  # the connection broke: not the file's fault
            log.info("%s: %s after offset %s; reading member by member", source.location, exc, handled or pos)
        finally:
            stream.close()
        after = yield from _careful(
            source, handled if handled is not None else pos, want, skip_first=handled is not None
        )
        if after is None:
            return
        pos = after


def _member_complete(source: Source, offset: int) -> bool:
    members = _members(source, offset)
    try:
        first = next(members, None)
    finally:
        members.close()
    return first is not None and first[3] is None


def _cut_short(record: Record | Unreadable) -> Unreadable:
    if isinstance(record, Unreadable):
        return record
    return Unreadable(record.offset, f"a record cut short at the end of the file ({record.uri or 'no target URI'})")


def _warc_plain(source: Source, start: int, want: _Want) -> Iterator[Record | Unreadable]:
    """An uncompressed WARC; past unreadable bytes, reading goes on at the next ``WARC/1.``."""
    pos = start
    while True:
        handled: int | None = None
        stream = source.open(pos)
        try:
            for rec in _iterator(stream):
                record = _from_fastwarc(rec, rec.stream_pos, want)
                yield record
                handled = record.offset
            return
        except ArchiveError:
            raise
        except Exception as exc:  # noqa: BLE001
            if getattr(stream, "failed", None) is not None:
                raise stream.failed from exc
            bad = (handled + 1) if handled is not None else pos
            yield Unreadable(bad, f"unreadable WARC data after offset {bad}: {exc}"[:500])
        finally:
            stream.close()
        found = _find(source, bad + 1, b"WARC/1.")
        if found is None:
            return
        pos = found


def _find(source: Source, start: int, marker: bytes) -> int | None:
    """The offset of the next ``marker`` at or after ``start``, scanning forward."""
    stream = source.open(start)
    try:
        base, tail = start, b""
        while True:
            chunk = stream.read(READ_SIZE)
            if not chunk:
                return None
            window = tail + chunk
            at = window.find(marker)
            if at >= 0:
                return base - len(tail) + at
            tail = window[-(len(marker) - 1) :]
            base += len(chunk)
    finally:
        stream.close()


def _members(source: Source, start: int) -> Iterator[tuple[int, int, bytes | None, str | None]]:
    """(offset, end, data, error) for each gzip member from ``start``; data None on error.

    After an error the walk stops: the caller decides where to go on.
    """
    stream = source.open(start)
    try:
        pos, pending = start, b""
        while True:
            if not pending:
                pending = stream.read(READ_SIZE)
                if not pending:
                    return
            if not pending.startswith(GZIP_MAGIC[:2]):
                yield pos, pos, None, "bytes that are not a gzip member"
                return
            inflater = zlib.decompressobj(wbits=31)
            out = bytearray()
            consumed = 0
            try:
                data = pending
                while True:
                    out += inflater.decompress(data, MEMBER_MAX + 1 - len(out))
                    while inflater.unconsumed_tail and len(out) <= MEMBER_MAX:
                        out += inflater.decompress(inflater.unconsumed_tail, MEMBER_MAX + 1 - len(out))
                    if len(out) > MEMBER_MAX:
                        yield (
                            pos,
                            pos,
                            None,
                            f"a gzip member larger than {MEMBER_MAX >> 20} MB: not one record per member",
                        )
                        return
                    consumed += len(data) - len(inflater.unused_data)
                    if inflater.eof:
                        break
                    data = stream.read(READ_SIZE)
                    if not data:
                        yield pos, pos, None, "a gzip member cut short at the end of the file"
                        return
            except zlib.error as exc:
                yield pos, pos, None, f"corrupt gzip member: {exc}"
                return
            end = pos + consumed
            pending = inflater.unused_data
            yield pos, end, bytes(out), None
            pos = end
    finally:
        stream.close()


def _parse_member(offset: int, data: bytes, want: _Want, arc: bool) -> list[Record | Unreadable]:
    if arc:
        return list(_arc_records(io.BytesIO(data), offset, want, member=True))
    out: list[Record | Unreadable] = []
    try:
        for rec in _iterator(io.BytesIO(data)):
            out.append(_from_fastwarc(rec, offset, want))
    except Exception as exc:  # noqa: BLE001 - FastWARC on a bad record
        out.append(Unreadable(offset, f"unreadable WARC record: {exc}"[:500]))
    return out or [Unreadable(offset, "a gzip member with no WARC record")]


def _careful(
    source: Source, start: int, want: _Want, *, skip_first: bool, arc: bool = False, until_clean: bool = True
) -> Iterator[Record | Unreadable]:
    """Members one at a time from ``start``; returns where streaming may go on (None: at the end).

    ``skip_first``: the member at ``start`` was handed out already. A corrupt member is reported
    once, with its offset; candidates for the next member that fail too belong to the same
    corrupt stretch. ``until_clean``: return to streaming once past the trouble.
    """
    pos, skip, in_bad, good = start, skip_first, False, 0
    while True:
        members = _members(source, pos)
        try:
            for offset, end, data, error in members:
                if error is not None:
                    if not in_bad and not (skip and offset == start):
                        yield Unreadable(offset, error)
                    in_bad = True
                    break
                first = skip and offset == start
                skip = False
                if not first:
                    assert data is not None
                    yield from _parse_member(offset, data, want, arc)
                in_bad = False
                good += 1
                pos = end
                if until_clean and good >= CAREFUL_GOOD_MEMBERS:
                    return end
            else:
                return None  # the end of the file
        finally:
            members.close()
        found = _find(source, offset + 1, GZIP_MAGIC)
        if found is None:
            return None
        pos = found


# --- ARC -------------------------------------------------------------------------------------


def _arc_date(value: bytes) -> datetime | None:
    try:
        return datetime.strptime(value.decode("ascii")[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except (UnicodeDecodeError, ValueError):
        return None


def _http_head(block: bytes) -> tuple[int | None, dict[str, str], int]:
    """(status, headers, where the body starts) of an HTTP response block."""
    end = block.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = block.find(b"\n\n"), 2
    if end < 0 or not block.startswith(b"HTTP/"):
        return None, {}, 0
    lines = block[:end].decode("latin-1").splitlines()
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        status = None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, end + sep


def _arc_records(stream, base: int, want: _Want, *, member: bool) -> Iterator[Record | Unreadable]:  # noqa: ANN001
    """ARC v1/v2 records: ``URL IP date content-type [v2 fields] length`` then ``length`` bytes."""
    pos = base
    while True:
        start = pos if not member else base
        line = stream.readline(8192)
        if not line:
            return
        pos += len(line)
        if not line.strip():
            continue  # the newline after each record
        fields = line.split()
        try:
            length = int(fields[-1])
            uri = fields[0].decode("utf-8", "replace")
        except (IndexError, ValueError):
            yield Unreadable(start, f"not an ARC record header: {line[:100]!r}")
            return
        if length < 0 or len(fields) < 5:
            yield Unreadable(start, f"not an ARC record header: {line[:100]!r}")
            return
        if uri.startswith("filedesc://"):
            skipped = stream.read(length)
            pos += len(skipped)
            yield Record(offset=start, type="warcinfo", uri=uri, date=_arc_date(fields[2]))
            continue
        record = Record(offset=start, type="response", uri=uri, date=_arc_date(fields[2]))
        head = stream.read(min(length, 65536))
        status, headers, body_at = _http_head(head)
        record.status = status
        record.content_type = (headers.get("content-type") or fields[3].decode("latin-1")).split(";")[0].strip().lower()
        record.language = headers.get("content-language")
        rest = length - len(head)
        if len(head) < min(length, 65536):
            yield Unreadable(start, "an ARC record cut short")
            return
        if want(record) and status is not None:
            body = head[body_at:]
            if len(body) + rest > want.cap:
                record.too_large = True
                _skip(stream, rest)
            else:
                body += stream.read(rest)
                record.payload = body
        else:
            _skip(stream, rest)
        pos += length
        yield record


def _skip(stream, n: int) -> None:  # noqa: ANN001
    while n > 0:
        chunk = stream.read(min(READ_SIZE, n))
        if not chunk:
            return
        n -= len(chunk)


class _LineReader:
    """``readline`` and ``read`` over a ``Stream`` (ARC records start with a text line)."""

    def __init__(self, stream: Stream):
        self.stream, self.buffer = stream, b""

    def _fill(self) -> bool:
        chunk = self.stream.read(READ_SIZE)
        self.buffer += chunk
        return bool(chunk)

    def readline(self, limit: int) -> bytes:
        while b"\n" not in self.buffer[:limit] and len(self.buffer) < limit and self._fill():
            pass
        at = self.buffer.find(b"\n", 0, limit)
        n = at + 1 if at >= 0 else min(limit, len(self.buffer))
        line, self.buffer = self.buffer[:n], self.buffer[n:]
        return line

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n and self._fill():
            pass
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


def _arc_plain(source: Source, start: int, want: _Want) -> Iterator[Record | Unreadable]:
    stream = source.open(start)
    try:
        yield from _arc_records(_LineReader(stream), start, want, member=False)
    finally:
        stream.close()
