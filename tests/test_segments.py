"""Writes in place: a segment beside the main vector file, masks, compaction, and the
upgrade of an index written before them (a committed fixture of that format)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

import retrieval.index.inplace
import retrieval.index.segments
from retrieval.config import Settings, VectorSettings
from retrieval.errors import CitebotError
from retrieval.index import (
    VECTORS_FILE,
    committed_version,
    compact,
    lock_for_writing,
    open_index,
    read_manifest,
)
from retrieval.index.store import BODY_WEIGHT, TITLE_WEIGHT, Store
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, CORPUS_IDS, DATA
from tests.reliability.crash import WORDS, check_consistent

FIXTURE = DATA / "index-v1"  # written by the release before segments (schema version 1)


def write_articles(folder: Path, numbers: range, version: str = "a") -> None:
    """One JSON file per article, so that articles can be changed one at a time."""
    folder.mkdir(exist_ok=True)
    for number in numbers:
        rng = np.random.default_rng([number, ord(version)])
        words = [str(WORDS[i]) for i in rng.integers(0, len(WORDS), 80)]
        text = " ".join(words[:40]).capitalize() + ".\n\n" + " ".join(words[40:]) + "."
        record = {"id": f"n{number}", "title": f"Note {number} {words[0]}", "text": text}
        (folder / f"n{number:03d}.json").write_text(json.dumps(record))


def indexed_notes(tmp_path: Path, count: int) -> tuple[Path, Settings]:
    """A folder of ``count`` articles, ingested into a new index: (the folder, its settings)."""
    corpus = tmp_path / "articles"
    write_articles(corpus, range(count))
    settings = Settings(index_dir=tmp_path / "index")
    ingest([corpus], settings, FakeEmbedder())
    return corpus, settings


def segment_sizes(index_dir: Path) -> tuple[int, int]:
    index = open_index(index_dir, FakeEmbedder.name)
    try:
        return len(index.vectors.segment), len(index.vectors.masked)
    finally:
        index.close()


def rankings(index_dir: Path, questions: list[str]) -> list[list[tuple[int, float]]]:
    """Each question's exact top 20 (chunk id, score) and the chunks' texts by id."""
    index = open_index(index_dir, FakeEmbedder.name)
    try:
        vectors = FakeEmbedder().embed(questions)
        return [index.vectors.search(v, 20) for v in vectors]
    finally:
        index.close()


def texts_by_chunk(index_dir: Path) -> dict[int, str]:
    db = sqlite3.connect(index_dir / read_manifest(index_dir).folder / "store.sqlite")
    try:
        return {r[0]: r[1] for r in db.execute("SELECT rowid, body FROM chunks_fts")}
    finally:
        db.close()


QUESTIONS = ["harbour ferry timetable", "museum garden festival", "budget vote mayor"]


def test_writes_go_to_the_segment_and_search_equals_a_fresh_build(tmp_path: Path) -> None:
    corpus, settings = indexed_notes(tmp_path, 30)
    main_file = settings.index_dir / "gen-000001" / VECTORS_FILE
    before = main_file.read_bytes()

    write_articles(corpus, range(30, 34))  # added
    write_articles(corpus, range(5, 8), version="b")  # replaced
    (corpus / "n010.json").unlink()  # removed
    report = ingest([corpus], settings, FakeEmbedder(), prune=True)
    assert (report.added, report.updated, report.removed) == (4, 3, 1)

    assert main_file.read_bytes() == before, "an ordinary write leaves the main file alone"
    segment, masked = segment_sizes(settings.index_dir)
    assert segment > 0 and masked > 0
    check_consistent(settings.index_dir)

    fresh = Settings(index_dir=tmp_path / "fresh")
    ingest([corpus], fresh, FakeEmbedder())
    assert segment_sizes(fresh.index_dir) == (0, 0)
    # Chunk ids differ between the two indexes: compare by text, ranks and scores.
    live, built = texts_by_chunk(settings.index_dir), texts_by_chunk(fresh.index_dir)
    for ours, theirs in zip(
        rankings(settings.index_dir, QUESTIONS), rankings(fresh.index_dir, QUESTIONS), strict=True
    ):
        assert [(live[i], s) for i, s in ours] == [(built[i], s) for i, s in theirs]


def test_compaction_folds_the_segment_and_changes_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, settings = indexed_notes(tmp_path, 30)
    write_articles(corpus, range(30, 36))
    write_articles(corpus, range(0, 4), version="b")
    ingest([corpus], settings, FakeEmbedder())
    assert segment_sizes(settings.index_dir) != (0, 0)
    before = rankings(settings.index_dir, QUESTIONS)
    version = committed_version(settings.index_dir)

    with lock_for_writing(settings.index_dir, FakeEmbedder.name, backend="fake") as lock:
        assert lock.manifest is not None
        done = compact(settings.index_dir, lock.manifest, settings.vectors, force=True)
    assert done is not None and done.folded > 0 and done.unmasked > 0

    assert segment_sizes(settings.index_dir) == (0, 0)
    assert rankings(settings.index_dir, QUESTIONS) == before
    assert committed_version(settings.index_dir) == version + 1, "readers follow a compaction"
    folder = settings.index_dir / "gen-000001"
    # The new main file and the one before it (for readers opening meanwhile).
    assert {p.name for p in folder.glob("vectors*.faiss")} == {
        VECTORS_FILE,
        f"vectors-{version - (1 << 32) + 1:06d}.faiss",
    }
    check_consistent(settings.index_dir)
    index = open_index(settings.index_dir, FakeEmbedder.name)
    assert index.state.last_compaction and "folded" in index.state.last_compaction
    index.close()


def test_a_write_compacts_once_the_segment_passes_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retrieval.index.segments, "COMPACT_MIN", 10)
    corpus, settings = indexed_notes(tmp_path, 40)
    write_articles(corpus, range(40, 42))  # 2 of 40: under 10 chunks and 10%
    ingest([corpus], settings, FakeEmbedder())
    assert segment_sizes(settings.index_dir)[0] > 0
    write_articles(corpus, range(42, 52))  # now past both
    ingest([corpus], settings, FakeEmbedder())
    assert segment_sizes(settings.index_dir) == (0, 0)
    check_consistent(settings.index_dir)


def test_an_ordinary_write_reads_neither_the_main_vector_file_nor_every_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, settings = indexed_notes(tmp_path, 10)
    import retrieval.index.store
    import retrieval.index.vectors

    def refuse(path: Path) -> None:
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(
        retrieval.index.vectors.VectorIndex, "read", classmethod(lambda c, p: refuse(p))
    )
    # The store's id scans either: the writer compares the sums its triggers keep.
    monkeypatch.setattr(retrieval.index.store.Store, "verify", lambda store: refuse(store.path))
    monkeypatch.setattr(
        retrieval.index.store.Store, "indexed_articles", lambda store: refuse(store.path)
    )
    write_articles(corpus, range(10, 11))
    assert ingest([corpus], settings, FakeEmbedder()).added == 1


def test_a_long_lived_reader_keeps_its_snapshot_and_follows_cheaply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, settings = indexed_notes(tmp_path, 10)
    reader = open_index(settings.index_dir, FakeEmbedder.name)
    write_articles(corpus, range(10, 12))
    (corpus / "n000.json").unlink()
    ingest([corpus], settings, FakeEmbedder(), prune=True)

    # The reader still sees the state it opened, in the store and in the vectors alike.
    assert {s.article.id for s in reader.store.summaries()} == {f"n{i}" for i in range(10)}
    assert len(reader.vectors) == reader.store.counts()[1]
    assert not reader.is_current()
    with monkeypatch.context() as patched:
        # Following reads neither the main file again nor every chunk id.
        patched.setattr(Store, "verify", lambda store: pytest.fail("scanned every chunk"))
        newer = open_index(settings.index_dir, FakeEmbedder.name, reuse=reader)
    assert newer.vectors.main is reader.vectors.main, "the main file is not read again"
    assert newer.is_current()
    assert {s.article.id for s in newer.store.summaries()} == {f"n{i}" for i in range(1, 12)}
    reader.close()
    newer.close()


def test_a_searcher_following_a_write_counts_no_rows_to_answer(tmp_path: Path) -> None:
    """The caveat weighs a word by the share of chunks holding it: the chunk count comes
    from the live vectors (checked equal to the chunks at open), not from counting a
    million rows again after every write the searcher follows."""
    corpus, settings = indexed_notes(tmp_path, 10)
    searcher = Searcher.open(settings, FakeEmbedder())
    write_articles(corpus, range(10, 12))
    ingest([corpus], settings, FakeEmbedder())
    newer = searcher.reopened()
    statements: list[str] = []
    newer.index.store.connection.set_trace_callback(statements.append)
    answer = newer.search("Which harbour ferry timetable changed?")
    newer.index.store.connection.set_trace_callback(None)
    assert answer.passages
    assert not [s for s in statements if "count(*)" in s.lower() and "fts" not in s.lower()]
    assert newer._chunk_count() == 12 == newer.index.counts()[1]  # one chunk a note
    searcher.close()
    newer.close()


def test_the_write_ahead_log_is_started_afresh_once_readers_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers pin a snapshot, so some snapshot always lags a stream of writes and SQLite
    never reuses its log: it grew 0.4 MB a write at a million chunks. Each time a write
    takes it past another multiple of LOG_RESTART_BYTES, the writer waits (a bounded time)
    for the readers to follow and truncates it; a reader that does not follow only costs
    that wait, and the write is committed either way."""
    monkeypatch.setattr(retrieval.index.inplace, "LOG_RESTART_BYTES", 100_000)
    monkeypatch.setattr(retrieval.index.inplace, "LOG_RESTART_WAIT", 0.2)
    corpus, settings = indexed_notes(tmp_path, 10)
    log = settings.index_dir / read_manifest(settings.index_dir).folder / "store.sqlite-wal"
    reader = open_index(settings.index_dir, FakeEmbedder.name)
    sizes = []
    for start in range(10, 70, 20):
        write_articles(corpus, range(start, start + 20))
        ingest([corpus], settings, FakeEmbedder())
        sizes.append(log.stat().st_size)
    assert sizes == sorted(sizes) and sizes[-1] > 2 * 100_000, "a lagging reader keeps it"
    assert {s.article.id for s in reader.store.summaries()} == {f"n{i}" for i in range(10)}
    reader.close()
    # A connection between two reads (as a reader that followed): the log stays a file.
    idle = sqlite3.connect(log.with_name("store.sqlite"))
    idle.execute("SELECT count(*) FROM articles").fetchone()
    write_articles(corpus, range(70, 90))
    ingest([corpus], settings, FakeEmbedder())
    assert log.stat().st_size == 0, "truncated once nobody reads it"
    idle.close()
    newer = open_index(settings.index_dir, FakeEmbedder.name)
    assert len(newer.store.summaries()) == 90
    newer.close()


def test_readers_that_follow_let_the_write_ahead_log_start_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader following every few milliseconds, as the bot and ``serve`` do every
    ``follow_seconds``: asked by the writer, it takes new snapshots, and the log is
    truncated while the reader keeps answering from the articles it sees."""
    monkeypatch.setattr(retrieval.index.inplace, "LOG_RESTART_BYTES", 100_000)
    monkeypatch.setattr(retrieval.index.inplace, "LOG_RESTART_WAIT", 5.0)
    corpus, settings = indexed_notes(tmp_path, 10)
    log = settings.index_dir / read_manifest(settings.index_dir).folder / "store.sqlite-wal"
    held = [open_index(settings.index_dir, FakeEmbedder.name)]
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.02):
            if not held[0].is_current():
                old, held[0] = held[0], held[0].reopened()
                old.close()

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        truncated = 0
        for start in range(10, 130, 20):
            write_articles(corpus, range(start, start + 20))
            ingest([corpus], settings, FakeEmbedder())
            truncated += log.stat().st_size == 0
    finally:
        stop.set()
        follower.join()
    assert truncated >= 2, "each time past a multiple, with a follower reading"
    assert len(held[0].store.summaries()) == 130
    held[0].close()


def test_todays_index_opens_and_is_upgraded_in_place_once(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(FIXTURE, index_dir)
    settings = Settings(index_dir=index_dir)
    folder = index_dir / "gen-000001"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}

    # Read as it is: a reader changes nothing.
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    assert {a.article.id for a in searcher.articles()} == CORPUS_IDS
    hits = searcher.search("How many ferry crossings are there?").passages
    assert hits and hits[0].article.id == "ferry"
    searcher.close()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert read_manifest(index_dir).schema_version == 1

    # The first write upgrades it, in place: same folder, same main vector file.
    report = ingest([CORPUS / "ferry.txt", CORPUS / "bakery.html"], settings, FakeEmbedder())
    assert report.unchanged == 2
    manifest = read_manifest(index_dir)
    assert (manifest.schema_version, manifest.generation) == (2, 1)
    assert (folder / VECTORS_FILE).read_bytes() == files[VECTORS_FILE]
    upgraded = (index_dir / "index.json").read_bytes()
    db = sqlite3.connect(folder / "store.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()

    # Once: the next writes leave the manifest as it is, and work in place.
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "note.txt").write_text("Harbour Note\n\nThe ferry runs twice.\n")
    assert ingest([tmp_path / "more"], settings, FakeEmbedder()).added == 1
    assert (index_dir / "index.json").read_bytes() == upgraded
    check_consistent(index_dir)
    searcher = Searcher.open(settings, FakeEmbedder())
    assert {a.article.id for a in searcher.articles()} == CORPUS_IDS | {"note"}
    searcher.close()


def test_thresholds_are_those_documented() -> None:
    needs = retrieval.index.segments.needs_compaction
    assert not needs(1_000_000, 40_000, 9_000)  # 49,000: under 10% and 50,000
    assert needs(1_000_000, 40_000, 10_001)  # past 50,000
    assert not needs(5_000, 600, 0)  # past 10% but under 1,000
    assert needs(5_000, 900, 100)
    assert VectorSettings().approximate_from == 50_000


def test_stats_show_the_segment_the_masks_and_the_last_compaction(tmp_path: Path) -> None:
    from tests.test_cli import run

    corpus, settings = indexed_notes(tmp_path, 20)
    write_articles(corpus, range(20, 22))
    write_articles(corpus, range(0, 1), version="b")
    ingest([corpus], settings, FakeEmbedder())

    data = json.loads(run("stats", "--index", settings.index_dir, "--json").stdout)
    assert data["segment_chunks"] == 3  # three articles of one chunk each
    assert data["masked_chunks"] == 1
    assert data["main_vectors"] == 20 and data["last_compaction"] is None
    text = run("stats", "--index", settings.index_dir).stdout
    assert "segment 3 chunks written since; 1 masked chunks" in text
    assert "compacted  never" in text

    with lock_for_writing(settings.index_dir, FakeEmbedder.name, backend="fake") as lock:
        assert lock.manifest is not None
        compact(settings.index_dir, lock.manifest, settings.vectors, force=True)
    data = json.loads(run("stats", "--index", settings.index_dir, "--json").stdout)
    assert (data["segment_chunks"], data["masked_chunks"], data["main_vectors"]) == (0, 0, 22)
    assert "3 new and 1 removed chunks folded into 22" in data["last_compaction"]


def test_a_reader_following_a_write_still_refuses_damage(tmp_path: Path) -> None:
    _, settings = indexed_notes(tmp_path, 10)
    reader = open_index(settings.index_dir, FakeEmbedder.name)
    db = sqlite3.connect(settings.index_dir / "gen-000001" / "store.sqlite")
    db.execute("DELETE FROM chunks_fts WHERE rowid = (SELECT max(rowid) FROM chunks_fts)")
    db.commit()
    db.close()
    with pytest.raises(CitebotError, match="keyword index holds 9 rows for 10 chunks"):
        open_index(settings.index_dir, FakeEmbedder.name, reuse=reader)
    reader.close()


def test_a_searcher_following_a_write_keeps_the_keyword_counts_it_did_not_touch(
    tmp_path: Path,
) -> None:
    """Following a write used to forget every term's counts, and counting a common term
    again costs ~17 ms at a million chunks. Now only the terms of the chunks added or
    removed are counted again, so scores stay FTS5's bm25(), also when SQLite gives a new
    chunk the id of one just removed (a new row gets the highest id plus one)."""
    corpus, settings = indexed_notes(tmp_path, 10)
    extra = corpus / "extra.json"

    def write_extra(text: str) -> None:
        extra.write_text(json.dumps({"id": "extra", "title": "Extra", "text": text}))
        ingest([corpus], settings, FakeEmbedder())

    write_extra("The harbour ferry timetable for the winter.")
    searcher = Searcher.open(settings, FakeEmbedder())
    store = searcher.index.store
    ids = [r[0] for r in store.connection.execute("SELECT id FROM chunks")]
    store._bm25.scores(list(WORDS), ids)  # every word counted
    store.term_counts(list(WORDS))
    write_extra("The museum garden festival in the summer.")  # replaced: its chunk id again
    newer = searcher.reopened()
    old_segment, new_segment = searcher.index.vectors.segment, newer.index.vectors.segment
    assert old_segment.ids().tolist() == new_segment.ids().tolist()  # the same id, used again
    assert not np.array_equal(old_segment.vectors()[1], new_segment.vectors()[1])

    db = newer.index.store.connection
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    new_ids = [r[0] for r in db.execute("SELECT id FROM chunks")]
    for word in WORDS:
        exact = newer.index.store._bm25.scores([word], new_ids)
        fts5 = dict(
            db.execute(
                "SELECT rowid, -bm25(chunks_fts, ?, ?) FROM chunks_fts WHERE chunks_fts MATCH ?",
                (TITLE_WEIGHT, BODY_WEIGHT, f'"{word}"'),
            ).fetchall()
        )
        assert exact == pytest.approx(fts5, rel=1e-12), word
    newer.index.store.term_counts(list(WORDS))
    db.set_trace_callback(None)
    changed = {"harbour", "ferry", "timetable", "winter", "museum", "garden", "festival", "summer"}
    counted = {s.rsplit("'", 2)[1] for s in statements if "FROM temp.chunks_fts_citebot" in s}
    # Only the changed chunks' words were counted again (as FTS5's stems): the others' kept.
    assert counted == {p[0] for p in newer.index.store._bm25.phrases(sorted(changed))}
    recounted = {s.split('"')[1] for s in statements if "rowid BETWEEN" in s}
    assert recounted == changed  # the term counts of keyword plans, likewise
    # Nor is the sample of rows drawn again (0.3 s at a million chunks).
    assert not [s for s in statements if "min(id), max(id) FROM chunks_fts_docsize" in s]
    searcher.close()
    newer.close()
