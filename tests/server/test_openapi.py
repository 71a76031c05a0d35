"""/openapi.json: valid OpenAPI 3.1, naming exactly the app's routes, and describing the
real responses (each one validated against its schema)."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from server.app import LIMITER
from tests.server.conftest import ADMIN_KEY, KEYS, READ_KEY, Start, bearer

DOCUMENT_URI = "urn:citebot:openapi"


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(path template, method) of every route the app answers, HEAD aside."""
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        routes.add((route.resource.canonical, route.method.lower()))
    return routes


def document_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "delete", "patch"}
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


class Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)
        self.checked: set[tuple[str, str, str]] = set()

    def schema(self, path: str, method: str, status: int, content_type: str) -> dict[str, Any]:
        responses = self.document["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method} {path} answered {status}, undocumented"
        content = responses[str(status)].get("content", {})
        assert content_type in content, f"{method} {path} {status}: {content_type} undocumented"
        return content[content_type].get("schema", {})

    async def check(self, response: Any, path: str, method: str) -> None:
        content_type = response.content_type
        schema = self.schema(path, method, response.status, content_type)
        if content_type.endswith("json"):
            body = await response.json(content_type=None)
            validator = Draft202012Validator(_rooted(schema), registry=self.registry)
            errors = sorted(validator.iter_errors(body), key=str)
            assert not errors, f"{method} {path} {response.status}: {errors[0].message}"
        self.checked.add((path, method, str(response.status)))


def _rooted(schema: Any) -> Any:
    """``schema`` with its local references made absolute to the document."""
    if isinstance(schema, dict):
        return {
            k: DOCUMENT_URI + v if k == "$ref" and v.startswith("#") else _rooted(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rooted(v) for v in schema]
    return schema


async def test_openapi_is_valid_and_names_every_route(start: Start) -> None:
    client = await start()
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # OpenAPI 3.1 schema of the specification itself
    assert document_routes(document) == app_routes(client.server.app)
    for path, item in document["paths"].items():
        for parameter in re.findall(r"{(\w+)}", path):
            names = [p["name"] for p in item.get("parameters", []) if p["in"] == "path"]
            assert parameter in names, path


async def test_real_responses_match_the_document(start: Start) -> None:
    client = await start(keys=KEYS, rate_limit_per_minute=2, rate_limit_loopback=True)
    checker = Checker(await (await client.get("/openapi.json")).json())
    read, admin = bearer(READ_KEY), bearer(ADMIN_KEY)
    q = {"q": "How many hives do the allotment beekeepers keep?"}
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("/v1/search", "get", "/v1/search", {"params": q, "headers": read}),
        ("/v1/search", "get", "/v1/search", {"params": {"q": ""}, "headers": admin}),
        ("/v1/search", "get", "/v1/search", {"params": q}),
        ("/v1/search", "post", "/v1/search", {"json": {**q, "k": 3}, "headers": admin}),
        (
            "/v1/search/batch",
            "post",
            "/v1/search/batch",
            {"json": {"questions": [q["q"], ""]}, "headers": admin},
        ),
        ("/v1/articles", "get", "/v1/articles", {"params": {"limit": 2}, "headers": admin}),
        ("/v1/articles/{id}", "get", "/v1/articles/ferry", {"headers": admin}),
        ("/v1/articles/{id}", "get", "/v1/articles/none", {"headers": admin}),
        (
            "/v1/articles/{id}",
            "put",
            "/v1/articles/p1",
            {"json": {"title": "T", "text": "Seals."}, "headers": admin},
        ),
        (
            "/v1/articles/{id}",
            "put",
            "/v1/articles/p1",
            {"json": {"title": "T", "text": "Seals."}, "headers": admin},
        ),
        (
            "/v1/articles/{id}",
            "put",
            "/v1/articles/p2",
            {"json": {"title": "T", "text": "Seals."}, "headers": read},
        ),
        ("/v1/articles/{id}", "delete", "/v1/articles/p1", {"headers": admin}),
        ("/v1/articles/{id}", "delete", "/v1/articles/p1", {"headers": admin}),
        ("/v1/stats", "get", "/v1/stats", {"headers": admin}),
        ("/healthz", "get", "/healthz", {}),
        ("/readyz", "get", "/readyz", {}),
        ("/metrics", "get", "/metrics", {"headers": admin}),
        ("/openapi.json", "get", "/openapi.json", {"headers": admin}),
        ("/", "get", "/", {"params": q, "headers": admin}),
        ("/", "get", "/", {}),
        ("/key", "post", "/key", {"data": {"key": "wrong"}}),
    ]
    for path, method, url, options in calls:
        # A fresh allowance per call (this test checks shapes, not the rate limit)...
        client.server.app[LIMITER]._buckets.clear()
        response = await client.request(method.upper(), url, allow_redirects=False, **options)
        await checker.check(response, path, method)
    # ...and one 429, which is documented too.
    for _ in range(3):
        response = await client.get("/v1/stats")
    assert response.status == 429
    await checker.check(response, "/v1/stats", "get")
    statuses = {status for _, _, status in checker.checked}
    assert {"200", "201", "400", "401", "403", "404", "429"} <= statuses
