"""Writes in place: an ordinary write to a local index is one SQLite transaction on its
live store (write-ahead log), holding the article and chunk rows, the new vectors (the
segment) and the removed ones (masks) at once; see ``segments``. Readers keep reading the
snapshot they opened until they follow.

Before writing, the writer checks what an open checks, without reading the main vector
file while it is the file last checked (``check_for_writing``), and an index written before
segments is upgraded in place, once (``settle``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import VectorSettings
from ..errors import IndexDamagedError
from ..records import Article
from .base import IndexedArticle, WebResourceRow
from .checks import (
    check_keywords,
    check_sums,
    has_duplicates,
    id_summary,
    live_sums,
    open_store,
    read_vectors,
    store_is_whole,
    verify_store,
)
from .compaction import compact
from .manifest import MANIFEST, SCHEMA_VERSION, Manifest, damaged
from .segments import SCHEMA as SEGMENT_SCHEMA
from .segments import (
    FileCheck,
    SegmentState,
    SegmentWriter,
    pending_summary,
    read_id_sums,
    read_masked,
    read_state,
    segment_tables,
    start_id_sums,
    write_state,
)
from .steps import STORE_FILE, VECTORS_FILE, now, reached, write_atomically
from .store import Store
from .writer import GenerationWriter

logger = logging.getLogger(__name__)


class CommittedArticles:
    """The articles of the live store as committed before this write (an ``ArticleReader``,
    on a connection of its own): what the web sources remember, and each article ingest
    reads, looked up by id."""

    def __init__(self, path: Path) -> None:
        self._store = Store(path, read_only=True)

    def close(self) -> None:
        self._store.close()

    def article(self, article_id: str) -> Article | None:
        return self._store.article(article_id)

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        return self._store.articles_by_id(ids)

    def indexed_article(self, article_id: str) -> IndexedArticle | None:
        return self._store.indexed_article(article_id)

    def indexed_articles(self) -> dict[str, IndexedArticle]:
        return self._store.indexed_articles()

    def web_resources(self) -> dict[str, WebResourceRow]:
        return self._store.web_resources()


class Commits:
    """The commits of a write on a live store: batches while it goes on, then the last.
    Each bumps the store's commit counter (readers follow it) with the rows, segment
    vectors and masks written since the one before, in one SQLite transaction."""

    def __init__(self, store: Store, since: int = 0) -> None:
        self.store = store
        # The connection's change count at the last commit (``since``: what opening the
        # store wrote and committed itself).
        self._committed = since
        # Whether this write has committed anything yet.
        self.any = False

    @property
    def changed(self) -> bool:
        """Whether anything was written since the last commit."""
        return self.store.connection.total_changes != self._committed

    def commit(self, written: str, done: str) -> None:
        """Commit, with the crash-test steps ``written`` (before) and ``done`` (after)."""
        db = self.store.connection
        state = read_state(db, VECTORS_FILE)
        write_state(db, version=state.version + 1, updated=now())
        reached(written)
        self.store.commit()
        self._committed = db.total_changes
        self.any = True
        reached(done)

    def commit_batch(self) -> bool:
        """Commit what was written since the last commit, if anything (a batch)."""
        if not self.changed:
            return False
        self.commit("batch-written", "batch-committed")
        return True


@contextlib.contextmanager
def write_in_place(
    index_dir: Path, manifest: Manifest, settings: VectorSettings
) -> Iterator[GenerationWriter]:
    """One transaction on the live store, committed if the block succeeds and changed
    something; then a compaction if the segment has grown past its thresholds. The
    writer's ``commit_batch`` commits what was written so far and goes on in a new
    transaction (a long ingest, in batches)."""
    store = Store(index_dir / manifest.folder / STORE_FILE)
    log_size = _size(store.path.with_name(store.path.name + "-wal"))
    commits = Commits(store)
    try:
        store.connection.executescript(SEGMENT_SCHEMA)
        yield GenerationWriter(store, SegmentWriter(store.connection), commits.commit_batch)
        if not finish_in_place(commits):
            logger.info("nothing changed: %s stays as it is", index_dir)
            return
        restart_log(store, log_size)
    finally:
        store.close()  # an uncommitted transaction is rolled back
    compact(index_dir, manifest, settings)


def finish_in_place(commits: Commits) -> bool:
    """The last commit of a write in place (none if nothing changed since the last batch);
    whether the write committed anything at all."""
    if commits.changed:
        commits.commit("written", "committed")
    else:
        commits.store.rollback()
    return commits.any


# The write-ahead log is started afresh (and cut back to nothing) each time a write takes
# it past another multiple of this size, waiting up to LOG_RESTART_WAIT seconds for the
# readers reading from it to let go (see restart_log).
LOG_RESTART_BYTES = 64 * 1024 * 1024
LOG_RESTART_WAIT = 30.0
# Beside the store: touched by a writer that asks readers to take a new snapshot.
RESTART_SUFFIX = "-restart"


def log_restart_asked(store: Path, opened_ns: int) -> bool:
    """Whether a writer has asked readers opened at ``opened_ns`` (time.time_ns()) or
    before to take a new snapshot, so that it can start the write-ahead log afresh."""
    try:
        return store.with_name(store.name + RESTART_SUFFIX).stat().st_mtime_ns > opened_ns
    except OSError:
        return False


def restart_log(store: Store, before: int) -> bool:
    """Start the store's write-ahead log afresh if the write just committed took it past a
    multiple of LOG_RESTART_BYTES (it was ``before`` bytes); whether it was.

    SQLite reuses its log from the start only once every page in it is copied back to the
    store and no reader reads a snapshot that began while some were not. Readers here pin
    a snapshot for as long as they answer from it (``Store.pin``) and take a new one only
    after a write, so the log never restarted and only grew: by about 0.4 MB a
    single-article write at a million chunks (bench_live.py). So the writer, now and then,
    asks the readers to take a new snapshot (it touches ``store.sqlite-restart``, which
    ``is_current`` looks at), copies every page back, asks again (a snapshot taken now
    reads the store alone), and truncates the log, within LOG_RESTART_WAIT seconds (two
    rounds of the readers' ``follow_seconds``); a reader that never follows only costs
    that wait, once per multiple. The write is committed either way."""
    size = _size(store.path.with_name(store.path.name + "-wal"))
    if size // LOG_RESTART_BYTES <= before // LOG_RESTART_BYTES:
        return False
    db = store.connection
    marker = store.path.with_name(store.path.name + RESTART_SUFFIX)
    deadline = time.monotonic() + LOG_RESTART_WAIT
    db.execute("PRAGMA busy_timeout = 1000")
    while True:
        marker.touch()
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            marker.unlink(missing_ok=True)
            return True
        if time.monotonic() > deadline:
            logger.info("the write-ahead log (%d MB) is still read: kept", size // 1_000_000)
            return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class Checked:
    """What the writer's checks found: the store's state, and a new FileCheck of the main
    vector file if it had to be read (an index written before segments; a changed file,
    read in full and found whole; a copied folder)."""

    state: SegmentState
    check: FileCheck | None
    # Whether the store keeps its id sums (segments.start_id_sums); else they are started.
    sums: bool


def check_for_writing(index_dir: Path, manifest: Manifest) -> Checked:
    """An open's checks, at the cost of the store's id scans, without reading the main
    vector file while it is the file last checked (size and modification time unchanged):
    the chunk ids must be the main file's ids as last checked, less the masked, with the
    segment's (by count, sum and hashed sum). A changed main file is read and checked."""
    folder = index_dir / manifest.folder
    store = open_store(index_dir, manifest)
    try:
        db = store.connection
        try:
            store.check_tables()
            kept = read_id_sums(db) if store_is_whole(store) else None
        except IndexDamagedError as exc:
            raise damaged(index_dir, str(exc)) from None
        except sqlite3.Error as exc:
            store.unreadable = True
            raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None
        if kept is None:  # an index written before them, or a store cut short: scan
            summary, keyword = verify_store(index_dir, store)
            check_keywords(index_dir, summary, keyword)
            chunks = keywords = (summary.count, summary.total, summary.hashed)
        else:
            chunks, keywords = kept
        try:
            state = read_state(db, VECTORS_FILE)
            segment = pending_summary(db, "segment_vectors") if segment_tables(db) else (0, 0, 0)
            masked = pending_summary(db, "masked_chunks") if segment_tables(db) else (0, 0, 0)
            masked_ids = read_masked(db)
        except (sqlite3.Error, ValueError, TypeError) as exc:
            store.unreadable = True
            raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None
    finally:
        store.close()
    path = folder / state.vectors_file
    check = None
    if state.check is not None and state.check.matches(path):
        main = (state.check.count, state.check.total, state.check.hashed)
    else:
        vectors = read_vectors(index_dir, path, manifest)
        ids = vectors.ids()
        if has_duplicates(ids):
            raise damaged(index_dir, f"the chunk ids of {VECTORS_FILE} and {STORE_FILE} differ")
        if not np.isin(masked_ids, ids).all():
            raise damaged(index_dir, "the masked chunks are not all in the main vector file")
        summary = id_summary(ids)
        check = FileCheck.of(path, summary, vectors)
        main = (summary.count, summary.total, summary.hashed)
    check_sums(index_dir, chunks, keywords, live_sums(main, masked, segment))
    return Checked(state, check, kept is not None)


def settle(index_dir: Path, manifest: Manifest, checked: Checked) -> Manifest:
    """Record a new check of the main vector file, and upgrade an index written before
    segments: its store gets the segment tables, a write-ahead log and its state (in one
    transaction), then the manifest its new schema version. Both steps can be repeated, so
    a crash between them is healed by the next writer. Returns the manifest to write to."""
    current = manifest.schema_version == SCHEMA_VERSION
    if checked.check is None and checked.sums and current:
        return manifest
    store = Store(index_dir / manifest.folder / STORE_FILE)
    try:
        store.connection.executescript(SEGMENT_SCHEMA)
        if not checked.sums:
            start_id_sums(store.connection)
        values: dict[str, object] = {"check": checked.check}
        if manifest.schema_version < SCHEMA_VERSION:
            values.update(vectors_file=checked.state.vectors_file, version=checked.state.version)
        write_state(store.connection, **values)
        store.commit()
    finally:
        store.close()
    if manifest.schema_version == SCHEMA_VERSION:
        return manifest
    reached("upgrade-stored")
    logger.info("upgrading %s to schema version %d (once)", index_dir, SCHEMA_VERSION)
    upgraded = dataclasses.replace(manifest, schema_version=SCHEMA_VERSION)
    write_atomically(index_dir / MANIFEST, json.dumps(asdict(upgraded), indent=2) + "\n")
    reached("upgraded")
    return upgraded
