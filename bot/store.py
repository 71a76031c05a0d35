"""The bot's own SQLite database: the answers it showed, and the votes they got.

An answer's buttons carry only small ids in their custom ids; what is needed to show the
answer again (its question, count, offset, who asked) and what it cited is kept here, so
buttons keep working after a restart. No Discord import: ``citebot feedback`` reads the
same database without loading discord.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from retrieval.config import DEFAULT_CORPUS, Settings
from retrieval.errors import CitebotError
from retrieval.records import Answer, SearchFilter

from .database import LockedDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    -- What was retrieved: the question, or a thread follow-up with its context.
    question TEXT NOT NULL,
    -- What the user typed.
    asked TEXT NOT NULL,
    k INTEGER,
    offset INTEGER NOT NULL,
    filters TEXT,
    user_id INTEGER NOT NULL,
    private INTEGER NOT NULL,
    guild_id INTEGER,
    channel_id INTEGER,
    -- The passages shown, for the feedback report.
    passages TEXT NOT NULL,
    created TEXT NOT NULL,
    -- The corpus that answered (buttons recompute from it, and only from it).
    corpus TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS answers_by_channel ON answers (channel_id, id);
CREATE TABLE IF NOT EXISTS article_refs (
    id INTEGER PRIMARY KEY,
    corpus TEXT NOT NULL DEFAULT 'default',
    article_id TEXT NOT NULL,
    UNIQUE (corpus, article_id)
);
CREATE TABLE IF NOT EXISTS feedback (
    message_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    question TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    chunk_ids TEXT NOT NULL,
    guild_id INTEGER,
    channel_id INTEGER,
    created TEXT NOT NULL,
    answer_id INTEGER,
    PRIMARY KEY (message_id, user_id)
);
"""


@dataclass(frozen=True)
class ShownPassage:
    """A passage as an answer showed it: enough to name it in a feedback report."""

    article_id: str
    title: str
    paragraphs: tuple[int, int]
    chunk_ids: tuple[int, ...]


@dataclass(frozen=True)
class ShownAnswer:
    """An answer the bot showed: what recomputes it, and what it cited."""

    id: int
    question: str
    asked: str
    k: int | None
    offset: int
    user_id: int
    private: bool
    guild_id: int | None
    channel_id: int | None
    passages: tuple[ShownPassage, ...]
    filters: SearchFilter | None = None
    corpus: str = DEFAULT_CORPUS

    @property
    def chunk_ids(self) -> tuple[int, ...]:
        return tuple(sorted({c for p in self.passages for c in p.chunk_ids}))


@dataclass(frozen=True)
class Vote:
    message_id: int
    user_id: int
    question: str
    vote: int
    chunk_ids: tuple[int, ...]
    guild_id: int | None
    channel_id: int | None
    answer_id: int | None = None


def _filters(stored: str | None) -> SearchFilter | None:
    if not stored:
        return None
    values = json.loads(stored)
    for name in ("after", "before"):
        if values.get(name):
            values[name] = date.fromisoformat(values[name])
    return SearchFilter(**values)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BotStore(LockedDatabase):
    """Answers shown, article references for buttons, and 👍/👎 votes (one per user and answer)."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        if read_only and not Path(path).is_file():
            raise CitebotError(f"no feedback database at {path} yet")
        super().__init__(path, SCHEMA, read_only=read_only)
        if not read_only:
            with self._write() as db:
                columns = {row[1] for row in db.execute("PRAGMA table_info(feedback)")}
                if "answer_id" not in columns:  # a database from before answers were kept
                    db.execute("ALTER TABLE feedback ADD COLUMN answer_id INTEGER")
                _add_corpora(db)

    # -- answers ------------------------------------------------------------------------

    def add_answer(
        self,
        answer: Answer,
        *,
        asked: str,
        k: int | None,
        user_id: int,
        private: bool,
        guild_id: int | None,
        channel_id: int | None,
        filters: SearchFilter | None = None,
        corpus: str = DEFAULT_CORPUS,
    ) -> ShownAnswer:
        passages = [
            ShownPassage(p.article.id, p.article.title, p.paragraphs, p.chunk_ids)
            for p in answer.passages
        ]
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO answers (question, asked, k, offset, filters, user_id, private,"
                " guild_id, channel_id, passages, created, corpus)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer.question,
                    asked,
                    k,
                    answer.offset,
                    json.dumps(filters.to_dict()) if filters else None,
                    user_id,
                    int(private),
                    guild_id,
                    channel_id,
                    json.dumps(
                        [
                            [p.article_id, p.title, list(p.paragraphs), list(p.chunk_ids)]
                            for p in passages
                        ]
                    ),
                    _now(),
                    corpus,
                ),
            )
            answer_id = cursor.lastrowid
        assert answer_id is not None
        return ShownAnswer(
            answer_id,
            answer.question,
            asked,
            k,
            answer.offset,
            user_id,
            private,
            guild_id,
            channel_id,
            tuple(passages),
            filters or None,
            corpus,
        )

    _ANSWER_COLUMNS = (
        "id, question, asked, k, offset, user_id, private, guild_id, channel_id, passages,"
        " filters, corpus"
    )

    @staticmethod
    def _shown(row: tuple[Any, ...]) -> ShownAnswer:
        i, question, asked, k, offset, user, private, guild, channel, passages, filters, corpus = (
            row
        )
        return ShownAnswer(
            i,
            question,
            asked,
            k,
            offset,
            user,
            bool(private),
            guild,
            channel,
            tuple(
                ShownPassage(a, t, (p[0], p[1]), tuple(c)) for a, t, p, c in json.loads(passages)
            ),
            _filters(filters),
            corpus,
        )

    def answer(self, answer_id: int) -> ShownAnswer | None:
        rows = self._read(f"SELECT {self._ANSWER_COLUMNS} FROM answers WHERE id = ?", (answer_id,))
        return self._shown(rows[0]) if rows else None

    def answers(self, ids: Sequence[int] | None = None) -> list[ShownAnswer]:
        """The given answers (all when ``ids`` is None), oldest first."""
        if ids is None:
            rows = self._read(f"SELECT {self._ANSWER_COLUMNS} FROM answers ORDER BY id")
        else:
            marks = ",".join("?" * len(ids))
            rows = self._read(
                f"SELECT {self._ANSWER_COLUMNS} FROM answers WHERE id IN ({marks}) ORDER BY id",
                list(ids),
            )
        return [self._shown(r) for r in rows]

    def thread_questions(self, channel_id: int) -> tuple[ShownAnswer, ShownAnswer] | None:
        """The first and the latest answer shown in a channel (a thread), if any."""
        first = self._read(
            f"SELECT {self._ANSWER_COLUMNS} FROM answers WHERE channel_id = ? ORDER BY id LIMIT 1",
            (channel_id,),
        )
        last = self._read(
            f"SELECT {self._ANSWER_COLUMNS} FROM answers WHERE channel_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (channel_id,),
        )
        return (self._shown(first[0]), self._shown(last[0])) if first and last else None

    # -- article references (article ids can be long; custom ids cannot) ----------------------

    def article_refs(self, article_ids: Sequence[str], corpus: str = DEFAULT_CORPUS) -> list[int]:
        """A short, stable reference for each article id of ``corpus`` (made on first use)."""
        refs = []
        with self._write() as db:
            for article_id in article_ids:
                db.execute(
                    "INSERT OR IGNORE INTO article_refs (corpus, article_id) VALUES (?, ?)",
                    (corpus, article_id),
                )
                row = db.execute(
                    "SELECT id FROM article_refs WHERE corpus = ? AND article_id = ?",
                    (corpus, article_id),
                ).fetchone()
                refs.append(int(row[0]))
        return refs

    def article_id(self, ref: int, corpus: str = DEFAULT_CORPUS) -> str | None:
        """The article a reference names, if it is one of ``corpus``'s."""
        rows = self._read(
            "SELECT article_id FROM article_refs WHERE id = ? AND corpus = ?", (ref, corpus)
        )
        return rows[0][0] if rows else None

    # -- votes ----------------------------------------------------------------------------

    def record(self, vote: Vote) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO feedback (message_id, user_id, question, vote, chunk_ids,"
                " guild_id, channel_id, created, answer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    vote.message_id,
                    vote.user_id,
                    vote.question,
                    vote.vote,
                    json.dumps(list(vote.chunk_ids)),
                    vote.guild_id,
                    vote.channel_id,
                    _now(),
                    vote.answer_id,
                ),
            )

    def votes(self) -> list[Vote]:
        rows = self._read(
            "SELECT message_id, user_id, question, vote, chunk_ids, guild_id, channel_id, answer_id"
            " FROM feedback ORDER BY created, message_id, user_id"
        )
        return [
            Vote(m, u, q, v, tuple(json.loads(c)), g, ch, a) for m, u, q, v, c, g, ch, a in rows
        ]


def _add_corpora(db: sqlite3.Connection) -> None:
    """A database from before corpora: everything in it was the one corpus, "default"."""
    if "corpus" not in {row[1] for row in db.execute("PRAGMA table_info(answers)")}:
        db.execute(
            f"ALTER TABLE answers ADD COLUMN corpus TEXT NOT NULL DEFAULT '{DEFAULT_CORPUS}'"
        )
    if "corpus" not in {row[1] for row in db.execute("PRAGMA table_info(article_refs)")}:
        # The references keep their numbers: buttons already posted keep working.
        db.executescript(
            f"""
            ALTER TABLE article_refs RENAME TO article_refs_before_corpora;
            CREATE TABLE article_refs (
                id INTEGER PRIMARY KEY,
                corpus TEXT NOT NULL DEFAULT '{DEFAULT_CORPUS}',
                article_id TEXT NOT NULL,
                UNIQUE (corpus, article_id)
            );
            INSERT INTO article_refs (id, article_id)
                SELECT id, article_id FROM article_refs_before_corpora;
            DROP TABLE article_refs_before_corpora;
            """
        )


def feedback_path(settings: Settings) -> Path:
    """The bot's database: [bot] feedback_db, else in [bot] data_dir, else beside the index."""
    configured = settings.bot.feedback_db
    if configured:
        return Path(configured)
    if settings.bot.data_dir:
        return Path(settings.bot.data_dir) / "bot.sqlite"
    return Path(settings.index_dir) / "feedback.sqlite"


def state_path(settings: Settings) -> Path:
    """The bot's small state file (command-set hash), beside the feedback database."""
    return feedback_path(settings).with_name("bot-state.json")
