"""What the index remembers of the web is trusted only while its articles are as recorded."""

from __future__ import annotations

from pathlib import Path

from retrieval.config import ChunkSettings
from retrieval.index import lock_for_writing
from retrieval.records import Article
from retrieval.web.fetch import Validators
from retrieval.web.state import Link, Resource, WebState

PAGE = "https://example.org/a"


def commit(index_dir: Path, articles: list[tuple[Article, str]], resources: list[Resource]) -> None:
    """One committed generation with these articles (and content hashes) and resources."""
    with (
        lock_for_writing(index_dir, "fake") as lock,
        lock.next_generation(4, ChunkSettings()) as index,
    ):
        for article, digest in articles:
            if index.store.article(article.id):
                index.store.delete_article(article.id)
            index.store.add_article(article, digest, [])
        index.store.save_web_resources(r.row() for r in resources)


def test_a_resource_is_trusted_while_its_articles_are_indexed_as_recorded(tmp_path: Path) -> None:
    article = Article(PAGE, "A", "Text of a.", PAGE, PAGE)
    page = Resource(PAGE, "page", Validators('"v1"', None), "2024-01-01", (PAGE,))
    feed = Resource(
        "https://example.org/feed",
        "feed",
        Validators(None, "Mon"),
        None,
        (),
        (Link(PAGE, "s1", "A"),),
    )
    commit(tmp_path, [(article, "h1")], [page, feed])
    with WebState.open(tmp_path) as state:
        assert state.resource(PAGE) == page
        assert state.resource("https://example.org/feed") == feed
        assert state.articles((PAGE,)) == [article]
    # The article changed since (another source, or a later read): the ETag no longer vouches.
    commit(tmp_path, [(article, "h2")], [])
    with WebState.open(tmp_path) as state:
        assert state.resource(PAGE) is None
        assert state.resource("https://example.org/feed") == feed  # it vouches for no article


def test_a_resource_whose_article_was_skipped_is_not_recorded(tmp_path: Path) -> None:
    page = Resource(PAGE, "page", Validators('"v1"', None), None, (PAGE,))
    commit(tmp_path, [], [page])
    with WebState.open(tmp_path) as state:
        assert state.resource(PAGE) is None


def test_no_index_is_an_empty_state(tmp_path: Path) -> None:
    with WebState.open(tmp_path / "nothing") as state:
        assert state.resource(PAGE) is None and state.articles((PAGE,)) == []
