"""The /v1 API against a real server: the same JSON as the CLI, batches, articles, pushes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from retrieval.cli import Runtime, cli
from retrieval.config import Settings, load_settings
from tests.fakes import FakeEmbedder
from tests.server.conftest import Start

# Questions shaped like the hidden set's: facts, numbers, who/when, and one off-topic.
QUESTIONS = [
    "When does the last ferry return from the island?",
    "How many hives do the allotment beekeepers keep?",
    "Where does the orchestra rehearse?",
    "What does the bakery co-op sell?",
    "Who designed the skatepark?",
    "What is the price of a season ticket to the moon?",
]
OPTION_SETS: list[dict[str, str]] = [
    {},
    {"k": "2"},
    {"k": "8"},
    {"source": "clubs.json"},
    {"after": "2024-01-01"},
    {"before": "2023-12-31", "k": "3"},
    {"author": "osborne"},
]


def config(index_settings: Settings, tmp_path: Path, min_confidence: float = 0.0) -> Path:
    path = tmp_path / "citebot.toml"
    path.write_text(
        f'index_dir = "{index_settings.index_dir}"\n'
        f"[search]\nmin_confidence = {min_confidence}\n"
        "[serve]\nrate_limit_per_minute = 0\n",
        encoding="utf-8",
    )
    return path


def ask_json(config_path: Path, question: str, options: dict[str, str]) -> dict[str, Any]:
    args = ["--config", str(config_path), "ask", question, "--json"]
    for name, value in options.items():
        args += ["-k" if name == "k" else f"--{name}", value]
    runtime = Runtime(make_embedder=lambda settings, **_: FakeEmbedder())
    result = CliRunner().invoke(cli, args, obj=runtime, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize("min_confidence", [0.0, 0.6])
async def test_get_and_post_search_equal_ask_json(
    start: Start, index_settings: Settings, tmp_path: Path, min_confidence: float
) -> None:
    path = config(index_settings, tmp_path, min_confidence)
    client = await start(settings=load_settings(path))
    not_covered = 0
    for question in QUESTIONS:
        for options in OPTION_SETS:
            expected = ask_json(path, question, options)
            got = await client.get("/v1/search", params={"q": question, **options})
            assert got.status == 200
            assert got.content_type == "application/json"
            assert await got.json() == expected, (question, options)
            body: dict[str, Any] = {"q": question, **options}
            if "k" in body:
                body["k"] = int(body["k"])
            posted = await client.post("/v1/search", json=body)
            assert await posted.json() == expected
            not_covered += not expected["answered"]
    # Both outcomes were compared: answers, and "not covered" with the nearest articles.
    assert (not_covered > 0) == (min_confidence > 0)


async def test_batch_answers_in_order_with_error_entries(start: Start) -> None:
    client = await start()
    questions: list[Any] = [QUESTIONS[0], "", QUESTIONS[1], 42, "x" * 1001]
    response = await client.post("/v1/search/batch", json={"questions": questions, "k": 2})
    assert response.status == 200
    answers = (await response.json())["answers"]
    assert [a.get("question") for a in answers] == [
        QUESTIONS[0],
        "",
        QUESTIONS[1],
        None,
        "x" * 1001,
    ]
    assert answers[0]["answered"] and len(answers[0]["results"]) == 2
    assert answers[1]["error"].startswith("Please ask a question")
    assert answers[1]["line"] == 2 and answers[3]["line"] == 4
    assert answers[3]["error"] == "the question is not text"
    assert "1,001 characters" in answers[4]["error"]
    too_many = await client.post("/v1/search/batch", json={"questions": ["q"] * 101})
    assert too_many.status == 400
    assert "1 to 100" in (await too_many.json())["detail"]


async def test_articles_are_paged_and_each_one_matches_the_cli(
    start: Start, index_settings: Settings, tmp_path: Path
) -> None:
    client = await start()
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        response = await client.get("/v1/articles", params={"offset": offset, "limit": 2})
        data = await response.json()
        page = data["pagination"]
        assert page["offset"] == offset and page["limit"] == 2
        assert page["returned"] == len(data["articles"]) <= 2
        assert page["has_more"] == (page["next_offset"] is not None)
        seen += [a["id"] for a in data["articles"]]
        offset = page["next_offset"]
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    only = await (await client.get("/v1/articles", params={"source": "clubs.json"})).json()
    assert {a["source"].split("#")[0] for a in only["articles"]} == {"clubs.json"}
    assert only["pagination"]["total"] == len(only["articles"]) >= 2

    path = config(index_settings, tmp_path)
    runtime = Runtime(make_embedder=lambda settings, **_: FakeEmbedder())
    for article_id in seen:
        cli_json = CliRunner().invoke(
            cli, ["--config", str(path), "article", article_id, "--json"], obj=runtime
        )
        api = await client.get(f"/v1/articles/{article_id}")
        assert await api.json() == json.loads(cli_json.stdout)
    missing = await client.get("/v1/articles/no-such-article")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"


async def test_stats_shows_no_server_path(start: Start, index_settings: Settings) -> None:
    client = await start()
    data = await (await client.get("/v1/stats")).json()
    assert data["articles"] == 5 and data["corpus"] == "default"
    assert str(index_settings.index_dir) not in json.dumps(data)
    unknown = await client.get("/v1/stats", params={"corpus": "sports"})
    assert unknown.status == 404


ARTICLE = {
    "title": "Harbour seals return to Fenwick",
    "text": "Harbour seals were seen at the river mouth for the first time in forty years."
    "\n\nVolunteers counted twelve grey seals on the sandbank on Sunday morning.",
    "url": "https://cms.example/seals",
    "date": "2025-02-01",
    "author": "Mara Quint",
}


async def test_push_is_searchable_when_answered_and_delete_removes_it(start: Start) -> None:
    client = await start()
    question = {"q": "how many grey seals were counted on the sandbank", "k": "1"}
    before = await (await client.get("/v1/search", params=question)).json()
    assert before["results"][0]["article"]["id"] != "seals-1"

    put = await client.put("/v1/articles/seals-1", json=ARTICLE)
    assert put.status == 201
    result = await put.json()
    assert result["result"] == "added" and result["searchable"] is True
    after = await (await client.get("/v1/search", params=question)).json()
    assert after["results"][0]["article"]["id"] == "seals-1"
    assert after["results"][0]["article"]["url"] == ARTICLE["url"]

    again = await client.put("/v1/articles/seals-1", json=ARTICLE)
    assert again.status == 200 and (await again.json())["result"] == "unchanged"
    changed = {**ARTICLE, "text": ARTICLE["text"].replace("twelve", "fifteen")}
    updated = await (await client.put("/v1/articles/seals-1", json=changed)).json()
    assert updated["result"] == "updated" and updated["generation"] > result["generation"]

    deleted = await client.delete("/v1/articles/seals-1")
    assert deleted.status == 200 and (await deleted.json())["result"] == "removed"
    gone = await (await client.get("/v1/search", params=question)).json()
    assert gone["results"][0]["article"]["id"] != "seals-1"
    assert (await client.delete("/v1/articles/seals-1")).status == 404
    assert (await client.get("/v1/articles/seals-1")).status == 404


async def test_pushes_arriving_together_are_one_write(start: Start) -> None:
    client = await start(push_batch_seconds=1.0)  # room for a slow machine
    generation = (await (await client.get("/v1/stats")).json())["updated"]
    responses = await asyncio.gather(
        *(
            client.put(f"/v1/articles/burst-{n}", json={**ARTICLE, "title": f"Seals {n}"})
            for n in range(8)
        )
    )
    results = [await r.json() for r in responses]
    assert {r["result"] for r in results} == {"added"}
    assert len({r["generation"] for r in results}) == 1
    stats = await (await client.get("/v1/stats")).json()
    assert stats["articles"] == 13 and stats["updated"] != generation


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"text": "No title here."}, 'no "title"'),
        ({"title": "Empty", "text": "   "}, 'no "text"'),
        ({"title": "T", "text": "x", "colour": "red"}, "unknown field(s): colour"),
        ({"title": "T" * 400, "text": "x"}, "max_title_chars"),
        (["not", "an", "object"], "JSON object"),
        ({"title": "T", "text": "x", "url": "javascript:alert(1)"}, "http:// or https://"),
    ],
)
async def test_a_bad_push_is_a_400_and_changes_nothing(
    start: Start, body: Any, detail: str
) -> None:
    client = await start()
    response = await client.put("/v1/articles/bad-1", json=body)
    assert response.status == 400
    problem = await response.json()
    assert detail in problem["detail"]
    assert (await (await client.get("/v1/stats")).json())["articles"] == 5
