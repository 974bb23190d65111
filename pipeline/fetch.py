"""HTTP fetching with hard bounds and an address guard.

Every request: a total deadline (not per read), a streamed body with a size cap and a
decompression-ratio cap, redirects followed by hand so each hop's address is checked, the
resolved IP checked and pinned for the connection, no proxy or credentials from the
environment, and per-host politeness (a minimum delay and a concurrency cap).

The address guard trusts a private address only for an exact *origin* (scheme, host,
port) a fetch is told to trust: an operator's feed on 127.0.0.1:8001 makes that origin
fetchable for the feed and its own items, and nothing else on 127.0.0.1 or elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from protego import Protego

from .clean import clean_text
from .config import USER_AGENT, Limits
from .reasons import ItemError
from .urls import ALLOWED_SCHEMES

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
ROBOTS_TOKEN = "newsflow"
ROBOTS_TTL = 3600.0
ROBOTS_MAX_BYTES = 512 * 1024
RETRIES = 2  # extra attempts for a transient failure, within the request's deadline
RETRY_AFTER_WAIT_MAX = 30.0  # wait for Retry-After in-run up to this; longer means "later"


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    not_modified: bool = False
    moved_to: str | None = None  # final URL when every redirect on the way was permanent

    # Header values come from outside: what newsflow keeps of them is cleaned here, once.
    @property
    def content_type(self) -> str:
        return clean_text(self.headers.get("content-type", ""), 200).split(";")[0].strip().lower()

    # A validator goes back in a request header, which must be ASCII: any other is not kept.
    @property
    def etag(self) -> str | None:
        return _validator(self.headers.get("etag"), 1000)

    @property
    def last_modified(self) -> str | None:
        return _validator(self.headers.get("last-modified"), 200)


class Origin(NamedTuple):
    """A URL's origin: scheme, lower-case host (IPv6 without brackets) and port, default filled in."""

    scheme: str
    host: str
    port: int


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL; ``None`` for anything else (no host, a bad port, userinfo)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ALLOWED_SCHEMES or not host or "@" in parts.netloc:
        return None
    return Origin(scheme, host, port or (443 if scheme == "https" else 80))


def _trusted(origin: Origin | str | None, *, strict: bool = False) -> Origin | None:
    """``origin`` as an ``Origin``: a URL stands for its origin; one without any trusts nothing."""
    if origin is None or isinstance(origin, Origin):
        return origin
    if isinstance(origin, tuple):
        return Origin(*origin)
    found = origin_of(origin)
    if found is None and strict:
        raise ValueError(f"not an http(s) URL to trust the origin of: {origin[:200]!r}")
    return found


@dataclass
class AddressGuard:
    """Refuses URLs whose host resolves to a non-public address (SSRF).

    A private address is fetched only at a trusted origin, matched exactly (scheme, host,
    port) against each hop of a request: the ``trusted`` origin a fetch passes to
    ``resolve`` (a feed's own origin, for the feed and its items), or one of
    ``trusted_origins``, trusted for every fetch through this guard (only right for a
    fetcher that serves a single feed, as a backfill's does). Nothing is trusted by host
    name alone: another port, another scheme or a redirect elsewhere is checked as usual.
    """

    trusted_origins: set[Origin] = field(default_factory=set)

    def allow(self, urls: Iterable[str | Origin]) -> None:
        """Trust the origins of ``urls`` (feed URLs, not bare hosts) for every fetch."""
        for url in urls:
            origin = _trusted(url, strict=True)  # a bare host name is refused, not silently ignored
            if origin is not None:
                self.trusted_origins.add(origin)

    def resolve(self, url: str, trusted: Origin | str | None = None) -> tuple[str, int, list[str]]:
        """(host, port, addresses) for ``url``, or ``ItemError`` when it must not be fetched."""
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ItemError("bad_url", f"malformed URL {url[:200]!r}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise ItemError("bad_url", f"unsupported URL scheme {scheme or '(none)'!r}")
        if "@" in parts.netloc:
            # http://127.0.0.1:8001@127.0.0.2/ is a request to 127.0.0.2; no page needs credentials
            raise ItemError("bad_url", f"URL with user information: {url[:200]}")
        host = (parts.hostname or "").lower()
        if not host:
            raise ItemError("bad_url", f"URL without a host: {url[:200]}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise ItemError("bad_url", f"bad port in {url[:200]}") from exc
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ItemError("connection", f"cannot resolve {host}: {exc}", transient=True) from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        origin = Origin(scheme, host, port)
        if origin != _trusted(trusted) and origin not in self.trusted_origins:
            for address in addresses:
                if not is_public(address):
                    raise ItemError(
                        "blocked_address",
                        f"{host} resolves to non-public address {address}",
                    )
        return host, port, addresses


# Not globally reachable (IANA special-purpose registries), whatever this Python's ipaddress
# knows: its tables differ between versions (3.11 calls 192.0.0.8 and fec0::1 global).
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",  # local-use NAT64: a translator inside the network
        "100::/64",
        "2001::/23",  # IETF protocol assignments (Teredo's 2001::/32 included)
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",  # site-local (deprecated, still routed inside sites)
        "ff00::/8",
    )
)
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, ::ffff:0:a.b.c.d
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address stands for, when it is a translated form.

    IPv4-mapped and -translated, IPv4-compatible, NAT64 (64:ff9b::/96), 6to4 (2002::/16) and
    Teredo (2001::/32: its server and its client, de-obfuscated); ``None`` for others.
    """
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_TRANSLATED or ip in _NAT64 or ip in _V4_COMPATIBLE:
        return [low32]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return None


def is_public(address: str) -> bool:
    """True for a globally reachable unicast address; a translated IPv6 form counts as its IPv4."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        carried = embedded_ipv4(ip)
        if carried is not None:
            return all(is_public(str(v4)) for v4 in carried)
    if any(ip in network for network in _NOT_GLOBAL if network.version == ip.version):
        return False
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
        and not (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


class HostLimiter:
    """At most ``concurrency`` requests to one host at once, ``min_delay`` s between starts."""

    def __init__(self, min_delay: float, concurrency: int):
        self.min_delay = min_delay
        self.concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    def acquire(self, host: str, deadline: float | None = None) -> None:
        """Wait for a turn at ``host``; a turn that cannot come before ``deadline`` fails at once.

        A host that asked for an hour's pause (Retry-After) costs its items a transient
        failure each, retried by a later run: it never holds a fetch thread for the hour.
        """
        with self._lock:
            slot = self._slots.setdefault(host, threading.Semaphore(self.concurrency))
        self._check(host, deadline)
        if not slot.acquire(timeout=None if deadline is None else max(0.0, deadline - time.monotonic())):
            raise ItemError("timeout", f"no free connection to {host} before the deadline")
        try:
            while True:
                with self._lock:
                    now = time.monotonic()
                    ready = self._next_start.get(host, 0.0)
                    if now >= ready:
                        self._next_start[host] = now + self.min_delay
                        return
                self._check(host, deadline)
                time.sleep(min(ready - now, 1.0))
        except BaseException:
            slot.release()
            raise

    def _check(self, host: str, deadline: float | None) -> None:
        with self._lock:
            ready = self._next_start.get(host, 0.0)
        if deadline is not None and ready > deadline:
            wait = ready - time.monotonic()
            error = ItemError("http_status", f"{host} asked to be left alone for {wait:.0f} s more", transient=True)
            error.retry_after = wait
            raise error

    def release(self, host: str) -> None:
        self._slots[host].release()

    def delay(self, host: str, seconds: float) -> None:
        """Push the host's next request back (Retry-After)."""
        with self._lock:
            self._next_start[host] = max(self._next_start.get(host, 0.0), time.monotonic() + seconds)


class Fetcher:
    """Fetches URLs within ``Limits``; raises ``ItemError`` with a reason code on failure.

    Transient failures (timeouts, resets, 5xx, 429) are retried with exponential backoff
    while the request's deadline allows; permanent ones (404, 410, blocked, too large) are
    not. Pages are checked against the site's robots.txt (RFC 9309) for the ``newsflow``
    user agent; robots.txt answers are cached per site.
    """

    def __init__(self, limits: Limits, guard: AddressGuard | None = None, user_agent: str = USER_AGENT):
        self.limits = limits
        self.guard = guard or AddressGuard()
        self.limiter = HostLimiter(limits.host_min_delay, limits.host_concurrency)
        self._robots: dict[str, tuple[float, Protego]] = {}
        self._robots_lock = threading.Lock()
        self._robots_fetching: dict[str, threading.Lock] = {}
        self.client = httpx.Client(
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(limits.page_timeout, connect=limits.connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        timeout: float | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
        robots: bool = False,
        trusted_origin: Origin | str | None = None,
    ) -> Response:
        """GET ``url`` within its total ``timeout``; ``robots`` checks robots.txt first.

        ``trusted_origin`` (an ``Origin``, or a URL whose origin is meant: the feed's) may be
        at a private address; every hop at any other origin must be public.
        """
        trusted = _trusted(trusted_origin)
        deadline = time.monotonic() + (timeout or self.limits.page_timeout)
        if robots:
            self.guard.resolve(url, trusted)  # an internal address is refused before anything is fetched
            if not self.allowed_by_robots(url, deadline, trusted):
                raise ItemError("robots", f"robots.txt of {urlsplit(url).netloc} disallows {url[:200]}")
        delay = 0.5
        for attempt in range(RETRIES + 1):
            try:
                return self._get_once(url, deadline, etag, last_modified, accept, trusted)
            except ItemError as exc:
                wait = exc.retry_after if exc.retry_after is not None else delay
                last_try = attempt == RETRIES or not exc.transient or wait > RETRY_AFTER_WAIT_MAX
                if last_try or time.monotonic() + wait >= deadline:
                    raise
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")

    def allowed_by_robots(self, url: str, deadline: float, trusted: Origin | None = None) -> bool:
        """RFC 9309: a 4xx robots.txt allows everything; 5xx or no answer disallows for now.

        An unavailable robots.txt raises a transient ``robots`` error so the item is retried.
        """
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            cached = self._robots.get(site)
            fetching = self._robots_fetching.setdefault(site, threading.Lock())
        if cached is None or cached[0] < time.monotonic():
            with fetching:  # one robots.txt request per site: threads that find none wait for its answer
                with self._robots_lock:
                    cached = self._robots.get(site)
                if cached is None or cached[0] < time.monotonic():
                    cached = self._fetch_robots(site, deadline, trusted)
        return bool(cached[1].can_fetch(url, ROBOTS_TOKEN))

    def _fetch_robots(self, site: str, deadline: float, trusted: Origin | None) -> tuple[float, Protego]:
        try:
            # RFC 9309 2.5: a crawler reads at least the first 500 KiB; a larger file is cut there
            response = self._get_once(
                site + "/robots.txt",
                min(deadline, time.monotonic() + 15),
                None,
                None,
                "text/plain",
                trusted,
                truncate_at=ROBOTS_MAX_BYTES,
            )
            rules = Protego.parse(response.body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace"))
        except ItemError as exc:
            status = exc.status or 0
            if not 400 <= status < 500:
                raise ItemError(
                    "robots", f"robots.txt of {site} unavailable ({exc.message}); retried later", transient=True
                ) from exc
            rules = Protego.parse("")
        cached = (time.monotonic() + ROBOTS_TTL, rules)
        with self._robots_lock:
            self._robots[site] = cached
        return cached

    def _get_once(
        self,
        url: str,
        deadline: float,
        etag: str | None,
        last_modified: str | None,
        accept: str,
        trusted: Origin | None = None,
        *,
        truncate_at: int | None = None,
    ) -> Response:
        headers = {"Accept": accept}
        if etag and etag.isascii():
            headers["If-None-Match"] = etag
        if last_modified and last_modified.isascii():
            headers["If-Modified-Since"] = last_modified
        current = url
        permanent = True  # every redirect so far was permanent: the resource has moved
        for _hop in range(self.limits.max_redirects + 1):
            # each hop on its own: a redirect away from the trusted origin is checked as untrusted
            host, port, addresses = self.guard.resolve(current, trusted)
            self.limiter.acquire(host, deadline)
            try:
                response = self._request(current, host, addresses[0], headers, deadline, truncate_at)
            finally:
                self.limiter.release(host)
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise ItemError("http_status", f"HTTP {response.status} without Location")
                permanent = permanent and response.status in (301, 308)
                current = urljoin(current, location)
                continue
            if permanent and current != url:
                response.moved_to = current
            if response.status == 304:
                response.not_modified = True
                return response
            if response.status >= 400:
                retry_after = _retry_after(response.headers.get("retry-after"))
                if retry_after:
                    self.limiter.delay(host, min(retry_after, 3600))
                transient = response.status in TRANSIENT_STATUS
                error = ItemError(
                    "http_status",
                    f"HTTP {response.status} from {current[:200]}"
                    + (f" (retry after {retry_after:.0f} s)" if retry_after else ""),
                    transient=transient,
                )
                error.status = response.status
                error.retry_after = retry_after
                raise error
            return response
        raise ItemError("too_many_redirects", f"more than {self.limits.max_redirects} redirects from {url[:200]}")

    def _request(
        self,
        url: str,
        host: str,
        address: str,
        headers: dict[str, str],
        deadline: float,
        truncate_at: int | None = None,
    ) -> Response:
        """One HTTP exchange to the pinned ``address``; the Host header and SNI keep ``host``.

        The body is capped (``too_large``), or with ``truncate_at`` cut there without error.
        """
        parts = urlsplit(url)
        pinned_host = f"[{address}]" if ":" in address else address
        netloc = pinned_host + (f":{parts.port}" if parts.port else "")
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        request_headers = dict(headers)
        request_headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ItemError("timeout", f"time limit reached before fetching {url[:200]}")
        timeout = httpx.Timeout(remaining, connect=min(remaining, self.limits.connect_timeout))
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        cap = self.limits.max_body_bytes
        try:
            with self.client.stream(
                "GET", pinned, headers=request_headers, timeout=timeout, extensions=extensions
            ) as response:
                chunks: list[bytes] = []
                size = 0
                if response.status_code < 300:
                    declared = response.headers.get("content-length")
                    if truncate_at is None and declared and declared.isdigit() and int(declared) > cap:
                        raise ItemError("too_large", f"Content-Length {declared} exceeds {cap} bytes")
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if truncate_at is not None and size >= truncate_at:
                            chunks.append(chunk[: len(chunk) - (size - truncate_at)])
                            break
                        if size > cap:
                            raise ItemError("too_large", f"body exceeds {cap} bytes")
                        raw = max(response.num_bytes_downloaded, 1)
                        if size > 1_000_000 and size / raw > self.limits.max_decompression_ratio:
                            raise ItemError(
                                "too_large",
                                f"decompression ratio above {self.limits.max_decompression_ratio}",
                            )
                        if time.monotonic() > deadline:
                            raise ItemError("timeout", f"body of {url[:200]} still arriving at the time limit")
                        chunks.append(chunk)
                return Response(
                    url=url,
                    status=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=b"".join(chunks),
                )
        except httpx.TimeoutException as exc:
            raise ItemError("timeout", f"timed out fetching {url[:200]}") from exc
        except httpx.DecodingError as exc:
            raise ItemError("connection", f"bad content encoding from {url[:200]}: {exc}") from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise ItemError("connection", f"connection failed for {url[:200]}: {type(exc).__name__}: {exc}") from exc


def _validator(value: str | None, limit: int) -> str | None:
    value = clean_text(value, limit)
    if not value or not value.isascii() or not value.isprintable():
        return None
    return value


_DELAY_SECONDS = re.compile(r"[0-9]{1,9}")  # RFC 9110: delay-seconds is 1*DIGIT, ASCII only


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for, or None when it says nothing usable."""
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
