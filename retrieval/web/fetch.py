"""Polite HTTP fetching: robots.txt, one request at a time per host, limits, conditional GETs.

Every failure becomes a ``FetchError`` naming the URL and the reason, so a caller can
report it and go on. A ``Fetcher`` is safe to share between threads: requests to one host
take turns (with ``delay_seconds`` between them), requests to different hosts do not wait
for each other. One fetcher serves a whole run, so robots.txt is read once per host.

Limits hold against a hostile server: every request (robots.txt included) has a
wall-clock deadline over connect, headers and body; the body is decoded here, coding by
coding, and counted against ``max_bytes`` as it is produced; every URL, redirect target
and robots.txt request passes the SSRF rules (``addresses``) and the connection goes to
the address that was checked (``connect``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin

from ..addresses import (
    IPAddress,
    Resolver,
    SystemResolver,
    UrlPolicy,
    check_addresses,
    check_form,
    is_public,
    lookup,
)
from ..config import WebSettings
from ..errors import FetchError, UrlRefused
from ..urls import origin

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
# Only codings this module can decode within the size limit are asked for.
ACCEPT_ENCODING = "gzip, deflate"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BUSY_STATUSES = frozenset({429, 503})
# Decoded bytes produced per step: a compression bomb never inflates more than this
# past the limit before it is stopped.
_PIECE = 64 * 1024
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
    """Fetches http(s) URLs politely and safely. Use as a context manager, or call ``close``.

    ``policy`` is where URLs may lead (default: the operator's rules from ``[web]``);
    ``resolver`` turns names into addresses (the tests' stub never touches the network);
    ``transport`` is the seam for tests that need an httpx transport of their own (it
    bypasses the address pinning).
    """

    def __init__(
        self,
        settings: WebSettings,
        *,
        policy: UrlPolicy | None = None,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        import httpx

        from .connect import pinned_transport

        self.settings = settings
        self.policy = policy or settings.url_policy()
        self._resolver = resolver or SystemResolver()
        self._client = httpx.Client(
            transport=transport or pinned_transport(self._checked),
            follow_redirects=False,
            timeout=httpx.Timeout(settings.timeout_seconds),
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            trust_env=False,
        )
        self._hosts: dict[str, _Host] = {}
        # Each host's addresses, looked up once per fetcher (failed lookups are not kept).
        self._addresses: dict[str, tuple[IPAddress, ...]] = {}
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

    # -- the public operations ---------------------------------------------------------

    def get(
        self, url: str, validators: Validators | None = None, *, policy: UrlPolicy | None = None
    ) -> Fetched:
        """GET ``url`` (conditionally when ``validators`` are given), following redirects.

        The URL, every redirect target and the robots.txt requests must pass ``policy``
        (default: the fetcher's). Raises FetchError with the reason for anything but 200
        and 304 (UrlRefused for a URL the policy refuses).
        """
        policy = policy or self.policy
        validators = validators or Validators()
        current = urldefrag(url)[0]
        retried = False
        hops = 0
        while hops <= self.settings.max_redirects:
            self._check(url, current, policy)
            host = self._host(current)
            with host.turn.lock:
                if not host.robots_loaded:
                    self._load_robots(current, host, policy)
                self._check_robots(url, current, host)
                self._wait_turn(host)
                try:
                    answer = self._send(url, current, validators, self.settings.max_bytes)
                finally:
                    host.turn.ready_at = time.monotonic() + host.delay
            if isinstance(answer, _Redirect):
                current = answer.location
                hops += 1
                continue
            if isinstance(answer, _Busy):
                wait = self._busy_wait(url, answer, host, retried)
                logger.info("%s: HTTP %d, retrying in %gs (Retry-After)", url, answer.status, wait)
                retried = True
                continue
            return answer
        raise FetchError(url, f"more than {self.settings.max_redirects} redirects")

    def source_policy(self, url: str, base: UrlPolicy | None = None) -> UrlPolicy:
        """The policy for a source rooted at ``url`` and all it lists, from ``base``
        (default: the fetcher's).

        A public-only policy stays as it is. Under the operator's rules, a source on a
        local or private address may list pages there too; a public one may not (its
        listed URLs are public-only, on ``allowed_ports`` or the source's own port).
        A host that cannot be resolved is refused (UrlRefused).
        """
        base = base or self.policy
        if base.public_only:
            return base
        try:
            _, port = check_form(url, base)
            addresses = self.addresses(url)
        except UrlRefused as exc:
            raise UrlRefused(f"refused: {exc.reason}", url) from None
        if not all(is_public(a) for a in addresses):
            return base
        ports = tuple(dict.fromkeys((*base.allowed_ports, port)))
        return UrlPolicy(True, base.allow_addresses, ports)

    def addresses(self, url: str) -> tuple[IPAddress, ...]:
        """The addresses of ``url``'s host (one lookup per host per fetcher)."""
        host, port = _host_port(url)
        with self._guard:
            known = self._addresses.get(host)
        if known is not None:
            return known
        found = lookup(host, port, self._resolver)  # UrlRefused when it fails: not kept
        with self._guard:
            return self._addresses.setdefault(host, found)

    # -- safety --------------------------------------------------------------------------

    def _check(self, url: str, current: str, policy: UrlPolicy) -> None:
        try:
            _, port = check_form(current, policy)
            host, _ = _host_port(current)
            check_addresses(host, port, policy, self.addresses(current))
        except UrlRefused as exc:
            where = "" if current == urldefrag(url)[0] else " (a redirect)"
            raise UrlRefused(f"refused: {exc.reason}{where}", url) from None

    def _checked(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """For the connection: the addresses looked up (and checked) for ``host``."""
        with self._guard:
            return self._addresses.get(host, ())

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

    def _busy_wait(self, url: str, busy: _Busy, host: _Host, retried: bool) -> float:
        """How long to wait before asking again, or FetchError when not worth it."""
        cap = self.settings.max_retry_after_seconds
        reason = f"HTTP {busy.status} {busy.reason}".strip()
        if busy.retry_after is None or retried:
            raise FetchError(url, reason, status=busy.status)
        if busy.retry_after > cap:
            # Later requests to the host still wait as long as the cap allows.
            host.turn.ready_at = max(host.turn.ready_at, time.monotonic() + cap)
            raise FetchError(
                url,
                f"{reason}; it asks to retry after {busy.retry_after:g}s, more than the"
                f" {cap:g}s allowed ([web] max_retry_after_seconds)",
                status=busy.status,
            )
        host.turn.ready_at = max(host.turn.ready_at, time.monotonic() + busy.retry_after)
        return busy.retry_after

    def _check_robots(self, url: str, current: str, host: _Host) -> None:
        if host.robots_refusal:
            raise FetchError(url, host.robots_refusal)
        if host.robots is not None and not host.robots.can_fetch(current, ROBOTS_TOKEN):
            where = "" if current == urldefrag(url)[0] else f" ({current})"
            raise FetchError(url, f"disallowed by robots.txt{where}")

    def _load_robots(self, url: str, host: _Host, policy: UrlPolicy) -> None:
        """Read the origin's robots.txt once (RFC 9309: 4xx allows all, 5xx or no answer
        allows none), through the same checks and redirect loop as any page."""
        from protego import Protego

        robots_url = origin(url) + "/robots.txt"
        host.robots_loaded = True
        self._wait_turn(host)
        status, body = 0, b""
        current = robots_url
        try:
            for _ in range(self.settings.max_redirects + 1):
                self._check(robots_url, current, policy)
                answer = self._send(robots_url, current, Validators(), ROBOTS_MAX_BYTES, True)
                if not isinstance(answer, _Redirect):
                    break
                current = answer.location
            else:
                raise FetchError(robots_url, "too many redirects")
            assert isinstance(answer, Fetched)
            status, body = answer.status, answer.body
        except FetchError as exc:
            host.robots_refusal = f"{exc.reason} (reading robots.txt)"
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
        # The first request after robots.txt keeps the delay it asks for.
        host.turn.ready_at = time.monotonic() + host.delay

    # -- one request -------------------------------------------------------------------

    def _send(
        self,
        url: str,
        current: str,
        validators: Validators,
        limit: int,
        truncate: bool = False,
    ) -> Fetched | _Redirect | _Busy:
        """One GET within the deadline: a Fetched, a redirect, or a busy server's answer.
        With ``truncate``, any status is returned as a Fetched and the body cut at ``limit``."""
        import httpx

        from .connect import deadline

        headers = validators.request_headers()
        self._count(conditional=bool(headers))
        timeout = self.settings.timeout_seconds
        ends = time.monotonic() + timeout
        try:
            with deadline(ends), self._client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(url, f"HTTP {status} redirect without a Location")
                    return _Redirect(urljoin(current, location.strip()))
                if status in BUSY_STATUSES and not truncate:
                    retry_after = _retry_after(response.headers.get("retry-after"))
                    return _Busy(status, response.reason_phrase or "", retry_after)
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
                if status != 200 and not truncate:
                    reason = response.reason_phrase or ""
                    raise FetchError(url, f"HTTP {status} {reason}".strip(), status=status)
                declared = response.headers.get("content-length", "")
                if not truncate and declared.isdigit() and int(declared) > limit:
                    raise FetchError(url, self._too_large())
                codings = response.headers.get_list("content-encoding", split_commas=True)
                decoded = _decode(response.iter_raw(), codings)
                body = _read_capped(decoded, limit, deadline=ends, truncate=truncate)
                if body is None:
                    raise FetchError(url, self._too_large())
                content_type = response.headers.get("content-type", "")
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(url, _describe(exc, self.settings)) from None
        except _Timeout:
            raise FetchError(url, f"timed out after {timeout:g}s (response too slow)") from None
        except _Undecodable as exc:
            raise FetchError(url, f"the response could not be decoded: {exc}") from None
        charset = _CHARSET.search(content_type)
        return Fetched(
            url=url,
            final_url=current,
            status=status,
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


@dataclass(frozen=True)
class _Redirect:
    location: str


@dataclass(frozen=True)
class _Busy:
    """A 429 or 503 answer, with its Retry-After in seconds when it gives one."""

    status: int
    reason: str
    retry_after: float | None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _host_port(url: str) -> tuple[str, int]:
    """The host as the connection sees it (httpx's IDNA spelling), and the port."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise UrlRefused("not a valid URL") from None
    host = parsed.raw_host.decode("ascii").lower()
    return host, parsed.port or (443 if parsed.scheme == "https" else 80)


class _Timeout(Exception):
    """The whole response took longer than the timeout (each read alone was quick enough)."""


class _Undecodable(Exception):
    """A Content-Encoding that is not supported, or data that is not what it claims."""


def _decode(raw: Iterator[bytes], codings: list[str]) -> Iterator[bytes]:
    """The body with every Content-Encoding undone, last applied first, a piece at a time."""
    stream = raw
    for coding in reversed([c.strip().lower() for c in codings]):
        if coding in ("", "identity"):
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise _Undecodable(f"unsupported Content-Encoding {coding[:40]!r}")
        stream = _inflate(stream, gzip=coding != "deflate")
    return stream


def _inflate(chunks: Iterator[bytes], *, gzip: bool) -> Iterator[bytes]:
    """Inflate gzip (members one after another) or deflate (zlib or raw) data, yielding
    at most _PIECE bytes at a time, so a bomb is stopped as soon as it passes the limit."""
    inflater: zlib._Decompress | None = None
    finished = False
    try:
        for chunk in chunks:
            data = chunk
            while data and not finished:
                if inflater is None:
                    inflater = zlib.decompressobj(_wbits(data, gzip))
                out = inflater.decompress(data, _PIECE)
                data = inflater.unconsumed_tail
                if out:
                    yield out
                if inflater.eof:
                    # Another gzip member may follow; anything else after the end is ignored.
                    data = inflater.unused_data
                    inflater = None
                    finished = not (gzip and data[:2] == b"\x1f\x8b")
        if inflater is not None:
            while tail := inflater.flush(_PIECE):
                yield tail
    except zlib.error as exc:
        raise _Undecodable(f"bad {'gzip' if gzip else 'deflate'} data ({exc})") from None


def _wbits(data: bytes, gzip: bool) -> int:
    if gzip:
        return 16 + zlib.MAX_WBITS
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def _read_capped(
    chunks: Iterator[bytes], limit: int, *, deadline: float | None = None, truncate: bool = False
) -> bytes | None:
    """The decoded body, at most ``limit`` bytes: cut there when ``truncate``, else None past it."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        if deadline is not None and time.monotonic() > deadline:
            raise _Timeout
        size += len(chunk)
        parts.append(chunk)
        if size > limit:
            if truncate:
                return b"".join(parts)[:limit]
            return None
    return b"".join(parts)


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
        return "cannot connect"
    if isinstance(exc, httpx.DecodingError):
        return "the response could not be decoded"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "not a valid URL"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol"
    return f"request failed ({type(exc).__name__})"
