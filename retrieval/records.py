"""Plain values passed between the library, the CLI and the bot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PARAGRAPH_SEPARATOR = "\n\n"


def paragraphs_label(first: int, last: int) -> str:
    """``¶ 3`` or ``¶ 3–4`` (1-based, inclusive)."""
    return f"¶ {first}" if first == last else f"¶ {first}–{last}"


@dataclass(frozen=True)
class Problem:
    """Something that was skipped while reading sources, and why.

    ``where`` names the file or record (as cited: relative to its source root, with
    ``#N`` or ``:LINE`` for a record), or the root itself when the root failed.
    """

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class ArticleRef:
    """What a citation needs to name an article."""

    id: str
    title: str
    source: str
    url: str | None = None
    date: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class Article:
    """One article as loaded or stored: its text is its paragraphs joined by a blank line."""

    id: str
    title: str
    text: str
    source: str
    url: str | None = None
    date: str | None = None
    author: str | None = None
    # A paged document (PDF): the page number of each paragraph. Empty for other articles.
    pages: tuple[int, ...] = ()

    @property
    def paragraphs(self) -> list[str]:
        return self.text.split(PARAGRAPH_SEPARATOR)

    def page_span(self, first: int, last: int) -> tuple[int, int] | None:
        """Pages of paragraphs ``first`` to ``last`` (1-based), or None if it has no pages."""
        if not self.pages:
            return None
        return self.pages[first - 1], self.pages[last - 1]

    @property
    def ref(self) -> ArticleRef:
        return ArticleRef(self.id, self.title, self.source, self.url, self.date, self.author)


@dataclass(frozen=True)
class ArticleSummary:
    """An article in a listing: its reference and how many chunks it has."""

    article: ArticleRef
    chunk_count: int
    paragraph_count: int


@dataclass(frozen=True)
class Chunk:
    """A span of an article that is embedded and searched as one unit.

    ``text`` is ``article.text[char_start:char_end]``; paragraphs are 1-based and inclusive.
    """

    article_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    paragraph_start: int
    paragraph_end: int


@dataclass(frozen=True)
class Passage:
    """One result: a verbatim span of an article, its best sentence and its citation."""

    rank: int
    score: float
    text: str
    highlight: str
    # Offsets of ``highlight`` inside ``text``, so callers can mark it without searching.
    highlight_start: int
    highlight_end: int
    article: ArticleRef
    paragraphs: tuple[int, int]
    char_start: int
    char_end: int
    chunk_ids: tuple[int, ...]
    # First and last page, for a paged document (PDF).
    pages: tuple[int, int] | None = None
    # Where the passage is on the web: its article's URL with a text fragment, or the PDF
    # page (see retrieval.links).
    link: str | None = None

    @property
    def location(self) -> str:
        """``¶ 3``, ``¶ 3–4``, ``p. 2, ¶ 5`` or ``pp. 2–3, ¶ 5–7``: where a reader finds it."""
        paragraphs = paragraphs_label(*self.paragraphs)
        if not self.pages:
            return paragraphs
        start, end = self.pages
        pages = f"p. {start}" if start == end else f"pp. {start}–{end}"
        return f"{pages}, {paragraphs}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "passage": self.text,
            "highlight": self.highlight,
            "highlight_span": [self.highlight_start, self.highlight_end],
            "paragraphs": list(self.paragraphs),
            "char_span": [self.char_start, self.char_end],
            "chunk_ids": list(self.chunk_ids),
            "pages": list(self.pages) if self.pages else None,
            "link": self.link,
            "article": asdict(self.article),
        }


@dataclass(frozen=True)
class Answer:
    """What a question gets: passages when the articles cover it, else the nearest articles."""

    question: str
    answered: bool
    passages: tuple[Passage, ...]
    nearest: tuple[ArticleRef, ...] = ()
    # Evidence that the articles cover the question; below the configured minimum,
    # ``answered`` is false (see search.answer_confidence).
    confidence: float = 0.0
    # Passages skipped before these (for "next results").
    offset: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "confidence": round(self.confidence, 4),
            "results": [p.to_dict() for p in self.passages],
            "nearest": [asdict(a) for a in self.nearest],
        }


@dataclass(frozen=True)
class IndexStats:
    articles: int
    chunks: int
    model: str
    dimension: int
    size_bytes: int
    created: str
    updated: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
