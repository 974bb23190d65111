"""Issue 13, item 11: every numeric option of the command line has a range.

A value outside it is a usage error (one line, exit status 2) before anything runs; it used to
reach PostgreSQL (`search x --limit 99999999999999999999` ended in "unexpected error
(NumericValueOutOfRange)") or a timer (`tail --timeout nan`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import db
from pipeline.cli import build_parser, main

HUGE = "99999999999999999999"

OUT_OF_RANGE = [
    (["search", "x", "--limit", HUGE], "--limit"),
    (["search", "x", "--limit", "0"], "--limit"),
    (["search", "x", "--since", HUGE + "d"], "--since"),
    (["search", "x", "--since", "999999999w"], "--since"),
    (["quotes", "--speaker", "Peskov", "--limit", HUGE], "--limit"),
    (["quotes", "--speaker", "Peskov", "--limit", "-3"], "--limit"),
    (["status", "--runs", HUGE], "--runs"),
    (["status", "--runs", "0"], "--runs"),
    (["tail", "--limit", HUGE], "--limit"),
    (["tail", "--limit", "0"], "--limit"),
    (["tail", "--timeout", "nan"], "--timeout"),
    (["tail", "--timeout", "inf"], "--timeout"),
    (["tail", "--timeout", "-1"], "--timeout"),
    (["tail", "--timeout", "1e400"], "--timeout"),
    (["run", "--poll-min", "1e308"], "--poll-min"),
    (["run", "--poll-min", "0"], "--poll-min"),
    (["run", "--poll-max", "nan"], "--poll-max"),
    (["run", "--poll-max", HUGE], "--poll-max"),
    (["run", "--duration", "inf"], "--duration"),
    (["run", "--duration", "-5"], "--duration"),
    (["run", "--duration", "1" * 5000], "--duration"),  # longer than int() converts
]


@pytest.mark.parametrize(("argv", "option"), OUT_OF_RANGE)
def test_out_of_range_numbers_are_usage_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"newsflow {argv[0]}: error: argument {option}")
    assert len(last) < 200, last


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "x", "--limit", "1"],
        ["search", "x", "--limit", "100000", "--since", "2w"],
        ["quotes", "--speaker", "Peskov", "--limit", "50"],
        ["status", "--runs", "10"],
        ["tail", "--limit", "5", "--timeout", "0.5"],
        ["run", "--poll-min", "0.5", "--poll-max", "86400", "--duration", "120"],
    ],
)
def test_numbers_in_range_are_accepted(argv):
    build_parser().parse_args(argv)


def test_search_with_a_huge_limit_through_the_command(database_url):
    """The issue's command, end to end: a usage error, not a query that overflows."""
    with db.connect(database_url) as conn:
        db.upgrade(conn)
    env = {**os.environ, "NEWSFLOW_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "search", "x", "--limit", HUGE],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 2
    assert "unexpected error" not in done.stderr and "Traceback" not in done.stderr
    assert "argument --limit: a whole number from 1 to 100000 expected" in done.stderr.splitlines()[-1]
    assert done.stdout == ""


def test_search_at_the_bound_still_runs(database_url, monkeypatch, capsys):
    with db.connect(database_url) as conn:
        db.upgrade(conn)
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    assert main(["search", "x", "--limit", "100000"]) == 0
    assert "unexpected error" not in capsys.readouterr().err
