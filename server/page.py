"""The search page at ``/``: plain server-rendered HTML, no script needed.

``/?q=QUESTION`` (and the filters as query parameters) is an answer's shareable address.
An answer is shown as the CLI and the bot show it: the quote first with its citation and
its text-fragment link, then each passage of the first page trimmed around its
highlight; "More results" (``&all=1``) shows those below the relevance cut-off. Every
piece of text is escaped (``html.escape``), articles included.

Behind keys (and without ``[serve] public_page``), the page asks for a key and keeps it
in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from aiohttp import web

from retrieval.answer_text import citation
from retrieval.errors import BadQuestionError, CitebotError
from retrieval.records import WHICH_ARTICLE, Answer, Passage

from . import api
from .problems import Problem
from .requests import SearchRequest, query_fields, search_request
from .security import Access

KEY_COOKIE = "citebot_key"

STYLE = """
:root { color-scheme: light dark; --accent: #1a5fb4; --muted: #5e5c64; --mark: #fde68a; }
@media (prefers-color-scheme: dark) {
  :root { --accent: #8fb8ff; --muted: #b0aeb8; --mark: #6b5900; }
}
* { box-sizing: border-box; }
body { font: 17px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.3rem; margin: .5rem 0 1rem; }
h1 a { color: inherit; text-decoration: none; }
form.ask { display: grid; gap: .6rem; margin-bottom: 1.5rem; }
.row { display: flex; gap: .5rem; flex-wrap: wrap; }
.row > * { flex: 1 1 12rem; }
.row > button { flex: 0 0 auto; }
label { display: block; font-size: .9rem; color: var(--muted); }
input, select, button { font: inherit; padding: .5rem .6rem; border: 1px solid #8886;
  border-radius: .4rem; width: 100%; background: Canvas; color: CanvasText; }
button { background: var(--accent); color: #fff; border: 0; cursor: pointer; width: auto;
  padding: .5rem 1.2rem; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
details summary { cursor: pointer; color: var(--muted); }
blockquote.quote { font-size: 1.2rem; margin: 0 0 .4rem; padding-left: 1rem;
  border-left: 4px solid var(--accent); }
.cite { color: var(--muted); font-size: .95rem; margin: 0 0 1.5rem; }
article.result { border-top: 1px solid #8884; padding: 1rem 0; }
article.result h2 { font-size: 1rem; margin: 0 0 .3rem; }
.passage { white-space: pre-line; margin: .3rem 0; }
mark { background: var(--mark); color: inherit; padding: 0 .1em; }
a { color: var(--accent); overflow-wrap: anywhere; }
.more { display: inline-block; margin: 1rem 0; }
.notice { padding: .8rem 1rem; border-radius: .4rem; background: #8882; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
"""


def e(text: object) -> str:
    """Escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title>"
        '<link rel="stylesheet" href="/static/page.css"></head>'
        f'<body><main><h1><a href="/">citebot</a></h1>{body}</main></body></html>'
    )


def _field(name: str, label: str, value: str | None, kind: str = "text") -> str:
    return (
        f'<div><label for="{name}">{e(label)}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" value="{e(value or "")}"></div>'
    )


def search_form(fields: dict[str, str], corpora: list[str]) -> str:
    question = fields.get("q", "")
    filters = [
        _field("source", "Source (folder, file or site)", fields.get("source")),
        _field("author", "Author", fields.get("author")),
        _field("after", "On or after", fields.get("after"), "date"),
        _field("before", "On or before", fields.get("before"), "date"),
    ]
    if len(corpora) > 1:
        options = "".join(
            f'<option value="{e(n)}"{" selected" if n == fields.get("corpus") else ""}>{e(n)}</option>'
            for n in corpora
        )
        filters.insert(
            0,
            f'<div><label for="corpus">Collection</label><select id="corpus" name="corpus">{options}</select></div>',
        )
    opened = " open" if any(fields.get(n) for n in ("source", "author", "after", "before")) else ""
    return (
        '<form class="ask" method="get" action="/" role="search">'
        '<label for="q">Question</label>'
        '<div class="row">'
        f'<input id="q" name="q" type="search" value="{e(question)}" required'
        ' placeholder="What have we written about…?" autofocus>'
        '<button type="submit">Ask</button></div>'
        f'<details{opened}><summary>Filters</summary><div class="row">{"".join(filters)}</div></details>'
        "</form>"
    )


def _marked(passage: Passage) -> str:
    text, start, end = passage.trimmed()
    return e(text[:start]) + "<mark>" + e(text[start:end]) + "</mark>" + e(text[end:])


def _cite_link(passage: Passage) -> str:
    link = passage.link or passage.article.url
    if not link or not link.lower().startswith(("http://", "https://")):
        return ""
    return f' · <a href="{e(link)}" rel="noopener noreferrer">open at the passage</a>'


def _result(passage: Passage) -> str:
    copies = "; ".join(f"{_article_link(c.title, c.url)} ({e(c.source)})" for c in passage.copies)
    if copies and (more := passage.copy_count - len(passage.copies)) > 0:
        copies += f" and {more} more"
    return (
        f'<article class="result" aria-labelledby="r{passage.rank}">'
        f'<h2 id="r{passage.rank}">[{passage.rank}] {e(citation(passage, passage.context_paragraphs))}</h2>'
        f'<p class="passage">{_marked(passage)}</p>'
        + (f'<p class="cite">also in: {copies}</p>' if copies else "")
        + f'<p class="cite">{_cite_link(passage).removeprefix(" · ")}</p>'
        "</article>"
    )


def render_answer(answer: Answer, more_url: str | None) -> str:
    """The answer's HTML: the quote, the first page and, when asked, "More results"."""
    if answer.kind == WHICH_ARTICLE:
        listed = "".join(
            f'<li>{_article_link(a.title, a.url)} <span class="cite">({e(a.source)})</span></li>'
            for a in answer.nearest
        )
        return (
            '<section class="which-article" aria-live="polite"><p class="notice">Which article'
            " do you mean? Name it in the question, for example by its title:</p>"
            f"<ul>{listed}</ul></section>"
        )
    if not answer.answered:
        where = f" (among articles with {e(answer.filters.describe())})" if answer.filters else ""
        nearest = "".join(
            f'<li>{_article_link(a.title, a.url)} <span class="cite">({e(a.source)})</span></li>'
            for a in answer.nearest
        )
        return (
            f'<section class="not-covered" aria-live="polite"><p class="notice">The articles do not'
            f" seem to cover: <strong>{e(answer.question)}</strong>{where}</p>"
            + (f"<h2>Nearest articles</h2><ul>{nearest}</ul>" if nearest else "")
            + "</section>"
        )
    first = answer.passages[0]
    quote = (
        f'<blockquote class="quote">“{e(" ".join(first.highlight.split()))}”</blockquote>'
        f'<p class="cite">— [{first.rank}] {e(citation(first, first.context_paragraphs))}'
        f"{_cite_link(first)}</p>"
    )
    shown = answer.shown or answer.passages[:1]
    held_back = [p for p in answer.passages if p not in shown]
    parts = [quote, *(_result(p) for p in shown)]
    if answer.caveat:
        parts.insert(0, f'<p class="notice caveat">Note: {e(answer.caveat)}</p>')
    if held_back and more_url is None:
        parts.append('<h2 id="more">More results</h2>')
        parts += [_result(p) for p in held_back]
    elif held_back and more_url is not None:
        count = len(held_back)
        parts.append(f'<a class="more" href="{e(more_url)}">More results ({count})</a>')
    return f'<section class="answer" aria-live="polite">{"".join(parts)}</section>'


def _article_link(title: str, url: str | None) -> str:
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{e(url)}" rel="noopener noreferrer">{e(title)}</a>'
    return e(title)


def _page_url(fields: dict[str, str], **changes: str) -> str:
    query = {k: v for k, v in {**fields, **changes}.items() if v}
    return "/?" + urlencode(query)


def _key_form(next_url: str, wrong: bool) -> str:
    warning = '<p class="notice" role="alert">That key is not valid.</p>' if wrong else ""
    return (
        f'{warning}<form class="ask" method="post" action="/key">'
        "<p>This search needs a key from the operator.</p>"
        '<label for="key">Key</label>'
        '<div class="row"><input id="key" name="key" type="password" required autocomplete="current-password">'
        '<button type="submit">Use this key</button></div>'
        f'<input type="hidden" name="next" value="{e(next_url)}"></form>'
    )


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def search_page(request: web.Request) -> web.Response:
    corpora = request.app[api.CORPORA]
    if request.get(api.ACCESS, Access.NONE) < Access.READ:
        return _html(_layout("citebot: key needed", _key_form(request.path_qs, False)), 401)
    try:
        fields = query_fields(request)
        asked = search_request(fields, question_required=False)
    except Problem as exc:
        return _html(_layout("citebot", search_form({}, corpora.names) + _error(exc.detail)), 400)
    if any(not value for value in fields.values()):
        # The form sends its empty filters too: the shareable address leaves them out.
        raise web.HTTPSeeOther(_page_url(fields))
    form = search_form(fields, corpora.names)
    if not asked.question.strip():
        return _html(_layout("citebot", form))
    try:
        found = await _answer(request, asked)
    except (Problem, BadQuestionError) as exc:
        detail = exc.detail if isinstance(exc, Problem) else str(exc)
        status = exc.status if isinstance(exc, Problem) else 400
        return _html(_layout(f"citebot: {asked.question}", form + _error(detail)), status)
    more = None if asked.show_all else _page_url(fields, all="1")
    title = f"citebot: {asked.question}"
    return _html(_layout(title, form + render_answer(found, more)))


async def _answer(request: web.Request, asked: SearchRequest) -> Answer:
    try:
        return await api.answer(await api.corpus_of(request, asked.corpus), asked)
    except BadQuestionError:
        raise
    except CitebotError as exc:
        raise Problem(503, "The index cannot be used right now; try again later.") from exc


def _error(detail: str) -> str:
    return f'<p class="notice" role="alert">{e(detail)}</p>'


async def key_form(request: web.Request) -> web.Response:
    """POST /key: check the key typed into the page, keep it in a cookie, go back."""
    form = await request.post()
    key = str(form.get("key", ""))
    next_url = str(form.get("next", "/"))
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = "/"  # never a redirect off this site
    keys = request.app[api.KEYS]
    if keys.access(key) < Access.READ:
        return _html(_layout("citebot: key needed", _key_form(next_url, True)), 401)
    response = web.HTTPSeeOther(next_url)
    response.set_cookie(
        KEY_COOKIE, key, httponly=True, samesite="Strict", secure=request.secure, path="/"
    )
    raise response


async def style(request: web.Request) -> web.Response:
    response = web.Response(text=STYLE, content_type="text/css", charset="utf-8")
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", search_page, name="page", allow_head=False)
    app.router.add_post("/key", key_form, name="page_key")
    app.router.add_get("/static/page.css", style, name="page_style", allow_head=False)
