"""Pushes from a CMS (PUT and DELETE of one article), written in batches.

A push waits at most ``delay`` seconds for others to join it; then the whole batch goes
through the library's ingest path (``retrieval.push.write_pushes``: the same chunking,
embedding and crash-safe new generation as `citebot ingest`), the holder switches to the
new generation, and every push of the batch is answered: searchable from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from retrieval.ingest import IngestReport
from retrieval.records import Article

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What became of one push, once its batch is written and searchable."""

    id: str
    # "added", "updated", "unchanged", "removed", "not_found" or "skipped" (with ``problem``).
    result: str
    generation: int
    searchable_at: str
    seconds: float
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "id": self.id,
            "result": self.result,
            "searchable": self.result not in ("not_found", "skipped"),
            "searchable_at": self.searchable_at,
            "generation": self.generation,
            "seconds": round(self.seconds, 3),
        }
        if self.problem:
            data["problem"] = self.problem
        return data


# Writes one batch: (articles to add or replace, ids to remove) -> the ingest report.
WriteBatch = Callable[[list[Article], list[str]], IngestReport]


@dataclass
class _Pending:
    article: Article | None  # None: remove
    future: asyncio.Future[PushResult]
    started: float


class PushQueue:
    """Collects pushes and writes them one batch at a time (writes never overlap)."""

    def __init__(
        self,
        write: WriteBatch,
        after_write: Callable[[], Awaitable[int]],
        delay: float = 0.05,
    ) -> None:
        self.write = write
        # Switches the readers to the new generation; returns the generation now searched.
        self.after_write = after_write
        self.delay = delay
        self._pending: dict[str, list[_Pending]] = {}
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def put(self, article: Article) -> PushResult:
        return await self._submit(article.id, article)

    async def remove(self, article_id: str) -> PushResult:
        return await self._submit(article_id, None)

    async def _submit(self, article_id: str, article: Article | None) -> PushResult:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="citebot-pushes")
        future: asyncio.Future[PushResult] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(article_id, []).append(
            _Pending(article, future, time.perf_counter())
        )
        self._wakeup.set()
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self.delay)  # let pushes arriving meanwhile join
            self._wakeup.clear()
            batch, self._pending = self._pending, {}
            if batch:
                await self._write(batch)

    async def _write(self, batch: dict[str, list[_Pending]]) -> None:
        # The last push of an id wins; the earlier ones get its result.
        last = {article_id: pushes[-1].article for article_id, pushes in batch.items()}
        upserts = [a for a in last.values() if a is not None]
        removals = [i for i, a in last.items() if a is None]
        try:
            report = await asyncio.to_thread(self.write, upserts, removals)
            generation = await self.after_write()
        except Exception as exc:  # every push of the batch is told; the index is unchanged
            logger.warning("a batch of %d pushes failed: %s", len(batch), exc)
            for pushes in batch.values():
                for push in pushes:
                    if not push.future.done():
                        push.future.set_exception(exc)
            return
        done = datetime.now(UTC).isoformat(timespec="milliseconds")
        changes = {c.id: c.kind for c in report.changes}
        problems = {p.where: p.reason for p in report.skipped}
        now = time.perf_counter()
        for article_id, pushes in batch.items():
            article = last[article_id]
            problem = problems.get(article.source) if article is not None else None
            if problem is not None:
                result = "skipped"
            elif article_id in changes:
                result = changes[article_id]
            else:
                result = "unchanged" if article is not None else "not_found"
            for push in pushes:
                if not push.future.done():
                    push.future.set_result(
                        PushResult(
                            article_id, result, generation, done, now - push.started, problem
                        )
                    )
        logger.info(
            "pushes written: %d (%s), generation %d", len(batch), report.changes_line(), generation
        )

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
