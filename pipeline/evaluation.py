"""Scoring statement and entity extraction against hand-annotated articles.

Cases live in ``tests/cases/statements/`` (see its GUIDELINE.md): offsets and speaker
names only, the text is read from ../shared at run time. ``benchmarks/eval_statements.py``
prints the figures; tests use the same scoring to guard against regressions.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .statements import Statement

_EDGE = " \t\n\"'“”‘’„«».,;:!?—–-()"


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class GoldStatement:
    kind: str
    quote: Span
    speaker: str | None
    speaker_mention: Span | None
    cue: Span | None


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    statements: list[GoldStatement]
    people: dict[str, list[Span]]


@dataclass(frozen=True)
class Predicted:
    kind: str
    quote: Span
    speaker: str | None
    cue: Span | None


def load_cases(cases_dir: Path, aeb_dir: Path) -> list[Case]:
    truth = json.loads((aeb_dir / "ground-truth.json").read_text(encoding="utf-8"))
    cases = []
    for path in sorted(cases_dir.glob("aeb_*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        text = truth[data["id"]]["articleBody"]
        statements = [
            GoldStatement(
                kind=s["kind"],
                quote=Span(s["quote_start"], s["quote_end"]),
                speaker=s.get("speaker"),
                speaker_mention=Span(s["speaker_start"], s["speaker_end"])
                if s.get("speaker_start") is not None
                else None,
                cue=Span(s["cue_start"], s["cue_end"]) if s.get("cue_start") is not None else None,
            )
            for s in data["statements"]
        ]
        people = {p["name"]: [Span(a, b) for a, b in p["mentions"]] for p in data.get("people", [])}
        cases.append(Case(path.stem, text, statements, people))
    return cases


def from_statements(statements: Iterable[Statement]) -> list[Predicted]:
    return [
        Predicted(
            s.kind,
            Span(s.quote_start, s.quote_end),
            s.speaker if s.speaker_cluster is not None else None,
            Span(s.cue_start, s.cue_end) if s.cue_start is not None and s.cue_end is not None else None,
        )
        for s in statements
    ]


def _trimmed(text: str, span: Span) -> tuple[int, int]:
    s, e = span.start, span.end
    while s < e and text[s] in _EDGE:
        s += 1
    while e > s and text[e - 1] in _EDGE:
        e -= 1
    return s, e


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _name(name: str | None) -> str | None:
    if name is None:
        return None
    return re.sub(r"\s+", " ", name.replace("’", "'")).strip().casefold() or None


def same_speaker(gold: str | None, predicted: str | None) -> bool:
    """Equal names, or one name ending with the other ("Trump" = "Donald Trump").

    Annotators sometimes wrote a fuller name than the article gives, or kept a leading
    "the"/possessive; those are the same speaker.
    """
    a, b = _name(gold), _name(predicted)
    if a is None or b is None:
        return a == b
    a = re.sub(r"^the ", "", a)
    b = re.sub(r"^the ", "", b)
    short, long = sorted((a.split(), b.split()), key=len)
    return short == long[len(long) - len(short) :]


@dataclass
class Scores:
    gold: int = 0
    predicted: int = 0
    matched_overlap: int = 0
    matched_exact: int = 0
    speaker_correct: int = 0
    cue_gold: int = 0
    cue_predicted: int = 0
    cue_matched: int = 0
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    person_mentions: int = 0
    person_found: int = 0
    person_linked: int = 0
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def _f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r else 0.0

    def prf(self, matched: int) -> tuple[float, float, float]:
        p = matched / self.predicted if self.predicted else 0.0
        r = matched / self.gold if self.gold else 0.0
        return p, r, self._f1(p, r)

    @property
    def speaker_accuracy(self) -> float:
        return self.speaker_correct / self.matched_overlap if self.matched_overlap else 0.0

    def cue_prf(self) -> tuple[float, float, float]:
        p = self.cue_matched / self.cue_predicted if self.cue_predicted else 0.0
        r = self.cue_matched / self.cue_gold if self.cue_gold else 0.0
        return p, r, self._f1(p, r)


def score_case(case: Case, predicted: list[Predicted], scores: Scores, mentions=None) -> None:
    """Add one article's comparison to ``scores``: greedy one-to-one matching by overlap."""
    text = case.text
    gold_spans = [_trimmed(text, g.quote) for g in case.statements]
    pred_spans = [_trimmed(text, p.quote) for p in predicted]
    pairs = []
    for gi, g in enumerate(gold_spans):
        for pi, p in enumerate(pred_spans):
            ov = _overlap(g, p)
            shorter = min(g[1] - g[0], p[1] - p[0])
            if shorter > 0 and ov >= 0.5 * shorter:
                pairs.append((ov, gi, pi))
    pairs.sort(reverse=True)
    used_g: set[int] = set()
    used_p: set[int] = set()
    scores.gold += len(gold_spans)
    scores.predicted += len(pred_spans)
    for _ov, gi, pi in pairs:
        if gi in used_g or pi in used_p:
            continue
        used_g.add(gi)
        used_p.add(pi)
        gold, pred = case.statements[gi], predicted[pi]
        scores.matched_overlap += 1
        if gold_spans[gi] == pred_spans[pi]:
            scores.matched_exact += 1
        if same_speaker(gold.speaker, pred.speaker):
            scores.speaker_correct += 1
        else:
            scores.errors.append(
                f"{case.name}: speaker {pred.speaker!r} should be {gold.speaker!r}: "
                f"{text[gold.quote.start : gold.quote.start + 60]!r}"
            )
        scores.kinds[(gold.kind, pred.kind)] += 1
    for gi, g in enumerate(case.statements):
        if gi not in used_g:
            scores.errors.append(f"{case.name}: missed {g.kind} {text[g.quote.start : g.quote.start + 70]!r}")
    for pi, p in enumerate(predicted):
        if pi not in used_p:
            scores.errors.append(f"{case.name}: extra {p.kind} {text[p.quote.start : p.quote.start + 70]!r}")
    gold_cues = [(c.start, c.end) for c in (g.cue for g in case.statements) if c is not None]
    pred_cues = list({(c.start, c.end) for c in (p.cue for p in predicted) if c is not None})
    scores.cue_gold += len(set(gold_cues))
    scores.cue_predicted += len(pred_cues)
    scores.cue_matched += sum(1 for g in set(gold_cues) if any(_overlap(g, p) > 0 for p in pred_cues))
    if mentions is not None:
        for name, spans in case.people.items():
            for span in spans:
                scores.person_mentions += 1
                found = [m for m in mentions if _overlap((span.start, span.end), (m[0], m[1])) > 0]
                if found:
                    scores.person_found += 1
                    if any(same_speaker(name, m[2]) for m in found):
                        scores.person_linked += 1


def report(label: str, s: Scores) -> str:
    op, orc, of1 = s.prf(s.matched_overlap)
    ep, er, ef1 = s.prf(s.matched_exact)
    cp, cr, cf1 = s.cue_prf()
    lines = [
        f"{label}",
        f"  statements: gold {s.gold}, predicted {s.predicted}",
        f"  quote overlap  P {op:.3f}  R {orc:.3f}  F1 {of1:.3f}",
        f"  quote exact    P {ep:.3f}  R {er:.3f}  F1 {ef1:.3f}",
        f"  speaker accuracy (on overlap matches) {s.speaker_accuracy:.3f}  ({s.speaker_correct}/{s.matched_overlap})",
        f"  cue            P {cp:.3f}  R {cr:.3f}  F1 {cf1:.3f}",
    ]
    if s.person_mentions:
        lines.append(
            f"  person mentions found {s.person_found / s.person_mentions:.3f}, "
            f"linked to the right canonical name {s.person_linked / s.person_mentions:.3f} "
            f"({s.person_mentions} gold mentions)"
        )
    kinds = sorted({k for pair in s.kinds for k in pair})
    if kinds:
        lines.append("  kind confusion (rows gold, columns predicted):")
        lines.append("    " + "".join(f"{k:>10}" for k in ["", *kinds]))
        for g in kinds:
            lines.append("    " + f"{g:>10}" + "".join(f"{s.kinds[(g, p)]:>10}" for p in kinds))
    return "\n".join(lines)


Extractor = Callable[[str], tuple[list[Predicted], list[tuple[int, int, str]] | None]]


def evaluate(cases: list[Case], extractor: Extractor) -> Scores:
    scores = Scores()
    for case in cases:
        predicted, mentions = extractor(case.text)
        score_case(case, predicted, scores, mentions)
    return scores


_BASELINE_QUOTE = re.compile(r"[\"“]([^\"“”\n]{10,}?)[\"”]")
_BASELINE_AFTER = re.compile(
    r"^[,\s]*(?:(?P<name1>(?:[A-Z][\w'’-]+\s?){1,3}|he|she|they)\s+(?P<cue1>said|says|added|told)"
    r"|(?P<cue2>said|says|added)\s+(?P<name2>(?:[A-Z][\w'’-]+\s?){1,3}))"
)


def regex_baseline(text: str) -> tuple[list[Predicted], None]:
    """Direct quotes only, speaker from "..., X said" / "..., said X" right after the quote."""
    out = []
    for m in _BASELINE_QUOTE.finditer(text):
        after = _BASELINE_AFTER.match(text[m.end() : m.end() + 80])
        speaker = cue = None
        if after:
            speaker = (after.group("name1") or after.group("name2") or "").strip() or None
            group = "cue1" if after.group("cue1") else "cue2"
            cue = Span(m.end() + after.start(group), m.end() + after.end(group))
        out.append(Predicted("direct", Span(m.start(1), m.end(1)), speaker, cue))
    return out, None
