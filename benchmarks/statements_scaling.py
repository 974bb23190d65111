"""Print how statement analysis scales with one long paragraph (issue 13).

    python benchmarks/statements_scaling.py [--sizes 12500,25000,50000,100000,300000] [--shapes ...]

For each shape and size: the seconds spaCy takes to parse the text (the floor any
analysis stands on) and the seconds ``analyse_doc`` (entities and statements) takes on
that parse, wall clock and CPU (on a shared machine the CPU seconds are the steadier
figure). Linear analysis stays a small fraction of the parse as the size doubles. The shapes are one paragraph made of:

* sentences   - "word1 said the official. word2 said the official. ..."
* sentence    - one giant sentence: "word1 said the official word2 said the official ..."
* quotes      - '"word1 rose," he said. "word2 rose," she said. ...'
* according   - "word1 rose, according to the official. ..."
* pronouns    - "He said word1 rose. She said word2 rose. ..."
* names       - "Ana Ruiz said word0 rose, Ruiz told reporters. Bo Ruiz said word1 rose, Chen told ..."
* quotes-run  - one sentence: '"word1 rose," he said and "word2 rose," she said and ...'
* according-run - one sentence: "word1 rose according to the official and word2 rose ..."
* open-quote  - a quote opened on every line and never closed, over thousands of lines

The one-paragraph shapes but "sentences" took quadratic time before issue 13; so did the
one-sentence ones. ``--shapes all`` runs every shape.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.analyse import analyse_doc  # noqa: E402
from pipeline.nlp import load_model  # noqa: E402

_SURNAMES = ["Ruiz", "Chen", "Okafor", "Larsen", "Haddad", "Novak", "Silva", "Tanaka"]
_GIVEN = ["Ana", "Bo", "Chidi", "Dag", "Elias", "Freya", "Gus", "Hana"]


def _repeat(make: Callable[[int], str], chars: int, sep: str = " ") -> str:
    parts: list[str] = []
    total = 0
    i = 0
    while total < chars:
        part = make(i)
        parts.append(part)
        total += len(part) + len(sep)
        i += 1
    return sep.join(parts)[:chars]


SHAPES: dict[str, Callable[[int], str]] = {
    "sentences": lambda n: _repeat(lambda i: f"word{i} said the official.", n),
    "sentence": lambda n: _repeat(lambda i: f"word{i} said the official", n),
    "quotes": lambda n: _repeat(lambda i: f'"word{i} rose," {"he" if i % 2 else "she"} said.', n),
    "according": lambda n: _repeat(lambda i: f"word{i} rose, according to the official.", n),
    "pronouns": lambda n: _repeat(lambda i: f"{'He' if i % 2 else 'She'} said word{i} rose.", n),
    "names": lambda n: _repeat(
        lambda i: f"{_GIVEN[i % 8]} {_SURNAMES[i // 8 % 8]} said word{i} rose, {_SURNAMES[i % 8]} told reporters.",
        n,
    ),
    "quotes-run": lambda n: _repeat(lambda i: f'"word{i} rose," {"he" if i % 2 else "she"} said and', n),
    "according-run": lambda n: _repeat(lambda i: f"word{i} rose according to the official and", n),
    "open-quote": lambda n: _repeat(lambda i: f'"word{i} rose', n, sep="\n"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12500,25000,50000,100000,300000", help="characters, comma-separated")
    parser.add_argument(
        "--shapes", default="sentences,sentence", help=f"comma-separated, of {', '.join(SHAPES)}; or all"
    )
    parser.add_argument("--model", default="en_core_web_sm")
    args = parser.parse_args()

    nlp = load_model(args.model)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"model {args.model}; seconds, one paragraph of each shape")
    print(f"{'shape':<13} {'chars':>8} {'tokens':>7} {'parse s':>8} {'analyse s':>10} {'cpu s':>6} {'statements':>10}")
    for shape in SHAPES if args.shapes == "all" else args.shapes.split(","):
        for size in sizes:
            text = SHAPES[shape](size)
            started = time.perf_counter()
            doc = nlp(text)
            parsed = time.perf_counter() - started
            started, cpu = time.perf_counter(), time.process_time()
            analysis = analyse_doc(doc)
            analysed, cpu = time.perf_counter() - started, time.process_time() - cpu
            found = len(analysis.statements)
            print(
                f"{shape:<13} {len(text):>8} {len(doc):>7} {parsed:>8.2f} {analysed:>10.2f} {cpu:>6.2f} {found:>10}",
                flush=True,
            )


if __name__ == "__main__":
    main()
