"""What server admins set from Discord, kept in the bot's database (never in the config).

Three tables beside the answers and votes of ``bot.store``: the sources added with
``/library add`` (per corpus, with the result of their last sync), each server's
``/settings``, and the corpora made for servers (``[bot] server_corpora``), with when
the bot left the server. No Discord import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .database import LockedDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS library_sources (
    corpus TEXT NOT NULL,
    url TEXT NOT NULL,
    guild_id INTEGER,
    added_by INTEGER,
    added TEXT NOT NULL,
    -- The last sync that read it: when, how many articles it gave, why it failed.
    last_sync TEXT,
    articles INTEGER,
    failure TEXT,
    PRIMARY KEY (corpus, url)
);
CREATE TABLE IF NOT EXISTS server_settings (
    guild_id INTEGER PRIMARY KEY,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_corpora (
    guild_id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    -- When the bot was removed from the server (NULL while it is there).
    removed TEXT
);
"""


@dataclass(frozen=True)
class LibrarySource:
    corpus: str
    url: str
    guild_id: int | None
    added_by: int | None
    added: str
    last_sync: str | None = None
    articles: int | None = None
    failure: str | None = None


@dataclass(frozen=True)
class ServerSettings:
    """A server's own choices; None (or absent) means the config's default."""

    channels: tuple[int, ...] | None = None
    forum_channels: tuple[int, ...] | None = None
    threads: bool | None = None
    # Roles that may ask; empty: everyone.
    ask_roles: tuple[int, ...] = field(default=())

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "channels": list(self.channels) if self.channels is not None else None,
            "forum_channels": (
                list(self.forum_channels) if self.forum_channels is not None else None
            ),
            "threads": self.threads,
            "ask_roles": list(self.ask_roles),
        }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        data = json.loads(text)

        def ids(name: str) -> tuple[int, ...] | None:
            value = data.get(name)
            return None if value is None else tuple(int(v) for v in value)

        return cls(
            ids("channels"),
            ids("forum_channels"),
            data.get("threads"),
            ids("ask_roles") or (),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ServerData(LockedDatabase):
    """Library sources, server settings and server corpora, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, SCHEMA)
        self._settings: dict[int, ServerSettings] = {}

    # -- library sources ------------------------------------------------------------------

    def add_source(self, corpus: str, url: str, guild_id: int | None, user_id: int) -> bool:
        """Record a source; False when the corpus has it already."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO library_sources (corpus, url, guild_id, added_by, added)"
                " VALUES (?, ?, ?, ?, ?)",
                (corpus, url, guild_id, user_id, _now()),
            )
            return cursor.rowcount == 1

    def remove_source(self, corpus: str, url: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM library_sources WHERE corpus = ? AND url = ?", (corpus, url)
            )
            return cursor.rowcount == 1

    def sources(self, corpus: str) -> list[LibrarySource]:
        rows = self._read(
            "SELECT corpus, url, guild_id, added_by, added, last_sync, articles, failure"
            " FROM library_sources WHERE corpus = ? ORDER BY added, url",
            (corpus,),
        )
        return [LibrarySource(*row) for row in rows]

    def corpora_with_sources(self) -> list[str]:
        return [row[0] for row in self._read("SELECT DISTINCT corpus FROM library_sources")]

    def record_sync(self, corpus: str, results: dict[str, tuple[int, str | None]]) -> None:
        """Each source's articles and failure (None: it was read) from a sync of ``corpus``."""
        now = _now()
        with self._write() as db:
            for url, (articles, failure) in results.items():
                db.execute(
                    "UPDATE library_sources SET last_sync = ?, articles = ?, failure = ?"
                    " WHERE corpus = ? AND url = ?",
                    (now, articles, failure, corpus, url),
                )

    # -- server settings ------------------------------------------------------------------

    def server_settings(self, guild_id: int) -> ServerSettings:
        """A server's settings (read on every message: kept in memory once read)."""
        if (cached := self._settings.get(guild_id)) is not None:
            return cached
        rows = self._read("SELECT settings FROM server_settings WHERE guild_id = ?", (guild_id,))
        found = ServerSettings.from_json(rows[0][0]) if rows else ServerSettings()
        self._settings[guild_id] = found
        return found

    def all_server_settings(self) -> dict[int, ServerSettings]:
        rows = self._read("SELECT guild_id, settings FROM server_settings")
        return {guild: ServerSettings.from_json(text) for guild, text in rows}

    def save_server_settings(self, guild_id: int, settings: ServerSettings) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO server_settings (guild_id, settings) VALUES (?, ?)",
                (guild_id, settings.to_json()),
            )
        self._settings[guild_id] = settings

    # -- server corpora -------------------------------------------------------------------

    def server_corpora(self) -> dict[int, str | None]:
        """Every server with a corpus of its own, and when the bot left it (None: present)."""
        return dict(self._read("SELECT guild_id, removed FROM server_corpora"))

    def make_server_corpus(self, guild_id: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO server_corpora (guild_id, created) VALUES (?, ?)",
                (guild_id, _now()),
            )

    def mark_removed(self, guild_id: int, removed: bool) -> None:
        """The bot left the server (or came back: the corpus is kept again)."""
        with self._write() as db:
            db.execute(
                "UPDATE server_corpora SET removed = ? WHERE guild_id = ?",
                (_now() if removed else None, guild_id),
            )

    def expired_server_corpora(self, keep_days: float, now: datetime | None = None) -> list[int]:
        """Servers the bot left more than ``keep_days`` ago."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
        return [
            guild
            for guild, removed in self.server_corpora().items()
            if removed is not None and datetime.fromisoformat(removed) <= cutoff
        ]

    def forget_server(self, guild_id: int, corpus: str) -> None:
        """Everything kept for a server whose corpus was deleted."""
        with self._write() as db:
            db.execute("DELETE FROM server_corpora WHERE guild_id = ?", (guild_id,))
            db.execute("DELETE FROM library_sources WHERE corpus = ?", (corpus,))
            db.execute("DELETE FROM server_settings WHERE guild_id = ?", (guild_id,))
        self._settings.pop(guild_id, None)
