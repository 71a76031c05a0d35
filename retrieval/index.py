"""An index folder: a self-describing manifest, a SQLite store and a FAISS index.

Layout::

    INDEX/index.json            manifest: format, schema, model, dimension, chunking, generation
    INDEX/gen-000007/store.sqlite
    INDEX/gen-000007/vectors.faiss
    INDEX/gen-000007/embedder.*     the exported model, for indexes built with an ONNX backend

A write builds the next generation in a staging folder (copying the current one), and
commits by replacing ``index.json`` atomically. A crash at any point before that leaves
the manifest naming the previous, untouched generation; the next writer removes what the
crash left (staging folders, generation folders no manifest named). An ingest that
changes nothing writes no generation.

Retention: a commit keeps the new generation and the one before it, and removes the
rest. A reader holds its SQLite file open and its vectors in memory, so it keeps
working after its folder is removed; only opening needs the folder, and an open that
loses the race with two quick commits reads the manifest again.

Opening checks, cheaply, that the manifest is well formed and that the FAISS ids, the
SQLite chunk rows and the keyword index agree (counts and an id fingerprint), and
refuses a damaged index with one line saying how to rebuild it. A writer never builds
on a damaged generation.

No pickle anywhere: JSON, SQLite and FAISS's own binary format.

Crash tests set ``CITEBOT_TEST_KILL_AT`` to one of ``COMMIT_STEPS`` to have the writing
process kill itself (SIGKILL) at that step; see tests/reliability/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import logging
import math
import os
import shutil
import signal
import sqlite3
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ChunkSettings, VectorSettings
from .errors import CitebotError, IndexDamagedError, IndexMismatchError, IndexNotFoundError
from .store import ID_HASH_FACTOR, ID_HASH_MODULUS, IdSummary, Store

if TYPE_CHECKING:
    import faiss

    from .embedding.model_files import OnnxModel

logger = logging.getLogger(__name__)

FORMAT = "citebot-index"
SCHEMA_VERSION = 1
MANIFEST = "index.json"
STORE_FILE = "store.sqlite"
VECTORS_FILE = "vectors.faiss"
LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"
GENERATION_PREFIX = "gen-"

# The named steps of a write, in order; the crash tests kill the writer at each one.
COMMIT_STEPS = (
    "locked",  # the writer lock is held
    "healed",  # leftovers of an earlier crash are removed
    "staged",  # the staging folder holds a copy of the current generation
    "store-written",  # the new store is committed and closed
    "vectors-written",  # the new vectors are written
    "synced",  # the staging folder's files are on disk
    "renamed",  # the staging folder is renamed to its generation folder
    "manifest-staged",  # the new manifest is written beside the old one
    "committed",  # the new manifest replaced the old one
    "cleaned",  # generations no longer kept are removed
)
KILL_AT_ENV = "CITEBOT_TEST_KILL_AT"


def _reached(step: str) -> None:
    """Crash-test hook: kill -9 this process at ``step`` if the environment asks for it."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


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
    # How the vectors were made: "torch" (sentence-transformers), "onnx" or "onnx-int8" (ONNX
    # Runtime; the generation folder holds the model file, whose checksum is below). Indexes
    # written before there were backends were all made with torch, in fp32.
    backend: str = "torch"
    quantization: str | None = None
    model_sha256: str | None = None
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    @property
    def folder(self) -> str:
        return f"{GENERATION_PREFIX}{self.generation:06d}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _damaged(index_dir: Path, reason: str) -> IndexDamagedError:
    reason = " ".join(reason.split())  # one line, whatever the library said
    return IndexDamagedError(
        f"index at {index_dir} is damaged ({reason}): rebuild it from your articles with"
        " `citebot ingest --rebuild PATH...`"
    )


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of ``index_dir``, checked key by key; a one-line error if it is unusable."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(
            f"no index at {index_dir} (run `citebot ingest PATH...` first, or pass --index)"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise IndexMismatchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested beyond reason
        raise _damaged(index_dir, f"{MANIFEST} is not valid JSON") from None
    if not isinstance(data, dict):
        raise _damaged(index_dir, f"{MANIFEST} is not a JSON object")
    if data.get("format") != FORMAT:
        raise IndexMismatchError(f"{index_dir} is not a citebot index")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"index at {index_dir} has schema version {data.get('schema_version')!r}; this"
            f" citebot reads version {SCHEMA_VERSION}: rebuild it with `citebot ingest --rebuild`"
        )
    if problem := _manifest_problem(data):
        raise _damaged(index_dir, f"{MANIFEST}: {problem}")
    return Manifest(**data)


def _manifest_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the manifest's keys and values, if anything."""
    fields = {f.name: f for f in dataclasses.fields(Manifest)}
    if unknown := sorted(set(data) - set(fields)):
        return f"unknown key {', '.join(map(repr, unknown))}"
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    if missing := [n for n in required if n not in data]:
        return f"missing key {', '.join(map(repr, missing))}"
    hints = _manifest_types()
    for name, value in data.items():
        if not _has_type(value, hints[name]):
            return f"{name!r} should be {_describe(hints[name])}, not {_short(value)}"
    if data["generation"] < 1 or data["dimension"] < 1:
        return "generation and dimension must be positive"
    return None


@functools.cache
def _manifest_types() -> dict[str, Any]:
    return typing.get_type_hints(Manifest)


def _has_type(value: object, hint: Any) -> bool:
    """isinstance for the plain types a manifest holds (bool is not taken for int)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    expected = origin or hint
    if expected in (int, float) and isinstance(value, bool):
        return False
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def _describe(hint: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    origin = typing.get_origin(hint) or hint
    return names.get(origin) or {dict: "an object", list: "a list"}.get(origin, str(hint))


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def check_model(
    manifest: Manifest,
    model: str,
    index_dir: Path,
    backend: str | None = None,
    model_sha256: str | None = None,
) -> None:
    """Vectors of one model and backend only: refuse another (None checks nothing)."""
    if manifest.model != model:
        raise IndexMismatchError(
            f"index at {index_dir} was built with model {manifest.model!r}, but the config names"
            f" {model!r}: use that model, or rebuild with `citebot ingest --rebuild`"
        )
    if backend is not None and manifest.backend != backend:
        raise IndexMismatchError(
            f"index at {index_dir} was built with the {manifest.backend} backend, not {backend}:"
            f' set [model] backend = "{manifest.backend}" (or "auto"), or rebuild with'
            " `citebot ingest --rebuild`"
        )
    if model_sha256 and manifest.model_sha256 and manifest.model_sha256 != model_sha256:
        raise IndexMismatchError(
            f"index at {index_dir} was built with another export of {model} ({backend}):"
            " rebuild with `citebot ingest --rebuild`"
        )


# Vector index kinds, as `citebot stats` names them.
EXACT = "exact"
APPROXIMATE = "approximate"
# The approximate index has about LISTS_PER_ROOT × √n inverted lists, so a list holds about
# √n / 4 vectors, and at least MIN_PER_LIST vectors a list (what FAISS's k-means wants).
LISTS_PER_ROOT = 2
MIN_PER_LIST = 39
# Its k-means centroids are trained on at most this many vectors a list (more buys no
# recall, only training time).
TRAINING_PER_LIST = 64
# k-means iterations (FAISS's default is 25): at a million chunks, 10 train in about a
# third of the time for the same recall (measured).
KMEANS_ITERATIONS = 10
# Once the collection wants this many times more (or fewer) lists than it was trained with
# (it grew or shrank about 4×), ingest trains a new index from the stored vectors.
RETRAIN_FACTOR = 2


def lists_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: LISTS_PER_ROOT × √count, fewer if the lists would
    hold under MIN_PER_LIST vectors each."""
    return max(1, min(round(LISTS_PER_ROOT * count**0.5), count // MIN_PER_LIST))


def probes_for(lists: int, count: int, vectors_per_question: int) -> int:
    """Lists to search so that a question meets about ``vectors_per_question`` vectors."""
    return max(1, min(lists, -(-vectors_per_question * lists // max(1, count))))


class VectorIndex:
    """Chunk vectors by chunk id, in FAISS; scores are inner products of unit vectors (cosine).

    Two kinds, chosen by size at ingest (``adapted``): exact, every vector kept in full and
    compared with each question (IndexIDMap2 over IndexFlatIP); and approximate, an inverted
    file (IndexIVFScalarQuantizer: vectors grouped around k-means centroids trained on the
    collection, 8 bits a dimension, ids kept in the lists), which compares a question with the
    vectors of its ``nprobe`` nearest lists only. Both add and remove vectors by chunk id.
    FAISS's own file header records which kind a file holds.
    """

    def __init__(self, index: faiss.Index) -> None:
        import faiss

        if isinstance(index, faiss.IndexIVFScalarQuantizer):
            self._ivf: faiss.IndexIVFScalarQuantizer | None = index
        elif isinstance(index, faiss.IndexIDMap2) and isinstance(
            faiss.downcast_index(index.index), faiss.IndexFlat
        ):
            self._ivf = None
        else:
            raise ValueError(f"unexpected FAISS index {type(index).__name__}")
        self._index = index
        # Removals wait for the next other use and then go in one pass: each pass scans the
        # whole index, and ingest removes the chunks of one changed article at a time.
        self._removed: set[int] = set()

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def exact(cls, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        index = cls.empty(vectors.shape[1])
        index._index.add_with_ids(vectors, ids)
        return index

    @classmethod
    def approximate(
        cls, ids: np.ndarray, vectors: np.ndarray, *, lists: int, nprobe: int, seed: int = 0
    ) -> VectorIndex:
        """Train an approximate index of ``lists`` lists on ``vectors`` and add them."""
        import faiss

        count, dimension = vectors.shape
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dimension),
            dimension,
            lists,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        sample = min(count, lists * TRAINING_PER_LIST)
        chosen = np.random.default_rng(seed).choice(count, sample, replace=False)
        ivf.cp.seed = seed
        ivf.cp.niter = KMEANS_ITERATIONS
        ivf.cp.min_points_per_centroid = 1  # a tiny index (tests) trains without a warning
        ivf.train(vectors[np.sort(chosen)])
        ivf.add_with_ids(vectors, ids)
        ivf.nprobe = min(nprobe, lists)
        return cls(ivf)

    @classmethod
    def read(cls, path: Path) -> VectorIndex:
        import faiss

        return cls(faiss.read_index(str(path)))

    def write(self, path: Path) -> None:
        import faiss

        self._apply_removals()
        faiss.write_index(self._index, str(path))

    @property
    def kind(self) -> str:
        return APPROXIMATE if self._ivf is not None else EXACT

    @property
    def lists(self) -> int:
        """Inverted lists of the approximate index (0 for the exact one)."""
        return int(self._ivf.nlist) if self._ivf is not None else 0

    @property
    def nprobe(self) -> int:
        """Lists searched per question (0 for the exact index)."""
        return int(self._ivf.nprobe) if self._ivf is not None else 0

    def describe(self) -> str:
        if self._ivf is None:
            return EXACT
        return f"{APPROXIMATE} (IVF, {self.lists} lists, {self.nprobe} searched, 8-bit vectors)"

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        self._apply_removals()
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """Every stored chunk id (int64), in no particular order; checked against the store."""
        import faiss

        self._apply_removals()
        if self._ivf is None:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        lists = self._ivf.invlists
        parts = []
        for number in range(self._ivf.nlist):
            size = lists.list_size(number)
            if size:
                parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored (id, vector); the approximate index gives back its 8-bit vectors decoded."""
        import faiss

        self._apply_removals()
        count, dimension = int(self._index.ntotal), self.dimension
        if self._ivf is None:
            flat = faiss.downcast_index(self._index.index)
            stored = faiss.rev_swig_ptr(flat.get_xb(), count * dimension)
            return self.ids(), stored.reshape(count, dimension).copy()
        ivf, lists = self._ivf, self._ivf.invlists
        prefix, size = ivf.coarse_code_size(), ivf.code_size
        ids, codes = [], []
        for number in range(ivf.nlist):
            n = lists.list_size(number)
            if not n:
                continue
            ids.append(faiss.rev_swig_ptr(lists.get_ids(number), n).copy())
            listed = np.empty((n, prefix + size), dtype=np.uint8)
            # sa_decode reads each code behind its list number (little-endian, `prefix` bytes).
            listed[:, :prefix] = np.frombuffer(number.to_bytes(prefix, "little"), np.uint8)
            listed[:, prefix:] = faiss.rev_swig_ptr(lists.get_codes(number), n * size).reshape(
                n, size
            )
            codes.append(listed)
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, dimension), np.float32)
        return np.concatenate(ids), ivf.sa_decode(np.concatenate(codes))

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if ids:
            self._apply_removals()  # an id removed and added again ends up added
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        self._removed.update(ids)

    def _apply_removals(self) -> None:
        if self._removed:
            self._index.remove_ids(np.fromiter(self._removed, np.int64, len(self._removed)))
            self._removed.clear()

    def search(
        self, vector: np.ndarray, limit: int, among: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``limit`` nearest vectors (id, cosine), best first; only ids ``among`` if given."""
        if len(self) == 0 or (among is not None and not among):
            return []
        import faiss

        params = None
        if among is not None:
            # A bitmap over the id space: built in one numpy call, and a membership test
            # is one bit read as FAISS skips the vectors outside it.
            wanted = np.asarray(among, dtype=np.int64)
            bits = np.zeros(int(wanted.max()) + 1, dtype=bool)
            bits[wanted] = True
            selector = faiss.IDSelectorBitmap(np.packbits(bits, bitorder="little"))
            limit = min(limit, len(wanted))
            if self._ivf is None:
                params = faiss.SearchParameters(sel=selector)
            else:
                # Only the admitted share of each list is compared: search that many times
                # more lists, so a question still meets about as many admitted vectors
                # (a narrow filter searches every list; skipping the others is cheap).
                share = len(wanted) / len(self)
                lists = min(self.lists, math.ceil(self.nprobe / share))
                params = faiss.SearchParametersIVF(sel=selector, nprobe=lists)
        # One question is not worth splitting between threads: FAISS's OpenMP threads then
        # only wait for each other, and on a busy machine their waiting made an exact
        # search of 10,000 vectors take 32 ms instead of 0.5 ms (bench_scale). The thread
        # count is this thread's own (OpenMP keeps it per thread), so it is put back after:
        # training at ingest still uses every core.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(
                vector.reshape(1, -1), min(limit, len(self)), params=params
            )
        finally:
            faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def adapted(self, settings: VectorSettings) -> VectorIndex:
        """The index of the kind its size calls for: this one, or a new one built from it.

        Exact below ``settings.approximate_from`` vectors, approximate from there on. An
        approximate index is trained again from its stored vectors once the collection wants
        RETRAIN_FACTOR times more or fewer lists than it was trained for.
        """
        count = len(self)
        if count < settings.approximate_from:
            return self if self._ivf is None else VectorIndex.exact(*self.vectors())
        lists = lists_for(count)
        if self._ivf is not None and max(lists, self.lists) < RETRAIN_FACTOR * min(
            lists, self.lists
        ):
            self._ivf.nprobe = probes_for(self.lists, count, settings.vectors_per_question)
            return self
        logger.info("training an approximate vector index of %d lists on %d vectors", lists, count)
        nprobe = probes_for(lists, count, settings.vectors_per_question)
        return VectorIndex.approximate(*self.vectors(), lists=lists, nprobe=nprobe)


@dataclass
class OpenIndex:
    """A generation opened for reading (and checked)."""

    path: Path
    manifest: Manifest
    store: Store
    vectors: VectorIndex
    # Measured at open: the folder may be removed later while this index is still in use.
    size_bytes: int

    def close(self) -> None:
        self.store.close()

    def is_current(self) -> bool:
        """False once a later ingest committed a newer generation (reopen to see it).

        Reads the manifest (a small JSON file); raises CitebotError if it is missing or damaged.
        """
        return read_manifest(self.path).generation == self.manifest.generation


def open_index(
    index_dir: Path, model: str, backend: str | None = None, manifest: Manifest | None = None
) -> OpenIndex:
    """Open and check the current generation; IndexDamagedError (one line) if it is damaged.

    ``manifest``: the one the caller has just read (else it is read here).
    """
    for attempt in range(3):
        if manifest is None or attempt:
            manifest = read_manifest(index_dir)
        check_model(manifest, model, index_dir, backend)
        try:
            return _open_generation(index_dir, manifest)
        except IndexDamagedError:
            # Two commits between reading the manifest and opening the files remove the
            # generation it named: then the manifest names a newer one, so try that.
            if attempt == 2 or read_manifest(index_dir).generation == manifest.generation:
                raise
    raise AssertionError("unreachable")


def _open_generation(index_dir: Path, manifest: Manifest) -> OpenIndex:
    folder = index_dir / manifest.folder
    if not folder.is_dir():
        raise _damaged(index_dir, f"its generation folder {manifest.folder} is missing")
    if not (folder / STORE_FILE).is_file():
        raise _damaged(index_dir, f"{STORE_FILE} is missing")
    try:
        store = Store(folder / STORE_FILE, read_only=True)
    except sqlite3.Error as exc:
        raise _damaged(index_dir, f"{STORE_FILE}: {exc}") from None
    try:
        chunks, keyword = _verify_store(index_dir, store)
        vectors = _read_vectors(index_dir, folder, manifest)
        _check_agreement(index_dir, chunks, keyword, vectors)
        size = _size_on_disk(index_dir, folder)
    except BaseException:
        store.close()
        raise
    return OpenIndex(index_dir, manifest, store, vectors, size)


def _verify_store(index_dir: Path, store: Store) -> tuple[IdSummary, IdSummary]:
    try:
        return store.verify()
    except IndexDamagedError as exc:
        raise _damaged(index_dir, str(exc)) from None
    except sqlite3.Error as exc:
        raise _damaged(index_dir, f"{STORE_FILE}: {exc}") from None


def _read_vectors(index_dir: Path, folder: Path, manifest: Manifest) -> VectorIndex:
    path = folder / VECTORS_FILE
    if not path.is_file():
        raise _damaged(index_dir, f"{VECTORS_FILE} is missing")
    try:
        vectors = VectorIndex.read(path)
    except RuntimeError as exc:  # FAISS's message is a C++ assertion: for the log only
        logger.debug("cannot read %s: %s", path, exc)
        raise _damaged(index_dir, f"{VECTORS_FILE} cannot be read") from None
    except ValueError:  # a FAISS index of a kind citebot does not write
        raise _damaged(index_dir, f"{VECTORS_FILE} holds no chunk ids") from None
    if vectors.dimension != manifest.dimension:
        raise _damaged(
            index_dir,
            f"{VECTORS_FILE} holds vectors of {vectors.dimension} dimensions, the manifest"
            f" says {manifest.dimension}",
        )
    return vectors


def _check_agreement(
    index_dir: Path, chunks: IdSummary, keyword: IdSummary, vectors: VectorIndex
) -> None:
    """FAISS ids, SQLite chunk rows and keyword index rows: the same set (by fingerprint)."""
    ids = vectors.ids()
    if len(ids) != chunks.count:
        raise _damaged(
            index_dir, f"{VECTORS_FILE} holds {len(ids)} vectors for {chunks.count} chunks"
        )
    if len(ids) and (_id_summary(ids) != chunks or _has_duplicates(ids)):
        raise _damaged(index_dir, f"the chunk ids of {VECTORS_FILE} and {STORE_FILE} differ")
    if keyword.count != chunks.count:
        raise _damaged(
            index_dir, f"the keyword index holds {keyword.count} rows for {chunks.count} chunks"
        )
    if keyword != chunks:
        raise _damaged(index_dir, "the keyword index's rows differ from the chunks")


def _id_summary(ids: np.ndarray) -> IdSummary:
    hashed = ids * ID_HASH_FACTOR % ID_HASH_MODULUS
    return IdSummary(len(ids), int(ids.min()), int(ids.max()), int(ids.sum()), int(hashed.sum()))


def _has_duplicates(ids: np.ndarray) -> bool:
    ordered = np.sort(ids)  # several times faster than np.unique here
    return bool((ordered[1:] == ordered[:-1]).any())


def _size_on_disk(index_dir: Path, folder: Path) -> int:
    try:
        files = sum(p.stat().st_size for p in folder.iterdir())
        return files + (index_dir / MANIFEST).stat().st_size
    except OSError as exc:  # a writer removed the folder meanwhile
        raise _damaged(index_dir, f"cannot read {folder.name}: {exc.strerror}") from None


# -- writing ----------------------------------------------------------------------------


@dataclass
class IndexWriter:
    """The next generation being built; committed when the ``next_generation`` block ends.

    ``vectors`` may be replaced within the block (by ``vectors.adapted(...)``, say); what it
    holds at the end is written, as the kind its size calls for.
    """

    store: Store
    vectors: VectorIndex


class WriteLock:
    """The writer lock of an index folder, held, with the generation to build on (checked).

    Taken before anything slow (reading files, loading a model), so a second writer is
    refused at once; ``next_generation`` then builds and commits the new generation.
    """

    def __init__(
        self,
        index_dir: Path,
        model: str,
        current: int | None,
        previous: OpenIndex | None,
        backend: str = "torch",
    ) -> None:
        self.index_dir = index_dir
        self.model = model
        self.backend = backend
        # The generation the manifest names (0: none; None: unreadable, when rebuilding).
        self.current = current
        # That generation, opened and checked; None for a new index or a rebuild.
        self.previous = previous
        self._used = False

    @contextlib.contextmanager
    def next_generation(
        self,
        dimension: int,
        chunking: ChunkSettings,
        artifact: OnnxModel | None = None,
        vector_settings: VectorSettings | None = None,
    ) -> Iterator[IndexWriter]:
        """Build the next generation from a copy of the current one; commit it if the block
        succeeds and changed something (a rebuild or a new index always commits).

        ``artifact``: the exported model (ONNX backends), copied into the generation, so the
        index always holds the very model its vectors came from.

        The vector index is written as the kind its new size calls for (``VectorIndex.adapted``
        with ``vector_settings``, the defaults if None).
        """
        if self._used:
            raise RuntimeError("a WriteLock builds one generation")
        self._used = True
        index_dir, previous = self.index_dir, self.previous
        sha256 = artifact.sha256 if artifact else None
        if previous:
            check_model(previous.manifest, self.model, index_dir, self.backend, sha256)
        if previous and previous.manifest.dimension != dimension:
            raise IndexMismatchError(
                f"index at {index_dir} holds {previous.manifest.dimension}-dimensional vectors"
                f" but the model makes {dimension}: rebuild it with `citebot ingest --rebuild`"
            )
        # Past every folder left over (after a rebuild over an unreadable manifest, too), so
        # no folder a reader may hold is ever reused.
        generation = max([self.current or 0, *_generation_folders(index_dir)]) + 1
        staging = index_dir / f"{STAGING_PREFIX}{generation:06d}"
        final = index_dir / f"{GENERATION_PREFIX}{generation:06d}"
        staging.mkdir()
        store: Store | None = None
        committed = False
        try:
            if previous:
                previous.store.backup_to(staging / STORE_FILE)
                vectors = previous.vectors  # read into memory at open: changing it is private
            else:
                vectors = VectorIndex.empty(dimension)
            store = Store(staging / STORE_FILE)
            _reached("staged")
            writer = IndexWriter(store, vectors)
            yield writer
            if previous and not store.changed:
                logger.info("nothing changed: %s stays at %s", index_dir, previous.manifest.folder)
                store.close()
                shutil.rmtree(staging)
                return
            store.commit()
            store.close()
            _reached("store-written")
            vectors = writer.vectors.adapted(vector_settings or VectorSettings())
            vectors.write(staging / VECTORS_FILE)
            _reached("vectors-written")
            if artifact is not None:
                artifact.copy_to(staging)
            _fsync_folder(staging)
            _reached("synced")
            manifest = Manifest(
                model=self.model,
                dimension=dimension,
                chunking=asdict(chunking),
                generation=generation,
                created=previous.manifest.created if previous else _now(),
                updated=_now(),
                backend=self.backend,
                quantization=artifact.quantization if artifact else None,
                model_sha256=sha256,
            )
            os.replace(staging, final)
            _reached("renamed")
            _write_atomically(index_dir / MANIFEST, json.dumps(asdict(manifest), indent=2) + "\n")
            committed = True
            _reached("committed")
        except BaseException:
            if store is not None:
                store.close()
            shutil.rmtree(staging, ignore_errors=True)
            if not committed:
                shutil.rmtree(final, ignore_errors=True)
            raise
        _remove_generations(index_dir, keep={generation, generation - 1})
        _reached("cleaned")


@contextlib.contextmanager
def lock_for_writing(
    index_dir: Path, model: str, *, rebuild: bool = False, backend: str = "torch"
) -> Iterator[WriteLock]:
    """Take the writer lock of ``index_dir``, open and check the current generation to build
    on (none with ``rebuild``), and clean up after any earlier crash.

    Raises CitebotError at once if another writer holds the lock, and IndexDamagedError
    (unless rebuilding) if the current generation is damaged.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock_file = open(index_dir / LOCK_FILE, "w")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise CitebotError(f"cannot write the index folder {index_dir}: {exc.strerror}") from None
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CitebotError(f"another ingest is writing {index_dir}; try again later") from None
        _reached("locked")
        current = _current_generation(index_dir, strict=not rebuild)
        # Checked before healing, so a writer refused for damage changes nothing.
        previous = open_index(index_dir, model, backend) if current and not rebuild else None
        try:
            _heal(index_dir, current)
            _reached("healed")
            yield WriteLock(index_dir, model, current, previous, backend)
        finally:
            if previous:
                previous.close()


def _current_generation(index_dir: Path, *, strict: bool) -> int | None:
    """The generation the manifest names, 0 if there is no manifest, None if it is unreadable
    (then an error unless ``strict`` is off, as when rebuilding)."""
    try:
        return read_manifest(index_dir).generation
    except IndexNotFoundError:
        return 0
    except CitebotError:
        if strict:
            raise
        return None


def _heal(index_dir: Path, current: int | None) -> None:
    """Remove what an interrupted writer left: staging folders, a half-written manifest, and
    generation folders no manifest named. The current generation and the one before it stay
    (a reader may still be opening it); with an unreadable manifest, every generation stays."""
    leftovers = list(index_dir.glob(f"{STAGING_PREFIX}*"))
    if current is not None:
        leftovers += [p for n, p in _generation_folders(index_dir).items() if n > current]
    for path in leftovers:
        logger.warning("removing %s, left by an interrupted ingest", path)
        shutil.rmtree(path, ignore_errors=True)
    (index_dir / MANIFEST).with_suffix(".tmp").unlink(missing_ok=True)
    if current is not None:
        _remove_generations(index_dir, keep={current, current - 1})


def _generation_folders(index_dir: Path) -> dict[int, Path]:
    found = {}
    for path in index_dir.glob(f"{GENERATION_PREFIX}*"):
        number = path.name[len(GENERATION_PREFIX) :]
        if number.isdigit():
            found[int(number)] = path
    return found


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
    _reached("manifest-staged")
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_generations(index_dir: Path, keep: set[int]) -> None:
    for number, folder in _generation_folders(index_dir).items():
        if number not in keep:
            logger.debug("removing generation folder %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
