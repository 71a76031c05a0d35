"""Export a sentence-transformers model to ONNX, optimised and (for "onnx-int8") quantized.

Made here from the installed weights, once, and cached under ``$XDG_CACHE_HOME/citebot``
(``~/.cache/citebot``), keyed by the model and the versions of everything that shapes the
export; an index keeps its own copy (see ``OnnxModel.copy_to``). Only this module needs
torch: the exported model runs with ONNX Runtime alone.

The recipe, measured on BBC news chunks (see bench/bench_ingest.py):
  1. the transformer with mean pooling and normalisation in one graph (TorchScript export,
     eager attention, so ONNX Runtime's optimizer recognises the attention blocks), whose
     outputs are the text's unit vector and, since recipe 3, the token states it was
     pooled from (sentence vectors are pooled from those: no second pass);
  2. ONNX Runtime's transformer fusions (attention, skip layer norm, bias GELU, embeddings);
  3. dynamic int8 quantization of the matrix products, the fused attention and the
     embeddings, weights per output channel: per-tensor weights cost 0.05 of cosine to
     fp32, per channel under 0.015 (BBC chunks). A file of 23 MB instead of 90.
On two cores, one text per run on each core, this runs 3.5-4x the chunks per second of
sentence-transformers in fp32; fp32 ONNX with the same fusions about 1.5x.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..config import ModelSettings
from ..errors import CitebotError
from .base import ONNX_BACKENDS, model_location
from .model_files import (
    MODEL_FILE,
    SENTENCE_OUTPUT,
    TOKEN_OUTPUT,
    TOKENIZER_FILE,
    OnnxModel,
    file_sha256,
)
from .torch_backend import model_dimension, model_max_tokens

logger = logging.getLogger(__name__)

# Bump when the recipe changes, so caches made by an older recipe are not reused.
RECIPE = 3
QUANTIZATION = (
    "dynamic int8: MatMul, Attention and embedding weights int8 per output channel,"
    " activations uint8 per text"
)
# The exported model must agree with sentence-transformers on these texts at least this well
# (cosine), or the export is refused: fp32 agrees to rounding, int8 loses a little.
AGREEMENT = {"onnx": 0.9999, "onnx-int8": 0.97}
CHECK_TEXTS = (
    "How do libraries lend tools?",
    "The ferry to the island sails eight times a day in winter, weather permitting.",
    "Ministers said on Tuesday that the budget would be balanced by 2027. " * 12,
)
_VERSIONED = ("sentence-transformers", "transformers", "torch", "onnxruntime", "onnx")


def cache_root() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "citebot" / "onnx"


def _versions() -> dict[str, str]:
    found = {}
    for package in _VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def cached_export(settings: ModelSettings, backend: str) -> OnnxModel:
    """The exported model for ``settings.name`` and ``backend``, from the cache or made now."""
    if backend not in ONNX_BACKENDS:
        raise ValueError(f"not an ONNX backend: {backend}")
    location = model_location(settings.name)
    key = {"model": settings.name, "location": location, "backend": backend, "recipe": RECIPE}
    key |= {"versions": _versions()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in settings.name)
    folder = cache_root() / f"{slug}-{backend}-{digest}"
    if (folder / "embedder.json").is_file():
        return OnnxModel.read(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model = export(settings.name, location, backend, staging)
        try:
            os.rename(staging, folder)
        except OSError:
            # Another process exported the same model meanwhile: use that one.
            if not (folder / "embedder.json").is_file():
                raise
        return OnnxModel.read(folder) if model.folder != folder else model
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export(name: str, location: str, backend: str, folder: Path) -> OnnxModel:
    """Write the ONNX model of the sentence-transformers model at ``location`` into ``folder``."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: F401
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise CitebotError(
            f"exporting {name} to ONNX needs torch, sentence-transformers, onnxruntime and onnx"
            f' ({exc}); or set [model] backend = "torch"'
        ) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logger.info("preparing the %s model for ONNX Runtime (once; takes a few seconds)", name)
    try:
        st = SentenceTransformer(location, device="cpu")
    except (OSError, ValueError) as exc:
        raise CitebotError(f"cannot load model {name!r}: {exc}") from exc
    lowercase = _check_exportable(st, name)
    raw = folder / "raw.onnx"
    _export_graph(st, raw)
    transformer: Any = st[0]  # torch types a submodule as Tensor | Module
    graph = _optimise(raw, transformer.auto_model.config)
    if backend == "onnx-int8":
        _quantize(graph, folder / MODEL_FILE)
    else:
        shutil.copyfile(graph, folder / MODEL_FILE)
    for leftover in folder.glob("*.onnx"):
        if leftover.name != MODEL_FILE:
            leftover.unlink()
    st.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    model = OnnxModel(
        folder=folder,
        model=name,
        backend=backend,
        quantization=QUANTIZATION if backend == "onnx-int8" else None,
        dimension=model_dimension(st),
        max_tokens=model_max_tokens(st),
        lowercase=lowercase,
        sha256=file_sha256(folder / MODEL_FILE),
        exported_with=_versions() | {"recipe": str(RECIPE)},
    )
    model.write_description()
    _check_agreement(st, model)
    return model


def _check_exportable(st: Any, name: str) -> bool:
    """The model must be a transformer, mean pooling and (optionally) normalisation: the
    graph reproduces exactly those. Returns whether the text is lowercased first."""
    modules = list(st)
    kinds = [type(m).__name__ for m in modules]
    pooling = modules[1].get_config_dict() if len(modules) > 1 else {}
    mean = pooling.get("pooling_mode") == "mean" or (
        pooling.get("pooling_mode_mean_tokens") is True
        and not any(
            pooling.get(f"pooling_mode_{m}")
            for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
        )
    )
    if kinds[:2] != ["Transformer", "Pooling"] or not mean or set(kinds[2:]) - {"Normalize"}:
        raise CitebotError(
            f"the ONNX backends support models made of a transformer, mean pooling and"
            f' normalisation; {name} is {" + ".join(kinds)}: set [model] backend = "torch"'
        )
    return bool(getattr(modules[0], "do_lower_case", False))


def _export_graph(st: Any, path: Path) -> None:
    import torch

    transformer = st[0].auto_model
    with contextlib.suppress(AttributeError, ValueError):
        # Eager attention exports as plain operators, which ONNX Runtime fuses.
        transformer.set_attn_implementation("eager")
    transformer.eval()

    class Embedding(torch.nn.Module):
        """Token ids to unit vectors: the transformer, mean pooling over real tokens, L2 norm."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1), tokens

    example = torch.ones((2, 8), dtype=torch.int64)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Embedding(),
            (example, example),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=[SENTENCE_OUTPUT, TOKEN_OUTPUT],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                SENTENCE_OUTPUT: {0: "batch"},
                TOKEN_OUTPUT: {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
            do_constant_folding=True,
        )


def _optimise(raw: Path, config: Any) -> Path:
    """ONNX Runtime's transformer fusions, for BERT-like models; others are left as exported."""
    if getattr(config, "model_type", None) not in ("bert", "roberta", "xlm-roberta", "mpnet"):
        return raw
    from onnxruntime.transformers.optimizer import optimize_model

    optimised = raw.with_name("optimised.onnx")
    with _quiet():
        model = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            # Fusions only: the runtime's own optimisations are applied when a session loads,
            # for the machine it runs on.
            opt_level=0,
        )
        model.save_model_to_file(str(optimised))
    return optimised


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention", "EmbedLayerNormalization"],
            # The fused operators are unknown to ONNX's shape inference; their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _check_agreement(st: Any, model: OnnxModel) -> None:
    """Refuse an export that embeds differently from sentence-transformers."""
    import numpy as np

    from .onnx_backend import OnnxEmbedder

    expected = st.encode(list(CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    exported = OnnxEmbedder(model.model, model.backend, lambda: model).embed(list(CHECK_TEXTS))
    agreement = float(np.min(np.sum(expected * exported, axis=1)))
    logger.info(
        "ONNX export of %s (%s): cosine to torch >= %.4f", model.model, model.backend, agreement
    )
    if agreement < AGREEMENT[model.backend]:
        raise CitebotError(
            f"the ONNX export of {model.model} disagrees with sentence-transformers (cosine"
            f' {agreement:.3f}): set [model] backend = "torch"'
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The optimizer and the quantizer log every step at INFO and WARNING."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
