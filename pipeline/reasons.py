"""The fixed set of reason codes an item can be quarantined with (RELIABILITY.md, I4).

``TRANSIENT`` reasons are retried by later runs; the others are final until an operator
asks for a retry.
"""

from __future__ import annotations

from .clean import clean_text

REASONS: dict[str, str] = {
    "http_status": "the server answered with an HTTP error status",
    "timeout": "the fetch did not finish within its time limit",
    "connection": "the connection failed or was reset",
    "too_large": "the body exceeded the size or decompression cap",
    "not_html": "the page is not HTML (PDF, image, video ...)",
    "blocked_address": "the link resolves to a non-public address",
    "bad_url": "the link is missing, malformed or not http(s)",
    "too_many_redirects": "the redirect limit was exceeded",
    "robots": "robots.txt disallows fetching the page",
    "feed_malformed": "the feed is not a parseable RSS/Atom document",
    "extraction_empty": "no article text was found on the page",
    "extraction_failed": "text extraction crashed or ran out of time",
    "nlp_failed": "entity or statement extraction failed",
    "db_rejected": "the database refused the article",
    "too_many_items": (
        "the feed lists more items than are read from one document (NEWSFLOW_MAX_ITEMS_PER_FEED);"
        " the rest are counted on the feed, not read"
    ),
    "internal_error": "newsflow failed unexpectedly on this item or feed (a bug: the message says where)",
}

TRANSIENT = {"timeout", "connection", "extraction_failed", "nlp_failed", "internal_error"}


class ItemError(Exception):
    """An item cannot be stored; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str, *, transient: bool | None = None):
        assert reason in REASONS, reason
        message = clean_text(message, 2000) or ""  # messages quote what came from outside
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.transient = reason in TRANSIENT if transient is None else transient
        self.status: int | None = None  # the HTTP status, for http_status errors
        self.retry_after: float | None = None  # seconds the server asked us to wait
