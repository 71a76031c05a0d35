"""The real bundled model behind the Embedder protocol (one load for the module)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedding import SentenceTransformerEmbedder

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_sentence_transformer_embedder(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.name == "all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert embedder.max_tokens == 256

    texts = [
        "The library lends drills and ladders to anyone with a card.",
        "You can borrow tools from the public library for a week.",
        "The ferry to the island sails eight times a day in winter.",
    ]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    similar = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.2

    # Deterministic: the same text gives the same vector.
    np.testing.assert_allclose(embedder.embed(texts[:1])[0], vectors[0], atol=1e-5)

    # Special tokens ([CLS] and [SEP]) are counted, and nothing is truncated.
    empty, short, long = embedder.count_tokens(["", "hello world", "word " * 1000])
    assert empty == 2
    assert short == 4
    assert long == 1002
