"""Build realistic news pages and feeds around article text at test time.

Text under ../shared is read when the tests run, never copied into the repository.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

CHROME_MARKERS = [
    "Subscribe to our morning briefing",
    "Sponsored: refinance today",
    "Related coverage",
    "All rights reserved",
    "World Business Markets Opinion",
]


def news_page(
    title: str,
    paragraphs: Sequence[str],
    *,
    standfirst: str | None = None,
    published: str | None = None,
    author: str = "Staff reporter",
) -> str:
    """An article page with navigation, ads, related links, a newsletter box and a footer."""
    body = "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    lead = f'<p class="standfirst">{html.escape(standfirst)}</p>' if standfirst else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | Test Wire</title>
<meta name="author" content="{author}">{meta}</head>
<body>
<header><nav class="menu"><a href="/">Home</a> <a href="/world">World</a> <a href="/business">Business</a>
<a href="/markets">Markets</a> <a href="/opinion">Opinion</a><span>World Business Markets Opinion</span></nav>
<div class="ad-banner">Sponsored: refinance today and save on your mortgage payments this year</div></header>
<main><article>
<h1>{html.escape(title)}</h1>{lead}
<div class="byline">By {author}</div>
<div class="article-body">
{body}
</div>
<aside class="related"><h3>Related coverage</h3><ul><li><a href="/a">Markets slide as oil rises</a></li>
<li><a href="/b">Ten things to know before the opening bell today</a></li></ul></aside>
</article>
<section class="newsletter"><h3>Subscribe to our morning briefing</h3>
<form><input type="email" placeholder="Your email"><button>Sign up</button></form></section>
</main>
<footer><p>Copyright 2022 Test Wire. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
</body></html>"""


@dataclass
class FeedEntry:
    title: str
    link: str
    pub_date: str | None = None
    guid: str | None = None


def rss(entries: Sequence[FeedEntry], title: str = "Test feed", link: str = "http://example.invalid/") -> str:
    items = []
    for e in entries:
        parts = [f"<title>{html.escape(e.title)}</title>", f"<link>{html.escape(e.link)}</link>"]
        if e.guid:
            parts.append(f'<guid isPermaLink="false">{html.escape(e.guid)}</guid>')
        if e.pub_date:
            parts.append(f"<pubDate>{e.pub_date}</pubDate>")
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
        f"<description>test</description>{''.join(items)}</channel></rss>"
    )


def seed_page(seed_text: str) -> tuple[str, str]:
    """(title, page HTML) for the seed article: headline, standfirst, then the body."""
    paras = [p.strip() for p in seed_text.split("\n") if p.strip()]
    title, standfirst, *rest = paras
    if rest and rest[0] == title:
        rest = rest[1:]
    return title, news_page(title, rest, standfirst=standfirst)
