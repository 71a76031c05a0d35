"""The bot's plain parts, testable without Discord: index holder, cooldowns, feedback store.

Retrieval is blocking, so every call into the library runs in a worker thread and the
event loop stays free to acknowledge interactions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from retrieval.config import Settings
from retrieval.embedding import Embedder
from retrieval.records import Answer, Article, ArticleRef, ArticleSummary, IndexStats

logger = logging.getLogger(__name__)


class SearcherLike(Protocol):
    """What the bot uses of ``retrieval.search.Searcher`` (tests may pass a small fake)."""

    def search(self, question: str, k: int | None = None, offset: int = 0) -> Answer: ...
    def suggest_titles(self, text: str, limit: int = 25) -> list[ArticleRef]: ...
    def article(self, id_or_title: str) -> Article: ...
    def articles(self) -> list[ArticleSummary]: ...
    def stats(self) -> IndexStats: ...
    def close(self) -> None: ...


# Re-ingests the configured sources and opens the new generation: (settings) -> searcher.
Rebuilder = Callable[[Settings], SearcherLike]


class ReindexBusyError(Exception):
    """A re-index is already running."""


class IndexHolder:
    """The current searcher, swapped atomically by ``reindex``.

    Each use leases the searcher; a replaced searcher is closed only when its last
    lease ends, so a question asked during a re-index finishes on the old index.
    """

    def __init__(self, searcher: SearcherLike, settings: Settings, rebuild: Rebuilder) -> None:
        self._current = searcher
        self._settings = settings
        self._rebuild = rebuild
        self._leases: dict[int, int] = {}
        self._retired: dict[int, SearcherLike] = {}
        self._guard = threading.Lock()
        self._reindex_lock = asyncio.Lock()
        self.generation = 0

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

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``searcher.method(*args)`` in a worker thread, on a leased searcher."""
        async with self.lease() as searcher:
            return await asyncio.to_thread(getattr(searcher, method), *args, **kwargs)

    async def reindex(self) -> SearcherLike:
        """Rebuild in a worker thread, then swap; raises ReindexBusyError if one is running."""
        if self._reindex_lock.locked():
            raise ReindexBusyError
        async with self._reindex_lock:
            started = time.perf_counter()
            fresh = await asyncio.to_thread(self._rebuild, self._settings)
            with self._guard:
                old, self._current = self._current, fresh
                self.generation += 1
                busy = self._leases.get(id(old), 0) > 0
                if busy:
                    self._retired[id(old)] = old
            if not busy:
                await asyncio.to_thread(old.close)
            logger.info(
                "re-indexed in %.1fs (generation %d)",
                time.perf_counter() - started,
                self.generation,
            )
            return fresh

    async def close(self) -> None:
        await asyncio.to_thread(self._current.close)


@dataclass
class Cooldown:
    """At most one question per user every ``seconds``; ``clock`` is injectable for tests."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    _last: dict[int, float] = field(default_factory=dict)

    def retry_after(self, user_id: int) -> float:
        """0 and records the question if the user may ask now; else the seconds left."""
        if self.seconds <= 0:
            return 0.0
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            return self.seconds - (now - last)
        self._last[user_id] = now
        if len(self._last) > 10_000:  # forget users who asked long ago
            self._last = {u: t for u, t in self._last.items() if now - t < self.seconds}
        return 0.0


@dataclass(frozen=True)
class Vote:
    message_id: int
    user_id: int
    question: str
    vote: int
    chunk_ids: tuple[int, ...]
    guild_id: int | None
    channel_id: int | None


class FeedbackStore:
    """👍/👎 votes in SQLite; one vote per user and answer message (a new click replaces it)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS feedback (
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        question TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        chunk_ids TEXT NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER,
        created TEXT NOT NULL,
        PRIMARY KEY (message_id, user_id)
    )
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(self.SCHEMA)

    def record(self, vote: Vote) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    vote.message_id,
                    vote.user_id,
                    vote.question,
                    vote.vote,
                    json.dumps(list(vote.chunk_ids)),
                    vote.guild_id,
                    vote.channel_id,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )

    def votes(self) -> list[Vote]:
        with self._lock:
            rows = self._db.execute(
                "SELECT message_id, user_id, question, vote, chunk_ids, guild_id, channel_id "
                "FROM feedback ORDER BY created, message_id, user_id"
            ).fetchall()
        return [Vote(m, u, q, v, tuple(json.loads(c)), g, ch) for m, u, q, v, c, g, ch in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def feedback_path(settings: Settings) -> Path:
    configured = settings.bot.feedback_db
    return Path(configured) if configured else Path(settings.index_dir) / "feedback.sqlite"


def state_path(settings: Settings) -> Path:
    """The bot's small state file (command-set hash), beside the feedback database."""
    return feedback_path(settings).with_name("bot-state.json")


def rebuild_index(embedder: Embedder, make_ingest_embedder: Callable[[], Embedder]) -> Rebuilder:
    """The production rebuilder: ingest the configured sources (pruning), open the new index.

    The ingest embeds with a model instance of its own (loaded per re-index, in under a
    second), so questions answered meanwhile on ``embedder`` never queue behind it.
    """

    def rebuild(settings: Settings) -> SearcherLike:
        from retrieval.errors import CitebotError
        from retrieval.ingest import ingest
        from retrieval.search import Searcher

        sources: Sequence[str] = settings.sources
        if not sources:
            raise CitebotError("No article paths are configured (`sources` in the config file).")
        ingest(list(sources), settings, make_ingest_embedder(), prune=True)
        return Searcher.open(settings, embedder)

    return rebuild
