"""Prometheus metrics, recorded here in the library so every surface counts the same way.

Off until a long-running surface (`citebot serve`, the bot with ``[bot] metrics_port``)
calls ``enable()``: until then, and whenever ``prometheus-client`` is not installed, every
recording function returns after one boolean test, so the CLI and the query path pay
nothing measurable. No label carries a user, guild, question or article id.

Which surface asked is a context variable (``surface``), set by the server and the bot
around their calls; a worker thread started with ``asyncio.to_thread`` inherits it.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

from .errors import BadQuestionError

if TYPE_CHECKING:
    from .records import Answer, IndexStats

logger = logging.getLogger(__name__)

SURFACES = ("cli", "api", "page", "discord")
OUTCOMES = ("answered", "not_covered", "refused", "error")
# Search stages, from the timings a search records (``Answer.timings_ms``).
STAGES = {
    "embed": "embed_ms",
    "vectors": "dense_ms",
    "keywords": "keyword_ms",
    # BM25 over the whole index for the dense half's chunks ([search] exact_keyword_scores).
    "dense_bm25": "keyword_dense_ms",
    "passages": "assemble_ms",
}
# 2.5 ms to 2.5 s: a warm question takes milliseconds, a cold or huge one seconds.
SEARCH_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
HTTP_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

P = ParamSpec("P")

surface: contextvars.ContextVar[str] = contextvars.ContextVar("citebot_surface", default="cli")
# The corpus a question was asked of (a name from the config's corpora; "default" without).
corpus: contextvars.ContextVar[str] = contextvars.ContextVar("citebot_corpus", default="default")

_metrics: _Metrics | None = None


class _Metrics:
    """The collectors, made once in their own registry (so tests can make a fresh one)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.questions = Counter(
            "citebot_questions",
            "Questions asked, by surface and outcome.",
            ["surface", "outcome", "corpus"],
            registry=r,
        )
        self.search_seconds = Histogram(
            "citebot_search_duration_seconds",
            "Time a search took, by stage.",
            ["stage"],
            buckets=SEARCH_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "citebot_http_requests",
            "HTTP requests served, by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "citebot_http_request_duration_seconds",
            "Time an HTTP request took, by route.",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.feedback = Counter(
            "citebot_feedback", "Feedback votes, by vote.", ["vote"], registry=r
        )
        self.index_articles = Gauge(
            "citebot_index_articles", "Articles in the index.", ["corpus"], registry=r
        )
        self.index_chunks = Gauge(
            "citebot_index_chunks", "Chunks in the index.", ["corpus"], registry=r
        )
        self.index_updated = Gauge(
            "citebot_index_last_update_timestamp_seconds",
            "When the index was last written (Unix time).",
            ["corpus"],
            registry=r,
        )
        self.ingested = Counter(
            "citebot_ingest_articles",
            "Articles seen by ingest, by result.",
            ["result"],
            registry=r,
        )
        self.gateway_latency = Gauge(
            "citebot_discord_gateway_latency_seconds",
            "The Discord gateway's heartbeat latency.",
            registry=r,
        )
        self.build_info = Gauge(
            "citebot_build_info",
            "The running version, model and backend (value 1).",
            ["version", "model", "backend"],
            registry=r,
        )


def enable() -> bool:
    """Start recording (idempotent); False, with a warning, if prometheus-client is missing."""
    global _metrics
    if _metrics is None:
        try:
            _metrics = _Metrics()
        except ImportError:
            logger.warning("prometheus-client is not installed: metrics are off")
            return False
    return True


def disable() -> None:
    """Stop recording and forget what was recorded (tests, benchmarks)."""
    global _metrics
    _metrics = None


def enabled() -> bool:
    return _metrics is not None


def registry() -> Any:
    """The registry to expose, or None when metrics are off."""
    return None if _metrics is None else _metrics.registry


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type (empty when off)."""
    if _metrics is None:
        return b"", "text/plain; version=0.0.4; charset=utf-8"
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_metrics.registry), CONTENT_TYPE_LATEST


def serve_http(port: int) -> Any:
    """Expose the metrics at http://127.0.0.1:PORT/metrics on a thread (the bot's
    ``[bot] metrics_port``); loopback only, as it has no keys. Returns the HTTP server."""
    from prometheus_client import start_http_server

    if _metrics is None:
        raise RuntimeError("enable() metrics first")
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=_metrics.registry)
    return server


# -- recording -------------------------------------------------------------------------------


def records_questions(search: Callable[P, Answer]) -> Callable[P, Answer]:
    """Decorates a search: each call counted by outcome and timed by stage."""

    @functools.wraps(search)
    def recorded(*args: P.args, **kwargs: P.kwargs) -> Answer:
        if _metrics is None:
            return search(*args, **kwargs)
        started = time.perf_counter()
        try:
            answer = search(*args, **kwargs)
        except Exception as exc:
            question_failed(refused=isinstance(exc, BadQuestionError))
            raise
        question(answer, time.perf_counter() - started)
        return answer

    return recorded


def question(answer: Answer, seconds: float) -> None:
    """A question answered (or found not covered), and how long its stages took."""
    m = _metrics
    if m is None:
        return
    outcome = "answered" if answer.answered else "not_covered"
    m.questions.labels(surface.get(), outcome, corpus.get()).inc()
    for stage, key in STAGES.items():
        if (ms := answer.timings_ms.get(key)) is not None:
            m.search_seconds.labels(stage).observe(ms / 1000)
    m.search_seconds.labels("total").observe(seconds)


def question_failed(refused: bool) -> None:
    """A question refused (empty, too long, a filter nothing passes) or failed."""
    m = _metrics
    if m is None:
        return
    m.questions.labels(surface.get(), "refused" if refused else "error", corpus.get()).inc()


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    m = _metrics
    if m is None:
        return
    m.http_requests.labels(route, method, str(status)).inc()
    m.http_seconds.labels(route).observe(seconds)


def feedback(vote: str) -> None:
    m = _metrics
    if m is not None:
        m.feedback.labels(vote).inc()


def index(stats: IndexStats, corpus: str = "default") -> None:
    """The size and last update of an index just opened (or switched to)."""
    m = _metrics
    if m is None:
        return
    from datetime import datetime

    m.index_articles.labels(corpus).set(stats.articles)
    m.index_chunks.labels(corpus).set(stats.chunks)
    try:
        updated = datetime.fromisoformat(stats.updated).timestamp()
    except ValueError:
        return
    m.index_updated.labels(corpus).set(updated)


def ingested(counts: dict[str, int]) -> None:
    """What one ingest did: {"added": n, "updated": n, "unchanged": n, "removed": n, ...}."""
    m = _metrics
    if m is None:
        return
    for result, count in counts.items():
        if count:
            m.ingested.labels(result).inc(count)


def gateway_latency(seconds: float) -> None:
    m = _metrics
    if m is not None and seconds == seconds:  # NaN before the first heartbeat
        m.gateway_latency.set(seconds)


def build_info(model: str, backend: str) -> None:
    m = _metrics
    if m is None:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        running = version("citebot")
    except PackageNotFoundError:
        running = "unknown"
    m.build_info.labels(running, model, backend).set(1)
