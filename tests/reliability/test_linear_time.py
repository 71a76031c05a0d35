"""Every step on article text is linear (or n log n) in its size.

Quadratic steps turned small files into hours: 10,000 paragraphs took the article
splitter 123 s, a 540 KB URL took the long-sentence cutter 298 s. These tests compare
the cost of an input with that of one 8 times larger (about 8 times the cost when
linear, 64 times when quadratic), or count the work done, so they do not depend on the
machine's speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from retrieval.article_split import split_articles
from retrieval.chunking import MAX_CHARS_PER_TOKEN, Chunker
from retrieval.config import ChunkSettings, IngestSettings
from retrieval.files import SourceFile
from retrieval.loaders import load_file, split_paragraphs
from retrieval.records import Article
from retrieval.text import sentence_spans
from tests.fakes import FakeEmbedder

# Linear work grows 8 times; quadratic work 64 times. Anything under this is not quadratic.
MAX_GROWTH = 24


def growth(run: Callable[[int], object], small: int) -> float:
    """How much longer ``run`` takes on 8 times the input (best of three, each).

    CPU time of this process, not wall time, so other processes on a busy machine do not
    count against the input (wall time gave ratios of 30 for linear code under load 13).
    """

    def best(size: int) -> float:
        times = []
        for _ in range(3):
            started = time.process_time()
            run(size)
            times.append(time.process_time() - started)
        return min(times)

    run(small)  # warm up: caches, regex compilation
    return best(8 * small) / best(small)


def test_splitting_many_paragraphs_into_articles() -> None:
    paragraphs = [f"Paragraph {i} of the long file, with a sentence." for i in range(16_000)]
    ratio = growth(lambda n: split_articles(paragraphs[:n]), 2_000)
    assert ratio < MAX_GROWTH, ratio


def test_sentences_of_runs_of_marks_and_abbreviations() -> None:
    for unit in (".", "Mr. ", "a.b. ", "!?"):
        ratio = growth(lambda n, unit=unit: sentence_spans(unit * n + " End."), 20_000)
        assert ratio < MAX_GROWTH, (unit, ratio)


def test_a_long_one_line_file(tmp_path) -> None:
    """A 50 MB one-line file ran for 9 minutes (and 3.2 GB) without finishing."""
    line = "word, " * 80_000  # 480 KB, no full stop anywhere

    limits = IngestSettings(max_article_chars=10_000_000)
    embedder = FakeEmbedder()
    chunker = Chunker(ChunkSettings(), embedder.count_tokens, embedder.max_tokens)

    def load_and_chunk(n: int) -> object:
        path = tmp_path / f"line-{n}.txt"
        if not path.exists():
            path.write_text(line[: n * 6])
        (article,) = load_file(SourceFile(path, path.name), limits).articles
        return chunker.chunk(article)

    ratio = growth(load_and_chunk, 10_000)
    assert ratio < MAX_GROWTH, ratio


class CountingEmbedder(FakeEmbedder):
    """Counts the characters the chunker asks the tokenizer to count."""

    def __init__(self) -> None:
        super().__init__(max_tokens=128)
        self.characters = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.characters += sum(map(len, texts))
        return super().count_tokens(texts)


def test_cutting_a_long_url_tokenizes_each_character_a_bounded_number_of_times() -> None:
    """The cutter searched over the whole rest of the sentence for every piece."""
    url = "https://example.org/" + "/".join(f"segment{i}" for i in range(20_000))  # 250 KB
    article = Article("url", "A Long Link", f"See {url} for more.", "url.txt")
    embedder = CountingEmbedder()
    chunks = Chunker(ChunkSettings(), embedder.count_tokens, embedder.max_tokens).chunk(article)
    assert "".join(c.text for c in chunks).replace(" ", "") in article.text.replace(" ", "")
    # Each piece is searched for within a window of MAX_CHARS_PER_TOKEN x budget
    # characters, about log2(window) times: bounded work per character of the text.
    assert embedder.characters < 30 * len(article.text), embedder.characters / len(article.text)


def test_a_huge_word_is_cut_into_chunks_of_bounded_size() -> None:
    """A 5 MB word was one chunk (one unknown token) and one 21 MB answer."""
    word = "Word" * 50_000
    article = Article("word", "Word", f"{word}\n\nA short second paragraph.", "word.txt")
    embedder = FakeEmbedder(max_tokens=128)

    class OneUnknownToken(FakeEmbedder):
        def count_tokens(self, texts: Sequence[str]) -> list[int]:
            # As a WordPiece tokenizer does: a word over 100 characters is one [UNK].
            return [
                sum(1 if len(w) > 100 else max(1, len(w) // 4) for w in t.split()) + 2
                for t in texts
            ]

    tokenizer = OneUnknownToken(max_tokens=128)
    chunks = Chunker(ChunkSettings(), tokenizer.count_tokens, embedder.max_tokens).chunk(article)
    budget = 128 - tokenizer.count_tokens(["Word\n"])[0]
    assert len(chunks) > 1
    assert max(len(c.text) for c in chunks) <= budget * MAX_CHARS_PER_TOKEN
    assert "".join(c.text for c in chunks[:-1]) == word


def test_paragraph_splitting_is_linear() -> None:
    text = "\n\n".join(f"Line {i} of text" for i in range(80_000))
    ratio = growth(lambda n: split_paragraphs(text[: n * 20]), 10_000)
    assert ratio < MAX_GROWTH, ratio
