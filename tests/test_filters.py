"""Search filters (source, author, dates) applied inside both halves of retrieval, and the
suggestions that fill them in."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import BadFilterError
from retrieval.index import VectorIndex
from retrieval.index.filters import source_option
from retrieval.index.store import Store
from retrieval.records import SearchFilter
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, CORPUS_IDS, build_index

# The test corpus: orchestra.md (2023-10-02, Ines Halloran), ferry.txt (no date, no author),
# bakery.html (2024-02-11, Oskar Lindqvist), clubs.json#1 bees-2024 (2024-05-18, Hetty
# Osborne) and clubs.json#2 skatepark (2024-08-30, Dev Chaudhry).
QUESTION = "Fenwick Harbour ferry crossings timetable island council"


def ids(searcher: Searcher, filters: SearchFilter, question: str = QUESTION) -> set[str]:
    return {p.article.id for p in searcher.search(question, k=20, filters=filters).passages}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilter(), CORPUS_IDS),
        (SearchFilter(source="orchestra.md"), {"orchestra"}),
        (SearchFilter(source="clubs.json"), {"bees-2024", "skatepark"}),  # a file of two
        (SearchFilter(source="CLUBS.JSON#2"), {"skatepark"}),
        (SearchFilter(author="halloran"), {"orchestra"}),
        (SearchFilter(author="  Osborne "), {"bees-2024"}),
        (SearchFilter(after=date(2024, 1, 1)), {"bakery", "bees-2024", "skatepark"}),
        (SearchFilter(before=date(2024, 3, 1)), {"orchestra", "bakery"}),
        (SearchFilter(after=date(2024, 2, 11), before=date(2024, 2, 11)), {"bakery"}),  # inclusive
        (SearchFilter(source="clubs.json", after=date(2024, 6, 1)), {"skatepark"}),
    ],
)
def test_filters_admit_exactly_their_articles(
    corpus_searcher: Searcher, filters: SearchFilter, expected: set[str]
) -> None:
    answer = corpus_searcher.search(QUESTION, k=20, filters=filters)
    assert {p.article.id for p in answer.passages} == expected
    assert answer.filters == filters


def test_a_date_filter_leaves_out_articles_without_a_date(corpus_searcher: Searcher) -> None:
    assert "ferry" not in ids(corpus_searcher, SearchFilter(before=date(2100, 1, 1)))


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (SearchFilter(source="clubs"), 'No article matches source "clubs".'),
        (SearchFilter(author="Nobody"), 'No article matches author "Nobody".'),
        (
            SearchFilter(source="ferry.txt", after=date(2020, 1, 1)),
            'No article matches source "ferry.txt" · after 2020-01-01.',
        ),
    ],
)
def test_a_filter_that_admits_nothing_is_a_clear_error(
    corpus_searcher: Searcher, filters: SearchFilter, message: str
) -> None:
    with pytest.raises(BadFilterError) as caught:
        corpus_searcher.search(QUESTION, filters=filters)
    assert str(caught.value) == message


def test_an_empty_date_range_is_refused() -> None:
    with pytest.raises(BadFilterError, match="after 2024-05-01 is later than before 2024-04-01"):
        SearchFilter(after=date(2024, 5, 1), before=date(2024, 4, 1))


def test_blank_text_filters_nothing() -> None:
    assert not SearchFilter(source="  ", author="")
    assert SearchFilter(source=" a ").source == "a"


def test_filters_in_the_json_answer(corpus_searcher: Searcher) -> None:
    filters = SearchFilter(author="Lindqvist", after=date(2024, 1, 1))
    data = corpus_searcher.search(QUESTION, filters=filters).to_dict()
    assert data["filters"] == {"author": "Lindqvist", "after": "2024-01-01"}
    assert "filters" not in corpus_searcher.search(QUESTION).to_dict()


# -- inside retrieval, both halves ---------------------------------------------------------


def test_keyword_half_ranks_only_admitted_chunks(corpus_searcher: Searcher) -> None:
    store = corpus_searcher.index.store
    unfiltered = store.keyword_search(QUESTION, 2)
    filters = SearchFilter(source="clubs.json")
    admitted = set(store.admitted_chunk_ids(filters))
    assert not {i for i, _ in unfiltered} & admitted  # the best matches are elsewhere
    filtered = store.keyword_search(QUESTION, 2, filters)
    # Filtering inside the ranking still fills the limit (filtering after would leave none).
    assert len(filtered) == 2 and {i for i, _ in filtered} <= admitted
    everything = dict(store.keyword_search(QUESTION, 1000))
    assert [s for _, s in filtered] == sorted(
        (s for i, s in everything.items() if i in admitted), reverse=True
    )[:2]


def test_vector_search_among_ids_is_exact() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.empty(16)
    index.add(list(range(1000, 1300)), vectors)
    query = vectors[0]
    among = list(range(1001, 1300, 7))
    expected = sorted(among, key=lambda i: -float(vectors[i - 1000] @ query))[:5]
    assert [i for i, _ in index.search(query, 5, among=among)] == expected
    assert index.search(query, 5, among=[]) == []
    assert [i for i, _ in index.search(query, 5, among=[1299])] == [1299]


def write_distractors(folder: Path, count: int = 40) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"note-{n:02d}.txt").write_text(
            f"Harbour note {n}\n\nThe island council met about timetable {n} and the ferry"
            f" crossings of week {n}, among other business of the town."
        )
    return folder


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Searcher, Path]:
    """The test corpus plus 40 short notes under more/ that match the question well."""
    folder = tmp_path_factory.mktemp("mixed")
    write_distractors(folder / "docs" / "more")
    for path in CORPUS.iterdir():
        (folder / "docs" / path.name).write_bytes(path.read_bytes())
    settings = build_index(folder / "index", [folder / "docs"])
    return Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0), folder


@pytest.mark.parametrize(
    ("source", "candidates"),
    [
        # Few candidates; the nearest chunks overall are not admitted.
        ("clubs.json", 1),
        # Few candidates; most chunks admitted.
        ("more/", 1),
        # More candidates than chunks.
        ("clubs.json", 50),
    ],
)
def test_dense_half_under_a_filter_equals_an_index_of_the_admitted_articles(
    mixed: tuple[Searcher, Path], tmp_path: Path, source: str, candidates: int
) -> None:
    searcher, folder = mixed
    admitted = folder / "docs" / source
    alone = Searcher.open(build_index(tmp_path / "alone", [admitted]), FakeEmbedder())
    dense = {"fusion": "dense", "candidates": candidates, "min_confidence": 0.0}
    filtered = searcher.with_settings(**dense).search(
        QUESTION, k=3, filters=SearchFilter(source=source)
    )
    expected = alone.with_settings(**dense).search(QUESTION, k=3)
    assert [(p.article.title, p.char_start, round(p.score, 5)) for p in filtered.passages] == [
        (p.article.title, p.char_start, round(p.score, 5)) for p in expected.passages
    ]


# -- suggestions (no model) ----------------------------------------------------------------


def test_suggest_sources_completes_like_a_shell(tmp_path: Path) -> None:
    for path in ("news/world/a.txt", "news/world/b.txt", "news/local.txt", "blog/x.md"):
        (tmp_path / "docs" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / path).write_text(f"Title {path}\n\nSome text about {path}.")
    settings = build_index(tmp_path / "index", [tmp_path / "docs"])

    class NoModel(FakeEmbedder):
        def embed(self, texts):  # type: ignore[override]
            raise AssertionError("suggestions must not embed anything")

    searcher = Searcher.open(settings, NoModel())
    assert searcher.suggest_sources("") == ["blog/", "news/"]
    assert searcher.suggest_sources("N") == ["news/"]
    assert searcher.suggest_sources("news/") == ["news/local.txt", "news/world/"]
    assert searcher.suggest_sources("news/world/") == ["news/world/a.txt", "news/world/b.txt"]
    assert searcher.suggest_sources("news/", limit=1) == ["news/local.txt"]
    assert searcher.suggest_sources("%") == []
    # A suggested folder is a working filter.
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    answer = searcher.search("text about", k=10, filters=SearchFilter(source="news/world/"))
    assert {p.article.source for p in answer.passages} == {"news/world/a.txt", "news/world/b.txt"}


def test_source_option_of_files_of_several_articles_and_urls() -> None:
    assert source_option("clubs.json#2", 0) == "clubs.json"
    assert source_option("clubs.json#2", len("clubs.json#")) == "clubs.json#2"
    assert source_option("feed.jsonl:14", 2) == "feed.jsonl"
    assert source_option("https://example.org/2024/a.html", 0) == "https://example.org/"
    assert source_option("https://example.org/2024/a.html", 20) == "https://example.org/2024/"


def test_suggest_authors(corpus_searcher: Searcher) -> None:
    assert corpus_searcher.suggest_authors("") == [
        "Dev Chaudhry",
        "Hetty Osborne",
        "Ines Halloran",
        "Oskar Lindqvist",
    ]
    # Names starting with the text first, then names containing it.
    assert corpus_searcher.suggest_authors("os") == ["Oskar Lindqvist", "Hetty Osborne"]
    assert corpus_searcher.suggest_authors("_") == []
    assert corpus_searcher.suggest_authors("", limit=1) == ["Dev Chaudhry"]


# -- indexes written before date filters ---------------------------------------------------


def drop_day_column(store_path: Path) -> None:
    db = sqlite3.connect(store_path)
    db.execute("DROP INDEX articles_day")
    db.execute("DROP INDEX articles_filter")
    db.execute("ALTER TABLE articles DROP COLUMN day")
    db.commit()
    db.close()


def test_an_older_store_filters_by_date_read_only_and_gains_the_column_when_written(
    tmp_path: Path,
) -> None:
    settings = build_index(tmp_path / "index", [CORPUS])
    store_path = next((tmp_path / "index").glob("gen-*/store.sqlite"))
    drop_day_column(store_path)
    filters = SearchFilter(after=date(2024, 1, 1))
    read_only = Store(store_path, read_only=True)
    admitted = read_only.admitted_chunk_ids(filters)
    read_only.close()
    assert admitted
    writable = Store(store_path)
    assert writable.admitted_chunk_ids(filters) == admitted
    writable.commit()
    writable.close()
    db = sqlite3.connect(store_path)
    days = dict(db.execute("SELECT id, day FROM articles").fetchall())
    db.close()
    assert days == {
        "orchestra": "2023-10-02",
        "ferry": None,
        "bakery": "2024-02-11",
        "bees-2024": "2024-05-18",
        "skatepark": "2024-08-30",
    }
    assert settings.index_dir.exists()
