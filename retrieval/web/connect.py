"""The connections the fetcher makes: only to addresses it checked, within a deadline.

``PinnedBackend`` is an httpcore network backend that never resolves a name itself: it
connects to the addresses the fetcher looked up and checked for this host (one lookup
per host per run, so a resolver that answers differently the second time changes
nothing). TLS still verifies the certificate for the host name (SNI and Host unchanged).

Every read and write of a request is bounded by the request's deadline (set with
``deadline``), so a server that sends one byte a second cannot hold a request longer
than ``timeout_seconds``, headers included.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpcore

from ..addresses import IPAddress
from ..errors import UrlRefused

_local = threading.local()


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Bound every network operation of this thread, until the block ends, by ``at``
    (``time.monotonic()``)."""
    before = getattr(_local, "deadline", None)
    _local.deadline = at
    try:
        yield
    finally:
        _local.deadline = before


def _remaining(timeout: float | None, *, on_late: type[Exception]) -> float | None:
    at: float | None = getattr(_local, "deadline", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise on_late("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(timeout, on_late=httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout, on_late=httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _remaining(timeout, on_late=httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to ``addresses(host, port)``, the checked addresses, never to a name."""

    def __init__(self, addresses: Callable[[str, int], tuple[IPAddress, ...]]) -> None:
        self._addresses = addresses
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._addresses(host.strip("[]").lower(), port)
        if not addresses:  # never reached through the fetcher, which checks first
            raise UrlRefused("the host was not checked before connecting")
        failure: Exception | None = None
        for address in addresses:
            left = _remaining(timeout, on_late=httpcore.ConnectTimeout)
            try:
                stream = self._backend.connect_tcp(
                    str(address), port, left, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise UrlRefused("only TCP connections are made")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def pinned_transport(
    addresses: Callable[[str, int], tuple[IPAddress, ...]], max_connections: int = 10
) -> Any:
    """An httpx transport whose connections go only where ``addresses`` says; it ignores
    proxy and certificate variables of the environment."""
    import httpx

    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(  # the one way to give httpx a network backend
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=max_connections,
        network_backend=PinnedBackend(addresses),
    )
    return transport


__all__ = ["PinnedBackend", "deadline", "pinned_transport", "socket"]
