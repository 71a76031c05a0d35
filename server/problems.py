"""Errors as RFC 9457 problem details (``application/problem+json``), one place for all.

A ``detail`` is one line meant for the client: never a traceback, a server path or the
name of a library. What the operator needs goes to the log instead.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raised by a handler to answer with a problem; ``headers`` such as Retry-After."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = one_line(detail)
        self.headers = headers or {}


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem_body(status: int, detail: str) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": one_line(detail),
    }


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(problem_body(status, detail)).encode(),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


# What aiohttp's own refusals (no such route, wrong method, body too large) are told as.
HTTP_DETAILS = {
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    413: "The request body is too large.",
}
