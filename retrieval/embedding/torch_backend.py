"""The torch backend: a sentence-transformers model (any model, CPU or GPU)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..config import ModelSettings
from ..errors import CitebotError
from .base import Span, lowercased, model_location, pool_spans

if TYPE_CHECKING:
    import tokenizers
    from sentence_transformers import SentenceTransformer

    from .model_files import OnnxModel

logger = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use so commands that need no model stay fast."""

    backend = "torch"
    # Nothing for the index to carry: the model is loaded by name.
    artifact: OnnxModel | None = None

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
        location = model_location(name)
        logger.info("loading model %s from %s", name, location)
        try:
            return SentenceTransformer(location, device=self.settings.device)
        except (OSError, ValueError) as exc:
            raise CitebotError(f"cannot load model {name!r}: {exc}") from exc

    @cached_property
    def dimension(self) -> int:
        return model_dimension(self.model)

    @cached_property
    def max_tokens(self) -> int:
        return model_max_tokens(self.model)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        counter = self._counter
        if counter is not None:
            encoded = counter.encode_batch(list(texts), add_special_tokens=True)
            return [len(e.ids) for e in encoded]
        with self._lock:
            found = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in found["input_ids"]]

    @cached_property
    def _counter(self) -> tokenizers.Tokenizer | None:
        """A copy of the model's fast tokenizer that counts on any thread, so ingest chunks
        articles while the model embeds others (the model's own is used under the lock);
        None for a slow tokenizer."""
        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        return counter

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
        if getattr(model[0], "do_lower_case", False):  # as sentence-transformers' encode does
            pairs = [lowercased(text, own) for text, own in zip(texts, spans, strict=True)]
            texts, spans = [text for text, _ in pairs], [own for _, own in pairs]
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


def model_dimension(model: SentenceTransformer) -> int:
    """The dimension of the model's vectors."""
    # Renamed in sentence-transformers 6; older releases have only the long name.
    get = getattr(model, "get_embedding_dimension", None)
    dimension = get() if get else model.get_sentence_embedding_dimension()
    if dimension is None:
        raise CitebotError("the model does not say the dimension of its vectors")
    return int(dimension)


def model_max_tokens(model: SentenceTransformer) -> int:
    """The most tokens the model reads of a text."""
    if model.max_seq_length is None:
        raise CitebotError("the model does not say how many tokens it reads")
    return int(model.max_seq_length)
