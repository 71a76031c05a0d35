"""A live index for a long-running server (the Discord bot, an HTTP server): questions
answered from the current generation while newer ones are followed and swapped in.

``IndexHolder`` leases the current searcher to each question, switches to a newer
generation (committed by its own re-index, or by someone else: the CLI, a sync) without a
missed question, re-indexes on demand, and runs the sync schedule. Retrieval is
blocking, so every call into the library runs in a worker thread and the event loop stays
free for the server's own work (acknowledging Discord interactions, say).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from .config import Settings
from .embedding import Embedder
from .errors import CitebotError
from .records import (
    Answer,
    Article,
    ArticleRef,
    ArticleSummary,
    IndexStats,
    SearchFilter,
)

if TYPE_CHECKING:
    from .ingest import IngestReport
    from .search import Searcher
    from .sources import Source

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SearcherLike(Protocol):
    """What a server uses of ``retrieval.search.Searcher`` (tests may pass a small fake)."""

    def search(
        self,
        question: str,
        k: int | None = None,
        offset: int = 0,
        filters: SearchFilter | None = None,
    ) -> Answer: ...
    def check_filters(self, filters: SearchFilter) -> None: ...
    def suggest_titles(self, text: str, limit: int = 25) -> list[ArticleRef]: ...
    def suggest_sources(self, prefix: str, limit: int = 25) -> list[str]: ...
    def suggest_authors(self, prefix: str, limit: int = 25) -> list[str]: ...
    def article(self, id_or_title: str) -> Article: ...
    def articles(self) -> list[ArticleSummary]: ...
    def stats(self) -> IndexStats: ...
    def close(self) -> None: ...


class IndexSource(Protocol):
    """Where the holder's searchers come from: an index folder, and how to rebuild it."""

    def generation(self) -> int:
        """A number that grows with every commit to the folder (a cheap read, no model)."""
        ...

    def open(self) -> SearcherLike:
        """A searcher over the generation committed now."""
        ...

    def rebuild(self) -> IngestReport:
        """Re-read the configured sources into a new generation (pruning what is gone)."""
        ...


class IndexFolder:
    """The production ``IndexSource``: the configured index folder and sources.

    Questions embed with ``embedder``; a re-index embeds with a model instance of its own
    (``make_ingest_embedder``, loaded per re-index in under a second), so questions answered
    meanwhile never queue behind it.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        make_ingest_embedder: Callable[[], Embedder],
        sources: Callable[[], Sequence[str | Source]] | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.make_ingest_embedder = make_ingest_embedder
        # The sources of each rebuild (default: the configured ones), read when it starts:
        # a corpus's sources may change while the bot runs (/library).
        self.sources = sources or (lambda: settings.sources)
        self._last: Searcher | None = None

    def generation(self) -> int:
        from .index import backend_of

        return backend_of(self.settings).committed_version(Path(self.settings.index_dir))

    def open(self) -> SearcherLike:
        from .search import Searcher

        # After the first, each searcher is the last one reopened: what has not changed
        # since (the main vector file) is shared, so following a write costs what it changed.
        if self._last is None:
            self._last = Searcher.open(self.settings, self.embedder)
        else:
            self._last = self._last.reopened()
        return self._last

    def rebuild(self) -> IngestReport:
        from .ingest import ingest

        sources = self.sources()
        if not sources:
            raise CitebotError("No article paths are configured (`sources` in the config file).")
        return ingest(list(sources), self.settings, self.make_ingest_embedder(), prune=True)


class ReindexBusyError(CitebotError):
    """A re-index is already running."""

    def __init__(self) -> None:
        super().__init__("A re-index is already running.")


@dataclass(frozen=True)
class SyncResult:
    """When the sources were last read into the index (a sync or /reindex), and how it went."""

    at: datetime
    report: IngestReport | None = None
    # Why it failed (for the log; a server shows users a message of its own, never this).
    error: BaseException | None = None


class IndexHolder:
    """The current searcher, swapped without a missed question when a newer index appears.

    A newer generation comes from ``reindex`` (the bot's own rebuild) or from someone else
    (the CLI, a sync), noticed by ``refresh``. Each use leases the searcher; a replaced
    searcher is closed only when its last lease ends, so a question asked during a swap
    finishes on the old index.
    """

    def __init__(self, source: IndexSource) -> None:
        self.source = source
        # Read before opening: if a commit lands in between, the holder under-counts and the
        # next refresh opens the newer generation again, which is harmless.
        self.generation = source.generation()
        self._current = source.open()
        self._leases: dict[int, int] = {}
        self._retired: dict[int, SearcherLike] = {}
        self._guard = threading.Lock()
        self._reindex_lock = asyncio.Lock()
        self._swap_lock = asyncio.Lock()
        self._last_problem: str | None = None
        # The last sync or /reindex, for /stats.
        self.last_sync: SyncResult | None = None

    @property
    def current(self) -> SearcherLike:
        return self._current

    @property
    def reindexing(self) -> bool:
        return self._reindex_lock.locked()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[SearcherLike]:
        with self._guard:
            searcher = self._current
            self._leases[id(searcher)] = self._leases.get(id(searcher), 0) + 1
        try:
            yield searcher
        finally:
            with self._guard:
                key = id(searcher)
                self._leases[key] -= 1
                done = self._leases[key] == 0 and key in self._retired
                if self._leases[key] == 0:
                    del self._leases[key]
                retired = self._retired.pop(key) if done else None
            if retired is not None:
                await asyncio.to_thread(retired.close)

    async def run(self, work: Callable[[SearcherLike], T]) -> T:
        """``work(searcher)`` in a worker thread, on a leased searcher."""
        async with self.lease() as searcher:
            return await asyncio.to_thread(work, searcher)

    # -- what the commands ask ------------------------------------------------------------

    async def search(
        self,
        question: str,
        k: int | None = None,
        offset: int = 0,
        filters: SearchFilter | None = None,
    ) -> Answer:
        return await self.run(lambda searcher: searcher.search(question, k, offset, filters))

    async def check_filters(self, filters: SearchFilter) -> None:
        """BadFilterError unless some article passes ``filters`` (no model call)."""
        await self.run(lambda searcher: searcher.check_filters(filters))

    async def article(self, id_or_title: str) -> Article:
        return await self.run(lambda searcher: searcher.article(id_or_title))

    async def articles(self) -> list[ArticleSummary]:
        return await self.run(lambda searcher: searcher.articles())

    async def suggest_titles(self, text: str, limit: int = 25) -> list[ArticleRef]:
        return await self.run(lambda searcher: searcher.suggest_titles(text, limit))

    async def suggest_sources(self, prefix: str, limit: int = 25) -> list[str]:
        return await self.run(lambda searcher: searcher.suggest_sources(prefix, limit))

    async def suggest_authors(self, prefix: str, limit: int = 25) -> list[str]:
        return await self.run(lambda searcher: searcher.suggest_authors(prefix, limit))

    async def stats(self) -> IndexStats:
        # Statistics read the generation folder: follow a newer index first, so they never
        # read a folder the CLI has since deleted.
        await self.refresh()
        return await self.run(lambda searcher: searcher.stats())

    # -- following the index ------------------------------------------------------------

    async def refresh(self) -> bool:
        """Switch to a newer generation committed by someone else; whether it switched.

        A folder that cannot be read right now (missing, mid-repair) is logged once and
        the current searcher kept.
        """
        if self.reindexing:
            return False  # the re-index swaps when it is done
        try:
            committed = await asyncio.to_thread(self.source.generation)
        except (CitebotError, OSError) as exc:
            if str(exc) != self._last_problem:
                logger.warning("cannot check the index for a newer generation: %s", exc)
                self._last_problem = str(exc)
            return False
        self._last_problem = None
        if committed <= self.generation:
            return False
        return await self._switch(committed)

    async def follow(self, every: float) -> None:
        """``refresh`` every ``every`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh()
            except Exception:
                logger.exception("could not switch to the newer index; keeping the current one")

    async def reindex(self) -> IngestReport:
        """Rebuild in a worker thread, then swap; raises ReindexBusyError if one is running."""
        if self._reindex_lock.locked():
            raise ReindexBusyError
        async with self._reindex_lock:
            started = time.perf_counter()
            try:
                report = await asyncio.to_thread(self.source.rebuild)
            except Exception as exc:
                self.last_sync = SyncResult(datetime.now(UTC), error=exc)
                raise
            self.last_sync = SyncResult(datetime.now(UTC), report)
            committed = await asyncio.to_thread(self.source.generation)
            await self._switch(committed)
            logger.info(
                "re-indexed in %.1fs (generation %d)",
                time.perf_counter() - started,
                self.generation,
            )
            return report

    async def sync_every(self, seconds: float) -> None:
        """``reindex`` every ``seconds``, until cancelled: the configured sync schedule.

        A sync due while a /reindex runs is skipped (that re-index is the sync); a failed
        sync keeps the current index and is tried again at the next turn.
        """
        while True:
            await asyncio.sleep(seconds)
            try:
                report = await self.reindex()
            except ReindexBusyError:
                continue
            except CitebotError as exc:
                logger.warning("background sync failed, the current index stays: %s", exc)
                continue
            except Exception:
                logger.exception("background sync failed; keeping the current index")
                continue
            logger.info("background sync: %s", report.changes_line())

    async def _switch(self, committed: int) -> bool:
        async with self._swap_lock:
            if committed <= self.generation:
                return False  # another swap got there first
            fresh = await asyncio.to_thread(self.source.open)
            with self._guard:
                old, self._current = self._current, fresh
                self.generation = committed
                busy = self._leases.get(id(old), 0) > 0
                if busy:
                    self._retired[id(old)] = old
            if not busy:
                await asyncio.to_thread(old.close)
            logger.info("now answering from index generation %d", committed)
            return True

    async def close(self) -> None:
        await asyncio.to_thread(self._current.close)
