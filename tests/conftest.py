"""Shared fixtures: the test corpus, settings that point into tmp folders, fake-model indexes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.config import Settings
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache folder for the whole run, so the ONNX model is exported once per session
    and never into the developer's ~/.cache (set first: module fixtures and subprocesses
    see it too)."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


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
