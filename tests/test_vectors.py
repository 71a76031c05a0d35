"""The vector index: exact while small, approximate (IVF, 8-bit vectors) past a size set in
the settings; adds and removes by id either way; ids enumerated for the check on open."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.config import Settings, VectorSettings
from retrieval.errors import IndexDamagedError
from retrieval.index import (
    APPROXIMATE,
    EXACT,
    VECTORS_FILE,
    VectorIndex,
    lists_for,
    open_index,
    probes_for,
    read_manifest,
)
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS

DIMENSION = 32


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def approximate_index(count: int = 2000, first_id: int = 1, nprobe: int = 4) -> VectorIndex:
    ids = np.arange(first_id, first_id + count, dtype=np.int64)
    return VectorIndex.approximate(ids, unit_vectors(count), lists=lists_for(count), nprobe=nprobe)


def sorted_ids(index: VectorIndex) -> list[int]:
    return sorted(index.ids().tolist())


# -- the kind follows the size ------------------------------------------------------------


def test_the_index_is_exact_below_the_threshold_and_approximate_from_it() -> None:
    vectors = unit_vectors(500)
    ids = np.arange(10, 510, dtype=np.int64)
    small = VectorIndex.exact(ids, vectors)

    assert small.adapted(VectorSettings(approximate_from=501)) is small
    switched = small.adapted(VectorSettings(approximate_from=500, vectors_per_question=60))

    assert (small.kind, switched.kind) == (EXACT, APPROXIMATE)
    assert switched.lists == lists_for(500) > 1
    assert switched.nprobe == probes_for(switched.lists, 500, 60) == 2
    assert sorted_ids(switched) == ids.tolist()
    # 8 bits a dimension: every decoded vector is within a quantisation step of the original.
    decoded_ids, decoded = switched.vectors()
    assert np.abs(decoded[np.argsort(decoded_ids)] - vectors).max() < 0.01


def test_the_approximate_index_finds_what_the_exact_one_finds() -> None:
    vectors = unit_vectors(3000)
    ids = np.arange(1, 3001, dtype=np.int64)
    exact = VectorIndex.exact(ids, vectors)
    lists = lists_for(3000)
    # Searching every list leaves only the 8-bit rounding between the two.
    approximate = VectorIndex.approximate(ids, vectors, lists=lists, nprobe=lists)
    for query in unit_vectors(20, seed=1):
        wanted = [i for i, _ in exact.search(query, 10)]
        found = [i for i, _ in approximate.search(query, 10)]
        assert len(set(wanted) & set(found)) >= 9
        assert found[0] == wanted[0]


def test_lists_grow_with_the_square_root_of_the_size_and_hold_enough_vectors() -> None:
    assert lists_for(1) == lists_for(50) == 1
    assert lists_for(1_000_000) == 8000
    assert lists_for(250_000) == 4000
    assert lists_for(50_000) == 50_000 // 39  # bounded by the vectors a list needs
    for count in (10, 100, 1000, 5000, 50_000):
        assert count >= 39 * lists_for(count) or lists_for(count) == 1


def test_it_is_trained_again_when_the_collection_grew_enough() -> None:
    index = approximate_index(1000)
    settings = VectorSettings(approximate_from=100, vectors_per_question=200)
    trained_lists = index.lists

    index.add(list(range(5000, 5500)), unit_vectors(500, seed=2))
    assert index.adapted(settings) is index  # 1.5×: the lists still fit

    index.add(list(range(6000, 9000)), unit_vectors(3000, seed=3))
    retrained = index.adapted(settings)  # 4.5×: it wants twice the lists
    assert retrained is not index
    assert retrained.lists == lists_for(4500) >= 2 * trained_lists
    assert sorted_ids(retrained) == sorted_ids(index)


def test_it_goes_back_to_exact_when_the_collection_shrinks_below_the_threshold() -> None:
    index = approximate_index(1000)
    index.remove(list(range(1, 901)))
    exact = index.adapted(VectorSettings(approximate_from=500))
    assert exact.kind == EXACT
    assert sorted_ids(exact) == list(range(901, 1001))


def test_lists_searched_follow_the_vectors_per_question_at_the_next_write() -> None:
    index = approximate_index(1000, nprobe=2)  # 25 lists of 40 vectors
    assert index.lists == 25
    settings = VectorSettings(approximate_from=100, vectors_per_question=200)
    assert index.adapted(settings).nprobe == 5
    settings = VectorSettings(approximate_from=100, vectors_per_question=10**9)
    assert index.adapted(settings).nprobe == index.lists
    assert probes_for(2000, 1_000_000, 64_000) == 128
    assert probes_for(10, 1000, 1) == 1


# -- adds, removes and ids after the switch -------------------------------------------------


def test_ids_enumerates_every_list_of_the_approximate_index() -> None:
    index = approximate_index(2000, first_id=7)
    assert index.lists > 8
    ids = index.ids()
    assert ids.dtype == np.int64
    assert sorted(ids.tolist()) == list(range(7, 2007))
    assert len(index) == 2000


def test_adds_and_removes_by_id_in_the_approximate_index() -> None:
    index = approximate_index(2000)
    vectors = unit_vectors(2000)
    index.remove([5, 6, 7])
    index.add([50_000], vectors[5:6])

    ids = set(index.ids().tolist())
    assert ids == (set(range(1, 2001)) - {5, 6, 7}) | {50_000}
    assert len(index) == 1998
    # The vector added under a new id is found by itself; removed ids are never returned.
    best = index.search(vectors[5], 5)
    assert best[0][0] == 50_000 and best[0][1] == pytest.approx(1.0, abs=0.01)
    assert not {i for i, _ in index.search(vectors[6], 50)} & {5, 6, 7}


def test_an_id_removed_and_added_again_is_held_once() -> None:
    """Removals wait for the next other use: they must not undo a later add of the same id."""
    for index in (approximate_index(500), VectorIndex.exact(np.arange(1, 501), unit_vectors(500))):
        index.remove([3])
        index.add([3], unit_vectors(1, seed=9))
        assert sorted_ids(index) == list(range(1, 501))
        assert index.search(unit_vectors(1, seed=9)[0], 1)[0][0] == 3


def test_the_approximate_index_survives_a_write_and_a_read(tmp_path: Path) -> None:
    index = approximate_index(2000, nprobe=3)
    index.remove([10])
    path = tmp_path / VECTORS_FILE
    index.write(path)
    again = VectorIndex.read(path)

    assert (again.kind, again.lists, again.nprobe) == (APPROXIMATE, index.lists, 3)
    assert sorted_ids(again) == sorted_ids(index)
    query = unit_vectors(1, seed=4)[0]
    assert again.search(query, 10) == index.search(query, 10)
    assert path.read_bytes()[:4] == b"IwSq"  # FAISS's own header names the kind


# -- through ingest, search and the check on open ----------------------------------------


def approximate_settings(index_dir: Path) -> Settings:
    return Settings(
        index_dir=index_dir, vectors=VectorSettings(approximate_from=10, vectors_per_question=5)
    )


def chunk_ids(settings: Settings) -> set[int]:
    index = open_index(settings.index_dir, FakeEmbedder.name)
    try:
        return {row.id for row in index.store.chunks(index.vectors.ids().tolist()).values()}
    finally:
        index.close()


def test_ingest_switches_to_the_approximate_index_past_the_threshold(tmp_path: Path) -> None:
    exact = Settings(index_dir=tmp_path / "exact")
    approximate = approximate_settings(tmp_path / "approximate")
    ingest([CORPUS], exact, FakeEmbedder())
    ingest([CORPUS], approximate, FakeEmbedder())

    kinds = {}
    for settings in (exact, approximate):
        index = open_index(settings.index_dir, FakeEmbedder.name)
        kinds[settings.index_dir.name] = index.vectors.kind
        assert sorted(index.vectors.ids().tolist()) == sorted(chunk_ids(settings))
        index.close()
    assert kinds == {"exact": EXACT, "approximate": APPROXIMATE}

    question = "How many ferry crossings a day this winter?"
    for settings in (exact, approximate):
        searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
        assert searcher.search(question).passages[0].article.id == "ferry"
        assert searcher.stats().vector_index.startswith(kinds[settings.index_dir.name])
        searcher.close()


def test_updates_and_prunes_after_the_switch_keep_faiss_and_sqlite_in_step(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "articles"
    shutil.copytree(CORPUS, corpus)
    settings = approximate_settings(tmp_path / "index")
    ingest([corpus], settings, FakeEmbedder())
    before = chunk_ids(settings)

    ferry = corpus / "ferry.txt"
    ferry.write_text(ferry.read_text().replace("eight return", "seven return"), encoding="utf-8")
    (corpus / "clubs.json").unlink()
    report = ingest([corpus], settings, FakeEmbedder(), prune=True)
    assert (report.updated, report.removed) == (1, 2)

    index = open_index(settings.index_dir, FakeEmbedder.name)  # the check on open passes
    try:
        ids = index.vectors.ids().tolist()
        stored = {r.id for r in index.store.chunks(ids).values()}
        assert index.vectors.kind == APPROXIMATE
        assert len(ids) == len(set(ids)) == len(stored) == index.store.counts()[1]
        assert stored != before
    finally:
        index.close()
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    top = searcher.search("seven return crossings").passages[0]
    assert top.article.id == "ferry" and "seven return" in top.text
    searcher.close()


def test_lowering_the_threshold_switches_an_unchanged_index_at_the_next_change(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "articles"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(index_dir=tmp_path / "index")
    ingest([corpus], settings, FakeEmbedder())
    (corpus / "clubs.json").unlink()
    ingest([corpus], approximate_settings(settings.index_dir), FakeEmbedder(), prune=True)
    index = open_index(settings.index_dir, FakeEmbedder.name)
    assert index.vectors.kind == APPROXIMATE
    index.close()
    # And back: with the default threshold the next change writes an exact index again.
    ingest([CORPUS], settings, FakeEmbedder())
    index = open_index(settings.index_dir, FakeEmbedder.name)
    assert index.vectors.kind == EXACT
    assert sorted(index.vectors.ids().tolist()) == sorted(chunk_ids(settings))
    index.close()


def damage_vectors(settings: Settings, change: Callable[[Any, int], None]) -> None:
    """Apply ``change(faiss_index, some_stored_id)`` to the current generation's vectors."""
    import faiss

    path = settings.index_dir / read_manifest(settings.index_dir).folder / VECTORS_FILE
    some_id = int(VectorIndex.read(path).ids()[0])
    index = faiss.read_index(str(path))
    change(index, some_id)
    faiss.write_index(index, str(path))


def _add_zero_vector(index: Any, chunk_id: int) -> None:
    index.add_with_ids(np.zeros((1, index.d), dtype=np.float32), np.array([chunk_id]))


DAMAGE = {
    "lost one": lambda index, chunk_id: index.remove_ids(np.array([chunk_id])),
    "duplicate id": _add_zero_vector,
    "stranger id": lambda index, _: _add_zero_vector(index, 10**9),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_the_check_on_open_walks_the_approximate_index(tmp_path: Path, damage: str) -> None:
    settings = approximate_settings(tmp_path / "index")
    ingest([CORPUS], settings, FakeEmbedder())
    damage_vectors(settings, DAMAGE[damage])
    with pytest.raises(IndexDamagedError, match="rebuild"):
        open_index(settings.index_dir, FakeEmbedder.name)


def test_a_faiss_file_of_another_kind_is_refused_in_one_line(tmp_path: Path) -> None:
    import faiss

    settings = approximate_settings(tmp_path / "index")
    ingest([CORPUS], settings, FakeEmbedder())
    path = settings.index_dir / read_manifest(settings.index_dir).folder / VECTORS_FILE
    faiss.write_index(faiss.IndexFlatIP(FakeEmbedder().dimension), str(path))
    with pytest.raises(IndexDamagedError, match="holds no chunk ids"):
        open_index(settings.index_dir, FakeEmbedder.name)


def test_the_vectors_section_is_read_from_the_config(tmp_path: Path) -> None:
    from retrieval.config import load_settings

    config = tmp_path / "citebot.toml"
    config.write_text(
        "[vectors]\napproximate_from = 5000\nvectors_per_question = 12\n", encoding="utf-8"
    )
    loaded = load_settings(config)
    assert loaded.vectors == VectorSettings(approximate_from=5000, vectors_per_question=12)


def test_a_search_leaves_the_thread_count_of_every_thread_as_it_was() -> None:
    """Search runs FAISS on one thread (a single question gains nothing from more) and puts
    the calling thread's OpenMP thread count back; other threads never see a change."""
    import threading

    import faiss

    index = VectorIndex.exact(np.arange(1, 501), unit_vectors(500))
    before = faiss.omp_get_max_threads()
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(faiss.omp_get_max_threads())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for query in unit_vectors(200, seed=5):
            index.search(query, 10)
    finally:
        stop.set()
        watcher.join()
    assert faiss.omp_get_max_threads() == before
    assert seen and set(seen) == {before}


def test_the_lists_searched_can_be_set_within_the_lists_there_are() -> None:
    index = approximate_index(1000, nprobe=2)
    index.nprobe = 10**6
    assert index.nprobe == index.lists
    index.nprobe = 0
    assert index.nprobe == 1
    with pytest.raises(ValueError):
        VectorIndex.empty(8).nprobe = 3
