"""The SQLite half of a local index: articles, chunks and a BM25 keyword index over them.

Chunk ids are the ids of the vectors in the FAISS half, so a search hit in either
half resolves to the same row here.

(Over 600 lines, for a reason: the schema and every statement on one SQLite file are kept
in one class, so that a change of a table meets every query of it; the segment's tables,
which only writes in place and compaction use, are in ``segments``.)
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..dates import iso_day
from ..duplicates import CopiesTable
from ..errors import IndexDamagedError
from ..records import PARAGRAPH_SEPARATOR, Article, ArticleRef, ArticleSummary, Chunk, SearchFilter
from ..text import keyword_terms
from .base import ChunkRow, IndexedArticle, WebResourceRow
from .bm25 import Bm25
from .filters import filter_condition, like_escaped, source_option
from .keywords import (
    CANDIDATE_RESCORE_FACTOR,
    RESCORE_FACTOR,
    KeywordBudget,
    KeywordPlan,
    TermSample,
)
from .steps import discard_log

# The keyword index's tokenizer, also what bm25.Bm25 tokenises chunk texts with.
TOKENIZE = "porter unicode61 remove_diacritics 2"

# ``day`` is the calendar day that ``date`` names (YYYY-MM-DD, see retrieval.dates), for
# date filters; NULL when it names none.
SCHEMA = (
    """
-- root: the source root the article was read from (absolute path or URL, as given), so
-- pruning can tell which root an article belongs to. NULL in indexes written before it
-- was recorded, until the article is found again.
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    date TEXT,
    author TEXT,
    content_hash TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    root TEXT,
    day TEXT
);
CREATE INDEX IF NOT EXISTS articles_title ON articles (title COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    paragraph_start INTEGER NOT NULL,
    paragraph_end INTEGER NOT NULL,
    UNIQUE (article_id, ordinal)
);
-- The vectors of each chunk's sentences, for the highlight (see sentence_vectors).
CREATE TABLE IF NOT EXISTS sentences (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    spans BLOB NOT NULL,
    vectors BLOB NOT NULL,
    scales BLOB NOT NULL
);
-- Titles are indexed beside each chunk's text so that a title match counts for BM25.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5 (
    title, body, tokenize = '"""
    + TOKENIZE
    + """'
);
-- Paged documents (PDF): paragraphs from first_paragraph on (1-based) are on page `page`,
-- up to the next row's first_paragraph.
CREATE TABLE IF NOT EXISTS article_pages (
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    first_paragraph INTEGER NOT NULL,
    page INTEGER NOT NULL,
    PRIMARY KEY (article_id, first_paragraph)
);
-- What the web sources last fetched, committed with the articles it produced, so that a
-- conditional request never says "unchanged" of content that was not committed:
-- `articles` maps each article id to its content_hash as committed here (JSON).
CREATE TABLE IF NOT EXISTS web_resources (
    url TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    lastmod TEXT,
    articles TEXT NOT NULL,
    listing TEXT NOT NULL,
    -- The day (UTC) the URL last answered, to space out checks of unlisted pages.
    checked TEXT
);
"""
)

# BM25 column weights: a term in the title says more about a chunk than one in its body.
TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0
# A budgeted keyword search with exact scores takes the best RANKED_MATCHES x its limit
# matches FTS5 ranks within the budget, and ranks those of the first RESCORED_MATCHES x its
# limit distinct texts (copies of a text score alike: at a million chunks the copies of one
# BBC article filled the list and pushed the answer out) by BM25 over the whole index
# (bm25.Bm25). Chosen on the scale benchmark (docs/benchmarks.md).
RANKED_MATCHES = 10
RESCORED_MATCHES = 2


_ARTICLE_COLUMNS = "id, title, text, source, url, date, author"

# The tables every store has (an FTS5 table keeps its rows' sizes in a shadow table).
REQUIRED_TABLES = ("articles", "chunks", "chunks_fts")


# A multiplicative hash, summed over ids, for IdSummary: sets that share count, extremes
# and sum but differ almost never share it. Ids below 3 billion keep it within int64.
ID_HASH_FACTOR = 2654435761
ID_HASH_MODULUS = 4294967291


@dataclass(frozen=True)
class KeywordCounts:
    """What a read-only store counted for keyword search, handed to the next snapshot a
    reader follows to (``Store.keyword_counts``, ``Store.follow_from``)."""

    removed_tokens: frozenset[str]
    removed: int
    bm25: tuple[dict[str, tuple[str, ...]], dict[tuple[str, ...], int]]
    budget: tuple[dict[str, int], TermSample | None]


@dataclass(frozen=True)
class IdSummary:
    """A fingerprint of a set of ids, computed in one scan, to compare two sets cheaply."""

    count: int
    low: int
    high: int
    total: int
    hashed: int


def _article(row: sqlite3.Row, pages: list[tuple[int, int]] | None = None) -> Article:
    article = Article(**{k: row[k] for k in row.keys()})  # noqa: SIM118 (Row has no __iter__ of keys)
    if not pages:
        return article
    # Runs of (first paragraph, page) back to one page number per paragraph.
    count = article.text.count(PARAGRAPH_SEPARATOR) + 1
    bounds = [first for first, _ in pages[1:]] + [count + 1]
    numbers = [
        page for (first, page), end in zip(pages, bounds, strict=True) for _ in range(first, end)
    ]
    return replace(article, pages=tuple(numbers))


def _page_runs(pages: Sequence[int]) -> list[tuple[int, int]]:
    """(first paragraph, page) for each run of paragraphs on one page."""
    return [
        (number, page)
        for number, page in enumerate(pages, start=1)
        if number == 1 or pages[number - 2] != page
    ]


def _ref(row: sqlite3.Row) -> ArticleRef:
    return ArticleRef(
        row["id"], row["title"], row["source"], row["url"], row["date"], row["author"]
    )


class Store:
    """Articles and chunks in one SQLite file. Not thread-safe: callers serialise access."""

    def __init__(self, path: Path, *, read_only: bool = False, new: bool = False) -> None:
        """``new``: a store being created, whose free pages (the staged vectors of a new
        generation, a compacted segment) are given back to the file system by
        ``PRAGMA incremental_vacuum``."""
        self.path = path
        self._new = new
        # Set by a reader that found the file damaged: see discard_log.
        self.unreadable = False
        try:
            self._open(read_only)
        except sqlite3.Error:
            if hasattr(self, "_db"):
                self._db.close()
            if read_only:
                discard_log(path)
            raise

    def _open(self, read_only: bool) -> None:
        path = self.path
        if read_only:
            # Never written through, but opened read-write (never created: mode=rw), so
            # that the last connection to close a WAL store removes its -wal and -shm files
            # (a read-only one leaves them) and one can recover the log of a killed writer.
            # Quoted: a '?', '#' or '%' in the folder name would change the URI's meaning.
            uri = f"file:{urllib.parse.quote(str(path))}?mode=rw"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(path, check_same_thread=False)
            if self._new:  # only before the first table is created
                self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            # Write-ahead log: a write commits in place while readers keep reading the
            # snapshot they started from (see segments).
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(SCHEMA)
            self._add_root_column()
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.create_function("citebot_day", 1, iso_day, deterministic=True)
        self._db.create_function("citebot_source_option", 2, source_option, deterministic=True)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(articles)")}
        if "day" not in columns and not read_only:
            # An index written before date filters: add the day of every article it holds.
            self._db.execute("ALTER TABLE articles ADD COLUMN day TEXT")
            self._db.execute("UPDATE articles SET day = citebot_day(date)")
            columns.add("day")
        if not read_only:
            self._db.execute("CREATE INDEX IF NOT EXISTS articles_day ON articles (day)")
            # What filters read, apart from the article rows: a row's columns after its
            # text are read through the whole text, so a filter on the table itself would
            # read every article (15 ms on BBC, measured).
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS articles_filter ON articles (id, source, author, day)"
            )
        # An older index opened read-only works out each day as a filter asks for it.
        self._day = "a.day" if "day" in columns else "citebot_day(a.date)"
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        self._has_sentences = "sentences" in tables
        # An index written before pages and web sources existed has neither table; a writer
        # has just created them, a reader does without.
        self._has_pages = "article_pages" in tables
        self._has_web = "web_resources" in tables
        self._keywords = KeywordBudget(self._db, remember=read_only)
        self._bm25 = Bm25(
            self._db, "chunks_fts", (TITLE_WEIGHT, BODY_WEIGHT), TOKENIZE, remember=read_only
        )
        # Fingerprints of article bodies and the stories they group into.
        self.copies = CopiesTable(self._db, writable=not read_only)

    def close(self) -> None:
        self._bm25.close()
        self._db.close()
        if self.unreadable:
            discard_log(self.path)

    def commit(self) -> None:
        self._db.commit()

    def rollback(self) -> None:
        self._db.rollback()

    def release_free_pages(self) -> None:
        """Give the file system back the pages freed by deletes committed so far (a store
        created with ``new``; a no-op for others), in a transaction of its own. Run by
        ``executescript``, which steps the pragma to its end (``execute`` frees one page)."""
        self._db.executescript("PRAGMA incremental_vacuum;")

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection, for the tables of ``segments`` (in the same transaction)."""
        return self._db

    def pin(self) -> None:
        """Read one snapshot from now on: every query sees the store as it was committed
        now, whatever a writer commits meanwhile, until ``close``. Only a WAL store is
        pinned: one written before segments (rollback journal) is never written in place,
        except by its upgrade, which a read transaction held there would block."""
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            self._db.execute("BEGIN")
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()

    @property
    def changed(self) -> bool:
        """Whether this connection has inserted, updated or deleted any row."""
        return self._db.total_changes > 0

    def verify(self) -> tuple[IdSummary, IdSummary]:
        """Summaries of the chunk ids and of the keyword index's row ids, which must agree.

        Cheap enough for every open (two index scans, no article text read). Raises
        IndexDamagedError for a missing table, and sqlite3.DatabaseError for a file that
        SQLite cannot read (not a database, truncated).
        """
        self.check_tables()
        # The FTS5 size table has one row per indexed chunk; scanning the FTS table itself
        # would read every chunk's text.
        return self._id_summary("chunks"), self._id_summary("chunks_fts_docsize")

    def check_tables(self) -> None:
        """IndexDamagedError unless the store has its tables (reads the schema only)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if not tables:
            raise IndexDamagedError(f"{self.path.name} is empty")
        if missing := [t for t in REQUIRED_TABLES if t not in tables]:
            raise IndexDamagedError(f"{self.path.name} has no table {', '.join(missing)}")

    def _id_summary(self, table: str) -> IdSummary:
        row = self._db.execute(
            "SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0), coalesce(sum(id), 0),"
            f" coalesce(sum(id * {ID_HASH_FACTOR} % {ID_HASH_MODULUS}), 0) FROM {table}"
        ).fetchone()
        return IdSummary(*row)

    def _add_root_column(self) -> None:
        """Indexes written before roots were recorded get the column (NULL: root unknown)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(articles)")}
        if "root" not in columns:
            self._db.execute("ALTER TABLE articles ADD COLUMN root TEXT")

    # -- writing -----------------------------------------------------------------

    def indexed_articles(self) -> dict[str, IndexedArticle]:
        rows = self._db.execute("SELECT id, content_hash, root, source FROM articles")
        return {r[0]: IndexedArticle(r[1], r[2], r[3]) for r in rows}

    def indexed_article(self, article_id: str) -> IndexedArticle | None:
        row = self._db.execute(
            "SELECT content_hash, root, source FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return IndexedArticle(row[0], row[1], row[2]) if row else None

    def set_root(self, article_ids: Iterable[str], root: str) -> None:
        """Record ``root`` for articles found there unchanged (moved, or from an older index)."""
        self._db.executemany(
            "UPDATE articles SET root = ? WHERE id = ?", [(root, i) for i in article_ids]
        )

    def chunk_ids(self, article_id: str) -> list[int]:
        rows = self._db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))
        return [r[0] for r in rows]

    def delete_article(self, article_id: str) -> list[int]:
        """Remove an article with its chunks; returns the removed chunk ids."""
        ids = self.chunk_ids(article_id)
        self._db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
        self._db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        return ids

    def add_article(
        self,
        article: Article,
        content_hash: str,
        chunks: Sequence[Chunk],
        root: str | None = None,
    ) -> list[int]:
        """Insert an article (read from ``root``) and its chunks; returns the new chunk ids."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._db.execute(
            f"INSERT INTO articles ({_ARTICLE_COLUMNS}, content_hash, ingested_at, root, day)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                article.id,
                article.title,
                article.text,
                article.source,
                article.url,
                article.date,
                article.author,
                content_hash,
                now,
                root,
                iso_day(article.date),
            ),
        )
        ids = []
        for chunk in chunks:
            cursor = self._db.execute(
                "INSERT INTO chunks (article_id, ordinal, char_start, char_end,"
                " paragraph_start, paragraph_end) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    article.id,
                    chunk.ordinal,
                    chunk.char_start,
                    chunk.char_end,
                    chunk.paragraph_start,
                    chunk.paragraph_end,
                ),
            )
            chunk_id = cursor.lastrowid
            assert chunk_id is not None
            self._db.execute(
                "INSERT INTO chunks_fts (rowid, title, body) VALUES (?, ?, ?)",
                (chunk_id, article.title, chunk.text),
            )
            ids.append(chunk_id)
        if article.pages:
            self._db.executemany(
                "INSERT INTO article_pages (article_id, first_paragraph, page) VALUES (?, ?, ?)",
                [(article.id, first, page) for first, page in _page_runs(article.pages)],
            )
        return ids

    def save_web_resources(self, rows: Iterable[WebResourceRow]) -> None:
        """Record what was fetched, with the content hashes its articles have here and now.

        An article that is not in the store (it was skipped) leaves its resource unrecorded,
        so the next fetch of it is unconditional. A row that is already recorded as it is
        is not written again, so a sync that changed nothing leaves the store unchanged.
        """
        hashes = {i: a.content_hash for i, a in self.indexed_articles().items()}
        known = self.web_resources()
        for row in rows:
            if any(article_id not in hashes for article_id in row.articles):
                self._db.execute("DELETE FROM web_resources WHERE url = ?", (row.url,))
                continue
            row = replace(row, articles={i: hashes[i] for i in row.articles})
            if known.get(row.url) == row:
                continue
            self._db.execute(
                "INSERT OR REPLACE INTO web_resources"
                " (url, kind, etag, last_modified, lastmod, articles, listing, checked)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.url,
                    row.kind,
                    row.etag,
                    row.last_modified,
                    row.lastmod,
                    json.dumps(row.articles, sort_keys=True),
                    json.dumps(row.listing, sort_keys=True),
                    row.checked,
                ),
            )

    def forget_web_resources(self, urls: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM web_resources WHERE url = ?", [(u,) for u in urls])

    def add_sentence_vectors(
        self, chunk_id: int, spans: Sequence[tuple[int, int]], vectors: np.ndarray
    ) -> None:
        """Store the unit vectors of a chunk's sentences, ``spans`` as article offsets.

        Stored as int8, each row scaled by its largest component (a quarter of the size of
        float32; cosines change by about 0.001): int32 span pairs, int8 rows, float32 scales.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        peaks = np.abs(vectors).max(axis=1, initial=0.0)
        scales = np.where(peaks > 0, peaks / 127.0, 1.0).astype(np.float32)
        quantized = np.round(vectors / scales[:, None]).astype(np.int8)
        self._db.execute(
            "INSERT OR REPLACE INTO sentences (chunk_id, spans, vectors, scales) VALUES (?, ?, ?, ?)",
            (
                chunk_id,
                np.asarray(spans, dtype=np.int32).tobytes(),
                quantized.tobytes(),
                scales.tobytes(),
            ),
        )

    # -- reading -----------------------------------------------------------------

    def sentence_vectors(
        self, chunk_ids: Iterable[int]
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per chunk: its sentences' article offsets (n x 2) and vectors (n x dimension).

        Chunks stored without them (an older index, or a model that gives none) are absent.
        """
        ids = list(chunk_ids)
        if not ids or not self._has_sentences:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT chunk_id, spans, vectors, scales FROM sentences WHERE chunk_id IN ({marks})",
            ids,
        )
        found = {}
        for chunk_id, spans, vectors, scales in rows:
            scale = np.frombuffer(scales, dtype=np.float32)
            matrix = np.frombuffer(vectors, dtype=np.int8).reshape(len(scale), -1)
            found[chunk_id] = (
                np.frombuffer(spans, dtype=np.int32).reshape(-1, 2),
                matrix.astype(np.float32) * scale[:, None],
            )
        return found

    def counts(self) -> tuple[int, int]:
        articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
        chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return articles, chunks

    def keyword_search(
        self,
        question: str,
        limit: int,
        filters: SearchFilter | None = None,
        budget: int | None = None,
        exact: bool = True,
    ) -> list[tuple[int, float]]:
        """BM25 over titles and chunk texts: (chunk id, score), best first, higher is better.

        With ``filters``, only chunks of the articles they admit are ranked. With a
        ``budget``, BM25 ranks about that many matching chunks at most (see
        ``keyword_plan``); None ranks every chunk that matches any term. Within a budget,
        FTS5's bm25() scores those matches with the plan's terms only, and ``exact`` ranks
        the best of them (see RANKED_MATCHES) again by BM25 of the whole question over the
        whole index (``keyword_scores``).
        """
        terms = keyword_terms(question)
        if not terms:
            return []
        # An index of no more chunks than the budget ranks every term: BM25 cannot read more.
        bounded = self._keyword_bounded(budget)
        if bounded:
            assert budget is not None
            factor = CANDIDATE_RESCORE_FACTOR if exact else RESCORE_FACTOR
            plan = self.keyword_plan(terms, budget, factor)
        else:
            plan = KeywordPlan(tuple(terms))
        if not plan.terms:
            return []
        match = plan.match()
        wanted = limit * RANKED_MATCHES if bounded and exact else limit
        if not filters:
            rows = self._db.execute(
                "SELECT rowid, -bm25(chunks_fts, ?, ?) AS score FROM chunks_fts"
                " WHERE chunks_fts MATCH ? AND rowid >= ? ORDER BY score DESC LIMIT ?",
                (TITLE_WEIGHT, BODY_WEIGHT, match, plan.first_rowid, wanted),
            )
        else:
            # The filter is checked on each matching chunk (two primary-key look-ups), so
            # the cost follows the matches, as unfiltered ranking's does. The plan's window
            # of newest matches is not applied: the chunks a filter admits may all be older.
            admitted, values = self._admitted_articles(filters)
            rows = self._db.execute(
                "SELECT f.rowid, -bm25(chunks_fts, ?, ?) AS score FROM chunks_fts f"
                " JOIN chunks c ON c.id = f.rowid"
                f" WHERE chunks_fts MATCH ? AND c.article_id IN ({admitted})"
                " ORDER BY score DESC LIMIT ?",
                (TITLE_WEIGHT, BODY_WEIGHT, match, *values, wanted),
            )
        found = [(r[0], r[1]) for r in rows]
        if not (bounded and exact):
            return found
        scores = self._bm25.scores(terms, (i for i, _ in found), max_texts=limit * RESCORED_MATCHES)
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def keyword_scores(
        self, question: str, chunk_ids: Iterable[int], budget: int | None
    ) -> dict[int, float]:
        """BM25 of ``chunk_ids`` for ``question`` over the whole index, as unbounded
        ``keyword_search`` scores them (chunks no term matches left out): for chunks found
        otherwise (the dense half) that a search within ``budget`` may not have read.
        Empty when the index is within the budget: its keyword search read every match."""
        terms = keyword_terms(question)
        if not terms or not self._keyword_bounded(budget):
            return {}
        return self._bm25.scores(terms, chunk_ids)

    def _keyword_bounded(self, budget: int | None) -> bool:
        """Whether a keyword search within ``budget`` may leave matches unread."""
        return budget is not None and self._keywords.sample().rows > budget

    def keyword_plan(
        self, terms: Sequence[str], budget: int, rescore_factor: int = RESCORE_FACTOR
    ) -> KeywordPlan:
        """Which terms BM25 ranks so that it reads about ``budget`` matching chunks at most
        (see ``keywords.KeywordBudget.plan``)."""
        return self._keywords.plan(terms, budget, rescore_factor)

    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """About how many chunks each term occurs in (see ``keywords.KeywordBudget``)."""
        return self._keywords.term_counts(terms)

    def keyword_counts(self, removed: Sequence[int]) -> KeywordCounts:
        """What this read-only store has counted for keyword search, for the next snapshot
        a reader follows to (``follow_from``), with the tokens of the chunks ``removed``
        by the writes in between (read here: they are gone from the newer snapshot)."""
        return KeywordCounts(
            frozenset(self._bm25.row_tokens(removed)),
            len(removed),
            self._bm25.counted(),
            self._keywords.counted(),
        )

    def follow_from(self, earlier: KeywordCounts, added: Sequence[int]) -> None:
        """Take over what an earlier snapshot of this store had counted for keyword search
        (``keyword_counts``), given the chunks ``added`` since; then count what every
        question needs (the totals) now rather than in the first question.

        Following a write would otherwise forget every term's counts (a common term costs
        ~17 ms to count again at a million chunks) and the term sample (0.3 s). What the
        changed chunks' tokens touch is counted again, so scores stay those of FTS5's
        bm25() (tests/test_segments.py).
        """
        changed = self._bm25.row_tokens(added) | earlier.removed_tokens
        self._bm25.carry_from(earlier.bm25, changed)

        def unchanged(term: str) -> bool:
            return changed.isdisjoint(self._bm25.phrases([term])[0])

        self._keywords.carry_from(earlier.budget, unchanged, len(added) - earlier.removed)
        self._bm25.totals()

    # -- filters -------------------------------------------------------------------

    def _admitted_articles(self, filters: SearchFilter) -> tuple[str, list[object]]:
        """A subquery for the ids of the articles ``filters`` admit. Evaluated once per
        query, over the index ``articles_filter`` alone (never the article texts)."""
        condition, values = filter_condition(filters, self._day)
        return f"SELECT a.id FROM articles a WHERE {condition}", values

    def admits_any(self, filters: SearchFilter) -> bool:
        """Whether any article passes ``filters``."""
        condition, values = filter_condition(filters, self._day)
        found = self._db.execute(f"SELECT 1 FROM articles a WHERE {condition} LIMIT 1", values)
        return found.fetchone() is not None

    def admitted_chunk_ids(
        self, filters: SearchFilter, among: Sequence[int] | None = None
    ) -> list[int]:
        """Ids of the chunks whose articles pass ``filters``: all of them, or those ``among`` given."""
        admitted, values = self._admitted_articles(filters)
        sql = f"SELECT c.id FROM chunks c WHERE c.article_id IN ({admitted})"
        if among is None:
            return [r[0] for r in self._db.execute(sql + " ORDER BY c.id", values)]
        if not among:
            return []
        marks = ",".join("?" * len(among))
        rows = self._db.execute(f"{sql} AND c.id IN ({marks})", [*values, *among])
        return [r[0] for r in rows]

    def suggest_sources(self, prefix: str, limit: int) -> list[str]:
        """Folders, files and sources starting with ``prefix`` (case-insensitive), in order."""
        rows = self._db.execute(
            "SELECT DISTINCT citebot_source_option(source, ?) AS option FROM articles"
            " WHERE source LIKE ? ESCAPE '\\' ORDER BY option COLLATE NOCASE LIMIT ?",
            (len(prefix), like_escaped(prefix) + "%", limit),
        )
        return [r[0] for r in rows]

    def suggest_authors(self, text: str, limit: int) -> list[str]:
        """Authors containing ``text`` (case-insensitive), those starting with it first."""
        pattern = like_escaped(text.strip())
        rows = self._db.execute(
            "SELECT DISTINCT author FROM articles WHERE author LIKE ? ESCAPE '\\'"
            " ORDER BY author NOT LIKE ? ESCAPE '\\', author COLLATE NOCASE LIMIT ?",
            (f"%{pattern}%", f"{pattern}%", limit),
        )
        return [r[0] for r in rows]

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            "SELECT id, article_id, ordinal, char_start, char_end, paragraph_start, paragraph_end"
            f" FROM chunks WHERE id IN ({marks})",
            ids,
        )
        return {r["id"]: ChunkRow(*r) for r in rows}

    def article_refs(self, ids: Iterable[str]) -> dict[str, ArticleRef]:
        ids = list(set(ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT id, title, source, url, date, author FROM articles WHERE id IN ({marks})",
            ids,
        )
        return {r["id"]: _ref(r) for r in rows}

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        ids = list(set(ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id IN ({marks})", ids
        ).fetchall()
        pages: dict[str, list[tuple[int, int]]] = {}
        if self._has_pages:
            for article_id, first, page in self._db.execute(
                "SELECT article_id, first_paragraph, page FROM article_pages"
                f" WHERE article_id IN ({marks}) ORDER BY article_id, first_paragraph",
                ids,
            ):
                pages.setdefault(article_id, []).append((first, page))
        return {r["id"]: _article(r, pages.get(r["id"])) for r in rows}

    def article(self, article_id: str) -> Article | None:
        return self.articles_by_id([article_id]).get(article_id)

    def articles_titled(self, title: str) -> list[Article]:
        rows = self._db.execute(
            "SELECT id FROM articles WHERE title = ? COLLATE NOCASE ORDER BY id", (title,)
        )
        ids = [r[0] for r in rows]
        found = self.articles_by_id(ids)
        return [found[i] for i in ids]

    def search_titles(self, text: str, limit: int) -> list[ArticleRef]:
        """Articles whose title contains ``text`` (case-insensitive), prefix matches first."""
        pattern = like_escaped(text.strip())
        rows = self._db.execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles"
            " WHERE title LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\'"
            " ORDER BY title NOT LIKE ? ESCAPE '\\', title COLLATE NOCASE LIMIT ?",
            (f"%{pattern}%", f"{pattern}%", f"{pattern}%", limit),
        )
        return [_ref(r) for r in rows]

    def summaries(self) -> list[ArticleSummary]:
        rows = self._db.execute(
            f"SELECT {_ARTICLE_COLUMNS},"
            " (SELECT count(*) FROM chunks c WHERE c.article_id = a.id) AS chunk_count"
            " FROM articles a ORDER BY title COLLATE NOCASE, id"
        )
        return [
            ArticleSummary(_ref(r), r["chunk_count"], r["text"].count("\n\n") + 1) for r in rows
        ]

    def web_resources(self) -> dict[str, WebResourceRow]:
        if not self._has_web:
            return {}
        rows = self._db.execute(
            "SELECT url, kind, etag, last_modified, lastmod, articles, listing, checked"
            " FROM web_resources"
        )
        return {
            r["url"]: WebResourceRow(
                r["url"],
                r["kind"],
                r["etag"],
                r["last_modified"],
                r["lastmod"],
                json.loads(r["articles"]),
                json.loads(r["listing"]),
                r["checked"],
            )
            for r in rows
        }
