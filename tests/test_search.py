"""Search over the test corpus with the fake embedder: ranking, passages, paging, look-ups."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval.config import SearchSettings, Settings
from retrieval.errors import ArticleNotFoundError, BadQuestionError
from retrieval.index import ChunkRow
from retrieval.records import Answer, Passage
from retrieval.search import Searcher, _Candidate, fuse, group_passages, rank_passages
from tests.fakes import FakeEmbedder
from tests.helpers import build_index

# (question, article id, paragraph that answers it, words the highlight must contain)
SPECIFIC = [
    ("When does the orchestra rehearse on Thursday evenings?", "orchestra", 3, "Thursday"),
    ("Why does the orchestra need more cellists?", "orchestra", 4, "cellists"),
    ("How many return crossings will the winter ferry make?", "ferry", 1, "eight"),
    ("What does a monthly ferry pass cost island residents?", "ferry", 4, "£48"),
    ("How much does one share in the bakery co-operative cost?", "bakery", 2, "twenty-five"),
    ("What happens to surplus bread at closing time?", "bakery", 4, "food bank"),
    ("How do the beekeepers treat hives against the varroa mite?", "bees-2024", 3, "oxalic"),
    ("When is the skate park closed because of noise?", "skatepark", 4, "nine"),
]


def covers(paragraphs: tuple[int, int], paragraph: int) -> bool:
    return paragraphs[0] <= paragraph <= paragraphs[1]


@pytest.mark.parametrize(("question", "article_id", "paragraph", "word"), SPECIFIC)
def test_the_right_article_and_paragraph_come_first(
    corpus_searcher: Searcher, question: str, article_id: str, paragraph: int, word: str
) -> None:
    answer = corpus_searcher.search(question)
    assert answer.answered
    top = answer.passages[0]
    assert top.rank == 1
    assert top.article.id == article_id
    assert covers(top.paragraphs, paragraph)
    assert word in top.highlight


def test_passages_are_verbatim_spans_with_verbatim_highlights(corpus_searcher: Searcher) -> None:
    for question, *_ in SPECIFIC:
        answer = corpus_searcher.search(question, k=10)
        for passage in answer.passages:
            article = corpus_searcher.article(passage.article.id)
            assert passage.text == article.text[passage.char_start : passage.char_end]
            assert passage.highlight
            assert passage.text[passage.highlight_start : passage.highlight_end] == (
                passage.highlight
            )
            first, last = passage.paragraphs
            assert 1 <= first <= last <= len(article.paragraphs)
            assert passage.text.startswith(article.paragraphs[first - 1][:20]) or (
                passage.text[:20] in article.paragraphs[first - 1]
            )
            assert passage.text[-20:] in article.paragraphs[last - 1]


def test_scores_descend_and_ranks_count_up(corpus_searcher: Searcher) -> None:
    answer = corpus_searcher.search("ferry fares bakery bread orchestra tickets", k=8)
    scores = [p.score for p in answer.passages]
    assert scores == sorted(scores, reverse=True)
    assert [p.rank for p in answer.passages] == list(range(1, len(answer.passages) + 1))


@pytest.mark.parametrize("per_article", [1, 2, 3])
def test_per_article_cap_orders_and_drops_nothing(
    corpus_searcher: Searcher, per_article: int
) -> None:
    question = "Fenwick Harbour ferry crossings timetable boats island"
    searcher = corpus_searcher.with_settings(per_article=per_article)
    cutoff = searcher.settings.relevance_cutoff
    passages = searcher.search(question, k=20).passages
    uncapped = corpus_searcher.with_settings(per_article=50).search(question, k=20).passages
    assert sorted(p.chunk_ids for p in passages) == sorted(p.chunk_ids for p in uncapped)
    shown = [p.shown for p in passages]
    assert shown == sorted(shown, reverse=True)  # the first page is a prefix
    by_score = sorted(passages, key=lambda p: -p.score)

    def past_cap(passage: Passage) -> bool:
        mates = [p for p in by_score if p.article.id == passage.article.id]
        return mates.index(passage) >= per_article

    for passage in filter(past_cap, passages):
        # A passage past its article's cap comes after the other articles' passages of its
        # page that are competitive with it, and before the others.
        others = [
            p
            for p in passages
            if p.article.id != passage.article.id and p.shown == passage.shown and not past_cap(p)
        ]
        for other in others:
            competitive = other.score >= cutoff * passage.score
            assert (other.rank < passage.rank) == competitive


def test_default_per_article_cap_is_two() -> None:
    assert SearchSettings().per_article == 2


def test_passages_of_one_article_never_overlap(corpus_searcher: Searcher) -> None:
    pairs = 0
    for question, *_ in SPECIFIC:
        passages = corpus_searcher.search(question, k=20).passages
        spans = [(p.article.id, p.char_start, p.char_end) for p in passages]
        for i, (article, start, end) in enumerate(spans):
            for other, other_start, other_end in spans[i + 1 :]:
                if article == other:
                    pairs += 1
                    assert end <= other_start or other_end <= start
    assert pairs >= len(SPECIFIC)  # each answer had passages of one article to compare


def row(chunk_id: int, ordinal: int, start: int, end: int, article: str = "a") -> ChunkRow:
    return ChunkRow(chunk_id, article, ordinal, start, end, 1, 1)


def test_overlapping_and_adjacent_chunks_collapse_into_one_passage() -> None:
    rows = {
        1: row(1, 0, 0, 100),
        2: row(2, 1, 80, 200),  # overlaps chunk 1
        3: row(3, 5, 500, 600),
        4: row(4, 6, 600, 700),  # adjacent to chunk 3
        5: row(5, 0, 0, 50, article="b"),
    }
    ranked = [_Candidate(i, 1.0 - i / 10) for i in (1, 3, 2, 5, 4)]
    groups = group_passages(ranked, rows)
    assert [(g.article_id, sorted(r.id for r in g.rows)) for g in groups] == [
        ("a", [1, 2]),
        ("a", [3, 4]),
        ("b", [5]),
    ]
    # Each group keeps the score of its best chunk.
    assert [g.score for g in groups] == [0.9, 0.7, 0.5]


def ranking(*passages: tuple[str, float]) -> tuple[list[_Candidate], dict[int, ChunkRow]]:
    """Candidates of separate passages: (article, score) each, best first."""
    rows = {i: row(i, i * 3, i * 1000, i * 1000 + 100, a) for i, (a, _) in enumerate(passages)}
    return [_Candidate(i, score) for i, (_, score) in enumerate(passages)], rows


def order(groups: list) -> list[tuple[str, float, bool]]:
    return [(g.article_id, g.score, g.relevant) for g in groups]


def test_relevance_cutoff_is_relative_to_the_best_passage() -> None:
    ranked, rows = ranking(("a", 0.9), ("b", 0.75), ("c", 0.7), ("d", 0.2))
    assert order(rank_passages(ranked, rows, per_article=2, cutoff=0.8)) == [
        ("a", 0.9, True),
        ("b", 0.75, True),  # 0.75 >= 0.8 x 0.9
        ("c", 0.7, False),
        ("d", 0.2, False),
    ]
    # 0 shows everything; 1 only the best (and its ties).
    assert all(g.relevant for g in rank_passages(ranked, rows, per_article=2, cutoff=0.0))
    assert [g.relevant for g in rank_passages(ranked, rows, per_article=2, cutoff=1.0)] == [
        True,
        False,
        False,
        False,
    ]


def test_the_best_passage_is_relevant_even_with_a_zero_score() -> None:
    ranked, rows = ranking(("a", 0.0), ("b", 0.0))
    assert [g.relevant for g in rank_passages(ranked, rows, 2, 0.8)] == [True, True]


def test_cap_moves_an_articles_extra_passages_behind_competitive_other_articles() -> None:
    ranked, rows = ranking(
        ("a", 1.0), ("a", 0.98), ("a", 0.97), ("b", 0.85), ("a", 0.5), ("d", 0.45), ("c", 0.35)
    )
    assert order(rank_passages(ranked, rows, per_article=2, cutoff=0.8)) == [
        ("a", 1.0, True),
        ("a", 0.98, True),
        ("b", 0.85, True),  # competitive with a's third passage: 0.85 >= 0.8 x 0.97
        ("a", 0.97, True),  # still on the first page
        ("d", 0.45, False),  # competitive with a's fourth: 0.45 >= 0.8 x 0.5
        ("a", 0.5, False),
        ("c", 0.35, False),  # not competitive: it stays behind
    ]


def test_cap_yields_when_no_other_article_is_competitive() -> None:
    """The issue-9 case: a small index whose one relevant article has three answering
    passages; the third was dropped for the cap although nothing else came close."""
    ranked, rows = ranking(("a", 1.0), ("a", 0.95), ("a", 0.9), ("a", 0.7), ("b", 0.3), ("c", 0.2))
    assert order(rank_passages(ranked, rows, per_article=2, cutoff=0.8)) == [
        ("a", 1.0, True),
        ("a", 0.95, True),
        ("a", 0.9, True),
        ("a", 0.7, False),  # below the cut-off, but still ahead of weaker articles
        ("b", 0.3, False),
        ("c", 0.2, False),
    ]


def test_ranking_drops_nothing() -> None:
    ranked, rows = ranking(*[("a", 1.0 - i / 100) for i in range(6)], ("b", 0.1))
    assert len(rank_passages(ranked, rows, per_article=1, cutoff=0.5)) == 7


def test_fuse_convex_and_rrf() -> None:
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    keyword = [(3, 12.0), (2, 6.0)]
    convex = fuse(dense, keyword, SearchSettings(fusion="convex", dense_weight=0.5))
    by_id = {c.chunk_id: c.score for c in convex}
    assert by_id[1] == pytest.approx(0.5)
    assert by_id[3] == pytest.approx(0.5)
    assert by_id[2] == pytest.approx(0.5 * 0.5 + 0.5 * 0.0)
    rrf = fuse(dense, keyword, SearchSettings(fusion="rrf", rrf_k=60))
    rrf_scores = {c.chunk_id: c.score for c in rrf}
    assert rrf_scores[2] == pytest.approx(1 / 62 + 1 / 62)
    assert [c.chunk_id for c in fuse(dense, keyword, SearchSettings(fusion="dense"))] == [1, 2, 3]
    assert [c.chunk_id for c in fuse(dense, keyword, SearchSettings(fusion="keyword"))] == [3, 2]


def test_offset_pages_on_without_repeats(corpus_searcher: Searcher) -> None:
    question = "Fenwick Harbour town council island school"
    whole = corpus_searcher.search(question, k=6)
    first = corpus_searcher.search(question, k=3)
    second = corpus_searcher.search(question, k=3, offset=3)
    assert len(whole.passages) == 6

    def key(answer: Answer) -> list[tuple[str, int, int]]:
        return [(p.article.id, p.char_start, p.char_end) for p in answer.passages]

    assert key(first) + key(second) == key(whole)
    assert not set(key(first)) & set(key(second))
    assert [p.rank for p in second.passages] == [4, 5, 6]
    assert second.offset == 3


def test_offset_past_the_end_gives_no_passages(corpus_searcher: Searcher) -> None:
    answer = corpus_searcher.search("ferry crossings island", k=5, offset=500)
    assert answer.passages == ()


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question(corpus_searcher: Searcher, question: str) -> None:
    with pytest.raises(BadQuestionError, match="empty"):
        corpus_searcher.search(question)


def test_too_long_question(corpus_searcher: Searcher) -> None:
    # The limit itself is allowed, and the message says so (it said "under 1,000").
    with pytest.raises(
        BadQuestionError, match="1,001 characters long; please keep it to 1,000 or fewer"
    ):
        corpus_searcher.search("x" * 1001)
    assert corpus_searcher.search("x" * 1000).question == "x" * 1000
    # White space is folded before measuring.
    assert corpus_searcher.search("ferry " + " " * 2000 + "crossings").question == (
        "ferry crossings"
    )


def test_not_covered_lists_nearest_articles(corpus_searcher: Searcher) -> None:
    strict = corpus_searcher.with_settings(min_confidence=5.0)
    answer = strict.search("How many ferry crossings in winter?")
    assert answer.answered is False
    assert answer.passages == ()
    ids = [a.id for a in answer.nearest]
    assert 1 <= len(ids) <= 3
    assert len(set(ids)) == len(ids)
    assert ids[0] == "ferry"
    data = answer.to_dict()
    assert data["answered"] is False and data["results"] == []
    assert data["nearest"][0]["id"] == "ferry"


def test_unrelated_question_is_not_covered_by_default(corpus_searcher: Searcher) -> None:
    searcher = corpus_searcher.with_settings(min_confidence=SearchSettings().min_confidence)
    answer = searcher.search("quantum chromodynamics lattice gauge theory")
    assert answer.answered is False
    assert answer.confidence < SearchSettings().min_confidence


def test_answer_to_dict(corpus_searcher: Searcher) -> None:
    data = corpus_searcher.search(SPECIFIC[0][0], k=2).to_dict()
    assert data["question"] == SPECIFIC[0][0]
    assert data["answered"] is True
    result = data["results"][0]
    assert set(result) >= {"rank", "score", "passage", "highlight", "paragraphs", "article"}
    assert result["article"]["id"] == "orchestra"
    assert set(result["article"]) >= {"id", "title", "source", "url", "date"}
    assert len(result["paragraphs"]) == 2


# -- look-ups --------------------------------------------------------------------------


def test_article_by_id(corpus_searcher: Searcher) -> None:
    article = corpus_searcher.article("bees-2024")
    assert article.title == "The Allotment Beekeepers Fight the Varroa Mite"
    assert len(article.paragraphs) == 5
    assert article.source == "clubs.json#1"


def test_article_by_exact_title_any_case(corpus_searcher: Searcher) -> None:
    article = corpus_searcher.article("  winter ferry timetable cut to eight crossings a day ")
    assert article.id == "ferry"


def test_article_by_unique_title_substring(corpus_searcher: Searcher) -> None:
    assert corpus_searcher.article("Skate Park").id == "skatepark"
    assert corpus_searcher.article("bakery co-op").id == "bakery"


def test_ambiguous_title_lists_the_candidates(corpus_searcher: Searcher) -> None:
    with pytest.raises(ArticleNotFoundError) as caught:
        corpus_searcher.article("the")
    message = str(caught.value)
    assert "articles match 'the'" in message
    for candidate in ("orchestra", "bees-2024", "skatepark"):
        assert candidate in message


def test_unknown_article(corpus_searcher: Searcher) -> None:
    with pytest.raises(ArticleNotFoundError, match="no article"):
        corpus_searcher.article("zeppelin")


def test_title_text_is_not_sql_like_syntax(corpus_searcher: Searcher) -> None:
    with pytest.raises(ArticleNotFoundError, match="no article"):
        corpus_searcher.article("%")
    assert corpus_searcher.suggest_titles("_") == []


def test_suggest_titles(corpus_searcher: Searcher) -> None:
    titles = [r.title for r in corpus_searcher.suggest_titles("the")]
    # Titles starting with the text come first.
    assert titles[0].lower().startswith("the")
    assert titles[1].lower().startswith("the")
    assert "How Teenagers Designed the Westcliff Skate Park" in titles
    assert [r.id for r in corpus_searcher.suggest_titles("FERRY")] == ["ferry"]
    assert len(corpus_searcher.suggest_titles("e", limit=2)) == 2
    assert [r.id for r in corpus_searcher.suggest_titles("bees")] == ["bees-2024"]  # by id


def test_articles_listing(corpus_searcher: Searcher) -> None:
    summaries = corpus_searcher.articles()
    assert len(summaries) == 5
    titles = [s.article.title for s in summaries]
    assert titles == sorted(titles, key=str.lower)
    by_id = {s.article.id: s for s in summaries}
    assert by_id["skatepark"].paragraph_count == 4
    assert all(s.chunk_count >= 1 for s in summaries)


def test_stats(corpus_searcher: Searcher) -> None:
    stats = corpus_searcher.stats()
    assert stats.articles == 5
    assert stats.chunks == sum(s.chunk_count for s in corpus_searcher.articles())
    assert stats.model == "fake-hashing-embedder"
    assert stats.dimension == 64
    assert stats.size_bytes > 0
    assert stats.created <= stats.updated


def test_a_small_collections_one_relevant_article_shows_all_its_answering_passages(
    tmp_path: Path,
) -> None:
    """Issue 9: with one long article about the question and a few unrelated short ones,
    a third passage of the long article used to be dropped for the per-article cap."""
    facts = [
        f"Paragraph {n} about the lighthouse: the keeper logged the lamp and the fog horn"
        f" on night {n}. "
        + " ".join(f"Filler sentence {n}.{i} mentions nothing much." for i in range(12))
        for n in range(1, 9)
    ]
    (tmp_path / "lighthouse.txt").write_text("The Lighthouse Log\n\n" + "\n\n".join(facts))
    for name in ("bakery", "orchestra", "ferry"):
        (tmp_path / f"{name}.txt").write_text(
            f"A {name} story\n\nThe {name} opened on a Tuesday with music and bread."
        )
    settings = build_index(
        tmp_path / "index",
        [tmp_path / f for f in ("lighthouse.txt", "bakery.txt", "orchestra.txt", "ferry.txt")],
    )
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    answer = searcher.search("What did the lighthouse keeper log about the lamp and fog horn?")
    listed = [(p.article.id, round(p.score, 2)) for p in answer.passages]
    # Every passage about the question is listed (k = 5), before the unrelated articles.
    assert [a for a, _ in listed[:4]] == ["lighthouse"] * 4, listed
    assert {p.article.id for p in answer.shown} == {"lighthouse"}


class _WaitingEmbedder(FakeEmbedder):
    """Embeds a question only once keyword search has started (or gives up after a while)."""

    def __init__(self, keyword_started: threading.Event) -> None:
        super().__init__()
        self.keyword_started = keyword_started
        self.saw_keyword_search = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.saw_keyword_search = self.keyword_started.wait(timeout=5)
        return super().embed(texts)


def test_keyword_search_runs_while_the_question_is_embedded(corpus_settings: Settings) -> None:
    started = threading.Event()
    embedder = _WaitingEmbedder(started)
    searcher = Searcher.open(corpus_settings, embedder).with_settings(min_confidence=0.0)
    keyword_search = searcher.index.store.keyword_search

    def watched(*args: object, **kwargs: object) -> list[tuple[int, float]]:
        started.set()
        return keyword_search(*args, **kwargs)  # type: ignore[arg-type]

    searcher.index.store.keyword_search = watched  # type: ignore[method-assign]
    try:
        answer = searcher.search("When does the orchestra rehearse on Thursday evenings?")
    finally:
        searcher.close()
    assert embedder.saw_keyword_search
    assert answer.passages[0].article.id == "orchestra"
    assert {"embed_ms", "dense_ms", "keyword_ms", "assemble_ms"} <= set(answer.timings_ms)
