"""Backends in the index: which embedder an index gets, what the manifest records, and the
refusals (no real model: a fake embedder, and a fake exported model of three small files)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from retrieval.cli import cli
from retrieval.config import ModelSettings, Settings
from retrieval.embedding import OnnxEmbedder, OnnxModel, SentenceTransformerEmbedder
from retrieval.embedding.model_files import MODEL_FILE, TOKENIZER_FILE, file_sha256
from retrieval.errors import ConfigError, IndexMismatchError
from retrieval.index import MANIFEST, read_manifest
from retrieval.ingest import ingest
from retrieval.models import load_embedder
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS


def fake_export(folder: Path, content: bytes = b"not really a graph") -> OnnxModel:
    """Three files shaped like an export; only the index code reads them here."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(content)
    (folder / TOKENIZER_FILE).write_text("{}")
    model = OnnxModel(
        folder=folder,
        model=FakeEmbedder.name,
        backend="onnx-int8",
        quantization="int8 (test)",
        dimension=64,
        max_tokens=128,
        lowercase=False,
        sha256=file_sha256(folder / MODEL_FILE),
        exported_with={},
    )
    model.write_description()
    return model


class ExportedFake(FakeEmbedder):
    """The fake model, dressed as an ONNX export."""

    backend = "onnx-int8"

    def __init__(self, artifact: OnnxModel) -> None:
        super().__init__()
        self.artifact = artifact  # type: ignore[assignment]


def test_backend_setting_is_checked() -> None:
    assert ModelSettings().backend == "auto"
    with pytest.raises(ConfigError, match="backend must be one of"):
        ModelSettings(backend="tensorflow")


def test_a_new_index_gets_int8_onnx_for_the_bundled_model_and_torch_for_others(
    settings: Settings,
) -> None:
    embedder = load_embedder(settings)
    assert isinstance(embedder, OnnxEmbedder)
    assert (embedder.name, embedder.backend) == ("all-MiniLM-L6-v2", "onnx-int8")

    other = replace(settings, model=ModelSettings(name="/models/my-model"))
    assert isinstance(load_embedder(other), SentenceTransformerEmbedder)
    fp32 = replace(settings, model=ModelSettings(backend="onnx"))
    assert load_embedder(fp32).backend == "onnx"


def test_an_index_from_before_backends_is_a_torch_index(settings: Settings) -> None:
    """index.json files written before backends existed have no backend: torch, fp32."""
    ingest([CORPUS], settings, FakeEmbedder())
    path = settings.index_dir / MANIFEST
    data = json.loads(path.read_text())
    for key in ("backend", "quantization", "model_sha256"):
        del data[key]
    data["model"] = "all-MiniLM-L6-v2"
    path.write_text(json.dumps(data))

    assert read_manifest(settings.index_dir).backend == "torch"
    # "auto" follows the index: it keeps answering with the model it was built with.
    assert isinstance(load_embedder(settings), SentenceTransformerEmbedder)
    # Naming another backend is refused before any model loads, in one line.
    int8 = replace(settings, model=ModelSettings(backend="onnx-int8"))
    with pytest.raises(IndexMismatchError) as refused:
        load_embedder(int8)
    message = str(refused.value)
    assert "torch backend, not onnx-int8" in message and "--rebuild" in message
    assert "\n" not in message
    # A rebuild starts afresh with the configured backend.
    assert load_embedder(int8, rebuild=True).backend == "onnx-int8"


def test_an_onnx_index_carries_its_model_and_records_it(settings: Settings, tmp_path: Path) -> None:
    exported = fake_export(tmp_path / "cache" / "export")
    report = ingest([CORPUS], settings, ExportedFake(exported))
    assert report.chunks_embedded > 0

    manifest = read_manifest(settings.index_dir)
    assert manifest.backend == "onnx-int8"
    assert manifest.quantization == "int8 (test)"
    assert manifest.model_sha256 == exported.sha256
    generation = settings.index_dir / manifest.folder
    for name in OnnxModel.FILES:
        assert (generation / name).read_bytes() == (exported.folder / name).read_bytes()

    # Asking (and ingesting again) uses the index's own copy: no export, no torch.
    embedder = load_embedder(replace(settings, model=ModelSettings(name=FakeEmbedder.name)))
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.artifact.folder == generation
    assert embedder.artifact.sha256 == exported.sha256

    # A write in place keeps the model beside the store, and the next generation (a
    # rebuild) carries it along, even after the export cache is gone.
    again = ExportedFake(embedder.artifact)
    extra = tmp_path / "extra.txt"
    extra.write_text("Harbour news\n\nThe harbour reopened on Monday after the storm.\n")
    shutil.rmtree(exported.folder)
    ingest([CORPUS, extra], settings, again)
    assert read_manifest(settings.index_dir).generation == manifest.generation
    assert file_sha256(generation / MODEL_FILE) == exported.sha256
    ingest([CORPUS, extra], settings, ExportedFake(embedder.artifact), rebuild=True)
    newer = read_manifest(settings.index_dir)
    assert newer.generation == manifest.generation + 1
    assert file_sha256(settings.index_dir / newer.folder / MODEL_FILE) == exported.sha256


def test_stats_show_the_backend_and_quantization(settings: Settings, tmp_path: Path) -> None:
    embedder = ExportedFake(fake_export(tmp_path / "export"))
    ingest([CORPUS], settings, embedder)
    searcher = Searcher.open(settings, embedder)
    stats = searcher.stats()
    searcher.close()
    assert (stats.backend, stats.quantization) == ("onnx-int8", "int8 (test)")
    assert stats.runs_as == "onnx-int8 (int8 (test))"

    runner = CliRunner()
    shown = runner.invoke(cli, ["stats", "--index", str(settings.index_dir)])
    assert shown.exit_code == 0, shown.output
    assert re.search(r"^backend\s+onnx-int8 \(int8 \(test\)\)$", shown.stdout, re.MULTILINE)
    data = json.loads(
        runner.invoke(cli, ["stats", "--index", str(settings.index_dir), "--json"]).stdout
    )
    assert (data["backend"], data["quantization"]) == ("onnx-int8", "int8 (test)")


def test_another_export_or_backend_is_refused(settings: Settings, tmp_path: Path) -> None:
    exported = fake_export(tmp_path / "export-a")
    ingest([CORPUS], settings, ExportedFake(exported))

    other_export = ExportedFake(fake_export(tmp_path / "export-b", b"another graph"))
    with pytest.raises(IndexMismatchError, match="another export"):
        ingest([CORPUS], settings, other_export)

    torch_like = FakeEmbedder()  # backend "fake"
    with pytest.raises(IndexMismatchError, match="onnx-int8 backend, not fake"):
        Searcher.open(settings, torch_like)
    with pytest.raises(IndexMismatchError, match="onnx-int8 backend, not fake"):
        ingest([CORPUS], settings, torch_like)
    # A rebuild may change the backend.
    ingest([CORPUS], settings, torch_like, rebuild=True)
    assert read_manifest(settings.index_dir).backend == "fake"


def test_ask_refuses_a_configured_backend_the_index_was_not_built_with(
    settings: Settings, tmp_path: Path
) -> None:
    ingest([CORPUS], settings, ExportedFake(fake_export(tmp_path / "export")))
    config = tmp_path / "citebot.toml"
    config.write_text(f'[model]\nname = "{FakeEmbedder.name}"\nbackend = "torch"\n')
    result = CliRunner().invoke(
        cli, ["--config", str(config), "ask", "ferry?", "--index", str(settings.index_dir)]
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert re.search(
        r"built with the onnx-int8 backend, not torch: set \[model\] backend", lines[0]
    )
