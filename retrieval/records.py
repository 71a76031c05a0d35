"""Plain values passed between the library, the CLI and the bot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from .errors import BadFilterError

PARAGRAPH_SEPARATOR = "\n\n"
# Marks where a trimmed view cuts a paragraph.
ELLIPSIS = "…"


def pages_label(first: int, last: int) -> str:
    """``p. 4`` or ``pp. 4–5``."""
    return f"p. {first}" if first == last else f"pp. {first}–{last}"


def paragraphs_label(first: int, last: int) -> str:
    """``¶3`` or ``¶3–4`` (1-based, inclusive): the one spelling of a paragraph reference,
    in the CLI, the bot and the JSON's ``location``."""
    return f"¶{first}" if first == last else f"¶{first}–{last}"


def location_label(paragraphs: tuple[int, int], pages: tuple[int, int] | None) -> str:
    """``¶3``, ``¶3–4``, ``p. 2, ¶5`` or ``pp. 2–3, ¶5–7``: where a reader finds a passage."""
    label = paragraphs_label(*paragraphs)
    return f"{pages_label(*pages)}, {label}" if pages else label


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

    def to_dict(self) -> dict[str, Any]:
        """As `citebot article --json` prints it and the HTTP API returns it."""
        data: dict[str, Any] = {**asdict(self.ref), "paragraphs": self.paragraphs}
        if self.pages:
            data["pages"] = list(self.pages)
        return data


@dataclass(frozen=True)
class ArticleSummary:
    """An article in a listing: its reference and how many chunks it has."""

    article: ArticleRef
    chunk_count: int
    paragraph_count: int

    def to_dict(self) -> dict[str, Any]:
        """As `citebot articles --json` lists it and the HTTP API pages it."""
        return {
            **asdict(self.article),
            "chunks": self.chunk_count,
            "paragraphs": self.paragraph_count,
        }


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
class SearchFilter:
    """Limits a search to some articles; every condition given must hold.

    ``source`` is an article's source, or a folder, file or site it lies under: it
    matches a source equal to it or continuing it after ``/``, ``#`` or ``:``
    (case-insensitive). ``author`` matches an author containing it (case-insensitive).
    ``after`` and ``before`` are inclusive; an article whose date names no single day
    is left out by either (see ``retrieval.dates``).
    """

    source: str | None = None
    author: str | None = None
    after: date | None = None
    before: date | None = None

    def __post_init__(self) -> None:
        # Blank text filters nothing; surrounding white space is never meant.
        for name in ("source", "author"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value.strip() or None)
        if self.after and self.before and self.after > self.before:
            raise BadFilterError(
                f"the date range is empty: after {self.after.isoformat()}"
                f" is later than before {self.before.isoformat()}"
            )

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.source, self.author, self.after, self.before))

    def to_dict(self) -> dict[str, str]:
        """The conditions given, dates as ISO strings."""
        return {
            k: v.isoformat() if isinstance(v, date) else v
            for k, v in asdict(self).items()
            if v is not None
        }

    def describe(self) -> str:
        """The conditions in words, for messages: ``source "bbc/" · after 2024-01-01``."""
        return " · ".join(
            f"{name} {value}" if name in ("after", "before") else f'{name} "{value}"'
            for name, value in self.to_dict().items()
        )


@dataclass(frozen=True)
class Passage:
    """One result: a verbatim span of an article, its best sentence and its citation.

    Offsets (``highlight_*``, ``context_*``) are into ``text``; ``char_start`` and
    ``char_end`` place ``text`` in its article.
    """

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
    # Above the relevance cut-off on the first page of its answer: shown there, not held
    # back for "More results".
    shown: bool = True
    # The trimmed view: the paragraph or two holding the highlight, cut between sentences
    # when long; where it cuts a paragraph of the article, a reader sees "…".
    context_start: int = 0
    context_end: int = -1
    context_cut: tuple[bool, bool] = (False, False)
    context_paragraphs: tuple[int, int] | None = None
    # First and last page, for a paged document (PDF).
    pages: tuple[int, int] | None = None
    # Where the passage is on the web: its article's URL with a text fragment, or the PDF
    # page (see retrieval.links).
    link: str | None = None
    # Other articles telling the same story (copies of this passage's article), named
    # under it as "also in: ..." rather than shown as results of their own: the first few
    # in ingest order (retrieval.search.COPIES_LISTED), and how many there are in all.
    copies: tuple[ArticleRef, ...] = ()
    copy_count: int = 0

    def __post_init__(self) -> None:
        if self.context_end < 0:
            object.__setattr__(self, "context_end", len(self.text))
        if self.context_paragraphs is None:
            object.__setattr__(self, "context_paragraphs", self.paragraphs)
        if self.copy_count < len(self.copies):
            object.__setattr__(self, "copy_count", len(self.copies))

    def trimmed(self) -> tuple[str, int, int]:
        """The trimmed view as shown, with "…" where it cuts, and the highlight's offsets in it."""
        before = ELLIPSIS if self.context_cut[0] else ""
        after = ELLIPSIS if self.context_cut[1] else ""
        view = before + self.text[self.context_start : self.context_end] + after
        shift = len(before) - self.context_start
        start = max(self.highlight_start + shift, len(before))
        end = min(self.highlight_end + shift, len(view) - len(after))
        return view, start, max(start, end)

    @property
    def location(self) -> str:
        """``¶3``, ``¶3–4``, ``p. 2, ¶5`` or ``pp. 2–3, ¶5–7``: where a reader finds it."""
        return location_label(self.paragraphs, self.pages)

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
            "shown": self.shown,
            "context_span": [self.context_start, self.context_end],
            "context_cut": list(self.context_cut),
            "context_paragraphs": list(self.context_paragraphs or self.paragraphs),
            "copies": [asdict(a) for a in self.copies],
            "copy_count": self.copy_count,
        }


# What an answer is (Answer.kind): passages answering the question; the opening passages
# of the one article a question about an article as a whole points at; or, when such a
# question could mean several articles, the question back "which article?" naming them
# (in ``nearest``).
PASSAGES = "passages"
ARTICLE_LEAD = "article"
WHICH_ARTICLE = "which_article"


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
    # The filters the search ran under (empty: none).
    filters: SearchFilter = field(default_factory=lambda: SearchFilter())
    # Shown above the passages of a qualified answer: what the question names that they do
    # not mention ("The articles mention defense, but not the Philippines."); else None.
    caveat: str | None = None
    kind: str = PASSAGES

    @property
    def shown(self) -> tuple[Passage, ...]:
        """The passages of the first page: the best one and those close enough to it."""
        return tuple(p for p in self.passages if p.shown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "confidence": round(self.confidence, 4),
            "results": [p.to_dict() for p in self.passages],
            "nearest": [asdict(a) for a in self.nearest],
            "caveat": self.caveat,
            "kind": self.kind,
        } | ({"filters": self.filters.to_dict()} if self.filters else {})


def failed_answer_dict(line: int, question: str | None, error: str) -> dict[str, Any]:
    """A batch entry for a question that got no answer (`ask --batch --json`, the HTTP batch):
    the fields of an answer that a reader checks first, and why."""
    return {"line": line, "question": question, "error": error, "answered": False, "results": []}


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
    # How the model runs ("torch", "onnx", "onnx-int8") and how its weights were quantized
    # (None: not quantized), as the index records them.
    backend: str = "torch"
    quantization: str | None = None
    # "exact", or "approximate (IVF, ...)": see VectorIndex.describe.
    vector_index: str = "exact"
    # The segments (retrieval.index.segments): vectors in the main file, chunks written since
    # (searched beside it), main-file chunks removed since (masked), and the last compaction.
    main_vectors: int = 0
    segment_chunks: int = 0
    masked_chunks: int = 0
    last_compaction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def runs_as(self) -> str:
        """The backend, with the quantization if any."""
        return f"{self.backend} ({self.quantization})" if self.quantization else self.backend
