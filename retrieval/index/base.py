"""The storage seam: what search, ingest and the web sources need of an index.

Three protocols, taken from the calls those make: ``IndexReader`` (a committed generation,
opened for questions and look-ups), ``IndexWriter`` (the next generation, being written
by ingest) and ``WriteLock`` (the writer's hold on an index, which builds and commits
the next generation). An ``IndexBackend`` opens the first and takes the last; the
``local`` backend keeps an index as a folder of generations (SQLite + FAISS, see
``generations``), and another (a server engine, say) plugs in by name (``backends``).

Beside them, the plain values that cross the seam.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..config import ChunkSettings, VectorSettings
from ..records import Article, ArticleRef, ArticleSummary, Chunk, SearchFilter
from .manifest import Manifest

if TYPE_CHECKING:
    from ..embedding.model_files import OnnxModel


@dataclass(frozen=True)
class IndexedArticle:
    """What ingest needs to know of an indexed article: has it changed, where did it come from."""

    content_hash: str
    root: str | None
    source: str


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk with its article's id: enough to cut its passage out of the article."""

    id: int
    article_id: str
    ordinal: int
    char_start: int
    char_end: int
    paragraph_start: int
    paragraph_end: int


@dataclass(frozen=True)
class WebResourceRow:
    """A ``web_resources`` row; ``articles`` maps ids to their committed content hashes."""

    url: str
    # "page", "feed", "sitemap" or "sitemapindex": what the URL was, so its listing is read right.
    kind: str
    etag: str | None
    last_modified: str | None
    lastmod: str | None
    articles: dict[str, str]
    listing: list[dict[str, str | None]]
    checked: str | None = None


# A chunk's sentences: their article offsets (n x 2) and unit vectors (n x dimension).
SentenceVectors = tuple[np.ndarray, np.ndarray]


class ArticleReader(Protocol):
    """The articles of a generation, as ingest and the web sources read them back."""

    def article(self, article_id: str) -> Article | None: ...

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]: ...

    def indexed_articles(self) -> dict[str, IndexedArticle]:
        """Every article's content hash, root and source, by id."""
        ...

    def indexed_article(self, article_id: str) -> IndexedArticle | None:
        """One article's content hash, root and source (None if it is not indexed)."""
        ...

    def web_resources(self) -> dict[str, WebResourceRow]:
        """What the web sources remembered when this generation was written, by URL."""
        ...


class IndexReader(ArticleReader, Protocol):
    """A committed generation, opened and checked, for questions and look-ups.

    Callers serialise calls, but for ``nearest``, which several threads may call at once.
    It keeps working after a newer generation is committed (``is_current`` tells).
    """

    @property
    def manifest(self) -> Manifest: ...

    @property
    def location(self) -> str:
        """Where the index is (a folder, a server address), for `citebot stats`."""
        ...

    @property
    def size_bytes(self) -> int:
        """Its size when it was opened."""
        ...

    def is_current(self) -> bool:
        """False once a newer generation was committed; CitebotError if that cannot be read."""
        ...

    def reopened(self, busy: AbstractContextManager[object] | None = None) -> IndexReader:
        """The index as committed now, sharing what has not changed (cheaper than an open);
        ``busy`` is held while this one is read for it (the lock its users hold)."""
        ...

    @property
    def updated(self) -> str:
        """When the index was last written."""
        ...

    def describe_segments(self) -> tuple[int, int, int, str | None]:
        """Vectors in the main vector file, chunks written since (the segment), chunks of
        the main file removed since (masked), and the last compaction (None: never)."""
        ...

    def close(self) -> None: ...

    # -- search
    def nearest(
        self, vector: np.ndarray, limit: int, among: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``limit`` chunks whose vectors are nearest ``vector`` (chunk id, cosine), best
        first; only chunks ``among`` if given."""
        ...

    def keyword_search(
        self,
        question: str,
        limit: int,
        filters: SearchFilter | None = None,
        budget: int | None = None,
        exact: bool = True,
    ) -> list[tuple[int, float]]:
        """BM25 over titles and chunk texts (chunk id, score), best first; with ``filters``,
        only chunks of the articles they admit; with a ``budget``, about that many matching
        chunks read at most (``exact``: the best of them ranked by BM25 over the whole
        index, else by FTS5's bm25() of the terms kept within the budget)."""
        ...

    def keyword_scores(
        self, question: str, chunk_ids: Iterable[int], budget: int | None
    ) -> dict[int, float]:
        """BM25 of ``chunk_ids`` over the whole index, as an unbounded ``keyword_search``
        scores them (chunks no term matches left out); empty when a search within
        ``budget`` reads every match anyway."""
        ...

    def admits_any(self, filters: SearchFilter) -> bool: ...

    def admitted_chunk_ids(
        self, filters: SearchFilter, among: Sequence[int] | None = None
    ) -> list[int]: ...

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRow]: ...

    def sentence_vectors(self, chunk_ids: Iterable[int]) -> dict[int, SentenceVectors]:
        """Per chunk, its sentences' vectors; chunks stored without them are absent."""
        ...

    # -- look-ups
    def article_refs(self, ids: Iterable[str]) -> dict[str, ArticleRef]:
        """What a citation names of each article, by id, without reading its text (the
        copies an answer names: a story can have a hundred)."""
        ...

    def counts(self) -> tuple[int, int]:
        """Articles and chunks."""
        ...

    def articles_titled(self, title: str) -> list[Article]: ...

    def search_titles(self, text: str, limit: int) -> list[ArticleRef]: ...

    def summaries(self) -> list[ArticleSummary]: ...

    def suggest_sources(self, prefix: str, limit: int) -> list[str]: ...

    def suggest_authors(self, text: str, limit: int) -> list[str]: ...

    def describe_vectors(self) -> str:
        """The kind of vector index, as `citebot stats` shows it."""
        ...

    # -- questions and copies (retrieval.questions, retrieval.duplicates)
    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """About how many chunks hold each of ``terms`` (a word the index never holds: 0)."""
        ...

    def chunk_ids(self, article_id: str) -> list[int]:
        """The ids of an article's chunks, in order."""
        ...

    def stories(self, article_ids: Iterable[str]) -> dict[str, str]:
        """The story (the id of its first-ingested article) of each of ``article_ids`` that
        has copies; articles without copies are left out."""
        ...

    def story_heads(self, stories: Iterable[str], first: int) -> dict[str, tuple[list[str], int]]:
        """The first ``first`` article ids of each story, in ingest order, and how many the
        story has."""
        ...

    def duplicate_groups(self) -> list[list[str]]:
        """Every story told by more than one article: their ids, in ingest order."""
        ...


class IndexWriter(ArticleReader, Protocol):
    """The next generation, while ingest writes it: nothing is visible to readers until
    the ``WriteLock.next_generation`` block that gave it ends and commits, or until
    ``commit_batch`` commits what was written so far (but for a rebuild)."""

    def add_article(
        self, article: Article, content_hash: str, chunks: Sequence[Chunk], root: str | None
    ) -> list[int]:
        """Add an article (read from ``root``) and its chunks; the new chunk ids."""
        ...

    def delete_article(self, article_id: str) -> None:
        """Remove an article with its chunks and their vectors."""
        ...

    def set_root(self, article_ids: Iterable[str], root: str) -> None: ...

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None: ...

    def add_sentence_vectors(
        self, chunk_id: int, spans: Sequence[tuple[int, int]], vectors: np.ndarray
    ) -> None: ...

    def save_web_resources(self, rows: Iterable[WebResourceRow]) -> None: ...

    def forget_web_resources(self, urls: Iterable[str]) -> None: ...

    def group_copies(self) -> int:
        """Fingerprint the articles added and group every article into stories (see
        retrieval.duplicates), before the commit; how many are copies of another."""
        ...

    def commit_batch(self) -> bool:
        """Commit what was written so far, if anything, and go on in a new transaction: a
        crash afterwards keeps it. Whether a batch was committed. Readers see it, but for
        a rebuild's: it stays out of sight until the rebuild ends, and the next rebuild
        may resume from it (for the local backend, see ``staging``)."""
        ...


class WriteLock(Protocol):
    """A writer's exclusive hold on an index, with the articles it builds on."""

    @property
    def previous(self) -> ArticleReader | None:
        """The articles as committed (the index checked); None for a new index or a rebuild."""
        ...

    def next_generation(
        self,
        dimension: int,
        chunking: ChunkSettings,
        artifact: OnnxModel | None = None,
        vector_settings: VectorSettings | None = None,
    ) -> AbstractContextManager[IndexWriter]:
        """The write: in place, or a new generation for a new index or a rebuild; committed
        when the block succeeds and changed something (a rebuild or a new index always
        commits)."""
        ...


class IndexBackend(Protocol):
    """Where indexes live and how they are opened; chosen by name (``[index] backend``)."""

    def read_manifest(self, location: Path) -> Manifest:
        """The current manifest (a cheap read); IndexNotFoundError if there is no index."""
        ...

    def committed_version(self, location: Path) -> int:
        """A number that grows with every commit (a cheap read): readers follow it."""
        ...

    def open_reader(
        self,
        location: Path,
        model: str | None,
        backend: str | None = None,
        manifest: Manifest | None = None,
    ) -> IndexReader:
        """The current generation, checked to hold vectors of ``model`` run by ``backend``
        (None checks nothing); ``manifest``: the one just read, if any."""
        ...

    def lock_for_writing(
        self, location: Path, model: str, *, rebuild: bool = False, backend: str = "torch"
    ) -> AbstractContextManager[WriteLock]:
        """The writer lock, taken at once or refused (CitebotError) if another writer holds it."""
        ...

    def model_folder(self, location: Path, manifest: Manifest) -> Path:
        """The folder holding the exported model of an index built by an ONNX backend."""
        ...
