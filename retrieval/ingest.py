"""Ingest: read files, chunk new and changed articles, embed them, and write a new index generation."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .chunking import Chunker, embedding_text
from .config import Settings
from .embedding import Embedder, SpanEmbedder
from .errors import CitebotError, PruneRefusedError
from .index import IndexWriter, WriteLock, lock_for_writing
from .records import Article, Chunk, Problem
from .sources import CheckingSource, Source, SourceOutcome, StatefulSource, open_source
from .store import IndexedArticle
from .text import sentence_spans

logger = logging.getLogger(__name__)

# Chunks embedded per model call: large enough for efficient batches, small enough for
# a smooth progress bar.
EMBED_BATCH = 256


@dataclass
class SourceReport:
    """What ingest did with one source root."""

    root: str
    # Files (or pages) read, and the articles found in them.
    documents: int = 0
    articles: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    # Why the root as a whole could not be read; nothing was pruned from it.
    failure: str | None = None
    # What was skipped: files and records, named relative to the root (or, for a root
    # that failed, the root as given).
    problems: list[Problem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        del data["problems"]  # listed once, in the report's "skipped"
        data["skipped"] = self.skipped
        return data


@dataclass(frozen=True)
class Change:
    """One article that an ingest added, updated or removed (what `citebot sync` prints)."""

    kind: str  # "added", "updated" or "removed"
    id: str
    title: str
    source: str


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
    sources: list[SourceReport] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def articles(self) -> int:
        return self.added + self.updated + self.unchanged

    @property
    def failed(self) -> list[SourceReport]:
        """The roots that could not be read at all (nothing was pruned from them)."""
        return [s for s in self.sources if s.failure]

    def changes_line(self) -> str:
        """``3 added, 1 updated, 0 removed, 2 failed, 40 unchanged``: what a sync did."""
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed,"
            f" {len(self.skipped)} failed, {self.unchanged} unchanged"
        )

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["skipped"] = [{"where": p.where, "reason": p.reason} for p in self.skipped]
        data["sources"] = [s.to_dict() for s in self.sources]
        return data


def content_hash(article: Article, settings: Settings) -> str:
    """Changes when the article or anything that shapes its chunks changes."""
    fields = asdict(article)
    if not article.pages:
        # Articles without pages hash as they did before pages existed: not re-embedded.
        del fields["pages"]
    payload = {"article": fields, "chunking": asdict(settings.chunking)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class _Found:
    article: Article
    source: SourceReport


def ingest(
    paths: Sequence[Path | str | Source],
    settings: Settings,
    embedder: Embedder,
    *,
    prune: bool = False,
    force: bool = False,
    rebuild: bool = False,
    show_progress: bool = False,
) -> IngestReport:
    """Add the articles under ``paths`` (or read from sources) to the index in ``settings.index_dir``.

    Unchanged articles are not embedded again; a changed article replaces its chunks.
    With ``prune``, indexed articles that were not found again are removed, except
    those of a root that could not be read (see ``prune_plan``); a prune that would
    remove more than ``[ingest] max_prune_share`` of the index raises
    PruneRefusedError, leaving the index unchanged, unless ``force``. With
    ``rebuild``, the index starts empty (for a new model or schema). Nothing becomes
    visible to readers until everything has been written; an ingest that changes
    nothing writes no new generation.
    """
    # The lock and the index checks come before reading files or loading the model, so
    # a second ingest, or an index that needs --rebuild, is refused in milliseconds.
    with lock_for_writing(
        settings.index_dir, embedder.name, rebuild=rebuild, backend=embedder.backend
    ) as lock:
        return _ingest(
            paths, settings, embedder, lock, prune=prune, force=force, show_progress=show_progress
        )


def _ingest(
    paths: Sequence[Path | str | Source],
    settings: Settings,
    embedder: Embedder,
    lock: WriteLock,
    *,
    prune: bool,
    force: bool,
    show_progress: bool,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    # A root given twice is read once (its articles would all be duplicates).
    unique: dict[str, Source] = {}
    for path in paths:
        source = open_source(path, settings) if isinstance(path, str | os.PathLike) else path
        unique.setdefault(source.root, source)
    sources = list(unique.values())
    with lock.next_generation(embedder.dimension, settings.chunking, embedder.artifact) as index:
        indexed = index.store.indexed_articles()
        found, outcomes = _read(sources, report)

        pending: list[tuple[_Found, str]] = []
        for item in found.values():
            digest = content_hash(item.article, settings)
            before = indexed.get(item.article.id)
            if before is not None and before.content_hash == digest:
                item.source.unchanged += 1
                if before.root != item.source.root:
                    index.store.set_root([item.article.id], item.source.root)
            else:
                pending.append((item, digest))

        if prune:
            _confirm_gone(sources, indexed, set(found), outcomes, report)
        gone = prune_plan(indexed, set(found), outcomes) if prune else []
        share = settings.ingest.max_prune_share
        if len(gone) > share * len(indexed) and not force:
            raise PruneRefusedError(
                f"pruning would remove {len(gone):,} of the {len(indexed):,} indexed articles"
                f" ({len(gone) / len(indexed):.0%}), more than the {share:.0%} allowed by"
                " [ingest] max_prune_share; nothing was changed. Check that every source is"
                " there, or prune anyway with `citebot ingest --prune --force`."
            )

        chunker = Chunker(settings.chunking, embedder.count_tokens, embedder.max_tokens)
        prefix = settings.chunking.title_prefix
        chunked: list[tuple[_Found, str, list[Chunk]]] = []
        for item, digest in pending:
            try:
                chunks = chunker.chunk(item.article)
            except Exception as exc:  # nothing is written yet: only this article is lost
                if not isinstance(exc, CitebotError):
                    logger.debug("chunking %s failed", item.article.source, exc_info=True)
                    exc = CitebotError(f"cannot be chunked: {type(exc).__name__}: {exc}")
                _skip(report, item.source, Problem(item.article.source, str(exc)))
                continue
            chunked.append((item, digest, chunks))

        roots = {s.root: s for s in report.sources}
        for article_id in gone:
            if removed := index.store.article(article_id):
                report.changes.append(Change("removed", article_id, removed.title, removed.source))
            index.vectors.remove(index.store.delete_article(article_id))
            if counts := roots.get(indexed[article_id].root or ""):
                counts.removed += 1
        ids: list[int] = []
        texts: list[str] = []
        all_chunks: list[Chunk] = []
        for item, digest, chunks in chunked:
            article = item.article
            if article.id in indexed:
                index.vectors.remove(index.store.delete_article(article.id))
                item.source.updated += 1
                report.changes.append(Change("updated", article.id, article.title, article.source))
            else:
                item.source.added += 1
                report.changes.append(Change("added", article.id, article.title, article.source))
            root = item.source.root
            ids.extend(index.store.add_article(item.article, digest, chunks, root))
            texts.extend(embedding_text(item.article.title, c.text, prefix) for c in chunks)
            all_chunks.extend(chunks)
        report.chunks_embedded = len(texts)
        _embed_into(index, embedder, ids, texts, all_chunks, show_progress)
        for source in sources:
            if isinstance(source, StatefulSource):
                source.save_state(index.store)

    report.removed = len(gone)
    report.added = sum(s.added for s in report.sources)
    report.updated = sum(s.updated for s in report.sources)
    report.unchanged = sum(s.unchanged for s in report.sources)
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


def _read(
    sources: Sequence[Source], report: IngestReport
) -> tuple[dict[str, _Found], dict[str, SourceOutcome]]:
    """Every source's articles by id (the first of a duplicated id), and its outcome."""
    found: dict[str, _Found] = {}
    outcomes: dict[str, SourceOutcome] = {}
    for source in sources:
        counts = SourceReport(source.root)
        report.sources.append(counts)
        for item in source.read():
            if isinstance(item, Problem):
                _skip(report, counts, item)
            elif item.id in found and found[item.id].article == item:
                # The same article reached twice (a page in a feed and in a sitemap).
                continue
            elif item.id in found:
                problem = Problem(item.source, f"duplicate article id {item.id!r}; kept the first")
                _skip(report, counts, problem)
            else:
                found[item.id] = _Found(item, counts)
                counts.articles += 1
        outcome = source.outcome
        outcomes[source.root] = outcome
        counts.failure = outcome.failure
        counts.documents = outcome.documents
    report.files = sum(s.documents for s in report.sources)
    return found, outcomes


def _confirm_gone(
    sources: Sequence[Source],
    indexed: dict[str, IndexedArticle],
    found: set[str],
    outcomes: dict[str, SourceOutcome],
    report: IngestReport,
) -> None:
    """Ask each source that could not list everything about its articles not found again."""
    counts = {c.root: c for c in report.sources}
    for source in sources:
        outcome = outcomes[source.root]
        if outcome.failure or outcome.complete or not isinstance(source, CheckingSource):
            continue
        unseen = [
            article_id
            for article_id, article in indexed.items()
            if article.root == source.root
            and article_id not in found
            and article_id not in outcome.gone
        ]
        if not unseen:
            continue
        gone, problems = source.confirm_gone(unseen)
        for problem in problems:
            _skip(report, counts[source.root], problem)
        outcomes[source.root] = replace(outcome, gone=outcome.gone | gone)


def _skip(report: IngestReport, counts: SourceReport, problem: Problem) -> None:
    logger.info("skipped %s", problem)  # callers report problems (CLI, bot)
    report.skipped.append(problem)
    counts.problems.append(problem)


def prune_plan(
    indexed: dict[str, IndexedArticle], found: set[str], outcomes: dict[str, SourceOutcome]
) -> list[str]:
    """The indexed articles a prune removes: those not found again, except

    - none of a root that failed (missing, unreadable, no articles);
    - of a root not read completely, only those its source reports gone;
    - none from a document of the root that was found but not read fully;
    - none whose root is unknown (an index from before roots were recorded) while any
      root failed, since it may belong to that root.

    Articles of a root not given this time are removed when not found (they were not
    looked for): a prune names every root the index should keep.
    """
    any_failed = any(o.failure for o in outcomes.values())
    gone = []
    for article_id, article in indexed.items():
        if article_id in found:
            continue
        outcome = outcomes.get(article.root) if article.root is not None else None
        if outcome is not None:
            if outcome.failure:
                continue
            if article_id in outcome.gone or (
                outcome.complete and not outcome.keeps(article.source)
            ):
                gone.append(article_id)
        elif article.root is None and (
            any_failed or any(o.keeps(article.source) for o in outcomes.values())
        ):
            continue
        else:
            gone.append(article_id)
    return gone


def _embed_into(
    index: IndexWriter,
    embedder: Embedder,
    ids: list[int],
    texts: list[str],
    chunks: list[Chunk],
    show_progress: bool,
) -> None:
    if not texts:
        return
    from tqdm import tqdm

    # With a model that gives them, each chunk's sentence vectors come from the same pass.
    with_sentences = isinstance(embedder, SpanEmbedder)
    # Longest first, so each batch holds texts of similar length (less padding), and
    # an out-of-memory error, if any, comes at once rather than at the end.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    with tqdm(total=len(texts), unit="chunk", desc="embedding", disable=not show_progress) as bar:
        for start in range(0, len(order), EMBED_BATCH):
            batch = order[start : start + EMBED_BATCH]
            batch_texts = [texts[i] for i in batch]
            if with_sentences:
                spans = [chunk_sentences(texts[i], chunks[i]) for i in batch]
                embedded, pooled = embedder.embed_with_spans(
                    batch_texts, [[s for s, _ in pairs] for pairs in spans]
                )
                if pooled is None:
                    logger.info(
                        "the index's model gives no sentence vectors (exported before they"
                        " existed): highlights use shared words; `citebot ingest --rebuild`"
                        " makes them"
                    )
                    with_sentences = False
                else:
                    for i, pairs, vectors in zip(batch, spans, pooled, strict=True):
                        index.store.add_sentence_vectors(ids[i], [a for _, a in pairs], vectors)
            else:
                embedded = embedder.embed(batch_texts)
            index.vectors.add([ids[i] for i in batch], np.asarray(embedded, dtype=np.float32))
            bar.update(len(batch))


def chunk_sentences(text: str, chunk: Chunk) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The sentences of ``chunk`` as offsets in its embedded ``text`` (which may start with a
    title) and in its article."""
    shift = len(text) - len(chunk.text)
    return [
        ((shift + a, shift + b), (chunk.char_start + a, chunk.char_start + b))
        for a, b in sentence_spans(chunk.text)
    ]
