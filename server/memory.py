"""Keeping a long-running server's memory near the size of what it holds (glibc only;
elsewhere these do nothing).

Each thread that allocates gets a malloc arena of its own, and freed memory stays in its
arena: a server whose pushes run ingest threads, and whose questions run on a pool of
worker threads, grows by tens of megabytes that it is not using. Two arenas, and handing
free memory back after each write, keep it down (bench/bench_serve.py measures it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

logger = logging.getLogger(__name__)

# mallopt's parameter for the number of arenas (glibc's malloc.h).
M_ARENA_MAX = -8
ARENAS = 2


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc arenas (call before threads start); whether it applied."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def release_free_memory() -> None:
    """Hand the allocator's free memory back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
