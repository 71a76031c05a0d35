"""An index opened together with its model: the manifest is read once per question asked
from the command line. It was read by the CLI's check and by the open (twice, as this test
saw before retrieval/models.py), and once more to choose the model when none was given."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from retrieval.cli import Runtime, cli
from retrieval.config import Settings
from retrieval.models import open_index_with_model
from tests.fakes import FakeEmbedder


@pytest.fixture
def manifest_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every read of an index.json, in order (the reads still happen)."""
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counting(path: Path) -> bytes:
        if path.name == "index.json":
            reads.append(path)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counting)
    return reads


def test_ask_reads_the_manifest_once(corpus_settings: Settings, manifest_reads: list[Path]) -> None:
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    index = str(corpus_settings.index_dir)
    result = CliRunner().invoke(
        cli, ["ask", "Where does the ferry go?", "--index", index], obj=runtime
    )
    assert result.exit_code == 0, result.output
    assert manifest_reads == [corpus_settings.index_dir / "index.json"]


def test_the_factory_gets_the_manifest_read(
    corpus_settings: Settings, manifest_reads: list[Path]
) -> None:
    seen = []

    def make(manifest: object) -> FakeEmbedder:
        seen.append(manifest)
        return FakeEmbedder()

    index, embedder = open_index_with_model(corpus_settings, make)
    try:
        assert embedder.name == index.manifest.model
        assert seen == [index.manifest]
        assert len(manifest_reads) == 1
    finally:
        index.close()
