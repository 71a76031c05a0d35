"""Embedders turn texts into unit vectors; the protocol lets tests swap in a fake.

Backends: ``torch`` (sentence-transformers, ``torch_backend``) and ``onnx`` / ``onnx-int8``
(ONNX Runtime, ``onnx_backend``; the model is exported once by ``export``). Importing this
package imports neither torch nor onnxruntime: each backend loads its libraries on first use.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..index import Manifest, check_model, read_manifest
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
    "load_embedder",
    "model_location",
    "pool_spans",
]


def load_embedder(settings: Settings, *, rebuild: bool = False) -> Embedder:
    """The embedder for the index in ``settings.index_dir``: the model it was built with, run
    the way it was built (an ONNX index brings its own model file, so no torch is loaded), or,
    for a new index or a rebuild, the configured model and backend. Nothing is loaded yet.

    A backend named in the config that differs from the index's is refused (IndexMismatchError),
    as another model is; ``backend = "auto"`` follows the index.
    """
    manifest: Manifest | None = None
    if not rebuild and (Path(settings.index_dir) / "index.json").is_file():
        manifest = read_manifest(Path(settings.index_dir))
    model = settings.model
    if manifest is not None and manifest.model == model.name:
        if model.backend != "auto":
            check_model(manifest, model.name, Path(settings.index_dir), backend=model.backend)
        if manifest.backend in ONNX_BACKENDS:
            folder = Path(settings.index_dir) / manifest.folder
            return OnnxEmbedder(manifest.model, manifest.backend, lambda: OnnxModel.read(folder))
        return SentenceTransformerEmbedder(model)
    backend = default_backend(model.name) if model.backend == "auto" else model.backend
    if backend in ONNX_BACKENDS:

        def export() -> OnnxModel:
            from .export import cached_export

            return cached_export(model, backend)

        return OnnxEmbedder(model.name, backend, export)
    return SentenceTransformerEmbedder(model)
