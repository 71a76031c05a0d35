"""Many corpora in one process: opened on first use, closed when idle, one model for all.

A corpus is a name for an index folder and its sources (``[corpora.NAME]`` in the
config, or a server's own corpus made by the bot). ``CorpusRegistry`` keeps the open
ones: each is opened the first time it is used, kept while in use, and closed once it
has not been used for ``idle_seconds``, so hundreds of small corpora fit in the memory
of a few. ``SharedEmbedders`` hands every corpus of the same model and backend one
embedder, so many corpora never mean many models. ``Schedule`` follows each open
corpus's newer generations and syncs each corpus on its own clock; one corpus's
failure is logged and never reaches another.

Nothing here knows who asks (Discord, HTTP): callers name the corpus.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .errors import CitebotError

if TYPE_CHECKING:
    from .config import Settings
    from .embedding import Embedder

logger = logging.getLogger(__name__)


class CorpusHolder(Protocol):
    """What the registry and the schedule need of an open corpus (the bot's IndexHolder)."""

    async def refresh(self) -> bool: ...
    async def reindex(self) -> Any: ...
    async def close(self) -> None: ...


H = TypeVar("H", bound=CorpusHolder)


class UnknownCorpusError(CitebotError):
    """A corpus that is neither configured nor made (a server without articles yet)."""


@dataclass
class _Entry(Generic[H]):
    holder: H
    users: int = 0
    last_used: float = 0.0
    # Kept open whatever the idle time (a corpus passed in already open).
    pinned: bool = False


class CorpusRegistry(Generic[H]):
    """Open corpora by name. ``open_corpus(name)`` opens one (in a worker thread: it reads
    the index); ``use(name)`` leases it, and ``close_idle`` closes those unused for
    ``idle_seconds`` (0: never). ``clock`` is injectable for tests."""

    def __init__(
        self,
        open_corpus: Callable[[str], H],
        *,
        idle_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_corpus = open_corpus
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._entries: dict[str, _Entry[H]] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        # How many times each corpus was opened (for /stats and the benchmark).
        self.opened_count = 0

    def adopt(self, name: str, holder: H) -> None:
        """Register a corpus opened elsewhere; it stays open until ``close_all``."""
        self._entries[name] = _Entry(holder, last_used=self._clock(), pinned=True)

    def open_names(self) -> list[str]:
        return list(self._entries)

    def holder(self, name: str) -> H | None:
        """The corpus if it is open now (no opening, no lease)."""
        entry = self._entries.get(name)
        return entry.holder if entry else None

    @asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[H]:
        """The open corpus ``name`` (opened now if needed), not closed while in use."""
        entry = await self._entry(name)
        entry.users += 1
        try:
            yield entry.holder
        finally:
            entry.users -= 1
            entry.last_used = self._clock()

    async def _entry(self, name: str) -> _Entry[H]:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:
            entry = self._entries.get(name)
            if entry is None:
                started = time.perf_counter()
                holder = await asyncio.to_thread(self._open_corpus, name)
                entry = _Entry(holder, last_used=self._clock())
                self._entries[name] = entry
                self.opened_count += 1
                logger.info(
                    "opened corpus %s in %.0f ms", name, 1000 * (time.perf_counter() - started)
                )
        return entry

    async def close_idle(self) -> list[str]:
        """Close the corpora unused for ``idle_seconds``; their names."""
        if self.idle_seconds <= 0:
            return []
        now = self._clock()
        idle = [
            name
            for name, entry in self._entries.items()
            if not entry.pinned and entry.users == 0 and now - entry.last_used >= self.idle_seconds
        ]
        for name in idle:
            await self.close(name)
        return idle

    async def close(self, name: str) -> None:
        """Close corpus ``name`` if it is open and unused (the next use opens it again)."""
        entry = self._entries.get(name)
        if entry is None or entry.users:
            return
        del self._entries[name]
        try:
            await entry.holder.close()
        except Exception:
            logger.exception("could not close corpus %s cleanly", name)
        logger.info("closed corpus %s (idle)", name)

    async def close_all(self) -> None:
        entries, self._entries = list(self._entries.items()), {}
        for name, entry in entries:
            try:
                await entry.holder.close()
            except Exception:
                logger.exception("could not close corpus %s cleanly", name)


class SharedEmbedders:
    """One embedder per (model, backend), whichever corpus asks first: many corpora of the
    same model share its weights. ``make(settings)`` makes a (not yet loaded) embedder for
    a corpus's settings; only its name and backend are looked at before it is kept."""

    def __init__(self, make: Callable[[Settings], Embedder]) -> None:
        self._make = make
        self._kept: dict[tuple[str, str], Embedder] = {}
        self._lock = threading.Lock()

    def for_settings(self, settings: Settings) -> Embedder:
        made = self._make(settings)
        key = (made.name, made.backend)
        with self._lock:
            return self._kept.setdefault(key, made)

    def __len__(self) -> int:
        return len(self._kept)


class Schedule:
    """The background work of many corpora, each isolated from the others' failures:
    following newer generations of the open corpora, syncing each corpus every
    ``sync_seconds`` (on its own clock, from when it was first seen), and closing idle ones.

    ``names()`` gives the corpora to sync (every configured and made corpus, open or not);
    ``sync(name)`` syncs one (default: open it and ``reindex``; a caller may sync a closed
    corpus without opening it).
    """

    def __init__(
        self,
        registry: CorpusRegistry[Any],
        names: Callable[[], Iterable[str]],
        *,
        sync: Callable[[str], Awaitable[Any]] | None = None,
        follow_seconds: float = 0.0,
        sync_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.names = names
        self.sync = sync or self._open_and_reindex
        self.follow_seconds = follow_seconds
        self.sync_seconds = sync_seconds
        self._clock = clock
        self._next_sync: dict[str, float] = {}

    async def follow_once(self) -> None:
        for name in self.registry.open_names():
            holder = self.registry.holder(name)
            if holder is None:
                continue
            try:
                await holder.refresh()
            except Exception:
                logger.exception("corpus %s: could not switch to its newer index", name)

    async def sync_due(self) -> list[str]:
        """Sync every corpus whose turn has come; the names synced without an error."""
        if self.sync_seconds <= 0:
            return []
        now = self._clock()
        synced = []
        for name in list(self.names()):
            due = self._next_sync.setdefault(name, now + self.sync_seconds)
            if now < due:
                continue
            self._next_sync[name] = now + self.sync_seconds
            try:
                report = await self.sync(name)
            except CitebotError as exc:
                logger.warning("corpus %s: background sync failed, its index stays: %s", name, exc)
                continue
            except Exception:
                logger.exception("corpus %s: background sync failed; its index stays", name)
                continue
            synced.append(name)
            line = getattr(report, "changes_line", None)
            logger.info("corpus %s: background sync: %s", name, line() if line else "done")
        return synced

    async def _open_and_reindex(self, name: str) -> Any:
        async with self.registry.use(name) as holder:
            return await holder.reindex()

    async def run(self, tick: float) -> None:
        """Every ``tick`` seconds, until cancelled: follow, sync what is due, close idle."""
        last_follow = self._clock()
        while True:
            await asyncio.sleep(tick)
            if self.follow_seconds > 0 and self._clock() - last_follow >= self.follow_seconds:
                last_follow = self._clock()
                await self.follow_once()
            await self.sync_due()
            try:
                await self.registry.close_idle()
            except Exception:
                logger.exception("could not close idle corpora")
