"""The OpenAPI 3.1 description of every route (served at /openapi.json).

Written by hand, kept honest by tests: every route of the app is here and nothing else
is, and real responses validate against these schemas.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_NULLABLE_TEXT = {"type": ["string", "null"]}

_ARTICLE_REF = {
    "type": "object",
    "required": ["id", "title", "source", "url", "date", "author"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "source": {"type": "string"},
        "url": _NULLABLE_TEXT,
        "date": _NULLABLE_TEXT,
        "author": _NULLABLE_TEXT,
    },
}

_SPAN = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}

_PASSAGE = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "rank",
        "score",
        "passage",
        "highlight",
        "highlight_span",
        "paragraphs",
        "char_span",
        "chunk_ids",
        "pages",
        "link",
        "article",
        "shown",
        "context_span",
        "context_cut",
        "context_paragraphs",
        "copies",
        "copy_count",
    ],
    "properties": {
        "rank": {"type": "integer", "minimum": 1},
        "score": {"type": "number"},
        "passage": {"type": "string", "description": "The verbatim passage."},
        "highlight": {"type": "string", "description": "The sentence that answers best."},
        "highlight_span": _SPAN,
        "paragraphs": _SPAN,
        "char_span": _SPAN,
        "chunk_ids": {"type": "array", "items": {"type": "integer"}},
        "pages": {"oneOf": [_SPAN, {"type": "null"}]},
        "link": {**_NULLABLE_TEXT, "description": "The article's URL with a text fragment."},
        "article": {"$ref": "#/components/schemas/ArticleRef"},
        "shown": {"type": "boolean", "description": "On the first page (above the cut-off)."},
        "context_span": _SPAN,
        "context_cut": {"type": "array", "items": {"type": "boolean"}},
        "context_paragraphs": _SPAN,
        "copies": {
            "type": "array",
            "description": "Other articles telling the same story: the first 10, in ingest order.",
            "items": {"$ref": "#/components/schemas/ArticleRef"},
        },
        "copy_count": {
            "type": "integer",
            "minimum": 0,
            "description": "How many other articles tell the same story, named or not.",
        },
    },
}

_FILTERS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string"},
        "author": {"type": "string"},
        "after": {"type": "string", "format": "date"},
        "before": {"type": "string", "format": "date"},
    },
}

_ANSWER = {
    "type": "object",
    "description": "Exactly what `citebot ask --json` prints.",
    "additionalProperties": False,
    "required": ["question", "answered", "confidence", "results", "nearest", "caveat", "kind"],
    "properties": {
        "question": {"type": "string"},
        "answered": {"type": "boolean"},
        "confidence": {"type": "number"},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Passage"}},
        "nearest": {
            "type": "array",
            "description": "When not answered: the nearest articles.",
            "items": {"$ref": "#/components/schemas/ArticleRef"},
        },
        "filters": {"$ref": "#/components/schemas/Filters"},
        "caveat": {
            **_NULLABLE_TEXT,
            "description": "What the question names that the passages do not mention.",
        },
        "kind": {
            "enum": ["passages", "article", "which_article"],
            "description": "Passages; an article's opening; or the question back (in nearest).",
        },
    },
}

_FAILED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["line", "question", "error", "answered", "results"],
    "properties": {
        "line": {"type": "integer"},
        "question": _NULLABLE_TEXT,
        "error": {"type": "string"},
        "answered": {"const": False},
        "results": {"type": "array", "maxItems": 0},
    },
}

_SUMMARY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "source", "url", "date", "author", "chunks", "paragraphs"],
    "properties": {
        **_ARTICLE_REF["properties"],  # type: ignore[dict-item]
        "chunks": {"type": "integer"},
        "paragraphs": {"type": "integer"},
    },
}

_ARTICLE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "source", "url", "date", "author", "paragraphs"],
    "properties": {
        **_ARTICLE_REF["properties"],  # type: ignore[dict-item]
        "paragraphs": {"type": "array", "items": {"type": "string"}},
        "pages": {"type": "array", "items": {"type": "integer"}},
    },
}

_PAGINATION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["offset", "limit", "returned", "total", "has_more", "next_offset"],
    "properties": {
        "offset": {"type": "integer"},
        "limit": {"type": "integer"},
        "returned": {"type": "integer"},
        "total": {"type": "integer"},
        "has_more": {"type": "boolean"},
        "next_offset": {"type": ["integer", "null"]},
    },
}

_STATS = {
    "type": "object",
    "required": ["corpus", "articles", "chunks", "model", "dimension", "size_bytes"],
    "additionalProperties": False,
    "properties": {
        "corpus": {"type": "string"},
        "articles": {"type": "integer"},
        "chunks": {"type": "integer"},
        "model": {"type": "string"},
        "dimension": {"type": "integer"},
        "size_bytes": {"type": "integer"},
        "created": {"type": "string"},
        "updated": {"type": "string"},
        "backend": {"type": "string"},
        "quantization": _NULLABLE_TEXT,
        "vector_index": {"type": "string"},
        # The segments (docs/storage.md): vectors in the main file, chunks written since,
        # main-file chunks removed since, and the last compaction (null: never).
        "main_vectors": {"type": "integer"},
        "segment_chunks": {"type": "integer"},
        "masked_chunks": {"type": "integer"},
        "last_compaction": _NULLABLE_TEXT,
    },
}

_PUSH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "result", "searchable", "searchable_at", "generation", "seconds"],
    "properties": {
        "id": {"type": "string"},
        "result": {"enum": ["added", "updated", "unchanged", "removed"]},
        "searchable": {
            "type": "boolean",
            "description": "True: the change is visible to searches from searchable_at on.",
        },
        "searchable_at": {"type": "string", "format": "date-time"},
        "generation": {"type": "integer"},
        "seconds": {"type": "number", "description": "From receiving the push to searchable."},
    },
}

_PUSHED_ARTICLE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "text"],
    "properties": {
        "title": {"type": "string"},
        "text": {"type": "string", "description": "Paragraphs separated by blank lines."},
        "url": {"type": "string"},
        "date": {"type": "string"},
        "author": {"type": "string"},
    },
}

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}

_SEARCH_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["q"],
    "properties": {
        "q": {"type": "string"},
        "k": {"type": "integer", "minimum": 1, "maximum": 50},
        "source": {"type": "string"},
        "author": {"type": "string"},
        "after": {"type": "string", "format": "date"},
        "before": {"type": "string", "format": "date"},
        "all": {"type": "boolean"},
        "corpus": {"type": "string"},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Bad input (an empty or over-long question, a bad field)",
        401: "No usable key",
        403: "The key may not do this",
        404: "Not found",
        413: "The body is too large",
        415: "The body is not JSON",
        429: "Too many requests (see Retry-After)",
        503: "Not ready, or the index cannot be used now",
    }
    problem = {"content": {"application/problem+json": {"schema": _ref("Problem")}}}
    return {str(s): {"description": words[s], **problem} for s in statuses}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_SEARCH_PARAMS = [
    {**_query("q", {"type": "string"}, "The question."), "required": True},
    _query("k", {"type": "integer", "minimum": 1, "maximum": 50}, "Passages to return."),
    _query("source", {"type": "string"}, "Only articles from this source, folder or site."),
    _query("author", {"type": "string"}, "Only articles whose author contains this."),
    _query("after", {"type": "string", "format": "date"}, "Dated on or after."),
    _query("before", {"type": "string", "format": "date"}, "Dated on or before."),
    _query("all", {"type": "boolean"}, "Accepted for the page's sake; JSON lists all k."),
    _query(
        "corpus",
        {"type": "string"},
        'Which corpus (default: the main one, "default" or the first).',
    ),
]
_CORPUS = _query(
    "corpus", {"type": "string"}, 'Which corpus (default: the main one, "default" or the first).'
)
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_READ: list[dict[str, list[str]]] = [{"bearer": []}]
# 404: the corpus= named is not served.
_ERRORS = (400, 401, 403, 404, 413, 415, 429, 503)


@cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "citebot",
            "version": "1",
            "description": "Answers questions with verbatim, cited passages from a collection"
            " of articles. Errors are application/problem+json (RFC 9457).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Answer": _ANSWER,
                "Passage": _PASSAGE,
                "ArticleRef": _ARTICLE_REF,
                "Filters": _FILTERS,
                "FailedAnswer": _FAILED,
                "ArticleSummary": _SUMMARY,
                "Article": _ARTICLE,
                "Pagination": _PAGINATION,
                "Stats": _STATS,
                "PushResult": _PUSH,
                "PushedArticle": _PUSHED_ARTICLE,
                "Problem": _PROBLEM,
                "SearchBody": _SEARCH_BODY,
            },
        },
        "security": _READ,
        "paths": {
            "/v1/search": {
                "get": {
                    "operationId": "search_get",
                    "summary": "Answer a question",
                    "parameters": _SEARCH_PARAMS,
                    "responses": {
                        "200": _json(_ref("Answer"), "The answer"),
                        **_problems(*_ERRORS),
                    },
                },
                "post": {
                    "operationId": "search_post",
                    "summary": "Answer a question (fields as a JSON body)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SearchBody")}},
                    },
                    "responses": {
                        "200": _json(_ref("Answer"), "The answer"),
                        **_problems(*_ERRORS),
                    },
                },
            },
            "/v1/search/batch": {
                "post": {
                    "operationId": "search_batch",
                    "summary": "Answer up to 100 questions, in order",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["questions"],
                                    "properties": {
                                        "questions": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                            "minItems": 1,
                                            "maxItems": 100,
                                        },
                                        **{
                                            k: v
                                            for k, v in _SEARCH_BODY["properties"].items()  # type: ignore[attr-defined]
                                            if k != "q"
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["answers"],
                                "additionalProperties": False,
                                "properties": {
                                    "answers": {
                                        "type": "array",
                                        "items": {"oneOf": [_ref("Answer"), _ref("FailedAnswer")]},
                                    }
                                },
                            },
                            "One entry per question; a bad one is an error entry",
                        ),
                        **_problems(*_ERRORS),
                    },
                },
            },
            "/v1/articles": {
                "get": {
                    "operationId": "list_articles",
                    "summary": "List the articles, a page at a time",
                    "parameters": [
                        _query("offset", {"type": "integer", "minimum": 0}, "Skip this many."),
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 500},
                            "Page size (50).",
                        ),
                        _query("source", {"type": "string"}, "Only articles from this source."),
                        _CORPUS,
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["articles", "pagination"],
                                "additionalProperties": False,
                                "properties": {
                                    "articles": {
                                        "type": "array",
                                        "items": _ref("ArticleSummary"),
                                    },
                                    "pagination": _ref("Pagination"),
                                },
                            },
                            "A page of articles",
                        ),
                        **_problems(400, 401, 404, 429, 503),
                    },
                }
            },
            "/v1/articles/{id}": {
                "parameters": [_ID],
                "get": {
                    "operationId": "get_article",
                    "summary": "One article with its paragraphs (as `citebot article --json`)",
                    "parameters": [_CORPUS],
                    "responses": {
                        "200": _json(_ref("Article"), "The article"),
                        **_problems(401, 404, 429, 503),
                    },
                },
                "put": {
                    "operationId": "put_article",
                    "summary": "Add or replace an article (admin key)",
                    "parameters": [_CORPUS],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("PushedArticle")}},
                    },
                    "responses": {
                        "200": _json(_ref("PushResult"), "Replaced (or unchanged); searchable"),
                        "201": _json(_ref("PushResult"), "Added; searchable"),
                        **_problems(*_ERRORS),
                    },
                },
                "delete": {
                    "operationId": "delete_article",
                    "summary": "Remove an article (admin key)",
                    "parameters": [_CORPUS],
                    "responses": {
                        "200": _json(_ref("PushResult"), "Removed; no longer found"),
                        **_problems(401, 403, 404, 429, 503),
                    },
                },
            },
            "/v1/stats": {
                "get": {
                    "operationId": "stats",
                    "summary": "Article and chunk counts, the model, the size",
                    "parameters": [_CORPUS],
                    "responses": {
                        "200": _json(_ref("Stats"), "The index's statistics"),
                        **_problems(401, 404, 429, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is up (no key needed)",
                    "security": [],
                    "responses": {
                        "200": _json(
                            {"type": "object", "properties": {"status": {"const": "up"}}}, "Up"
                        )
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "The main corpus is open and the model loaded (no key needed)",
                    "security": [],
                    "parameters": [
                        _query(
                            "corpus",
                            {"type": "string"},
                            "Which corpus to report on (default: the main one); not opened.",
                        )
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status", "corpus", "open", "corpora"],
                                "properties": {
                                    "status": {"const": "ready"},
                                    "corpus": {"type": "string"},
                                    "open": {"type": "boolean"},
                                    "corpora": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "Ready",
                        ),
                        **_problems(404, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text format)",
                    "responses": {
                        "200": {
                            "description": "The metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_problems(401, 429),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no key needed)",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                }
            },
            "/": {
                "get": {
                    "operationId": "page",
                    "summary": "The search page (HTML); /?q=... is an answer's address",
                    "parameters": [p for p in _SEARCH_PARAMS if p["name"] != "q"]
                    + [_query("q", {"type": "string"}, "The question.")],
                    "responses": {
                        "200": {"description": "The page", "content": {"text/html": {}}},
                        "401": {
                            "description": "The page asking for a key",
                            "content": {"text/html": {}},
                        },
                    },
                }
            },
            "/key": {
                "post": {
                    "operationId": "page_key",
                    "summary": "The search page's key form: keeps a valid key in a cookie",
                    "security": [],
                    "requestBody": {
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "key": {"type": "string"},
                                        "next": {"type": "string"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {
                        "303": {"description": "Back to the page, with the key kept"},
                        "401": {
                            "description": "The key is not valid",
                            "content": {"text/html": {}},
                        },
                    },
                }
            },
            "/static/page.css": {
                "get": {
                    "operationId": "page_style",
                    "summary": "The search page's style sheet",
                    "security": [],
                    "responses": {"200": {"description": "CSS", "content": {"text/css": {}}}},
                }
            },
        },
    }
