"""The sample articles that `citebot demo` indexes."""

from __future__ import annotations

from retrieval.cli import SAMPLE_QUESTION, SAMPLES_DIR
from retrieval.files import discover
from retrieval.loaders import load_file
from tests.helpers import SAMPLES


def test_samples_load_cleanly_in_every_format() -> None:
    assert SAMPLES_DIR.resolve() == SAMPLES.resolve()
    found, problems = discover([SAMPLES_DIR])
    assert problems == []
    assert {f.path.suffix for f in found} == {".md", ".txt", ".html", ".jsonl"}
    articles = []
    for source in found:
        loaded = load_file(source)
        assert loaded.problems == []
        articles.extend(loaded.articles)
    assert len(articles) == 5
    assert len({a.id for a in articles}) == 5
    for article in articles:
        assert 4 <= len(article.paragraphs) <= 8, article.id
        assert article.title and article.title != article.paragraphs[0]
    dated = [a for a in articles if a.date and a.url and a.author]
    assert len(dated) == 4  # all but the plain-text one


def test_one_sample_answers_the_demo_question() -> None:
    assert SAMPLE_QUESTION == "How do libraries lend tools?"
    (article,) = load_file(
        next(f for f in discover([SAMPLES_DIR])[0] if f.name == "tool-library.md")
    ).articles
    assert "library" in article.title.lower() and "tool" in article.title.lower()
    assert any("borrow up to three tools" in p for p in article.paragraphs)
