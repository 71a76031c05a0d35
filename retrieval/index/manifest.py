"""The manifest of an index: what made it, and which generation is current.

``index.json`` names the model (and how it was run) that made the vectors, their
dimension, the chunking, and the current generation; it is checked key by key and value
by value on every open, so a damaged or foreign file is refused with one line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexDamagedError, IndexMismatchError, IndexNotFoundError
from ..typed import WrongType, checked

FORMAT = "citebot-index"
SCHEMA_VERSION = 2
# Versions this citebot opens: 1 (before segments: no segment tables, and a store written
# once per generation) is read as it is and upgraded in place, once, by the next write.
READABLE_VERSIONS = (1, 2)
MANIFEST = "index.json"
GENERATION_PREFIX = "gen-"


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    chunking: dict[str, Any]
    generation: int
    created: str
    updated: str
    normalized: bool = True
    metric: str = "inner_product"
    # How the vectors were made: "torch" (sentence-transformers), "onnx" or "onnx-int8" (ONNX
    # Runtime; the generation folder holds the model file, whose checksum is below). Indexes
    # written before there were backends were all made with torch, in fp32.
    backend: str = "torch"
    quantization: str | None = None
    model_sha256: str | None = None
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    @property
    def folder(self) -> str:
        return f"{GENERATION_PREFIX}{self.generation:06d}"


def damaged(index_dir: Path, reason: str) -> IndexDamagedError:
    reason = " ".join(reason.split())  # one line, whatever the library said
    return IndexDamagedError(
        f"index at {index_dir} is damaged ({reason}): rebuild it from your articles with"
        " `citebot ingest --rebuild PATH...`"
    )


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of ``index_dir``, checked key by key; a one-line error if it is unusable."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(
            f"no index at {index_dir} (run `citebot ingest PATH...` first, or pass --index)"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise IndexMismatchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested beyond reason
        raise damaged(index_dir, f"{MANIFEST} is not valid JSON") from None
    if not isinstance(data, dict):
        raise damaged(index_dir, f"{MANIFEST} is not a JSON object")
    if data.get("format") != FORMAT:
        raise IndexMismatchError(f"{index_dir} is not a citebot index")
    if data.get("schema_version") not in READABLE_VERSIONS:
        raise IndexMismatchError(
            f"index at {index_dir} has schema version {data.get('schema_version')!r}; this"
            f" citebot reads versions up to {SCHEMA_VERSION}: rebuild it with"
            " `citebot ingest --rebuild`"
        )
    if problem := _manifest_problem(data):
        raise damaged(index_dir, f"{MANIFEST}: {problem}")
    return Manifest(**data)


def _manifest_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the manifest's keys and values, if anything."""
    fields = {f.name: f for f in dataclasses.fields(Manifest)}
    if unknown := sorted(set(data) - set(fields)):
        return f"unknown key {', '.join(map(repr, unknown))}"
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    if missing := [n for n in required if n not in data]:
        return f"missing key {', '.join(map(repr, missing))}"
    hints = _manifest_types()
    for name, value in data.items():
        try:
            checked(value, hints[name])
        except WrongType as exc:
            return f"{name!r} should be {exc.expected}, not {_short(value)}"
    if data["generation"] < 1 or data["dimension"] < 1:
        return "generation and dimension must be positive"
    return None


@functools.cache
def _manifest_types() -> dict[str, Any]:
    return typing.get_type_hints(Manifest)


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def check_model(
    manifest: Manifest,
    model: str,
    index_dir: Path,
    backend: str | None = None,
    model_sha256: str | None = None,
) -> None:
    """Vectors of one model and backend only: refuse another (None checks nothing)."""
    if manifest.model != model:
        raise IndexMismatchError(
            f"index at {index_dir} was built with model {manifest.model!r}, but the config names"
            f" {model!r}: use that model, or rebuild with `citebot ingest --rebuild`"
        )
    if backend is not None and manifest.backend != backend:
        raise IndexMismatchError(
            f"index at {index_dir} was built with the {manifest.backend} backend, not {backend}:"
            f' set [model] backend = "{manifest.backend}" (or "auto"), or rebuild with'
            " `citebot ingest --rebuild`"
        )
    if model_sha256 and manifest.model_sha256 and manifest.model_sha256 != model_sha256:
        raise IndexMismatchError(
            f"index at {index_dir} was built with another export of {model} ({backend}):"
            " rebuild with `citebot ingest --rebuild`"
        )
