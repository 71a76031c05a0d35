"""Small builders for what the test site serves: article pages, RSS, Atom and sitemaps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape


@dataclass(frozen=True)
class Entry:
    title: str
    link: str | None
    # HTML the entry carries (full text or teaser), if any.
    html: str | None = None
    author: str | None = None
    # YYYY-MM-DD
    date: str | None = None


def page(
    title: str,
    paragraphs: list[str],
    *,
    author: str | None = None,
    date: str | None = None,
    canonical: str | None = None,
    charset: str | None = None,
) -> str:
    """An article page with navigation and a footer around the article, like a real site."""
    head = [f"<title>{escape(title)}</title>"]
    if charset:
        head.append(f'<meta charset="{charset}">')
    if author:
        head.append(f'<meta name="author" content="{escape(author)}">')
    if date:
        head.append(f'<meta property="article:published_time" content="{date}">')
    if canonical:
        head.append(f'<link rel="canonical" href="{escape(canonical)}">')
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        "<!DOCTYPE html><html><head>"
        + "".join(head)
        + "</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        + f"<article><h1>{escape(title)}</h1>{body}</article>"
        + "<footer>© Example News. All rights reserved.</footer></body></html>"
    )


def article_text(topic: str, sentences: int = 6) -> list[str]:
    """Paragraphs about ``topic`` with enough words for trafilatura to keep them."""
    lines = [
        f"The {topic} was the subject of a long debate at the town council on Tuesday evening.",
        f"Residents who spoke about the {topic} asked for clear answers and a firm timetable.",
        f"Officials said the {topic} would be reviewed again before the end of the summer.",
        f"A local campaign group welcomed the decision about the {topic} but wants more.",
        f"Critics argued that the {topic} had been delayed for far too many years already.",
        f"The next meeting about the {topic} will be open to the public, the council said.",
    ]
    return [" ".join(lines[i : i + 2]) for i in range(0, min(sentences, len(lines)), 2)]


def _rfc822(date: str) -> str:
    return format_datetime(datetime.fromisoformat(date).replace(hour=9, tzinfo=UTC), usegmt=True)


def rss(entries: list[Entry], title: str = "Sample feed") -> bytes:
    items = []
    for entry in entries:
        parts = [f"<title>{escape(entry.title)}</title>"]
        if entry.link:
            parts.append(f"<link>{escape(entry.link)}</link><guid>{escape(entry.link)}</guid>")
        if entry.date:
            parts.append(f"<pubDate>{_rfc822(entry.date)}</pubDate>")
        if entry.author:
            parts.append(f"<dc:creator>{escape(entry.author)}</dc:creator>")
        if entry.html:
            parts.append(f"<content:encoded><![CDATA[{entry.html}]]></content:encoded>")
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link>"
        "<description>Test</description>" + "".join(items) + "</channel></rss>"
    ).encode()


def atom(entries: list[Entry], title: str = "Sample Atom feed") -> bytes:
    items = []
    for number, entry in enumerate(entries):
        parts = [f"<title>{escape(entry.title)}</title>", f"<id>urn:entry:{number}</id>"]
        if entry.link:
            parts.append(f'<link rel="alternate" href="{escape(entry.link)}"/>')
        if entry.date:
            parts.append(f"<published>{entry.date}T09:00:00Z</published>")
            parts.append(f"<updated>{entry.date}T09:00:00Z</updated>")
        if entry.author:
            parts.append(f"<author><name>{escape(entry.author)}</name></author>")
        if entry.html:
            parts.append(f'<content type="html">{escape(entry.html)}</content>')
        items.append("<entry>" + "".join(parts) + "</entry>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:feed</id><updated>2024-01-01T00:00:00Z</updated>"
        + "".join(items)
        + "</feed>"
    ).encode()


def urlset(pages: list[tuple[str, str | None]]) -> bytes:
    items = "".join(
        f"<url><loc>{escape(url)}</loc>"
        + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "")
        + "</url>"
        for url, lastmod in pages
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>'
    ).encode()


def sitemap_index(sitemaps: list[str]) -> bytes:
    items = "".join(f"<sitemap><loc>{escape(url)}</loc></sitemap>" for url in sitemaps)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</sitemapindex>'
    ).encode()
