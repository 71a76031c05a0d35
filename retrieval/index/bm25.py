"""BM25 of chosen chunks, equal to FTS5's bm25() over the whole index, without ranking
every chunk a question's terms match.

FTS5's bm25() (https://www.sqlite.org/fts5.html#the_bm25_function) scores a chunk D for
the phrases q of a query (here each quoted question term, OR-ed):

    sum over q of  idf(q) * f(q, D) * (k1 + 1) / (f(q, D) + k1 * (1 - b + b * |D| / avgdl))

with k1 = 1.2, b = 0.75, idf(q) = log((N - n(q) + 0.5) / (n(q) + 0.5)) (1e-6 when not
positive), N the chunks, n(q) the chunks holding q, f(q, D) the occurrences of q in D
weighted by column, |D| the chunk's tokens and avgdl their mean over the index. FTS5 gets
n(q) by reading every chunk q matches, and scores every chunk any phrase matches: at a
million chunks a question of common words took 0.3–1 s.

Here each part is read from the FTS5 index itself, so nothing is stored beside it (a write
keeps it current in its own transaction, and a crash cannot leave it stale): N and the
total tokens from FTS5's totals record, |D| from its size table, n(q) from its vocabulary
(``fts5vocab``: one pass over the term's list, no scoring; a read-only store remembers
it), and f(q, D) from the chunk's own text, tokenised by an in-memory FTS5 table with the
keyword table's tokenizer, so the tokens are FTS5's own. The scores equal bm25()'s up to
floating-point rounding (tests/test_bm25.py).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .keywords import quoted

# FTS5's bm25() constants (fts5_aux.c).
K1 = 1.2
B = 0.75
MIN_IDF = 1e-6
# Phrases and frequencies a read-only store remembers (it forgets them all when full).
CACHE_SIZE = 100_000


def varints(blob: bytes) -> list[int]:
    """The SQLite varints of an FTS5 record (big-endian groups of 7 bits; a 9th byte holds 8)."""
    values, i = [], 0
    while i < len(blob):
        value = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values


@dataclass(frozen=True)
class Totals:
    """The keyword index's chunks and their tokens (all columns): N and N * avgdl."""

    rows: int
    tokens: int

    @property
    def average_length(self) -> float:
        return self.tokens / self.rows if self.rows else 0.0


class Tokenizer:
    """The keyword table's tokenizer applied to texts, in an in-memory FTS5 table, so that
    the tokens are FTS5's own (case folding, diacritics, the Porter stemmer). Not
    thread-safe: its store's callers serialise access."""

    def __init__(self, columns: int, tokenize: str) -> None:
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._names = [f"c{n}" for n in range(columns)]
        # Contentless, without sizes: only the tokens and their positions are kept, and
        # 'delete-all' empties it (measured faster than a new table, or deleting rows).
        self._db.execute(
            f"CREATE VIRTUAL TABLE texts USING fts5 ({', '.join(self._names)},"
            f" content = '', columnsize = 0, tokenize = '{tokenize}')"
        )
        self._db.execute("CREATE VIRTUAL TABLE texts_tokens USING fts5vocab (texts, instance)")

    def close(self) -> None:
        self._db.close()

    def _fill(self, rows: Sequence[tuple[int, Sequence[str]]]) -> None:
        db = self._db
        names = ", ".join(self._names)
        marks = ", ".join("?" * len(self._names))
        db.execute("BEGIN")
        db.execute("INSERT INTO texts (texts) VALUES ('delete-all')")
        db.executemany(
            f"INSERT INTO texts (rowid, {names}) VALUES (?, {marks})",
            [(row_id, *texts) for row_id, texts in rows],
        )
        db.execute("COMMIT")

    def tokens(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        """The tokens of each text (in the first column), in order."""
        self._fill([(n, [text, *[""] * (len(self._names) - 1)]) for n, text in enumerate(texts)])
        found: list[list[tuple[int, str]]] = [[] for _ in texts]
        for term, doc, offset in self._db.execute("SELECT term, doc, offset FROM texts_tokens"):
            found[doc].append((offset, term))
        return [tuple(term for _, term in sorted(pairs)) for pairs in found]

    def occurrences(
        self, rows: Sequence[tuple[int, Sequence[str]]], tokens: Iterable[str]
    ) -> dict[str, set[tuple[int, int, int]]]:
        """Where each of ``tokens`` occurs in ``rows`` (id, column texts): a set of (id,
        column, offset in the column)."""
        wanted = list(dict.fromkeys(tokens))
        found: dict[str, set[tuple[int, int, int]]] = {t: set() for t in wanted}
        if not rows or not wanted:
            return found
        self._fill(rows)
        column_of = {name: n for n, name in enumerate(self._names)}
        marks = ", ".join("?" * len(wanted))
        for term, doc, column, offset in self._db.execute(
            f"SELECT term, doc, col, offset FROM texts_tokens WHERE term IN ({marks})", wanted
        ):
            found[term].add((doc, column_of[column], offset))
        return found


def phrase_counts(
    phrase: Sequence[str], occurrences: dict[str, set[tuple[int, int, int]]]
) -> dict[tuple[int, int], int]:
    """How often ``phrase`` (its tokens in a row) occurs in each (id, column)."""
    counts: dict[tuple[int, int], int] = {}
    if not phrase:
        return counts
    first, rest = phrase[0], phrase[1:]
    for doc, column, offset in occurrences.get(first, ()):
        if all(
            (doc, column, offset + n) in occurrences.get(token, ())
            for n, token in enumerate(rest, start=1)
        ):
            counts[doc, column] = counts.get((doc, column), 0) + 1
    return counts


def idf(rows: int, matching: int) -> float:
    """FTS5's inverse document frequency of a phrase found in ``matching`` of ``rows``."""
    value = math.log((rows - matching + 0.5) / (matching + 0.5)) if rows else 0.0
    return value if value > 0.0 else MIN_IDF


class Bm25:
    """FTS5's bm25() of chosen rows of one FTS5 table, from the index's own statistics.

    ``remember``: keep phrase tokens, frequencies and totals between calls (a read-only
    store, whose rows never change under it). Not thread-safe: the store's callers
    serialise access.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        table: str,
        weights: Sequence[float],
        tokenize: str,
        *,
        remember: bool,
    ) -> None:
        self._db = db
        self._table = table
        self._weights = tuple(weights)
        self._tokenizer = Tokenizer(len(self._weights), tokenize)
        self._remember = remember
        self._phrases: dict[str, tuple[str, ...]] = {}
        self._frequencies: dict[tuple[str, ...], int] = {}
        self._totals: Totals | None = None
        self._vocabulary = f"{table}_citebot_terms"
        self._has_vocabulary = False

    def close(self) -> None:
        self._tokenizer.close()

    def totals(self) -> Totals:
        """N and the total tokens, from FTS5's totals record (row 1 of its data table)."""
        if self._totals is not None and self._remember:
            return self._totals
        if not self._remember and self._db.in_transaction:
            # Within a write's open transaction FTS5 updates its totals record only as it
            # commits; the size table is current. (A writer does not rank: this is for
            # checks and tests, and costs a pass over the table.)
            sizes = self._db.execute(f"SELECT sz FROM {self._table}_docsize")
            lengths = [sum(varints(r[0])) for r in sizes]
            return Totals(len(lengths), sum(lengths))
        row = self._db.execute(f"SELECT block FROM {self._table}_data WHERE id = 1").fetchone()
        values = varints(row[0]) if row else []
        totals = Totals(values[0], sum(values[1:])) if values else Totals(0, 0)
        self._totals = totals
        return totals

    def row_tokens(self, ids: Sequence[int]) -> set[str]:
        """Every token of the rows ``ids`` (all columns); rows not in the table add none."""
        if not ids:
            return set()
        columns = ", ".join(f"c{n}" for n in range(len(self._weights)))
        texts = [
            text
            for row in self._db.execute(
                f"SELECT {columns} FROM {self._table}_content"
                f" WHERE id IN ({', '.join('?' * len(ids))})",
                list(ids),
            )
            for text in row
            if text
        ]
        return {token for tokens in self._tokenizer.tokens(texts) for token in tokens}

    def counted(self) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, ...], int]]:
        """Copies of what it has counted: each term's phrase, and rows holding each phrase."""
        return self._phrases.copy(), self._frequencies.copy()

    def carry_from(
        self,
        counted: tuple[dict[str, tuple[str, ...]], dict[tuple[str, ...], int]],
        changed: set[str],
    ) -> None:
        """Take over what this table at an earlier committed state had ``counted``, but for
        the phrases holding a ``changed`` token (one of a row added or removed since): only
        such a row changes how many rows hold a phrase. A phrase's tokens never change."""
        phrases, frequencies = counted
        self._phrases = phrases
        self._frequencies = {p: n for p, n in frequencies.items() if changed.isdisjoint(p)}

    def phrases(self, terms: Sequence[str]) -> list[tuple[str, ...]]:
        """The tokens of each term, as FTS5 reads the quoted term in a query."""
        unknown = [t for t in dict.fromkeys(terms) if t not in self._phrases]
        if unknown:
            if len(self._phrases) + len(unknown) > CACHE_SIZE:
                self._phrases.clear()
            self._phrases.update(zip(unknown, self._tokenizer.tokens(unknown), strict=True))
        return [self._phrases[t] for t in terms]

    def frequency(self, term: str, phrase: tuple[str, ...]) -> int:
        """How many rows hold ``term`` (whose tokens are ``phrase``): a single token's
        count from FTS5's vocabulary (one pass over its list of rows, nothing scored); a
        phrase of several tokens by matching it."""
        if (known := self._frequencies.get(phrase)) is not None:
            return known
        if not phrase:
            found = 0
        elif len(phrase) == 1:
            if not self._has_vocabulary:
                # In the connection's temp schema: the index file is never written.
                self._db.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{self._vocabulary}"
                    f" USING fts5vocab (main, {self._table}, row)"
                )
                self._has_vocabulary = True
            row = self._db.execute(
                f"SELECT doc FROM temp.{self._vocabulary} WHERE term = ?", phrase
            ).fetchone()
            found = row[0] if row else 0
        else:
            found = self._db.execute(
                f"SELECT count(*) FROM {self._table} WHERE {self._table} MATCH ?",
                (quoted(term),),
            ).fetchone()[0]
        if self._remember:
            if len(self._frequencies) >= CACHE_SIZE:
                self._frequencies.clear()
            self._frequencies[phrase] = found
        return found

    def scores(
        self, terms: Sequence[str], ids: Iterable[int], max_texts: int | None = None
    ) -> dict[int, float]:
        """bm25() of the rows ``ids`` for the query of ``terms`` (each quoted, OR-ed),
        higher is better, as FTS5 scores them over the whole table; rows no term matches
        are left out.

        Rows of the same text (copies) score alike, and each text is tokenised once.
        ``max_texts``: score the rows of the first that many distinct texts only (in the
        order of ``ids``), and leave the others out.
        """
        wanted = list(dict.fromkeys(ids))
        if not wanted or not terms:
            return {}
        phrases = self.phrases(terms)
        totals = self.totals()
        weights = [
            idf(totals.rows, self.frequency(t, p)) for t, p in zip(terms, phrases, strict=True)
        ]
        columns = ", ".join(f"c{n}" for n in range(len(self._weights)))
        texts = {
            r[0]: tuple(r[1:])
            for r in self._db.execute(
                f"SELECT id, {columns} FROM {self._table}_content"
                f" WHERE id IN ({', '.join('?' * len(wanted))})",
                wanted,
            )
        }
        # The first row of each text stands for its copies.
        first_of: dict[tuple[str, ...], int] = {}
        copy_of: dict[int, int] = {}
        for row_id in wanted:
            text = texts.get(row_id)
            if text is None:
                continue
            if text not in first_of:
                if max_texts is not None and len(first_of) >= max_texts:
                    continue
                first_of[text] = row_id
            copy_of[row_id] = first_of[text]
        rows = [(row_id, text) for text, row_id in first_of.items()]
        found = self._tokenizer.occurrences(rows, (t for p in phrases for t in p))
        frequencies: dict[int, list[float]] = {}
        for n, phrase in enumerate(phrases):
            for (doc, column), count in phrase_counts(phrase, found).items():
                per_phrase = frequencies.setdefault(doc, [0.0] * len(phrases))
                per_phrase[n] += self._weights[column] * count
        if not frequencies:
            return {}
        lengths = {
            r[0]: sum(varints(r[1]))
            for r in self._db.execute(
                f"SELECT id, sz FROM {self._table}_docsize WHERE id IN"
                f" ({', '.join('?' * len(frequencies))})",
                list(frequencies),
            )
        }
        average = totals.average_length
        scored = {}
        for doc, per_phrase in frequencies.items():
            norm = K1 * (1 - B + B * lengths.get(doc, 0) / average) if average else K1
            scored[doc] = sum(
                w * f * (K1 + 1) / (f + norm) for w, f in zip(weights, per_phrase, strict=True) if f
            )
        return {row_id: scored[first] for row_id, first in copy_of.items() if first in scored}
