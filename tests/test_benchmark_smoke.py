"""The throughput benchmark runs end to end in a small configuration and prints its figures.

A smoke check only: nothing here is about how fast anything is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import AEB_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_benchmark_prints_its_figures(pg_server: str, tmp_path: Path):
    if not (AEB_DIR / "ground-truth.json").exists():
        pytest.skip(f"AEB pages not found under {AEB_DIR}")
    out = tmp_path / "figures.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--n", "100", "--hosts", "4"]
    command += ["--min-delay", "0.05", "--server", pg_server, "--aeb", str(AEB_DIR), "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    for figure in [
        r"\(1\) raw floor",
        r"100 pages \(\d+ English\) in [\d.]+ s",
        r"[\d.]+ pages/s, [\d,]+ words/s",
        r"\(2\) newsflow end to end",
        r"100 items in [\d.]+ s: [\d.]+ pages/s, [\d.]+ stored articles/s, [\d,]+ words/s",
        r"RATIO \(2\)/\(1\): [\d.]+",
        r"time per stage.*fetch [\d.]+ s.*extract [\d.]+ s.*nlp [\d.]+ s.*statements [\d.]+ s.*store [\d.]+ s",
        r"peak RSS: parent \d+ MB; workers \d+ MB",
        r"rows written: [\d,]+ \([\d,]+ rows/s\)",
        r"newsflow \(text stored\) +P [\d.]+ +R [\d.]+ +F1 [\d.]+",
        r"trafilatura.extract, default options +P [\d.]+ +R [\d.]+ +F1 [\d.]+",
    ]:
        assert re.search(figure, text), f"{figure!r} not in:\n{text}"
    figures = json.loads(out.read_text())
    summary = figures["newsflow"]["summary"]
    assert summary["status"] == "succeeded" and summary["seen"] == 100
    assert summary["stored"] + summary["duplicate"] + summary["quarantined"] == 100
    assert figures["newsflow"]["rows"]["articles"] == summary["stored"]
