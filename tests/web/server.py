"""A real HTTP server on 127.0.0.1 for the web tests: routes set by each test, every request logged.

It serves whatever a test puts in ``routes`` and answers conditional requests the way a
well-behaved server does (304 when If-None-Match or If-Modified-Since matches). Nothing
here reaches any address but the loopback one it listens on.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

# A handler never sleeps longer than this, so a slow route cannot hold up the test run.
MAX_DELAY = 3.0
# How long ``hits_to`` waits for the handlers still answering its path (a hanging route's
# handler is not waited for longer).
HANDLER_WAIT = 2.0


@dataclass
class Route:
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    # Send the body gzip-compressed, with Content-Encoding: gzip.
    gzip: bool = False
    # Seconds to wait before answering (a slow server).
    delay: float = 0.0
    # For a redirect status: where to.
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The route that answers from the second request on (a server that recovers).
    then: Route | None = None
    # Seconds the handler goes on after the answer is sent (the client has it before the
    # hit is recorded, as a busy server's thread may be scheduled late).
    linger: float = 0.0


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    status: int
    started: float
    ended: float

    @property
    def conditional(self) -> bool:
        return "if-none-match" in self.headers or "if-modified-since" in self.headers


class LocalSite:
    """``with LocalSite() as site: site.routes["/a"] = Route(b"...")``; ``site.url("/a")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._hits: list[Hit] = []
        self.max_concurrent = 0
        self._active = 0
        self._serving: list[str] = []  # the paths of the requests being answered
        # Notified as each request ends: the client may read the whole answer before its
        # handler records the hit, so a test asking for hits waits for the handlers first.
        self._lock = threading.Condition()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                started = time.monotonic()
                with site._lock:
                    site._active += 1
                    site.max_concurrent = max(site.max_concurrent, site._active)
                    site._serving.append(self.path)
                status = 0
                try:
                    status = site._answer(self)
                finally:
                    with site._lock:
                        site._active -= 1
                        site._serving.remove(self.path)
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        site._hits.append(
                            Hit(self.path, headers, status, started, time.monotonic())
                        )
                        site._lock.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A client that gave up (timeout tests) makes the handler's write fail: not an error here.
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def hits(self) -> list[Hit]:
        """Every request so far, once those still being answered have ended (HANDLER_WAIT
        at most: a hanging route's handler is not waited for longer)."""
        return self._hits_when(lambda: not self._serving)

    def hits_to(self, path: str) -> list[Hit]:
        """The requests for ``path`` so far, once those of it still being answered have
        ended (HANDLER_WAIT at most)."""
        return [h for h in self._hits_when(lambda: path not in self._serving) if h.path == path]

    def _hits_when(self, answered: Callable[[], bool]) -> list[Hit]:
        with self._lock:
            self._lock.wait_for(answered, timeout=HANDLER_WAIT)
            return list(self._hits)

    def __enter__(self) -> LocalSite:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> int:
        route = self.routes.get(handler.path)
        if route is None:
            route = Route(b"not found", "text/plain", status=404)
        elif route.then is not None:
            self.routes[handler.path] = route.then
        if route.delay:
            time.sleep(min(route.delay, MAX_DELAY))
        etag_match = route.etag and handler.headers.get("If-None-Match") == route.etag
        date_match = (
            route.last_modified
            and not handler.headers.get("If-None-Match")
            and handler.headers.get("If-Modified-Since") == route.last_modified
        )
        status = 304 if (etag_match or date_match) else route.status
        body = b"" if status == 304 else route.body
        headers = dict(route.headers)
        if route.content_type and status != 304:
            headers["Content-Type"] = route.content_type
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.location:
            headers["Location"] = route.location
        if route.gzip and body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        time.sleep(min(route.linger, MAX_DELAY))
        return status


class DripSite:
    """A raw server on 127.0.0.1 that answers each path with fixed bytes, sent one byte
    every ``interval`` seconds (a server that holds a client with a trickle); other
    paths get a quick 404. It stops dripping when the client hangs up or the site closes.
    """

    def __init__(self, drips: dict[str, bytes], interval: float) -> None:
        self.drips = drips
        self.interval = interval
        self.paths: list[str] = []
        self._closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> DripSite:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closed.set()
        self._server.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = connection.recv(4096)
                    if not data:
                        return
                    head += data
                path = head.split(b" ")[1].decode()
                self.paths.append(path)
                body = self.drips.get(path)
                if body is None:
                    connection.sendall(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    return
                for byte in body:
                    if self._closed.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return
