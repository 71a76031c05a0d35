"""Polite HTTP fetching: robots.txt, one request at a time per host, limits, conditional GETs.

Every failure becomes a ``FetchError`` naming the URL and the reason, so a caller can
report it and go on. A ``Fetcher`` is safe to share between threads: requests to one host
take turns (with ``delay_seconds`` between them), requests to different hosts do not wait
for each other.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit

from ..config import WebSettings
from ..errors import FetchError
from ..urls import is_web_url, origin

if TYPE_CHECKING:
    import httpx
    from protego import Protego

logger = logging.getLogger(__name__)

# The name robots.txt rules address this crawler by.
ROBOTS_TOKEN = "citebot"
# A robots.txt Crawl-delay above this is capped (and logged): a day between requests
# would stall an ingest rather than be polite.
MAX_CRAWL_DELAY = 60.0
# Google's limit: rules past the first 500 KiB of a robots.txt are ignored.
ROBOTS_MAX_BYTES = 500 * 1024
ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
    "application/xml;q=0.9,text/xml;q=0.9,application/pdf,*/*;q=0.5"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Validators:
    """What a server said identifies a version of a resource (for conditional requests)."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)

    def request_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Fetched:
    """A successful response: the content (status 200), or "not modified" (status 304)."""

    url: str
    final_url: str
    status: int
    # Media type, lower case, without parameters ("" when the server sent none).
    content_type: str
    # The charset the server declared, if any (it may be wrong: see web.pages.decode_html).
    charset: str | None
    body: bytes
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class _Turn:
    """Per origin, for the whole process: whose turn it is, and when the next request may go.

    Shared by every Fetcher, so two sources on one host (or a sync and a re-index) still
    take turns and keep the delay between them.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    ready_at: float = 0.0


_TURNS: dict[str, _Turn] = {}
_TURNS_GUARD = threading.Lock()


def _turn(key: str) -> _Turn:
    with _TURNS_GUARD:
        return _TURNS.setdefault(key, _Turn())


@dataclass
class _Host:
    """Per origin, for one Fetcher: its turn, the delay it keeps, and its robots.txt."""

    turn: _Turn
    delay: float = 0.0
    robots: Protego | None = None
    # Why every path of the host is off limits (robots.txt unreachable), if it is.
    robots_refusal: str | None = None
    robots_loaded: bool = False


class Fetcher:
    """Fetches http(s) URLs politely. Use as a context manager, or call ``close``.

    ``transport`` is the seam for tests that need an httpx transport of their own; the
    project's tests use a real server on 127.0.0.1 instead.
    """

    def __init__(self, settings: WebSettings, *, transport: httpx.BaseTransport | None = None):
        import httpx

        self.settings = settings
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            max_redirects=settings.max_redirects,
            timeout=httpx.Timeout(settings.timeout_seconds),
            headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
        )
        self._hosts: dict[str, _Host] = {}
        self._private: dict[str, bool] = {}
        self._guard = threading.Lock()
        # Requests sent (robots.txt included), and how many of them were conditional.
        self.requests = 0
        self.conditional_requests = 0

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- the one public operation ----------------------------------------------------

    def get(
        self, url: str, validators: Validators | None = None, *, allow_private: bool = False
    ) -> Fetched:
        """GET ``url`` (conditionally when ``validators`` are given), following redirects.

        Unless ``allow_private``, a URL (or redirect) to a loopback, private or link-local
        address is refused: a feed or a sitemap must not lead the indexer into a network it
        was not pointed at. Raises FetchError with the reason for anything but 200 and 304.
        """
        validators = validators or Validators()
        current = urldefrag(url)[0]
        for _ in range(self.settings.max_redirects + 1):
            if not is_web_url(current):
                where = "" if current == url else f" (redirected to {current})"
                raise FetchError(url, f"only http and https URLs are fetched{where}")
            if not allow_private and self.is_private(current):
                raise FetchError(
                    url, f"refused: {urlsplit(current).hostname} is a local or private address"
                )
            host = self._host(current)
            with host.turn.lock:
                self._check_robots(url, current, host)
                self._wait_turn(host)
                try:
                    response = self._send(url, current, validators)
                finally:
                    host.turn.ready_at = time.monotonic() + host.delay
            if isinstance(response, str):
                current = response
                continue
            return response
        raise FetchError(url, f"more than {self.settings.max_redirects} redirects")

    # -- politeness --------------------------------------------------------------------

    def _host(self, url: str) -> _Host:
        key = origin(url)
        with self._guard:
            if key not in self._hosts:
                self._hosts[key] = _Host(_turn(key), delay=self.settings.delay_seconds)
            return self._hosts[key]

    @staticmethod
    def _wait_turn(host: _Host) -> None:
        pause = host.turn.ready_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def _check_robots(self, url: str, current: str, host: _Host) -> None:
        if not host.robots_loaded:
            self._load_robots(current, host)
        if host.robots_refusal:
            raise FetchError(url, host.robots_refusal)
        if host.robots is not None and not host.robots.can_fetch(current, ROBOTS_TOKEN):
            where = "" if current == urldefrag(url)[0] else f" ({current})"
            raise FetchError(url, f"disallowed by robots.txt{where}")

    def _load_robots(self, url: str, host: _Host) -> None:
        """Read the origin's robots.txt once (RFC 9309: 4xx allows all, 5xx or no answer allows none)."""
        import httpx
        from protego import Protego

        robots_url = origin(url) + "/robots.txt"
        host.robots_loaded = True
        self._wait_turn(host)
        self._count(conditional=False)
        try:
            with self._client.stream("GET", robots_url, follow_redirects=True) as response:
                status = response.status_code
                body = _read_capped(response, ROBOTS_MAX_BYTES, truncate=True) or b""
        except httpx.HTTPError as exc:
            host.robots_refusal = f"{_describe(exc, self.settings)} (reading robots.txt)"
            return
        finally:
            host.turn.ready_at = time.monotonic() + host.delay
        if 200 <= status < 300:
            host.robots = Protego.parse(body.decode("utf-8", errors="replace"))
            crawl_delay = host.robots.crawl_delay(ROBOTS_TOKEN)
            if crawl_delay:
                if crawl_delay > MAX_CRAWL_DELAY:
                    logger.warning(
                        "%s asks for %gs between requests; waiting %gs",
                        robots_url,
                        crawl_delay,
                        MAX_CRAWL_DELAY,
                    )
                host.delay = max(host.delay, min(float(crawl_delay), MAX_CRAWL_DELAY))
        elif status >= 500 or status == 429:
            host.robots_refusal = f"robots.txt could not be read (HTTP {status}); not fetching"

    def is_private(self, url: str) -> bool:
        """True when the URL's host is, or resolves to, a non-public address."""
        hostname = urlsplit(url).hostname or ""
        with self._guard:
            known = self._private.get(hostname)
        if known is not None:
            return known
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(hostname, None)}
        except OSError:
            addresses = set()  # unresolvable: the request itself reports it
        private = any(not ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses)
        with self._guard:
            self._private[hostname] = private
        return private

    # -- one request -------------------------------------------------------------------

    def _send(self, url: str, current: str, validators: Validators) -> Fetched | str:
        """One GET: a Fetched, or the next URL when the answer is a redirect."""
        import httpx

        headers = validators.request_headers()
        self._count(conditional=bool(headers))
        try:
            with self._client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(url, f"HTTP {status} redirect without a Location")
                    return urljoin(current, str(location))
                if status == 304 and validators:
                    return Fetched(
                        url,
                        current,
                        304,
                        "",
                        None,
                        b"",
                        _validators(response, fallback=validators),
                    )
                if status != 200:
                    reason = response.reason_phrase or ""
                    raise FetchError(url, f"HTTP {status} {reason}".strip(), status=status)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.settings.max_bytes:
                    raise FetchError(url, self._too_large())
                deadline = time.monotonic() + self.settings.timeout_seconds
                body = _read_capped(response, self.settings.max_bytes, deadline=deadline)
                if body is None:
                    raise FetchError(url, self._too_large())
                content_type = response.headers.get("content-type", "")
        except httpx.HTTPError as exc:
            raise FetchError(url, _describe(exc, self.settings)) from None
        except _Timeout:
            raise FetchError(
                url, f"timed out after {self.settings.timeout_seconds:g}s (response too slow)"
            ) from None
        charset = _CHARSET.search(content_type)
        return Fetched(
            url=url,
            final_url=current,
            status=200,
            content_type=content_type.split(";")[0].strip().lower(),
            charset=charset.group(1) if charset else None,
            body=body,
            validators=_validators(response),
        )

    def _count(self, *, conditional: bool) -> None:
        with self._guard:
            self.requests += 1
            self.conditional_requests += conditional

    def _too_large(self) -> str:
        return f"larger than the {self.settings.max_bytes:,}-byte limit ([web] max_bytes)"


class _Timeout(Exception):
    """The whole response took longer than the timeout (each read alone was quick enough)."""


def _read_capped(
    response: httpx.Response, limit: int, *, deadline: float | None = None, truncate: bool = False
) -> bytes | None:
    """The decoded body, at most ``limit`` bytes: cut there when ``truncate``, else None past it."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if deadline is not None and time.monotonic() > deadline:
            raise _Timeout
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            if truncate:
                return b"".join(chunks)[:limit]
            return None
    return b"".join(chunks)


def _validators(response: httpx.Response, fallback: Validators | None = None) -> Validators:
    fallback = fallback or Validators()
    return Validators(
        etag=response.headers.get("etag") or fallback.etag,
        last_modified=response.headers.get("last-modified") or fallback.last_modified,
    )


def _describe(exc: Exception, settings: WebSettings) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {settings.timeout_seconds:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.DecodingError):
        return f"the response could not be decoded: {exc}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"not a valid URL: {exc}"
    return f"request failed: {exc}"
