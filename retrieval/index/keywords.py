"""The keyword budget: which of a question's terms BM25 ranks, so that a keyword search
reads about a budget of matching chunks at most, whatever the size of the index.

FTS5's bm25() counts every chunk each term matches, then scores every chunk any term
matches; at a million chunks an OR of frequent words took 0.3–1 s. ``KeywordBudget`` plans
a search from term counts (exact in a small index, sampled in a large one) over the
store's own SQLite connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Term counts for keyword_plan: exact in an index of up to TERM_SAMPLE_ROWS chunks, else
# estimated from that many chunks in TERM_SAMPLE_RANGES runs spread over the index.
TERM_SAMPLE_ROWS = 8000
TERM_SAMPLE_RANGES = 8
# Term counts a read-only store remembers (it forgets them all when full).
TERM_CACHE_SIZE = 100_000
# A term left out of a budgeted keyword search still scores the chunks the kept terms
# match, if it matches at most this many times the budget: counting its matches for BM25
# costs that much. At a million chunks this kept hit@1 at 0.86 where leaving such terms
# out entirely gave 0.75, for about the same time (README, scale benchmark).
RESCORE_FACTOR = 10
# The same when the matches are only candidates, ranked again by exact BM25 (bm25.Bm25):
# a left-out term then only helps choose which matches are ranked again, and a smaller
# factor was faster and as good (hit@1 0.920 against 0.917 with 10 at a million chunks).
CANDIDATE_RESCORE_FACTOR = 3


@dataclass(frozen=True)
class TermSample:
    """The chunks in the keyword index, and where term counts are taken: runs of chunk ids
    (first, last), and how many chunks each sampled chunk stands for."""

    rows: int
    ranges: list[tuple[int, int]]
    scale: float


@dataclass(frozen=True)
class KeywordPlan:
    """The terms whose matches BM25 ranks for a question, the first chunk id it reads, and
    the terms left out that still add to the score of those matches."""

    terms: tuple[str, ...]
    first_rowid: int = 0
    rescoring: tuple[str, ...] = ()

    def match(self) -> str:
        """The FTS5 query: the terms, quoted and OR-ed (any may match, and no user text is
        read as query syntax); a rescoring term counts only in chunks the terms match."""
        terms = " OR ".join(quoted(t) for t in self.terms)
        if not self.rescoring:
            return terms
        rescoring = " OR ".join(quoted(t) for t in self.rescoring)
        return f"{terms} OR (({rescoring}) AND ({terms}))"


def quoted(term: str) -> str:
    """A term as an FTS5 string: matched as words, never read as query syntax."""
    return '"' + term.replace('"', '""') + '"'


class KeywordBudget:
    """Term counts and keyword plans over one store's FTS5 table (``chunks_fts``).

    ``remember``: keep term counts and the sample between calls (a read-only store, whose
    rows never change). Not thread-safe: the store's callers serialise access.
    """

    def __init__(self, db: sqlite3.Connection, *, remember: bool) -> None:
        self._db = db
        self._remember = remember
        self._term_counts: dict[str, int] = {}
        self._sample: TermSample | None = None

    def plan(
        self, terms: Sequence[str], budget: int, rescore_factor: int = RESCORE_FACTOR
    ) -> KeywordPlan:
        """Which terms BM25 ranks so that it reads about ``budget`` matching chunks at most.

        FTS5's bm25() counts every chunk each term matches, then scores every chunk any
        term matches: an OR of frequent words reads most of a large index (0.3–1 s at a
        million chunks). So terms are taken rarest first, and a term is left out once the
        chunks matched by the terms taken and by it would pass the budget: a term is only
        ever left out for rarer ones, and the rarest term is always kept. When even the
        rarest term matches more than the budget (a question of common words only), BM25
        ranks the newest ``budget`` chunks it matches. Terms found nowhere are left out.

        A term left out that matches at most ``rescore_factor`` x ``budget`` chunks still adds
        its BM25 share to the chunks the kept terms match (``rescoring``): it does not widen
        the matches, and counting its own costs a bounded amount. (Its score then counts the
        kept terms of those chunks a second time: FTS5 scores each term of the query as
        written.)
        """
        counts = self.term_counts(terms)
        present = sorted((t for t in terms if counts[t]), key=lambda t: counts[t])
        if not present:
            return KeywordPlan(())
        kept, total = [present[0]], counts[present[0]]
        for term in present[1:]:
            if total + counts[term] > budget:
                break
            kept.append(term)
            total += counts[term]
        first_rowid = 0
        if total > budget:
            row = self._db.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?"
                " ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (quoted(kept[0]), budget - 1),
            ).fetchone()
            first_rowid = row[0] if row else 0
        rescoring: tuple[str, ...] = ()
        if not first_rowid:
            rescoring = tuple(
                t for t in present if t not in kept and counts[t] <= rescore_factor * budget
            )
        return KeywordPlan(tuple(kept), first_rowid, rescoring)

    def counted(self) -> tuple[dict[str, int], TermSample | None]:
        """Copies of what it has counted: the term counts, and the sample."""
        return self._term_counts.copy(), self._sample

    def carry_from(
        self,
        counted: tuple[dict[str, int], TermSample | None],
        unchanged: Callable[[str], bool],
        rows_added: int,
    ) -> None:
        """Take over what this table at an earlier committed state had ``counted``: the
        counts of the terms ``unchanged`` says no row added or removed since holds, and the
        sample with ``rows_added`` more rows (fewer if negative), as long as the table
        stays on the same side of TERM_SAMPLE_ROWS (counted exactly, or estimated). Drawing
        the sample again reads every row's size: 0.3 s at a million chunks."""
        counts, sample = counted
        self._term_counts = {term: n for term, n in counts.items() if unchanged(term)}
        if sample is not None:
            rows = sample.rows + rows_added
            if (rows <= TERM_SAMPLE_ROWS) == (sample.rows <= TERM_SAMPLE_ROWS):
                self._sample = TermSample(rows, sample.ranges, sample.scale)

    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """About how many chunks each term occurs in: exact up to TERM_SAMPLE_ROWS chunks,
        then estimated from a sample of that many, in TERM_SAMPLE_RANGES runs of chunk ids
        spread over the index. Counting is cheap for rare terms and bounded for common
        ones; a read-only store remembers the counts."""
        sample = self.sample()
        ranges, scale = sample.ranges, sample.scale
        counts = {}
        for term in terms:
            if (known := self._term_counts.get(term)) is not None:
                counts[term] = known
                continue
            found = 0
            for low, high in ranges:
                found += self._db.execute(
                    "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
                    " AND rowid BETWEEN ? AND ?",
                    (quoted(term), low, high),
                ).fetchone()[0]
            # Seen nowhere in a sample, a term is rare, not absent: only an exact count says so.
            counts[term] = round(found * scale) if scale == 1.0 else max(1, round(found * scale))
            if self._remember:
                if len(self._term_counts) >= TERM_CACHE_SIZE:
                    self._term_counts.clear()
                self._term_counts[term] = counts[term]
        return counts

    def sample(self) -> TermSample:
        """The chunks of the keyword index, and the runs of chunk ids to count terms in."""
        if self._sample is not None and self._remember:
            return self._sample
        # The FTS5 size table has one small row per chunk, keyed by chunk id.
        rows, low, high = self._db.execute(
            "SELECT count(*), min(id), max(id) FROM chunks_fts_docsize"
        ).fetchone()
        if rows <= TERM_SAMPLE_ROWS:
            sample = TermSample(rows, [(0, 2**62)], 1.0)
        else:
            # Runs of equal width in ids, evenly spaced; the rows they hold are counted, so
            # gaps left by removed chunks do not skew the estimate.
            span = high - low + 1
            width = max(1, span * TERM_SAMPLE_ROWS // (rows * TERM_SAMPLE_RANGES))
            step = (span - width) // (TERM_SAMPLE_RANGES - 1)
            ranges = [
                (low + i * step, low + i * step + width - 1) for i in range(TERM_SAMPLE_RANGES)
            ]
            sampled = sum(
                self._db.execute(
                    "SELECT count(*) FROM chunks_fts_docsize WHERE id BETWEEN ? AND ?", r
                ).fetchone()[0]
                for r in ranges
            )
            sample = TermSample(rows, ranges, rows / max(1, sampled))
        self._sample = sample
        return sample
