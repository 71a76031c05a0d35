"""Web documents as the parsing workers read them: a fetched page or PDF, a feed entry's text.

They are parsed like files, in a worker process within the ``[ingest]`` limits (time,
memory, ``max_article_chars``, ``max_title_chars``), so a hostile page costs only itself
and never the memory of the process that fetched it (the bot's own, for ``/reindex``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from html import escape
from urllib.parse import urlsplit

from ..config import IngestSettings
from ..errors import LoadError
from ..loaders import Loaded, article_from_html, title_from_name, within_limits
from ..records import Article
from ..urls import is_web_url, normalize_url
from .content import clean_title, decode_html
from .feeds import FULL_TEXT_MIN_WORDS, FeedEntry
from .identity import same_site

logger = logging.getLogger(__name__)


class _AsDebug(logging.Handler):
    """trafilatura logs what it cannot parse at ERROR, as if our run had failed: its lines
    come through our logger at DEBUG instead (the page's problem is reported on its own)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("trafilatura: %s", record.getMessage())


_trafilatura = logging.getLogger("trafilatura")
if not any(isinstance(h, _AsDebug) for h in _trafilatura.handlers):
    _trafilatura.addHandler(_AsDebug())
    _trafilatura.propagate = False

# A web page with less text than this is not an article (trafilatura keeps a menu's few
# words when a page has nothing else).
MIN_PAGE_WORDS = 25


@dataclass(frozen=True)
class WebPage:
    """A fetched HTML page or PDF, listed as ``name``, served from ``final_url``."""

    name: str
    kind: str  # "html" or "pdf"
    body: bytes
    charset: str | None
    final_url: str
    article_id: str

    def load(self, limits: IngestSettings) -> Loaded:
        if self.kind == "pdf":
            from ..pdf import pdf_article

            path = urlsplit(self.final_url).path.rstrip("/")
            article = pdf_article(
                self.body,
                article_id=self.article_id,
                source=self.name,
                fallback_title=title_from_name(path.rpartition("/")[2] or self.article_id),
                url=self.final_url,
            )
        else:
            html = decode_html(self.body, self.charset)
            article = article_from_html(html, self.name, url=self.final_url)
            words = len(article.text.split())
            if words < MIN_PAGE_WORDS:
                plural = "" if words == 1 else "s"
                raise LoadError(
                    f"not an article: {words} word{plural} of text (a menu or index page?)"
                )
            # The page's canonical address is the one to cite, when it is on the site
            # that served the page.
            claimed = article.url
            canonical = claimed if claimed and same_site(claimed, self.final_url) else None
            article = replace(
                article, id=self.article_id, source=self.name, url=canonical or self.final_url
            )
        return Loaded([within_limits(replace(article, title=clean_title(article.title)), limits)])


@dataclass(frozen=True)
class FeedEntryText:
    """A feed entry's own HTML: its article when it carries the full text; no article
    (``Loaded([])``) when it is a teaser, whose link is read instead."""

    name: str
    entry: FeedEntry
    # The entry's id when its link cannot be its identity (none, or on another site).
    fallback_id: str
    # Where the feed was served from.
    feed_url: str

    def load(self, limits: IngestSettings) -> Loaded:
        entry = self.entry
        if not entry.html:
            raise LoadError("the entry has no text")
        title = escape(entry.title or "")
        document = (
            f"<html><head><title>{title}</title></head>"
            f"<body><article>{entry.html}</article></body></html>"
        )
        # Text served by the feed is the feed's: an entry linking another site's page is
        # not that page's article (it would shadow it, and its citation would lie).
        link = entry.link if entry.link and same_site(entry.link, self.feed_url) else None
        article = article_from_html(document, link or self.fallback_id, url=link)
        if entry.link and len(article.text.split()) < FULL_TEXT_MIN_WORDS:
            return Loaded([])
        article = Article(
            id=normalize_url(link) if link else self.fallback_id,
            title=clean_title(entry.title or article.title),
            text=article.text,
            source=link or self.fallback_id,
            url=link or (self.feed_url if is_web_url(self.feed_url) else None),
            date=entry.date or article.date,
            author=entry.author or article.author,
        )
        return Loaded([within_limits(article, limits)])
