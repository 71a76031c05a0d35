"""The named steps of each kind of write to a local index, the crash-test hook that kills
the writer at one of them, and the small file operations every kind of write shares.

Crash tests set ``CITEBOT_TEST_KILL_AT`` to a step to have the writing process kill itself
(SIGKILL) there; see tests/reliability/.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

STORE_FILE = "store.sqlite"
# The main vector file of a new generation; a compaction writes ``vectors-NNNNNN.faiss``.
VECTORS_FILE = "vectors.faiss"

# A new generation (a first ingest, a rebuild):
GENERATION_STEPS = (
    "locked",  # the writer lock is held
    "healed",  # leftovers of an earlier crash are removed
    "staged",  # the staging folder holds a new, empty store (and staging.json)
    "store-written",  # the new store's rows are committed
    "vectors-written",  # the new vectors are written, and the store names them
    "synced",  # the staging folder's files are on disk
    "renamed",  # the staging folder is renamed to its generation folder
    "manifest-staged",  # the new manifest is written beside the old one
    "committed",  # the new manifest replaced the old one
    "cleaned",  # generations no longer kept are removed
)
# An ordinary write, in place (then a compaction, if the segment has grown):
WRITE_STEPS = (
    "locked",
    "healed",
    "written",  # rows, segment vectors and masks written, not committed
    "committed",  # the SQLite transaction committed
)
# A long write in place commits in batches (``[ingest] commit_every_articles``); each:
BATCH_STEPS = (
    "batch-written",  # a batch's rows, segment vectors and masks written, not committed
    "batch-committed",  # the batch's transaction committed; the write goes on
)
# A first ingest commits in batches too (see staging): its first batch publishes the new
# generation, and later batches are those of a write in place (BATCH_STEPS):
FIRST_BATCH_STEPS = (
    "first-batch-written",  # the first batch is written in the staging folder, not committed
    "first-batch-committed",  # ... committed there, not yet published
    "first-batch-renamed",  # the staging folder is renamed to its generation folder
    "first-batch-published",  # the manifest names it: the index exists, holding the batch
)
# Every step a first ingest in batches passes, in order: its first batch published, then
# (the manifest written along) the batches of a write in place.
BATCHED_FIRST_INGEST_STEPS = (*FIRST_BATCH_STEPS, "manifest-staged", *BATCH_STEPS)
# A rebuild commits its batches inside its staging folder, unpublished (see staging):
STAGING_STEPS = (
    "staging-batch-written",  # a batch written in the staging folder, not committed
    "staging-batch-committed",  # ... committed there; the old index is still the one read
    "resumed",  # the next rebuild checked the staged generation and goes on from it
)
# A compaction (see compaction):
COMPACTION_STEPS = (
    "compaction-written",  # the new main vector file is written and on disk
    "compacted",  # the store names it, with the segment and masks emptied
    "compaction-cleaned",  # main vector files no longer kept are removed
)
# The upgrade of an index written before segments, by its first write (see inplace):
UPGRADE_STEPS = (
    "upgrade-stored",  # the store has its segment tables, log and state
    "upgraded",  # the manifest has the new schema version
)
COMMIT_STEPS = tuple(
    dict.fromkeys(
        GENERATION_STEPS
        + WRITE_STEPS
        + BATCH_STEPS
        + FIRST_BATCH_STEPS
        + STAGING_STEPS
        + COMPACTION_STEPS
        + UPGRADE_STEPS
    )
)
KILL_AT_ENV = "CITEBOT_TEST_KILL_AT"


def reached(step: str) -> None:
    """Crash-test hook: kill -9 this process at ``step`` if the environment asks for it."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once (a reader sees the old file or the new)."""
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    reached("manifest-staged")
    os.replace(temporary, path)
    fsync(path.parent)


def numbered_folders(index_dir: Path, prefix: str) -> dict[int, Path]:
    """The folders ``PREFIXNNNNNN`` of an index folder, by number."""
    found = {}
    for path in index_dir.glob(f"{prefix}*"):
        number = path.name[len(prefix) :]
        if number.isdigit():
            found[int(number)] = path
    return found


def remove_vector_files(folder: Path, keep: set[str | None]) -> None:
    """Remove the main vector files of ``folder`` other than those in ``keep``."""
    for path in folder.glob("vectors*.faiss"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def discard_log(path: Path) -> None:
    """Remove the empty write-ahead log and shared-memory files that opening a damaged
    (malformed) store left: SQLite cannot checkpoint it, so closing keeps them, and a
    reader that was refused must leave the folder as it found it."""
    log = path.with_name(path.name + "-wal")
    if log.is_file() and log.stat().st_size == 0:
        log.unlink(missing_ok=True)
        path.with_name(path.name + "-shm").unlink(missing_ok=True)
