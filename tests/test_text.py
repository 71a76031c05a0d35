"""Sentence splitting and the words a question is searched by."""

from __future__ import annotations

import pytest

from retrieval.text import keyword_terms, sentence_spans, split_sentences, stem, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        (
            "Mr. Quint met Mrs. Demir and Dr. Olsen. They talked.",
            ["Mr. Quint met Mrs. Demir and Dr. Olsen.", "They talked."],
        ),
        (
            "The concert is on Feb. 14 in the depot. Tickets cost eight pounds.",
            ["The concert is on Feb. 14 in the depot.", "Tickets cost eight pounds."],
        ),
        (
            "The letter was signed by J. R. Pritchard. He never replied.",
            ["The letter was signed by J. R. Pritchard.", "He never replied."],
        ),
        (
            'He shouted "Stop!" Then he left. "Why?" she asked. Nobody knew.',
            ['He shouted "Stop!"', "Then he left.", '"Why?" she asked.', "Nobody knew."],
        ),
        (
            "She said, \u201cWe will rebuild.\u201d The hall cheered.",
            ["She said, \u201cWe will rebuild.\u201d", "The hall cheered."],
        ),
        ("It cost 3.5 million. That is a lot.", ["It cost 3.5 million.", "That is a lot."]),
        ("Wait\u2026 Then go.", ["Wait\u2026", "Then go."]),
        ("He lives on St. Mary's Road. It floods.", ["He lives on St. Mary's Road.", "It floods."]),
        ("Prices rose (again.) Then fell.", ["Prices rose (again.)", "Then fell."]),
        (
            "the end. lower case does not start a sentence.",
            ["the end. lower case does not start a sentence."],
        ),
        ("In 2023. 2024 was better.", ["In 2023.", "2024 was better."]),
        # A citation is one sentence: "et al." ends none (XQuAD's "Jones et al. 1998, ...").
        (
            "It was backed by Jones et al. 1998 and Briffa 2000. It held.",
            ["It was backed by Jones et al. 1998 and Briffa 2000.", "It held."],
        ),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "  Leading space. And trailing.  ",
        "A. B. C. Done. Next one!  Another?\n\nNew paragraph.",
        "No punctuation at all",
    ],
)
def test_sentence_spans_are_trimmed_ordered_and_cover_all_non_space(text: str) -> None:
    spans = sentence_spans(text)
    covered = set()
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        covered.update(range(start, end))
        previous_end = end
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


def test_keyword_terms_drop_stopwords_keep_order_and_dedupe() -> None:
    assert keyword_terms("How do the libraries lend tools, and which tools?") == [
        "libraries",
        "lend",
        "tools",
    ]


def test_keyword_terms_possessives_digits_and_single_letters() -> None:
    assert keyword_terms("What's the library's plan for 2024 and a 5 a side B team?") == [
        "library",
        "plan",
        "2024",
        "5",
        "side",
        "team",
    ]


def test_keyword_terms_curly_apostrophes_and_case() -> None:
    assert keyword_terms("The COUNCIL\u2019s Budget") == ["council", "budget"]


def test_keyword_terms_of_only_stopwords_is_empty() -> None:
    assert keyword_terms("What is it and where was it?") == []


def test_words_lowercases_and_splits_on_punctuation() -> None:
    assert words("Tool-lending, don\u2019t STOP_now") == ["tool", "lending", "don't", "stop", "now"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [("elections", "election"), ("libraries", "library"), ("lending", "lend"), ("bus", "bus")],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected
