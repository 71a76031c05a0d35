"""The corpora a server answers from: the library's ``CorpusRegistry`` plus a push queue
per corpus.

Every corpus of the config (or the one chosen with ``--corpus``/``--index``) can be asked
for with ``corpus=``. The main corpus is opened at start (``/readyz`` waits for it and the
model) and kept open; any other is opened on its first request and closed after
``[bot] idle_close_minutes`` unused, so a config with hundreds of corpora costs memory
only for those in use. One embedder serves every corpus of the same model and backend
(``SharedEmbedders``), and the library's ``Schedule`` follows each open corpus's new
generations. What is the server's own here is the push queue of each open corpus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from retrieval import metrics
from retrieval.config import Settings
from retrieval.corpora import CorpusRegistry, Schedule, SharedEmbedders
from retrieval.embedding import Embedder
from retrieval.ingest import IngestReport
from retrieval.live import IndexFolder, IndexHolder
from retrieval.records import Article

from . import memory
from .problems import Problem
from .pushes import PushQueue

logger = logging.getLogger(__name__)

# How often the background schedule wakes when nothing else sets it (idle closing only).
IDLE_TICK_SECONDS = 30.0


@dataclass
class Corpus:
    """One open corpus: its index holder and its queue of pushes."""

    name: str
    settings: Settings
    holder: IndexHolder
    pushes: PushQueue
    # The shared model questions are embedded with; pushes use it too (a push embeds a
    # few chunks: questions wait milliseconds, and no second copy of the model is held).
    embedder: Embedder = field(repr=False)

    async def refresh(self) -> bool:
        changed = await self.holder.refresh()
        if changed:
            await observe(self)
        return changed

    async def reindex(self) -> IngestReport:
        return await self.holder.reindex()

    async def close(self) -> None:
        await self.pushes.close()
        await self.holder.close()


async def observe(corpus: Corpus) -> None:
    """The index's size for /metrics (a failure here never fails a request)."""
    if not metrics.enabled():
        return
    try:
        metrics.index(await corpus.holder.run(lambda s: s.stats()), corpus.name)
    except Exception:
        logger.warning("cannot read the index's statistics for /metrics", exc_info=True)


class Corpora:
    """The corpora by name. ``open`` (in the background) opens the main one and loads the
    model, so /healthz answers at once and /readyz once that is done; ``use(name)`` leases
    any corpus, opening it if needed."""

    def __init__(
        self,
        settings: dict[str, Settings],
        make_embedder: Callable[[Settings], Embedder],
        *,
        default: str | None = None,
        idle_close_minutes: float | None = None,
    ) -> None:
        if not settings:
            raise ValueError("at least one corpus")
        self.settings = settings
        self.default = default or next(iter(settings))
        if self.default not in settings:
            raise ValueError(f"the default corpus {self.default!r} is not served")
        self.make_embedder = make_embedder
        self.embedders = SharedEmbedders(make_embedder)
        if idle_close_minutes is None:
            idle_close_minutes = settings[self.default].bot.idle_close_minutes
        self.registry: CorpusRegistry[Corpus] = CorpusRegistry(
            self._open, idle_seconds=60 * idle_close_minutes
        )
        self.ready = False
        self.problem: str | None = None
        self.ready_seconds: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        """The corpora served, the main one first (the page's selector shows it first)."""
        return [self.default, *(n for n in self.settings if n != self.default)]

    def open_names(self) -> list[str]:
        return self.registry.open_names()

    def __iter__(self) -> Iterator[Corpus]:
        for name in self.registry.open_names():
            corpus = self.registry.holder(name)
            if corpus is not None:
                yield corpus

    async def open(self, follow_seconds: float = 0.0) -> None:
        """Open the main corpus and load the model; then follow new generations of every
        open corpus every ``follow_seconds`` (0: never) and close idle ones. A failure is
        logged and kept for /readyz."""
        started = time.perf_counter()
        try:
            main = await asyncio.to_thread(self._open, self.default)
        except Exception as exc:
            self.problem = str(exc)
            logger.error("cannot open the index: %s", exc)
            return
        self.registry.adopt(self.default, main)  # kept open: /readyz and the page need it
        self.ready_seconds = time.perf_counter() - started
        self.ready = True
        logger.info("ready in %.2fs", self.ready_seconds)
        if follow_seconds > 0 or self.registry.idle_seconds > 0:
            schedule = Schedule(self.registry, lambda: self.names, follow_seconds=follow_seconds)
            tick = min(t for t in (follow_seconds, IDLE_TICK_SECONDS) if t > 0)
            self._tasks.append(asyncio.create_task(schedule.run(tick)))

    def _open(self, name: str) -> Corpus:
        settings = self.settings[name]
        embedder = self.embedders.for_settings(settings)
        holder = IndexHolder(IndexFolder(settings, embedder, lambda: self.make_embedder(settings)))
        embedder.embed(["warm up"])  # load the model now, not on the first question
        stats = holder.current.stats()
        metrics.build_info(stats.model, stats.runs_as)
        if metrics.enabled():
            metrics.index(stats, name)
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
        await observe(corpus)
        # A write reads and copies the index through memory that the allocator keeps:
        # handing it back keeps a long-running server's size that of its index.
        await asyncio.to_thread(memory.release_free_memory)
        return corpus.holder.generation

    def check(self, name: str | None) -> str:
        """The name of the corpus ``name`` picks (none: the main one); a Problem if it is
        not served or the server is not ready yet."""
        name = name or self.default
        if name not in self.settings:
            raise Problem(404, f"There is no corpus called {name!r}.")
        if not self.ready:
            raise Problem(503, "The index is not open yet.", {"Retry-After": "1"})
        return name

    @contextlib.asynccontextmanager
    async def use(self, name: str | None) -> AsyncIterator[Corpus]:
        """The corpus ``name`` (none: the main one), opened if needed and kept open while
        in use."""
        async with self.registry.use(self.check(name)) as corpus:
            yield corpus

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.registry.close_all()
