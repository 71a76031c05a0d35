"""The aiohttp application: routes, and the middlewares every request passes through.

In order: metrics (every request counted and timed, by route template), problems (any
error becomes problem+json with a one-line detail), CORS (an allow-list), access (the
bearer key and the rate limit) and the request timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from retrieval import metrics
from retrieval.config import ServeSettings
from retrieval.errors import (
    ArticleNotFoundError,
    BadQuestionError,
    CitebotError,
)

from . import api, health, page
from .corpora import Corpora
from .problems import HTTP_DETAILS, Problem, problem_response
from .security import Access, Keys, RateLimiter, bearer_key, is_loopback, key_id

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter", RateLimiter)
# Routes open to everyone: liveness and readiness probes, and the API's description.
OPEN_ROUTES = frozenset({"healthz", "readyz", "openapi"})
# The search page's routes: open, or behind the key the page asks for (see page.py).
PAGE_ROUTES = frozenset({"page", "page_key", "page_style"})


def route_of(request: web.Request) -> str:
    """The route template (``/v1/articles/{id}``): never an id, so metrics stay small."""
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    metrics.surface.set("page" if request.match_info.route.name in PAGE_ROUTES else "api")
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics.http_request(
            route_of(request), request.method, status, time.perf_counter() - started
        )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as exc:
        return problem_response(exc.status, exc.detail, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = HTTP_DETAILS.get(exc.status, "The request cannot be served.")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem_response(exc.status, detail, headers)
    except BadQuestionError as exc:  # an empty or over-long question, a filter nothing passes
        return problem_response(400, str(exc))
    except ArticleNotFoundError as exc:
        return problem_response(404, str(exc))
    except CitebotError as exc:
        # Library messages about the index may name its folder: the log gets them.
        logger.warning("%s %s: %s", request.method, route_of(request), exc)
        return problem_response(503, "The index cannot be used right now; try again later.")
    except TimeoutError:
        return problem_response(503, "The request took too long.", {"Retry-After": "1"})
    except Exception:
        logger.exception("%s %s failed", request.method, route_of(request))
        return problem_response(500, "Something went wrong on the server.")


def _client(request: web.Request, key: str | None) -> str:
    return key_id(key) if key else "address:" + (request.remote or "?")


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    name = request.match_info.route.name
    keys = request.app[api.KEYS]
    if name in OPEN_ROUTES or request.match_info.http_exception is not None:
        return await handler(request)
    key = bearer_key(request.headers.get("Authorization"))
    if name in PAGE_ROUTES:
        key = key or request.cookies.get(page.KEY_COOKIE)
    settings = request.app[api.SERVE]
    loopback = is_loopback(request.remote)
    if not (loopback and not settings.rate_limit_loopback):
        wait = request.app[LIMITER].retry_after(_client(request, key))
        if wait:
            raise Problem(
                429, f"Too many requests; try again in {wait} s.", {"Retry-After": str(wait)}
            )
    access = keys.access(key)
    if not keys.any:
        access = Access.ADMIN  # no keys: the server listens on loopback only (checked at start)
    needed = api.required_access(name)
    if name in PAGE_ROUTES and settings.public_page:
        access = max(access, Access.READ)
    request[api.ACCESS] = access
    if name in PAGE_ROUTES:
        return await handler(request)  # the page asks for a key itself
    if access < needed:
        if access == Access.NONE:
            detail = "A valid key is needed: send it as Authorization: Bearer <key>."
            raise Problem(401, detail, {"WWW-Authenticate": 'Bearer realm="citebot"'})
        raise Problem(403, "This key may search and read, not change articles.")
    return await handler(request)


@web.middleware
async def timeout_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    async with asyncio.timeout(request.app[api.SERVE].request_timeout_seconds):
        return await handler(request)


def cors_middleware(origins: tuple[str, ...]) -> Middleware:
    allowed = frozenset(o.rstrip("/") for o in origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allow = origin is not None and origin.rstrip("/") in allowed
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            if not allow:
                raise Problem(403, "This origin may not call the API.")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin or "",
                    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if allow:
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Vary"] = "Origin"
        return response

    return cors


def make_app(
    corpora: Corpora,
    settings: ServeSettings,
    keys: Keys,
    *,
    follow_seconds: float = 0.0,
) -> web.Application:
    """The application over ``corpora`` (opened when the app starts, in the background)."""
    middlewares: list[Middleware] = [metrics_middleware, problem_middleware]
    if settings.cors_origins:
        middlewares.append(cors_middleware(settings.cors_origins))
    middlewares += [access_middleware, timeout_middleware, api.leases_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[api.CORPORA] = corpora
    app[api.SERVE] = settings
    app[api.KEYS] = keys
    app[LIMITER] = RateLimiter(settings.rate_limit_per_minute)
    api.add_routes(app)
    health.add_routes(app)
    page.add_routes(app)

    opening: list[asyncio.Task[None]] = []

    async def start(app: web.Application) -> None:
        opening.append(asyncio.create_task(corpora.open(follow_seconds)))

    async def stop(app: web.Application) -> None:
        for task in opening:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await corpora.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
