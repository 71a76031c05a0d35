"""BM25 of chosen chunks from the index's own term statistics (retrieval.index.bm25):
equal to FTS5's bm25() over the whole index, before and after writes in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from retrieval.index.bm25 import Tokenizer, varints
from retrieval.index.keywords import quoted
from retrieval.index.store import BODY_WEIGHT, TITLE_WEIGHT, TOKENIZE, Store
from retrieval.records import Article, Chunk
from retrieval.text import keyword_terms

# Titles and bodies that exercise the tokenizer: stems, case, diacritics, apostrophes (a
# term of two tokens: "O'Brien"), digits, repeats, a title word in the body.
TEXTS = [
    ("Harbour news", "The harbour council met on Tuesday. Harbours need repairs."),
    ("Café opening", "The café in Zürich opened; Señor O'Brien cut the ribbon at 9."),
    ("Council budget", "Councils vote. The council voted against the budget, budget, budget."),
    ("Ferry timetable", "The ferry runs twice a day in winter and four times in summer."),
    ("O'Brien interview", "O'Brien spoke to the council about the ferry and the harbour."),
    ("Rain", "Rain, rain and more rain: the storm closed the harbour for a week."),
    ("Elections", "Elections were held; the elected members met the mayor."),
]
QUESTIONS = [
    "Who met at the harbour on Tuesday?",
    "What did O'Brien say to the council?",
    "When did the cafe in Zurich open?",
    "How often does the ferry run in winter?",
    "Which councils voted on the budget?",
    "Who was elected in the elections?",
    "rain storm harbour ferry council budget",
]


def add(store: Store, number: int, title: str, body: str) -> None:
    article = Article(f"a{number}", title, body, "notes.jsonl")
    # Two chunks an article, so that a title counts in several chunks.
    half = len(body) // 2
    chunks = [
        Chunk(article.id, 0, body[:half], 0, half, 1, 1),
        Chunk(article.id, 1, body[half:], half, len(body), 1, 1),
    ]
    store.add_article(article, str(number), chunks)


def fts5_scores(store: Store, question: str) -> dict[int, float]:
    """What an unbounded keyword search scores: FTS5's bm25() of every matching chunk."""
    match = " OR ".join(quoted(t) for t in keyword_terms(question))
    rows = store.connection.execute(
        "SELECT rowid, -bm25(chunks_fts, ?, ?) FROM chunks_fts WHERE chunks_fts MATCH ?",
        (TITLE_WEIGHT, BODY_WEIGHT, match),
    )
    return {r[0]: r[1] for r in rows}


def exact_scores(store: Store, question: str, ids: list[int]) -> dict[int, float]:
    return store._bm25.scores(keyword_terms(question), ids)


def all_ids(store: Store) -> list[int]:
    return [r[0] for r in store.connection.execute("SELECT id FROM chunks")]


def assert_equal_to_fts5(store: Store) -> None:
    for question in QUESTIONS:
        expected = fts5_scores(store, question)
        found = exact_scores(store, question, all_ids(store))
        assert found.keys() == expected.keys(), question
        assert list(found.values()) == pytest.approx([expected[i] for i in found], rel=1e-12), (
            question
        )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    store = Store(path)
    for number, (title, body) in enumerate(TEXTS):
        add(store, number, title, body)
    store.commit()
    store.close()
    return path


def test_scores_equal_fts5_bm25_over_the_whole_index(store_path: Path) -> None:
    reader = Store(store_path, read_only=True)
    try:
        assert_equal_to_fts5(reader)
        # A term of two tokens is a phrase, as in FTS5's query.
        assert reader._bm25.phrases(["o'brien", "cafe"]) == [("o", "brien"), ("cafe",)]
        # Some of the chunks: the same score each, whatever else is asked for.
        question = QUESTIONS[0]
        everything = exact_scores(reader, question, all_ids(reader))
        some = exact_scores(reader, question, [1, 2, 3])
        assert some == {i: everything[i] for i in (1, 2, 3) if i in everything}
    finally:
        reader.close()


def test_scores_stay_equal_after_writes_and_deletes_in_place(store_path: Path) -> None:
    writer = Store(store_path)
    try:
        writer.delete_article("a0")
        add(writer, 10, "Harbour again", "The harbour council met the ferry crew in winter.")
        writer.delete_article("a3")
        add(writer, 3, "Ferry timetable", "The ferry now runs once a day.")  # replaced
        # The writer's own view, before and after its commit (it remembers nothing).
        assert_equal_to_fts5(writer)
        writer.commit()
        assert_equal_to_fts5(writer)
    finally:
        writer.close()
    reader = Store(store_path, read_only=True)
    try:
        assert_equal_to_fts5(reader)
    finally:
        reader.close()


def test_a_write_rolled_back_leaves_the_statistics_as_committed(store_path: Path) -> None:
    """Nothing is stored beside FTS5: a write that never commits (a crash) changes nothing."""
    reader = Store(store_path, read_only=True)
    before = {q: exact_scores(reader, q, all_ids(reader)) for q in QUESTIONS}
    reader.close()
    writer = Store(store_path)
    add(writer, 20, "Harbour", "Harbour harbour harbour council ferry rain.")
    writer.delete_article("a1")
    writer.rollback()
    writer.close()
    reader = Store(store_path, read_only=True)
    try:
        assert {q: exact_scores(reader, q, all_ids(reader)) for q in QUESTIONS} == before
        assert_equal_to_fts5(reader)
    finally:
        reader.close()


def test_the_tokens_are_fts5s_own() -> None:
    tokenizer = Tokenizer(1, TOKENIZE)
    try:
        assert tokenizer.tokens(["Elections", "Zürich café", "O'Brien's", "running"]) == [
            ("elect",),
            ("zurich", "cafe"),
            ("o", "brien", "s"),
            ("run",),
        ]
    finally:
        tokenizer.close()


def test_totals_and_sizes_are_read_from_fts5s_records(store_path: Path) -> None:
    db = sqlite3.connect(store_path)
    try:
        (block,) = db.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
        rows, *columns = varints(block)
        assert rows == 2 * len(TEXTS)
        sizes = [sum(varints(r[0])) for r in db.execute("SELECT sz FROM chunks_fts_docsize")]
        assert sum(columns) == sum(sizes)
    finally:
        db.close()
    # A large varint (several bytes, and the nine-byte form) reads back.
    assert varints(bytes([0x81, 0x00, 0x7F])) == [128, 127]
    assert varints(bytes([0xFF] * 8 + [0x01])) == [(1 << 64) - 255]


def test_keyword_scores_are_empty_within_the_budget(store_path: Path) -> None:
    reader = Store(store_path, read_only=True)
    try:
        ids = all_ids(reader)
        assert reader.keyword_scores(QUESTIONS[0], ids, budget=len(ids)) == {}
        assert reader.keyword_scores(QUESTIONS[0], ids, budget=None) == {}
        over = reader.keyword_scores(QUESTIONS[0], ids, budget=2)
        assert over == pytest.approx(fts5_scores(reader, QUESTIONS[0]), rel=1e-12)
    finally:
        reader.close()


def test_copies_of_a_text_score_alike_and_max_texts_counts_distinct_texts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    store = Store(path)
    # Chunks 1-4: one text four times; 5: another; 6: a third.
    for number, body in enumerate(["Harbour ferry news."] * 4 + ["Harbour."] + ["Ferry."]):
        article = Article(f"a{number}", "Notes", body, "notes.jsonl")
        store.add_article(article, str(number), [Chunk(article.id, 0, body, 0, len(body), 1, 1)])
    store.commit()
    store.close()
    reader = Store(path, read_only=True)
    try:
        expected = fts5_scores(reader, "harbour ferry")
        scores = exact_scores(reader, "harbour ferry", [1, 2, 3, 4, 5, 6])
        assert scores == pytest.approx(expected, rel=1e-12)
        # The first two distinct texts (in the order given): the copies and chunk 5.
        terms = keyword_terms("harbour ferry")
        two = reader._bm25.scores(terms, [1, 5, 2, 6, 3, 4], max_texts=2)
        assert sorted(two) == [1, 2, 3, 4, 5]
        assert two == pytest.approx({i: expected[i] for i in two}, rel=1e-12)
    finally:
        reader.close()
