"""Split articles into chunks that follow paragraph and sentence boundaries.

Every chunk, with its title prefix and the model's special tokens, fits the model's
token limit, so the model never truncates anything silently. Short paragraphs are
packed together; a long paragraph is cut between sentences, and the next chunk then
repeats trailing sentences of the previous one up to ``overlap_tokens``. A single
sentence longer than the budget is cut between words (the only cut not on a boundary).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .config import ChunkSettings
from .errors import LoadError
from .records import PARAGRAPH_SEPARATOR, Article, Chunk
from .text import sentence_spans

TokenCounter = Callable[[Sequence[str]], list[int]]

# Tokens a chunk must have left for its own text after the title prefix.
MIN_TEXT_TOKENS = 16
# Characters a chunk may hold per token of its budget. A tokenizer turns a long run of
# characters it does not know (a 5 MB "word") into one unknown token, so counting
# tokens alone would let a single chunk hold megabytes; prose uses about 5 a token.
MAX_CHARS_PER_TOKEN = 16


@dataclass(frozen=True)
class _Unit:
    """A sentence (or piece of one) located in the article."""

    start: int
    end: int
    paragraph: int  # 1-based
    tokens: int


def embedding_text(title: str, passage: str, title_prefix: bool) -> str:
    """The text the model embeds for a chunk: the title gives a passage its context."""
    return f"{title}\n{passage}" if title_prefix and title else passage


class Chunker:
    def __init__(self, settings: ChunkSettings, count_tokens: TokenCounter, model_max_tokens: int):
        self.settings = settings
        self.count_tokens = count_tokens
        self.max_tokens = min(settings.max_tokens, model_max_tokens)

    def chunk(self, article: Article) -> list[Chunk]:
        # Tokens a chunk may use for its own text, after the title prefix and special tokens.
        overhead = self.count_tokens(
            [embedding_text(article.title, "", self.settings.title_prefix)]
        )[0]
        budget = self.max_tokens - overhead
        if budget < MIN_TEXT_TOKENS:
            raise LoadError(
                f"the title is too long: it leaves no room for text in a chunk of"
                f" {self.max_tokens} tokens"
            )
        units = self._units(article.text, budget)
        return self._pack(article, units, budget)

    def _units(self, text: str, budget: int) -> list[_Unit]:
        max_chars = budget * MAX_CHARS_PER_TOKEN
        spans: list[tuple[int, int, int]] = []
        offset = 0
        for number, paragraph in enumerate(text.split(PARAGRAPH_SEPARATOR), start=1):
            spans.extend((offset + a, offset + b, number) for a, b in sentence_spans(paragraph))
            offset += len(paragraph) + len(PARAGRAPH_SEPARATOR)
        if not spans:
            return []
        # Counted without special tokens: the overhead already holds them.
        special = self.count_tokens([""])[0]
        # A sentence longer than a chunk may hold is cut without counting it whole.
        short = [text[a:b] for a, b, _ in spans if b - a <= max_chars]
        # (A tokenizer may fail on an empty batch: every sentence may be long.)
        counts = iter(self.count_tokens(short) if short else [])
        units: list[_Unit] = []
        for a, b, number in spans:
            count = next(counts) - special if b - a <= max_chars else budget + 1
            if count <= budget:
                units.append(_Unit(a, b, number, count))
            else:
                units.extend(self._split_long(text, a, b, number, budget, special))
        return units

    def _split_long(
        self, text: str, start: int, end: int, paragraph: int, budget: int, special: int
    ) -> Iterator[_Unit]:
        """Cut an over-long sentence into pieces that fit the budget: between words, or
        inside a word only when one word alone is too long (a long URL).

        Each piece is looked for within ``max_chars`` of its start, so the tokenizer
        never sees more than that at once: linear in the sentence's length."""

        def tokens(a: int, b: int) -> int:
            return self.count_tokens([text[a:b]])[0] - special

        max_chars = budget * MAX_CHARS_PER_TOKEN
        while start < end:
            # The longest prefix that fits, by binary search on its end: few tokenizer calls.
            window = min(end, start + max_chars)
            low, high = start + 1, window
            while low < high:
                middle = (low + high + 1) // 2
                if tokens(start, middle) <= budget:
                    low = middle
                else:
                    high = middle - 1
            cut = low
            if cut < end and not text[cut].isspace():
                space = text.rfind(" ", start, cut)
                if space > start:
                    cut = space
            piece_end = cut
            while piece_end > start and text[piece_end - 1].isspace():
                piece_end -= 1
            yield _Unit(start, piece_end, paragraph, tokens(start, piece_end))
            start = cut
            while start < end and text[start].isspace():
                start += 1

    def _pack(self, article: Article, units: list[_Unit], budget: int) -> list[Chunk]:
        chunks: list[Chunk] = []
        current: list[_Unit] = []
        max_chars = budget * MAX_CHARS_PER_TOKEN

        def size(us: list[_Unit]) -> int:
            # One token between two units stands for the space or newline joining them.
            return sum(u.tokens for u in us) + max(0, len(us) - 1)

        def emit() -> None:
            first, last = current[0], current[-1]
            chunks.append(
                Chunk(
                    article_id=article.id,
                    ordinal=len(chunks),
                    text=article.text[first.start : last.end],
                    char_start=first.start,
                    char_end=last.end,
                    paragraph_start=first.paragraph,
                    paragraph_end=last.paragraph,
                )
            )

        index = 0
        total = 0  # size(current), kept as units come and go: linear in the units
        while index < len(units):
            unit = units[index]
            new_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
            if new_paragraph and total >= budget // 2:
                # A paragraph break is the best place to cut: a chunk half full stops
                # there, so chunks stay on one topic; shorter paragraphs are packed.
                emit()
                current, total = [], 0
                continue
            grown = total + unit.tokens + (1 if current else 0)
            if current and (grown > budget or unit.end - current[0].start > max_chars):
                emit()
                current = [] if new_paragraph else self._overlap(current, unit, budget)
                total = size(current)
                continue
            current.append(unit)
            total = grown
            index += 1
        if current:
            emit()
        return chunks

    def _overlap(self, previous: list[_Unit], following: _Unit, budget: int) -> list[_Unit]:
        """Trailing sentences of the previous chunk (same paragraph) to repeat in the next."""
        carried: list[_Unit] = []
        total = 0
        max_chars = budget * MAX_CHARS_PER_TOKEN
        for unit in reversed(previous[1:]):
            if unit.paragraph != following.paragraph:
                break
            total += unit.tokens + 1
            if (
                total > self.settings.overlap_tokens
                or total + following.tokens + 1 > budget
                or following.end - unit.start > max_chars
            ):
                break
            carried.append(unit)
        carried.reverse()
        return carried
