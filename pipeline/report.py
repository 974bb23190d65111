"""``newsflow report``: a self-contained HTML page with PNG plots of what was ingested.

The directory it writes holds ``index.html`` and the PNGs it shows, referenced by relative
paths, so it can be zipped, mailed or served from anywhere. Plots use matplotlib's
object-oriented API on the Agg canvas: no display, no global pyplot state, safe in a worker.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from . import analyst

TOP = 15
DPI = 100
WIDTH_INCHES = 10.0
LABEL_CHARS = 42
COLORS = {
    "articles": "#3b6ea8",
    "statements": "#d9822b",
    "direct": "#3b6ea8",
    "indirect": "#8fb3d9",
    "mixed": "#d9822b",
    "final": "#c0392b",
    "retrying": "#f0a35e",
    "pair": "#5b8c5a",
}
LABEL_COLORS = {"PERSON": "#3b6ea8", "ORG": "#d9822b", "GPE": "#5b8c5a", "NORP": "#8e6bb0"}
OTHER_LABEL_COLOR = "#8c8c8c"


@dataclass
class ReportData:
    since: datetime | None
    generated_at: datetime
    totals: analyst.Totals
    activity: list[analyst.DayCount]
    speakers: list[analyst.SpeakerCount]
    entities: list[analyst.EntityCount]
    pairs: list[analyst.PairCount]
    reasons: list[analyst.ReasonCount]
    stories: list[analyst.StoryCount] = field(default_factory=list)
    carried_quotes: list[analyst.CarriedQuote] = field(default_factory=list)


@dataclass
class Plot:
    file: str
    title: str
    alt: str
    width: int = 0
    height: int = 0
    table: tuple[Sequence[str], list[Sequence[object]]] = field(default_factory=lambda: ((), []))


def collect(conn: psycopg.Connection, since: datetime | None, top: int = TOP) -> ReportData:
    analyst.ensure_schema(conn)
    return ReportData(
        since=since,
        generated_at=datetime.now(UTC),
        totals=analyst.totals(conn, since),
        activity=analyst.activity(conn, since),
        speakers=analyst.top_speakers(conn, since, top),
        entities=analyst.top_entities(conn, since, top),
        pairs=analyst.top_pairs(conn, since, top),
        reasons=analyst.quarantine_reasons(conn, since),
        stories=analyst.carried_stories(conn, since, min_outlets=2, limit=top),
        carried_quotes=analyst.carried_quotes(conn, since, min_outlets=2, limit=top),
    )


def build_report(conn: psycopg.Connection, out_dir: Path, since: datetime | None, top: int = TOP) -> Path:
    """Write ``index.html`` and its PNGs into ``out_dir``; return the path of ``index.html``."""
    data = collect(conn, since, top)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [
        _activity_plot(data, out_dir),
        _speakers_plot(data, out_dir),
        _entities_plot(data, out_dir),
        _pairs_plot(data, out_dir),
        _stories_plot(data, out_dir),
        _carried_quotes_plot(data, out_dir),
        _reasons_plot(data, out_dir),
    ]
    index = out_dir / "index.html"
    index.write_text(_html(data, plots), encoding="utf-8")
    return index


# Plots --------------------------------------------------------------------------------------


def _figure(height: float, rows: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _save(fig, out_dir: Path, plot: Plot) -> Plot:
    fig.savefig(out_dir / plot.file, format="png", dpi=DPI)
    plot.width, plot.height = (int(round(v)) for v in fig.get_size_inches() * DPI)
    return plot


def _empty(out_dir: Path, plot: Plot, message: str) -> Plot:
    fig, (ax,) = _figure(1.6)
    ax.set_axis_off()
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    ax.text(0.5, 0.4, message, ha="center", va="center", fontsize=12, color="#555555", transform=ax.transAxes)
    plot.alt = f"{plot.title}: {message}"
    return _save(fig, out_dir, plot)


def _short(text: str, width: int = LABEL_CHARS) -> str:
    return textwrap.shorten(text, width, placeholder="…") if len(text) > width else text


def _barh(ax, labels: Sequence[str], stacks: Sequence[tuple[str, Sequence[int], str]], legend: bool) -> None:
    """Horizontal bars, largest first at the top, stacked segments, the total at each bar's end."""
    from matplotlib.ticker import MaxNLocator

    positions = list(range(len(labels)))
    left = [0] * len(labels)
    for name, values, color in stacks:
        ax.barh(positions, values, left=left, color=color, label=name, height=0.7)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, total in zip(positions, left, strict=True):
        ax.text(total, y, f" {total}", va="center", fontsize=9, color="#333333")
    ax.set_yticks(positions, [_short(label) for label in labels], fontsize=10)
    pad = max(0.0, (3 - len(labels)) / 2)  # a bar or two stay bars, not slabs
    ax.set_ylim(len(labels) - 0.5 + pad, -0.5 - pad)  # largest first, at the top
    ax.set_xlim(0, max(left) * 1.12 + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    if legend:
        ax.legend(loc="lower right", frameon=False, fontsize=9)


def _bar_height(n: int) -> float:
    return max(2.4, 0.36 * n + 1.3)


def _buckets(activity: Sequence[analyst.DayCount], since: datetime | None) -> tuple[str, list[tuple[date, int, int]]]:
    """Counts per day, week or month (whichever keeps the plot readable), empty buckets filled."""
    if not activity:
        return "day", []
    first = since.astimezone(UTC).date() if since else activity[0].day
    last = activity[-1].day
    if since:
        last = max(last, datetime.now(UTC).date())
    span = (last - first).days
    if span <= 92:
        unit, start_of = "day", (lambda d: d)
    elif span <= 2 * 366:
        unit, start_of = "week", (lambda d: d - timedelta(days=d.weekday()))
    else:
        unit, start_of = "month", (lambda d: d.replace(day=1))
    counts: dict[date, list[int]] = {}
    cursor = start_of(first)
    while cursor <= last:
        counts[cursor] = [0, 0]
        cursor = _next(cursor, unit)
    for row in activity:
        key = start_of(row.day)
        if key in counts:
            counts[key][0] += row.articles
            counts[key][1] += row.statements
    return unit, [(d, a, s) for d, (a, s) in counts.items()]


def _next(day: date, unit: str) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _activity_plot(data: ReportData, out_dir: Path) -> Plot:
    unit, buckets = _buckets(data.activity, data.since)
    plot = Plot("activity.png", f"Articles and statements per {unit}", "")
    plot.table = (
        ("day", "articles", "statements"),
        [(r.day.isoformat(), r.articles, r.statements) for r in data.activity],
    )
    if not any(a for _, a, _ in buckets):
        return _empty(out_dir, plot, "No articles in this period")
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure(5.2, rows=2)
    width = {"day": 0.8, "week": 5.6, "month": 24.0}[unit]
    days = [d for d, _, _ in buckets]
    series = [
        ("articles", [a for _, a, _ in buckets], COLORS["articles"]),
        ("statements", [s for _, _, s in buckets], COLORS["statements"]),
    ]
    for ax, (name, values, color) in zip(axes, series, strict=True):
        ax.bar(days, values, width=width, color=color, align="edge" if unit != "day" else "center")
        ax.set_ylabel(name, fontsize=11)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_ylim(0, max(values) * 1.18 + 0.5)
        if sum(1 for v in values if v) <= 40:  # label the bars while the labels stay legible
            for d, v in zip(days, values, strict=True):
                if v:
                    x = d if unit == "day" else d + timedelta(days=width / 2)
                    ax.annotate(
                        str(v),
                        (x, v),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        color="#333333",
                        xytext=(0, 2),
                        textcoords="offset points",
                    )
    locator = AutoDateLocator(minticks=4, maxticks=10)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    fig.suptitle(f"{plot.title} (UTC)", x=0.01, ha="left", fontsize=13, fontweight="bold")
    total_a = sum(a for _, a, _ in buckets)
    total_s = sum(s for _, _, s in buckets)
    plot.alt = (
        f"Bar charts of articles ({total_a} in all) and statements ({total_s}) per {unit}, "
        f"from {days[0].isoformat()} to {days[-1].isoformat()}."
    )
    return _save(fig, out_dir, plot)


def _speakers_plot(data: ReportData, out_dir: Path) -> Plot:
    plot = Plot("top_speakers.png", "Most quoted speakers", "")
    rows = data.speakers
    plot.table = (
        ("speaker", "statements", "direct", "indirect", "mixed", "articles"),
        [(r.speaker, r.statements, r.direct, r.indirect, r.mixed, r.articles) for r in rows],
    )
    if not rows:
        return _empty(out_dir, plot, "No statements by identified speakers in this period")
    fig, (ax,) = _figure(_bar_height(len(rows)))
    _barh(
        ax,
        [r.speaker for r in rows],
        [(kind, [getattr(r, kind) for r in rows], COLORS[kind]) for kind in ("direct", "indirect", "mixed")],
        legend=True,
    )
    ax.set_xlabel("statements", fontsize=10)
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    plot.alt = "Horizontal bars of statements per speaker, split into direct, indirect and mixed: " + ", ".join(
        f"{r.speaker} {r.statements}" for r in rows
    )
    return _save(fig, out_dir, plot)


def _entities_plot(data: ReportData, out_dir: Path) -> Plot:
    plot = Plot("top_entities.png", "Most mentioned entities", "")
    rows = data.entities
    plot.table = (
        ("entity", "label", "articles", "mentions"),
        [(r.entity, r.label, r.articles, r.mentions) for r in rows],
    )
    if not rows:
        return _empty(out_dir, plot, "No entities in this period")
    from matplotlib.patches import Patch

    fig, (ax,) = _figure(_bar_height(len(rows)))
    _barh(ax, [f"{r.entity} ({r.label})" for r in rows], [("articles", [r.articles for r in rows], "none")], False)
    for bar, r in zip(ax.patches, rows, strict=True):
        bar.set_color(LABEL_COLORS.get(r.label, OTHER_LABEL_COLOR))
    present = [label for label in LABEL_COLORS if any(r.label == label for r in rows)]
    handles = [Patch(color=LABEL_COLORS[label], label=label) for label in present]
    if any(r.label not in LABEL_COLORS for r in rows):
        handles.append(Patch(color=OTHER_LABEL_COLOR, label="other"))
    ax.legend(handles=handles, loc="lower right", frameon=False, fontsize=9)
    ax.set_xlabel("articles mentioning it", fontsize=10)
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    plot.alt = "Horizontal bars of the number of articles naming each entity: " + ", ".join(
        f"{r.entity} {r.articles}" for r in rows
    )
    return _save(fig, out_dir, plot)


def _pairs_plot(data: ReportData, out_dir: Path) -> Plot:
    plot = Plot("top_pairs.png", "Most co-mentioned pairs", "")
    rows = data.pairs
    plot.table = (
        ("entity", "entity", "articles naming both"),
        [(f"{r.entity_a} ({r.label_a})", f"{r.entity_b} ({r.label_b})", r.articles) for r in rows],
    )
    if not rows:
        return _empty(out_dir, plot, "No articles naming two entities in this period")
    fig, (ax,) = _figure(_bar_height(len(rows)))
    labels = [f"{_short(r.entity_a, 24)} + {_short(r.entity_b, 24)}" for r in rows]
    _barh(ax, labels, [("articles", [r.articles for r in rows], COLORS["pair"])], legend=False)
    ax.set_yticks(range(len(rows)), labels, fontsize=10)
    ax.set_xlabel("articles naming both", fontsize=10)
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    plot.alt = "Horizontal bars of the number of articles naming both entities of a pair: " + ", ".join(
        f"{r.entity_a} and {r.entity_b} {r.articles}" for r in rows
    )
    return _save(fig, out_dir, plot)


def _stories_plot(data: ReportData, out_dir: Path) -> Plot:
    plot = Plot("carried_stories.png", "Most carried stories", "")
    rows = data.stories
    plot.table = (
        ("story", "first seen (UTC)", "first outlet", "outlets", "articles", "carried by"),
        [
            (
                r.title or "(untitled)",
                f"{r.first_seen_at.astimezone(UTC):%Y-%m-%d %H:%M}",
                r.first_outlet,
                r.outlets,
                r.articles,
                ", ".join(r.outlet_list),
            )
            for r in rows
        ],
    )
    if not rows:
        return _empty(out_dir, plot, "No story carried by two outlets or more in this period")
    fig, (ax,) = _figure(_bar_height(len(rows)))
    _barh(
        ax, [r.title or "(untitled)" for r in rows], [("outlets", [r.outlets for r in rows], COLORS["articles"])], False
    )
    ax.set_xlabel("outlets that carried the story", fontsize=10)
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    plot.alt = "Horizontal bars of the number of outlets that carried each story: " + ", ".join(
        f"{r.title or '(untitled)'} {r.outlets}" for r in rows
    )
    return _save(fig, out_dir, plot)


def _carried_quotes_plot(data: ReportData, out_dir: Path) -> Plot:
    plot = Plot("carried_quotes.png", "Quotes carried by most outlets", "")
    rows = data.carried_quotes
    plot.table = (
        ("quote", "speaker", "kind", "first seen (UTC)", "outlets", "carried by"),
        [
            (
                r.quote,
                r.speaker or "(unknown)",
                r.kind,
                f"{r.first_seen_at.astimezone(UTC):%Y-%m-%d %H:%M}",
                r.outlets,
                ", ".join(r.outlet_list),
            )
            for r in rows
        ],
    )
    if not rows:
        return _empty(out_dir, plot, "No quote carried by two outlets or more in this period")
    fig, (ax,) = _figure(_bar_height(len(rows)))
    labels = [f"{_short(r.speaker or '?', 16)}: {_short(r.quote, 30)}" for r in rows]
    _barh(ax, labels, [("outlets", [r.outlets for r in rows], COLORS["statements"])], legend=False)
    ax.set_yticks(range(len(rows)), labels, fontsize=10)
    ax.set_xlabel("outlets that carried the quote", fontsize=10)
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    plot.alt = "Horizontal bars of the number of outlets that carried each quote: " + ", ".join(
        f"{r.speaker or 'unknown'}: {r.quote} {r.outlets}" for r in rows
    )
    return _save(fig, out_dir, plot)


def _reasons_plot(data: ReportData, out_dir: Path) -> Plot:
    plot = Plot("quarantine_reasons.png", "Quarantined items by reason", "")
    rows = data.reasons
    plot.table = (
        ("reason", "items", "retried by later runs"),
        [(r.reason, r.items, r.retrying) for r in rows],
    )
    if not rows:
        return _empty(out_dir, plot, "No items quarantined in this period")
    fig, (ax,) = _figure(_bar_height(len(rows)))
    _barh(
        ax,
        [r.reason for r in rows],
        [
            ("final", [r.items - r.retrying for r in rows], COLORS["final"]),
            ("retried by later runs", [r.retrying for r in rows], COLORS["retrying"]),
        ],
        legend=True,
    )
    ax.set_xlabel("feed items", fontsize=10)
    ax.set_title(plot.title, loc="left", fontsize=13, fontweight="bold")
    plot.alt = "Horizontal bars of quarantined feed items per reason code: " + ", ".join(
        f"{r.reason} {r.items}" for r in rows
    )
    return _save(fig, out_dir, plot)


# HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1040px; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
.period { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.92rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e3e3e3; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
section { margin: 2.2rem 0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
details summary { cursor: pointer; color: #3b6ea8; margin-top: 0.4rem; }
footer { color: #777; font-size: 0.85rem; margin-top: 3rem; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p>Nothing to show.</p>"
    numeric = [all(isinstance(r[i], int) for r in rows) for i in range(len(headers))]
    head = "".join(f"<th{' class=n' if n else ''}>{_e(h)}</th>" for h, n in zip(headers, numeric, strict=True))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if n else ''}>{_e(v)}</td>" for v, n in zip(row, numeric, strict=True))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _period(data: ReportData) -> str:
    if data.since is None:
        return "All articles stored"
    return f"Articles dated from {data.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _html(data: ReportData, plots: Sequence[Plot]) -> str:
    t = data.totals
    totals = _table(
        ("", "count"),
        [
            ("articles", t.articles),
            ("statements", t.statements),
            ("speakers identified", t.speakers),
            ("entities mentioned", t.entities),
            ("feeds with articles", t.feeds),
            ("feed items quarantined", t.quarantined),
        ],
    )
    sections = "\n".join(
        f"""<section id="{_e(p.file.removesuffix(".png"))}">
<h2>{_e(p.title)}</h2>
<img src="{_e(p.file)}" alt="{_e(p.alt)}" width="{p.width}" height="{p.height}">
<details><summary>The numbers</summary>{_table(*p.table)}</details>
</section>"""
        for p in plots
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>newsflow report: {_e(_period(data))}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>newsflow report</h1>
<p class="period">{_e(_period(data))}. Days are calendar days in UTC; an article without a
publication date counts on the day it was fetched.</p>
<section id="totals"><h2>In numbers</h2>{totals}</section>
{sections}
<footer>Generated by newsflow at {data.generated_at:%Y-%m-%d %H:%M} UTC. Speakers are counted only when
identified as a named entity; quarantine reasons are the codes listed in the README.</footer>
</body>
</html>
"""
