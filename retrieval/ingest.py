"""Ingest: read the sources, chunk new and changed articles, embed them, and write a new index
generation. Reading and chunking, writing the store, and embedding run at once, on three
threads (see ``_ingest``).

(Over 600 lines, for a reason: the three threads of one write share the queues and the
report that splitting them would have to hand around; what stands alone has its own
module: ``progress``, ``pruning``, ``files``, ``batches``, ``web.shared``.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import metrics
from .batches import Batches
from .chunking import Chunker, embedding_text
from .config import Settings
from .embedding import Embedder, SpanEmbedder
from .errors import CitebotError, PruneRefusedError
from .index import IndexedArticle, IndexWriter, WriteLock, backend_of
from .progress import Progress
from .pruning import prune_plan
from .records import Article, Chunk, Problem
from .sources import (
    CheckingSource,
    FileSource,
    ReportsProgress,
    Source,
    SourceOutcome,
    StatefulSource,
)
from .text import sentence_spans

if TYPE_CHECKING:
    from .web.fetch import Fetcher

logger = logging.getLogger(__name__)

# Chunks embedded per model call: large enough for efficient batches (sorted by length
# inside, so little padding), small enough for a smooth progress bar.
EMBED_BATCH = 256
# Articles read and chunked ahead of the writer: enough that embedding never waits for
# reading, few enough that memory stays small whatever the corpus.
READ_AHEAD = 64


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
    # Articles that are copies of another (the same story: see retrieval.duplicates).
    copies: int = 0
    # Batches committed before the end of the run ([ingest] commit_every_articles).
    batches: int = 0
    # Articles a rebuild cut short had already written, kept by this one (not embedded
    # again; counted in ``unchanged`` too).
    resumed: int = 0
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


def ingest(
    paths: Sequence[Path | str | Source],
    settings: Settings,
    embedder: Embedder,
    *,
    prune: bool = False,
    force: bool = False,
    rebuild: bool = False,
    show_progress: bool = False,
    remove: Sequence[str] = (),
) -> IngestReport:
    """Add the articles under ``paths`` (or read from sources) to the index in ``settings.index_dir``.

    Unchanged articles are not embedded again; a changed article replaces its chunks.
    With ``prune``, indexed articles that were not found again are removed, except
    those of a root that could not be read (see ``prune_plan``); a prune that would
    remove more than ``[ingest] max_prune_share`` of the index raises
    PruneRefusedError, leaving the index unchanged, unless ``force``. With
    ``rebuild``, the index starts empty (for a new model or schema). Every write commits
    the articles written so far in batches (``[ingest] commit_every_articles`` /
    ``commit_every_seconds``); removals, the web sources' state and the stories of copies
    are committed at the end, so a run cut short removes nothing. A first ingest's first
    batch creates the index; a rebuild's batches stay out of sight (the old index is read
    until the rebuild ends) and a rebuild cut short is resumed by the next one (see
    ``index.staging``); an ingest that changes nothing writes nothing. ``remove`` names articles to delete in the same
    write (an explicit removal, as the push API's DELETE: no prune safeguard applies);
    an article both read and named there is kept.
    """
    # The lock and the index checks come before reading files or loading the model, so
    # a second ingest, or an index that needs --rebuild, is refused in milliseconds.
    from .web.shared import shared_fetcher

    storage = backend_of(settings)
    with (
        storage.lock_for_writing(
            settings.index_dir, embedder.name, rebuild=rebuild, backend=embedder.backend
        ) as lock,
        shared_fetcher(paths, settings) as fetcher,
    ):
        report = _ingest(
            paths,
            settings,
            embedder,
            lock,
            prune=prune,
            force=force,
            show_progress=show_progress,
            fetcher=fetcher,
            remove=remove,
        )
    metrics.ingested(
        {
            "added": report.added,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "skipped": len(report.skipped),
        }
    )
    return report


def open_source(
    given: str | os.PathLike[str], settings: Settings, fetcher: Fetcher | None = None
) -> Source:
    """The source for a root as the user gave it: a URL (page, feed, sitemap, PDF) or a path."""
    from .urls import looks_like_url

    if isinstance(given, str) and looks_like_url(given):
        from .web.source import WebSource

        return WebSource(given, settings, fetcher=fetcher)
    return FileSource(given, settings)


def _ingest(
    paths: Sequence[Path | str | Source],
    settings: Settings,
    embedder: Embedder,
    lock: WriteLock,
    *,
    prune: bool,
    force: bool,
    show_progress: bool,
    fetcher: Fetcher | None = None,
    remove: Sequence[str] = (),
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    # A root given twice is read once (its articles would all be duplicates).
    unique: dict[str, Source] = {}
    for path in paths:
        source = (
            open_source(path, settings, fetcher) if isinstance(path, str | os.PathLike) else path
        )
        unique.setdefault(source.root, source)
    sources = list(unique.values())
    for source in sources:
        if isinstance(source, StatefulSource):
            source.use_committed(lock.previous)
    with lock.next_generation(
        embedder.dimension, settings.chunking, embedder.artifact, settings.vectors
    ) as index:
        # Each article read is looked up by id in what was committed, so a write of one
        # article never reads every indexed article (9 s at a million chunks); a prune
        # needs them all (a new index has none; a resumed rebuild, those it staged).
        indexed = index.indexed_articles() if prune or lock.previous is None else {}
        lookup = indexed.get if prune or lock.previous is None else lock.previous.indexed_article
        chunker = Chunker(settings.chunking, embedder.count_tokens, embedder.max_tokens)
        prefix = settings.chunking.title_prefix
        # Three stages at once: a thread reads and chunks (_Reader), this one writes the
        # store, another embeds (_Embedding). Nothing is visible before a commit, so a
        # failure anywhere discards what was written since the last one: a long write
        # commits in batches (Batches), the rest once the removals are decided.
        batches = Batches(settings)
        with (
            Progress(show_progress) as progress,
            _Reader(sources, settings, lookup, chunker, report) as reader,
            _Embedding(index, embedder, progress) as embedding,
        ):
            for item in reader:
                if item.chunks is None:  # unchanged
                    if item.moved:
                        index.set_root([item.article.id], item.source.root)
                    embedding.add(item.progress)
                    continue
                if item.replaces:
                    index.delete_article(item.article.id)
                ids = index.add_article(item.article, item.digest, item.chunks, item.source.root)
                title = item.article.title
                texts = [embedding_text(title, c.text, prefix) for c in item.chunks]
                embedding.add(item.progress, ids, texts, item.chunks)
                if batches.due():
                    # Every vector of the articles written is stored first: a batch holds
                    # whole articles, so ids = rows = keyword rows at each commit.
                    embedding.finish()
                    if index.commit_batch():
                        report.batches += 1
                        logger.info("committed a batch of %d articles", batches.pending)
                    batches.committed()
            embedding.finish()
        report.chunks_embedded = embedding.embedded

        # Decided once every source has been read; a refusal discards what was written.
        found = set(reader.found)
        resumed = False
        if lock.previous is None and indexed:
            # A new generation holds what was read: what a resumed rebuild had staged and
            # did not read again goes (not a removal: the old index is replaced as a whole).
            stale = [i for i in indexed if i not in found]
            for article_id in stale:
                index.delete_article(article_id)
            resumed = True
            logger.info("a resumed rebuild: %d staged articles not read again", len(stale))
            indexed = {}
        if prune:
            _confirm_gone(sources, indexed, found, reader.outcomes, report)
        gone = prune_plan(indexed, found, reader.outcomes) if prune else []
        named = [i for i in dict.fromkeys(remove) if i not in found and lookup(i) is not None]
        gone += [i for i in named if i not in set(gone)]
        share = settings.ingest.max_prune_share
        if len(gone) - len(named) > share * len(indexed) and not force:
            kept = (
                f"nothing was removed (the {report.batches:,} batches of articles"
                " committed during the run are kept)"
                if report.batches
                else "nothing was changed"
            )
            raise PruneRefusedError(
                f"pruning would remove {len(gone):,} of the {len(indexed):,} indexed articles"
                f" ({len(gone) / len(indexed):.0%}), more than the {share:.0%} allowed by"
                f" [ingest] max_prune_share; {kept}. Check that every source is"
                " there, or prune anyway with `citebot ingest --prune --force`."
            )
        roots = {s.root: s for s in report.sources}
        for article_id in gone:
            before = lookup(article_id)
            if removed := index.article(article_id):
                report.changes.append(Change("removed", article_id, removed.title, removed.source))
            index.delete_article(article_id)
            if before is not None and (counts := roots.get(before.root or "")):
                counts.removed += 1
        for source in sources:
            if isinstance(source, StatefulSource):
                source.save_state(index)
        report.copies = index.group_copies()

    report.removed = len(gone)
    report.added = sum(s.added for s in report.sources)
    report.updated = sum(s.updated for s in report.sources)
    report.unchanged = sum(s.unchanged for s in report.sources)
    # A resumed rebuild's unchanged articles are those it found staged as they are now.
    report.resumed = report.unchanged if resumed else 0
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


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    """An article as read: with its chunks if it is new or changed, else unchanged."""

    article: Article
    source: SourceReport
    digest: str
    chunks: list[Chunk] | None
    # Unchanged, but found under another root than the index records.
    moved: bool
    # How far reading had got when this article was read (0 to 1; None: unknown).
    progress: float | None
    # The index holds an article of this id (replaced, if it has chunks).
    replaces: bool


class _Stopped(Exception):
    """The writer has stopped the reader."""


_END = object()


class _Reader:
    """Reads the sources on a thread of its own, in order, and chunks what is new or
    changed, at most READ_AHEAD articles ahead of the writer: reading, parsing and chunking
    overlap with embedding, and memory stays bounded whatever the size of the corpus.

    Iterating gives the articles read; an exception of the reading thread is raised there.
    The report's per-source counts and problems are the reader's; they, ``found`` and
    ``outcomes`` are complete once the iteration has ended.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        settings: Settings,
        indexed: Callable[[str], IndexedArticle | None],
        chunker: Chunker,
        report: IngestReport,
    ) -> None:
        self.sources = sources
        self.settings = settings
        self.indexed = indexed
        self.chunker = chunker
        self.report = report
        # The articles read, by id, with their content hash.
        self.found: dict[str, str] = {}
        self.outcomes: dict[str, SourceOutcome] = {}
        self._queue: queue.Queue[object] = queue.Queue(READ_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citebot-read", daemon=True)

    def __enter__(self) -> _Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # After a failure elsewhere, the reader stops at its next article (a file being
        # parsed is finished first, within [ingest] max_seconds_per_file).
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[_Read]:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, _Read)
            yield item

    def _run(self) -> None:
        try:
            for number, source in enumerate(self.sources):
                self._read(source, number)
            self.report.files = sum(s.documents for s in self.report.sources)
            self._put(_END)
        except _Stopped:
            pass
        except BaseException as exc:  # raised in the writer, whatever it is
            with contextlib.suppress(_Stopped):
                self._put(exc)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return
        raise _Stopped

    def _read(self, source: Source, number: int) -> None:
        counts = SourceReport(source.root)
        self.report.sources.append(counts)
        stream = source.read()
        try:
            for item in stream:
                if self._stop.is_set():
                    raise _Stopped
                if isinstance(item, Problem):
                    _skip(self.report, counts, item)
                    continue
                digest = content_hash(item, self.settings)
                if self.found.get(item.id) == digest:
                    continue  # the same article reached twice (a page in a feed and a sitemap)
                if item.id in self.found:
                    duplicate = f"duplicate article id {item.id!r}; kept the first"
                    _skip(self.report, counts, Problem(item.source, duplicate))
                    continue
                self.found[item.id] = digest
                counts.articles += 1
                read = self._prepare(item, digest, counts, self._progress(source, number))
                if read is not None:
                    self._put(read)
        finally:
            # A source left early lets go of what it holds (parsing workers, say).
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        outcome = source.outcome
        self.outcomes[source.root] = outcome
        counts.failure = outcome.failure
        counts.documents = outcome.documents

    def _prepare(
        self, article: Article, digest: str, counts: SourceReport, progress: float | None
    ) -> _Read | None:
        """The article, with its chunks if it is new or changed; None if it cannot be chunked."""
        before = self.indexed(article.id)
        if before is not None and before.content_hash == digest:
            counts.unchanged += 1
            moved = before.root != counts.root
            return _Read(article, counts, digest, None, moved, progress, True)
        try:
            chunks = self.chunker.chunk(article)
        except Exception as exc:  # nothing of it is written yet: only this article is lost
            if not isinstance(exc, CitebotError):
                logger.debug("chunking %s failed", article.source, exc_info=True)
                exc = CitebotError(f"cannot be chunked: {type(exc).__name__}: {exc}")
            _skip(self.report, counts, Problem(article.source, str(exc)))
            return None
        if before is None:
            counts.added += 1
        else:
            counts.updated += 1
        kind = "added" if before is None else "updated"
        self.report.changes.append(Change(kind, article.id, article.title, article.source))
        return _Read(article, counts, digest, chunks, False, progress, before is not None)

    def _progress(self, source: Source, number: int) -> float | None:
        """How far reading has got over all the sources, when they tell."""
        share = source.progress if isinstance(source, ReportsProgress) else None
        return None if share is None else (number + share) / len(self.sources)


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


# -- embedding -----------------------------------------------------------------------------

_Batch = list[tuple[int, str, Chunk]]  # chunk id, the text embedded, the chunk


@dataclass(frozen=True)
class _Embedded:
    """A batch's chunk vectors; from a SpanEmbedder also each chunk's sentences (article
    offsets) and their vectors."""

    vectors: np.ndarray
    spans: list[list[tuple[int, int]]] | None = None
    sentences: list[np.ndarray] | None = None


class _Embedding:
    """Embeds chunks in batches of EMBED_BATCH on a thread of its own while the writer goes
    on, and adds each batch's vectors to the index (with, from the same model pass, the
    vectors of each chunk's sentences) while the next batch is embedded. An article counts
    as done for the progress once its last chunk's vectors are in."""

    def __init__(self, index: IndexWriter, embedder: Embedder, progress: Progress) -> None:
        self.index = index
        self.embedder = embedder
        self.progress = progress
        self.with_sentences = isinstance(embedder, SpanEmbedder)
        self.embedded = 0
        self._waiting: _Batch = []
        # Per article given since: the chunks waiting once it was added, and its share.
        self._articles: list[tuple[int, float | None]] = []
        self._running: tuple[_Batch, list[float | None], Future[_Embedded]] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="citebot-ingest-embed")

    def __enter__(self) -> _Embedding:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # After a failure, a batch still running is waited for (its vectors go nowhere), so
        # that no thread of this ingest outlives it (a failed write in place ends at once:
        # it only rolls back its transaction).
        self._thread.shutdown(wait=True, cancel_futures=True)

    def add(
        self,
        share: float | None,
        ids: Sequence[int] = (),
        texts: Sequence[str] = (),
        chunks: Sequence[Chunk] = (),
    ) -> None:
        """An article's chunks to embed (none if it is unchanged), and how far reading had
        got when it was read."""
        self._waiting.extend(zip(ids, texts, chunks, strict=True))
        self._articles.append((len(self._waiting), share))
        while len(self._waiting) >= EMBED_BATCH:
            self._next(EMBED_BATCH)
        if not self._waiting and (self._running is None or self._running[2].done()):
            self._next(0)  # nothing to embed, nor to wait for: done now

    def finish(self) -> None:
        """Embed what is waiting, and store every vector."""
        while self._waiting or self._articles:
            self._next(len(self._waiting))
        self._start(None, [])

    def _next(self, size: int) -> None:
        """Start the next ``size`` chunks waiting, with the articles they complete."""
        batch = self._waiting[:size]
        del self._waiting[:size]
        complete = [share for end, share in self._articles if end <= size]
        self._articles = [(end - size, share) for end, share in self._articles if end > size]
        self._start(batch, complete)

    def _start(self, batch: _Batch | None, shares: list[float | None]) -> None:
        """Start ``batch`` as soon as the one before it is done, then store that one's
        vectors while this one runs."""
        previous = self._running
        done = previous[2].result() if previous else None
        self._running = None
        if batch:
            self._running = (batch, shares, self._thread.submit(self._embed, batch))
        if previous and done:
            self._store(previous[0], done)
            self.progress.done(previous[1], len(previous[0]))
        if not batch:  # articles with nothing to embed
            self.progress.done(shares, 0)

    def _embed(self, batch: _Batch) -> _Embedded:
        texts = [text for _, text, _ in batch]
        if not self.with_sentences:
            return _Embedded(self.embedder.embed(texts))
        assert isinstance(self.embedder, SpanEmbedder)
        sentences = [chunk_sentences(text, chunk) for _, text, chunk in batch]
        vectors, pooled = self.embedder.embed_with_spans(
            texts, [[s for s, _ in pairs] for pairs in sentences]
        )
        if pooled is None:
            logger.info(
                "the index's model gives no sentence vectors (exported before they existed):"
                " highlights use shared words; `citebot ingest --rebuild` makes them"
            )
            self.with_sentences = False
            return _Embedded(vectors)
        return _Embedded(vectors, [[a for _, a in pairs] for pairs in sentences], pooled)

    def _store(self, batch: _Batch, done: _Embedded) -> None:
        ids = [chunk_id for chunk_id, _, _ in batch]
        self.index.add_vectors(ids, np.asarray(done.vectors, dtype=np.float32))
        if done.spans is not None and done.sentences is not None:
            for chunk_id, spans, vectors in zip(ids, done.spans, done.sentences, strict=True):
                self.index.add_sentence_vectors(chunk_id, spans, vectors)
        self.embedded += len(batch)


def chunk_sentences(text: str, chunk: Chunk) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The sentences of ``chunk`` as offsets in its embedded ``text`` (which may start with a
    title) and in its article."""
    shift = len(text) - len(chunk.text)
    return [
        ((shift + a, shift + b), (chunk.char_start + a, chunk.char_start + b))
        for a, b in sentence_spans(chunk.text)
    ]
