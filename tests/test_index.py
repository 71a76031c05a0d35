"""Ingest into an index folder: incremental updates, pruning, the manifest, crash safety."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

import retrieval.ingest as ingest_module
from retrieval.config import ChunkSettings, Settings
from retrieval.errors import CitebotError, IndexMismatchError, IndexNotFoundError
from retrieval.index import (
    MANIFEST,
    SCHEMA_VERSION,
    committed_version,
    open_index,
    read_manifest,
)
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, CORPUS_IDS


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    return folder


def generations(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.glob("gen-*"))


def sqlite_chunk_ids(index_dir: Path, article_id: str | None = None) -> set[int]:
    manifest = read_manifest(index_dir)
    db = sqlite3.connect(index_dir / manifest.folder / "store.sqlite")
    try:
        if article_id is None:
            rows = db.execute("SELECT id FROM chunks")
        else:
            rows = db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))
        ids = {r[0] for r in rows}
        fts = {r[0] for r in db.execute("SELECT rowid FROM chunks_fts")}
    finally:
        db.close()
    if article_id is None:
        assert fts == ids, "the keyword index holds exactly the stored chunks"
    return ids


def faiss_ids(index_dir: Path) -> set[int]:
    """The live vector ids: the main file's, less the masked, with the segment's."""
    index = open_index(index_dir, FakeEmbedder.name)
    try:
        return set(index.vectors.ids().tolist())
    finally:
        index.close()


def open_searcher(settings: Settings, embedder: FakeEmbedder | None = None) -> Searcher:
    """A searcher that answers every question: the fake model's similarities are not
    calibrated for the configured "not covered" threshold."""
    return Searcher.open(settings, embedder or FakeEmbedder()).with_settings(min_confidence=0.0)


def answers(settings: Settings, questions: Sequence[str]) -> list[list[tuple[str, str]]]:
    searcher = open_searcher(settings)
    try:
        return [[(p.article.id, p.text) for p in searcher.search(q).passages] for q in questions]
    finally:
        searcher.close()


QUESTIONS = [
    "When does the orchestra rehearse on Thursday evenings?",
    "How many ferry crossings a day this winter?",
    "How much does a bakery co-op share cost?",
]


def test_ingest_then_search(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    report = ingest([CORPUS], settings, fake_embedder)
    assert report.files == 4
    assert (report.added, report.updated, report.unchanged, report.removed) == (5, 0, 0, 0)
    assert report.articles == 5
    assert report.skipped == []
    assert report.chunks_embedded == len(fake_embedder.embedded) > 5
    assert sqlite_chunk_ids(settings.index_dir) == faiss_ids(settings.index_dir)

    searcher = open_searcher(settings, fake_embedder)
    answer = searcher.search("How many ferry crossings a day this winter?")
    assert answer.answered
    assert answer.passages[0].article.id == "ferry"
    assert {s.article.id for s in searcher.articles()} == CORPUS_IDS


def test_embedded_texts_carry_the_title(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    ingest([CORPUS / "ferry.txt"], settings, fake_embedder)
    title = "Winter Ferry Timetable Cut to Eight Crossings a Day"
    assert fake_embedder.embedded
    assert all(t.startswith(title + "\n") for t in fake_embedder.embedded)


def test_reingest_of_unchanged_files_embeds_nothing(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    ingest([CORPUS], settings, fake_embedder)
    before = answers(settings, QUESTIONS)
    chunk_ids = sqlite_chunk_ids(settings.index_dir)
    again = FakeEmbedder()
    report = ingest([CORPUS], settings, again)
    assert again.embedded == []
    assert report.chunks_embedded == 0
    assert (report.added, report.updated, report.unchanged) == (0, 0, 5)
    assert sqlite_chunk_ids(settings.index_dir) == chunk_ids
    assert answers(settings, QUESTIONS) == before


def test_changing_one_file_reembeds_only_that_article(
    settings: Settings, corpus_copy: Path
) -> None:
    ingest([corpus_copy], settings, FakeEmbedder())
    old_ferry = sqlite_chunk_ids(settings.index_dir, "ferry")
    others = sqlite_chunk_ids(settings.index_dir) - old_ferry
    ferry = corpus_copy / "ferry.txt"
    ferry.write_text(
        ferry.read_text().replace("eight return crossings", "seven return crossings"),
        encoding="utf-8",
    )
    embedder = FakeEmbedder()
    report = ingest([corpus_copy], settings, embedder)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)
    title = "Winter Ferry Timetable Cut to Eight Crossings a Day"
    assert embedder.embedded and all(t.startswith(title) for t in embedder.embedded)
    assert any("seven return crossings" in t for t in embedder.embedded)

    new_ferry = sqlite_chunk_ids(settings.index_dir, "ferry")
    assert new_ferry and not (new_ferry & old_ferry)
    assert sqlite_chunk_ids(settings.index_dir) == others | new_ferry
    assert faiss_ids(settings.index_dir) == others | new_ferry

    searcher = open_searcher(settings)
    article = searcher.article("ferry")
    assert "seven return crossings" in article.text
    assert "eight return crossings" not in article.text
    passages = searcher.search("seven return crossings", k=10).passages
    assert all("eight return crossings" not in p.text for p in passages)


def test_changed_chunk_settings_reembed_everything(settings: Settings) -> None:
    ingest([CORPUS], settings, FakeEmbedder())
    smaller = replace(settings, chunking=ChunkSettings(max_tokens=64))
    report = ingest([CORPUS], smaller, FakeEmbedder())
    assert report.updated == 5
    assert sqlite_chunk_ids(settings.index_dir) == faiss_ids(settings.index_dir)


def test_prune_removes_articles_no_longer_found(settings: Settings, corpus_copy: Path) -> None:
    ingest([corpus_copy], settings, FakeEmbedder())
    bees = sqlite_chunk_ids(settings.index_dir, "bees-2024")
    (corpus_copy / "clubs.json").unlink()

    # Without --prune, missing articles stay.
    report = ingest([corpus_copy], settings, FakeEmbedder())
    assert report.removed == 0
    assert sqlite_chunk_ids(settings.index_dir, "bees-2024") == bees

    report = ingest([corpus_copy], settings, FakeEmbedder(), prune=True)
    assert report.removed == 2
    assert report.unchanged == 3
    remaining = sqlite_chunk_ids(settings.index_dir)
    assert not (remaining & bees)
    assert faiss_ids(settings.index_dir) == remaining
    searcher = open_searcher(settings)
    assert {s.article.id for s in searcher.articles()} == CORPUS_IDS - {"bees-2024", "skatepark"}
    assert all(
        p.article.id not in {"bees-2024", "skatepark"}
        for p in searcher.search("varroa mite beekeepers skate park", k=10).passages
    )


def test_manifest_is_self_describing(settings: Settings) -> None:
    ingest([CORPUS], settings, FakeEmbedder(dimension=48))
    data = json.loads((settings.index_dir / MANIFEST).read_text())
    assert data["format"] == "citebot-index"
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["model"] == FakeEmbedder.name
    assert data["dimension"] == 48
    assert data["normalized"] is True
    assert data["metric"] == "inner_product"
    assert data["chunking"] == asdict(ChunkSettings())
    assert data["generation"] >= 1
    assert data["created"] and data["updated"]


def test_opening_under_another_model_is_refused(settings: Settings) -> None:
    ingest([CORPUS], settings, FakeEmbedder())

    class OtherModel(FakeEmbedder):
        name = "another-model"

    with pytest.raises(IndexMismatchError) as caught:
        Searcher.open(settings, OtherModel())
    message = str(caught.value)
    assert "fake-hashing-embedder" in message and "another-model" in message
    assert "--rebuild" in message
    # Ingesting with another model is refused too, unless rebuilding.
    with pytest.raises(IndexMismatchError):
        ingest([CORPUS], settings, OtherModel())
    report = ingest([CORPUS], settings, OtherModel(), rebuild=True)
    assert report.added == 5
    assert read_manifest(settings.index_dir).model == "another-model"
    Searcher.open(settings, OtherModel()).close()


def test_other_schema_version_is_refused(settings: Settings) -> None:
    ingest([CORPUS / "ferry.txt"], settings, FakeEmbedder())
    path = settings.index_dir / MANIFEST
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(IndexMismatchError, match="schema version"):
        Searcher.open(settings, FakeEmbedder())


def test_no_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="citebot ingest"):
        open_index(tmp_path / "nothing-here", FakeEmbedder.name)


def test_a_folder_that_is_not_an_index(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text('{"hello": "world"}')
    with pytest.raises(IndexMismatchError, match="not a citebot index"):
        open_index(tmp_path, FakeEmbedder.name)


class CrashingEmbedder(FakeEmbedder):
    """Embeds ``batches`` batches, then fails (out of memory, Ctrl-C)."""

    def __init__(self, batches: int, exception: type[BaseException] = MemoryError) -> None:
        super().__init__()
        self.batches = batches
        self.exception = exception

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.batches == 0:
            raise self.exception()
        self.batches -= 1
        return super().embed(texts)


@pytest.mark.parametrize("exception", [MemoryError, KeyboardInterrupt])
def test_crash_mid_ingest_leaves_the_previous_index_usable(
    settings: Settings,
    corpus_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    exception: type[BaseException],
) -> None:
    ingest([corpus_copy], settings, FakeEmbedder())
    manifest_before = (settings.index_dir / MANIFEST).read_text()
    folders_before = generations(settings.index_dir)
    before = answers(settings, QUESTIONS)

    # Change every article, so the next ingest has many batches to embed.
    for path in corpus_copy.iterdir():
        path.write_text(path.read_text().replace("Fenwick", "Fenwyck"), encoding="utf-8")
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 2)
    crashing = CrashingEmbedder(batches=3, exception=exception)
    with pytest.raises(exception):
        ingest([corpus_copy], settings, crashing)
    assert len(crashing.embedded) == 6, "three batches of two were embedded before the crash"

    assert (settings.index_dir / MANIFEST).read_text() == manifest_before
    assert generations(settings.index_dir) == folders_before
    assert not list(settings.index_dir.glob(".staging-*"))
    assert answers(settings, QUESTIONS) == before
    searcher = open_searcher(settings)
    assert "Fenwyck" not in searcher.article("ferry").text
    searcher.close()

    # The next ingest that succeeds picks up all the changes.
    report = ingest([corpus_copy], settings, FakeEmbedder())
    assert report.updated == 4  # the skate park story never names the town
    searcher = open_searcher(settings)
    assert "Fenwyck" in searcher.article("ferry").text
    searcher.close()


def test_no_pickle_files_and_writes_stay_in_their_generation(
    settings: Settings, corpus_copy: Path
) -> None:
    ferry = corpus_copy / "ferry.txt"
    ingest([corpus_copy], settings, FakeEmbedder())
    first = committed_version(settings.index_dir)
    for round_ in range(4):
        ferry.write_text(ferry.read_text() + f"\nRound {round_}.\n", encoding="utf-8")
        ingest([corpus_copy], settings, FakeEmbedder())
    manifest = read_manifest(settings.index_dir)
    assert manifest.generation == 1, "an ordinary write is made in place"
    assert generations(settings.index_dir) == ["gen-000001"]
    assert committed_version(settings.index_dir) == first + 4
    names = [p.name for p in settings.index_dir.rglob("*")]
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".npy", ".joblib"))]
    for path in settings.index_dir.rglob("*"):
        if path.is_file() and path.stat().st_size:
            assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"


def test_rebuild_starts_afresh_without_reusing_a_folder(settings: Settings) -> None:
    ingest([CORPUS / "bakery.html"], settings, FakeEmbedder())
    ingest([CORPUS], settings, FakeEmbedder(), rebuild=True)  # generation 2; 1 is kept
    report = ingest([CORPUS / "ferry.txt"], settings, FakeEmbedder(), rebuild=True)
    assert report.added == 1
    manifest = read_manifest(settings.index_dir)
    assert manifest.generation == 3
    assert generations(settings.index_dir) == ["gen-000002", "gen-000003"]
    searcher = open_searcher(settings)
    assert [s.article.id for s in searcher.articles()] == ["ferry"]
    searcher.close()


def test_a_reader_opened_before_an_ingest_keeps_working(
    settings: Settings, corpus_copy: Path
) -> None:
    ingest([corpus_copy], settings, FakeEmbedder())
    reader = open_searcher(settings)
    (corpus_copy / "ferry.txt").write_text("Ferry News\n\nAll boats cancelled.\n")
    ingest([corpus_copy], settings, FakeEmbedder())
    assert reader.search(QUESTIONS[1]).passages[0].article.id == "ferry"
    assert "eight return crossings" in reader.article("ferry").text
    reader.close()


def test_duplicate_ids_are_reported_and_the_first_kept(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "dupes"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        json.dumps({"id": "same", "title": "First", "text": "First text."})
        + "\n"
        + json.dumps({"id": "same", "title": "Second", "text": "Second text."})
        + "\n"
    )
    report = ingest([folder], settings, FakeEmbedder())
    assert report.added == 1
    assert len(report.skipped) == 1
    assert "duplicate article id 'same'" in report.skipped[0].reason
    searcher = open_searcher(settings)
    assert searcher.article("same").title == "First"
    searcher.close()


def test_broken_files_are_reported_and_the_good_records_ingested(settings: Settings) -> None:
    from tests.helpers import BROKEN

    report = ingest([BROKEN], settings, FakeEmbedder())
    assert report.added == 2
    reasons = {Path(p.where.split(":")[0]).name: p.reason for p in report.skipped}
    assert set(reasons) == {"empty.md", "invalid.json", "mixed.jsonl", "photo.txt"}
    assert "binary" in reasons["photo.txt"]
    assert "invalid JSON" in reasons["invalid.json"]
    assert "invalid JSON" in reasons["mixed.jsonl"]
    assert any(p.where == "mixed.jsonl:2" for p in report.skipped)


def test_a_second_writer_is_refused(settings: Settings) -> None:
    import fcntl

    settings.index_dir.mkdir(parents=True)
    with open(settings.index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(CitebotError, match="another ingest"):
            ingest([CORPUS / "ferry.txt"], settings, FakeEmbedder())


def test_a_second_ingest_is_refused_before_files_are_read_or_the_model_loads(
    settings: Settings,
) -> None:
    import fcntl

    class Untouchable(FakeEmbedder):
        """Fails the test if anything asks the model for more than its name."""

        @property
        def dimension(self) -> int:  # type: ignore[override]
            raise AssertionError("the model was loaded before the lock was taken")

        @dimension.setter
        def dimension(self, value: int) -> None:
            pass

    settings.index_dir.mkdir(parents=True)
    with open(settings.index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(CitebotError, match="another ingest"):
            ingest([CORPUS / "ferry.txt"], settings, Untouchable())
        # A missing source would be reported if it were read: the lock comes first.
        with pytest.raises(CitebotError, match="another ingest"):
            ingest([Path("/nonexistent/articles")], settings, Untouchable())


def test_an_unchanged_ingest_writes_nothing(settings: Settings, corpus_copy: Path) -> None:
    ingest([corpus_copy], settings, FakeEmbedder())
    manifest = (settings.index_dir / MANIFEST).read_bytes()
    folder = settings.index_dir / "gen-000001"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    version = committed_version(settings.index_dir)
    report = ingest([corpus_copy], settings, FakeEmbedder(), prune=True)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 5, 0)
    assert (settings.index_dir / MANIFEST).read_bytes() == manifest
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert committed_version(settings.index_dir) == version
    assert generations(settings.index_dir) == ["gen-000001"]
    assert not list(settings.index_dir.glob(".staging-*"))
    # Anything that changes the store is committed: a removal alone, too.
    (corpus_copy / "ferry.txt").unlink()
    report = ingest([corpus_copy], settings, FakeEmbedder(), prune=True)
    assert report.removed == 1
    assert committed_version(settings.index_dir) == version + 1
    assert "ferry" not in {s.article.id for s in open_searcher(settings).articles()}


def test_an_orphan_generation_left_by_a_crash_is_removed_by_the_next_ingest(
    settings: Settings, corpus_copy: Path
) -> None:
    """Issue 7 item 3: a crash between renaming the staged generation and writing the
    manifest left a folder the next ingest wanted to use (OSError, forever)."""
    index_dir = settings.index_dir
    ingest([corpus_copy], settings, FakeEmbedder())
    shutil.copytree(index_dir / "gen-000001", index_dir / "gen-000002")
    (index_dir / ".staging-000005").mkdir()
    (index_dir / ".staging-000005" / "store.sqlite").write_bytes(b"half written")
    (index_dir / "index.tmp").write_text("{")

    (corpus_copy / "ferry.txt").write_text("Ferry News\n\nAll boats cancelled.\n")
    report = ingest([corpus_copy], settings, FakeEmbedder())
    assert report.updated == 1
    assert read_manifest(index_dir).generation == 1
    assert generations(index_dir) == ["gen-000001"]
    assert not list(index_dir.glob(".staging-*"))
    assert not (index_dir / "index.tmp").exists()
    assert "All boats cancelled." in open_searcher(settings).article("ferry").text
    assert sqlite_chunk_ids(index_dir) == faiss_ids(index_dir)


def test_healing_keeps_the_current_and_previous_generation(
    settings: Settings, corpus_copy: Path
) -> None:
    index_dir = settings.index_dir
    ferry = corpus_copy / "ferry.txt"
    ingest([corpus_copy], settings, FakeEmbedder())
    ferry.write_text(ferry.read_text() + "\nA late change.\n", encoding="utf-8")
    ingest([corpus_copy], settings, FakeEmbedder(), rebuild=True)
    reader = open_searcher(settings)  # holds generation 2
    for orphan in ("gen-000003", "gen-000009"):
        shutil.copytree(index_dir / "gen-000002", index_dir / orphan)
    (index_dir / ".staging-000003").mkdir()

    report = ingest([corpus_copy], settings, FakeEmbedder())  # nothing changed: no commit
    assert report.unchanged == 5
    assert generations(index_dir) == ["gen-000001", "gen-000002"]
    assert not list(index_dir.glob(".staging-*"))
    assert reader.search(QUESTIONS[1]).passages[0].article.id == "ferry"
    assert reader.is_current()


def test_a_long_lived_searcher_outlives_its_generation_folder(
    settings: Settings, corpus_copy: Path
) -> None:
    """Issue 7 item 8: after two ingests the reader's folder is gone; stats() raised
    FileNotFoundError."""
    ingest([corpus_copy], settings, FakeEmbedder())
    reader = open_searcher(settings)
    before = reader.stats()
    ferry = corpus_copy / "ferry.txt"
    for round_ in range(2):
        ferry.write_text(ferry.read_text() + f"\nRound {round_}.\n", encoding="utf-8")
        ingest([corpus_copy], settings, FakeEmbedder(), rebuild=True)
    assert "gen-000001" not in generations(settings.index_dir)

    assert reader.stats() == before
    assert reader.search(QUESTIONS[1]).passages[0].article.id == "ferry"
    assert "Round" not in reader.article("ferry").text
    assert reader.generation == 1 and not reader.is_current()
    fresh = open_searcher(settings)
    assert fresh.is_current() and fresh.generation == 3
    assert "Round 1." in fresh.article("ferry").text


def test_an_index_folder_name_with_uri_characters(tmp_path: Path, corpus_copy: Path) -> None:
    settings = Settings(index_dir=tmp_path / "news #1? 100% done")
    ingest([corpus_copy], settings, FakeEmbedder())
    (corpus_copy / "ferry.txt").write_text("Ferry News\n\nAll boats cancelled.\n")
    assert ingest([corpus_copy], settings, FakeEmbedder()).updated == 1
    searcher = open_searcher(settings)
    assert "All boats cancelled." in searcher.article("ferry").text
    assert searcher.stats().articles == 5


def test_an_index_path_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    settings.index_dir.write_text("not a folder")
    with pytest.raises(CitebotError, match="cannot write the index folder") as caught:
        ingest([CORPUS / "ferry.txt"], settings, FakeEmbedder())
    assert "\n" not in str(caught.value)
