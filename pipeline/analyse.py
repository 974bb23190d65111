"""Article text to entities and statements: the pure NLP stage.

English-only: other languages are stored with their language and skipped here with a
reason (RELIABILITY.md C2.17). Text beyond the NLP character cap is not analysed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spacy.tokens import Doc

from .entities import Cluster, Mention, find_mentions
from .statements import EXTRACTOR_VERSION, Statement, extract_statements

NLP_VERSION = EXTRACTOR_VERSION


@dataclass
class Analysis:
    mentions: list[Mention] = field(default_factory=list)
    clusters: dict[int, Cluster] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)
    skipped: str | None = None  # why no NLP ran (e.g. "not_english")
    error: str | None = None  # why NLP failed ("nlp_failed: ..."): the article is stored without it
    version: str = NLP_VERSION


def needs_nlp(language: str | None) -> str | None:
    """The reason to skip NLP for this language, or None to run it."""
    if language not in (None, "en"):
        return "not_english"
    return None


def analyse_doc(doc: Doc) -> Analysis:
    mentions, clusters = find_mentions(doc)
    statements = extract_statements(doc, mentions, clusters)
    # The version is read when the analysis runs, so a bumped rule version marks new rows.
    return Analysis(mentions=mentions, clusters=clusters, statements=statements, version=NLP_VERSION)
