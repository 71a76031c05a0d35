"""Small deterministic stand-ins for the heavy parts, shared by the test modules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """A bag-of-words hashing embedder: texts sharing words get similar unit vectors.

    Tokens are words and punctuation marks, plus two "special tokens" per text, like a
    BERT tokenizer, so token budgets behave as they do with the real model.
    """

    name = "fake-hashing-embedder"

    def __init__(self, dimension: int = 64, max_tokens: int = 128) -> None:
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.embedded: list[str] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(t)) + 2 for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms
