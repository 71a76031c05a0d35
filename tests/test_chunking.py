"""Chunks: verbatim spans on sentence and paragraph boundaries that fit the token budget."""

from __future__ import annotations

import itertools
import random

import pytest

from retrieval.chunking import Chunker, embedding_text
from retrieval.config import ChunkSettings
from retrieval.errors import LoadError
from retrieval.files import SourceFile, discover
from retrieval.loaders import load_file
from retrieval.records import PARAGRAPH_SEPARATOR, Article, Chunk
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, SAMPLES

EMBEDDER = FakeEmbedder(max_tokens=128)
VOCABULARY = (
    "harbour ferry council bakery orchestra tide lantern market volunteer bridge river "
    "school garden bus library ticket island winter summer boat crew hall"
).split()


def make_article(seed: int, paragraphs: int = 6, title: str = "A Title for the Test") -> Article:
    """Paragraphs of random sentences, some short, some long, a few with abbreviations."""
    rng = random.Random(seed)
    body = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 9)):
            n = rng.choice([3, 6, 10, 18, 30])
            text = " ".join(rng.choice(VOCABULARY) for _ in range(n))
            if rng.random() < 0.2:
                text = "Mr. Quint said the " + text
            sentences.append(text[0].upper() + text[1:] + rng.choice([".", "!", "?"]))
        body.append(" ".join(sentences))
    return Article(f"a{seed}", title, PARAGRAPH_SEPARATOR.join(body), "test.txt")


def real_articles() -> list[Article]:
    found, _ = discover([CORPUS, SAMPLES])
    return [a for f in found for a in load_file(f).articles]


def chunker(**settings: object) -> Chunker:
    return Chunker(ChunkSettings(**settings), EMBEDDER.count_tokens, EMBEDDER.max_tokens)


def paragraph_of(article: Article, offset: int) -> int:
    """1-based number of the paragraph holding character ``offset``."""
    return article.text[:offset].count(PARAGRAPH_SEPARATOR) + 1


def check_invariants(article: Article, chunks: list[Chunk], settings: ChunkSettings) -> None:
    assert chunks, "an article with text has at least one chunk"
    budget = min(settings.max_tokens, EMBEDDER.max_tokens)
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert chunk.article_id == article.id
        assert chunk.text == article.text[chunk.char_start : chunk.char_end]
        assert chunk.text == chunk.text.strip()
        assert chunk.paragraph_start == paragraph_of(article, chunk.char_start)
        assert chunk.paragraph_end == paragraph_of(article, chunk.char_end - 1)
        embedded = embedding_text(article.title, chunk.text, settings.title_prefix)
        assert EMBEDDER.count_tokens([embedded])[0] <= budget, chunk.text
    # Chunks come in article order.
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts)
    # Every character of every paragraph is in some chunk (white space between two
    # sentences where a chunk ends is the only thing that may be left out).
    covered = bytearray(len(article.text))
    for chunk in chunks:
        covered[chunk.char_start : chunk.char_end] = b"\x01" * (chunk.char_end - chunk.char_start)
    missing = [i for i, flag in enumerate(covered) if not flag and not article.text[i].isspace()]
    assert missing == [], article.text[missing[0] : missing[0] + 40] if missing else ""


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    "settings",
    [
        ChunkSettings(),
        ChunkSettings(max_tokens=48, overlap_tokens=12),
        ChunkSettings(max_tokens=64, overlap_tokens=0, title_prefix=False),
    ],
    ids=["default", "small", "no-overlap-no-title"],
)
def test_invariants_on_generated_articles(seed: int, settings: ChunkSettings) -> None:
    article = make_article(seed)
    chunks = Chunker(settings, EMBEDDER.count_tokens, EMBEDDER.max_tokens).chunk(article)
    check_invariants(article, chunks, settings)


@pytest.mark.parametrize("settings", [ChunkSettings(), ChunkSettings(max_tokens=40)])
def test_invariants_on_the_corpus_and_samples(settings: ChunkSettings) -> None:
    articles = real_articles()
    assert len(articles) == 10
    for article in articles:
        chunks = Chunker(settings, EMBEDDER.count_tokens, EMBEDDER.max_tokens).chunk(article)
        check_invariants(article, chunks, settings)


def test_budget_is_capped_by_the_model_limit() -> None:
    assert chunker(max_tokens=10_000).max_tokens == EMBEDDER.max_tokens
    assert chunker(max_tokens=64).max_tokens == 64


def test_short_paragraphs_are_packed_into_one_chunk() -> None:
    article = Article("short", "Short", "One.\n\nTwo.\n\nThree.", "s.txt")
    (chunk,) = chunker().chunk(article)
    assert (chunk.char_start, chunk.char_end) == (0, len(article.text))
    assert (chunk.paragraph_start, chunk.paragraph_end) == (1, 3)


def test_a_long_title_counts_against_the_budget() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    short = chunker(max_tokens=64).chunk(Article("a", "T", text, "a.txt"))
    long_title = " ".join(["word"] * 30)
    long = chunker(max_tokens=64).chunk(Article("a", long_title, text, "a.txt"))
    assert len(long) > len(short)
    for chunk in long:
        assert EMBEDDER.count_tokens([f"{long_title}\n{chunk.text}"])[0] <= 64


def test_a_title_that_leaves_no_room_is_a_load_error() -> None:
    # A LoadError (a CitebotError) is reported for the article; a bare ValueError aborted ingest.
    with pytest.raises(LoadError, match="title is too long"):
        chunker(max_tokens=40).chunk(Article("a", " ".join(["w"] * 30), "Text.", "a.txt"))


def test_an_over_long_sentence_is_cut_between_words() -> None:
    sentence = " ".join(f"w{i}" for i in range(300)) + "."
    article = Article("long", "Long", f"Intro sentence. {sentence} Outro.", "l.txt")
    chunks = chunker(max_tokens=64, overlap_tokens=0).chunk(article)
    check_invariants(article, chunks, ChunkSettings(max_tokens=64, overlap_tokens=0))
    assert len(chunks) >= 5
    inner = [c for c in chunks if "w150" in c.text.split()]
    assert len(inner) == 1
    # The cut is between words: no word is split across two chunks.
    pieces = " ".join(c.text for c in chunks).split()
    assert [p for p in pieces if p.startswith("w")] == [*sentence.rstrip(".").split()[:-1], "w299."]


def test_a_single_word_longer_than_the_budget_still_fits() -> None:
    url = "https://example.org/" + "/".join(f"part{i}" for i in range(120))
    article = Article("url", "Url", f"See {url} for details. Then more.", "u.txt")
    settings = ChunkSettings(max_tokens=64)
    chunks = Chunker(settings, EMBEDDER.count_tokens, EMBEDDER.max_tokens).chunk(article)
    assert len(chunks) >= 2 and chunks[-1].text.endswith("Then more.")
    for chunk in chunks:
        assert EMBEDDER.count_tokens([f"Url\n{chunk.text}"])[0] <= 64


def _one_long_paragraph_and_a_short_one() -> Article:
    sentences = [f"Sentence {i} says something about the harbour wall." for i in range(30)]
    return Article("ov", "Overlap", " ".join(sentences) + "\n\nA second paragraph.", "o.txt")


def test_overlap_repeats_trailing_sentences_within_a_paragraph() -> None:
    article = _one_long_paragraph_and_a_short_one()
    settings = ChunkSettings(max_tokens=64, overlap_tokens=24)
    chunks = Chunker(settings, EMBEDDER.count_tokens, EMBEDDER.max_tokens).chunk(article)
    check_invariants(article, chunks, settings)
    first_paragraph = [c for c in chunks if c.paragraph_end == 1]
    assert len(first_paragraph) >= 3
    for before, after in itertools.pairwise(first_paragraph):
        # The next chunk starts inside the previous one, on a sentence start...
        assert before.char_start < after.char_start < before.char_end
        repeated = article.text[after.char_start : before.char_end]
        assert repeated.startswith("Sentence ") and repeated.endswith(".")
        # ...and repeats no more than the overlap allows.
        assert EMBEDDER.count_tokens([repeated])[0] - 2 <= settings.overlap_tokens
        # ...but never a whole chunk.
        assert after.char_end > before.char_end


def test_overlap_never_crosses_a_paragraph_break() -> None:
    article = _one_long_paragraph_and_a_short_one()
    chunks = chunker(max_tokens=64, overlap_tokens=24).chunk(article)
    last = chunks[-1]
    assert article.text[last.char_start : last.char_end] == "A second paragraph."
    assert (last.paragraph_start, last.paragraph_end) == (2, 2)
    overlapping = [
        (before, after)
        for before, after in itertools.pairwise(chunks)
        if after.char_start < before.char_end
    ]
    assert len(overlapping) >= 2  # the long paragraph's chunks do overlap
    for before, after in overlapping:
        repeated = article.text[after.char_start : before.char_end]
        assert PARAGRAPH_SEPARATOR not in repeated
        assert after.paragraph_start == before.paragraph_end


def test_no_overlap_when_overlap_tokens_is_zero() -> None:
    article = _one_long_paragraph_and_a_short_one()
    chunks = chunker(max_tokens=64, overlap_tokens=0).chunk(article)
    assert len(chunks) >= 3
    for before, after in itertools.pairwise(chunks):
        assert after.char_start >= before.char_end


def test_chunks_are_deterministic() -> None:
    article = make_article(99)
    assert chunker().chunk(article) == chunker().chunk(article)


def test_embedding_text() -> None:
    assert embedding_text("Title", "Body.", True) == "Title\nBody."
    assert embedding_text("Title", "Body.", False) == "Body."
    assert embedding_text("", "Body.", True) == "Body."


def test_a_loaded_txt_article_chunks_cleanly() -> None:
    (article,) = load_file(SourceFile(CORPUS / "ferry.txt", "ferry.txt")).articles
    chunks = chunker(max_tokens=48).chunk(article)
    check_invariants(article, chunks, ChunkSettings(max_tokens=48))
    assert chunks[-1].paragraph_end == len(article.paragraphs)
