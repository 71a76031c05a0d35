"""Ingest: read files, chunk new and changed articles, embed them, and write a new index generation."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunking import Chunker, embedding_text
from .config import Settings
from .embedding import Embedder
from .index import VectorIndex, WriteLock, lock_for_writing
from .loaders import Problem, discover, iter_articles
from .records import Article, Chunk

logger = logging.getLogger(__name__)

# Chunks embedded per model call: large enough for efficient batches, small enough for
# a smooth progress bar.
EMBED_BATCH = 256


@dataclass
class IngestReport:
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    skipped: list[Problem] = field(default_factory=list)

    @property
    def articles(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["skipped"] = [{"where": p.where, "reason": p.reason} for p in self.skipped]
        return data


def content_hash(article: Article, settings: Settings) -> str:
    """Changes when the article or anything that shapes its chunks changes."""
    payload = {"article": asdict(article), "chunking": asdict(settings.chunking)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def ingest(
    paths: Sequence[Path | str],
    settings: Settings,
    embedder: Embedder,
    *,
    prune: bool = False,
    rebuild: bool = False,
    show_progress: bool = False,
) -> IngestReport:
    """Add the articles under ``paths`` to the index in ``settings.index_dir``.

    Unchanged articles are not embedded again; a changed article replaces its chunks.
    With ``prune``, articles not found under ``paths`` are removed. With ``rebuild``,
    the index starts empty (for a new model or schema). Nothing becomes visible to
    readers until everything has been written; an ingest that changes nothing writes
    no new generation.
    """
    # The lock and the index checks come before reading files or loading the model, so
    # a second ingest, or an index that needs --rebuild, is refused in milliseconds.
    with lock_for_writing(settings.index_dir, embedder.name, rebuild=rebuild) as lock:
        return _ingest(paths, settings, embedder, lock, prune=prune, show_progress=show_progress)


def _ingest(
    paths: Sequence[Path | str],
    settings: Settings,
    embedder: Embedder,
    lock: WriteLock,
    *,
    prune: bool,
    show_progress: bool,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    files, report.skipped = discover(paths)
    report.files = len(files)

    articles: dict[str, Article] = {}
    for source, loaded in iter_articles(files):
        if isinstance(loaded, Exception):
            report.skipped.append(Problem(str(source.path), str(loaded)))
            continue
        report.skipped.extend(loaded.problems)
        for article in loaded.articles:
            if article.id in articles:
                report.skipped.append(
                    Problem(article.source, f"duplicate article id {article.id!r}; kept the first")
                )
                continue
            articles[article.id] = article
    for problem in report.skipped:
        logger.warning("skipped %s", problem)

    with lock.next_generation(embedder.dimension, settings.chunking) as index:
        stored = index.store.content_hashes()
        pending: list[tuple[Article, str]] = []
        for article in articles.values():
            digest = content_hash(article, settings)
            if stored.get(article.id) == digest:
                report.unchanged += 1
            else:
                pending.append((article, digest))
        gone = [i for i in stored if i not in articles] if prune else []
        for article_id in [a.id for a, _ in pending if a.id in stored] + gone:
            index.vectors.remove(index.store.delete_article(article_id))
        report.removed = len(gone)
        report.updated = sum(1 for a, _ in pending if a.id in stored)
        report.added = len(pending) - report.updated

        chunker = Chunker(settings.chunking, embedder.count_tokens, embedder.max_tokens)
        ids: list[int] = []
        texts: list[str] = []
        for article, digest in pending:
            chunks: list[Chunk] = chunker.chunk(article)
            ids.extend(index.store.add_article(article, digest, chunks))
            prefix = settings.chunking.title_prefix
            texts.extend(embedding_text(article.title, c.text, prefix) for c in chunks)
        report.chunks_embedded = len(texts)
        _embed_into(index.vectors, embedder, ids, texts, show_progress)

    report.seconds = time.perf_counter() - started
    logger.info(
        "ingested %d files: %d added, %d updated, %d unchanged, %d removed, %d chunks in %.1fs",
        report.files,
        report.added,
        report.updated,
        report.unchanged,
        report.removed,
        report.chunks_embedded,
        report.seconds,
    )
    return report


def _embed_into(
    vectors: VectorIndex, embedder: Embedder, ids: list[int], texts: list[str], show_progress: bool
) -> None:
    if not texts:
        return
    from tqdm import tqdm

    # Longest first, so each batch holds texts of similar length (less padding), and
    # an out-of-memory error, if any, comes at once rather than at the end.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    with tqdm(total=len(texts), unit="chunk", desc="embedding", disable=not show_progress) as bar:
        for start in range(0, len(order), EMBED_BATCH):
            batch = order[start : start + EMBED_BATCH]
            embedded = embedder.embed([texts[i] for i in batch])
            vectors.add([ids[i] for i in batch], np.asarray(embedded, dtype=np.float32))
            bar.update(len(batch))
