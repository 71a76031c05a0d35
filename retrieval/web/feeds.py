"""RSS and Atom feeds: one entry per article, with the entry's full text when it carries it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import LoadError

# An entry whose content has fewer words than this is taken for a teaser: its link is
# fetched for the whole article.
FULL_TEXT_MIN_WORDS = 150


@dataclass(frozen=True)
class FeedEntry:
    """One entry: where its article is, what the feed says about it, and any text it carries."""

    link: str | None
    guid: str | None
    title: str | None
    # YYYY-MM-DD of publication (or of the last update when there is no publication date).
    date: str | None
    # The entry's update (or publication) stamp as the feed wrote it: when it changes,
    # the article changed.
    stamp: str | None
    author: str | None
    # The longest HTML the entry carries (its content, else its summary), if any.
    html: str | None


@dataclass(frozen=True)
class Feed:
    title: str | None
    entries: list[FeedEntry]


def parse_feed(body: bytes, url: str, content_type: str = "") -> Feed:
    """Entries of an RSS (0.9x, 1.0, 2.0) or Atom feed; relative links resolved against ``url``."""
    import feedparser

    # Bytes, never a string: given a string that looks like a URL, feedparser fetches it.
    parsed = feedparser.parse(
        bytes(body), response_headers={"content-location": url, "content-type": content_type}
    )
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise LoadError(f"not a readable feed{f': {problem}' if problem else ''}")
    entries = []
    for entry in parsed.entries:
        texts = [c.get("value") or "" for c in entry.get("content", [])]
        texts.append(entry.get("summary") or "")
        html = max(texts, key=len) or None
        # dict.get: feedparser's own get() maps a missing "updated" to "published", with a
        # deprecation warning.
        updated, updated_parsed = dict.get(entry, "updated"), dict.get(entry, "updated_parsed")
        published = entry.get("published_parsed") or updated_parsed
        entries.append(
            FeedEntry(
                link=entry.get("link") or None,
                guid=entry.get("id") or None,
                title=_clean(entry.get("title")),
                date=time.strftime("%Y-%m-%d", published) if published else None,
                stamp=updated or entry.get("published") or None,
                author=_clean(entry.get("author")),
                html=html,
            )
        )
    return Feed(_clean(parsed.feed.get("title")), entries)


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if value else ""
    return text or None
