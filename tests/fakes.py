"""Small deterministic stand-ins for the heavy parts, shared by the test modules."""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from retrieval.records import Article, Problem
from retrieval.sources import SourceOutcome

_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """A bag-of-words hashing embedder: texts sharing words get similar unit vectors.

    Tokens are words and punctuation marks, plus two "special tokens" per text, like a
    BERT tokenizer, so token budgets behave as they do with the real model.
    """

    name = "fake-hashing-embedder"
    backend = "fake"
    artifact = None

    def __init__(
        self, dimension: int = 64, max_tokens: int = 128, synonyms: dict[str, str] | None = None
    ) -> None:
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.embedded: list[str] = []
        # Words that "mean" another word: hashed as that word, so meaning can differ from
        # the words a text shares with a question.
        self.synonyms = synonyms or {}

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(t)) + 2 for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return self._vectors(texts)

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                word = self.synonyms.get(word, word)
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


class FakeSpanEmbedder(FakeEmbedder):
    """A FakeEmbedder that also gives vectors of parts of texts (retrieval.embedding.SpanEmbedder),
    so ingest stores sentence vectors and the highlight weighs meaning.

    ``gives_spans=False`` plays a model that turns out to have none (an ONNX export made
    before its graph gave token states)."""

    def __init__(
        self,
        dimension: int = 64,
        max_tokens: int = 128,
        synonyms: dict[str, str] | None = None,
        *,
        gives_spans: bool = True,
    ) -> None:
        super().__init__(dimension, max_tokens, synonyms)
        self.gives_spans = gives_spans

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Each span embedded as the text it covers (a real model pools its tokens instead)."""
        if not self.gives_spans:
            return self.embed(texts), None
        pooled = [self._vectors([t[a:b] for a, b in s]) for t, s in zip(texts, spans, strict=True)]
        return self.embed(texts), pooled


class FailingSource:
    """Yields ``articles`` new articles, then waits for ``release`` (if given), then raises."""

    def __init__(self, articles: int, release: threading.Event | None = None) -> None:
        self.articles = articles
        self.release = release

    @property
    def root(self) -> str:
        return "failing"

    def read(self) -> Iterator[Article | Problem]:
        for number in range(self.articles):
            text = f"Ferry note {number}. The harbour ferry number {number} runs at dawn."
            yield Article(
                id=f"note-{number}", title=f"Ferry note {number}", text=text, source="failing"
            )
        if self.release is not None:
            assert self.release.wait(60)
        raise RuntimeError("the source broke")

    @property
    def outcome(self) -> SourceOutcome:
        return SourceOutcome()


class NotesSource(FailingSource):
    """The articles a FailingSource of as many yields, without failing."""

    def read(self) -> Iterator[Article | Problem]:
        yield from itertools.islice(super().read(), self.articles)
