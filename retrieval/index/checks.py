"""What opening a local index checks: the store's own tables, the main vector file, and
that the live vector ids (the main file's, less the masked, with the segment's), the SQLite
chunk rows and the keyword index rows are one set (counts and an id fingerprint). A damaged
index is refused with one line saying how to rebuild it."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np

from ..errors import IndexDamagedError
from .manifest import MANIFEST, Manifest, damaged
from .segments import LiveVectors, read_id_sums
from .steps import STORE_FILE, VECTORS_FILE
from .store import ID_HASH_FACTOR, ID_HASH_MODULUS, IdSummary, Store
from .vectors import VectorIndex

logger = logging.getLogger(__name__)


def open_store(index_dir: Path, manifest: Manifest) -> Store:
    """The store of the manifest's generation, for reading; damaged if it is missing or
    cannot be opened."""
    folder = index_dir / manifest.folder
    if not folder.is_dir():
        raise damaged(index_dir, f"its generation folder {manifest.folder} is missing")
    if not (folder / STORE_FILE).is_file():
        raise damaged(index_dir, f"{STORE_FILE} is missing")
    try:
        store = Store(folder / STORE_FILE, read_only=True)
    except sqlite3.Error as exc:
        raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None
    return store


def verify_store(index_dir: Path, store: Store) -> tuple[IdSummary, IdSummary]:
    """The store's summaries of its chunk ids and keyword rows (``Store.verify``)."""
    try:
        return store.verify()
    except IndexDamagedError as exc:
        raise damaged(index_dir, str(exc)) from None
    except sqlite3.Error as exc:
        store.unreadable = True
        raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None


def read_vectors(index_dir: Path, path: Path, manifest: Manifest) -> VectorIndex:
    """The main vector file at ``path``, of the manifest's dimension."""
    if not path.is_file():
        raise damaged(index_dir, f"{path.name} is missing")
    try:
        vectors = VectorIndex.read(path)
    except RuntimeError as exc:  # FAISS's message is a C++ assertion: for the log only
        logger.debug("cannot read %s: %s", path, exc)
        raise damaged(index_dir, f"{path.name} cannot be read") from None
    except ValueError:  # a FAISS index of a kind citebot does not write
        raise damaged(index_dir, f"{path.name} holds no chunk ids") from None
    if vectors.dimension != manifest.dimension:
        raise damaged(
            index_dir,
            f"{path.name} holds vectors of {vectors.dimension} dimensions, the manifest"
            f" says {manifest.dimension}",
        )
    return vectors


def check_agreement(
    index_dir: Path, chunks: IdSummary, keyword: IdSummary, vectors: LiveVectors
) -> Sums:
    """Live vector ids, SQLite chunk rows and keyword index rows: the same set (by
    fingerprint), every masked id in the main file. Returns the main file's id sums."""
    main = vectors.main.ids()
    masked = np.isin(main, vectors.masked)
    if int(masked.sum()) != len(vectors.masked):
        raise damaged(index_dir, "the masked chunks are not all in the main vector file")
    ids = np.concatenate([main[~masked], vectors.segment.ids()])
    if len(ids) != chunks.count:
        raise damaged(
            index_dir, f"{VECTORS_FILE} holds {len(ids)} vectors for {chunks.count} chunks"
        )
    if len(ids) and (id_summary(ids) != chunks or has_duplicates(ids)):
        raise damaged(index_dir, f"the chunk ids of {VECTORS_FILE} and {STORE_FILE} differ")
    check_keywords(index_dir, chunks, keyword)
    return sums_of(main)


def check_keywords(index_dir: Path, chunks: IdSummary, keyword: IdSummary) -> None:
    if keyword.count != chunks.count:
        raise damaged(
            index_dir, f"the keyword index holds {keyword.count} rows for {chunks.count} chunks"
        )
    if keyword != chunks:
        raise damaged(index_dir, "the keyword index's rows differ from the chunks")


# (count, sum, hashed sum) of a set of ids: parts of an IdSummary that add up, so that the
# live ids' can be had from the main file's, the masked and the segment's.
Sums = tuple[int, int, int]


def sums_of(ids: np.ndarray) -> Sums:
    summary = id_summary(ids)
    return summary.count, summary.total, summary.hashed


def live_sums(main: Sums, masked: Sums, segment: Sums) -> Sums:
    count, total, hashed = (m - x + g for m, x, g in zip(main, masked, segment, strict=True))
    return count, total, hashed


def check_sums(index_dir: Path, chunks: Sums, keywords: Sums, vectors: Sums) -> None:
    """Chunk rows, keyword rows and live vector ids agree by their sums (the cheap check of
    a writer, and of a reader following a write; see segments.read_id_sums)."""
    if keywords[0] != chunks[0]:
        raise damaged(
            index_dir, f"the keyword index holds {keywords[0]} rows for {chunks[0]} chunks"
        )
    if keywords != chunks:
        raise damaged(index_dir, "the keyword index's rows differ from the chunks")
    if vectors[0] != chunks[0]:
        raise damaged(
            index_dir, f"{VECTORS_FILE} holds {vectors[0]} vectors for {chunks[0]} chunks"
        )
    if vectors != chunks:
        raise damaged(index_dir, f"the chunk ids of {VECTORS_FILE} and {STORE_FILE} differ")


def id_summary(ids: np.ndarray) -> IdSummary:
    if not len(ids):
        return IdSummary(0, 0, 0, 0, 0)  # as the store's summary of no rows
    hashed = ids * ID_HASH_FACTOR % ID_HASH_MODULUS
    return IdSummary(len(ids), int(ids.min()), int(ids.max()), int(ids.sum()), int(hashed.sum()))


def has_duplicates(ids: np.ndarray) -> bool:
    ordered = np.sort(ids)  # several times faster than np.unique here
    return bool((ordered[1:] == ordered[:-1]).any())


def store_is_whole(store: Store) -> bool:
    """Whether the file holds every page the store counts, with its write-ahead log: a
    store cut short fails this (a cheap look before trusting ``segments.read_id_sums``)."""
    db = store.connection
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    log = store.path.with_name(store.path.name + "-wal")
    on_disk = store.path.stat().st_size + (log.stat().st_size if log.exists() else 0)
    return bool(pages * size <= on_disk)


def kept_id_sums(index_dir: Path, store: Store) -> tuple[Sums, Sums] | None:
    """The chunk and keyword id sums the store's triggers keep (None: none, or a store
    shorter than the pages it counts, which is then scanned)."""
    try:
        return read_id_sums(store.connection) if store_is_whole(store) else None
    except sqlite3.Error as exc:
        store.unreadable = True
        raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None


def size_on_disk(index_dir: Path, folder: Path) -> int:
    try:
        files = sum(p.stat().st_size for p in folder.iterdir())
        return files + (index_dir / MANIFEST).stat().st_size
    except OSError as exc:  # a writer removed the folder meanwhile
        raise damaged(index_dir, f"cannot read {folder.name}: {exc.strerror}") from None
