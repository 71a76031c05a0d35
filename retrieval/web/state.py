"""What the index remembers of the web: validators, lastmods and listings, per URL.

They live in the index's own store (table ``web_resources``), written in the same
generation as the articles they describe, and are read back from the committed
generation before anything is fetched. A remembered resource is trusted only while every
article it produced is still in the index with the very content hash recorded with it:
so "not modified" can never stand for content that was not committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ..index import ArticleReader, IndexBackend, WebResourceRow
from ..records import Article
from .fetch import Validators


@dataclass(frozen=True)
class Link:
    """A page that a feed or a sitemap lists, with what the listing says of it."""

    url: str
    # The listing's change stamp for the page (sitemap lastmod, feed entry update).
    lastmod: str | None = None
    # A feed entry's own title, date and author, which win over the page's.
    title: str | None = None
    date: str | None = None
    author: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {k: v for k, v in vars(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Link:
        return cls(
            url=str(data["url"]),
            lastmod=data.get("lastmod"),
            title=data.get("title"),
            date=data.get("date"),
            author=data.get("author"),
        )


@dataclass(frozen=True)
class Resource:
    """What one URL gave when it was last fetched."""

    url: str
    # "page" (an HTML page or a PDF), "feed", "sitemap" (of pages) or "sitemapindex".
    kind: str
    validators: Validators = field(default_factory=Validators)
    lastmod: str | None = None
    # Ids of the articles it gave itself (a page's article; a feed's full-text entries).
    articles: tuple[str, ...] = ()
    # The pages it lists (feeds, sitemaps).
    listing: tuple[Link, ...] = ()
    # The day (UTC, YYYY-MM-DD) it last answered.
    checked: str | None = None

    def row(self) -> WebResourceRow:
        return WebResourceRow(
            url=self.url,
            kind=self.kind,
            etag=self.validators.etag,
            last_modified=self.validators.last_modified,
            lastmod=self.lastmod,
            articles=dict.fromkeys(self.articles, ""),
            listing=[link.to_json() for link in self.listing],
            checked=self.checked,
        )


def today() -> str:
    return datetime.now(UTC).date().isoformat()


class WebState:
    """The committed generation's web resources and articles, for one ingest's reads.

    Ingest hands over the generation it builds on, which it holds open (closing the state
    leaves it open); ``open`` opens one for a source read on its own, and ``close`` closes
    that (``close_committed``).
    """

    def __init__(
        self,
        committed: ArticleReader | None,
        *,
        close_committed: Callable[[], None] | None = None,
    ) -> None:
        self._committed = committed
        self._close_committed = close_committed
        self._rows = committed.web_resources() if committed else {}
        indexed = committed.indexed_articles() if committed and self._rows else {}
        self._hashes = {article_id: a.content_hash for article_id, a in indexed.items()}

    @classmethod
    def open(cls, index_dir: Path, storage: IndexBackend | None = None) -> WebState:
        """The state of the index at ``index_dir`` (kept by ``storage``, by default the local
        backend); empty when there is no index yet."""
        from ..errors import CitebotError
        from ..index import LocalBackend

        try:
            reader = (storage or LocalBackend()).open_reader(index_dir, None)
        except (CitebotError, OSError, sqlite3.Error):
            # No index yet, or none readable (the write will say so): everything is new.
            return cls(None)
        return cls(reader, close_committed=reader.close)

    def __enter__(self) -> WebState:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._close_committed is not None:
            self._close_committed()
            self._close_committed = None
        self._committed = None

    def resource(self, url: str) -> Resource | None:
        """What ``url`` gave last time, if every article it gave is still indexed as it was."""
        row = self._rows.get(url)
        if row is None:
            return None
        if any(self._hashes.get(i) != digest for i, digest in row.articles.items()):
            return None
        return Resource(
            url=row.url,
            kind=row.kind,
            validators=Validators(row.etag, row.last_modified),
            lastmod=row.lastmod,
            articles=tuple(row.articles),
            listing=tuple(Link.from_json(item) for item in row.listing),
            checked=row.checked,
        )

    def articles(self, ids: tuple[str, ...]) -> list[Article]:
        if not ids or self._committed is None:
            return []
        found = self._committed.articles_by_id(ids)
        return [found[i] for i in ids if i in found]

    def has_article(self, article_id: str) -> bool:
        if self._committed is None:
            return False
        return self._committed.article(article_id) is not None
