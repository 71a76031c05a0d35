"""The trimmed view of a passage: the paragraph(s) holding the highlight, cut between
sentences when long, with "…" where it cuts a paragraph of the article."""

from __future__ import annotations

import pytest

from retrieval.records import ArticleRef, Passage
from retrieval.search import Searcher
from retrieval.trimming import context_span, sentence_window

P1 = "The harbour opened in 1890. It served fishing boats."
P2 = "The lighthouse was built in 1902. Its lamp burned paraffin. A keeper lived on site."
P3 = "Electric light came in 1954. The keeper left in 1988."
TEXT = "\n\n".join([P1, P2, P3])


def span_of(text: str, part: str) -> tuple[int, int]:
    start = text.index(part)
    return start, start + len(part)


def test_the_view_is_the_paragraph_holding_the_highlight() -> None:
    start, end = span_of(TEXT, "Its lamp burned paraffin.")
    a, b = context_span(TEXT, start, end, budget=500)
    assert TEXT[a:b] == P2


def test_a_highlight_across_two_paragraphs_keeps_both() -> None:
    start, _ = span_of(TEXT, "A keeper lived on site.")
    _, end = span_of(TEXT, "Electric light came in 1954.")
    a, b = context_span(TEXT, start, end, budget=500)
    assert TEXT[a:b] == P2 + "\n\n" + P3


def test_a_long_paragraph_is_cut_to_whole_sentences_around_the_highlight() -> None:
    sentences = [f"Sentence number {i:02d} is here." for i in range(30)]  # 28 chars each
    text = " ".join(sentences)
    start, end = span_of(text, sentences[10])
    a, b = context_span(text, start, end, budget=100)
    view = text[a:b]
    # Three whole sentences fit in 100 characters: the highlight's, then one after, one before.
    assert view == " ".join(sentences[9:12])
    assert len(view) <= 100


def test_the_window_grows_after_the_highlight_first() -> None:
    sentences = [f"Sentence number {i:02d} is here." for i in range(6)]
    text = " ".join(sentences)
    start, end = span_of(text, sentences[2])
    a, b = sentence_window(text, start, end, budget=60)
    assert text[a:b] == " ".join(sentences[2:4])


def test_at_the_start_of_a_paragraph_the_window_grows_after_only() -> None:
    sentences = [f"Sentence number {i:02d} is here." for i in range(6)]
    text = " ".join(sentences)
    start, end = span_of(text, sentences[0])
    a, b = sentence_window(text, start, end, budget=90)
    assert text[a:b] == " ".join(sentences[0:3])


def test_a_highlight_longer_than_the_budget_is_the_view() -> None:
    long_sentence = "A very long sentence " + "with many words " * 20 + "ends here."
    text = f"Short one. {long_sentence} Another short one."
    start, end = span_of(text, long_sentence)
    assert context_span(text, start, end, budget=50) == (start, end)


def passage(text: str, highlight: str, context: str, cut: tuple[bool, bool]) -> Passage:
    h_start, h_end = span_of(text, highlight)
    c_start, c_end = span_of(text, context)
    return Passage(
        rank=1,
        score=1.0,
        text=text,
        highlight=highlight,
        highlight_start=h_start,
        highlight_end=h_end,
        article=ArticleRef("a", "A", "a.md"),
        paragraphs=(1, 3),
        char_start=0,
        char_end=len(text),
        chunk_ids=(1,),
        context_start=c_start,
        context_end=c_end,
        context_cut=cut,
    )


@pytest.mark.parametrize(
    ("cut", "prefix", "suffix"),
    [((False, False), "", ""), ((True, False), "…", ""), ((True, True), "…", "…")],
)
def test_trimmed_marks_cuts_and_keeps_the_highlight_offsets(
    cut: tuple[bool, bool], prefix: str, suffix: str
) -> None:
    p = passage(TEXT, "Its lamp burned paraffin.", "Its lamp burned paraffin. A keeper", cut)
    view, start, end = p.trimmed()
    assert view == f"{prefix}Its lamp burned paraffin. A keeper{suffix}"
    assert view[start:end] == "Its lamp burned paraffin."


def test_a_passage_without_a_view_shows_whole() -> None:
    whole = Passage(1, 1.0, TEXT, P1, 0, len(P1), ArticleRef("a", "A", "a.md"), (1, 3), 0, 9, (1,))
    assert whole.trimmed() == (TEXT, 0, len(P1))
    assert whole.context_paragraphs == (1, 3)


def test_search_results_view_whole_paragraphs_of_their_article(corpus_searcher: Searcher) -> None:
    for question in [
        "When does the orchestra rehearse on Thursday evenings?",
        "What does a monthly ferry pass cost island residents?",
        "What happens to surplus bread at closing time?",
    ]:
        for p in corpus_searcher.search(question, k=10).passages:
            article = corpus_searcher.article(p.article.id)
            first, last = p.context_paragraphs
            view, start, end = p.trimmed()
            assert view[start:end] == p.highlight
            assert p.context_start <= p.highlight_start < p.highlight_end <= p.context_end
            # The corpus's paragraphs are short, so each view is its paragraph(s), uncut.
            assert p.context_cut == (False, False)
            assert view == "\n\n".join(article.paragraphs[first - 1 : last])


def test_a_view_cut_inside_a_paragraph_is_marked(corpus_searcher: Searcher) -> None:
    narrow = corpus_searcher.with_settings(context_chars=80)
    p = narrow.search("When does the orchestra rehearse on Thursday evenings?").passages[0]
    view, start, end = p.trimmed()
    assert "Thursday" in p.highlight
    assert view.endswith("…") and not view.startswith("…")  # the highlight opens ¶3
    assert view[start:end] == p.highlight
