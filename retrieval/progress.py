"""Ingest's progress on a terminal: articles and chunks per second, and the time left."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """On a terminal (stderr): articles and chunks per second and, once the sources tell how
    far they have read, the share done and the time left."""

    def __init__(self, enabled: bool) -> None:
        self.articles = self.chunks = 0
        self._started = time.perf_counter()
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=1.0, desc=self._rates(), bar_format=_COUNTS, file=sys.stderr)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.set_description_str(self._rates(), refresh=False)
            self._bar.close()

    def done(self, shares: list[float | None], chunks: int) -> None:
        """Articles done (embedded, or unchanged), each with how far reading had got when
        it was read, and the chunks embedded for them."""
        self.articles += len(shares)
        self.chunks += chunks
        if self._bar is None:
            return
        self._bar.set_description_str(self._rates(), refresh=False)
        known = [s for s in shares if s is not None]
        if known:
            self._bar.bar_format = _BAR
        self._bar.update(max(0.0, max(known, default=0.0) - self._bar.n))

    def _rates(self) -> str:
        seconds = max(time.perf_counter() - self._started, 1e-9)
        return (
            f"{self.articles:,} articles ({self.articles / seconds:.1f}/s),"
            f" {self.chunks:,} chunks embedded ({self.chunks / seconds:.1f}/s)"
        )


# The description is the counts and rates; the share and time left once they are known.
_BAR = "ingest {percentage:3.0f}%|{bar:16}| {desc} [{elapsed}<{remaining}]"
_COUNTS = "ingest: {desc} [{elapsed}]"
