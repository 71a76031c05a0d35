"""A few hundred malformed files across every format, and the good ones, in one ingest.

The command finishes with status 2, names every bad file or record with its reason,
prints no traceback, ingests the odd-but-valid files, and answers questions about the
good articles. (bench/bench_malformed.py runs the same corpus with the real model.)
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from retrieval.cli import Runtime, cli
from retrieval.config import SearchSettings, Settings
from tests.fakes import FakeEmbedder
from tests.reliability.malformed import GOOD_QUESTIONS, unexplained, write_corpus


def run(*args: str | Path) -> Result:
    """The CLI with the fake model, given through its public Runtime. The fake model's
    similarities are not calibrated for "not covered": every question is answered."""
    settings = Settings(search=SearchSettings(min_confidence=0.0))
    runtime = Runtime(settings=settings, make_embedder=lambda s, **options: FakeEmbedder())
    return CliRunner().invoke(cli, [str(a) for a in args], obj=runtime)


def test_malformed_corpus(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "articles", variants=8, seed=7)
    assert len(corpus.bad) >= 250
    index = tmp_path / "index"

    result = run("ingest", corpus.folder, "--index", index)
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
    asked = run("ask", "--batch", batch, "--index", index, "--json")
    assert asked.exit_code == 0, asked.output
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    firsts = [a["results"][0]["article"]["id"] for a in answers]
    assert firsts == list(GOOD_QUESTIONS)
