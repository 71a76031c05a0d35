"""When a long write commits what it has written so far (see ``ingest`` and
``IndexWriter.commit_batch``)."""

from __future__ import annotations

import time

from .config import Settings


class Batches:
    """When a long write commits what it has: after ``[ingest] commit_every_articles`` new
    or changed articles, or ``commit_every_seconds``, whichever comes first (0: never)."""

    def __init__(self, settings: Settings) -> None:
        self.articles = settings.ingest.commit_every_articles
        self.seconds = settings.ingest.commit_every_seconds
        self.pending = 0
        self._since = time.monotonic()

    def due(self) -> bool:
        """One more article written: is a commit due?"""
        self.pending += 1
        if self.articles and self.pending >= self.articles:
            return True
        return bool(self.seconds) and time.monotonic() - self._since >= self.seconds

    def committed(self) -> None:
        self.pending = 0
        self._since = time.monotonic()
