"""Scale-out on Airflow's CeleryExecutor: the ingest DAG spread over two Celery workers.

Starts, on loopback, the Airflow components a Celery deployment runs (api-server, scheduler,
dag-processor and two ``airflow celery worker`` processes with distinct hostnames) with Redis
as the broker and PostgreSQL as the result backend and metadata database (a fresh database per
run). ``newsflow_ingest`` is triggered over six feeds on five loopback hosts; the test checks
that the mapped tasks ran on both workers, that no item was fetched or stored twice, that the
newsflow tables hold exactly what a single-process ``ingest`` of the same feeds stores, and
that the stored-articles asset started ``newsflow_report``.

Skipped only when Redis does not answer or the Celery provider is not installed, and never in
CI (the environment variable CI set, as CI services do): CI always has both, so there a missing
one fails the test instead of passing it unnoticed. Every process is killed (by process group) at
the end; on failure the components' logs are printed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pipeline import db, store
from pipeline.config import Limits, Settings
from pipeline.loopback import LoopbackSite
from pipeline.tasks import libpq_url

from .conftest import _with_dbname, table_counts
from .wire import serve_wire

pytestmark = pytest.mark.celery

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
REDIS_URL = os.environ.get("NEWSFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")  # not DB 0: flushed
WORKERS = ("worker-a", "worker-b")
# (host, wire name, feed path): two feeds share 127.0.0.2, so its tasks also take turns on the host lock.
FEEDS = [
    ("127.0.0.2", "alpha", "/alpha/feed.xml"),
    ("127.0.0.2", "beta", "/beta/feed.xml"),
    ("127.0.0.3", "gamma", "/feed.xml"),
    ("127.0.0.4", "delta", "/feed.xml"),
    ("127.0.0.5", "epsilon", "/feed.xml"),
    ("127.0.0.6", "zeta", "/feed.xml"),
]
ITEMS_PER_FEED = 4
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 150.0


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab CI and others set it): the suite's services must be there."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where a skip would hide a broken set-up."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the Celery test must run there)", pytrace=False)
    pytest.skip(reason)


def _redis_or_skip() -> None:
    for dist in ("apache-airflow", "apache-airflow-providers-celery"):
        try:
            importlib.metadata.distribution(dist)  # not imported: see tests/test_dags.py airflow_env
        except importlib.metadata.PackageNotFoundError:
            _skip(f"{dist} is not installed (pip install -e '.[dev]')")
    if importlib.util.find_spec("redis") is None or importlib.util.find_spec("celery") is None:
        _skip("celery or the redis client is not installed (pip install -e '.[dev]')")
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except redis.RedisError as exc:
        _skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()  # a broker DB of our own: nothing queued by an earlier, interrupted run


@pytest.mark.parametrize(("ci", "outcome"), [(None, pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_no_redis_is_a_skip_on_a_laptop_and_a_failure_in_ci(monkeypatch, ci, outcome):
    """Nothing answers on port 1: a developer without Redis skips; CI, which has it, fails."""
    monkeypatch.setattr(sys.modules[__name__], "REDIS_URL", "redis://127.0.0.1:1/11")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as raised:
        _redis_or_skip()
    assert raised.type is outcome, raised.value
    monkeypatch.setenv("CI", "false")  # as some CI templates leave it outside CI
    assert not in_ci()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scratch_database(pg_server: str) -> Iterator[Callable[[str], str]]:
    """Make more fresh databases (name prefix given); all dropped at the end."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return _with_dbname(pg_server, name)

    yield make
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(conninfo: str, scheme: str = "postgresql") -> str:
    p = conninfo_to_dict(conninfo)
    url = libpq_url(
        host=p.get("host", "127.0.0.1"),
        port=int(p.get("port", 5432)),
        login=p.get("user"),
        password=p.get("password"),
        database=p["dbname"],
    )
    return scheme + url.removeprefix("postgresql")


class Components:
    """The Airflow processes, each in its own process group with its output in a log file."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home = home
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, **extra_env: str) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the process
        self.procs[name] = subprocess.Popen(
            [str(AIRFLOW), *args],
            env={**self.env, **extra_env},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow components exited: {dead}")

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL every process left, descendants included.

        Airflow puts each task process (and so its page workers) in a process group of its own,
        so the component groups alone do not cover them: the process tree is read from /proc.
        """
        tree = {pid for proc in self.procs.values() for pid in _descendants(proc.pid)}
        for proc in self.procs.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            tree |= _descendants(proc.pid)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group may outlive its leader
            proc.wait()
        for pid in tree:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def dump(self) -> str:
        parts = [f"===== {name} (exit {p.poll()}) =====\n{self.log(name)[-6000:]}" for name, p in self.procs.items()]
        for path in sorted((self.home / "logs").rglob("*.log"))[-12:]:
            parts.append(
                f"===== task log {path.relative_to(self.home)} =====\n{path.read_text(errors='replace')[-3000:]}"
            )
        return "\n".join(parts)


def _descendants(root: int) -> set[int]:
    """Every process below ``root``, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class Api:
    """The public REST API (all users are admins in this test, so no token)."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            return 0, str(exc)


def _wait(what: str, predicate: Callable[[], Any], timeout: float, components: Components) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        components.check_alive()
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def _single_process_counts(urls: list[str], database: str, tmp_path: Path) -> dict[str, int]:
    from pipeline.ingest import ingest

    limits = replace(Limits(), host_min_delay=0.01, page_timeout=20.0, feed_timeout=20.0)
    settings = Settings(database_url=database, home=tmp_path / "single", limits=limits, nlp_workers=1)
    summary = ingest(settings, urls)
    assert summary.status == "succeeded" and summary.stored == len(FEEDS) * ITEMS_PER_FEED, summary.counts()
    with psycopg.connect(database) as conn:
        return table_counts(conn)


FORKED_TASK = """
import sys
if __name__ != "__main__":
    raise SystemExit("the airflow command ran again in a child")
import multiprocessing
import billiard.process

billiard.process._set_current_process(billiard.process.Process(daemon=True))  # as in a prefork pool process
from pipeline.tasks import prepare_task_process

try:
    multiprocessing.get_context("spawn").Process(target=print).start()
except AssertionError as exc:
    print("BEFORE", exc)
prepare_task_process()
child = multiprocessing.get_context("spawn").Process(target=print, args=("CHILD RAN",))
child.start()
child.join()
print("EXIT", child.exitcode)
"""


def test_a_task_forked_in_a_celery_worker_can_start_page_workers(tmp_path: Path):
    """What an Airflow task inherits from a Celery prefork process and the ``airflow`` command."""
    if importlib.util.find_spec("billiard") is None:
        _skip("billiard (Celery's process pool) is not installed (pip install -e '.[dev]')")
    script = tmp_path / "airflow"  # the name of the command whose process the task is forked from
    script.write_text(FORKED_TASK, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "BEFORE daemonic processes are not allowed to have children" in proc.stdout
    assert "CHILD RAN" in proc.stdout and "EXIT 0" in proc.stdout, proc.stdout + proc.stderr


def test_ingest_dag_on_two_celery_workers_matches_a_single_process_run(
    database_url: str, scratch_database, tmp_path: Path
):
    _redis_or_skip()
    started = time.monotonic()
    with ExitStack() as stack:
        sites: dict[str, LoopbackSite] = {}
        urls = []
        for host, name, path in FEEDS:
            if host not in sites:
                sites[host] = stack.enter_context(LoopbackSite(host=host))
            urls.append(serve_wire(sites[host], name, ITEMS_PER_FEED, path))

        expected = _single_process_counts(urls, scratch_database("newsflow_single"), tmp_path)
        for site in sites.values():
            site.requests.clear()

        with db.connect(database_url) as conn:
            db.upgrade(conn)
            for url in urls:
                store.register_feed(conn, url)

        home = tmp_path / "airflow"
        (home / "logs").mkdir(parents=True)
        metadata_db = scratch_database("airflow_meta")
        metadata = _url(metadata_db, "postgresql+psycopg")  # SQLAlchemy with psycopg 3
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSFLOW_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.celery_hostname.hostname",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_NEWSFLOW_DB": _url(database_url),
                "NEWSFLOW_INGEST_SCHEDULE": "none",  # only the run triggered below
                "NEWSFLOW_AIRFLOW_RETRY_DELAY": "1",
                "NEWSFLOW_HOST_MIN_DELAY": "0.01",
                "NEWSFLOW_NLP_WORKERS": "1",  # two cores for two workers of two slots each
                "NEWSFLOW_REPORT_DIR": str(tmp_path / "report"),
                "PYTHONPATH": str(REPO),  # tests.celery_hostname
            }
        )
        components = Components(home, env)
        try:
            migrate = subprocess.run(
                [str(AIRFLOW), "db", "migrate"], env=env, cwd=REPO, capture_output=True, text=True, timeout=240
            )
            assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
            components.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
            components.start("scheduler", "scheduler")
            components.start("dag-processor", "dag-processor")
            for worker in WORKERS:
                components.start(
                    worker,
                    *("celery", "worker", "--celery-hostname", f"{worker}@%h", "--skip-serve-logs"),
                    *("--pid", str(home / f"{worker}.pid")),
                    NEWSFLOW_TEST_HOSTNAME=worker,
                )
            api = Api(port)
            _wait(
                "the api-server",
                lambda: api.call("GET", "/api/v2/monitor/health")[0] == 200,
                STARTUP_TIMEOUT,
                components,
            )
            for worker in WORKERS:
                _wait(
                    f"{worker} to be ready",
                    lambda w=worker: " ready." in components.log(w),
                    STARTUP_TIMEOUT,
                    components,
                )
            for dag_id in ("newsflow_ingest", "newsflow_report"):
                _wait(
                    f"{dag_id} parsed",
                    lambda d=dag_id: api.call("GET", f"/api/v2/dags/{d}")[0] == 200,
                    STARTUP_TIMEOUT,
                    components,
                )
                status, body = api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                assert status == 200, body
            ready = time.monotonic()

            status, body = api.call("POST", "/api/v2/dags/newsflow_ingest/dagRuns", {"logical_date": None})
            assert status == 200, body
            run_id = body["dag_run_id"]

            def finished() -> str | None:
                status, run = api.call("GET", f"/api/v2/dags/newsflow_ingest/dagRuns/{run_id}")
                return run["state"] if status == 200 and run["state"] in ("success", "failed") else None

            state = _wait("the ingest run", finished, RUN_TIMEOUT, components)
            ran = time.monotonic()
            with psycopg.connect(metadata_db) as meta:
                tis = meta.execute(
                    "SELECT task_id, map_index, state, hostname FROM task_instance "
                    "WHERE dag_id = 'newsflow_ingest' AND run_id = %s ORDER BY task_id, map_index",
                    (run_id,),
                ).fetchall()
            assert state == "success", tis

            # Mapped tasks ran on both workers; every task succeeded.
            mapped = [(i, host) for task, i, _, host in tis if task == "ingest_feed"]
            assert sorted(i for i, _ in mapped) == list(range(len(FEEDS)))
            assert {host for _, host in mapped} == set(WORKERS), tis
            assert {(task, s) for task, _, s, _ in tis} == {
                ("feeds", "success"),
                ("ingest_feed", "success"),
                ("reconcile", "success"),
                ("publish", "success"),
            }

            # Nothing fetched twice, nothing stored twice; the rows equal the single-process run's.
            pages = [p for site in sites.values() for p in site.requests if "/story-" in p]
            assert len(pages) == len(set(pages)) == len(FEEDS) * ITEMS_PER_FEED
            with psycopg.connect(database_url) as conn:
                runs = conn.execute(
                    "SELECT kind, status, seen, stored, duplicate, quarantined FROM ops.runs"
                ).fetchall()
                assert sorted(runs) == [("ingest", "succeeded", ITEMS_PER_FEED, ITEMS_PER_FEED, 0, 0)] * len(FEEDS)
                ledger = conn.execute(
                    "SELECT count(*), count(DISTINCT item_id) FROM ops.run_items WHERE state = 'stored'"
                ).fetchone()
                assert ledger == (len(FEEDS) * ITEMS_PER_FEED,) * 2
                assert table_counts(conn) == expected

            # The stored-articles asset event started the report DAG.
            def report_done() -> str | None:
                status, body = api.call("GET", "/api/v2/dags/newsflow_report/dagRuns")
                runs = body["dag_runs"] if status == 200 else []
                done = [r for r in runs if r["state"] in ("success", "failed")]
                return done[0]["state"] + ":" + done[0]["run_type"] if done else None

            assert _wait("the asset-triggered report run", report_done, 90, components) == "success:asset_triggered"
            assert "<img" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
            print(
                f"celery test: ready after {ready - started:.0f} s, ingest run took {ran - ready:.0f} s, "
                f"report after {time.monotonic() - ran:.0f} s more"
            )
        except BaseException:
            print(components.dump())
            raise
        finally:
            components.stop()
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
