"""When to poll a feed next, and how much a failure counts (pure functions).

A feed that keeps publishing is polled more often, a quiet one less, within the
configured bounds; a failing feed backs off. Hard failures count fully towards disabling
a feed, transient ones (the site was down for an hour) only a little.
"""

from __future__ import annotations

from dataclasses import dataclass

from .reasons import TRANSIENT

HARD_WEIGHT = 1.0
TRANSIENT_WEIGHT = 0.25


@dataclass(frozen=True)
class PollBounds:
    min_seconds: float = 300.0
    max_seconds: float = 86_400.0
    default_seconds: float = 3_600.0

    def clamp(self, seconds: float) -> float:
        return max(self.min_seconds, min(self.max_seconds, seconds))


def next_interval(current: float | None, new_items: int, bounds: PollBounds) -> float:
    """Halve the interval when the poll found new items, lengthen it by half when not."""
    base = bounds.clamp(current if current else bounds.default_seconds)
    return bounds.clamp(base / 2 if new_items > 0 else base * 1.5)


def failure_interval(current: float | None, failures: int, bounds: PollBounds) -> float:
    """Exponential back-off after consecutive failures, capped at the maximum interval."""
    base = bounds.clamp(current if current else bounds.default_seconds)
    return bounds.clamp(base * 2 ** min(max(failures, 1), 8))


def failure_weight(reason: str, transient: bool) -> float:
    return TRANSIENT_WEIGHT if transient or reason in TRANSIENT else HARD_WEIGHT
