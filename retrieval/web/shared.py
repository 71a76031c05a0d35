"""One fetcher for a whole ingest or sync run (light: the fetcher is imported only when a
source is a URL)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..urls import looks_like_url

if TYPE_CHECKING:
    from ..config import Settings
    from .fetch import Fetcher


@contextlib.contextmanager
def shared_fetcher(paths: Sequence[object], settings: Settings) -> Iterator[Fetcher | None]:
    """A fetcher for every URL among ``paths``, closed at the end of the block (None when
    there is none): robots.txt is read once per host per run, and the per-host delay
    holds across sources."""
    if not any(isinstance(p, str) and looks_like_url(p) for p in paths):
        yield None
        return
    from .fetch import Fetcher

    with Fetcher(settings.web) as fetcher:
        yield fetcher
