"""The ingest pipeline: reading and chunking overlap with embedding, the reader stays a
bounded number of articles ahead, a failure on either side stops the other and changes
nothing, and progress is shown with rates (and a time left when the source can tell)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import retrieval.ingest as ingest_module
from retrieval.config import Settings
from retrieval.ingest import READ_AHEAD, ingest
from retrieval.records import Article, Problem
from retrieval.search import Searcher
from retrieval.sources import FileSource, ReportsProgress, SourceOutcome
from tests.fakes import FakeEmbedder, FakeSpanEmbedder
from tests.helpers import CORPUS, CORPUS_IDS


def article(number: int) -> Article:
    return Article(
        id=f"a{number}",
        title=f"Article {number}",
        text=f"Story number {number} tells of the harbour. It ends well.",
        source=f"feed/{number}",
    )


class ListSource:
    """A source of ``count`` made-up articles (a stand-in for a web source), that can wait
    before each article, or fail after some."""

    def __init__(
        self,
        count: int,
        root: str = "https://example.org/feed",
        *,
        before: object = None,
        fail_after: int | None = None,
    ) -> None:
        self.count = count
        self._root = root
        self.before = before  # called with the article's number before it is given
        self.fail_after = fail_after
        self.given = 0
        self.closed = False
        self.thread_names: set[str] = set()

    @property
    def root(self) -> str:
        return self._root

    @property
    def outcome(self) -> SourceOutcome:
        return SourceOutcome(documents=self.count)

    def read(self) -> Iterator[Article | Problem]:
        try:
            for number in range(self.count):
                self.thread_names.add(threading.current_thread().name)
                if number == self.fail_after:
                    raise ConnectionError("the feed went away")
                if callable(self.before):
                    self.before(number)
                self.given += 1
                yield article(number)
        finally:
            self.closed = True


class RecordingEmbedder(FakeSpanEmbedder):
    """Calls ``on_embed`` with the texts of each model call (on the embedding thread)."""

    def __init__(self, on_embed: object = None) -> None:
        super().__init__()
        self.on_embed = on_embed
        self.calls = 0

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        self.calls += 1
        if callable(self.on_embed):
            self.on_embed(texts)
        return super().embed_with_spans(texts, spans)


def no_pipeline_threads(wait: float = 5.0) -> bool:
    """Whether the ingest's threads have all ended, within ``wait`` seconds: a batch that was
    being embedded when the ingest failed finishes on its own (its vectors go nowhere)."""
    deadline = time.monotonic() + wait
    while True:
        names = {t.name for t in threading.enumerate() if t.is_alive()}
        if not any(n.startswith(("citebot-read", "citebot-ingest-embed")) for n in names):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def test_embedding_starts_while_the_source_is_still_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source waits, half-way, until the model has embedded something: an ingest that
    read everything before embedding would never get there."""
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 4)
    embedded = threading.Event()
    waited: list[bool] = []

    def wait_for_the_model(number: int) -> None:
        if number == 20:
            waited.append(embedded.wait(timeout=20))

    source = ListSource(40, before=wait_for_the_model)
    embedder = RecordingEmbedder(on_embed=lambda texts: embedded.set())
    report = ingest([source], Settings(index_dir=tmp_path / "index"), embedder)

    assert waited == [True]
    assert report.added == 40 and report.chunks_embedded == 40
    assert source.thread_names == {"citebot-read"}
    searcher = Searcher.open(Settings(index_dir=tmp_path / "index"), embedder)
    assert len(searcher.index.vectors) == 40
    ids = [i for a in searcher.articles() for i in searcher.index.store.chunk_ids(a.article.id)]
    assert set(searcher.index.store.sentence_vectors(ids)) == set(ids)
    searcher.close()


def test_reading_stays_a_bounded_number_of_articles_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 8)
    source = ListSource(600)
    ahead: list[int] = []

    def note_how_far_reading_is(texts: Sequence[str]) -> None:
        last = max(int(t.split("\n")[0].removeprefix("Article ")) for t in texts)
        ahead.append(source.given - (last + 1))

    embedder = RecordingEmbedder(on_embed=note_how_far_reading_is)
    report = ingest([source], Settings(index_dir=tmp_path / "index"), embedder)
    # 75 batches of 8, and one more: the batch commit after 500 articles ([ingest]
    # commit_every_articles) embeds the 4 chunks waiting first.
    assert report.chunks_embedded == 600 and embedder.calls == 76 and report.batches == 1
    # The queue, the batch being filled and the one waiting to run, and one in hand.
    assert max(ahead) <= READ_AHEAD + 2 * 8 + 2
    assert max(ahead) >= READ_AHEAD // 2, "the reader does run ahead"


def test_a_source_that_fails_midway_changes_nothing(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    ingest([CORPUS], settings, FakeEmbedder())
    manifest = (settings.index_dir / "index.json").read_text()

    source = ListSource(500, fail_after=300)
    with pytest.raises(ConnectionError, match="the feed went away"):
        ingest([CORPUS, source], settings, FakeEmbedder())
    assert (settings.index_dir / "index.json").read_text() == manifest
    assert source.closed and no_pipeline_threads()
    searcher = Searcher.open(settings, FakeEmbedder())
    assert {a.article.id for a in searcher.articles()} == CORPUS_IDS
    searcher.close()


def test_a_failing_model_stops_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 4)

    def fail(texts: Sequence[str]) -> None:
        raise MemoryError

    source = ListSource(10_000)
    with pytest.raises(MemoryError):
        ingest([source], Settings(index_dir=tmp_path / "index"), RecordingEmbedder(fail))
    assert source.closed and source.given < 500
    assert no_pipeline_threads()
    assert not (tmp_path / "index" / "index.json").exists()


def test_a_folder_tells_how_far_it_has_been_read(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("One\n\nThe first story.")
    (tmp_path / "many.jsonl").write_text(
        "".join(f'{{"id": "m{i}", "title": "M{i}", "text": "Story {i}."}}\n' for i in range(4))
    )
    source = FileSource(tmp_path, Settings(index_dir=tmp_path / "index"))
    assert isinstance(source, ReportsProgress) and source.progress is None
    seen = [(item.id, source.progress) for item in source.read() if isinstance(item, Article)]
    # Files in name order: many.jsonl (its four articles, a quarter each), then one.txt.
    assert seen == [("m0", 0.125), ("m1", 0.25), ("m2", 0.375), ("m3", 0.5), ("one", 1.0)]
    assert source.progress == 1.0


def test_progress_shows_rates_and_the_share_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest([CORPUS], Settings(index_dir=tmp_path / "index"), FakeEmbedder(), show_progress=True)
    shown = capsys.readouterr().err
    assert "100%" in shown
    assert "5 articles (" in shown and "/s)" in shown and "chunks embedded (" in shown

    # A source that cannot tell how far it is: counts and rates, no share.
    source = ListSource(3)
    assert not isinstance(source, ReportsProgress)
    ingest([source], Settings(index_dir=tmp_path / "other"), FakeEmbedder(), show_progress=True)
    shown = capsys.readouterr().err
    assert "3 articles (" in shown and "%" not in shown


def test_no_progress_is_shown_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest([CORPUS], Settings(index_dir=tmp_path / "index"), FakeEmbedder())
    assert capsys.readouterr().err == ""
