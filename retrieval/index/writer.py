"""The ``IndexWriter`` of the local backend: a store and the vectors of the write."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..records import Article, Chunk
from .base import IndexedArticle, WebResourceRow
from .segments import SegmentWriter
from .store import Store


@dataclass
class GenerationWriter:
    """A write in progress (an ``IndexWriter``); committed when the ``next_generation``
    block ends, and in batches before (``commit_batch``).

    ``vectors`` adds and removes vectors by chunk id: the live segment of a write in place
    (``segments.SegmentWriter``), or the VectorIndex of a new generation, which may be
    replaced within the block (by ``vectors.adapted(...)``, say) and is written at the end
    as the kind its size calls for.
    """

    store: Store
    vectors: Any  # VectorIndex | SegmentWriter
    # Commits what was written so far, if anything; None: committed only as a whole.
    batch_commit: Callable[[], bool] | None = None
    # A staged generation keeps ``vectors`` in memory and a copy of them in its store's
    # segment table, committed with each batch (so a batch survives a crash: ``staging``).
    staged: SegmentWriter | None = None

    def commit_batch(self) -> bool:
        return self.batch_commit() if self.batch_commit is not None else False

    def add_article(
        self, article: Article, content_hash: str, chunks: Sequence[Chunk], root: str | None
    ) -> list[int]:
        return self.store.add_article(article, content_hash, chunks, root)

    def delete_article(self, article_id: str) -> None:
        removed = self.store.delete_article(article_id)
        self.vectors.remove(removed)
        if self.staged is not None:
            self.staged.discard(removed)

    def set_root(self, article_ids: Iterable[str], root: str) -> None:
        self.store.set_root(article_ids, root)

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        self.vectors.add(list(ids), vectors)
        if self.staged is not None:
            self.staged.add(list(ids), vectors)

    def add_sentence_vectors(
        self, chunk_id: int, spans: Sequence[tuple[int, int]], vectors: np.ndarray
    ) -> None:
        self.store.add_sentence_vectors(chunk_id, spans, vectors)

    def save_web_resources(self, rows: Iterable[WebResourceRow]) -> None:
        self.store.save_web_resources(rows)

    def forget_web_resources(self, urls: Iterable[str]) -> None:
        self.store.forget_web_resources(urls)

    def group_copies(self) -> int:
        return self.store.copies.update()

    def article(self, article_id: str) -> Article | None:
        return self.store.article(article_id)

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        return self.store.articles_by_id(ids)

    def indexed_articles(self) -> dict[str, IndexedArticle]:
        return self.store.indexed_articles()

    def indexed_article(self, article_id: str) -> IndexedArticle | None:
        return self.store.indexed_article(article_id)

    def web_resources(self) -> dict[str, WebResourceRow]:
        return self.store.web_resources()
