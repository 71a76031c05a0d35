"""An index folder: a self-describing manifest, a SQLite store and a FAISS index.

Layout::

    INDEX/index.json            manifest: format, schema, model, dimension, chunking, generation
    INDEX/gen-000007/store.sqlite
    INDEX/gen-000007/vectors.faiss

A write builds the next generation in a staging folder (copying the current one), and
commits by replacing ``index.json`` atomically. A crash at any point before that leaves
the manifest naming the previous, untouched generation. The previous generation is
kept one more round, so a reader that opened it just before a swap keeps working.
No pickle anywhere: JSON, SQLite and FAISS's own binary format.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ChunkSettings
from .errors import CitebotError, IndexMismatchError, IndexNotFoundError
from .store import Store

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

FORMAT = "citebot-index"
SCHEMA_VERSION = 1
MANIFEST = "index.json"
STORE_FILE = "store.sqlite"
VECTORS_FILE = "vectors.faiss"


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    chunking: dict[str, Any]
    generation: int
    created: str
    updated: str
    normalized: bool = True
    metric: str = "inner_product"
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    @property
    def folder(self) -> str:
        return f"gen-{self.generation:06d}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(
            f"no index at {index_dir} (run `citebot ingest PATH...` first, or pass --index)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexMismatchError(f"cannot read {path}: {exc}") from None
    if data.get("format") != FORMAT:
        raise IndexMismatchError(f"{index_dir} is not a citebot index")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"index at {index_dir} has schema version {data.get('schema_version')}; this citebot"
            f" reads version {SCHEMA_VERSION}: rebuild it with `citebot ingest --rebuild`"
        )
    return Manifest(**data)


def check_model(manifest: Manifest, model: str, index_dir: Path) -> None:
    if manifest.model != model:
        raise IndexMismatchError(
            f"index at {index_dir} was built with model {manifest.model!r}, but the config names"
            f" {model!r}: use that model, or rebuild with `citebot ingest --rebuild`"
        )


class VectorIndex:
    """Chunk vectors by chunk id, in FAISS (exact inner product on unit vectors = cosine)."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def read(cls, path: Path) -> VectorIndex:
        import faiss

        return cls(faiss.read_index(str(path)))

    def write(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if ids:
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        if len(self) == 0:
            return []
        scores, ids = self._index.search(vector.reshape(1, -1), min(limit, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def similarity(self, vector: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of ``vector`` to the stored vectors of ``ids``."""
        if not ids:
            return {}
        stored = np.vstack([self._index.reconstruct(int(i)) for i in ids])
        return dict(zip(ids, (stored @ vector).tolist(), strict=True))


@dataclass
class OpenIndex:
    """A generation opened for reading."""

    path: Path
    manifest: Manifest
    store: Store
    vectors: VectorIndex

    def close(self) -> None:
        self.store.close()

    def size_bytes(self) -> int:
        """Bytes on disk of this generation and the manifest."""
        folder = self.path / self.manifest.folder
        return (
            sum(p.stat().st_size for p in folder.iterdir()) + (self.path / MANIFEST).stat().st_size
        )


def open_index(index_dir: Path, model: str) -> OpenIndex:
    manifest = read_manifest(index_dir)
    check_model(manifest, model, index_dir)
    folder = index_dir / manifest.folder
    try:
        store = Store(folder / STORE_FILE, read_only=True)
        vectors = VectorIndex.read(folder / VECTORS_FILE)
    except Exception as exc:  # sqlite3 and faiss raise their own types
        raise IndexMismatchError(f"index at {index_dir} is damaged: {exc}") from exc
    if vectors.dimension != manifest.dimension:
        raise IndexMismatchError(f"index at {index_dir}: vectors do not match the manifest")
    return OpenIndex(index_dir, manifest, store, vectors)


@dataclass
class IndexWriter:
    """The next generation being built; committed when the ``write_index`` block ends."""

    store: Store
    vectors: VectorIndex


@contextlib.contextmanager
def _locked(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index folder (readers never wait)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CitebotError(f"another ingest is writing {index_dir}; try again later") from None
        yield


@contextlib.contextmanager
def write_index(
    index_dir: Path, model: str, dimension: int, chunking: ChunkSettings, *, rebuild: bool = False
) -> Iterator[IndexWriter]:
    """Open the next generation of ``index_dir`` for writing; commit it if the block succeeds."""
    with _locked(index_dir):
        previous: Manifest | None = None
        if (index_dir / MANIFEST).exists() and not rebuild:
            previous = read_manifest(index_dir)
            check_model(previous, model, index_dir)
        generation = (previous.generation + 1) if previous else _next_free_generation(index_dir)
        staging = index_dir / f".staging-{generation:06d}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            if previous:
                old = index_dir / previous.folder
                Store(old / STORE_FILE, read_only=True).backup_to(staging / STORE_FILE)
                vectors = VectorIndex.read(old / VECTORS_FILE)
            else:
                vectors = VectorIndex.empty(dimension)
            store = Store(staging / STORE_FILE)
            writer = IndexWriter(store, vectors)
            yield writer
            store.commit()
            store.close()
            vectors.write(staging / VECTORS_FILE)
            _fsync_folder(staging)
            manifest = Manifest(
                model=model,
                dimension=dimension,
                chunking=asdict(chunking),
                generation=generation,
                created=previous.created if previous else _now(),
                updated=_now(),
            )
            os.replace(staging, index_dir / manifest.folder)
            _write_atomically(index_dir / MANIFEST, json.dumps(asdict(manifest), indent=2) + "\n")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _remove_old_generations(index_dir, keep={generation, generation - 1})


def _next_free_generation(index_dir: Path) -> int:
    """After a rebuild, number past every folder left over, so none is reused while open."""
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    return max(numbers, default=0) + 1


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_old_generations(index_dir: Path, keep: set[int]) -> None:
    for folder in index_dir.glob("gen-*"):
        number = folder.name[4:]
        if number.isdigit() and int(number) not in keep:
            shutil.rmtree(folder, ignore_errors=True)
