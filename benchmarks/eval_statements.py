"""Print statement and entity extraction figures on the hand-annotated development set.

    python benchmarks/eval_statements.py [--errors N] [--model en_core_web_sm]

Compares newsflow with a regex baseline of direct quotes run the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.analyse import analyse_doc  # noqa: E402
from pipeline.evaluation import evaluate, from_statements, load_cases, regex_baseline, report  # noqa: E402
from pipeline.nlp import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT / "tests" / "cases" / "statements")
    parser.add_argument("--aeb", type=Path, default=ROOT.parent / "shared" / "data" / "aeb")
    parser.add_argument("--model", default="en_core_web_sm")
    parser.add_argument("--errors", type=int, default=0, help="print this many error lines")
    args = parser.parse_args()

    cases = load_cases(args.cases, args.aeb)
    nlp = load_model(args.model)

    def newsflow(text: str):
        analysis = analyse_doc(nlp(text))
        mentions = [(m.start, m.end, analysis.clusters[m.cluster].name) for m in analysis.mentions]
        return from_statements(analysis.statements), mentions

    started = time.perf_counter()
    ours = evaluate(cases, newsflow)
    elapsed = time.perf_counter() - started
    base = evaluate(cases, regex_baseline)
    print(f"development set: {len(cases)} articles from {args.cases.relative_to(ROOT)}; model {args.model}")
    print(report(f"newsflow ({elapsed:.1f} s)", ours))
    print(report("regex baseline (direct quotes, adjacent 'X said')", base))
    for line in ours.errors[: args.errors]:
        print("  ", line)


if __name__ == "__main__":
    main()
