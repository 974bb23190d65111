"""Live blogs: one page, many timestamped posts; the article is one of them (pure: no I/O).

A live blog says what it is in JSON-LD (``LiveBlogPosting`` with its ``liveBlogUpdate``
posts). The article stored for its URL is

- the post the URL points at (``#post-123``, ``?post=123``, or the post's own URL), with
  that post's time as the publication time; or, when none is singled out,
- the blog's own lead: the extracted lines that are no post's text or headline, else the
  blog's ``articleBody`` or ``description``.

The other posts are not its text. A page that is no live blog, or whose posts the
extraction cannot find, is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from . import dates

_WORDS = re.compile(r"\w+")
MIN_WORDS = 25


@dataclass(frozen=True)
class Post:
    ids: frozenset[str]  # fragment, query value and URL forms that name this post
    headline: str
    body: str
    published: str | None


@dataclass(frozen=True)
class LiveText:
    text: str
    published: dates.Found | None  # the post's own time when one post is the article


def _as_list(value) -> list:  # noqa: ANN001 - JSON
    return value if isinstance(value, list) else [value] if value is not None else []


def _ids(post: dict) -> frozenset[str]:
    out = set()
    for key in ("url", "@id", "identifier", "id"):
        value = post.get(key)
        if isinstance(value, str | int) and str(value):
            value = str(value)
            out.add(value)
            parts = urlsplit(value)
            if parts.fragment:
                out.add(parts.fragment)
            for values in parse_qs(parts.query).values():
                out.update(values)
    return frozenset(out)


def live_blog(articles: list[dict]) -> tuple[dict, list[Post]] | None:
    """The page's LiveBlogPosting and its posts, if it is a live blog."""
    for node in articles:
        kinds = [str(k) for k in _as_list(node.get("@type"))]
        if "LiveBlogPosting" not in kinds:
            continue
        posts = []
        for item in _as_list(node.get("liveBlogUpdate"))[:2000]:
            if isinstance(item, dict) and isinstance(item.get("articleBody"), str):
                posts.append(
                    Post(
                        _ids(item),
                        str(item.get("headline") or ""),
                        item["articleBody"],
                        item.get("datePublished") if isinstance(item.get("datePublished"), str) else None,
                    )
                )
        return node, posts
    return None


def _pointed(url: str, posts: list[Post]) -> Post | None:
    parts = urlsplit(url)
    wanted = {parts.fragment} if parts.fragment else set()
    for key, values in parse_qs(parts.query).items():
        if "post" in key.lower() or key.lower() in {"update", "entry", "id"}:
            wanted.update(values)
    wanted.discard("")
    if not wanted:
        return None
    for post in posts:
        if wanted & post.ids or any(w and w in i for w in wanted for i in post.ids if "#" in i):
            return post
    return None


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORDS.findall(text)}


def article_text(text: str, url: str, articles: list[dict], clean) -> LiveText | None:  # noqa: ANN001 - a callable
    """The live blog's article for ``url``; None when the page is no live blog (or cannot be split)."""
    found = live_blog(articles)
    if found is None:
        return None
    blog, posts = found
    post = _pointed(url, posts)
    if post is not None:
        body = clean("\n".join(p for p in (post.headline, post.body) if p))
        when = dates.parse_when(post.published)
        return LiveText(body, dates.Found(when[0], "jsonld", when[1]) if when else None) if body else None
    if not posts:
        return None
    post_words = [_words(f"{p.headline} {p.body}") for p in posts if p.body.strip()]
    lead = []
    for line in text.split("\n"):
        words = _words(line)
        if words and any(len(words & pw) >= 0.8 * len(words) for pw in post_words):
            continue  # a post's text or headline: not the lead's
        lead.append(line)
    if len(" ".join(lead).split()) >= MIN_WORDS:
        return LiveText("\n".join(lead), None)
    for key in ("articleBody", "description"):
        own = blog.get(key)
        if isinstance(own, str) and len(own.split()) >= MIN_WORDS:
            return LiveText(clean(own), None)
    return None
