"""Articles pushed one at a time (the HTTP API's PUT and DELETE), written the way ingest
writes: the same chunking, embedding and crash-safe new generation, many pushes in one
write. Pushed articles are recorded under ``PUSH_ROOT``, which pruning never touches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .embedding import Embedder, SpanEmbedder
from .embedding.base import Span
from .embedding.model_files import OnnxModel
from .errors import CitebotError, LoadError
from .index import backend_of
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
    return ingest(sources, settings, _current_files(embedder, settings), remove=removals)


class _WithFiles:
    """An embedder that names other copies of its model files (the same files: the same
    checksum); everything else is the embedder's own."""

    def __init__(self, embedder: Embedder, artifact: OnnxModel) -> None:
        self._embedder = embedder
        self.artifact = artifact
        self.name = embedder.name
        self.backend = embedder.backend
        self.dimension = embedder.dimension
        self.max_tokens = embedder.max_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._embedder.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._embedder.embed(texts)


class _SpansWithFiles(_WithFiles):
    def __init__(self, embedder: SpanEmbedder, artifact: OnnxModel) -> None:
        super().__init__(embedder, artifact)
        self._spans = embedder

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        return self._spans.embed_with_spans(texts, spans)


def _current_files(embedder: Embedder, settings: Settings) -> Embedder:
    """``embedder``, naming the model files of the index's current generation.

    A write copies the model files into the new generation from where the embedder says
    they are. A long-lived embedder (a server's) was loaded from the generation current
    then, which a later write deletes; the current generation holds the same files.
    """
    artifact = embedder.artifact
    if artifact is None:
        return embedder
    try:
        location = Path(settings.index_dir)
        folder = location / backend_of(settings).read_manifest(location).folder
        current = OnnxModel.read(folder)
    except CitebotError:
        return embedder  # a new or damaged index: the write says what is wrong
    if current.sha256 != artifact.sha256:
        return embedder  # another model: the write refuses it
    if isinstance(embedder, SpanEmbedder):
        return _SpansWithFiles(embedder, current)
    return _WithFiles(embedder, current)
