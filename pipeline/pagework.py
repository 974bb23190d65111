"""Pages' CPU-bound work, as run inside a worker process: extract, then analyse.

Pure apart from loading the spaCy model once per process. A task is a chunk of pages:
each page is extracted on its own clock, then the chunk's English texts go through spaCy
together (``nlp.pipe``: identical annotations, a few per cent less CPU than one call per
text, fewer round trips to the parent) inside a memory zone, so the strings and lexemes
a document adds to the model's vocabulary are freed with it and a long run's memory stays
flat. Each page's result travels back as a ``PageOutcome`` (plain data: exceptions with
extra fields do not survive pickling).

An NLP failure does not lose the page: the outcome keeps the extracted text with an
``Analysis`` whose ``error`` says what failed, and the article is stored with its analysis
pending. Only fetch and extraction failures leave no article.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spacy.tokens import Doc

from .analyse import Analysis, analyse_doc, needs_nlp
from .extract import Extracted, extract_article
from .nlp import clip_text, load_model
from .reasons import ItemError
from .workers import WorkerPool, kept_pool, report_stage

STARTUP_TIMEOUT = 300.0  # a fresh worker imports trafilatura and spaCy before its first stage


def shared_pool(task_fn: Callable[[Any], Any], settings, stage_timeouts: dict[str, float]) -> WorkerPool:  # noqa: ANN001 - Settings
    """The kept pool of ``settings.nlp_workers`` workers running ``task_fn`` (``workers.kept_pool``)."""
    return kept_pool(
        task_fn,
        settings.nlp_workers,
        timeout=STARTUP_TIMEOUT,
        max_rss_bytes=settings.limits.worker_max_rss_bytes,
        stage_timeouts=stage_timeouts,
        nice=settings.worker_nice,
    )


def page_pool(settings) -> WorkerPool:  # noqa: ANN001 - Settings, imported lazily to keep workers light
    """The pool of page workers: extraction and NLP, each stage under its own time limit."""
    limits = settings.limits
    return shared_pool(run_task, settings, {"extraction": limits.extraction_timeout, "nlp": limits.nlp_timeout})


@dataclass(frozen=True)
class PageTask:
    html: bytes
    url: str
    spacy_model: str
    nlp_max_chars: int
    extracted: Extracted | None = None  # given when only the NLP stage is to run
    nlp_error: str | None = None  # NLP already failed on this page (the worker died): extract only


@dataclass(frozen=True)
class PageOutcome:
    """One page's result: its text and analysis, or why it has none (a reason code)."""

    extracted: Extracted | None = None
    analysis: Analysis | None = None
    reason: str | None = None
    message: str = ""
    transient: bool = False

    @property
    def error(self) -> ItemError | None:
        if self.reason is None:
            return None
        return ItemError(self.reason, self.message, transient=self.transient)


@dataclass(frozen=True)
class Chunk:
    """Pages for one worker task; an empty chunk only loads the model (a warm-up)."""

    pages: tuple[PageTask, ...]
    spacy_model: str


@dataclass
class ChunkResult:
    results: list[PageOutcome]
    seconds: dict[str, float] = field(default_factory=dict)  # per stage: extract, nlp, statements


_WARM_PAGE = (
    b"<html><body><article><p>"
    + b"The council said on Monday that the new bridge would open in the spring after two years of work. " * 4
    + b"</p></article></body></html>"
)
_warm: list[bool] = []


def _warm_up() -> None:
    """First-call costs (language model, parsers' caches) belong to start-up, not to a page."""
    if not _warm:
        report_stage("loading")
        with contextlib.suppress(ItemError):
            extract_article(_WARM_PAGE, "http://warm.up/")
        _warm.append(True)


def run_task(task: Chunk | PageTask) -> ChunkResult | PageOutcome:
    """The page workers' task: a chunk of pages, or one page on its own."""
    return process_chunk(task) if isinstance(task, Chunk) else process_page(task)


def process_page(task: PageTask) -> PageOutcome:
    """One page on its own (a chunk of one)."""
    return process_chunk(Chunk((task,), task.spacy_model)).results[0]


def _error(exc: ItemError) -> PageOutcome:
    return PageOutcome(reason=exc.reason, message=exc.message, transient=exc.transient)


def _nlp_failed(extracted: Extracted, exc: Exception) -> PageOutcome:
    """The page keeps its text; its analysis is marked failed, to be completed later."""
    return PageOutcome(extracted, Analysis(error=f"nlp_failed: {type(exc).__name__}: {exc}"[:500]))


def process_chunk(chunk: Chunk) -> ChunkResult:
    """Extract each page, then analyse the English ones together; one page's failure is its own.

    Stages are reported with the page's index in the chunk, so a worker killed while
    extracting names the page that hung it. The NLP of the whole chunk runs on one page's
    clock: a chunk that overruns it is retried page by page by the caller.
    """
    _warm_up()
    if not chunk.pages:
        report_stage("loading")
        with contextlib.suppress(Exception):  # a missing model fails each page's task instead
            load_model(chunk.spacy_model)
        return ChunkResult([])
    results: list[PageOutcome | None] = [None] * len(chunk.pages)
    seconds = {"extract": 0.0, "nlp": 0.0, "statements": 0.0}
    todo: list[tuple[int, Extracted, str]] = []
    for i, task in enumerate(chunk.pages):
        extracted = task.extracted
        if extracted is None:
            report_stage("extraction", i)
            started = time.perf_counter()
            try:
                extracted = extract_article(task.html, task.url)
            except ItemError as exc:
                results[i] = _error(exc)
                continue
            finally:
                seconds["extract"] += time.perf_counter() - started
        skip = needs_nlp(extracted.language)
        if task.nlp_error is not None:
            results[i] = PageOutcome(extracted, Analysis(error=task.nlp_error))
        elif skip is not None:
            results[i] = PageOutcome(extracted, Analysis(skipped=skip))
        else:
            todo.append((i, extracted, clip_text(extracted.text, task.nlp_max_chars)))
    if todo:
        report_stage("loading")  # loading the model is start-up, not this chunk's NLP time
        nlp = load_model(chunk.spacy_model)
        report_stage("nlp")
        with nlp.memory_zone():  # the docs' new strings and lexemes are freed on exit
            started = time.perf_counter()
            docs: list[Doc | Exception]
            try:
                docs = list(nlp.pipe([text for _, _, text in todo], batch_size=len(todo)))
            except Exception:  # noqa: BLE001 - find the document that fails, alone
                docs = []
                for _, _, text in todo:
                    try:
                        docs.append(nlp(text))
                    except Exception as exc:  # noqa: BLE001 - recorded as the item's reason
                        docs.append(exc)
            seconds["nlp"] += time.perf_counter() - started
            started = time.perf_counter()
            for (i, extracted, _text), doc in zip(todo, docs, strict=True):
                if isinstance(doc, Exception):
                    results[i] = _nlp_failed(extracted, doc)
                    continue
                report_stage("nlp", i)
                try:
                    results[i] = PageOutcome(extracted, analyse_doc(doc))
                except Exception as exc:  # noqa: BLE001 - any NLP crash is this item's failure
                    results[i] = _nlp_failed(extracted, exc)
            seconds["statements"] += time.perf_counter() - started
    assert all(r is not None for r in results)
    return ChunkResult(results, seconds)  # type: ignore[arg-type]
