"""Text from outside, made safe to store: the one cleaning applied at the edge.

PostgreSQL rejects NUL in text, UTF-8 cannot encode a lone surrogate, and control
characters in a title or an error message only cause trouble downstream. Every string that
comes from a feed, a header, a page or an error raised on them passes through
``clean_text`` once, where it enters newsflow.
"""

from __future__ import annotations

import re

# C0 controls except tab, newline and carriage return; DEL; C1 controls; lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str | None, limit: int | None = None) -> str | None:
    """``value`` without NUL, control characters and lone surrogates, cut to ``limit`` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = _UNSAFE.sub("", value)
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value
