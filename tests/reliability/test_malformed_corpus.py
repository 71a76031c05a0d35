"""A few hundred malformed files across every format, and the good ones, in one ingest.

The command finishes with status 2, names every bad file or record with its reason,
prints no traceback, ingests the odd-but-valid files, and answers questions about the
good articles. (bench/bench_malformed.py runs the same corpus with the real model.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import retrieval.cli as cli_module
from retrieval.cli import cli
from tests.fakes import FakeEmbedder
from tests.reliability.malformed import GOOD_QUESTIONS, unexplained, write_corpus


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_module, "_embedder", lambda settings: FakeEmbedder())
    config = tmp_path / "answer-everything.toml"
    config.write_text("[search]\nmin_confidence = 0.0\n")
    monkeypatch.setenv("CITEBOT_CONFIG", str(config))


def test_malformed_corpus(tmp_path: Path, fake_model: None) -> None:
    corpus = write_corpus(tmp_path / "articles", variants=8, seed=7)
    assert len(corpus.bad) >= 250
    index = tmp_path / "index"

    result = CliRunner().invoke(cli, ["ingest", str(corpus.folder), "--index", str(index)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    skipped = dict(
        line.removeprefix("skipped ").split(": ", 1)
        for line in result.stderr.splitlines()
        if line.startswith("skipped ")
    )
    assert unexplained(corpus, skipped) == []
    # Nothing else went to the terminal but the report.
    assert all(line.startswith("skipped ") for line in result.stderr.splitlines())
    assert "40 articles" in result.stdout  # 5 good ones, 35 odd but valid

    batch = tmp_path / "questions.jsonl"
    batch.write_text("\n".join(json.dumps({"question": q}) for q in GOOD_QUESTIONS.values()))
    asked = CliRunner().invoke(cli, ["ask", "--batch", str(batch), "--index", str(index), "--json"])
    assert asked.exit_code == 0, asked.output
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    firsts = [a["results"][0]["article"]["id"] for a in answers]
    assert firsts == list(GOOD_QUESTIONS)
