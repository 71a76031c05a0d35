"""Paths of the test data and small helpers shared by the test modules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from retrieval.config import Settings
from tests.fakes import FakeEmbedder

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
BROKEN = DATA / "broken"
SHAPES = DATA / "shapes"
SAMPLES = Path(__file__).parent.parent / "retrieval" / "samples"

# Article ids of the test corpus.
CORPUS_IDS = {"orchestra", "ferry", "bakery", "bees-2024", "skatepark"}


def build_index(
    index_dir: Path, paths: list[Path], embedder: FakeEmbedder | None = None
) -> Settings:
    """Ingest ``paths`` into ``index_dir`` with a fake embedder; returns the settings used."""
    from retrieval.ingest import ingest

    settings = Settings(index_dir=index_dir)
    ingest(paths, settings, embedder or FakeEmbedder())
    return settings


def with_search(settings: Settings, **changes: object) -> Settings:
    """``settings`` with some search settings changed."""
    return replace(settings, search=replace(settings.search, **changes))
