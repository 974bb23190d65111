"""Stories: near-duplicate and syndicated copies of one text, found by MinHash and LSH.

A wire story or press release runs in many outlets with small edits (another headline or
byline, a trimmed or extended ending, a local paragraph, copy-edits). Exact hashes miss those
copies; word shingles compared by MinHash (``datasketch``) catch them. This module is pure:
text in, a ``Signature`` (MinHash values, band keys) out, and the rule that says whether two
signatures are one story. The band keys live in PostgreSQL (``story_bands``, sql/010) so every
worker process, machine and restart probes the same index; ``store`` does the probing.

Thresholds are for news in general, not for one test set. On 5-word shingles, copies of one
story with other boilerplate, headline, ending and copy-edits keep a Jaccard similarity well
above 0.4, while different articles on one subject (shared names, a shared quote, reused
background paragraphs) stay under about 0.35 (benchmarks/eval_stories.py prints both sides):

* shingles of ``SHINGLE_WORDS`` lower-cased words, punctuation ignored (copy-edits to
  punctuation and case change nothing);
* ``NUM_PERM`` permutations cut into ``BANDS`` bands of ``ROWS`` rows. Two texts become
  candidates when one band matches: a pair at Jaccard 0.3 is found with probability
  1 - (1 - 0.3**2)**64 = 0.998, at 0.25 with 0.98, while unrelated texts (Jaccard near 0)
  share no band. Candidates are then confirmed on the full signature:
* the same story when the estimated Jaccard similarity is at least ``jaccard`` (0.4), or
  when the shorter text is mostly contained in the longer (``containment`` 0.8, estimated
  from the Jaccard and the shingle counts) and the Jaccard is at least ``jaccard_floor``
  (0.25): a copy that keeps only the first half of a wire story is the same story, a long
  article that quotes a few sentences of another is not.
* Texts under ``MIN_WORDS`` words never merge on shingles alone: a short brief shares
  too large a fraction of its few shingles with any other brief on the subject.

Each threshold can be changed without code: ``NEWSFLOW_STORY_JACCARD``,
``NEWSFLOW_STORY_CONTAINMENT``, ``NEWSFLOW_STORY_JACCARD_FLOOR``, ``NEWSFLOW_STORY_MIN_WORDS``.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

SHINGLE_WORDS = 5
NUM_PERM = 128
BANDS = 64
ROWS = 2  # BANDS * ROWS <= NUM_PERM
SEED = 1  # fixed: signatures made by every process and every version must agree
SIGNATURE_VERSION = f"minhash-w{SHINGLE_WORDS}-p{NUM_PERM}-b{BANDS}x{ROWS}-s{SEED}"

_WORD = re.compile(r"\w+")
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED)  # the permutations, made once per process


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Thresholds:
    jaccard: float = 0.4
    containment: float = 0.8
    jaccard_floor: float = 0.25
    min_words: int = 50

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(
            jaccard=_env_float("NEWSFLOW_STORY_JACCARD", cls.jaccard),
            containment=_env_float("NEWSFLOW_STORY_CONTAINMENT", cls.containment),
            jaccard_floor=_env_float("NEWSFLOW_STORY_JACCARD_FLOOR", cls.jaccard_floor),
            min_words=int(_env_float("NEWSFLOW_STORY_MIN_WORDS", cls.min_words)),
        )


THRESHOLDS = Thresholds.from_env()


@dataclass(frozen=True)
class Signature:
    """A text's MinHash values, its shingle and word counts, and its LSH band keys."""

    hashvalues: bytes  # NUM_PERM unsigned 32-bit values, little-endian (articles' story_signatures row)
    shingles: int
    words: int
    band_keys: tuple[int, ...]  # signed 64-bit, one per band; empty for a short text

    def values(self) -> np.ndarray:
        return np.frombuffer(self.hashvalues, dtype="<u4")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0x27D4EB2F165667C5,
        0x85EBCA77C2B2AE63,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
    ],
    dtype=np.uint64,
)


def _shingle_hashes(words: list[str]) -> np.ndarray:
    """Stable 32-bit hashes of the text's distinct word shingles, the same in every process.

    Each word is hashed once (crc32), and a shingle's hash mixes its words' hashes by
    position with numpy: no Python work per shingle.
    """
    k = min(SHINGLE_WORDS, len(words))
    if k == 0:
        return np.zeros(0, dtype=np.uint64)
    ids = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    n = len(words) - k + 1
    mixed = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        mixed += ids[j : j + n] * _MIX[j]  # wraps modulo 2**64, as intended
    return np.unique(mixed >> np.uint64(32))


def _band_key(band: int, values: np.ndarray) -> int:
    digest = hashlib.blake2b(values.tobytes(), digest_size=8, person=band.to_bytes(2, "little")).digest()
    return int.from_bytes(digest, "little", signed=True)


def signature(text: str, min_words: int | None = None) -> Signature:
    """The MinHash signature of ``text`` over its word shingles (datasketch's permutations)."""
    words = words_of(text)
    hashes = _shingle_hashes(words)
    m = _TEMPLATE.copy()
    if len(hashes):
        # datasketch's update_batch applied to hashes we computed stably (its own hash is sha1
        # per shingle, several times slower); the permutations and the minimum are datasketch's.
        a, b = m.permutations
        phv = np.bitwise_and((np.outer(hashes, a) + b) % np.uint64((1 << 61) - 1), np.uint64(0xFFFFFFFF))
        m.hashvalues = np.minimum(phv.min(axis=0), m.hashvalues)
    values = m.hashvalues.astype("<u4")
    short = len(words) < (THRESHOLDS.min_words if min_words is None else min_words)
    keys = () if short else tuple(_band_key(i, values[i * ROWS : (i + 1) * ROWS]) for i in range(BANDS))
    return Signature(values.tobytes(), int(len(hashes)), len(words), keys)


def jaccard(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the two shingle sets (share of equal MinHash values)."""
    return float(np.count_nonzero(a.values() == b.values())) / NUM_PERM


def containment(a: Signature, b: Signature, j: float | None = None) -> float:
    """Estimated share of the smaller shingle set found in the larger one."""
    j = jaccard(a, b) if j is None else j
    small = min(a.shingles, b.shingles)
    if small == 0:
        return 0.0
    return min(1.0, j * (a.shingles + b.shingles) / (1.0 + j) / small)


def same_story(a: Signature, b: Signature, thresholds: Thresholds | None = None) -> bool:
    """Whether two texts are copies of one story by their shingles alone."""
    t = thresholds or THRESHOLDS
    if min(a.words, b.words) < t.min_words:
        return False
    j = jaccard(a, b)
    if j >= t.jaccard:
        return True
    return j >= t.jaccard_floor and containment(a, b, j) >= t.containment


def score(a: Signature, b: Signature) -> float:
    """How close two copies are, to choose among several matching stories (higher is closer)."""
    j = jaccard(a, b)
    return j + containment(a, b, j)


def from_row(hashvalues: bytes, shingles: int, words: int) -> Signature:
    """A stored signature (``story_signatures``) back as a ``Signature`` (band keys not needed)."""
    return Signature(bytes(hashvalues), shingles, words, ())
