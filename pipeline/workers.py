"""Worker processes for the CPU-bound stages, each task under a time and memory limit.

Extraction (trafilatura) and NLP (spaCy) run in separate processes so that a page that
makes them hang, blow up in memory or crash costs one item, not the run (RELIABILITY.md
C2.20, I3). The parent hands out one task at a time per worker, watches the clock and the
worker's resident memory, kills a worker that overruns, quarantines its item with the
stage it was in, and starts a fresh worker in its place.

Workers ignore SIGINT: a terminal's Ctrl-C reaches every process of the foreground group,
and stopping is the parent's decision (`newsflow run` finishes the items in flight; a batch
run unwinds and leaves them for the rerun). A worker killed by the Ctrl-C instead would
cost its task, and the next task handed to it, as "crashed".
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class WorkerFailure:
    """A task that did not finish: ``kind`` is timeout, memory, crashed or error.

    ``item`` is the index the task last reported with its stage (``report_stage``), when it
    reported one: for a task over several pages, the page it was on.
    """

    kind: str
    stage: str
    message: str
    item: int | None = None


def report_stage(stage: str, item: int | None = None) -> None:
    """Called by a task inside a worker to say which stage (and item) it is in."""
    conn = _CURRENT.get("conn")
    if conn is not None:
        conn.send(("stage", stage, item))


_CURRENT: dict[str, Connection] = {}


def _worker_main(conn: Connection, task_fn: Callable[[Any], Any], nice: int) -> None:
    # Ignored before unblocked: a Ctrl-C that came while this process started up (held
    # pending by the mask it was started with, see _sigint_held) is discarded, not delivered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _CURRENT["conn"] = conn
    if nice > 0:
        os.nice(nice)
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


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Block SIGINT in this thread while a worker is started.

    A spawned worker inherits the signal mask, so from its first instruction until
    ``_worker_main`` ignores SIGINT (seconds: it imports spaCy first) a Ctrl-C stays pending
    in it instead of killing it. The parent loses nothing: a SIGINT for it meanwhile goes to
    another of its threads, or arrives when the mask is restored.
    """
    # Started first, on its own: starting the resource tracker unblocks SIGINT in this thread.
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, task_fn: Callable[[Any], Any], nice: int = 0):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, task_fn, nice), daemon=True)
        with _sigint_held():
            self.process.start()
        child.close()
        self.busy = False
        self.tag: Any = None
        self.started = 0.0
        self.stage = "start"
        self.item: int | None = None
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

    ``map`` runs a list of tasks to completion. ``submit`` and ``poll`` let a caller keep
    the workers busy while it does other work between results (ingest stores one page
    while the workers analyse the next ones).
    """

    def __init__(
        self,
        task_fn: Callable[[Any], Any],
        size: int,
        *,
        timeout: float,
        max_rss_bytes: int,
        stage_timeouts: dict[str, float] | None = None,
        nice: int = 0,
    ):
        self.task_fn = task_fn
        self.size = max(1, size)
        self.timeout = timeout
        self.stage_timeouts = stage_timeouts or {}
        self.max_rss_bytes = max_rss_bytes
        self.nice = nice  # added to the workers' niceness: they yield the CPU to their parent
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._finished: list[tuple[Any, Any]] = []
        self.replaced = 0
        self.peak_rss = 0
        self.peak_rss_by_pid: dict[int, int] = {}
        # (monotonic time, pid, resident bytes) after each finished task: shows whether memory stays flat
        self.rss_samples: list[tuple[float, int, int]] = []

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.task_fn, self.nice)

    def start(self, count: int | None = None) -> int:
        """Start workers up to ``count`` (default: the pool's size); returns how many were started."""
        started = 0
        while len(self._workers) < min(self.size, count or self.size):
            self._workers.append(self._spawn())
            started += 1
        return started

    @property
    def idle(self) -> int:
        """Workers free for a task, counting those not started yet."""
        return sum(1 for w in self._workers if not w.busy) + self.size - len(self._workers)

    @property
    def busy(self) -> int:
        return sum(1 for w in self._workers if w.busy)

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid]

    def submit(self, task: Any, tag: Any) -> None:
        """Hand ``task`` to an idle worker; ``poll`` later returns ``(tag, result)``."""
        worker = next((w for w in self._workers if not w.busy), None)
        if worker is None:
            if len(self._workers) >= self.size:
                raise RuntimeError("no idle worker")
            worker = self._spawn()
            self._workers.append(worker)
        worker.busy, worker.tag, worker.started, worker.stage, worker.item = True, tag, time.monotonic(), "start", None
        try:
            worker.conn.send(task)
        except (OSError, ValueError) as exc:
            self._finish(worker, WorkerFailure("crashed", "start", f"worker unavailable: {exc}"))
            self._replace(worker)

    def poll(self, timeout: float) -> list[tuple[Any, Any]]:
        """Finished tasks as ``(tag, result)``, waiting up to ``timeout`` s for one.

        A task that failed gives a ``WorkerFailure``. Also enforces the time and memory
        limits of the running tasks, so call it at least every few hundred milliseconds
        while tasks run.
        """
        busy = {w.conn: w for w in self._workers if w.busy}
        if busy:
            for conn in wait(list(busy), timeout=0 if self._finished else timeout):
                worker = busy[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    code = worker.process.exitcode
                    self._finish(
                        worker, WorkerFailure("crashed", worker.stage, f"worker died (exit {code})", worker.item)
                    )
                    self._replace(worker)
                    continue
                if message[0] == "stage":
                    worker.stage = message[1]
                    worker.item = message[2] if len(message) > 2 else None
                    worker.started = time.monotonic()  # each stage has its own clock
                elif message[0] == "done":
                    self._finish(worker, message[1])
                    rss = self._sample_rss(worker)
                    self.rss_samples.append((time.monotonic(), worker.process.pid or 0, rss))
                else:
                    self._finish(worker, WorkerFailure("error", worker.stage, message[1], worker.item))
            self._enforce_limits()
        elif timeout > 0 and not self._finished:
            time.sleep(timeout)
        finished, self._finished = self._finished, []
        return finished

    def _sample_rss(self, worker: _Worker) -> int:
        rss = _rss_bytes(worker.process.pid or 0)
        worker.peak_rss = max(worker.peak_rss, rss)
        self.peak_rss = max(self.peak_rss, rss)
        pid = worker.process.pid or 0
        self.peak_rss_by_pid[pid] = max(self.peak_rss_by_pid.get(pid, 0), rss)
        return rss

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for worker in [w for w in self._workers if w.busy]:
            rss = self._sample_rss(worker)
            limit = self.stage_timeouts.get(worker.stage, self.timeout)
            if now - worker.started > limit:
                failure = WorkerFailure("timeout", worker.stage, f"{worker.stage} exceeded {limit:g} s", worker.item)
            elif rss > self.max_rss_bytes:
                failure = WorkerFailure(
                    "memory",
                    worker.stage,
                    f"{worker.stage} used {rss // 2**20} MB (limit {self.max_rss_bytes // 2**20} MB)",
                    worker.item,
                )
            else:
                continue
            self._finish(worker, failure)
            self._replace(worker)

    def map(self, tasks: Sequence[Any]) -> list[Any]:
        """Results in task order; a task that failed gives a ``WorkerFailure``."""
        self.start(max(1, len(tasks)))
        results: list[Any] = [None] * len(tasks)
        pending = list(range(len(tasks)))[::-1]
        while pending or self.busy or self._finished:
            while pending and self.idle:
                index = pending.pop()
                self.submit(tasks[index], index)
            for index, result in self.poll(POLL_SECONDS):
                results[index] = result
        return results

    def abandon(self) -> None:
        """Drop the running tasks (their caller gave up, or is being stopped): their workers are
        stopped, and fresh ones start when the pool is next used, not during a shutdown."""
        for worker in [w for w in self._workers if w.busy]:
            log.info("stopping worker %s (%s): its task was abandoned", worker.process.pid, worker.stage)
            worker.kill()
            self._workers.remove(worker)
        self._finished = []

    def _finish(self, worker: _Worker, value: Any) -> None:
        if worker.busy:
            self._finished.append((worker.tag, value))
        worker.busy, worker.tag = False, None

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


_KEPT: dict[tuple, WorkerPool] = {}


def kept_pool(
    task_fn: Callable[[Any], Any],
    size: int,
    *,
    timeout: float,
    max_rss_bytes: int,
    stage_timeouts: dict[str, float],
    nice: int = 0,
) -> WorkerPool:
    """The process's pool running ``task_fn`` under these limits, started on first use and kept
    for later runs (a fresh worker costs its imports, seconds when it loads a model)."""
    key = (task_fn, size, timeout, max_rss_bytes, tuple(sorted(stage_timeouts.items())), nice)
    pool = _KEPT.get(key)
    if pool is None:
        pool = _KEPT[key] = WorkerPool(
            task_fn, size, timeout=timeout, max_rss_bytes=max_rss_bytes, stage_timeouts=stage_timeouts, nice=nice
        )
    return pool
