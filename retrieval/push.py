"""Articles pushed one at a time (the HTTP API's PUT and DELETE), written the way ingest
writes: the same chunking, embedding and crash-safe new generation, many pushes in one
write. Pushed articles are recorded under ``PUSH_ROOT``, which pruning never touches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from .config import Settings
from .embedding import Embedder
from .errors import LoadError
from .ingest import IngestReport, ingest
from .loaders import article_from_record
from .pruning import PUSH_ROOT
from .records import Article, Problem
from .sources import SourceOutcome
from .text import printable

# Longest article id a push may name (ids appear in URLs and citations).
MAX_ID_CHARS = 200


def pushed_article(article_id: str, record: Any, settings: Settings) -> Article:
    """The article a push describes: ``{title, text, url?, date?, author?}`` under
    ``article_id``; LoadError (one line) when the id or the record is unusable."""
    article_id = article_id.strip()
    if not article_id or len(article_id) > MAX_ID_CHARS or article_id != printable(article_id):
        raise LoadError(f"the article id must be 1 to {MAX_ID_CHARS} characters of text")
    if not isinstance(record, dict):
        raise LoadError("the body must be a JSON object {title, text, url?, date?, author?}")
    if not isinstance(record.get("title"), str) or not record["title"].strip():
        raise LoadError('no "title"')
    unknown = sorted(set(record) - {"title", "text", "url", "date", "author", "id"})
    if unknown:
        raise LoadError(f"unknown field(s): {', '.join(unknown)}")
    if "id" in record and record["id"] != article_id:
        raise LoadError('the body\'s "id" differs from the id in the URL')
    article = article_from_record({**record, "id": article_id}, article_id, settings.ingest)
    if article.url is not None and not article.url.lower().startswith(("http://", "https://")):
        raise LoadError('"url" must be an http:// or https:// address')
    return replace(article, source=article.url or f"{PUSH_ROOT}{article_id}")


class PushedSource:
    """The articles of one batch of pushes, as an ingest source: never complete, so a
    prune removes nothing because of it."""

    def __init__(self, articles: Sequence[Article]) -> None:
        self.articles = list(articles)

    @property
    def root(self) -> str:
        return PUSH_ROOT

    def read(self) -> Iterator[Article | Problem]:
        yield from self.articles

    @property
    def outcome(self) -> SourceOutcome:
        return SourceOutcome(complete=False, documents=len(self.articles))


def write_pushes(
    settings: Settings,
    embedder: Embedder,
    upserts: Sequence[Article],
    removals: Sequence[str] = (),
) -> IngestReport:
    """Add or replace ``upserts`` and remove ``removals`` (article ids) in one new generation.

    The last push of an id wins: callers pass each id once, in either list.
    """
    sources = [PushedSource(upserts)] if upserts else []
    return ingest(sources, settings, embedder, remove=removals)
