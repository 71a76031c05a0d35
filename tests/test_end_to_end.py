"""End to end: the installed `citebot` executable with the real bundled model.

Each command that loads the model costs several seconds on a small machine, so the
corpus is ingested once for the module and the questions go through one batch call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import BROKEN, CORPUS, CORPUS_IDS

pytestmark = pytest.mark.model

CITEBOT = Path(sys.executable).with_name("citebot")

# Paraphrases, not the articles' wording: (question, article id, paragraph that answers it).
PARAPHRASES = [
    ("On which night of the week does the community orchestra practise?", "orchestra", 3),
    ("How often will boats sail to the island once winter begins?", "ferry", 1),
    ("What is the price of joining the bread co-operative?", "bakery", 2),
    ("What parasite killed the bee colonies?", "bees-2024", 2),
    ("Who drew up the plans for the new skating area?", "skatepark", 1),
    ("Why are there fewer crews to staff the boats?", "ferry", 2),
]


def citebot(*args: str | Path, env_extra: dict[str, str] | None = None, timeout: float = 300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEBOT_")}
    env.update(
        {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    )
    env.update(env_extra or {})
    return subprocess.run(
        [str(CITEBOT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert CITEBOT.exists(), f"citebot is not installed next to {sys.executable}"
    folder = tmp_path_factory.mktemp("e2e") / "index"
    result = citebot("ingest", CORPUS, "--index", folder)
    assert result.returncode == 0, result.stderr
    assert "5 articles from 4 files" in result.stdout
    return folder


def test_ask_json(index: Path) -> None:
    result = citebot(
        "ask", "What does it cost to join the bakery co-op?", "--index", index, "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answered"] is True
    assert data["question"] == "What does it cost to join the bakery co-op?"
    results = data["results"]
    assert 1 <= len(results) <= 5
    for rank, item in enumerate(results, start=1):
        assert item["rank"] == rank
        assert isinstance(item["score"], float)
        assert isinstance(item["passage"], str) and item["passage"]
        assert item["highlight"] and item["highlight"] in item["passage"]
        first, last = item["paragraphs"]
        assert 1 <= first <= last
        article = item["article"]
        assert {"id", "title", "source", "url", "date"} <= set(article)
        assert article["id"] in CORPUS_IDS
    top = results[0]["article"]
    assert top["id"] == "bakery"
    assert top["source"] == "bakery.html"
    assert top["url"] == "https://fenwick-courier.example/food/bakery-co-op"
    assert top["date"] == "2024-02-11"


def test_ask_batch_answers_paraphrases_in_order(index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    lines = [json.dumps({"question": q}) for q, _, _ in PARAPHRASES]
    lines.insert(2, json.dumps({"text": "a line without a question"}))
    lines.append(json.dumps({"question": "What is the best recipe for lasagne?"}))
    batch.write_text("\n".join(lines) + "\n")
    result = citebot("ask", "--batch", batch, "--index", index, "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(PARAPHRASES) + 2

    error = answers.pop(2)
    assert error["answered"] is False and error["results"] == [] and error["error"]
    unrelated = answers.pop()
    assert unrelated["answered"] is False
    assert unrelated["results"] == []
    assert unrelated["nearest"]

    for answer, (question, article_id, paragraph) in zip(answers, PARAPHRASES, strict=True):
        assert answer["question"] == question
        assert answer["answered"] is True, question
        hits = [
            r
            for r in answer["results"][:3]
            if r["article"]["id"] == article_id
            and r["paragraphs"][0] <= paragraph <= r["paragraphs"][1]
        ]
        assert hits, (
            f"{question!r}: {[(r['article']['id'], r['paragraphs']) for r in answer['results']]}"
        )


def test_articles_article_and_stats(index: Path) -> None:
    listed = citebot("articles", "--index", index)
    assert listed.returncode == 0, listed.stderr
    assert {line.split("\t")[0] for line in listed.stdout.splitlines()} == CORPUS_IDS
    assert "5 articles" in listed.stderr

    listed_json = json.loads(citebot("articles", "--index", index, "--json").stdout)
    assert {a["id"] for a in listed_json["articles"]} == CORPUS_IDS

    shown = citebot("article", "ferry", "--index", index)
    assert shown.returncode == 0
    assert shown.stdout.startswith(
        "Winter Ferry Timetable Cut to Eight Crossings a Day\nferry.txt\n"
    )
    assert "[5] The island's community council" in shown.stdout

    shown_json = json.loads(citebot("article", "Beekeepers", "--index", index, "--json").stdout)
    assert shown_json["id"] == "bees-2024"
    assert len(shown_json["paragraphs"]) == 5

    stats = citebot("stats", "--index", index)
    assert stats.returncode == 0
    assert "all-MiniLM-L6-v2 (384 dimensions)" in stats.stdout
    stats_json = json.loads(citebot("stats", "--index", index, "--json").stdout)
    assert stats_json["articles"] == 5
    assert stats_json["dimension"] == 384
    assert stats_json["chunks"] >= 5


def test_errors_are_one_line_messages(index: Path, tmp_path: Path) -> None:
    assert_clean_failure(
        citebot("ask", "Is anyone there?", "--index", tmp_path / "missing"), "no index at"
    )
    assert_clean_failure(citebot("ask", "", "--index", index), "empty")
    assert_clean_failure(citebot("ask", "w" * 10_000, "--index", index), "10,000 characters")
    assert_clean_failure(citebot("article", "zeppelin", "--index", index), "no article")


def test_ingest_broken_folder(tmp_path: Path) -> None:
    result = citebot("ingest", BROKEN, "--index", tmp_path / "index")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 4, result.stderr
    for name, reason in [
        ("photo.txt", "not a text file"),
        ("invalid.json", "invalid JSON"),
        ("empty.md", "no text"),
        ("mixed.jsonl:2", "invalid JSON"),
    ]:
        assert any(f"{name}: {reason}" in line for line in skipped), (name, skipped)
    assert "2 articles from 4 files" in result.stdout
    listed = json.loads(citebot("articles", "--index", tmp_path / "index", "--json").stdout)
    assert {a["id"] for a in listed["articles"]} == {"lighthouse", "swim-club"}


def test_demo(tmp_path: Path) -> None:
    result = citebot("demo", env_extra={"XDG_DATA_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Indexed 5 sample articles (")
    assert "Q: How do libraries lend tools?" in out
    first = out.split("\n[2] ")[0]
    assert (
        "[1] Borrow a Drill, Not a Debt: Inside Alderbrook's Tool Library · tool-library.md"
        in first
    )
    assert "https://alderbrook-ledger.example/2024/03/tool-library" in first
    assert "**" in first  # the highlighted sentence is marked
    # The answer leads: the best sentence quoted, with its citation.
    quote = out.split("\n\nQ: How do libraries lend tools?\n\n", 1)[1]
    assert quote.startswith("“") and "lending tools" in quote.split("”")[0]
    assert "   — [1] Borrow a Drill, Not a Debt" in quote
    assert not list(tmp_path.iterdir()), "the demo leaves nothing in the user's data folder"
