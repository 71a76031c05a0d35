"""The ONNX backends with the real bundled model: the export agrees with sentence-transformers,
a question is embedded exactly as ingest embedded the chunks, and answering a question never
imports torch. The model is exported once per test session (the cache is session-wide)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.chunking import embedding_text
from retrieval.config import IngestSettings, ModelSettings, Settings
from retrieval.embedding import (
    OnnxEmbedder,
    OnnxModel,
    SentenceTransformerEmbedder,
    SpanEmbedder,
)
from retrieval.embedding.export import cached_export
from retrieval.embedding.model_files import MODEL_FILE, TOKEN_OUTPUT, TOKENIZER_FILE, file_sha256
from retrieval.errors import ConfigError
from retrieval.index import open_index, read_manifest
from retrieval.ingest import chunk_sentences, ingest
from retrieval.models import load_embedder
from retrieval.records import Chunk
from retrieval.search import Searcher
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
    from retrieval.models import load_embedder

    settings = Settings(index_dir=tmp_path_factory.mktemp("onnx") / "index")
    ingest([CORPUS], settings, load_embedder(settings))
    return settings


def test_a_question_is_embedded_as_ingest_embedded_the_chunks(onnx_index: Settings) -> None:
    """The query path (the index's own model file, one text at a time) gives the vectors that
    ingest stored for the same texts."""
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
    every_id, every_vector = index.vectors.vectors()
    row_of = {int(chunk_id): row for row, chunk_id in enumerate(every_id)}
    stored = every_vector[[row_of[i] for i in ids]]
    index.close()

    question_path = OnnxEmbedder.from_folder(onnx_index.index_dir / manifest.folder)
    asked = np.vstack([question_path.embed([text]) for text in texts])
    assert len(texts) > 5
    assert cosines(asked, stored).min() >= 0.999


# Texts with character spans of them (words, phrases, sentences; ingest gives sentences).
SPAN_TEXTS = [
    (TEXTS[0], [(0, 36), (37, 59)]),
    (TEXTS[2], [(2, 29), (31, 38), (40, 47), (52, 84)]),
    ("", []),
    # Past 256 tokens: sentences after the cut get zero vectors, as with torch.
    (TEXTS[4], [(0, 15), (16, 60), (61 * 30 + 16, 61 * 30 + 60), (61 * 39, 61 * 39 + 15)]),
]


def test_span_vectors_of_the_fp32_export_match_sentence_transformers(
    torch_embedder: SentenceTransformerEmbedder,
) -> None:
    """In fp32 nothing but the pooling can differ: the token states and their character
    offsets (tokenizers) must be exactly those of the torch path."""
    embedder = OnnxEmbedder.from_folder(cached_export(ModelSettings(), "onnx").folder)
    texts, spans = [t for t, _ in SPAN_TEXTS], [s for _, s in SPAN_TEXTS]
    vectors, pooled = embedder.embed_with_spans(texts, spans)
    expected_vectors, expected = torch_embedder.embed_with_spans(texts, spans)
    assert pooled is not None
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-6)
    assert cosines(vectors, expected_vectors).min() >= 0.9999
    for ours, theirs, text_spans in zip(pooled, expected, spans, strict=True):
        assert ours.shape == theirs.shape == (len(text_spans), 384)
        live = np.linalg.norm(theirs, axis=1) > 0
        np.testing.assert_array_equal(np.linalg.norm(ours, axis=1) > 0, live)
        assert cosines(ours[live], theirs[live]).min(initial=1.0) >= 0.9999
    assert not np.linalg.norm(pooled[3][2:], axis=1).any()  # after the 256th token


def test_span_offsets_follow_a_text_that_lowercasing_lengthens(
    int8: OnnxModel, tmp_path: Path
) -> None:
    """For a model that lowercases first, spans are moved to the lowercased text ("İ" becomes
    two characters); the tokenizer here lowercases anyway, so the vectors must not change."""
    replace(int8, lowercase=True).copy_to(tmp_path).write_description()
    text = "İİİ İstanbul hosts the summit. The summit ends on Friday."
    spans = [[(0, 30), (31, 57)]]
    plain = OnnxEmbedder.from_folder(int8.folder).embed_with_spans([text], spans)[1]
    lowered = OnnxEmbedder.from_folder(tmp_path).embed_with_spans([text], spans)[1]
    assert plain is not None and lowered is not None
    np.testing.assert_allclose(lowered[0], plain[0], atol=1e-6)


def test_int8_ingest_stores_sentence_vectors_that_agree_with_torch(
    onnx_index: Settings, torch_embedder: SentenceTransformerEmbedder
) -> None:
    """Every chunk of an int8 index has its sentences' vectors, and they are close to those
    the torch path pools for the same sentences. Measured over 3,290 BBC sentences: cosine
    min 0.974, 1st percentile 0.987, mean 0.993 (the chunk vectors themselves: min 0.976,
    mean 0.994); this corpus: min 0.987, mean 0.993."""
    manifest = read_manifest(onnx_index.index_dir)
    index = open_index(onnx_index.index_dir, manifest.model)
    store = index.store
    texts, spans, stored = [], [], []
    for summary in store.summaries():
        article = store.article(summary.article.id)
        assert article is not None
        ids = store.chunk_ids(article.id)
        rows, sentences = store.chunks(ids), store.sentence_vectors(ids)
        assert set(sentences) == set(ids)
        for chunk_id, row in rows.items():
            passage = article.text[row.char_start : row.char_end]
            text = embedding_text(article.title, passage, True)
            chunk = Chunk(article.id, 0, passage, row.char_start, row.char_end, 1, 1)
            pairs = chunk_sentences(text, chunk)
            np.testing.assert_array_equal(sentences[chunk_id][0], [a for _, a in pairs])
            texts.append(text)
            spans.append([s for s, _ in pairs])
            stored.append(sentences[chunk_id][1])
    index.close()
    _, expected = torch_embedder.embed_with_spans(texts, spans)
    agreement = cosines(np.vstack(stored), np.vstack(expected))
    assert len(agreement) > 20
    assert agreement.min() >= 0.97 and agreement.mean() >= 0.99


def without_token_states(model: OnnxModel, folder: Path) -> OnnxModel:
    """``model`` as exported before recipe 3: the graph gives the text vectors only."""
    import onnx

    graph = onnx.load(str(model.folder / MODEL_FILE))
    (states,) = [o for o in graph.graph.output if o.name == TOKEN_OUTPUT]
    graph.graph.output.remove(states)
    folder.mkdir()
    onnx.save(graph, str(folder / MODEL_FILE))
    (folder / TOKENIZER_FILE).write_bytes((model.folder / TOKENIZER_FILE).read_bytes())
    older = replace(model, folder=folder, sha256=file_sha256(folder / MODEL_FILE))
    older.write_description()
    return older


def test_an_index_exported_without_token_states_answers_and_takes_new_articles(
    int8: OnnxModel, tmp_path: Path
) -> None:
    """An index keeps the model it was built with: one built before exports gave token states
    still answers, and still ingests (without sentence vectors; highlights by words), with a
    newer export in the cache."""
    older = without_token_states(int8, tmp_path / "older")
    settings = Settings(index_dir=tmp_path / "index")
    first = OnnxEmbedder.from_folder(older.folder)
    assert isinstance(first, SpanEmbedder) and not first.gives_token_states
    vectors, pooled = first.embed_with_spans(TEXTS[:2], [[(0, 10)], [(0, 10)]])
    assert pooled is None
    np.testing.assert_allclose(vectors, OnnxEmbedder.from_folder(int8.folder).embed(TEXTS[:2]))

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    ferry, aside = corpus / "ferry.txt", tmp_path / "ferry.txt"
    ferry.rename(aside)
    ingest([corpus], settings, first)
    assert read_manifest(settings.index_dir).model_sha256 == older.sha256

    again = load_embedder(settings)  # the index's own model, not the cache's newer export
    assert isinstance(again, OnnxEmbedder) and again.artifact.sha256 == older.sha256
    aside.rename(ferry)
    report = ingest([corpus], settings, again)
    assert report.added == 1

    searcher = Searcher.open(settings)
    answer = searcher.search("Who drew up the plans for the new skating area?")
    assert answer.passages[0].article.id == "skatepark"
    store = searcher.index.store
    assert store.sentence_vectors(store.chunk_ids("ferry")) == {}
    searcher.close()


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
import asyncio, json, sys
from retrieval.config import Settings
from bot.cli import build_client

client = build_client(Settings(index_dir=sys.argv[1]))


async def ask():
    async with client.corpora.use("default") as holder:
        return await holder.search("Who drew up the plans for the new skating area?")


answer = asyncio.run(ask())
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness per thread: Linux")
def test_a_writes_embedding_threads_yield_to_questions(onnx_index: Settings) -> None:
    """The threads that embed a write's chunks run at `[ingest] embed_nice` more niceness;
    a question, one text, is embedded on the calling thread at its own priority."""
    settings = replace(onnx_index, ingest=IngestSettings(embed_nice=7))
    embedder = load_embedder(settings)
    assert isinstance(embedder, OnnxEmbedder)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    original = OnnxEmbedder._run

    def run(session: object, ids: list[int], outputs: list[str]) -> list[np.ndarray]:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return original(session, ids, outputs)

    embedder._run = run  # type: ignore[method-assign]
    embedder.embed(["one question"])
    assert seen == [mine]
    embedder.embed(["a chunk", "another chunk", "a third"])
    assert seen[1:] == [min(19, mine + 7)] * 3
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    with pytest.raises(ConfigError, match="embed_nice"):
        IngestSettings(embed_nice=20)
