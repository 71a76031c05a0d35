"""The /v1 JSON API. Every answer is the library's own serialization (``Answer.to_dict``,
``Article.to_dict``...), so `GET /v1/search` returns exactly what `citebot ask --json`
prints for the same question and options."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from retrieval import metrics
from retrieval.config import ServeSettings
from retrieval.errors import CitebotError, LoadError
from retrieval.records import Answer, failed_answer_dict

from .corpora import Corpora, Corpus
from .problems import Problem
from .requests import (
    SearchRequest,
    json_object,
    query_fields,
    search_filters,
    search_request,
)
from .security import Access, Keys

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORPORA: web.AppKey[Corpora] = web.AppKey("corpora", Corpora)
SERVE: web.AppKey[ServeSettings] = web.AppKey("serve", ServeSettings)
KEYS: web.AppKey[Keys] = web.AppKey("keys", Keys)
# Where the access middleware leaves what the request may do.
ACCESS: web.RequestKey[Access] = web.RequestKey("access", Access)
# The corpora a request leased (ended when it is answered).
LEASES: web.RequestKey[contextlib.AsyncExitStack] = web.RequestKey(
    "leases", contextlib.AsyncExitStack
)
# The access each route needs (read unless listed), by route name.
ADMIN_ROUTES = frozenset({"put_article", "delete_article"})
# Articles one page of GET /v1/articles lists by default, and at most.
PAGE_DEFAULT = 50
PAGE_MAX = 500


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=partial(json.dumps, ensure_ascii=False))


async def corpus_of(request: web.Request, name: str | None) -> Corpus:
    """The corpus ``name`` picks (none: the main one), leased until the request ends (see
    ``leases_middleware``): it is opened now if it was closed, and not closed meanwhile."""
    corpora = request.app[CORPORA]
    corpus = await request[LEASES].enter_async_context(corpora.use(name))
    metrics.corpus.set(corpus.name)
    return corpus


@web.middleware
async def leases_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ends the leases ``corpus_of`` takes when the request is answered."""
    async with contextlib.AsyncExitStack() as leases:
        request[LEASES] = leases
        return await handler(request)


async def answer(corpus: Corpus, asked: SearchRequest) -> Answer:
    """The library's answer to ``asked`` (library errors are mapped by the error middleware)."""
    return await corpus.holder.search(asked.question, asked.k, filters=asked.filters)


# -- search ------------------------------------------------------------------------------


async def search_get(request: web.Request) -> web.Response:
    asked = search_request(query_fields(request))
    found = await answer(await corpus_of(request, asked.corpus), asked)
    return json_response(found.to_dict())


async def search_post(request: web.Request) -> web.Response:
    asked = search_request(await json_object(request))
    found = await answer(await corpus_of(request, asked.corpus), asked)
    return json_response(found.to_dict())


async def search_batch(request: web.Request) -> web.Response:
    body = await json_object(request)
    questions = body.pop("questions", None)
    if not isinstance(questions, list):
        raise Problem(400, 'Give the questions as a list: {"questions": [...]}.')
    limit = request.app[SERVE].max_batch
    if not questions or len(questions) > limit:
        raise Problem(400, f"Give 1 to {limit} questions.")
    options = search_request({**body, "q": ""}, question_required=False)
    corpus = await corpus_of(request, options.corpus)
    await corpus.holder.check_filters(options.filters)  # once, not once a question

    def answer_all(searcher: Any) -> list[dict[str, Any]]:
        entries = []
        for number, question in enumerate(questions, start=1):
            if not isinstance(question, str):
                entries.append(failed_answer_dict(number, None, "the question is not text"))
                continue
            try:
                entries.append(
                    searcher.search(question, options.k, filters=options.filters).to_dict()
                )
            except CitebotError as exc:
                entries.append(failed_answer_dict(number, question, str(exc)))
            except Exception:  # one bad question costs only its own answer
                logger.exception("batch question %d failed", number)
                entries.append(
                    failed_answer_dict(number, question, "could not answer this question")
                )
        return entries

    return json_response({"answers": await corpus.holder.run(answer_all)})


# -- articles ----------------------------------------------------------------------------


def _page_number(request: web.Request, name: str, default: int, high: int) -> int:
    value = request.query.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) > high:
        raise Problem(400, f"{name} must be a whole number from 0 to {high}.")
    return int(value)


def _source_admits(value: str, source: str) -> bool:
    """The source filter's rule (as in SQL in the store): equal, or under it after / # :."""
    value, source = value.lower(), source.lower()
    if value[-1] in "/#:":
        return source.startswith(value)
    return source == value or any(source.startswith(value + mark) for mark in "/#:")


async def list_articles(request: web.Request) -> web.Response:
    fields = query_fields(request)
    unknown = sorted(set(fields) - {"offset", "limit", "source", "corpus"})
    if unknown:
        raise Problem(400, f"Unknown field(s): {', '.join(unknown)}.")
    offset = _page_number(request, "offset", 0, 10**9)
    limit = max(1, _page_number(request, "limit", PAGE_DEFAULT, PAGE_MAX))
    source = search_filters({"source": fields.get("source")}).source
    corpus = await corpus_of(request, fields.get("corpus"))
    summaries = await corpus.holder.articles()
    if source:
        summaries = [s for s in summaries if _source_admits(source, s.article.source)]
    page = summaries[offset : offset + limit]
    has_more = offset + len(page) < len(summaries)
    return json_response(
        {
            "articles": [s.to_dict() for s in page],
            "pagination": {
                "offset": offset,
                "limit": limit,
                "returned": len(page),
                "total": len(summaries),
                "has_more": has_more,
                "next_offset": offset + len(page) if has_more else None,
            },
        }
    )


async def get_article(request: web.Request) -> web.Response:
    corpus = await corpus_of(request, request.query.get("corpus"))
    found = await corpus.holder.article(request.match_info["id"])
    return json_response(found.to_dict())


async def stats(request: web.Request) -> web.Response:
    corpus = await corpus_of(request, request.query.get("corpus"))
    data = (await corpus.holder.stats()).to_dict()
    del data["path"]  # a server path is no client's business
    return json_response({"corpus": corpus.name, **data})


# -- pushes ------------------------------------------------------------------------------


async def put_article(request: web.Request) -> web.Response:
    from retrieval.push import pushed_article

    corpus = await corpus_of(request, request.query.get("corpus"))
    body = await json_object(request)
    try:
        article = pushed_article(request.match_info["id"], body, corpus.settings)
    except LoadError as exc:
        raise Problem(400, str(exc)) from None
    result = await corpus.pushes.put(article)
    if result.result == "skipped":
        raise Problem(400, f"The article was not added: {result.problem}")
    return json_response(result.to_dict(), status=201 if result.result == "added" else 200)


async def delete_article(request: web.Request) -> web.Response:
    corpus = await corpus_of(request, request.query.get("corpus"))
    result = await corpus.pushes.remove(request.match_info["id"])
    if result.result == "not_found":
        raise Problem(404, f"There is no article with id {result.id!r}.")
    return json_response(result.to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/search", search_get, name="search_get", allow_head=False)
    app.router.add_post("/v1/search", search_post, name="search_post")
    app.router.add_post("/v1/search/batch", search_batch, name="search_batch")
    app.router.add_get("/v1/articles", list_articles, name="list_articles", allow_head=False)
    app.router.add_get("/v1/articles/{id}", get_article, name="get_article", allow_head=False)
    app.router.add_put("/v1/articles/{id}", put_article, name="put_article")
    app.router.add_delete("/v1/articles/{id}", delete_article, name="delete_article")
    app.router.add_get("/v1/stats", stats, name="stats", allow_head=False)


def required_access(route_name: str | None) -> Access:
    return Access.ADMIN if route_name in ADMIN_ROUTES else Access.READ
