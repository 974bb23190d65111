"""Politeness: with the default limits, one request to a host per second, at most two at once.

Every other test runs with a delay of 0.01 s or none, so these are the ones that hold the
real limits: through the real ``Fetcher`` (its ``HostLimiter``) against loopback servers that
record, per host, when each request arrived and how many were in progress at once. Measured
gaps at least the minimum delay is a correctness property, not a speed assertion.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from pipeline.config import Limits
from pipeline.fetch import AddressGuard, Fetcher
from pipeline.loopback import LoopbackSite, Reply

SLACK = 0.05  # timer and scheduling jitter allowed below the minimum delay


class RecordingSite(LoopbackSite):
    """Serves /page/N after ``hold`` seconds, recording each request's arrival and the
    number of requests in progress at once."""

    def __init__(self, host: str, hold: float):
        super().__init__(host=host)
        self.starts: list[float] = []
        self.in_flight = 0
        self.peak = 0
        self._count = threading.Lock()
        for i in range(10):
            self.routes[f"/page/{i}"] = self._page(hold)

    def _page(self, hold: float):
        def handler(_h) -> Reply:
            with self._count:
                self.starts.append(time.monotonic())
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            try:
                time.sleep(hold)
            finally:
                with self._count:  # before the reply is written: never more than the client has open
                    self.in_flight -= 1
            return Reply(200, b"<html><body><p>page</p></body></html>", {"Content-Type": "text/html"})

        return handler

    def gaps(self) -> list[float]:
        starts = sorted(self.starts)
        return [b - a for a, b in zip(starts, starts[1:], strict=False)]


class LoopbackGuard(AddressGuard):
    """Lets these loopback servers through: the address guard is not what is under test."""

    def resolve(self, url: str, *_args, **_kwargs) -> tuple[str, int, list[str]]:
        parts = urlsplit(url)
        assert parts.hostname in ("127.0.0.1", "127.0.0.2")
        return parts.hostname, parts.port or 80, [parts.hostname]


def _fetcher() -> Fetcher:
    limits = Limits()
    assert (limits.host_min_delay, limits.host_concurrency) == (1.0, 2)  # the defaults under test
    return Fetcher(limits, LoopbackGuard())


def test_one_host_gets_a_request_a_second_and_two_at_most_at_once():
    # Each request takes 2.2 s: without the cap a third would start at 2 s with two in progress.
    with RecordingSite("127.0.0.1", hold=2.2) as site, _fetcher() as fetcher, ThreadPoolExecutor(3) as threads:
        started = time.monotonic()
        responses = list(threads.map(lambda i: fetcher.get(site.url(f"/page/{i}")), range(3)))
    assert [r.status for r in responses] == [200, 200, 200]
    assert len(site.starts) == 3
    assert all(gap >= 1.0 - SLACK for gap in site.gaps()), site.gaps()
    assert site.peak == 2  # two at once, never three
    first, _second, third = sorted(site.starts)
    assert third >= first + 2.2 - SLACK  # the third waited for a slot, not just for the delay
    assert first - started < 0.5  # the first request was not held back


def test_hosts_are_limited_independently():
    """A request to one host is not held back by the delay another host is under."""
    with (
        RecordingSite("127.0.0.1", hold=0) as a,
        RecordingSite("127.0.0.2", hold=0) as b,
        _fetcher() as fetcher,
    ):
        for i in range(2):  # in turn: a, b, a, b
            fetcher.get(a.url(f"/page/{i}"))
            fetcher.get(b.url(f"/page/{i}"))
    assert len(a.starts) == len(b.starts) == 2
    a1, a2 = a.starts
    b1, b2 = b.starts
    assert a2 - a1 >= 1.0 - SLACK and b2 - b1 >= 1.0 - SLACK  # each host's own delay holds
    assert b1 - a1 < 0.5  # b's first request right after a's, not a second later
    assert b2 - a2 < 0.5  # b's second was due when a's second went: no wait behind a
