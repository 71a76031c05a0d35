"""An exported embedding model as files: the ONNX graph, its tokenizer and a description.

Kept apart from the backend that runs it, so that the embedder protocol, the index (which
keeps a copy of the files with each generation) and the exporter can name it without
importing ONNX Runtime or each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CitebotError

MODEL_FILE = "embedder.onnx"
# The graph's outputs: unit vectors of the texts, and the token states they were pooled
# from (for sentence vectors; exports made before recipe 3 have only the first).
SENTENCE_OUTPUT = "sentence_embedding"
TOKEN_OUTPUT = "token_embeddings"
TOKENIZER_FILE = "embedder-tokenizer.json"
META_FILE = "embedder.json"
META_FORMAT = "citebot-onnx-embedder"


@dataclass(frozen=True)
class OnnxModel:
    """An exported embedding model: three files in ``folder`` (graph, tokenizer, description)."""

    folder: Path
    model: str
    backend: str
    # How the weights were quantized (None for fp32).
    quantization: str | None
    dimension: int
    max_tokens: int
    # sentence-transformers lowercases the text before tokenizing for some models.
    lowercase: bool
    # Of the graph file: an index records it, so it pairs only with this very export.
    sha256: str
    # Library versions that made the export (for the record).
    exported_with: dict[str, str]

    FILES = (MODEL_FILE, TOKENIZER_FILE, META_FILE)

    @classmethod
    def read(cls, folder: Path) -> OnnxModel:
        try:
            data = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            if data.pop("format", None) != META_FORMAT:
                raise ValueError(f"{META_FILE} is not a citebot model description")
            return cls(folder=folder, **data)
        except (OSError, ValueError, TypeError) as exc:
            raise CitebotError(f"cannot read the embedding model in {folder}: {exc}") from None

    def write_description(self) -> None:
        data = {"format": META_FORMAT, **asdict(self)}
        del data["folder"]
        (self.folder / META_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def copy_to(self, folder: Path) -> OnnxModel:
        """The same files in ``folder`` (hard links when possible: the files never change)."""
        for name in self.FILES:
            target = folder / name
            target.unlink(missing_ok=True)
            try:
                os.link(self.folder / name, target)
            except OSError:
                shutil.copyfile(self.folder / name, target)
        return OnnxModel(**{**asdict(self), "folder": folder})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
