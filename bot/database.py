"""One SQLite file shared by the bot's threads: the connection, its lock, and the schema.

The bot's stores (answers and votes in ``bot.store``; library sources and server settings
in ``bot.serverdata``) each keep their tables in a file of their own, written from the
event loop's worker threads one statement group at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class LockedDatabase:
    """A SQLite file in WAL mode behind one lock; ``schema`` is applied when it is opened
    for writing (``read_only`` opens an existing file only)."""

    def __init__(self, path: Path | str, schema: str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only:
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.Lock()
        if not read_only:
            with self._write() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(schema)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
