"""A small news wire on a loopback site: a feed of ``count`` distinct articles with statements.

Each wire's articles differ from every other wire's (the name is in the text), so a run over
several wires stores every item: nothing is a duplicate by content.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from pipeline.loopback import LoopbackSite

from .pages import FeedEntry, news_page, rss

PLACES = ["harbour", "stadium", "bridge", "market", "station", "museum", "airport", "school", "clinic", "park"]


def wire_story(name: str, i: int) -> list[str]:
    place = PLACES[i % len(PLACES)]
    return [
        f"The mayor of {name.title()}, Clara Vidal, said on Tuesday that the {place} project number {i} "
        f"would open before the summer.",
        f'"The {place} is ready and the contractors have been paid," Vidal said. "We start in May."',
        f"Opposition leader Tomas Reyes said the {name} council had not seen the budget for item {i}.",
    ]


def serve_wire(site: LoopbackSite, name: str, count: int, feed_path: str = "/feed.xml") -> str:
    """Add a feed at ``feed_path`` and its ``count`` articles to ``site``; return the feed URL."""
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    entries = []
    for i in range(count):
        path = f"/{name}/story-{i}"
        site.add(path, news_page(f"{name.title()} {PLACES[i % len(PLACES)]} plan {i}", wire_story(name, i)))
        published = format_datetime(start + timedelta(minutes=i), usegmt=True)
        entries.append(FeedEntry(f"{name.title()} plan {i}", site.url(path), published, f"{name}-{i}"))
    return site.add(feed_path, rss(entries, title=f"{name.title()} Wire", link=site.base + "/"), "application/rss+xml")
