"""Compaction: fold the segment and the masks of a local index into a new main vector file.

Runs under the writer lock: after a write's own commit once the segment has passed the
thresholds of ``segments`` (or when the main file is no longer of the kind its size calls
for), or when asked (``compact(..., force=True)``), within the same crash-safe protocol as every
write: the new main file is written under a new name and synced, then one SQLite
transaction names it, empties the segment and the masks, and bumps the store's commit
counter (readers follow it). A crash before that commit leaves the old state, and the next
writer removes the unnamed file; after it, the new one. The file named before stays for
readers opening meanwhile; older ones are removed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import VectorSettings
from .checks import id_summary
from .manifest import Manifest
from .segments import (
    DRIFT_MARGIN,
    DRIFT_SAMPLE_MIN,
    FileCheck,
    needs_compaction,
    pending,
    read_masked,
    read_segment,
    read_state,
    write_state,
)
from .steps import STORE_FILE, VECTORS_FILE, fsync, now, reached, remove_vector_files
from .store import Store
from .vectors import VectorIndex, lists_for, probes_for, shape_fits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Compaction:
    """What a compaction did."""

    folded: int  # segment vectors moved into the main file
    unmasked: int  # masked vectors dropped from it
    vectors: int  # in the new main file
    retrained: bool  # the approximate index was trained again (size or drift)
    seconds: float
    at: str

    def describe(self) -> str:
        retrained = ", retrained" if self.retrained else ""
        return (
            f"{self.at}: {self.folded:,} new and {self.unmasked:,} removed chunks folded into"
            f" {self.vectors:,} in {self.seconds:.1f} s{retrained}"
        )


def compact(
    index_dir: Path, manifest: Manifest, settings: VectorSettings, *, force: bool = False
) -> Compaction | None:
    """Compact the index (the caller holds its writer lock) if its segment has passed the
    thresholds or its main file no longer suits its size, or with ``force`` if there is
    anything to fold; None if nothing was done."""
    started = time.perf_counter()
    folder = index_dir / manifest.folder
    store = Store(folder / STORE_FILE)
    try:
        db = store.connection
        state = read_state(db, VECTORS_FILE)
        segment_count, masked_count = pending(db)
        check = state.check
        main_count = check.count if check else 0
        live = main_count - masked_count + segment_count
        # Also when the main file is no longer of the kind its size calls for (an exact
        # index grown past [vectors] approximate_from, say), as every write rewrote it before.
        reshape = check is not None and not shape_fits(check.kind, check.lists, live, settings)
        folding = needs_compaction(main_count, segment_count, masked_count)
        if force:
            folding = bool(segment_count or masked_count)
        if not (folding or reshape):
            return None
        main = VectorIndex.read(folder / state.vectors_file)
        ids, vectors = read_segment(db, manifest.dimension)
        masked = read_masked(db)
        main.remove(masked.tolist())
        drift = _drifted(main, vectors, state.trained_fit)
        main.add(ids.tolist(), vectors)
        compacted = _retrained(main, settings) if drift else main.adapted(settings)
        retrained = compacted is not main
        name = f"vectors-{state.version + 1:06d}.faiss"
        path = folder / name
        compacted.write(path)
        fsync(path)
        fsync(folder)
        reached("compaction-written")
        done = Compaction(
            folded=len(ids),
            unmasked=len(masked),
            vectors=len(compacted),
            retrained=retrained,
            seconds=time.perf_counter() - started,
            at=now(),
        )
        db.execute("DELETE FROM segment_vectors")
        db.execute("DELETE FROM masked_chunks")
        write_state(
            db,
            vectors_file=name,
            previous_vectors_file=state.vectors_file,
            version=state.version + 1,
            check=FileCheck.of(path, id_summary(compacted.ids()), compacted),
            last_compaction=done.describe(),
            trained_fit=compacted.trained_fit if retrained else state.trained_fit,
        )
        store.commit()
        reached("compacted")
        store.release_free_pages()  # the segment's (a store created by this release)
    finally:
        store.close()
    remove_vector_files(folder, keep={name, state.vectors_file})
    reached("compaction-cleaned")
    logger.info("compacted %s: %s", index_dir, done.describe())
    return done


def _drifted(main: VectorIndex, new: np.ndarray, trained_fit: float | None) -> bool:
    """Whether the new vectors fit the approximate index's centroids worse than the vectors
    they were trained on, by more than DRIFT_MARGIN (judged on DRIFT_SAMPLE_MIN or more)."""
    if trained_fit is None or len(new) < DRIFT_SAMPLE_MIN:
        return False
    fit = main.centroid_fit(new)
    if fit is None:
        return False
    logger.info("new vectors fit the centroids at %.3f (trained: %.3f)", fit, trained_fit)
    return fit < trained_fit - DRIFT_MARGIN


def _retrained(main: VectorIndex, settings: VectorSettings) -> VectorIndex:
    count = len(main)
    lists = lists_for(count)
    nprobe = probes_for(lists, count, settings.vectors_per_question)
    return VectorIndex.approximate(*main.vectors(), lists=lists, nprobe=nprobe)
