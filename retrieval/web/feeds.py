"""RSS and Atom feeds: one entry per article, with the entry's full text when it carries it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import LoadError
from .identity import strip_credentials

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
    # True when entries past ``max_entries`` were left unread.
    cut: bool = False


def parse_feed(
    body: bytes, url: str, content_type: str = "", max_entries: int | None = None
) -> Feed:
    """Entries of an RSS (0.9x, 1.0, 2.0) or Atom feed; relative links resolved against ``url``.

    With ``max_entries``, the entries past it are cut from the document before it is
    parsed (``Feed.cut`` says so): a feed of 50,000 items costs no more than its first few.
    Links with a user name or password lose them.
    """
    import feedparser

    cut = False
    if max_entries is not None:
        body, cut = first_entries(body, max_entries)
        if cut:  # re-encoded as UTF-8: a charset in the header no longer applies
            content_type = content_type.split(";")[0]

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
        link = entry.get("link") or None
        entries.append(
            FeedEntry(
                link=strip_credentials(link) if link else None,
                guid=entry.get("id") or None,
                title=_clean(entry.get("title")),
                date=time.strftime("%Y-%m-%d", published) if published else None,
                stamp=updated or entry.get("published") or None,
                author=_clean(entry.get("author")),
                html=html,
            )
        )
    return Feed(_clean(parsed.feed.get("title")), entries, cut)


def first_entries(body: bytes, most: int) -> tuple[bytes, bool]:
    """The feed cut after its first ``most`` entries (RSS items, Atom entries), and whether
    anything was cut; as given when it is not well-formed XML (the parser copes)."""
    from lxml import etree

    parser = etree.XMLPullParser(
        events=("start",), resolve_entities=False, no_network=True, huge_tree=False
    )
    root = None
    count = 0
    try:
        for offset in range(0, len(body), _PULL_BYTES):
            parser.feed(body[offset : offset + _PULL_BYTES])
            for _, element in parser.read_events():
                if root is None:
                    root = element
                if etree.QName(element).localname not in ("item", "entry"):
                    continue
                count += 1
                parent = element.getparent()
                if count > most and parent is not None:
                    # Stop reading here: what follows is never parsed (what the last
                    # chunk fed already built is dropped).
                    for later in [element, *element.itersiblings()]:
                        parent.remove(later)
                    return etree.tostring(root, xml_declaration=True, encoding="utf-8"), True
    except etree.XMLSyntaxError:
        pass
    return body, False


_PULL_BYTES = 64 * 1024


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if value else ""
    return text or None
