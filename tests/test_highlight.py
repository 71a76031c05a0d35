"""The highlight: the sentence(s) of a passage that answer the question, chosen by meaning
(sentence vectors stored at ingest) and by shared words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.config import Settings
from retrieval.embedding import SpanEmbedder, pool_spans
from retrieval.embedding.base import lowercased
from retrieval.highlight import (
    ANSWER_TYPE_BONUS,
    SIGN_OFF_BONUS,
    answer_cues,
    best_sentences,
    sentence_meaning,
    terms_by_sentence,
)
from retrieval.index.store import Store
from retrieval.ingest import ingest
from retrieval.questions import without_set_aside
from retrieval.search import Searcher
from retrieval.text import keyword_terms, sentence_spans, stem, words
from tests.fakes import FakeEmbedder, FakeSpanEmbedder
from tests.helpers import CORPUS

TEXT = (
    "The depot hosts concerts in winter. "  # 0: shares "depot"
    "Players meet there every Thursday evening. "  # 1: the answer, shares nothing
    "Tickets cost eight pounds."  # 2
)
QUESTION = "When does the depot orchestra practise?"


def highlighted(text: str, span: tuple[int, int]) -> str:
    return text[span[0] : span[1]]


def test_words_alone_pick_the_sentence_sharing_the_rarest_question_words() -> None:
    assert (
        highlighted(TEXT, best_sentences(QUESTION, TEXT)) == "The depot hosts concerts in winter."
    )
    # A zero weight ignores meaning altogether.
    meaning = [0.1, 0.9, 0.1]
    assert best_sentences(QUESTION, TEXT, meaning, 0.0) == best_sentences(QUESTION, TEXT)


def test_a_hyphenated_question_word_counts_once_not_once_a_part() -> None:
    text = (
        "The town's bakery became a co-operative this year. "  # "bakery", "co", "operative"
        "Its ovens are lit at four in the morning. "
        "One share costs twenty-five pounds."  # "share", "cost": the answer
    )
    question = "How much does one share in the bakery co-operative cost?"
    # Counted part by part, "co" and "operative" would outweigh "share" and "cost".
    assert (
        highlighted(text, best_sentences(question, text)) == "One share costs twenty-five pounds."
    )


TRICKY = (
    "Policies and the policy’s cost: O’Brien’s don't-panic plan. "
    "Councils' councillors met the council_2024 staff (x2024s). "
    "'Elections' were held; the elected ELECTION board said “Elect!” "
    "Keys, kettles and a key: the polices police the policies."
)


@pytest.mark.parametrize(
    "question",
    [
        "What policy did O'Brien's council elect?",
        "Which keys did the police keep in 2024?",
        "Why don't councillors panic about elections?",
    ],
)
def test_terms_by_sentence_agree_with_stemming_every_word(question: str) -> None:
    texts = [TRICKY] + [path.read_text(encoding="utf-8") for path in sorted(CORPUS.iterdir())]
    terms = {stem(t) for t in keyword_terms(question)}
    for text in texts:
        spans = sentence_spans(text)
        expected = [{stem(w) for w in words(text[a:b])} & terms for a, b in spans]
        assert terms_by_sentence(text, spans, terms) == expected


def test_meaning_picks_the_answer_that_shares_no_word() -> None:
    meaning = [0.0, 0.9, 0.0]
    assert highlighted(TEXT, best_sentences(QUESTION, TEXT, meaning, 0.6)) == (
        "Players meet there every Thursday evening."
    )


def test_a_neighbour_scoring_nearly_as_well_joins_the_highlight() -> None:
    text = "Alpha one here. Beta two here. Gamma three here. Delta four here."
    question = "What about zeta?"  # no shared words: meaning decides
    assert highlighted(text, best_sentences(question, text, [0.1, 0.9, 0.8, 0.1], 1.0)) == (
        "Beta two here. Gamma three here."
    )
    # Not when it scores clearly less (0.6 < 0.75 x 0.9).
    assert highlighted(text, best_sentences(question, text, [0.1, 0.9, 0.6, 0.1], 1.0)) == (
        "Beta two here."
    )


def test_a_sentence_going_on_from_the_best_one_joins_it() -> None:
    text = "Alpha one here. Tests exist for large numbers. These include Beta. Gamma here."
    question = "What tests exist for large numbers?"
    # "These include ..." shares no word, so it scores too little to join as a neighbour
    # (0.8 x 0.75 = 0.6 < 0.75 x 0.92), but it goes on from the best sentence and is about
    # as close in meaning (0.75 >= 0.8 x 0.9).
    assert highlighted(text, best_sentences(question, text, [0.1, 0.9, 0.75, 0.1], 0.8)) == (
        "Tests exist for large numbers. These include Beta."
    )
    # Not when it is further in meaning (0.7 < 0.8 x 0.9) ...
    assert highlighted(text, best_sentences(question, text, [0.1, 0.9, 0.7, 0.1], 0.8)) == (
        "Tests exist for large numbers."
    )
    # ... nor when it opens with nothing that refers back.
    plain = "Alpha one here. Tests exist for large numbers. Beta is one. Gamma here."
    assert highlighted(plain, best_sentences(question, plain, [0.1, 0.9, 0.75, 0.1], 0.8)) == (
        "Tests exist for large numbers."
    )


def test_the_highlight_never_crosses_a_paragraph_break() -> None:
    question = "What about zeta?"  # no shared words: meaning decides
    # The neighbour before scores nearly as well, but starts the passage's first paragraph.
    text = "Alpha one here.\n\nBeta two here. Gamma three here."
    assert highlighted(text, best_sentences(question, text, [0.85, 0.9, 0.1], 1.0)) == (
        "Beta two here."
    )
    # Nor does a sentence referring back bring the last one of the paragraph before.
    text = "Peyton Manning led the team.\n\nHe is the oldest quarterback to play. The end came."
    span = best_sentences("Who is the oldest quarterback?", text, [0.3, 0.9, 0.1], 0.6)
    assert highlighted(text, span) == "He is the oldest quarterback to play."
    # Two sentences that together share the question's words join only within a paragraph.
    question = "Which city orchestra plays in the depot?"
    apart = "The city orchestra is new.\n\nMembers play in the depot."
    assert highlighted(apart, best_sentences(question, apart)) == "The city orchestra is new."
    together = apart.replace("\n\n", " ")
    assert highlighted(together, best_sentences(question, together)) == together


def test_a_quantity_question_prefers_a_sentence_with_a_number_it_does_not_name() -> None:
    text = "The Panthers defense was the best in the league. Opponents scored only 308."
    question = "How many points did the Panthers defense surrender?"
    first, answer = "The Panthers defense was the best in the league.", "Opponents scored only 308."
    # Meaning slightly prefers the first sentence; the number tips it.
    assert highlighted(text, best_sentences(question, text, [0.10, 0.05], 1.0)) == answer
    # Not when the meaning gap is wider than the cue, nor for a question asking no quantity.
    assert highlighted(text, best_sentences(question, text, [0.45, 0.20], 1.0)) == first
    what = "What did the Panthers defense surrender?"
    assert highlighted(text, best_sentences(what, text, [0.10, 0.05], 1.0)) == first


def test_answer_cues_ignore_numbers_and_dates_the_question_already_names() -> None:
    text = "In 1998 the club won. It has 20 members. It was founded in March 1871."
    spans = sentence_spans(text)
    bonus = ANSWER_TYPE_BONUS
    assert answer_cues("How many members did the club have in 1998?", text, spans) == [
        0.0,
        bonus,
        bonus,
    ]
    assert answer_cues("When was the club founded?", text, spans) == [bonus, 0.0, bonus]
    # "may" the verb is no month; nor is a number a date.
    rooms = "It may open. It has 20 rooms."
    assert answer_cues("When did it open?", rooms, sentence_spans(rooms)) == [0.0, 0.0]
    assert answer_cues("What did the club win?", text, spans) == [0.0, 0.0, 0.0]


OPINION = (
    "Taiwan is different from Ukraine. Its security matters to the US."
    "\n\nLee Li-sheng is a graduate student at National Taiwan Normal University."
    "\n\nTranslated by Fion Khan"
)


def test_a_question_about_the_writer_highlights_the_sign_off() -> None:
    question = "Who wrote the opinion piece comparing Taiwan and Ukraine?"
    # Meaning and words both prefer the first sentence, which restates the question.
    span = best_sentences(question, OPINION, [0.64, 0.5, 0.44, 0.33], 0.8)
    assert highlighted(OPINION, span) == (
        "Lee Li-sheng is a graduate student at National Taiwan Normal University."
    )
    # Another question keeps the first sentence.
    other = "How does Taiwan differ from Ukraine, according to the opinion piece?"
    span = best_sentences(other, OPINION, [0.64, 0.5, 0.44, 0.33], 0.8)
    assert highlighted(OPINION, span) == "Taiwan is different from Ukraine."


def test_a_sign_off_must_be_a_short_paragraph_of_its_own() -> None:
    question = "Who wrote the article?"
    prose = "The essay was published. Lee Li-sheng is a graduate student at the university."
    assert answer_cues(question, prose, sentence_spans(prose)) == [0.0, 0.0]
    alone = "The essay was published.\n\nBy Lee Li-sheng"
    assert answer_cues(question, alone, sentence_spans(alone)) == [0.0, SIGN_OFF_BONUS]
    long = "The essay was published.\n\nLee Li-sheng is a student" + " who writes" * 20 + "."
    assert answer_cues(question, long, sentence_spans(long)) == [0.0, 0.0]


def test_a_sentence_referring_back_brings_the_one_before() -> None:
    text = "Peyton Manning led the team. He is the oldest quarterback to play. The end came."
    question = "Who is the oldest quarterback to play?"
    span = best_sentences(question, text, [0.3, 0.9, 0.1], 0.6)
    assert (
        highlighted(text, span)
        == "Peyton Manning led the team. He is the oldest quarterback to play."
    )
    # Words alone keep the old behaviour: the one sentence.
    assert (
        highlighted(text, best_sentences(question, text)) == "He is the oldest quarterback to play."
    )


def test_pool_spans_means_the_tokens_inside_each_span() -> None:
    states = np.array([[9, 9], [1, 0], [3, 0], [0, 2], [9, 9]], dtype=np.float32)
    offsets = np.array([[0, 0], [0, 3], [4, 7], [8, 12], [0, 0]])  # [CLS] a b c [SEP]
    pooled = pool_spans(states, offsets, [(0, 7), (8, 12), (13, 20), (2, 5)])
    np.testing.assert_allclose(pooled[0], [1.0, 0.0])  # mean of (1,0) and (3,0), unit length
    np.testing.assert_allclose(pooled[1], [0.0, 1.0])
    np.testing.assert_allclose(pooled[2], [0.0, 0.0])  # no token inside
    np.testing.assert_allclose(pooled[3], [0.0, 0.0])  # no token wholly inside
    assert pool_spans(states, offsets, []).shape == (0, 2)


def test_spans_follow_a_text_that_lowercasing_lengthens() -> None:
    text = "İzmir hosts it. Then Ankara."
    lower, spans = lowercased(text, [(0, 15), (16, 28)])
    assert lower == text.lower() and len(lower) == len(text) + 1  # "İ" is two characters
    assert [lower[a:b] for a, b in spans] == ["i̇zmir hosts it.", "then ankara."]
    assert lowercased("Plain Text", [(0, 5)]) == ("plain text", [(0, 5)])


@pytest.fixture
def span_index(tmp_path: Path) -> Settings:
    settings = Settings(index_dir=tmp_path / "index")
    ingest([CORPUS], settings, FakeSpanEmbedder())
    return settings


def test_ingest_stores_the_vectors_of_every_chunks_sentences(span_index: Settings) -> None:
    searcher = Searcher.open(span_index, FakeSpanEmbedder())
    store = searcher.index.store
    for summary in store.summaries():
        article = store.article(summary.article.id)
        ids = store.chunk_ids(article.id)
        rows, stored = store.chunks(ids), store.sentence_vectors(ids)
        assert set(stored) == set(ids)
        for chunk_id, (spans, vectors) in stored.items():
            row = rows[chunk_id]
            chunk_text = article.text[row.char_start : row.char_end]
            expected = [
                (row.char_start + a, row.char_start + b) for a, b in sentence_spans(chunk_text)
            ]
            assert [tuple(s) for s in spans.tolist()] == expected
            # Stored as int8: each vector is the sentence's own, to within rounding.
            direct = FakeSpanEmbedder().embed([article.text[a:b] for a, b in expected])
            np.testing.assert_allclose(vectors, direct, atol=0.01)
    searcher.close()


def test_removing_an_article_removes_its_sentence_vectors(span_index: Settings) -> None:
    store_path = next(span_index.index_dir.glob("gen-*/store.sqlite"))
    store = Store(store_path)
    ids = store.chunk_ids("ferry")
    assert store.sentence_vectors(ids)
    store.delete_article("ferry")
    assert store.sentence_vectors(ids) == {}
    store.close()


def test_a_model_without_span_vectors_stores_none_and_highlights_by_words(tmp_path: Path) -> None:
    assert not isinstance(FakeEmbedder(), SpanEmbedder)
    assert isinstance(FakeSpanEmbedder(), SpanEmbedder)
    settings = Settings(index_dir=tmp_path / "index")
    ingest([CORPUS], settings, FakeEmbedder())
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    ids = searcher.index.store.chunk_ids("orchestra")
    assert searcher.index.store.sentence_vectors(ids) == {}
    passage = searcher.search("When does the orchestra rehearse on Thursday evenings?").passages[0]
    assert passage.highlight.startswith("Rehearsals now take place every Thursday evening")


def test_a_model_that_turns_out_to_give_no_span_vectors_stores_none(tmp_path: Path) -> None:
    """An index whose ONNX export predates token states: its chunks are all embedded and
    searchable, with no sentence vectors (highlights by words)."""
    settings = Settings(index_dir=tmp_path / "index")
    embedder = FakeSpanEmbedder(gives_spans=False)
    report = ingest([CORPUS], settings, embedder)
    searcher = Searcher.open(settings, embedder).with_settings(min_confidence=0.0)
    store = searcher.index.store
    ids = [i for a in store.summaries() for i in store.chunk_ids(a.article.id)]
    assert len(ids) == len(searcher.index.vectors) == report.chunks_embedded > 0
    assert store.sentence_vectors(ids) == {}
    passage = searcher.search("When does the orchestra rehearse on Thursday evenings?").passages[0]
    assert passage.highlight.startswith("Rehearsals now take place every Thursday evening")
    searcher.close()


def test_search_highlights_by_meaning(tmp_path: Path) -> None:
    """The fake model reads "practise" as "meet" and "when" as "thursday": the answering
    sentence shares no content word with the question, while another shares one."""
    (tmp_path / "notes.txt").write_text(
        "Orchestra notes\n\nThe orchestra plays in the depot. Members meet there every"
        " Thursday evening. Tickets cost eight pounds."
    )
    embedder = FakeSpanEmbedder(dimension=1024, synonyms={"practise": "meet", "when": "thursday"})
    settings = Settings(index_dir=tmp_path / "index")
    ingest([tmp_path / "notes.txt"], settings, embedder)
    searcher = Searcher.open(settings, embedder).with_settings(min_confidence=0.0)
    question = "When does orchestra practise?"
    words = searcher.with_settings(highlight_meaning_weight=0.0).search(question).passages[0]
    meaning = searcher.with_settings(highlight_meaning_weight=1.0).search(question).passages[0]
    assert words.highlight == "The orchestra plays in the depot."
    assert meaning.highlight == "Members meet there every Thursday evening."


def test_sentence_meaning_maps_passage_sentences_to_stored_ones() -> None:
    text = "One two. Three four. Five six."
    spans = [(10 + a, 10 + b) for a, b in sentence_spans(text)]
    question = np.array([1.0, 0.0], dtype=np.float32)
    first = (np.array(spans[:2]), np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    # The last sentence was stored split differently (a chunk's edge): overlap counts.
    second = (np.array([[spans[2][0] - 3, spans[2][1]]]), np.array([[0.6, 0.8]], dtype=np.float32))
    local = sentence_spans(text)
    assert sentence_meaning(question, local, 10, [first, second]) == pytest.approx([1.0, 0.0, 0.6])
    assert sentence_meaning(question, local, 10, [first]) is None


@pytest.mark.parametrize(
    ("question", "rest"),
    [
        (
            "Beyond defence and trade, where should the two countries cooperate more?",
            "where should the two countries cooperate more?",
        ),
        (
            "What other location did Apollo 1 test at besides Kennedy Space Center?",
            "What other location did Apollo 1 test at?",
        ),
        (
            "What is the only divisor besides 1 that a prime number can have?",
            "What is the only divisor that a prime number can have?",
        ),
        # Inside a question: a name or a number, or words that end it; not its verb.
        ("Which countries besides France signed the treaty?", "Which countries signed the treaty?"),
        (
            "What else does the orchestra offer besides lessons?",
            "What else does the orchestra offer?",
        ),
        # "beyond" inside a question is as often a place: kept.
        ("What lies beyond the Kuiper belt?", "What lies beyond the Kuiper belt?"),
        ("Who founded the orchestra?", "Who founded the orchestra?"),
    ],
)
def test_a_clause_setting_things_aside_is_taken_out(question: str, rest: str) -> None:
    assert without_set_aside(question) == rest


SET_ASIDE_TEXT = (
    "The orchestra gives concerts and tours abroad. "  # the words set aside
    "The orchestra members teach children at the depot."  # the answer
)


def test_words_of_a_clause_setting_things_aside_are_not_looked_for() -> None:
    question = "Beyond concerts and tours, what does the orchestra teach?"
    assert (
        highlighted(SET_ASIDE_TEXT, best_sentences(question, SET_ASIDE_TEXT))
        == "The orchestra members teach children at the depot."
    )


def test_search_compares_meaning_without_the_clause_setting_things_aside(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Orchestra notes\n\n" + SET_ASIDE_TEXT)
    embedder = FakeSpanEmbedder(dimension=1024)
    settings = Settings(index_dir=tmp_path / "index")
    ingest([tmp_path / "notes.txt"], settings, embedder)
    searcher = Searcher.open(settings, embedder).with_settings(
        min_confidence=0.0, highlight_meaning_weight=1.0
    )
    question = "Beyond concerts and tours abroad, whom does the orchestra teach?"
    passage = searcher.search(question).passages[0]
    assert passage.highlight == "The orchestra members teach children at the depot."


def test_on_the_sample_articles_what_a_question_sets_aside_is_not_its_highlight(
    tmp_path: Path,
) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    embedder = FakeSpanEmbedder()
    ingest([CORPUS], settings, embedder)
    searcher = Searcher.open(settings, embedder).with_settings(min_confidence=0.0)
    plain = searcher.search("What does the orchestra do in the depot on Thursday evenings?")
    assert plain.passages[0].highlight.startswith("Rehearsals now take place every Thursday")
    question = "Beyond rehearsals on Thursday evenings, what does the orchestra do in the depot?"
    passage = searcher.search(question).passages[0]
    assert "Rehearsals" not in passage.highlight
    assert passage.text[passage.highlight_start : passage.highlight_end] == passage.highlight
