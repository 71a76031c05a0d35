"""Pushed articles (the HTTP API's PUT and DELETE) through the ingest write path."""

from __future__ import annotations

import pytest

from retrieval.config import Settings
from retrieval.errors import LoadError
from retrieval.ingest import ingest
from retrieval.pruning import PUSH_ROOT
from retrieval.push import pushed_article, write_pushes
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, CORPUS_IDS, build_index


def ids(settings: Settings) -> set[str]:
    searcher = Searcher.open(settings, FakeEmbedder())
    try:
        return {s.article.id for s in searcher.articles()}
    finally:
        searcher.close()


def test_push_adds_replaces_and_removes_in_one_write(settings: Settings) -> None:
    build_index(settings.index_dir, [CORPUS])
    seals = pushed_article("seals", {"title": "Seals", "text": "Twelve seals."}, settings)
    assert seals.source == f"{PUSH_ROOT}seals" and seals.id == "seals"
    report = write_pushes(settings, FakeEmbedder(), [seals], ["ferry", "no-such-id"])
    assert {(c.kind, c.id) for c in report.changes} == {("added", "seals"), ("removed", "ferry")}
    assert ids(settings) == CORPUS_IDS - {"ferry"} | {"seals"}


def test_pushed_articles_survive_a_prune_of_the_configured_sources(settings: Settings) -> None:
    build_index(settings.index_dir, [CORPUS])
    page = {"title": "Seals", "text": "Twelve seals.", "url": "https://cms.example/seals"}
    write_pushes(settings, FakeEmbedder(), [pushed_article("seals", page, settings)])
    report = ingest([CORPUS], settings, FakeEmbedder(), prune=True)
    assert report.removed == 0
    assert "seals" in ids(settings)


def test_an_explicit_removal_is_not_held_back_by_the_prune_share(settings: Settings) -> None:
    build_index(settings.index_dir, [CORPUS])
    write_pushes(settings, FakeEmbedder(), [], sorted(CORPUS_IDS))
    assert ids(settings) == set()


@pytest.mark.parametrize(
    ("article_id", "record", "message"),
    [
        ("", {"title": "T", "text": "x"}, "article id"),
        ("x" * 201, {"title": "T", "text": "x"}, "article id"),
        ("a", {"text": "x"}, 'no "title"'),
        ("a", {"title": "T", "text": "x", "id": "b"}, "differs"),
        ("a", {"title": "T", "text": "x", "url": "file:///etc/passwd"}, "http"),
        ("a", {"title": "T", "text": "x", "extra": 1}, "unknown field"),
        ("a", {"title": "T", "text": {"nested": 1}}, 'no "text"'),
    ],
)
def test_bad_pushes_are_one_line_errors(
    settings: Settings, article_id: str, record: object, message: str
) -> None:
    with pytest.raises(LoadError, match=message):
        pushed_article(article_id, record, settings)
