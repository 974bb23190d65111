"""The bundled sample site: a feed and five news pages served on loopback.

The articles are fictional wire reports written for newsflow (briefings with
multi-paragraph quotes, pronoun attributions, indirect and mixed quotes), inside pages
with navigation, ads, related links, a newsletter box and a footer.
"""

from __future__ import annotations

from pathlib import Path

from .loopback import LoopbackSite


def _site_files() -> dict[str, str]:
    root = Path(__file__).resolve().parent / "demo_site"
    files = {"/feed.xml": (root / "feed.xml").read_text(encoding="utf-8")}
    for page in (root / "articles").iterdir():
        if page.name.endswith(".html"):
            files[f"/news/{page.name[:-5]}"] = page.read_text(encoding="utf-8")
    return files


def serve_demo_site(site: LoopbackSite) -> str:
    """Add the sample site's routes to ``site``; return the feed URL."""
    for path, body in _site_files().items():
        kind = "application/rss+xml; charset=utf-8" if path.endswith(".xml") else "text/html; charset=utf-8"
        site.add(path, body.replace("{base}", site.base), kind)
    return site.url("/feed.xml")
