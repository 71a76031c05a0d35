"""A real HTTP server on 127.0.0.1 for the web tests: routes set by each test, every request logged.

It serves whatever a test puts in ``routes`` and answers conditional requests the way a
well-behaved server does (304 when If-None-Match or If-Modified-Since matches). Nothing
here reaches any address but the loopback one it listens on.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

# A handler never sleeps longer than this, so a slow route cannot hold up the test run.
MAX_DELAY = 3.0


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
        self.hits: list[Hit] = []
        self.max_concurrent = 0
        self._active = 0
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                started = time.monotonic()
                with site._lock:
                    site._active += 1
                    site.max_concurrent = max(site.max_concurrent, site._active)
                status = 0
                try:
                    status = site._answer(self)
                finally:
                    with site._lock:
                        site._active -= 1
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        site.hits.append(Hit(self.path, headers, status, started, time.monotonic()))

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

    def hits_to(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

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
        return status
