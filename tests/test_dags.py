"""The Airflow DAGs: they parse cleanly and without side effects, and ``dag.test()`` runs them
against a real PostgreSQL (a database per test) and loopback sites.

Airflow's own metadata database is SQLite in a temporary AIRFLOW_HOME, created once per
session; Airflow is imported only after that environment is in place, so the tests never
write to ~/airflow. Skipped when apache-airflow is not installed (``pip install -e '.[dev]'``
installs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pipeline import db, store
from pipeline.demo import serve_demo_site
from pipeline.loopback import LoopbackSite

from .conftest import table_counts
from .history import IN_WINDOW, SINCE, UNTIL, article_paths, serve_history_site
from .wire import serve_wire

if importlib.util.find_spec("airflow") is None:  # checked without importing: see airflow_env
    pytest.skip("apache-airflow is not installed (pip install -e '.[airflow]')", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
DAG_IDS = {"newsflow_ingest", "newsflow_backfill", "newsflow_reprocess", "newsflow_report", "newsflow_archive_backfill"}
PARAM_DEFAULTS = {
    "newsflow_report": {"days": 7},
    "newsflow_backfill": {"feed": None, "since": None, "until": None},
    "newsflow_reprocess": {"outdated_only": True, "since": None, "until": None, "by": "published", "chunk_size": 500},
    "newsflow_archive_backfill": {
        "month": None,
        "cc_news_base": None,
        "paths": None,
        "domains": None,
        "all_domains": False,
        "since": None,
        "until": None,
        "language": None,
    },
}
NOWHERE = "postgresql://nobody@127.0.0.1:9/nowhere?connect_timeout=1"


def _airflow_environment(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory):
    """Airflow configured in a temporary home with a migrated SQLite metadata database."""
    if "airflow" in sys.modules:  # its configuration is read once, at import
        pytest.fail("airflow was imported before its test environment was set (AIRFLOW_HOME, metadata DB)")
    home = tmp_path_factory.mktemp("airflow_home")
    patch = pytest.MonkeyPatch()
    for name, value in _airflow_environment(home).items():
        patch.setenv(name, value)
    # Read when the DAG files are parsed: a failing task retries after a second, not minutes.
    patch.setenv("NEWSFLOW_AIRFLOW_RETRY_DELAY", "1")
    patch.setenv("NEWSFLOW_HOST_MIN_DELAY", "0.01")
    patch.setenv("NEWSFLOW_PAGE_TIMEOUT", "10")
    patch.setenv("NEWSFLOW_FEED_TIMEOUT", "10")
    patch.delenv("NEWSFLOW_DATABASE_URL", raising=False)
    pytest.importorskip("airflow.sdk")
    from airflow.utils import db as airflow_db

    airflow_db.initdb()
    yield home
    patch.undo()


@pytest.fixture(scope="session")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture
def newsflow_db(airflow_env, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's database as the Airflow connection ``newsflow_db``, the way a deployment sets it."""
    params = conninfo_to_dict(database_url)
    connection = {
        "conn_type": "postgres",
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)),
        "login": params.get("user"),
        "password": params.get("password"),
        "schema": params["dbname"],
    }
    monkeypatch.setenv("AIRFLOW_CONN_NEWSFLOW_DB", json.dumps(connection))
    with db.connect(database_url) as conn:
        db.upgrade(conn)
    return database_url


def _run(dagbag, dag_id: str, logical_date: datetime, conf: dict | None = None):
    dag = dagbag.dags[dag_id]
    # Every param in the conf: run_conf is resolved into the in-process DAG's params, and would
    # leak into the next run (a deployment parses the file afresh in every task process instead).
    conf = {**PARAM_DEFAULTS.get(dag_id, {}), **(conf or {})}
    run = dag.test(logical_date=logical_date, run_conf=conf)
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "success", f"{dag_id} ended {run.state}: {states}"
    return run, states


def _runs(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT kind, status, seen, stored, duplicate, quarantined, unchanged FROM ops.runs ORDER BY id"
    ).fetchall()


# --- parsing ---------------------------------------------------------------------------------

PARSE_PROBE = r"""
import json, socket, sys
attempts = []
real_connect = socket.socket.connect
def spy(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        attempts.append(str(address))
    return real_connect(self, address)
socket.socket.connect = spy
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {
    "errors": {k: v[-500:] for k, v in bag.import_errors.items()},
    "connects": attempts,
    "modules": sorted(m for m in ("spacy", "psycopg", "pipeline.tasks", "pipeline.ingest", "trafilatura", "feedparser")
                      if m in sys.modules),
    "dags": {},
}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags),
        "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
        "max_active_runs": dag.max_active_runs,
        "tasks": {t.task_id: {"retries": t.retries, "retry_delay": t.retry_delay.total_seconds(),
                              "backoff": float(t.retry_exponential_backoff)} for t in dag.tasks},
    }
print("PROBE" + json.dumps(out))
"""


def test_dags_parse_without_errors_or_side_effects(tmp_path):
    """DagBag import in a fresh interpreter whose database settings point nowhere."""
    env = {**os.environ, **_airflow_environment(tmp_path)}
    env.update(NEWSFLOW_DATABASE_URL=NOWHERE, AIRFLOW_CONN_NEWSFLOW_DB=NOWHERE)
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(DAGS)], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(proc.stdout.split("PROBE", 1)[1])
    assert probe["errors"] == {}
    assert set(probe["dags"]) == DAG_IDS
    assert probe["connects"] == []  # no database, no network at parse time
    assert probe["modules"] == []  # no spaCy, no driver, no pipeline work imported at parse time
    for dag_id, info in probe["dags"].items():
        assert "newsflow" in info["tags"] and len(info["tags"]) >= 2, dag_id
        assert info["doc_md"], dag_id
        assert 1 <= info["max_active_runs"] <= 4, dag_id
        for task_id, task in info["tasks"].items():
            assert task["retries"] >= 2, (dag_id, task_id)
            assert task["retry_delay"] > 0 and task["backoff"] > 1, (dag_id, task_id)


def test_dag_shapes(dagbag):
    from airflow.serialization.encoders import coerce_to_core_timetable

    assert not dagbag.import_errors
    ingest = dagbag.dags["newsflow_ingest"]
    assert ingest.schedule == "*/15 * * * *"
    assert {"feeds", "ingest_feed", "reconcile", "publish"} <= set(ingest.task_ids)
    assert ingest.get_task("ingest_feed").max_active_tis_per_dagrun >= 1
    assert ingest.get_task("publish").upstream_task_ids == {"ingest_feed", "reconcile"}
    backfill = dagbag.dags["newsflow_backfill"]
    assert coerce_to_core_timetable(backfill.timetable).periodic  # `airflow backfill create` needs this
    assert {"feed", "since", "until"} <= set(backfill.params.keys())
    reprocess = dagbag.dags["newsflow_reprocess"]
    assert reprocess.schedule is None
    assert reprocess.params["outdated_only"] is True
    for dag in dagbag.dags.values():
        assert dag.catchup is False


def test_ingest_updates_the_asset_the_report_dag_is_scheduled_on(dagbag):
    """Checked on the serialized DAGs: what the scheduler and the API server actually read."""
    from airflow.serialization.serialized_objects import DagSerialization

    asset = {"__type": "asset", "name": "newsflow_stored_articles", "uri": "newsflow://articles/stored"}
    ingest = DagSerialization.to_dict(dagbag.dags["newsflow_ingest"])["dag"]
    outlets = {t["__var"]["task_id"]: t["__var"].get("outlets", []) for t in ingest["tasks"]}
    assert [o["__var"]["uri"] for o in outlets.pop("publish")] == [asset["uri"]]
    assert not any(outlets.values())  # only publish updates the asset
    report = DagSerialization.to_dict(dagbag.dags["newsflow_report"])["dag"]
    timetable = report["timetable"]
    assert timetable["__type"] == "airflow.timetables.simple.AssetTriggeredTimetable"
    [condition] = timetable["__var"]["asset_condition"]["objects"]
    assert {k: condition[k] for k in asset} == asset


def test_schedule_comes_from_the_environment(tmp_path):
    code = (
        "from airflow.dag_processing.dagbag import DagBag; import sys; "
        "bag = DagBag(dag_folder=sys.argv[1]); print('SCHEDULE', bag.dags['newsflow_ingest'].schedule)"
    )
    env = {**os.environ, **_airflow_environment(tmp_path), "NEWSFLOW_INGEST_SCHEDULE": "@hourly"}
    proc = subprocess.run([sys.executable, "-c", code, str(DAGS)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SCHEDULE @hourly" in proc.stdout


def test_ingest_schedule_is_frequent_by_default_and_can_be_manual(monkeypatch):
    from pipeline import dagconfig

    monkeypatch.delenv("NEWSFLOW_INGEST_SCHEDULE", raising=False)
    assert dagconfig.ingest_schedule() == "*/15 * * * *"
    monkeypatch.setenv("NEWSFLOW_INGEST_SCHEDULE", "None")
    assert dagconfig.ingest_schedule() is None


# --- runs --------------------------------------------------------------------------------------


def test_ingest_dag_loads_the_sample_site_and_a_rerun_changes_nothing(dagbag, newsflow_db, conn, site):
    feed_url = serve_demo_site(site)
    store.register_feed(conn, feed_url)
    expected = json.loads((REPO / "pipeline" / "demo_site" / "expected.json").read_text(encoding="utf-8"))
    logical = datetime(2026, 11, 1, tzinfo=UTC)

    run, states = _run(dagbag, "newsflow_ingest", logical)
    titles = {r[0] for r in conn.execute("SELECT title FROM articles")}
    assert titles == {case["title"] for case in expected.values()}
    assert conn.execute("SELECT count(*) FROM statements").fetchone()[0] > 0
    assert _runs(conn) == [("ingest", "succeeded", 5, 5, 0, 0, 0)]
    assert states[("publish", -1)] == "success"
    run_id = conn.execute("SELECT id FROM ops.runs").fetchone()[0]
    assert _asset_events(run) == [{"run_ids": [run_id], "stored": 5, "duplicate": 0, "quarantined": 0, "seen": 5}]
    counts = table_counts(conn)
    requests = len(site.requests)

    _make_due(conn, feed_url)  # polled again although its next poll time has not come
    run, states = _run(dagbag, "newsflow_ingest", logical)  # the same logical date again
    assert table_counts(conn) == counts
    assert site.requests[requests:] == ["/feed.xml"]  # the feed polled, no article fetched again
    assert _runs(conn)[-1] == ("ingest", "succeeded", 0, 0, 0, 0, 5)
    assert states[("publish", -1)] == "skipped"  # nothing new: no asset event
    assert _asset_events(run) == []


def test_ingest_dag_polls_only_the_feeds_that_are_due(dagbag, newsflow_db, conn):
    with LoopbackSite() as busy_site, LoopbackSite(host="127.0.0.2") as quiet_site:
        busy = serve_wire(busy_site, "busy", 2)
        quiet = serve_wire(quiet_site, "quiet", 2)
        store.register_feed(conn, busy)
        store.register_feed(conn, quiet)
        conn.execute("UPDATE feeds SET next_poll_at = now() + interval '1 hour' WHERE url = %s", (quiet,))

        _, states = _run(dagbag, "newsflow_ingest", datetime(2026, 11, 1, 10, 0, tzinfo=UTC))
        assert {k: v for k, v in states.items() if k[0] == "ingest_feed"} == {("ingest_feed", 0): "success"}
        assert quiet_site.requests == []  # not due: not even its feed document is fetched
        assert busy_site.hits("/feed.xml") == 1
        assert _feeds_of_articles(conn) == {busy: 2}
        polled = conn.execute("SELECT next_poll_at > now() FROM feeds WHERE url = %s", (busy,)).fetchone()[0]
        assert polled  # the poll set the busy feed's next time (schedule.next_interval)

        conn.execute("UPDATE feeds SET next_poll_at = now() - interval '1 minute' WHERE url = %s", (quiet,))
        _, states = _run(dagbag, "newsflow_ingest", datetime(2026, 11, 1, 10, 15, tzinfo=UTC))
        assert {k for k in states if k[0] == "ingest_feed"} == {("ingest_feed", 0)}
        assert quiet_site.hits("/feed.xml") == 1
        assert busy_site.hits("/feed.xml") == 1  # not due any more
        assert _feeds_of_articles(conn) == {busy: 2, quiet: 2}

        _, states = _run(dagbag, "newsflow_ingest", datetime(2026, 11, 1, 10, 30, tzinfo=UTC))
        assert states[("ingest_feed", -1)] == "skipped"  # nothing due: no mapped task, nothing after it
        assert states[("publish", -1)] == "skipped"
        assert quiet_site.hits("/feed.xml") == 1 and busy_site.hits("/feed.xml") == 1


def test_report_dag_runs_on_the_asset_and_replaces_the_report(
    dagbag, newsflow_db, settings, conn, site, tmp_path, monkeypatch
):
    from pipeline.ingest import ingest

    ingest(settings, [serve_demo_site(site)])
    out = tmp_path / "reports" / "newsflow"
    monkeypatch.setenv("NEWSFLOW_REPORT_DIR", str(out))
    out.mkdir(parents=True)
    (out / "stale.png").write_bytes(b"old")

    run, states = _run(dagbag, "newsflow_report", datetime(2026, 11, 2, tzinfo=UTC), {"days": 36500})
    assert states == {("refresh", -1): "success"}
    result = run.get_task_instance("refresh").xcom_pull(task_ids="refresh")
    assert result["path"] == str(out / "index.html") and result["articles"] == 5 and result["statements"] > 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<img" in page and not (out / "stale.png").exists()  # swapped in whole, not merged
    assert sorted(p.name for p in out.parent.iterdir()) == ["newsflow"]  # no temporary directory left


def _make_due(conn: psycopg.Connection, feed_url: str) -> None:
    conn.execute("UPDATE feeds SET next_poll_at = now() - interval '1 second' WHERE url = %s", (feed_url,))


def _feeds_of_articles(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT f.url, count(DISTINCT fi.article_id) FROM feed_items fi JOIN feeds f ON f.id = fi.feed_id "
        "WHERE fi.article_id IS NOT NULL GROUP BY f.url"
    ).fetchall()
    return dict(rows)


def _asset_events(run) -> list[dict]:
    """Extras of the asset events this DAG run's tasks emitted, from Airflow's metadata database."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.source_dag_id == run.dag_id, AssetEvent.source_run_id == run.run_id)
        ).all()
        return [event.extra for event in events]


def test_backfill_dag_loads_exactly_the_items_in_the_window(dagbag, newsflow_db, settings, conn, site):
    from pipeline.ingest import ingest

    feed_url = serve_history_site(site)
    ingest(settings, [feed_url])  # the daily run already stored the live feed's two items
    before = article_paths(site)
    conf = {"feed": feed_url, "since": SINCE, "until": UNTIL}

    _run(dagbag, "newsflow_backfill", datetime(2025, 11, 1, tzinfo=UTC), conf)
    stored = {r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles")}
    assert stored == set(IN_WINDOW) | {"current-nov"}
    fetched = article_paths(site)
    assert fetched["current-oct"] == before["current-oct"] == 1  # stored already: not fetched again
    assert {slug for slug, n in fetched.items() if n} == stored
    assert site.hits("/archive/2025-08.xml") == 0  # the chain stops once pages predate the window
    assert site.hits("/sitemap-2025-08.xml") == 0  # so does a child sitemap last modified before it
    assert _runs(conn)[-1] == ("backfill", "succeeded", 4, 4, 0, 0, 1)
    counts = table_counts(conn)

    _run(dagbag, "newsflow_backfill", datetime(2025, 11, 1, tzinfo=UTC), conf)
    assert table_counts(conn) == counts
    assert article_paths(site) == fetched
    assert _runs(conn)[-1] == ("backfill", "succeeded", 0, 0, 0, 0, 5)


def test_backfill_dag_without_params_covers_its_data_interval(dagbag, newsflow_db, conn, site):
    feed_url = serve_history_site(site)
    store.register_feed(conn, feed_url)  # enabled feeds are backfilled when no feed is given
    _run(dagbag, "newsflow_backfill", datetime(2025, 10, 9, tzinfo=UTC))  # interval: 8 October
    stored = [r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles")]
    assert stored == ["sitemap-oct-08"]


def test_reprocess_dag_follows_a_rule_change_without_refetching(dagbag, newsflow_db, settings, conn, site):
    """Rows stamped by older rules are redone by the DAG from stored HTML; nothing is fetched.

    Reprocessing runs in the page workers (fresh processes), so older rules are represented
    by older version stamps and rows that differ from what the current rules give.
    """
    from pipeline import analyse
    from pipeline.ingest import ingest

    feed_url = serve_demo_site(site)
    ingest(settings, [feed_url])
    before = conn.execute("SELECT article_id, kind, quote FROM statements ORDER BY 1, 3").fetchall()
    assert any(kind == "indirect" for _, kind, _ in before)
    raw = conn.execute("SELECT id, raw_html, text FROM articles ORDER BY id").fetchall()
    requests = list(site.requests)

    # As an older rule version left them: no indirect speech, an older stamp.
    conn.execute("DELETE FROM statements WHERE kind = 'indirect'")
    conn.execute("UPDATE statements SET extractor_version = 'statements-0'")
    conn.execute("UPDATE articles SET nlp_version = 'statements-0'")
    _run(dagbag, "newsflow_reprocess", datetime(2026, 11, 2, tzinfo=UTC))

    after = conn.execute("SELECT article_id, kind, quote FROM statements ORDER BY 1, 3").fetchall()
    assert after == before
    current = analyse.NLP_VERSION
    assert {r[0] for r in conn.execute("SELECT DISTINCT extractor_version FROM statements")} == {current}
    assert {r[0] for r in conn.execute("SELECT DISTINCT nlp_version FROM articles")} == {current}
    assert conn.execute("SELECT id, raw_html, text FROM articles ORDER BY id").fetchall() == raw
    assert site.requests == requests  # nothing fetched
    assert _runs(conn)[-1] == ("reprocess", "succeeded", 5, 5, 0, 0, 0)

    runs = len(_runs(conn))
    _run(dagbag, "newsflow_reprocess", datetime(2026, 11, 2, tzinfo=UTC))  # nothing is outdated now
    assert len(_runs(conn)) == runs
    assert site.requests == requests


def test_database_url_from_the_airflow_connection_or_the_environment(airflow_env, monkeypatch):
    from pipeline import tasks

    monkeypatch.setenv(
        "AIRFLOW_CONN_NEWSFLOW_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "db",
                "port": 5432,
                "login": "nf",
                "password": "s3:cr@t",
                "schema": "newsflow",
                "extra": {"sslmode": "require", "cursor": "dictcursor"},
            }
        ),
    )
    assert tasks.airflow_database_url() == "postgresql://nf:s3%3Acr%40t@db:5432/newsflow?sslmode=require"
    monkeypatch.setenv("AIRFLOW_CONN_NEWSFLOW_DB", "postgresql://u:p@other:6543/nf2")
    assert tasks.airflow_database_url() == "postgresql://u:p@other:6543/nf2"
    monkeypatch.delenv("AIRFLOW_CONN_NEWSFLOW_DB")
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", "postgresql://fallback/db")
    assert tasks.airflow_database_url() == "postgresql://fallback/db"
    monkeypatch.delenv("NEWSFLOW_DATABASE_URL")
    with pytest.raises(tasks.NoDatabase, match="AIRFLOW_CONN_NEWSFLOW_DB"):
        tasks.airflow_database_url()


# --- newsflow_archive_backfill ---------------------------------------------------------------


def test_archive_dag_shape(dagbag):
    dag = dagbag.dags["newsflow_archive_backfill"]
    assert dag.schedule is None and dag.max_active_runs == 1
    assert {"plan", "load_file", "reconcile"} == set(dag.task_ids)
    assert dag.get_task("load_file").upstream_task_ids == {"plan"}
    assert dag.get_task("load_file").max_active_tis_per_dagrun >= 1
    assert {"month", "paths", "domains", "since", "until", "language"} <= set(dag.params.keys())


def test_archive_dag_maps_a_cc_news_month_one_task_per_file(dagbag, newsflow_db, conn, site, tmp_path):
    from .test_warc import DOMAIN, IN_WINDOW, KILL_PAGES, CommonCrawl, members, mixed_warc, response

    first = tmp_path / "CC-NEWS-20221101000000-00001.warc.gz"
    mixed_warc(first)
    second = tmp_path / "CC-NEWS-20221115000000-00002.warc.gz"
    second.write_bytes(b"".join(members([response(p) for p in KILL_PAGES[:4]])))
    CommonCrawl(site, {first.name: first.read_bytes(), second.name: second.read_bytes()})
    conf = {
        "month": "2022-11",
        "cc_news_base": site.base,
        "domains": [DOMAIN],
        "since": "2022-11-01",
        "until": "2022-11-30",
    }
    run, states = _run(dagbag, "newsflow_archive_backfill", datetime(2022, 12, 1, tzinfo=UTC), conf)
    assert sorted(i for t, i in states if t == "load_file") == [0, 1]  # one mapped task per file
    stored = {r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles")}
    assert {p.slug for p in IN_WINDOW} | {p.slug for p in KILL_PAGES[:4]} <= stored
    assert [r[0] for r in conn.execute("SELECT state FROM archive_files ORDER BY position")] == ["done", "done"]
    counts, requests = table_counts(conn), len(site.requests)

    _run(dagbag, "newsflow_archive_backfill", datetime(2022, 12, 2, tzinfo=UTC), conf)
    assert table_counts(conn) == counts
    assert len(site.requests) == requests  # the month is final and done: nothing fetched


def test_archive_dag_refuses_bad_params(dagbag, newsflow_db):
    dag = dagbag.dags["newsflow_archive_backfill"]
    conf = {**PARAM_DEFAULTS["newsflow_archive_backfill"], "month": "2022-11", "paths": ["/tmp/x.warc.gz"]}
    run = dag.test(logical_date=datetime(2022, 12, 3, tzinfo=UTC), run_conf=conf)
    assert run.state == "failed"
