"""Shared fixtures: the test corpus, settings that point into tmp folders, fake-model indexes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.config import Settings
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config or writes to their data folder."""
    monkeypatch.delenv("CITEBOT_CONFIG", raising=False)
    monkeypatch.delenv("CITEBOT_INDEX", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index")


@pytest.fixture(scope="module")
def corpus_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The test corpus ingested once per module with the fake embedder (treat as read-only)."""
    return build_index(tmp_path_factory.mktemp("corpus-index") / "index", [CORPUS])


@pytest.fixture(scope="module")
def corpus_searcher(corpus_settings: Settings) -> Iterator[object]:
    from retrieval.search import Searcher

    # The fake model's similarities are not calibrated for the "not covered" threshold:
    # answer every question unless a test sets a threshold itself.
    searcher = Searcher.open(corpus_settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    yield searcher
    searcher.close()
