"""The server's memory settings take effect where the C library is glibc."""

from __future__ import annotations

import platform

import pytest

from server import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_arenas_are_limited_and_free_memory_released() -> None:
    assert memory.limit_arenas(memory.ARENAS) is True
    memory.release_free_memory()  # returns; nothing to assert beyond not failing
