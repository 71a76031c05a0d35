"""The ONNX backends with the real bundled model: the export agrees with sentence-transformers,
a question is embedded exactly as ingest embedded the chunks, and answering a question never
imports torch. The model is exported once per test session (the cache is session-wide)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.config import ModelSettings, Settings
from retrieval.embedding import OnnxEmbedder, OnnxModel, SentenceTransformerEmbedder
from retrieval.embedding.export import cached_export
from retrieval.index import open_index, read_manifest
from retrieval.ingest import ingest
from tests.helpers import CORPUS

pytestmark = pytest.mark.model

TEXTS = [
    "The library lends drills and ladders to anyone with a card.",
    "You can borrow tools from the public library for a week.",
    "  Leading and trailing spaces, ÜNICODE, émigrés and a URL: https://example.org/a?b=c  ",
    "",
    "Council minutes\nThe council voted 7-2 to keep the night bus. " * 40,  # past 256 tokens
]
HEAVY = ("torch", "transformers", "sentence_transformers", "trafilatura", "frontmatter", "tqdm")


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def int8() -> OnnxModel:
    return cached_export(ModelSettings(), "onnx-int8")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_int8_export_agrees_with_sentence_transformers(
    int8: OnnxModel, torch_embedder: SentenceTransformerEmbedder
) -> None:
    embedder = OnnxEmbedder.from_folder(int8.folder)
    assert (embedder.name, embedder.backend) == ("all-MiniLM-L6-v2", "onnx-int8")
    assert embedder.dimension == torch_embedder.dimension == 384
    assert embedder.max_tokens == torch_embedder.max_tokens == 256
    assert int8.quantization and int8.sha256

    # Chunks are sized with these counts: they must be the model's own, untruncated.
    assert embedder.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)

    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert vectors.flags["C_CONTIGUOUS"]
    one = embedder.embed(TEXTS[:1])
    assert one.shape == (1, 384) and one.flags["C_CONTIGUOUS"]
    # One text at a time, in a batch or alone: the same vector.
    np.testing.assert_allclose(one[0], vectors[0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosines(vectors, torch_embedder.embed(TEXTS)).min() >= 0.98


def test_fp32_export_matches_sentence_transformers(
    torch_embedder: SentenceTransformerEmbedder,
) -> None:
    fp32 = cached_export(ModelSettings(), "onnx")
    assert fp32.quantization is None
    vectors = OnnxEmbedder.from_folder(fp32.folder).embed(TEXTS)
    assert cosines(vectors, torch_embedder.embed(TEXTS)).min() >= 0.9999


def test_the_export_is_made_once(int8: OnnxModel) -> None:
    started = time.perf_counter()
    again = cached_export(ModelSettings(), "onnx-int8")
    assert again == int8
    assert time.perf_counter() - started < 1.0


@pytest.fixture(scope="module")
def onnx_index(tmp_path_factory: pytest.TempPathFactory, int8: OnnxModel) -> Settings:
    """The test corpus, ingested with the default settings (int8 ONNX)."""
    from retrieval.embedding import load_embedder

    settings = Settings(index_dir=tmp_path_factory.mktemp("onnx") / "index")
    ingest([CORPUS], settings, load_embedder(settings))
    return settings


def test_a_question_is_embedded_as_ingest_embedded_the_chunks(onnx_index: Settings) -> None:
    """The query path (the index's own model file, one text at a time) gives the vectors that
    ingest stored for the same texts."""
    from retrieval.chunking import embedding_text

    manifest = read_manifest(onnx_index.index_dir)
    assert manifest.backend == "onnx-int8"
    index = open_index(onnx_index.index_dir, manifest.model)
    store = index.store
    texts, ids = [], []
    for summary in store.summaries():
        article = store.article(summary.article.id)
        assert article is not None
        for chunk_id, row in store.chunks(store.chunk_ids(article.id)).items():
            passage = article.text[row.char_start : row.char_end]
            texts.append(embedding_text(article.title, passage, True))
            ids.append(chunk_id)
    stored = np.vstack([index.vectors._index.reconstruct(i) for i in ids])
    index.close()

    question_path = OnnxEmbedder.from_folder(onnx_index.index_dir / manifest.folder)
    asked = np.vstack([question_path.embed([text]) for text in texts])
    assert len(texts) > 5
    assert cosines(asked, stored).min() >= 0.999


LIGHT_CHECK = """
import json, sys
from click.testing import CliRunner
from retrieval.cli import cli

index, batch = sys.argv[1], sys.argv[2]
runner = CliRunner()
one = runner.invoke(cli, ["ask", "--index", index, "--json", "What is the price of joining the bread co-operative?"])
many = runner.invoke(cli, ["ask", "--index", index, "--json", "--batch", batch])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3:]))
print(json.dumps({"codes": [one.exit_code, many.exit_code], "one": one.output,
                  "many": many.output, "heavy": heavy}))
"""


def test_ask_imports_no_torch(onnx_index: Settings, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        '{"question": "Who drew up the plans for the new skating area?"}\n{"nope": 1}\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_CHECK, str(onnx_index.index_dir), str(batch), *HEAVY],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["codes"] == [0, 0], report
    assert json.loads(report["one"])["results"][0]["article"]["id"] == "bakery"
    answers = [json.loads(line) for line in report["many"].splitlines()]
    assert answers[0]["results"][0]["article"]["id"] == "skatepark"
    assert "error" in answers[1]
    assert report["heavy"] == []


BOT_CHECK = """
import json, sys
from retrieval.config import Settings
from bot.cli import build_client

client = build_client(Settings(index_dir=sys.argv[1]))
answer = client.holder.current.search("Who drew up the plans for the new skating area?")
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))
print(json.dumps({"first": answer.passages[0].article.id, "heavy": heavy}))
"""


def test_the_bot_answers_without_torch(onnx_index: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BOT_CHECK, str(onnx_index.index_dir), *HEAVY],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report == {"first": "skatepark", "heavy": []}
