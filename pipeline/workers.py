"""Worker processes for the CPU-bound stages, each task under a time and memory limit.

Extraction (trafilatura) and NLP (spaCy) run in separate processes so that a page that
makes them hang, blow up in memory or crash costs one item, not the run (RELIABILITY.md
C2.20, I3). The parent hands out one task at a time per worker, watches the clock and the
worker's resident memory, kills a worker that overruns, quarantines its item with the
stage it was in, and starts a fresh worker in its place.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class WorkerFailure:
    """A task that did not finish: ``kind`` is timeout, memory, crashed or error."""

    kind: str
    stage: str
    message: str


def report_stage(stage: str) -> None:
    """Called by a task inside a worker to say which stage it is in (for failure reasons)."""
    conn = _CURRENT.get("conn")
    if conn is not None:
        conn.send(("stage", stage))


_CURRENT: dict[str, Connection] = {}


def _worker_main(conn: Connection, task_fn: Callable[[Any], Any]) -> None:
    _CURRENT["conn"] = conn
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            result = task_fn(message)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent as data
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=5)))
        else:
            conn.send(("done", result))


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, task_fn: Callable[[Any], Any]):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, task_fn), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None
        self.started = 0.0
        self.stage = "start"
        self.peak_rss = 0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class WorkerPool:
    """A fixed number of worker processes running ``task_fn`` on picklable tasks.

    ``timeout`` bounds a task until it reports a stage (``report_stage``); from then on each
    stage has its own clock and limit from ``stage_timeouts`` (falling back to ``timeout``).

    ``task_fn`` must be a module-level function (the workers are spawned, not forked, so
    the parent's threads and connections never leak into them).
    """

    def __init__(
        self,
        task_fn: Callable[[Any], Any],
        size: int,
        *,
        timeout: float,
        max_rss_bytes: int,
        stage_timeouts: dict[str, float] | None = None,
    ):
        self.task_fn = task_fn
        self.size = max(1, size)
        self.timeout = timeout
        self.stage_timeouts = stage_timeouts or {}
        self.max_rss_bytes = max_rss_bytes
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self.replaced = 0
        self.peak_rss = 0

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.task_fn)

    def map(self, tasks: Sequence[Any]) -> list[Any]:
        """Results in task order; a task that failed gives a ``WorkerFailure``."""
        while len(self._workers) < min(self.size, max(1, len(tasks))):
            self._workers.append(self._spawn())
        results: list[Any] = [None] * len(tasks)
        pending = list(range(len(tasks)))[::-1]
        busy: dict[Connection, _Worker] = {}
        while pending or busy:
            for worker in self._workers:
                if worker.task is None and pending:
                    index = pending.pop()
                    worker.task, worker.started, worker.stage = index, time.monotonic(), "start"
                    try:
                        worker.conn.send(tasks[index])
                    except (OSError, ValueError) as exc:
                        results[index] = WorkerFailure("crashed", "start", f"worker unavailable: {exc}")
                        self._replace(worker)
                        continue
                    busy[worker.conn] = worker
            if not busy:
                continue
            for conn in wait(list(busy), timeout=POLL_SECONDS):
                worker = busy[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    code = worker.process.exitcode
                    self._finish(
                        busy, worker, results, WorkerFailure("crashed", worker.stage, f"worker died (exit {code})")
                    )
                    self._replace(worker)
                    continue
                if message[0] == "stage":
                    worker.stage = message[1]
                    worker.started = time.monotonic()  # each stage has its own clock
                elif message[0] == "done":
                    self._finish(busy, worker, results, message[1])
                else:
                    self._finish(busy, worker, results, WorkerFailure("error", worker.stage, message[1]))
            now = time.monotonic()
            for worker in list(busy.values()):
                rss = _rss_bytes(worker.process.pid or 0)
                worker.peak_rss = max(worker.peak_rss, rss)
                self.peak_rss = max(self.peak_rss, rss)
                limit = self.stage_timeouts.get(worker.stage, self.timeout)
                if now - worker.started > limit:
                    failure = WorkerFailure("timeout", worker.stage, f"{worker.stage} exceeded {limit:g} s")
                elif rss > self.max_rss_bytes:
                    failure = WorkerFailure(
                        "memory",
                        worker.stage,
                        f"{worker.stage} used {rss // 2**20} MB (limit {self.max_rss_bytes // 2**20} MB)",
                    )
                else:
                    continue
                self._finish(busy, worker, results, failure)
                self._replace(worker)
        return results

    def _finish(self, busy: dict[Connection, _Worker], worker: _Worker, results: list[Any], value: Any) -> None:
        busy.pop(worker.conn, None)
        if worker.task is not None:
            results[worker.task] = value
        worker.task = None

    def _replace(self, worker: _Worker) -> None:
        log.warning("replacing worker %s (%s)", worker.process.pid, worker.stage)
        worker.kill()
        self.replaced += 1
        self._workers[self._workers.index(worker)] = self._spawn()

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=5)
            worker.kill()
        self._workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
