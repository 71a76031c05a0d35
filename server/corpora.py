"""The corpora a server answers from: a name -> index holder mapping.

Today a configuration names one index, served as the corpus ``default``; when the config
names several corpora, each gets an entry here and requests choose one with ``corpus=``.
Each corpus has its index holder (which follows new generations written by anyone, like
the bot's) and its queue of pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from retrieval import metrics
from retrieval.config import Settings
from retrieval.embedding import Embedder
from retrieval.ingest import IngestReport
from retrieval.live import IndexFolder, IndexHolder
from retrieval.records import Article

from . import memory
from .problems import Problem
from .pushes import PushQueue

logger = logging.getLogger(__name__)

DEFAULT_CORPUS = "default"


@dataclass
class Corpus:
    name: str
    settings: Settings
    holder: IndexHolder
    pushes: PushQueue
    # The model questions are embedded with; pushes use it too (a push embeds a few
    # chunks: questions wait milliseconds, and no second copy of the model is held).
    embedder: Embedder = field(repr=False)


class Corpora:
    """Opens every corpus in the background (``open``), so /healthz answers at once and
    /readyz once the indexes are open and the model is loaded."""

    def __init__(
        self,
        settings: dict[str, Settings],
        make_embedder: Callable[[Settings], Embedder],
    ) -> None:
        if not settings:
            raise ValueError("at least one corpus")
        self.settings = settings
        self.make_embedder = make_embedder
        self._corpora: dict[str, Corpus] = {}
        self.ready = False
        self.problem: str | None = None
        self.ready_seconds: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        return list(self.settings)

    def __iter__(self) -> Iterator[Corpus]:
        return iter(self._corpora.values())

    async def open(self, follow_seconds: float = 0.0) -> None:
        """Open each index and load its model; then follow new generations every
        ``follow_seconds`` (0: never). A failure is logged and kept for /readyz."""
        started = time.perf_counter()
        try:
            for name, settings in self.settings.items():
                self._corpora[name] = await asyncio.to_thread(self._open, name, settings)
        except Exception as exc:
            self.problem = str(exc)
            logger.error("cannot open the index: %s", exc)
            return
        self.ready_seconds = time.perf_counter() - started
        self.ready = True
        for corpus in self:
            await self._observe(corpus)
            if follow_seconds > 0:
                self._tasks.append(asyncio.create_task(self._follow(corpus, follow_seconds)))
        logger.info("ready in %.2fs", self.ready_seconds)

    def _open(self, name: str, settings: Settings) -> Corpus:
        embedder = self.make_embedder(settings)
        holder = IndexHolder(IndexFolder(settings, embedder, lambda: self.make_embedder(settings)))
        embedder.embed(["warm up"])  # load the model now, not on the first question
        stats = holder.current.stats()
        metrics.build_info(stats.model, stats.runs_as)
        # The closures look ``corpus`` up when a push is written, after it is assigned.
        pushes = PushQueue(
            lambda upserts, removals: self._write(corpus, upserts, removals),
            lambda: self._after_write(corpus),
            settings.serve.push_batch_seconds,
        )
        corpus = Corpus(name, settings, holder, pushes, embedder)
        return corpus

    def _write(self, corpus: Corpus, upserts: list[Article], removals: list[str]) -> IngestReport:
        from retrieval.push import write_pushes

        return write_pushes(corpus.settings, corpus.embedder, upserts, removals)

    async def _after_write(self, corpus: Corpus) -> int:
        await corpus.holder.refresh()
        await self._observe(corpus)
        # A write reads and copies the index through memory that the allocator keeps:
        # handing it back keeps a long-running server's size that of its index.
        await asyncio.to_thread(memory.release_free_memory)
        return corpus.holder.generation

    async def _observe(self, corpus: Corpus) -> None:
        """The index's size for /metrics (a failure here never fails a request)."""
        if not metrics.enabled():
            return
        try:
            metrics.index(await corpus.holder.run(lambda s: s.stats()), corpus.name)
        except Exception:
            logger.warning("cannot read the index's statistics for /metrics", exc_info=True)

    async def _follow(self, corpus: Corpus, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                if await corpus.holder.refresh():
                    await self._observe(corpus)
            except Exception:
                logger.exception("could not switch to the newer index; keeping the current one")

    def get(self, name: str | None) -> Corpus:
        """The corpus called ``name`` (default: the first); a Problem if unknown or not open."""
        name = name or next(iter(self.settings))
        if name not in self.settings:
            raise Problem(404, f"There is no corpus called {name!r}.")
        if not self.ready:
            raise Problem(503, "The index is not open yet.", {"Retry-After": "1"})
        return self._corpora[name]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for corpus in self:
            await corpus.pushes.close()
            await corpus.holder.close()
