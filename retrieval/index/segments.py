"""The live part of an index's vectors: a small segment of chunks written since the main
vector file, and the main file's chunks removed since (masked).

An ordinary write (an ingest that adds, replaces or removes a few articles) costs what it
changes: its new vectors go to the ``segment_vectors`` table and the ids of the main
file's chunks it removes to ``masked_chunks``, both in the store's SQLite file, in the same
transaction as the article and chunk rows. SQLite commits the whole write at once (or none
of it, after a crash), so FAISS ids, chunk rows and keyword rows always agree:

    live vector ids = (main file ids - masked ids) + segment ids = chunk ids = keyword ids

The main vector file is never changed once written. A reader searches it with the masked
ids excluded, and the segment exactly (it is small), and merges the two rankings: on an
exact main index the result is the ranking a freshly built index of the same chunks gives.

**Compaction** folds the segment and the masks into a new main file once they hold more
than ``COMPACT_SHARE`` of the main file's chunks and at least ``COMPACT_MIN`` chunks, or
more than ``COMPACT_MAX`` chunks whatever the size (an exact search of the segment then
costs a few milliseconds a question at most). It writes the new file under a new name,
then in one SQLite transaction empties the segment and the masks and names the new file;
the file named before stays for readers opening at that moment, older ones are removed.
An approximate (IVF) main index is retrained at compaction when its size calls for another
number of lists (``VectorIndex.adapted``) or when the new vectors have drifted from its
centroids (``drifted``).

``index_state`` holds what a write needs to know without reading the main file: its name,
its size and modification time when its ids were last checked, and the summary of those
ids; plus a commit counter (readers follow it) and the last compaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .store import ID_HASH_FACTOR, ID_HASH_MODULUS

if TYPE_CHECKING:
    from .store import IdSummary
    from .vectors import VectorIndex

logger = logging.getLogger(__name__)

SCHEMA = """
-- Vectors (float32) of the chunks written since the main vector file.
CREATE TABLE IF NOT EXISTS segment_vectors (
    chunk_id INTEGER PRIMARY KEY,
    vector BLOB NOT NULL
);
-- Ids in the main vector file whose chunks have been removed or replaced since.
CREATE TABLE IF NOT EXISTS masked_chunks (chunk_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS index_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# The count, sum and hashed sum of the chunk ids and of the keyword index's row ids, kept
# by triggers (which fire for any connection that changes the tables, a stray one too), so
# that a writer compares them with the vectors' without scanning a million rows.
_SUMS = {"chunks": "chunks", "keywords": "chunks_fts_docsize"}
_HASH = f"{{row}}.id * {ID_HASH_FACTOR} % {ID_HASH_MODULUS}"


def _sum_triggers() -> str:
    statements = [
        "CREATE TABLE IF NOT EXISTS id_sums (name TEXT PRIMARY KEY, count INTEGER NOT NULL,"
        " total INTEGER NOT NULL, hashed INTEGER NOT NULL);"
    ]
    for name, table in _SUMS.items():
        plus = f"count = count + 1, total = total + new.id, hashed = hashed + {_HASH.format(row='new')}"
        minus = f"count = count - 1, total = total - old.id, hashed = hashed - {_HASH.format(row='old')}"
        moved = (
            f"total = total - old.id + new.id, hashed = hashed - {_HASH.format(row='old')}"
            f" + {_HASH.format(row='new')}"
        )
        for event, change in (("INSERT", plus), ("DELETE", minus), ("UPDATE OF id", moved)):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {name}_sum_{event.split()[0].lower()}"
                f" AFTER {event} ON {table} BEGIN UPDATE id_sums SET {change}"
                f" WHERE name = '{name}'; END;"
            )
    return "\n".join(statements)


def start_id_sums(db: sqlite3.Connection) -> None:
    """Count the ids once and keep them counted from now on (in the current transaction)."""
    db.executescript("SAVEPOINT sums;" + _sum_triggers() + "RELEASE sums;")
    for name, table in _SUMS.items():
        db.execute(
            "INSERT OR REPLACE INTO id_sums (name, count, total, hashed) SELECT ?, count(*),"
            f" coalesce(sum(id), 0), coalesce(sum({_HASH.format(row=table)}), 0) FROM {table}",
            (name,),
        )


def read_id_sums(
    db: sqlite3.Connection,
) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """(count, sum, hashed sum) of the chunk ids and of the keyword rows, as the triggers
    kept them; None for a store without them."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    if not {f"{n}_sum_{e}" for n in _SUMS for e in ("insert", "delete", "update")} <= names:
        return None
    rows = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in db.execute("SELECT * FROM id_sums")}
    if set(rows) != set(_SUMS):
        return None
    return rows["chunks"], rows["keywords"]


# Compaction thresholds (documented in docs/storage.md): the segment and the masks
# together past this share of the main file and at least COMPACT_MIN chunks, or past
# COMPACT_MAX chunks at any size. An exact search of 50,000 vectors takes about 5 ms.
COMPACT_SHARE = 0.10
COMPACT_MIN = 1_000
COMPACT_MAX = 50_000
# IVF drift: the new vectors' mean cosine to their nearest centroid, against that of the
# vectors the centroids were trained on; retrained when it is lower by more than this
# (judged on at least DRIFT_SAMPLE_MIN new vectors).
DRIFT_MARGIN = 0.05
DRIFT_SAMPLE_MIN = 500


def needs_compaction(main: int, segment: int, masked: int) -> bool:
    """Whether a segment of ``segment`` vectors and ``masked`` masked ids beside a main file
    of ``main`` vectors should be folded into a new main file."""
    pending = segment + masked
    return pending > COMPACT_MAX or (pending >= COMPACT_MIN and pending > COMPACT_SHARE * main)


@dataclass(frozen=True)
class FileCheck:
    """The main vector file as it was when its ids were last read: its size and modification
    time, and the summary of its ids. A write trusts the summary while the file is unchanged,
    so it never reads the main file; a changed file (damage, or a copy) is read again."""

    size: int
    mtime_ns: int
    count: int
    total: int
    hashed: int
    # Its kind ("exact", "approximate") and inverted lists, for compaction's shape rule.
    kind: str
    lists: int

    @classmethod
    def of(cls, path: Path, summary: IdSummary, vectors: VectorIndex) -> FileCheck:
        stat = path.stat()
        return cls(
            stat.st_size,
            stat.st_mtime_ns,
            summary.count,
            summary.total,
            summary.hashed,
            vectors.kind,
            vectors.lists,
        )

    def matches(self, path: Path) -> bool:
        try:
            stat = path.stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime_ns)


@dataclass(frozen=True)
class SegmentState:
    """What ``index_state`` says, read within one snapshot."""

    vectors_file: str
    # The main vector file named before the last compaction, kept for readers opening then.
    previous_vectors_file: str | None
    version: int
    check: FileCheck | None
    updated: str | None
    last_compaction: str | None
    # Mean cosine of the training vectors to their nearest centroid (IVF), for drift.
    trained_fit: float | None


def read_state(db: sqlite3.Connection, default_file: str) -> SegmentState:
    """The state of a store (an upgraded store with no rows yet: the defaults)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    values: dict[str, str] = {}
    if "index_state" in tables:
        values = dict(db.execute("SELECT key, value FROM index_state").fetchall())
    check = json.loads(values["check"]) if "check" in values else None
    fit = values.get("trained_fit")
    return SegmentState(
        vectors_file=values.get("vectors_file", default_file),
        previous_vectors_file=values.get("previous_vectors_file"),
        version=int(values.get("version", "0")),
        check=FileCheck(**check) if check else None,
        updated=values.get("updated"),
        last_compaction=values.get("last_compaction"),
        trained_fit=float(fit) if fit is not None else None,
    )


def write_state(db: sqlite3.Connection, **values: object) -> None:
    """Set ``index_state`` keys in the current transaction (FileCheck as JSON, None removes)."""
    for key, value in values.items():
        if value is None:
            db.execute("DELETE FROM index_state WHERE key = ?", (key,))
            continue
        text = json.dumps(asdict(value)) if isinstance(value, FileCheck) else str(value)
        db.execute("INSERT OR REPLACE INTO index_state (key, value) VALUES (?, ?)", (key, text))


def segment_tables(db: sqlite3.Connection) -> bool:
    """Whether the store has the segment tables (an index written before them has not)."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {"segment_vectors", "masked_chunks"} <= names


def read_segment(db: sqlite3.Connection, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """The segment's (ids, vectors)."""
    if not segment_tables(db):
        return np.zeros(0, np.int64), np.zeros((0, dimension), np.float32)
    rows = db.execute("SELECT chunk_id, vector FROM segment_vectors ORDER BY chunk_id").fetchall()
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return ids, vectors.reshape(len(rows), dimension).copy()


def read_masked(db: sqlite3.Connection) -> np.ndarray:
    if not segment_tables(db):
        return np.zeros(0, np.int64)
    rows = db.execute("SELECT chunk_id FROM masked_chunks ORDER BY chunk_id").fetchall()
    return np.fromiter((r[0] for r in rows), np.int64, len(rows))


def pending(db: sqlite3.Connection) -> tuple[int, int]:
    """(segment vectors, masked ids)."""
    if not segment_tables(db):
        return 0, 0
    segment = db.execute("SELECT count(*) FROM segment_vectors").fetchone()[0]
    masked = db.execute("SELECT count(*) FROM masked_chunks").fetchone()[0]
    return int(segment), int(masked)


def pending_summary(db: sqlite3.Connection, table: str) -> tuple[int, int, int]:
    """(count, sum, hashed sum) of the chunk ids of ``segment_vectors`` or ``masked_chunks``."""
    row = db.execute(
        "SELECT count(*), coalesce(sum(chunk_id), 0),"
        f" coalesce(sum(chunk_id * {ID_HASH_FACTOR} % {ID_HASH_MODULUS}), 0) FROM {table}"
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


class SegmentWriter:
    """Adds and removes vectors by chunk id within the store's open transaction (the
    writer's side of ``LiveVectors``): new vectors into the segment, removed ids of the
    main file masked, removed ids of the segment deleted."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        self._db.executemany(
            "INSERT OR REPLACE INTO segment_vectors (chunk_id, vector) VALUES (?, ?)",
            [(int(i), rows[n].tobytes()) for n, i in enumerate(ids)],
        )

    def remove(self, ids: Sequence[int]) -> None:
        for chunk_id in ids:
            deleted = self._db.execute(
                "DELETE FROM segment_vectors WHERE chunk_id = ?", (chunk_id,)
            ).rowcount
            if not deleted:  # a chunk of the main file (a reused id stays masked once)
                self._db.execute(
                    "INSERT OR IGNORE INTO masked_chunks (chunk_id) VALUES (?)", (chunk_id,)
                )

    def discard(self, ids: Sequence[int]) -> None:
        """Remove ids from the segment only (a staged generation has no main file to mask)."""
        self._db.executemany(
            "DELETE FROM segment_vectors WHERE chunk_id = ?", [(int(i),) for i in ids]
        )


class LiveVectors:
    """What a reader searches: the main vector file without its masked ids, beside the
    segment (searched exactly); one ranking of both."""

    def __init__(self, main: VectorIndex, masked: np.ndarray, segment: VectorIndex) -> None:
        self.main = main
        self.masked = masked
        self.segment = segment

    @property
    def kind(self) -> str:
        return self.main.kind

    @property
    def dimension(self) -> int:
        return self.main.dimension

    def __len__(self) -> int:
        return len(self.main) - len(self.masked) + len(self.segment)

    def describe(self) -> str:
        return self.main.describe()

    def ids(self) -> np.ndarray:
        """Every live chunk id (int64), in no particular order."""
        main = self.main.ids()
        if len(self.masked):
            main = main[~np.isin(main, self.masked)]
        return np.concatenate([main, self.segment.ids()])

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (id, vector): the main file's (decoded, if approximate) less the
        masked, and the segment's."""
        ids, vectors = self.main.vectors()
        kept = ~np.isin(ids, self.masked)
        segment_ids, segment_vectors = self.segment.vectors()
        return (
            np.concatenate([ids[kept], segment_ids]),
            np.concatenate([vectors[kept], segment_vectors]),
        )

    def changes_since(self, earlier: LiveVectors) -> tuple[list[int], list[int]]:
        """The chunk ids added and removed between ``earlier`` and this state of the same
        main file. A chunk id can be used again once its chunk is removed (SQLite gives a
        new row the highest id plus one), so an id in both segments whose vector differs
        counts as removed and added."""
        earlier_ids, earlier_vectors = earlier.segment.vectors()
        ids, vectors = self.segment.vectors()
        _, mine, theirs = np.intersect1d(ids, earlier_ids, assume_unique=True, return_indices=True)
        differs = ~np.all(vectors[mine] == earlier_vectors[theirs], axis=1)
        reused = ids[mine][differs]
        added = np.union1d(np.setdiff1d(ids, earlier_ids), reused)
        removed = np.union1d(
            np.union1d(np.setdiff1d(earlier_ids, ids), reused),
            np.setdiff1d(self.masked, earlier.masked),
        )
        return added.tolist(), removed.tolist()

    def search(
        self, vector: np.ndarray, limit: int, among: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``limit`` nearest live vectors (id, cosine), best first; only ids ``among``."""
        found = self.main.search(vector, limit, among, excluded=self.masked)
        if len(self.segment):
            found += self.segment.search(vector, limit, among)
            # Equal scores in id order, as one exact index ranks them.
            found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found[:limit]
