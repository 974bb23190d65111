"""One page's CPU-bound work, as run inside a worker process: extract, then analyse.

Pure apart from loading the spaCy model once per process. Results travel back to the
parent as plain tuples (exceptions with extra fields do not survive pickling).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .analyse import Analysis, analyse_doc, needs_nlp
from .extract import Extracted, extract_article
from .nlp import clip_text, load_model
from .reasons import ItemError
from .workers import WorkerPool, report_stage

_POOLS: dict[tuple[int, float, float, int], WorkerPool] = {}
STARTUP_TIMEOUT = 300.0  # a fresh worker imports trafilatura and spaCy before its first stage


def page_pool(settings) -> WorkerPool:  # noqa: ANN001 - Settings, imported lazily to keep workers light
    """The process's pool of page workers, started on first use and kept for later runs."""
    limits = settings.limits
    key = (settings.nlp_workers, limits.extraction_timeout, limits.nlp_timeout, limits.worker_max_rss_bytes)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = WorkerPool(
            process_page,
            settings.nlp_workers,
            timeout=STARTUP_TIMEOUT,
            max_rss_bytes=limits.worker_max_rss_bytes,
            stage_timeouts={"extraction": limits.extraction_timeout, "nlp": limits.nlp_timeout},
        )
    return pool


@dataclass(frozen=True)
class PageTask:
    html: bytes
    url: str
    spacy_model: str
    nlp_max_chars: int
    extracted: Extracted | None = None  # given when only the NLP stage is to run


PageResult = tuple  # ("ok", Extracted, Analysis) or ("error", reason, message, transient)


def analyse_extracted(extracted: Extracted, spacy_model: str, nlp_max_chars: int) -> Analysis:
    """Entities and statements of extracted text, or the reason they were skipped."""
    skip = needs_nlp(extracted.language)
    if skip is not None:
        return Analysis(skipped=skip)
    nlp = load_model(spacy_model)
    return analyse_doc(nlp(clip_text(extracted.text, nlp_max_chars)))


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


def process_page(task: PageTask) -> PageResult:
    try:
        _warm_up()
        extracted = task.extracted
        if extracted is None:
            report_stage("extraction")
            extracted = extract_article(task.html, task.url)
        if needs_nlp(extracted.language) is None:
            report_stage("loading")  # loading the model is start-up, not this page's NLP time
            load_model(task.spacy_model)
        report_stage("nlp")
        try:
            analysis = analyse_extracted(extracted, task.spacy_model, task.nlp_max_chars)
        except ItemError:
            raise
        except Exception as exc:  # noqa: BLE001 - any NLP crash is this item's reason
            raise ItemError("nlp_failed", f"{type(exc).__name__}: {exc}"[:500], transient=True) from exc
    except ItemError as exc:
        return ("error", exc.reason, exc.message, exc.transient)
    return ("ok", extracted, analysis)
