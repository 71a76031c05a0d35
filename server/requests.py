"""Reading what a request asks: a question and its options from a query string (GET, the
search page) or a JSON body (POST), checked into library values or a 400 Problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from retrieval.errors import BadQuestionError
from retrieval.records import SearchFilter
from retrieval.text import printable

from .problems import Problem

# Most passages one question may ask for, as `citebot ask -k`.
MAX_K = 50
SEARCH_FIELDS = ("q", "k", "source", "author", "after", "before", "all", "corpus")


@dataclass(frozen=True)
class SearchRequest:
    question: str
    k: int | None
    filters: SearchFilter
    show_all: bool
    corpus: str | None


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Problem(400, f"{name} must be text.")
    if value != printable(value):
        raise Problem(400, f"{name} is not valid Unicode text.")
    return value


def _int(fields: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Problem(400, f"{name} must be a whole number from {low} to {high}.")
    return value


def _flag(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in (
        "",
        "0",
        "false",
        "no",
        "off",
        "1",
        "true",
        "yes",
        "on",
    ):
        return value.lower() in ("1", "true", "yes", "on")
    raise Problem(400, f"{name} must be true or false.")


def _date(fields: Mapping[str, Any], name: str) -> date | None:
    value = _text(fields, name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(400, f"{name} must be a date as YYYY-MM-DD.") from None


def search_filters(fields: Mapping[str, Any]) -> SearchFilter:
    try:
        return SearchFilter(
            source=_text(fields, "source"),
            author=_text(fields, "author"),
            after=_date(fields, "after"),
            before=_date(fields, "before"),
        )
    except BadQuestionError as exc:  # an empty date range
        raise Problem(400, str(exc)) from None


def search_request(fields: Mapping[str, Any], *, question_required: bool = True) -> SearchRequest:
    """The search a query string or JSON body asks for; unknown fields are refused."""
    unknown = sorted(set(fields) - set(SEARCH_FIELDS))
    if unknown:
        raise Problem(400, f"Unknown field(s): {', '.join(unknown)}.")
    question = _text(fields, "q")
    if question is None and question_required:
        raise Problem(400, "Please ask a question: give it as q.")
    return SearchRequest(
        question=question or "",
        k=_int(fields, "k", 1, MAX_K),
        filters=search_filters(fields),
        show_all=_flag(fields, "all"),
        corpus=_text(fields, "corpus"),
    )


def query_fields(request: web.Request) -> dict[str, str]:
    """The query string's fields; a field given twice is refused (which one was meant?)."""
    fields: dict[str, str] = {}
    for name, value in request.query.items():
        if name in fields:
            raise Problem(400, f"{name} is given more than once.")
        fields[name] = value
    return fields


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    if request.content_type != "application/json":
        raise Problem(415, "Send the body as application/json.")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Problem(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Problem(400, "The body must be a JSON object.")
    return body
