"""An index together with the model that reads it.

An index records which model made its vectors, and how it was run (torch, or an ONNX
export kept in the generation folder); a question must be embedded by that very model.
This module sits above both ``embedding`` and ``index`` and joins them: it reads the
manifest once and chooses the embedder from it, so neither of the two imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .config import Settings
from .embedding import (
    ONNX_BACKENDS,
    Embedder,
    OnnxEmbedder,
    OnnxModel,
    SentenceTransformerEmbedder,
    default_backend,
)
from .errors import IndexNotFoundError
from .index import IndexReader, Manifest, backend_of, check_model


def load_embedder(
    settings: Settings, *, rebuild: bool = False, manifest: Manifest | None = None
) -> Embedder:
    """The embedder for the index in ``settings.index_dir``: the model it was built with, run
    the way it was built (an ONNX index brings its own model file, so no torch is loaded), or,
    for a new index or a rebuild, the configured model and backend. Nothing is loaded yet.

    ``manifest``: the index's, when the caller has read it already (else it is read here).
    A backend named in the config that differs from the index's is refused (IndexMismatchError),
    as another model is; ``backend = "auto"`` follows the index.
    """
    index_dir = Path(settings.index_dir)
    storage = backend_of(settings)
    if rebuild:
        manifest = None
    elif manifest is None:
        try:
            manifest = storage.read_manifest(index_dir)
        except IndexNotFoundError:  # a new index: the configured model
            manifest = None
    model = settings.model
    if manifest is not None and manifest.model == model.name:
        if model.backend != "auto":
            check_model(manifest, model.name, index_dir, backend=model.backend)
        if manifest.backend in ONNX_BACKENDS:
            folder = storage.model_folder(index_dir, manifest)
            return OnnxEmbedder(
                manifest.model,
                manifest.backend,
                lambda: OnnxModel.read(folder),
                nice=settings.ingest.embed_nice,
            )
        return SentenceTransformerEmbedder(model)
    backend = default_backend(model.name) if model.backend == "auto" else model.backend
    if backend in ONNX_BACKENDS:

        def export() -> OnnxModel:
            from .embedding.export import cached_export

            return cached_export(model, backend)

        return OnnxEmbedder(model.name, backend, export, nice=settings.ingest.embed_nice)
    return SentenceTransformerEmbedder(model)


def open_index_with_model(
    settings: Settings, make_embedder: Callable[[Manifest], Embedder] | None = None
) -> tuple[IndexReader, Embedder]:
    """The index in ``settings.index_dir``, opened and checked, with the embedder for it.

    The manifest is read once, here, before any model is chosen (so a missing index is
    reported first), and given to ``make_embedder`` (by default ``load_embedder``).
    """
    index_dir = Path(settings.index_dir)
    storage = backend_of(settings)
    manifest = storage.read_manifest(index_dir)
    if make_embedder is None:
        embedder = load_embedder(settings, manifest=manifest)
    else:
        embedder = make_embedder(manifest)
    index = storage.open_reader(index_dir, embedder.name, embedder.backend, manifest=manifest)
    return index, embedder
