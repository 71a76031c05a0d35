"""Embedders turn texts into unit vectors; the protocol lets tests swap in a fake.

Backends: ``torch`` (sentence-transformers, ``torch_backend``) and ``onnx`` / ``onnx-int8``
(ONNX Runtime, ``onnx_backend``; the model is exported once by ``export``). Importing this
package imports neither torch nor onnxruntime: each backend loads its libraries on first use.
Which model reads a given index is ``retrieval.models.load_embedder``'s business.
"""

from __future__ import annotations

from .base import (
    BUNDLED_ALIASES,
    ONNX_BACKENDS,
    Embedder,
    Span,
    SpanEmbedder,
    bundled_model_path,
    default_backend,
    model_location,
    pool_spans,
)
from .model_files import OnnxModel
from .onnx_backend import OnnxEmbedder
from .torch_backend import SentenceTransformerEmbedder

__all__ = [
    "BUNDLED_ALIASES",
    "ONNX_BACKENDS",
    "Embedder",
    "OnnxEmbedder",
    "OnnxModel",
    "SentenceTransformerEmbedder",
    "Span",
    "SpanEmbedder",
    "bundled_model_path",
    "default_backend",
    "model_location",
    "pool_spans",
]
