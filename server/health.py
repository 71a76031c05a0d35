"""Operational routes: /healthz (the process is up), /readyz (main corpus open, model loaded),
/metrics (Prometheus) and /openapi.json."""

from __future__ import annotations

from aiohttp import web

from retrieval import metrics

from . import api
from .openapi import openapi_document
from .problems import problem_response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "up"})


async def readyz(request: web.Request) -> web.Response:
    corpora = request.app[api.CORPORA]
    if corpora.ready:
        name = corpora.check(request.query.get("corpus"))  # a 404 for an unknown name
        return web.json_response(
            {
                "status": "ready",
                "corpus": name,
                "open": name in corpora.open_names(),
                "corpora": corpora.names,
            }
        )
    detail = "The index could not be opened." if corpora.problem else "Opening the index."
    return problem_response(503, detail, {"Retry-After": "1"})


async def metrics_route(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics_route, name="metrics", allow_head=False)
    app.router.add_get("/openapi.json", openapi, name="openapi", allow_head=False)
