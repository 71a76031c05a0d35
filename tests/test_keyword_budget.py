"""Keyword search within a budget: BM25 ranks the question's rarest terms first and leaves
out more common ones once their matches would pass the budget; the rarest term is always
kept, so a question of common words only still gets results."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.index.keywords import TERM_SAMPLE_ROWS
from retrieval.index.store import Store
from retrieval.records import Article, Chunk


def write_store(path: Path, bodies: list[str]) -> None:
    """One article a body, each one chunk; chunk ids follow the order of ``bodies``."""
    store = Store(path)
    for number, body in enumerate(bodies):
        article = Article(f"a{number}", f"Notice {number}", body, "notices.jsonl")
        chunk = Chunk(article.id, 0, body, 0, len(body), 1, 1)
        store.add_article(article, str(number), [chunk])
    store.commit()
    store.close()


# 40 chunks about the council, 10 of them also about the harbour, one also about the ferry.
BODIES = [
    "The council met on Tuesday."
    + (" The harbour wall needs repair." if number % 4 == 0 else "")
    + (" The ferry timetable changes in winter." if number == 20 else "")
    for number in range(40)
]
FERRY_CHUNK = 21  # chunk ids start at 1


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("keyword") / "store.sqlite"
    write_store(path, BODIES)
    opened = Store(path, read_only=True)
    yield opened
    opened.close()


def test_term_counts_are_exact_in_a_small_index(store: Store) -> None:
    counts = store.term_counts(["council", "harbour", "ferry", "bicycle"])
    assert counts == {"council": 40, "harbour": 10, "ferry": 1, "bicycle": 0}


def test_common_terms_are_left_out_for_rarer_ones_within_the_budget(store: Store) -> None:
    plan = store.keyword_plan(["council", "harbour", "ferry", "bicycle"], budget=12)
    assert plan.terms == ("ferry", "harbour")  # 1 + 10 chunks fit; 40 more would not
    assert plan.first_rowid == 0
    # A budget the terms fit in keeps them all (the term found nowhere is dropped).
    assert store.keyword_plan(["council", "harbour", "ferry", "bicycle"], 51).terms == (
        "ferry",
        "harbour",
        "council",
    )


@pytest.mark.parametrize("budget", [1, 2, 5, 11, 12, 50, 51, 1000])
@pytest.mark.parametrize("order", list(itertools.permutations(["council", "harbour", "ferry"])))
def test_a_term_is_only_ever_dropped_for_rarer_ones(
    store: Store, budget: int, order: tuple[str, ...]
) -> None:
    counts = store.term_counts(order)
    plan = store.keyword_plan(order, budget)
    assert "ferry" in plan.terms  # the rarest term is never dropped
    dropped = set(order) - set(plan.terms)
    assert all(counts[d] >= counts[k] for d in dropped for k in plan.terms)
    assert sum(counts[t] for t in plan.terms) <= budget or len(plan.terms) == 1


def test_the_rare_term_decides_the_ranking_when_common_ones_are_dropped(store: Store) -> None:
    results = store.keyword_search("Did the council change the ferry?", 5, budget=5)
    assert [chunk_id for chunk_id, _ in results] == [FERRY_CHUNK]
    unbounded = store.keyword_search("Did the council change the ferry?", 50)
    assert unbounded[0][0] == FERRY_CHUNK and len(unbounded) == 40


def test_a_question_of_common_words_only_still_gets_results(store: Store) -> None:
    """Over the budget with its rarest term alone, BM25 ranks that term's newest matches."""
    results = store.keyword_search("What did the council decide?", 50, budget=5)
    assert sorted(chunk_id for chunk_id, _ in results) == [36, 37, 38, 39, 40]
    plan = store.keyword_plan(["council"], budget=5)
    assert plan.terms == ("council",) and plan.first_rowid == 36
    # The budget never takes away a whole question's matches.
    assert len(store.keyword_search("harbour council", 50, budget=1)) == 1


def test_a_term_left_out_still_scores_the_matches_of_the_kept_ones(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    # "council" in 31 chunks, "harbour" in 2: a budget of 5 keeps "harbour" alone.
    write_store(
        path,
        ["The council met again."] * 30 + ["Harbour repairs.", "The harbour council members met."],
    )
    short, with_council = 31, 32  # chunk ids
    store = Store(path, read_only=True)
    plan = store.keyword_plan(["harbour", "council"], budget=5)
    assert plan.terms == ("harbour",) and plan.rescoring == ("council",)
    results = store.keyword_search("harbour council", 10, budget=5, exact=False)
    # Only the kept term's matches are ranked, the one holding "council" too first.
    assert [chunk_id for chunk_id, _ in results] == [with_council, short]
    # Ranked by BM25 over the whole index, they come in unbounded BM25's order: "council",
    # in 31 of 32 chunks, weighs next to nothing, and the shorter chunk wins.
    exact = store.keyword_search("harbour council", 10, budget=5)
    unbounded = store.keyword_search("harbour council", 10)
    assert [i for i, _ in exact] == [i for i, _ in unbounded[:2]] == [short, with_council]
    assert [s for _, s in exact] == pytest.approx([s for _, s in unbounded[:2]], rel=1e-12)
    # Past RESCORE_FACTOR x the budget a term is too costly to count, and only left out.
    assert store.keyword_plan(["harbour", "council"], budget=2).rescoring == ()
    # A search that ranks its matches again by exact BM25 counts fewer (31 > 3 x 5).
    assert store.keyword_plan(["harbour", "council"], 5, rescore_factor=3).rescoring == ()
    store.close()


def test_an_index_within_the_budget_ranks_every_term(store: Store) -> None:
    # 40 chunks: a budget of 40 bounds nothing, though the terms' matches add up to 51.
    results = store.keyword_search("Did the council change the ferry?", 50, budget=40)
    assert results == store.keyword_search("Did the council change the ferry?", 50)
    assert len(results) == 40  # "council" was ranked, not dropped for "ferry"


def test_counts_are_estimated_from_a_sample_in_a_large_index(tmp_path: Path) -> None:
    """Past TERM_SAMPLE_ROWS chunks, counts come from a sample: close for common terms, and
    a rare term missed by the sample still counts as present (1), never absent."""
    chunks = TERM_SAMPLE_ROWS * 3
    bodies = [
        "Market report."
        + (" Rain all week." if n % 2 else "")
        + (" Eclipse seen." if n == 7 else "")
        for n in range(chunks)
    ]
    write_store(tmp_path / "store.sqlite", bodies)
    store = Store(tmp_path / "store.sqlite", read_only=True)
    try:
        counts = store.term_counts(["market", "rain", "eclipse", "volcano"])
        assert counts["market"] == pytest.approx(chunks, rel=0.02)
        assert counts["rain"] == pytest.approx(chunks / 2, rel=0.1)
        assert 1 <= counts["eclipse"] < 100
        assert counts["volcano"] >= 1  # the sample cannot tell absent from rare
        results = store.keyword_search("eclipse market rain", 10, budget=1000)
        assert results[0][0] == 8  # the eclipse chunk: the rare term was kept
    finally:
        store.close()


def test_search_settings_pass_the_budget_to_keyword_search(tmp_path: Path) -> None:
    from retrieval.config import Settings
    from retrieval.ingest import ingest
    from retrieval.search import Searcher
    from tests.fakes import FakeEmbedder
    from tests.helpers import CORPUS, with_search

    settings = Settings(index_dir=tmp_path / "index")
    ingest([CORPUS], settings, FakeEmbedder())
    # In the test corpus "ferry" is in 3 chunks, "council" in 4 and "members" in 5.
    question = "council members ferry"

    def searcher(budget: int, exact: bool) -> Searcher:
        changed = with_search(
            settings,
            fusion="keyword",
            min_confidence=0.0,
            keyword_budget=budget,
            exact_keyword_scores=exact,
        )
        return Searcher.open(changed, FakeEmbedder())

    searchers = {
        (budget, exact): searcher(budget, exact)
        for budget in (3, 12, 10**9)
        for exact in (False, True)
    }
    try:
        # Ranked by FTS5 within the budget: only the kept term's matches.
        within = searchers[3, False].search(question, k=10).passages
        assert within and {p.article.id for p in within} == {"ferry"}
        wider = searchers[12, False].search(question, k=10).passages
        assert {p.article.id for p in wider} > {"ferry"}
        # Exact scores: the dense half's chunks (here every chunk of the small corpus) are
        # scored too, so the budget changes nothing (scores up to floating-point rounding).
        unbounded = searchers[10**9, True].search(question, k=10).passages
        for budget in (3, 12):
            exact = searchers[budget, True].search(question, k=10).passages
            assert [p.chunk_ids for p in exact] == [p.chunk_ids for p in unbounded]
            assert [p.score for p in exact] == pytest.approx([p.score for p in unbounded])
        assert {p.article.id for p in unbounded} > {"ferry"}
    finally:
        for opened in searchers.values():
            opened.close()


@pytest.mark.parametrize("budget", [40, 1000, None])
def test_within_the_budget_exact_scores_change_nothing(store: Store, budget: int | None) -> None:
    """An index of no more chunks than the budget: FTS5's own ranking of every match, as
    before exact scores, and nothing to add for the dense half."""
    for question in ["Did the council change the ferry?", "harbour wall", "winter ferry"]:
        exact = store.keyword_search(question, 50, budget=budget)
        assert exact == store.keyword_search(question, 50, budget=budget, exact=False)
        assert exact == store.keyword_search(question, 50)
        assert store.keyword_scores(question, range(1, 41), budget) == {}
