"""The vector half of an index: chunk vectors by chunk id, in FAISS.

Exact below ``[vectors] approximate_from`` vectors, approximate (an inverted file of 8-bit
vectors) from there on; see ``VectorIndex``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import VectorSettings

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

# Vector index kinds, as `citebot stats` names them.
EXACT = "exact"
APPROXIMATE = "approximate"
# The approximate index has about LISTS_PER_ROOT × √n inverted lists, so a list holds about
# √n / 8 vectors, and at least MIN_PER_LIST vectors a list (what FAISS's k-means wants).
# Finer lists find as much for fewer vectors compared: at a million chunks hit@1 0.918 with
# 64,000 compared in 8,000 lists against 0.904 in 2,000 lists, and 0.920 needed 256,000
# (19 ms against 6 ms a question; docs/benchmarks.md). Training them takes longer (140 s
# against about 40 s at a million, at ingest or a compaction that retrains only).
LISTS_PER_ROOT = 8
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
    return max(1, min(round(LISTS_PER_ROOT * math.sqrt(count)), count // MIN_PER_LIST))


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
        # Mean cosine of the vectors it was trained on to their nearest centroid (an
        # approximate index trained here; None otherwise), for compaction's drift rule.
        self.trained_fit: float | None = None
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
        sample = vectors[np.sort(chosen)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, ids)
        ivf.nprobe = min(nprobe, lists)
        index = cls(ivf)
        index.trained_fit = index.centroid_fit(sample)
        return index

    def centroid_fit(self, vectors: np.ndarray) -> float | None:
        """Mean cosine of ``vectors`` to their nearest centroid (None for the exact index):
        how well the trained lists still describe them."""
        if self._ivf is None or not len(vectors):
            return None
        scores, _ = self._ivf.quantizer.search(np.ascontiguousarray(vectors, np.float32), 1)
        return float(scores.mean())

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

    @nprobe.setter
    def nprobe(self, lists: int) -> None:
        if self._ivf is None:
            raise ValueError("the exact index searches every vector")
        self._ivf.nprobe = max(1, min(lists, self.lists))

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
            mapped: np.ndarray = faiss.vector_to_array(self._index.id_map)
            return mapped.astype(np.int64, copy=False)
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
        self,
        vector: np.ndarray,
        limit: int,
        among: Sequence[int] | None = None,
        excluded: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """The ``limit`` nearest vectors (id, cosine), best first; only ids ``among`` if
        given, never ids ``excluded`` (the masked ids of a main file, see segments)."""
        if excluded is not None and len(excluded):
            if among is None:
                return self._search(vector, limit, None, excluded)
            among = np.setdiff1d(np.asarray(among, dtype=np.int64), excluded).tolist()
        return self._search(vector, limit, among, None)

    def _search(
        self,
        vector: np.ndarray,
        limit: int,
        among: Sequence[int] | None,
        excluded: np.ndarray | None,
    ) -> list[tuple[int, float]]:
        if len(self) == 0 or (among is not None and not among):
            return []
        import faiss

        params = None
        # (``batch`` stays referenced until the search ends: ``skip`` holds a raw pointer.)
        batch = skip = None
        if excluded is not None:
            # Skipped as FAISS meets them: the results are those of an index without them.
            batch = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
            skip = faiss.IDSelectorNot(batch)
            if self._ivf is None:
                params = faiss.SearchParameters(sel=skip)
            else:
                params = faiss.SearchParametersIVF(sel=skip, nprobe=self.nprobe)
        elif among is not None:
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
        """The index of the kind its size calls for: this one, or a new one built from it
        (see ``shape_fits``)."""
        count = len(self)
        if shape_fits(self.kind, self.lists, count, settings):
            if self._ivf is not None:
                self._ivf.nprobe = probes_for(self.lists, count, settings.vectors_per_question)
            return self
        if count < settings.approximate_from:
            return VectorIndex.exact(*self.vectors())
        lists = lists_for(count)
        logger.info("training an approximate vector index of %d lists on %d vectors", lists, count)
        nprobe = probes_for(lists, count, settings.vectors_per_question)
        return VectorIndex.approximate(*self.vectors(), lists=lists, nprobe=nprobe)


def shape_fits(kind: str, lists: int, count: int, settings: VectorSettings) -> bool:
    """Whether a vector index of ``kind`` with ``lists`` lists suits ``count`` vectors.

    Exact below ``settings.approximate_from`` vectors, approximate from there on. An
    approximate index is trained again once the collection wants RETRAIN_FACTOR times more
    or fewer lists than it was trained for.
    """
    if count < settings.approximate_from:
        return kind == EXACT
    wanted = lists_for(count)
    return kind == APPROXIMATE and max(wanted, lists) < RETRAIN_FACTOR * min(wanted, lists)
