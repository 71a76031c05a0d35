"""The term classes of a question (retrieval.questions), and the rules built on them end to
end on the test corpus with the fake model: words about the text, questions about a whole
article, near-topic caveats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from retrieval.cli import Runtime, cli
from retrieval.questions import (
    content_terms,
    lead_span,
    missing_terms,
    near_topic_caveat,
    question_terms,
    specific_terms,
    whole_article,
    without_text_references,
)
from retrieval.records import ARTICLE_LEAD, WHICH_ARTICLE
from retrieval.search import Searcher, answer_confidence
from tests.fakes import FakeEmbedder


def counts_of(known: dict[str, int]):
    return lambda words: {w: known.get(w, 0) for w in words}


# -- words about the text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "content", "meta"),
    [
        ("What did the author say about Kinmen?", {"kinmen"}, {"author", "say"}),
        ("According to the article, why does Taiwan matter?", {"taiwan", "matter"}, None),
        ("Does the writer mention Penghu?", {"penghu"}, {"writer", "mention"}),
        ("What does the op-ed argue about tariffs?", {"tariff"}, None),
        ("What does this piece claim about chips?", {"chip"}, None),
    ],
)
def test_words_about_the_text_are_not_content(
    question: str, content: set[str], meta: set[str] | None
) -> None:
    terms = question_terms(question)
    assert set(terms.content) == content
    if meta is not None:
        assert set(terms.meta) == meta


def test_content_words_that_look_like_text_words_stay() -> None:
    # "points" and "report" are content ("which report" points at no text).
    assert "point" in content_terms("How many points did the Panthers score?")
    assert "report" in content_terms("Which report did the IPCC publish in 2007?")
    assert "stat" in content_terms("Who governs the United States?")  # the stem of "states"
    assert (
        without_text_references("What did the author say about Kinmen?") == "What did about Kinmen?"
    )


def test_words_about_the_text_do_not_lower_the_confidence() -> None:
    passage = "US military advisers have been stationed in Kinmen and Penghu."
    dense = [(1, 0.3)]
    plain = answer_confidence("What is said about Kinmen?", dense, passage)
    about_the_text = answer_confidence("What did the author say about Kinmen?", dense, passage)
    # Before: "author" and "say" counted as content words the passage lacks (1/3 found).
    assert about_the_text == pytest.approx(plain)
    assert about_the_text == pytest.approx(0.7 * 0.3 + 0.3 * 1.0)


# -- questions about a whole article -------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("What is this article about?", ()),
        ("What's the op-ed about?", ()),
        ("Summarise the piece on TSMC", ("tsmc",)),
        ("Give me the gist of the article on the ferry", ("ferry",)),
        ("What does the author argue?", ()),
        ("What is the main argument of the piece on bees?", ("bees",)),
        ("What is the article on Super Bowl 50 about?", ("super", "bowl", "50")),
    ],
)
def test_questions_about_a_whole_article(question: str, topic: tuple[str, ...]) -> None:
    found = whole_article(question)
    assert found is not None
    assert found.topic == topic


@pytest.mark.parametrize(
    "question",
    [
        "What did the author say about Kinmen?",
        "What is Kinmen about?",  # names no text
        "What does the author argue about tariffs?",  # a point of the piece, not the piece
        "How many points did the Panthers score?",
    ],
)
def test_questions_about_a_point_are_not_about_the_whole_article(question: str) -> None:
    assert whole_article(question) is None


def test_the_lead_is_the_first_sentences_of_the_first_paragraph() -> None:
    text = "One. Two. Three.\n\nFour."
    assert text[slice(*lead_span(text, text.index("\n\n")))] == "One. Two."
    alone = "Only one"
    assert alone[slice(*lead_span(alone, len(alone)))] == alone


# -- specific words and caveats ------------------------------------------------------------


def test_specific_words_are_names_and_numbers() -> None:
    counts = counts_of({"philippines": 0, "taiwan": 40, "new": 900, "year": 900})
    question = "How much will the Philippines and Taiwan spend in 2027, the New Year's 10th?"
    # 1,000 chunks: a name in at most 5 of them is specific; "Taiwan" and "New" are common.
    assert specific_terms(question, counts, 1000) == ["Philippines", "2027"]
    # Not the first word, nor a stopword, nor a word about the text.
    assert specific_terms("Kinmen: what did the Author say?", counts, 1000) == []
    # A lower share makes fewer names specific; 0 none.
    assert specific_terms("Is Taiwan near Manila?", counts_of({"taiwan": 3}), 1000, 0.0) == []


def test_missing_words_ignore_diacritics_stems_and_spacing() -> None:
    texts = ["Thomas de Maizière spoke at Super Bowl 50 about the elections."]
    assert missing_terms(["Maiziere", "Superbowl", "Elections", "Manila"], texts) == ["Manila"]


def test_the_caveat_names_what_is_mentioned_and_what_not() -> None:
    texts = ["President Lai aims to increase defense spending."]
    question = "How much will the Philippines spend on defense?"
    assert near_topic_caveat(question, ["Philippines"], texts) == (
        "The articles mention “spend” and “defense”, but not “Philippines”."
    )
    assert near_topic_caveat("Who is Marcos's rival?", ["Marcos's"], texts) == (
        "The articles found do not mention “Marcos”."
    )


# -- end to end on the test corpus (fake model) --------------------------------------------


def test_a_question_naming_an_unknown_name_is_answered_under_a_caveat(
    corpus_searcher: Searcher,
) -> None:
    answer = corpus_searcher.search("When does the ferry to Reykjavik leave the harbour?")
    assert answer.answered
    assert answer.caveat is not None and "“Reykjavik”" in answer.caveat
    assert answer.to_dict()["caveat"] == answer.caveat
    plain = corpus_searcher.search("When does the ferry to Gull Island leave the harbour?")
    assert plain.caveat is None and plain.to_dict()["caveat"] is None


def test_a_question_about_a_named_article_gets_its_opening(corpus_searcher: Searcher) -> None:
    answer = corpus_searcher.search("Summarise the article about the winter ferry timetable")
    assert answer.answered and answer.kind == ARTICLE_LEAD
    (lead,) = answer.passages
    assert lead.article.id == "ferry" and lead.paragraphs[0] == 1
    assert lead.highlight.startswith("The ferry between Fenwick Harbour and Gull Island")
    assert answer.to_dict()["kind"] == "article"


def test_a_question_about_an_unnamed_article_asks_which(corpus_searcher: Searcher) -> None:
    answer = corpus_searcher.search("What is this article about?")
    assert not answer.answered and answer.kind == WHICH_ARTICLE
    assert len(answer.nearest) >= 2
    assert not answer.passages


def test_the_cli_shows_the_caveat_above_the_passages_and_asks_which(
    corpus_settings, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[search]\nmin_confidence = 0.0\n")
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    index = str(corpus_settings.index_dir)

    def ask(*args: str):
        return CliRunner().invoke(
            cli, ["--config", str(config), "ask", "--index", index, *args], obj=runtime
        )

    shown = ask("When does the ferry to Reykjavik leave the harbour?")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Note: The articles mention")
    assert "but not “Reykjavik”" in shown.output.splitlines()[0]
    data = json.loads(ask("--json", "When does the ferry to Reykjavik leave?").output)
    assert "Reykjavik" in data["caveat"]
    which = ask("What is this article about?")
    assert which.output.startswith("Which article do you mean?")


def test_the_article_a_whole_article_question_points_at() -> None:
    from retrieval.questions import pick_article
    from retrieval.records import ArticleRef

    tsmc = ArticleRef("2", "TSMC and Intel: a wildly complex ordeal", "seed#2")
    taiwan = ArticleRef("1", "Taiwan is not Ukraine", "seed#1")
    about = whole_article("Summarise the piece on TSMC")
    assert about is not None
    # The only title holding every topic word, wherever it ranks.
    assert pick_article(about, [taiwan, tsmc], [taiwan]) == tsmc
    # No title holds it: the first page's only article; several: ask which.
    about = whole_article("Summarise the piece on chips")
    assert about is not None
    assert pick_article(about, [taiwan, tsmc], [taiwan]) == taiwan
    assert pick_article(about, [taiwan, tsmc], [taiwan, tsmc]) is None
    # No topic named: only an index of one article answers.
    unnamed = whole_article("What is this article about?")
    assert unnamed is not None
    assert pick_article(unnamed, [taiwan, tsmc], [taiwan]) is None
    assert pick_article(unnamed, [taiwan], [taiwan]) == taiwan
