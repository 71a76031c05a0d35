"""The access log: one line per request, without what the request asked.

aiohttp's default line holds the request line, query string included: ``GET
/v1/search?q=…`` would write every reader's question to the server's log. A question can
be private (who asked what is not the operator's business), so the line names the method,
the path and the outcome, never the query string or a header (keys travel in one).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class AccessLogger(AbstractAccessLogger):
    """``127.0.0.1 "GET /v1/search" 200 1234 0.012s``: no query string, no headers."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote or "-",
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )
