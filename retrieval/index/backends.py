"""Index backends by name: ``[index] backend`` in the config chooses one.

``local`` is built in: an index is a folder of generations on this machine (see
``generations``). Other backends register under the entry point group
``citebot.index_backends`` in their own package's metadata, naming an object that
implements ``base.IndexBackend``, as plugin commands register under ``citebot.commands``::

    [project.entry-points."citebot.index_backends"]
    myengine = "myengine.citebot:BACKEND"
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError
from .base import IndexBackend
from .generations import (
    GenerationLock,
    OpenIndex,
    committed_version,
    lock_for_writing,
    open_index,
)
from .manifest import Manifest, read_manifest

ENTRY_POINT_GROUP = "citebot.index_backends"
LOCAL = "local"


class LocalBackend:
    """Indexes as folders of generations on this machine (``IndexBackend``)."""

    def read_manifest(self, location: Path) -> Manifest:
        return read_manifest(location)

    def committed_version(self, location: Path) -> int:
        return committed_version(location)

    def open_reader(
        self,
        location: Path,
        model: str | None,
        backend: str | None = None,
        manifest: Manifest | None = None,
    ) -> OpenIndex:
        return open_index(location, model, backend, manifest)

    @contextlib.contextmanager
    def lock_for_writing(
        self, location: Path, model: str, *, rebuild: bool = False, backend: str = "torch"
    ) -> Iterator[GenerationLock]:
        with lock_for_writing(location, model, rebuild=rebuild, backend=backend) as lock:
            yield lock

    def model_folder(self, location: Path, manifest: Manifest) -> Path:
        return location / manifest.folder


def index_backend(name: str) -> IndexBackend:
    """The backend called ``name``: ``local``, or one registered by an installed package."""
    if name == LOCAL:
        return LocalBackend()
    # Imported here: reading package metadata costs a cold start tens of ms.
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        known = ", ".join(sorted({LOCAL, *found}))
        raise ConfigError(f"[index] backend {name!r} is not installed (known: {known})")
    backend: IndexBackend = found[name].load()
    return backend


def backend_of(settings: Settings) -> IndexBackend:
    """The backend that ``settings`` name (``[index] backend``)."""
    return index_backend(settings.index.backend)
