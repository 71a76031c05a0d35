"""`citebot serve` over several corpora: each request picks one with ``corpus=``, a search
never returns another corpus's article, a push lands in one corpus only, an unknown name
is a 404, ``--corpus`` restricts, and corpora other than the main one open on first use."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp.test_utils import TestClient
from click.testing import CliRunner

from retrieval import metrics
from retrieval.cli import cli as citebot
from retrieval.config import Settings, load_settings
from server.cli import served_corpora
from server.corpora import Corpora
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index
from tests.server.conftest import serving

QUESTIONS = [
    "When does the orchestra rehearse?",
    "What time does the ferry leave?",
    "What does the bakery sell?",
    "orchestra concert",
    "ferry timetable",
]
ARTICLE = {
    "title": "Grey seals on the sandbank",
    "text": "Volunteers counted twelve grey seals resting on the sandbank at low tide.",
}

Serve = Callable[[dict[str, Settings], str], Awaitable[tuple[TestClient[Any, Any], Corpora]]]


def write_config(folder: Path) -> Path:
    """Two corpora on the same topics: b holds copies of a's articles under other names."""
    a_sources, b_sources = folder / "a-articles", folder / "b-articles"
    a_sources.mkdir()
    b_sources.mkdir()
    for name in ("orchestra.md", "ferry.txt", "bakery.html"):
        shutil.copy(CORPUS / name, a_sources / name)
        shutil.copy(CORPUS / name, b_sources / f"b-{name}")
    build_index(folder / "a", [a_sources])
    build_index(folder / "b", [b_sources])
    path = folder / "citebot.toml"
    path.write_text(
        '[corpora.a]\nindex_dir = "a"\nsources = ["a-articles"]\n'
        '[corpora.b]\nindex_dir = "b"\nsources = ["b-articles"]\n'
        "[search]\nmin_confidence = 0.0\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    clients: list[TestClient[Any, Any]] = []

    async def started(
        served: dict[str, Settings], main: str
    ) -> tuple[TestClient[Any, Any], Corpora]:
        metrics.disable()
        metrics.enable()
        corpora = Corpora(served, lambda s: FakeEmbedder(), default=main)
        client = await serving(corpora, served[main].serve)
        clients.append(client)
        return client, corpora

    yield started
    for client in clients:
        await client.close()
    metrics.disable()


async def ids_of(client: TestClient[Any, Any], corpus: str) -> set[str]:
    listed = await (await client.get("/v1/articles", params={"corpus": corpus})).json()
    return {a["id"] for a in listed["articles"]}


async def found_ids(client: TestClient[Any, Any], question: str, corpus: str) -> set[str]:
    response = await client.get("/v1/search", params={"q": question, "k": "5", "corpus": corpus})
    assert response.status == 200
    return {r["article"]["id"] for r in (await response.json())["results"]}


async def test_every_corpus_is_served_and_a_search_stays_in_its_corpus(
    config: Path, serve: Serve
) -> None:
    client, corpora = await serve(*served_corpora(load_settings(config), None, None))
    assert corpora.names == ["a", "b"]
    a_ids, b_ids = await ids_of(client, "a"), await ids_of(client, "b")
    assert len(a_ids) == len(b_ids) == 3 and not a_ids & b_ids
    for question in QUESTIONS:
        from_a, from_b = (
            await found_ids(client, question, "a"),
            await found_ids(client, question, "b"),
        )
        assert from_a and from_a <= a_ids
        assert from_b and from_b <= b_ids
    # POST takes the corpus in its body; without one, the main corpus (here the first, a).
    posted = await client.post("/v1/search", json={"q": QUESTIONS[0], "corpus": "b"})
    assert {r["article"]["id"] for r in (await posted.json())["results"]} <= b_ids
    assert await found_ids(client, QUESTIONS[1], "") <= a_ids
    batch = await client.post("/v1/search/batch", json={"questions": QUESTIONS, "corpus": "b"})
    for answer in (await batch.json())["answers"]:
        assert {r["article"]["id"] for r in answer["results"]} <= b_ids
    stats_a = await (await client.get("/v1/stats", params={"corpus": "a"})).json()
    stats_b = await (await client.get("/v1/stats", params={"corpus": "b"})).json()
    assert (stats_a["corpus"], stats_b["corpus"]) == ("a", "b")
    some_b = sorted(b_ids)[0]
    assert (await client.get(f"/v1/articles/{some_b}", params={"corpus": "b"})).status == 200
    assert (await client.get(f"/v1/articles/{some_b}", params={"corpus": "a"})).status == 404
    scraped = await (await client.get("/metrics")).text()
    assert 'corpus="a"' in scraped and 'corpus="b"' in scraped


async def test_a_push_to_one_corpus_is_not_visible_in_the_other(config: Path, serve: Serve) -> None:
    client, _ = await serve(*served_corpora(load_settings(config), None, None))
    put = await client.put("/v1/articles/seals-1", params={"corpus": "a"}, json=ARTICLE)
    assert put.status == 201 and (await put.json())["searchable"] is True
    question = "how many grey seals were counted on the sandbank"
    assert "seals-1" in await found_ids(client, question, "a")
    assert "seals-1" not in await found_ids(client, question, "b")
    assert "seals-1" not in await ids_of(client, "b")
    assert (await client.get("/v1/articles/seals-1", params={"corpus": "b"})).status == 404
    assert (await client.delete("/v1/articles/seals-1", params={"corpus": "b"})).status == 404
    assert "seals-1" in await ids_of(client, "a")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/search?q=ferry&corpus=nope", None),
        ("POST", "/v1/search", {"q": "ferry", "corpus": "nope"}),
        ("POST", "/v1/search/batch", {"questions": ["ferry"], "corpus": "nope"}),
        ("GET", "/v1/articles?corpus=nope", None),
        ("GET", "/v1/articles/x?corpus=nope", None),
        ("GET", "/v1/stats?corpus=nope", None),
        ("PUT", "/v1/articles/x?corpus=nope", ARTICLE),
        ("DELETE", "/v1/articles/x?corpus=nope", None),
        ("GET", "/readyz?corpus=nope", None),
    ],
)
async def test_an_unknown_corpus_is_a_404_naming_no_path(
    config: Path, serve: Serve, method: str, path: str, body: Any
) -> None:
    client, _ = await serve(*served_corpora(load_settings(config), None, None))
    response = await client.request(method, path, json=body)
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    detail = (await response.json())["detail"]
    assert "nope" in detail and str(config.parent) not in detail and "\n" not in detail


async def test_other_corpora_open_on_first_use_and_readyz_reports_each(
    config: Path, serve: Serve
) -> None:
    client, corpora = await serve(*served_corpora(load_settings(config), None, None))
    assert corpora.open_names() == ["a"]  # only the main corpus at start
    ready = await (await client.get("/readyz")).json()
    assert ready == {"status": "ready", "corpus": "a", "open": True, "corpora": ["a", "b"]}
    assert (await (await client.get("/readyz", params={"corpus": "b"})).json())["open"] is False
    await found_ids(client, QUESTIONS[0], "b")
    assert (await (await client.get("/readyz", params={"corpus": "b"})).json())["open"] is True
    assert sorted(corpora.open_names()) == ["a", "b"]


async def test_the_page_offers_a_corpus_selector_only_with_several(
    config: Path, serve: Serve
) -> None:
    settings = load_settings(config)
    several, _ = await serve(*served_corpora(settings, None, None))
    page = await (await several.get("/", params={"q": QUESTIONS[0], "corpus": "b"})).text()
    assert '<select id="corpus" name="corpus">' in page
    assert '<option value="b" selected>' in page
    one, _ = await serve(*served_corpora(settings, None, "b"))
    assert 'id="corpus"' not in await (await one.get("/")).text()


async def test_the_corpus_option_serves_only_that_corpus(config: Path, serve: Serve) -> None:
    served, main = served_corpora(load_settings(config), None, "b")
    assert (list(served), main) == (["b"], "b")
    client, _ = await serve(served, main)
    b_ids = await ids_of(client, "b")
    assert await found_ids(client, QUESTIONS[0], "") <= b_ids  # b is the main corpus now
    assert (await client.get("/v1/search", params={"q": "ferry", "corpus": "a"})).status == 404


def test_the_index_option_serves_that_folder_as_default(config: Path) -> None:
    served, main = served_corpora(load_settings(config), config.parent / "b", None)
    assert main == "default" and list(served) == ["default"]
    assert served["default"].index_dir == config.parent / "b"
    with pytest.raises(click.UsageError):
        served_corpora(load_settings(config), config.parent / "b", "a")


def test_serve_refuses_an_unknown_corpus_before_starting(config: Path) -> None:
    result = CliRunner().invoke(citebot, ["--config", str(config), "serve", "--corpus", "nope"])
    assert result.exit_code == 2
    assert "no corpus named 'nope'" in result.output and "Traceback" not in result.output
