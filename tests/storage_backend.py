"""An index backend for the storage-seam tests: the local backend, seen only through the
protocols. Its readers and writers expose the members of ``IndexReader`` and
``IndexWriter`` and nothing else, so a caller reaching past the seam (``.store``,
``.vectors``) fails with AttributeError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.config import ChunkSettings, VectorSettings
from retrieval.index import IndexReader, IndexWriter, LocalBackend, Manifest
from retrieval.index.generations import GenerationLock


def protocol_members(protocol: type) -> frozenset[str]:
    """The public names a protocol (with its protocol bases) declares."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if getattr(cls, "_is_protocol", False) and cls.__module__.startswith("retrieval."):
            names.update(n for n in vars(cls) if not n.startswith("_"))
    return frozenset(names)


class Narrowed:
    """``target`` with only the members of ``protocol`` reachable."""

    def __init__(self, target: object, protocol: type) -> None:
        self._target = target
        self._members = protocol_members(protocol)

    def __getattr__(self, name: str) -> Any:
        if name not in self._members:
            raise AttributeError(f"{name!r} is not part of the protocol")
        return getattr(self._target, name)


class NarrowedLock:
    def __init__(self, lock: GenerationLock) -> None:
        self._lock = lock

    @property
    def previous(self) -> Any:
        previous = self._lock.previous
        return None if previous is None else Narrowed(previous, IndexReader)

    @contextlib.contextmanager
    def next_generation(
        self,
        dimension: int,
        chunking: ChunkSettings,
        artifact: Any = None,
        vector_settings: VectorSettings | None = None,
    ) -> Iterator[Any]:
        with self._lock.next_generation(dimension, chunking, artifact, vector_settings) as w:
            yield Narrowed(w, IndexWriter)


class NarrowedBackend:
    """Registered as ``narrowed`` under ``citebot.index_backends`` by the tests."""

    def __init__(self) -> None:
        self.local = LocalBackend()
        self.readers = 0
        self.writes = 0

    def read_manifest(self, location: Path) -> Manifest:
        return self.local.read_manifest(location)

    def open_reader(
        self,
        location: Path,
        model: str | None,
        backend: str | None = None,
        manifest: Manifest | None = None,
    ) -> Any:
        self.readers += 1
        return Narrowed(self.local.open_reader(location, model, backend, manifest), IndexReader)

    @contextlib.contextmanager
    def lock_for_writing(
        self, location: Path, model: str, *, rebuild: bool = False, backend: str = "torch"
    ) -> Iterator[Any]:
        self.writes += 1
        with self.local.lock_for_writing(location, model, rebuild=rebuild, backend=backend) as lock:
            assert isinstance(lock, GenerationLock)
            yield NarrowedLock(lock)

    def model_folder(self, location: Path, manifest: Manifest) -> Path:
        return self.local.model_folder(location, manifest)


BACKEND = NarrowedBackend()
