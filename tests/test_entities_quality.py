"""Cross-document coreference floors on the MEANTIME gold (benchmarks/eval_entities.py prints the figures).

The corpus is read in place from ../shared/data/meantime-en (CC BY 4.0); without it the test
is skipped, as the statement floors are without the AEB data.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .conftest import SHARED

MEANTIME = SHARED / "data" / "meantime-en"
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_entities.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("eval_entities", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (MEANTIME / "meantime.conll").exists(), reason="MEANTIME data not present")
def test_meantime_cross_document_floors(database_url, nlp):
    scores = _benchmark().evaluate_meantime(database_url, nlp, "given", 1)
    # Before issue 14 (exact-name linking): B3 0.737, CoNLL 0.724; now B3 0.833, CoNLL 0.778.
    assert scores["B3"] >= 0.81
    assert scores["CoNLL"] >= 0.76


def test_coreference_scores_on_a_known_case():
    bench = _benchmark()
    key = [{1, 2, 3}, {4, 5}]
    response = [{1, 2}, {3, 4, 5}]
    r, p = bench.muc(key, response)
    assert (round(r, 3), round(p, 3)) == (0.667, 0.667)
    r, p = bench.b_cubed(key, response)
    assert round(r, 3) == round((2 / 3 * 2 + 1 / 3 + 1 + 1) / 5, 3)
    r, p = bench.ceaf_e(key, [set(c) for c in key])
    assert (r, p) == (1.0, 1.0)
