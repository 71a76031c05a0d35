"""The storage seam: search, ingest and the web state use an index only through the
reader and writer protocols, and the backend is chosen by name from the config."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import IndexSettings, Settings, load_settings
from retrieval.errors import ConfigError
from retrieval.index import LOCAL, LocalBackend, backend_of, index_backend
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests import storage_backend
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS


@pytest.fixture
def narrowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test backend, installed as a package would install it: an entry point in a
    distribution's metadata on sys.path."""
    dist = tmp_path / "site" / "citebot_test_backend-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: citebot-test-backend\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[citebot.index_backends]\nnarrowed = tests.storage_backend:BACKEND\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    storage_backend.BACKEND.readers = storage_backend.BACKEND.writes = 0
    yield


def test_the_local_backend_is_the_default() -> None:
    assert Settings().index.backend == LOCAL
    assert isinstance(backend_of(Settings()), LocalBackend)


def test_an_unknown_backend_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        index_backend("nowhere")
    message = str(caught.value)
    assert "\n" not in message
    assert "'nowhere'" in message and "local" in message


def test_the_config_names_the_backend(tmp_path: Path) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text('[index]\nbackend = "narrowed"\n')
    assert load_settings(config).index == IndexSettings(backend="narrowed")
    config.write_text("[index]\nbackend = 3\n")
    with pytest.raises(ConfigError, match=r"\[index\] backend must be a string"):
        load_settings(config)


@pytest.mark.usefixtures("narrowed")
def test_ingest_and_search_need_nothing_past_the_protocols(tmp_path: Path) -> None:
    settings = replace(
        Settings(index_dir=tmp_path / "index"), index=IndexSettings(backend="narrowed")
    )
    first = ingest([CORPUS], settings, FakeEmbedder())
    # A second ingest builds on the committed generation (the writer lock's ``previous``).
    again = ingest([CORPUS], settings, FakeEmbedder(), prune=True)
    assert first.added == again.unchanged == 5
    assert storage_backend.BACKEND.writes == 2

    # The fake model's similarities are not calibrated for the "not covered" threshold.
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    try:
        answer = searcher.search("How many ferry crossings a day this winter?")
        assert answer.answered and answer.passages[0].article.id == "ferry"
        assert searcher.stats().articles == 5
        assert searcher.article("ferry").title
        assert {s.article.id for s in searcher.articles()} == {
            "orchestra",
            "ferry",
            "bakery",
            "bees-2024",
            "skatepark",
        }
    finally:
        searcher.close()
    assert storage_backend.BACKEND.readers == 1  # the searcher (a lock opens its previous)


def test_the_narrowed_reader_refuses_what_the_protocol_lacks(corpus_settings: Settings) -> None:
    """The test backend is strict: reaching past the seam fails (so the test above can)."""
    reader = storage_backend.Narrowed(
        LocalBackend().open_reader(corpus_settings.index_dir, None), storage_backend.IndexReader
    )
    try:
        assert reader.counts()[0] == 5
        with pytest.raises(AttributeError):
            _ = reader.store
        with pytest.raises(AttributeError):
            _ = reader.vectors
    finally:
        reader.close()
