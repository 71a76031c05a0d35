"""The search page over HTTP (its browser tests are in test_browser.py)."""

from __future__ import annotations

import html
import re
from typing import Any

from retrieval.config import Settings
from tests.helpers import with_search
from tests.server.conftest import KEYS, READ_KEY, Start

ANSWERED = "How many hives do the allotment beekeepers keep?"
OFF_TOPIC = "What is the price of a season ticket to the moon?"
HOSTILE = {
    "title": 'Seals <script>alert("t")</script> & "friends"',
    "text": "The <script>alert(1)</script> seals <b>bold</b> counted on the "
    "sandbank were twelve.\n\nA second paragraph <img src=x onerror=alert(2)>.",
    "url": "https://cms.example/seals?a=1&b=<2>",
}


def calibrated(settings: Settings) -> Settings:
    """The fake model answers the ferry question and not the off-topic one at 0.6."""
    return with_search(settings, min_confidence=0.6)


async def page(client: Any, **params: str) -> tuple[int, str]:
    response = await client.get("/", params=params)
    assert response.content_type == "text/html"
    return response.status, await response.text()


async def test_empty_page_has_a_labelled_form(start: Start) -> None:
    client = await start()
    status, text = await page(client)
    assert status == 200
    for name in ("q", "source", "author", "after", "before"):
        assert f'<label for="{name}">' in text and f'id="{name}" name="{name}"' in text
    assert '<form class="ask" method="get" action="/"' in text
    assert "<script" not in text  # works without JavaScript: there is none


async def test_answer_page_leads_with_the_quote_as_the_json_does(
    start: Start, index_settings: Settings
) -> None:
    client = await start(settings=calibrated(index_settings))
    data = await (await client.get("/v1/search", params={"q": ANSWERED})).json()
    status, text = await page(client, q=ANSWERED)
    assert status == 200
    first = data["results"][0]
    quote = re.search(r'<blockquote class="quote">“(.*?)”</blockquote>', text, re.S)
    assert quote and html.unescape(quote.group(1)) == " ".join(first["highlight"].split())
    assert html.escape(first["link"]) in text  # the text-fragment link
    assert f"<title>citebot: {html.escape(ANSWERED)}</title>" in text
    assert f'value="{html.escape(ANSWERED)}"' in text  # the question stays in the box
    held_back = [r for r in data["results"] if not r["shown"]]
    more = re.search(r'<a class="more" href="([^"]+)">More results \((\d+)\)</a>', text)
    assert more and int(more.group(2)) == len(held_back) > 0
    status, more_text = await page(client, q=ANSWERED, all="1")
    assert 'id="more">More results</h2>' in more_text
    assert more_text.count('<article class="result"') == len(data["results"])
    assert (
        html.unescape(more.group(1))
        == "/?q=" + ANSWERED.replace(" ", "+").replace("?", "%3F") + "&all=1"
    )


async def test_not_covered_names_the_nearest_articles(
    start: Start, index_settings: Settings
) -> None:
    client = await start(settings=calibrated(index_settings))
    data = await (await client.get("/v1/search", params={"q": OFF_TOPIC})).json()
    assert not data["answered"] and data["nearest"]
    _status, text = await page(client, q=OFF_TOPIC)
    assert "The articles do not seem to cover" in text
    for article in data["nearest"]:
        assert html.escape(article["title"]) in text


async def test_filters_are_kept_in_the_shareable_address(start: Start) -> None:
    client = await start()
    status, text = await page(client, q=ANSWERED, source="clubs.json", after="2020-01-01")
    assert status == 200
    assert 'id="source" name="source" type="text" value="clubs.json"' in text
    assert "<details open>" in text
    assert "source=clubs.json" in text and "after=2020-01-01" in text  # in "More results"


async def test_everything_shown_is_escaped(start: Start) -> None:
    client = await start()
    assert (await client.put("/v1/articles/hostile", json=HOSTILE)).status == 201
    status, text = await page(client, q="how many seals were counted on the sandbank", all="1")
    assert status == 200
    assert "<script>" not in text and "<b>bold</b>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert 'href="https://cms.example/seals?a=1&amp;b=&lt;2&gt;' in text
    status, echoed = await page(client, q='"><script>alert(9)</script>')
    assert "<script>" not in echoed and "&quot;&gt;&lt;script&gt;" in echoed


async def test_bad_input_is_a_message_on_the_page(start: Start) -> None:
    client = await start()
    status, text = await page(client, q="x" * 1001)
    assert status == 400 and 'role="alert"' in text and "1,001 characters" in text
    status, text = await page(client, q="ferry", after="yesterday")
    assert status == 400 and "YYYY-MM-DD" in text


async def test_behind_keys_the_page_asks_for_one(start: Start) -> None:
    client = await start(keys=KEYS)
    status, text = await page(client, q=ANSWERED)
    assert status == 401 and 'type="password"' in text and "blockquote" not in text
    wrong = await client.post("/key", data={"key": "nope", "next": "/?q=x"})
    assert wrong.status == 401 and "not valid" in await wrong.text()
    right = await client.post(
        "/key", data={"key": READ_KEY, "next": f"/?q={ANSWERED}"}, allow_redirects=False
    )
    assert right.status == 303 and right.headers["Location"].startswith("/?q=")
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, text = await page(client, q=ANSWERED)  # the client keeps the cookie
    assert status == 200 and "blockquote" in text
    offsite = await client.post(
        "/key", data={"key": READ_KEY, "next": "//evil.example/"}, allow_redirects=False
    )
    assert offsite.headers["Location"] == "/"


async def test_public_page_needs_no_key_but_the_api_still_does(start: Start) -> None:
    client = await start(keys=KEYS, public_page=True)
    status, text = await page(client, q=ANSWERED)
    assert status == 200 and "blockquote" in text
    assert (await client.get("/v1/search", params={"q": ANSWERED})).status == 401


def test_the_question_back_and_the_caveat_are_shown_escaped() -> None:
    from retrieval.records import WHICH_ARTICLE, Answer, ArticleRef
    from server.page import render_answer

    refs = (ArticleRef("a1", "Bees <b>&</b> mites", "clubs.json#1", "https://x.example/b"),)
    asked_back = render_answer(
        Answer("what does it say?", False, (), refs, kind=WHICH_ARTICLE), None
    )
    assert "Which article do you mean?" in asked_back
    assert "Bees &lt;b&gt;&amp;&lt;/b&gt; mites" in asked_back and "<b>" not in asked_back
    assert "do not seem to cover" not in asked_back
