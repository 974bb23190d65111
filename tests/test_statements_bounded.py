"""Statement analysis stays linear in the length of one paragraph (issue 13).

One paragraph, or one giant sentence, full of reporting verbs, quotes, pronouns, names or
"according to" made the analysis quadratic: every verb walked the rest of its sentence in
spaCy, every pronoun searched back through every mention, every quote through every verb.
A 300,000-character paragraph ran into the NLP time limit and the article was lost.

Tests never assert time. They count work, deterministically: the lines of Python run in
the statement modules plus the tokens the analysis asks of the Doc (spaCy's own walks
over children and subtrees ask for them too). Doubling the text must multiply that work
by less than ``MAX_GROWTH``: linear work doubles (1.96 to 1.99 times here); the quadratic
code's grew 2.5 to 4 times from 6,000 to 12,000 characters (all shapes but "sentences",
which was linear already). benchmarks/statements_scaling.py prints the seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from spacy.language import Language
from spacy.tokens import Doc

import pipeline.quotes
import pipeline.statements
from pipeline.analyse import analyse_doc

MAX_GROWTH = 2.3
SIZE = 6_000  # characters; the work is measured at SIZE and 2 * SIZE
STATEMENT_MODULES = {str(Path(m.__file__).resolve()) for m in (pipeline.statements, pipeline.quotes)}

SHAPES: dict[str, Callable[[int], str]] = {
    # The paragraph: "word1 said the official word2 said the official ...", one sentence.
    "one sentence": lambda i: f"word{i} said the official",
    "sentences": lambda i: f"word{i} said the official.",
    "quotes": lambda i: f'"word{i} rose," {"he" if i % 2 else "she"} said.',
    "pronouns": lambda i: f"{'He' if i % 2 else 'She'} said word{i} rose.",
    "according to": lambda i: f"word{i} rose, according to the official.",
    "names": lambda i: f"Ana Ruiz{i} said word{i} rose.",
}


class _CountingDoc(Doc):
    """A Doc that counts the tokens and spans asked of it (spaCy's Cython asks through here too)."""

    lookups = 0

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return super().__getitem__(key)


def _paragraph(shape: Callable[[int], str], chars: int) -> str:
    parts: list[str] = []
    total = 0
    while total < chars:
        parts.append(shape(len(parts)))
        total += len(parts[-1]) + 1
    return " ".join(parts)[:chars]


def _work(nlp: Language, text: str) -> int:
    """Lines run in the statement modules plus tokens looked up, for one analysis of ``text``."""
    doc = _CountingDoc(nlp.vocab).from_bytes(nlp(text).to_bytes())
    lines = 0

    def count(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal lines
        if event == "line":
            lines += 1
        return count

    def calls(frame, event, arg):  # type: ignore[no-untyped-def]
        return count if frame.f_code.co_filename in STATEMENT_MODULES else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        analyse_doc(doc)
    finally:
        sys.settrace(previous)
    return lines + doc.lookups


def test_counting_doc_sees_spacy_walks(nlp: Language) -> None:
    """The instrument counts the tokens spaCy hands out when it walks a subtree."""
    doc = _CountingDoc(nlp.vocab).from_bytes(
        nlp("The minister said the plan that the council backed would fail.").to_bytes()
    )
    root = next(t for t in doc if t.dep_ == "ROOT")
    before = doc.lookups
    walked = len(list(root.subtree))
    assert doc.lookups - before >= walked - 1


@pytest.mark.parametrize("shape", list(SHAPES))
def test_doubling_a_paragraph_doubles_the_work(nlp: Language, shape: str) -> None:
    small = _work(nlp, _paragraph(SHAPES[shape], SIZE))
    large = _work(nlp, _paragraph(SHAPES[shape], 2 * SIZE))
    assert large < MAX_GROWTH * small, f"{shape}: work {small} at {SIZE} characters, {large} at {2 * SIZE}"


def test_acronyms_are_matched_without_comparing_every_pair(monkeypatch) -> None:
    """An article with many acronyms and many names: each name's initials are read once."""
    from pipeline import entities

    calls = {"n": 0}
    real = entities._initials

    def counting(name: str) -> str:
        calls["n"] += 1
        return real(name)

    monkeypatch.setattr(entities, "_initials", counting)

    def run(n: int) -> int:
        calls["n"] = 0
        clusters = {}
        for i in range(n):
            clusters[2 * i] = entities.Cluster(2 * i, "ORG", f"Global United Trading Company{i} Group")
            clusters[2 * i + 1] = entities.Cluster(2 * i + 1, "ORG", "ABC")
        entities._merge_acronyms(clusters)
        return calls["n"]

    assert run(400) < 2.3 * run(200)  # linear; comparing every pair was 4 times the work
