"""A new generation (a first ingest, a rebuild), written in a staging folder and committed
in batches, like a write in place.

``INDEX/.staging-NNNNNN`` holds a store as every generation's, an empty main vector file
(``STAGED_VECTORS``) and ``staging.json``, the manifest the generation will have. The new
vectors are kept in memory (the main vector file is written once, at the end, as the kind
its size calls for) and copied into the store's segment table, so that each batch commits
the rows and their vectors in one SQLite transaction: at every batch, chunk rows = keyword
rows = segment ids, as in a write in place.

- A **first ingest** publishes the generation at its first batch (the folder is renamed and
  the manifest written: the index exists and holds that batch); later batches and the end
  are commits in place (``inplace.Commits``), then a compaction folds the segment into a
  main vector file. A first ingest that fails before its first batch leaves no index.
- A **rebuild** commits its batches inside the staging folder, unpublished: readers keep
  the old index until the rebuild has ended and published as a whole. A rebuild killed or
  failed after a batch leaves its staging folder; the next rebuild resumes it if it was
  made the same way (``staging.json``: model, backend, dimension, chunking, schema) and is
  whole (checked as an open checks an index): the articles it holds with the same content
  hash are not embedded again, and those not read again are removed before the end.
  Otherwise it is removed and the rebuild starts over.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import VectorSettings
from ..errors import CitebotError
from .checks import check_agreement, id_summary, read_vectors, verify_store
from .compaction import compact
from .inplace import Commits, finish_in_place
from .manifest import MANIFEST, Manifest
from .segments import SCHEMA as SEGMENT_SCHEMA
from .segments import (
    FileCheck,
    LiveVectors,
    SegmentWriter,
    read_masked,
    read_segment,
    read_state,
    start_id_sums,
    write_state,
)
from .steps import (
    STORE_FILE,
    VECTORS_FILE,
    fsync,
    now,
    numbered_folders,
    reached,
    remove_vector_files,
    write_atomically,
)
from .store import Store
from .vectors import VectorIndex
from .writer import GenerationWriter

if TYPE_CHECKING:
    from ..embedding.model_files import OnnxModel

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"
MARKER = "staging.json"
# The empty main vector file of a staged generation (the end writes VECTORS_FILE).
STAGED_VECTORS = "vectors-000000.faiss"
# What must match for a rebuild to resume a staged generation: how its vectors and chunks
# were made (not when, nor its number).
_SAME = ("model", "dimension", "chunking", "backend", "quantization", "model_sha256")


def staging_folders(index_dir: Path) -> dict[int, Path]:
    return numbered_folders(index_dir, STAGING_PREFIX)


def leftover_staging(index_dir: Path, *, keep_resumable: bool) -> list[Path]:
    """The staging folders an earlier writer left, to remove; with ``keep_resumable``,
    but for the newest one a rebuild may resume (it holds ``staging.json``)."""
    found = [p for p in index_dir.glob(f"{STAGING_PREFIX}*") if p.is_dir()]
    numbered = staging_folders(index_dir)
    if keep_resumable and numbered:
        newest = numbered[max(numbered)]
        if (newest / MARKER).is_file():
            found.remove(newest)
    return found


class StagedGeneration:
    """The writer's side of one staged generation: created or resumed, committed in
    batches, then published (see the module's docstring)."""

    def __init__(
        self,
        index_dir: Path,
        manifest: Manifest,
        settings: VectorSettings,
        artifact: OnnxModel | None,
        *,
        publish_early: bool,
    ) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.settings = settings
        self.artifact = artifact
        # A first ingest: the first batch publishes the generation.
        self.publish_early = publish_early
        self.folder = index_dir / f"{STAGING_PREFIX}{manifest.generation:06d}"
        self.final = index_dir / manifest.folder
        self.published = False
        # Whether the staging folder holds committed articles (kept after a failure).
        self.holds_batches = False
        self.writer: GenerationWriter | None = None
        self._store: Store | None = None
        self._commits: Commits | None = None
        self._loaded: VectorIndex | None = None

    # -- creating or resuming ------------------------------------------------------------

    def create(self) -> GenerationWriter:
        folder = self.folder
        folder.mkdir()
        store = self._store = Store(folder / STORE_FILE, new=True)
        db = store.connection
        db.executescript(SEGMENT_SCHEMA)
        start_id_sums(db)
        empty = VectorIndex.empty(self.manifest.dimension)
        empty.write(folder / STAGED_VECTORS)
        check = FileCheck.of(folder / STAGED_VECTORS, id_summary(empty.ids()), empty)
        write_state(db, vectors_file=STAGED_VECTORS, version=0, updated=now(), check=check)
        store.commit()
        # Last: a folder without it (a crash before) is never resumed.
        (folder / MARKER).write_text(json.dumps(asdict(self.manifest), indent=2) + "\n")
        fsync(folder / MARKER)
        reached("staged")
        return self._writer(VectorIndex.empty(self.manifest.dimension))

    @classmethod
    def resumed(
        cls,
        index_dir: Path,
        manifest: Manifest,
        settings: VectorSettings,
        artifact: OnnxModel | None,
    ) -> StagedGeneration | None:
        """The staged generation a killed or failed rebuild left, if it was made as
        ``manifest`` says (its number is then the staged one) and is whole; every other
        staging folder is removed."""
        resumed = None
        for number, folder in sorted(staging_folders(index_dir).items(), reverse=True):
            if resumed is None and number > manifest.generation - 1:
                staged = cls(
                    index_dir,
                    replace(manifest, generation=number),
                    settings,
                    artifact,
                    publish_early=False,
                )
                if (problem := staged._resume()) is None:
                    resumed = staged
                    continue
                logger.warning("not resuming the rebuild left in %s: %s", folder, problem)
            else:
                logger.warning("removing %s, left by an interrupted ingest", folder)
            shutil.rmtree(folder, ignore_errors=True)
        return resumed

    def _resume(self) -> str | None:
        """Open the staged store and load its vectors; why not, if it cannot be resumed."""
        folder = self.folder
        try:
            marker = Manifest(**json.loads((folder / MARKER).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return f"{MARKER} is missing or unreadable"
        for name in _SAME:
            if getattr(marker, name) != getattr(self.manifest, name):
                return f"it was made with another {name} ({getattr(marker, name)!r})"
        if marker.generation != self.manifest.generation:
            return f"{MARKER} names another generation"
        store = None
        try:
            store = Store(folder / STORE_FILE)
            problem, segment = self._check(store)
        except (sqlite3.Error, CitebotError, OSError, ValueError, RuntimeError) as exc:
            problem, segment = f"it is damaged ({exc})", None
        if problem is not None or segment is None:
            if store is not None:
                store.close()
            return problem
        self._store, self._loaded = store, segment
        self.holds_batches = bool(len(segment))
        logger.info("resuming the rebuild left in %s (%d chunks staged)", folder, len(segment))
        reached("resumed")
        return None

    def _check(self, store: Store) -> tuple[str | None, VectorIndex | None]:
        """The staged vectors, checked as an open checks an index (chunk rows = keyword rows
        = staged vector ids, in full); or why they cannot be resumed."""
        db = store.connection
        manifest = self.manifest
        state = read_state(db, VECTORS_FILE)
        path = self.folder / state.vectors_file
        if state.vectors_file != STAGED_VECTORS or not (state.check and state.check.matches(path)):
            return "its vector file is not the staged one", None
        main = read_vectors(self.index_dir, path, manifest)
        if len(main):
            return "its main vector file is not empty", None
        ids, vectors = read_segment(db, manifest.dimension)
        # The staged copy of the vectors: the writer's vectors in memory from now on.
        segment = VectorIndex.empty(manifest.dimension)
        if len(ids):
            segment.add(ids.tolist(), vectors)
        chunks, keyword = verify_store(self.index_dir, store)
        check_agreement(
            self.index_dir, chunks, keyword, LiveVectors(main, read_masked(db), segment)
        )
        return None, segment

    def _writer(self, vectors: VectorIndex) -> GenerationWriter:
        assert self._store is not None
        db = self._store.connection
        self._commits = Commits(self._store, since=db.total_changes)
        self.writer = GenerationWriter(self._store, vectors, self.commit_batch, SegmentWriter(db))
        return self.writer

    def resume(self) -> GenerationWriter:
        """The writer of a generation ``resumed`` has opened, its vectors loaded."""
        assert self._loaded is not None
        loaded, self._loaded = self._loaded, None
        return self._writer(loaded)

    # -- batches -----------------------------------------------------------------------

    def commit_batch(self) -> bool:
        commits = self._commits
        assert commits is not None
        if self.published:
            return commits.commit_batch()
        if not commits.changed:
            return False
        if self.publish_early:
            commits.commit("first-batch-written", "first-batch-committed")
            self.holds_batches = True
            self._publish_first_batch()
        else:
            commits.commit("staging-batch-written", "staging-batch-committed")
            self.holds_batches = True
        return True

    def _publish_first_batch(self) -> None:
        """Publish the staged generation as it is (its batch in the segment); the rest of
        the write goes on in place."""
        assert self._store is not None and self.writer is not None
        self._store.close()  # renaming its folder under an open store would stop its writes
        self._store = None
        self._seal()
        self.folder.replace(self.final)
        reached("first-batch-renamed")
        self._write_manifest()
        self.published = True
        reached("first-batch-published")
        store = self._store = Store(self.final / STORE_FILE)
        self._commits = Commits(store)
        # From now on a write in place: the vectors go to the segment only.
        self.writer.store = store
        self.writer.vectors = SegmentWriter(store.connection)
        self.writer.staged = None

    def _seal(self) -> None:
        """The staging folder, ready to become a generation: the model files copied in (ONNX
        backends), the marker removed, everything on disk."""
        if self.artifact is not None:
            self.artifact.copy_to(self.folder)
        (self.folder / MARKER).unlink(missing_ok=True)
        for path in self.folder.iterdir():
            fsync(path)
        fsync(self.folder)

    def _write_manifest(self) -> None:
        manifest = replace(self.manifest, updated=now())
        write_atomically(self.index_dir / MANIFEST, json.dumps(asdict(manifest), indent=2) + "\n")

    # -- the end -----------------------------------------------------------------------

    def finish(self) -> None:
        """Commit the rest and publish (after a first batch: in place, then compact)."""
        store, commits, writer = self._store, self._commits, self.writer
        assert store is not None and commits is not None and writer is not None
        if self.published:
            try:
                finish_in_place(commits)
            finally:
                store.close()
                self._store = None
            compact(self.index_dir, self.manifest, self.settings, force=True)
            return
        store.commit()
        reached("store-written")
        vectors = writer.vectors.adapted(self.settings)
        vectors.write(self.folder / VECTORS_FILE)
        db = store.connection
        db.execute("DELETE FROM segment_vectors")  # the staged copy, now in the main file
        write_state(
            db,
            vectors_file=VECTORS_FILE,
            version=0,
            updated=now(),
            check=FileCheck.of(self.folder / VECTORS_FILE, id_summary(vectors.ids()), vectors),
            trained_fit=vectors.trained_fit,
        )
        store.commit()
        store.release_free_pages()
        store.close()
        self._store = None
        reached("vectors-written")
        remove_vector_files(self.folder, keep={VECTORS_FILE})
        self._seal()
        reached("synced")
        self.folder.replace(self.final)
        reached("renamed")
        self._write_manifest()
        self.published = True
        reached("committed")

    def abandon(self) -> None:
        """After a failure: what was committed stays (a published generation is the index;
        a rebuild's staged batches wait for the next rebuild); the rest is removed."""
        if self._store is not None:
            self._store.close()  # an uncommitted transaction is rolled back
            self._store = None
        if self.published:
            return
        shutil.rmtree(self.final, ignore_errors=True)  # renamed, never named by a manifest
        if self.holds_batches and not self.publish_early and self.folder.is_dir():
            logger.warning(
                "the rebuild stopped; its committed batches stay in %s, and the next"
                " `citebot ingest --rebuild` resumes from them",
                self.folder,
            )
            return
        shutil.rmtree(self.folder, ignore_errors=True)
