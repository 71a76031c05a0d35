"""Quality measures on labelled questions: hit@k, the first page, the highlight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.evaluate import (
    LabelledQuestion,
    evaluate,
    first_hit,
    highlight_is_right,
    load_questions,
    page_report,
)
from retrieval.records import Answer, ArticleRef, Passage
from retrieval.search import Searcher

QUESTIONS = [
    LabelledQuestion(
        "When does the orchestra rehearse on Thursday evenings?", "orchestra", ("Thursday evening",)
    ),
    LabelledQuestion("What does a monthly ferry pass cost island residents?", "ferry", ("£48",)),
    LabelledQuestion("What happens to surplus bread at closing time?", "bakery", ("food bank",)),
    LabelledQuestion("Who designed the skate park?", "skatepark", ("no such answer anywhere",)),
]


def passage(rank: int, article: str, text: str, highlight: str, shown: bool) -> Passage:
    start = text.index(highlight)
    return Passage(
        rank, 1.0 / rank, text, highlight, start, start + len(highlight),
        ArticleRef(article, article, f"{article}.md"), (1, 1), 0, len(text), (rank,), shown,
    )  # fmt: skip


def test_page_report_by_hand() -> None:
    q = LabelledQuestion("q", "a", ("forty",))
    answers = [
        Answer("q", True, (
            passage(1, "b", "Nothing here. Or here.", "Nothing here.", True),
            passage(2, "a", "The answer is forty. Yes.", "Yes.", True),
            passage(3, "a", "It is forty again.", "It is forty again.", False),
        )),
        Answer("q", True, (
            passage(1, "a", "Forty it is. Fine.", "Forty it is.", True),
            passage(2, "c", "Other text.", "Other text.", False),
        )),
    ]  # fmt: skip
    report = page_report(answers, [q, q], page_size=5)
    assert report.passages == 1.5  # 2 shown, then 1
    assert report.own_article_share == pytest.approx(2 / 3)
    assert report.hit_at_3 == 1.0
    # Trimmed views are whole passages here: 22 + 25 characters, and 18.
    assert report.chars_median == pytest.approx((47 + 18) / 2)
    assert report.full_chars_median == report.chars_median
    # First hit passages: "The answer is forty." is not highlighted, "Forty it is." is.
    assert report.highlight_questions == 2 and report.highlight_right == 0.5
    assert report.highlight_chars == (len("Yes.") + len("Forty it is.")) / 2
    # A page size of 1 leaves the first answer's own-article passage off the page.
    assert page_report(answers, [q, q], page_size=1).own_article_share == 0.5


def test_evaluate_on_the_test_corpus(corpus_searcher: Searcher) -> None:
    report = evaluate(corpus_searcher, QUESTIONS)
    assert report.questions == 4
    assert report.hit_at[1] == 0.75 and report.hit_at[10] == 0.75  # the last has no answer
    assert [m.question for m in report.misses] == [QUESTIONS[3].question]
    answers = [corpus_searcher.search(q.question, k=10) for q in QUESTIONS]
    assert report.page == page_report(answers, QUESTIONS, corpus_searcher.settings.k)
    hits = [a.passages[first_hit(a, q) - 1] for a, q in zip(answers, QUESTIONS[:3], strict=False)]
    assert (
        report.page.highlight_right
        == sum(highlight_is_right(p, q) for p, q in zip(hits, QUESTIONS, strict=False)) / 3
    )
    data = report.to_dict()
    assert set(data["page"]) >= {"own_article_share", "hit_at_3", "chars_median"}


def test_eval_command(corpus_settings, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from retrieval.cli import Runtime, cli
    from tests.fakes import FakeEmbedder

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps({"question": q.question, "article_id": q.article_id, "answers": q.answers})
            for q in QUESTIONS
        )
    )
    assert len(load_questions(questions)) == 4
    config = tmp_path / "c.toml"
    config.write_text("[search]\nmin_confidence = 0.0\n")
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    args = [
        "--config",
        str(config),
        "eval",
        str(questions),
        "--index",
        str(corpus_settings.index_dir),
    ]
    result = CliRunner().invoke(cli, args, obj=runtime)
    assert result.exit_code == 0, result.output
    assert "hit@1 0.750" in result.output
    assert "first page: " in result.output and "highlight holds the answer in" in result.output
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"], obj=runtime).output)
    assert data["page"]["highlight_questions"] == 3
