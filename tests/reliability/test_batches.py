"""A long ingest commits in batches ([ingest] commit_every_articles): a kill or a failure
after a batch keeps what that batch committed (searchable, FAISS = SQLite = FTS), removes
nothing, and the next run completes it without duplicating anything; a reader following
the index sees a batch before the run ends. A first ingest's first batch creates the
index; a rebuild's batches stay out of sight until it ends, and the next rebuild resumes
them."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import ChunkSettings, IngestSettings, Settings
from retrieval.errors import PruneRefusedError
from retrieval.index import BATCH_STEPS, read_manifest
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FailingSource, FakeEmbedder, NotesSource
from tests.reliability.crash import CrashLab, articles_of, check_consistent, leftovers

BATCH = 5


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> CrashLab:
    return CrashLab(tmp_path_factory.mktemp("crash-lab-batches"), articles=40)


def chunk_count(index_dir: Path) -> int:
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    finally:
        db.close()


def written_from(index_dir: Path, corpus: Path) -> set[str]:
    """The articles the index holds as read from ``corpus`` (added or updated from it)."""
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        rows = db.execute("SELECT id FROM articles WHERE root = ?", (str(corpus),)).fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


def test_a_kill_after_the_first_batch_keeps_it(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    outcome = lab.crash(index_dir, "a", "b", kill_at="batch-committed", commit_every=BATCH)
    assert outcome.killed
    # Consistent (crash() checked FAISS ids = chunk rows = FTS rows), the first batch
    # committed, nothing removed (a0 and a1 are gone from "b": pruned only at the end).
    assert outcome.state == "partial"
    held = articles_of(index_dir) or {}
    batch = written_from(index_dir, lab.corpora["b"])
    assert len(batch) == BATCH
    assert {"a0", "a1"} <= set(held)

    # Searchable: a new reader finds a batch article by its title.
    some = sorted(batch)[0]
    searcher = Searcher.open(Settings(index_dir=index_dir), FakeEmbedder())
    try:
        title = searcher.article(some).title
        found = searcher.search(title, k=5).passages
        assert some in {p.article.id for p in found}
    finally:
        searcher.close()

    # The next run completes it: exactly version "b", as many chunks as a fresh index of it.
    lab.recover(index_dir, "b")
    assert chunk_count(index_dir) == chunk_count(lab.folder / "reference-b")


def test_a_kill_before_a_batch_commits_keeps_the_old_index(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    outcome = lab.crash(index_dir, "a", "b", kill_at="batch-written", commit_every=BATCH)
    assert outcome.killed and outcome.state == "before"
    lab.recover(index_dir, "b")


def test_every_batch_step_is_named() -> None:
    assert BATCH_STEPS == ("batch-written", "batch-committed")


def batched(index_dir: Path, every: int = BATCH) -> Settings:
    return replace(
        Settings(index_dir=index_dir), ingest=IngestSettings(commit_every_articles=every)
    )


def test_a_failure_keeps_the_batches_committed_before_it(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    settings = batched(index_dir)
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(2 * BATCH + 2)], settings, FakeEmbedder())
    check_consistent(index_dir)
    held = articles_of(index_dir) or {}
    # Two whole batches; the two articles after them were never committed.
    assert {i for i in held if i.startswith("note-")} == {f"note-{n}" for n in range(2 * BATCH)}
    assert set(lab.expected["a"]) <= set(held)


def test_without_batches_a_failure_keeps_nothing(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(2 * BATCH + 2)], batched(index_dir, every=0), FakeEmbedder())
    assert articles_of(index_dir) == lab.expected["a"]


def test_a_refused_prune_removes_nothing_and_keeps_the_batches(
    lab: CrashLab, tmp_path: Path
) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    # A corpus of 12 articles only: pruning would remove every article of "a" (refused).
    corpus = tmp_path / "few"
    corpus.mkdir()
    for number in range(12):
        (corpus / f"n{number}.txt").write_text(f"Note {number}\n\nThe ferry {number} is late.\n")
    with pytest.raises(PruneRefusedError, match="nothing was removed"):
        ingest([corpus], batched(index_dir), FakeEmbedder(), prune=True)
    check_consistent(index_dir)
    held = articles_of(index_dir) or {}
    assert set(lab.expected["a"]) <= set(held)
    assert len(set(held) - set(lab.expected["a"])) == 10  # two batches of five
    # A forced prune then completes it, without duplicates.
    report = ingest([corpus], batched(index_dir), FakeEmbedder(), prune=True, force=True)
    assert (report.added, report.unchanged) == (2, 10)
    assert set(articles_of(index_dir) or {}) == {f"n{n}" for n in range(12)}
    check_consistent(index_dir)


def test_a_following_reader_sees_a_batch_before_the_run_ends(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    settings = batched(index_dir)
    reader = Searcher.open(settings, FakeEmbedder())
    release = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            ingest([FailingSource(BATCH, release)], settings, FakeEmbedder())
        except BaseException as exc:
            failure.append(exc)

    writer = threading.Thread(target=run)
    writer.start()
    try:
        # The source now waits: only a batch commit can make the new articles visible.
        for _ in range(600):
            if not reader.is_current():
                break
            threading.Event().wait(0.1)
        assert not reader.is_current(), "no batch was committed while the run went on"
        assert writer.is_alive()
        newer = reader.reopened()
        try:
            ids = {a.article.id for a in newer.articles()}
            assert {f"note-{n}" for n in range(BATCH)} <= ids
            hits = newer.search("Ferry note 3", k=5).passages
            assert "note-3" in {p.article.id for p in hits}
        finally:
            newer.close()
    finally:
        release.set()
        writer.join(60)
        reader.close()
    assert failure and isinstance(failure[0], RuntimeError)
    check_consistent(index_dir)


def test_a_run_in_batches_reports_and_holds_what_one_commit_would(
    lab: CrashLab, tmp_path: Path
) -> None:
    reports = []
    for every in (0, BATCH):
        index_dir = lab.index_of("a", tmp_path / f"every-{every}")
        settings = batched(index_dir, every)
        reports.append(ingest([lab.corpora["b"]], settings, FakeEmbedder(), prune=True))
        assert articles_of(index_dir) == lab.expected["b"]
        check_consistent(index_dir)
    whole, in_batches = reports
    assert (whole.batches, in_batches.batches) == (0, (whole.added + whole.updated) // BATCH)
    for name in ("added", "updated", "unchanged", "removed", "chunks_embedded", "copies"):
        assert getattr(in_batches, name) == getattr(whole, name), name
    assert in_batches.changes == whole.changes


def test_a_first_ingest_that_fails_before_its_first_batch_leaves_no_index(
    tmp_path: Path,
) -> None:
    index_dir = tmp_path / "new"
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(BATCH - 1)], batched(index_dir), FakeEmbedder())
    assert articles_of(index_dir) is None
    assert leftovers(index_dir) == []


def test_a_first_ingest_that_fails_keeps_its_batches(tmp_path: Path) -> None:
    index_dir = tmp_path / "new"
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(2 * BATCH + 2)], batched(index_dir), FakeEmbedder())
    check_consistent(index_dir)
    # The first batch created the index, the second was committed in place.
    assert set(articles_of(index_dir) or {}) == {f"note-{n}" for n in range(2 * BATCH)}
    assert leftovers(index_dir) == []
    report = ingest([NotesSource(2 * BATCH + 2)], batched(index_dir), FakeEmbedder())
    assert (report.added, report.unchanged) == (2, 2 * BATCH)


def test_a_first_ingest_killed_after_two_batches_keeps_them(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    # The first batch publishes the index ("first-batch-*"); the second is a batch in place.
    outcome = lab.crash(index_dir, None, "b", kill_at="batch-committed", commit_every=BATCH)
    assert outcome.killed and outcome.state == "partial"
    held = articles_of(index_dir) or {}
    assert len(held) == 2 * BATCH
    some = sorted(held)[0]
    searcher = Searcher.open(Settings(index_dir=index_dir), FakeEmbedder())
    try:
        title = searcher.article(some).title
        assert some in {p.article.id for p in searcher.search(title, k=5).passages}
    finally:
        searcher.close()

    # The next run embeds only what was not committed, and ends as a fresh index of "b".
    committed = chunk_count(index_dir)
    report = ingest([lab.corpora["b"]], batched(index_dir), FakeEmbedder(), prune=True)
    assert report.unchanged == 2 * BATCH
    assert report.added == len(lab.expected["b"]) - 2 * BATCH
    assert report.chunks_embedded == chunk_count(lab.folder / "reference-b") - committed
    assert articles_of(index_dir) == lab.expected["b"]
    check_consistent(index_dir)
    assert leftovers(index_dir) == []


def staged_chunks(index_dir: Path) -> int:
    (folder,) = index_dir.glob(".staging-*")
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    finally:
        db.close()


def test_a_killed_rebuild_keeps_the_old_index_and_the_next_rebuild_resumes_it(
    lab: CrashLab, tmp_path: Path
) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    outcome = lab.crash(
        index_dir, "a", "b", kill_at="staging-batch-committed", rebuild=True, commit_every=BATCH
    )
    assert outcome.killed and outcome.state == "before"  # readers still see the old index
    staged = staged_chunks(index_dir)
    assert staged > 0
    # An ordinary write meanwhile changes the old index and keeps the staged rebuild.
    ingest([lab.corpora["b"]], batched(index_dir, every=0), FakeEmbedder())
    assert staged_chunks(index_dir) == staged

    report = ingest(
        [lab.corpora["b"]], batched(index_dir), FakeEmbedder(), rebuild=True, prune=True
    )
    assert report.unchanged == BATCH
    assert report.chunks_embedded == chunk_count(lab.folder / "reference-b") - staged
    assert articles_of(index_dir) == lab.expected["b"]
    check_consistent(index_dir)
    assert leftovers(index_dir) == []


def test_a_rebuild_that_fails_after_two_batches_is_resumed(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(2 * BATCH + 2)], batched(index_dir), FakeEmbedder(), rebuild=True)
    assert articles_of(index_dir) == lab.expected["a"]
    check_consistent(index_dir)
    report = ingest([NotesSource(3 * BATCH)], batched(index_dir), FakeEmbedder(), rebuild=True)
    assert (report.unchanged, report.added) == (2 * BATCH, BATCH)
    assert report.resumed == 2 * BATCH  # said to the user: the rebuild was resumed
    assert set(articles_of(index_dir) or {}) == {f"note-{n}" for n in range(3 * BATCH)}
    assert report.chunks_embedded == BATCH  # one chunk a note
    check_consistent(index_dir)
    assert leftovers(index_dir) == []


def test_a_resumed_rebuild_holds_only_what_it_read(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    lab.crash(
        index_dir, "a", "b", kill_at="staging-batch-committed", rebuild=True, commit_every=BATCH
    )
    # Rebuilt from "a" instead: what was staged from "b" is kept only where it is the same.
    ingest([lab.corpora["a"]], batched(index_dir), FakeEmbedder(), rebuild=True, prune=True)
    assert articles_of(index_dir) == lab.expected["a"]
    assert chunk_count(index_dir) == chunk_count(lab.folder / "reference-a")
    check_consistent(index_dir)


def test_a_rebuild_made_another_way_or_damaged_starts_over(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(2 * BATCH + 2)], batched(index_dir), FakeEmbedder(), rebuild=True)
    other = replace(batched(index_dir), chunking=ChunkSettings(max_tokens=128))
    report = ingest([NotesSource(3 * BATCH)], other, FakeEmbedder(), rebuild=True)
    assert (report.unchanged, report.chunks_embedded, report.resumed) == (0, 3 * BATCH, 0)
    check_consistent(index_dir)
    assert leftovers(index_dir) == []

    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([FailingSource(2 * BATCH + 2)], batched(index_dir), FakeEmbedder(), rebuild=True)
    (folder,) = index_dir.glob(".staging-*")
    db = sqlite3.connect(folder / "store.sqlite")
    db.execute("DELETE FROM chunks_fts WHERE rowid = (SELECT min(id) FROM chunks)")
    db.commit()
    db.close()
    report = ingest([NotesSource(3 * BATCH)], batched(index_dir), FakeEmbedder(), rebuild=True)
    assert (report.unchanged, report.chunks_embedded, report.resumed) == (0, 3 * BATCH, 0)
    check_consistent(index_dir)
    assert leftovers(index_dir) == []


def test_a_rebuild_gives_back_the_pages_of_its_staged_vectors(
    lab: CrashLab, tmp_path: Path
) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    ingest([lab.corpora["b"]], batched(index_dir), FakeEmbedder(), rebuild=True)
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        assert db.execute("SELECT count(*) FROM segment_vectors").fetchone()[0] == 0
        assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    finally:
        db.close()
