"""A loopback news site with a history: an RFC 5005 archive chain, ?paged=N feed pages, sitemaps.

Window under test: October 2025. Every article page exists, in or out of the window, so a
backfill that fetched an out-of-window item would store it and the tests would see it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from pipeline.loopback import LoopbackSite

from .pages import news_page

SINCE, UNTIL = "2025-10-01", "2025-10-31"

WORDS = [
    "council",
    "budget",
    "river",
    "bridge",
    "harbour",
    "transit",
    "school",
    "hospital",
    "tariff",
    "grain",
    "port",
    "rail",
    "energy",
    "water",
    "housing",
    "court",
    "police",
    "festival",
    "museum",
    "market",
    "weather",
    "airport",
    "union",
    "clinic",
    "library",
]


@dataclass(frozen=True)
class Story:
    slug: str
    day: str  # YYYY-MM-DD
    in_window: bool


STORIES = {
    s.slug: s
    for s in [
        Story("current-nov", "2025-11-20", False),  # in the live feed
        Story("current-oct", "2025-10-28", True),  # in the live feed, stored by an earlier ingest
        Story("archive-oct-20", "2025-10-20", True),  # archive page 1 and the news sitemap
        Story("archive-oct-05", "2025-10-05", True),  # archive page 1
        Story("archive-sep", "2025-09-25", False),  # archive page 2, before the window
        Story("archive-aug", "2025-08-10", False),  # archive page 3: must not even be requested
        Story("paged-oct-12", "2025-10-12", True),  # ?paged=2
        Story("paged-sep", "2025-09-02", False),  # ?paged=2
        Story("sitemap-oct-08", "2025-10-08", True),  # only in the news sitemap
        Story("sitemap-nov", "2025-11-03", False),  # news sitemap, after the window
        Story("sitemap-aug", "2025-08-20", False),  # in a child sitemap last modified before the window
    ]
}
IN_WINDOW = sorted(s.slug for s in STORIES.values() if s.in_window)


def _title(slug: str) -> str:
    return f"Story {slug.replace('-', ' ')} from the city desk"


def _paragraphs(slug: str) -> list[str]:
    seed = sum(ord(c) for c in slug)
    words = [WORDS[(seed + i * 7) % len(WORDS)] for i in range(60)]
    return [
        f"The {slug.replace('-', ' ')} report opened with news about the {' '.join(words[:12])}.",
        f"Officials said the plan for the {' '.join(words[12:30])} would be reviewed next month.",
        f"Residents described the {' '.join(words[30:60])} as the main concern of the season.",
    ]


def _rfc822(day: str) -> str:
    from datetime import date

    d = date.fromisoformat(day)
    return d.strftime("%a, %d %b %Y 12:00:00 GMT")


def _rss(site: LoopbackSite, slugs: list[str], links: dict[str, str]) -> str:
    items = "".join(
        f"<item><title>{html.escape(_title(s))}</title><link>{site.url('/news/' + s)}</link>"
        f'<guid isPermaLink="false">hist-{s}</guid><pubDate>{_rfc822(STORIES[s].day)}</pubDate></item>'
        for s in slugs
    )
    rels = "".join(f'<atom:link rel="{rel}" href="{href}"/>' for rel, href in links.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>History Wire</title><link>{site.base}/</link><description>test</description>"
        f'<atom:link rel="self" href="{site.url("/feed.xml")}"/>{rels}{items}</channel></rss>'
    )


def _urlset(site: LoopbackSite, entries: list[tuple[str, str | None]]) -> str:
    urls = []
    for path, day in entries:
        news = ""
        if day and path.startswith("/news/"):
            news = (
                "<news:news><news:publication><news:name>History Wire</news:name>"
                "<news:language>en</news:language></news:publication>"
                f"<news:publication_date>{day}T12:00:00Z</news:publication_date>"
                f"<news:title>{html.escape(_title(path[6:]))}</news:title></news:news>"
            )
        lastmod = f"<lastmod>{day}</lastmod>" if day else ""
        urls.append(f"<url><loc>{site.url(path)}</loc>{lastmod}{news}</url>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + "".join(urls) + "</urlset>"
    )


def serve_history_site(site: LoopbackSite) -> str:
    """Add the site's routes; return the feed URL."""
    for slug in STORIES:
        site.add(
            f"/news/{slug}", news_page(_title(slug), _paragraphs(slug), published=f"{STORIES[slug].day}T12:00:00Z")
        )
    xml = "application/rss+xml; charset=utf-8"
    site.add(
        "/feed.xml",
        _rss(site, ["current-nov", "current-oct"], {"prev-archive": site.url("/archive/2025-10.xml")}),
        xml,
    )
    site.add(
        "/archive/2025-10.xml",
        _rss(
            site,
            ["archive-oct-20", "archive-oct-05"],
            {"current": site.url("/feed.xml"), "prev-archive": site.url("/archive/2025-09.xml")},
        ),
        xml,
    )
    site.add(
        "/archive/2025-09.xml",
        _rss(site, ["archive-sep"], {"prev-archive": site.url("/archive/2025-08.xml")}),
        xml,
    )
    site.add("/archive/2025-08.xml", _rss(site, ["archive-aug"], {}), xml)
    site.add("/feed.xml?paged=2", _rss(site, ["paged-oct-12", "paged-sep"], {}), xml)
    site.add("/feed.xml?paged=3", "<html><body>Not found</body></html>", status=404)
    site.add("/robots.txt", f"User-agent: *\nAllow: /\n\nSitemap: {site.url('/sitemap_index.xml')}\n", "text/plain")
    site.add(
        "/sitemap_index.xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url('/sitemap-news.xml')}</loc><lastmod>2025-11-03</lastmod></sitemap>"
        f"<sitemap><loc>{site.url('/sitemap-2025-08.xml')}</loc><lastmod>2025-08-31</lastmod></sitemap>"
        "</sitemapindex>",
        "application/xml",
    )
    site.add(
        "/sitemap-news.xml",
        _urlset(
            site,
            [
                ("/news/sitemap-oct-08", "2025-10-08"),
                ("/news/archive-oct-20", "2025-10-20"),
                ("/news/sitemap-nov", "2025-11-03"),
                ("/about", None),
            ],
        ),
        "application/xml",
    )
    site.add("/sitemap-2025-08.xml", _urlset(site, [("/news/sitemap-aug", "2025-08-20")]), "application/xml")
    return site.url("/feed.xml")


def article_paths(site: LoopbackSite) -> dict[str, int]:
    """How many times each article page was requested."""
    return {slug: site.hits(f"/news/{slug}") for slug in STORIES}
