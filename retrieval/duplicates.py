"""Copies of one story: the same article under several files or URLs.

News archives hold copies: wire stories syndicated under several URLs, reposts, corrected
re-publications. An answer should show one result per story and name the other copies,
not quote the same passage twice. At ingest every article gets a fingerprint of its body:

- the hash of its normalised text (lower case, words only), which catches exact copies
  whatever their white space, punctuation or markup;
- a MinHash signature over its word shingles, which catches near copies (a corrected
  sentence, a changed headline, an update with more paragraphs): two articles whose
  signatures agree on at least ``NEAR_COPY_SIMILARITY`` of their positions share about
  that share of their shingles.

Candidate pairs come from locality-sensitive hashing of the signatures (bands of rows),
so grouping costs about one dictionary look-up per band per article, not a comparison of
every pair. A story is named by its earliest-ingested article (the smallest rowid); the
others are its copies. Both hash and signature are a few hundred bytes an article.

(Over 600 lines, for a reason: the fingerprint, the band keys, the grouping one by one and
in bulk, and the tables that keep them must agree to the bit, and a test checks each way of
grouping against the others; they are read and changed together.)
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Words per shingle: long enough that two different articles on one topic share few.
SHINGLE_WORDS = 5
# Signature length, and its split into bands for candidate pairs: 32 bands of 2 rows find
# a pair sharing half its shingles with probability 1 - (1 - 0.5^2)^32 > 0.9998 (then the
# full signature decides).
SIGNATURE_SIZE = 64
BANDS = 32
# Share of agreeing signature positions (estimated shingle overlap) for a near copy. On the
# BBC corpus every pair from 0.5 up is one story told twice (an update with readers'
# comments added: 0.70; a re-headlined rewrite: 0.56); 0.8 missed 11 of the 168 copies.
NEAR_COPY_SIMILARITY = 0.5
# Too little text to tell a copy from two short items that happen to agree ("Photo: AP").
MIN_WORDS = 25

# The largest prime below 2^32.
_PRIME = (1 << 32) - 5
_seeds = np.random.default_rng(20261205)
_A = _seeds.integers(1, _PRIME, SIGNATURE_SIZE, dtype=np.uint64)
_B = _seeds.integers(0, _PRIME, SIGNATURE_SIZE, dtype=np.uint64)
_WORD = re.compile(r"[^\W_]+")

SCHEMA = """
-- Fingerprints of each article's body (see retrieval.duplicates) and the story it belongs
-- to: the id of the earliest-ingested article with the same or nearly the same body.
CREATE TABLE IF NOT EXISTS article_copies (
    article_id TEXT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    text_hash TEXT NOT NULL,
    signature BLOB NOT NULL,
    story TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS article_copies_story ON article_copies (story);
CREATE INDEX IF NOT EXISTS article_copies_hash ON article_copies (text_hash);
-- Only the copies (a few per cent of the articles): counted on every write.
CREATE INDEX IF NOT EXISTS article_copies_copy ON article_copies (story)
    WHERE article_id != story;
-- The LSH bands of each fingerprinted article's signature (band_keys), by the article's
-- rowid in ``articles``: candidates for near copies by look-up. 32 rows an article, so
-- they are small: two integers, and no second index (a removed article's rows are
-- found by their keys, from its signature noted in copies_removed).
CREATE TABLE IF NOT EXISTS story_bands (
    band_key INTEGER NOT NULL,
    article INTEGER NOT NULL,
    PRIMARY KEY (band_key, article)
) WITHOUT ROWID;
-- What the next CopiesTable.update has to do, noted by the triggers below in the write's
-- own transaction: articles added (to fingerprint), stories that lost an article, and the
-- signatures of removed articles (whose bands go).
CREATE TABLE IF NOT EXISTS copies_pending (article_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS copies_split (story TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS copies_removed (article INTEGER NOT NULL, signature BLOB NOT NULL);
-- 'bands': the layout of the bands (BANDS_LAYOUT) when those of every fingerprinted
-- article are in story_bands.
CREATE TABLE IF NOT EXISTS copies_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS copies_article_added AFTER INSERT ON articles BEGIN
    INSERT OR IGNORE INTO copies_pending (article_id) VALUES (NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS copies_article_deleted BEFORE DELETE ON articles BEGIN
    INSERT OR IGNORE INTO copies_split (story)
        SELECT story FROM article_copies WHERE article_id = OLD.id;
    INSERT INTO copies_removed (article, signature)
        SELECT OLD.rowid, signature FROM article_copies WHERE article_id = OLD.id;
    DELETE FROM article_copies WHERE article_id = OLD.id;
    DELETE FROM copies_pending WHERE article_id = OLD.id;
END;
"""

# What the release before kept instead of story_bands: the bands by text id (twice: in
# the table and in its second index), and the trigger that removed them. The first write
# of this release drops them and groups every article afresh (``CopiesTable.update``).
_BEFORE = """
DROP TRIGGER IF EXISTS copies_article_removed;
DROP TABLE IF EXISTS copy_bands;
"""


# The page cache (KiB) while every article is grouped afresh: its rows (about 1.3 kB an
# article) stay in memory until the commit, for 500,000 articles.
BULK_CACHE_KB = 700_000
# copies_state's 'bands' value for story_bands as this release keeps them.
BANDS_LAYOUT = f"{BANDS} by rowid"


@dataclass(frozen=True)
class Fingerprint:
    """What an article's body is, for finding its copies."""

    text_hash: str
    # SIGNATURE_SIZE MinHash values; empty for a body under MIN_WORDS words.
    signature: tuple[int, ...]


def normalised_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def fingerprint(text: str) -> Fingerprint:
    """The fingerprint of an article body."""
    tokens = normalised_words(text)
    return Fingerprint(_text_hash(tokens), _signature_of(tokens))


def _text_hash(tokens: Sequence[str]) -> str:
    return hashlib.blake2b(" ".join(tokens).encode(), digest_size=16).hexdigest()


def _signature_of(tokens: Sequence[str]) -> tuple[int, ...]:
    if len(tokens) < MIN_WORDS:
        return ()
    # Each word hashed once, each shingle's 32-bit value mixed from its words' hashes in
    # numpy (a third of the time of hashing each shingle's text; grouping every article of
    # a million-chunk index afresh is mostly this).
    words = np.fromiter((zlib.crc32(t.encode()) for t in tokens), np.uint64, len(tokens))
    count = len(tokens) - SHINGLE_WORDS + 1
    mixed = np.zeros(count, np.uint64)
    for offset in range(SHINGLE_WORDS):
        mixed = (mixed ^ words[offset : offset + count]) * _MIX[1]
        mixed ^= mixed >> np.uint64(31)
    values = np.unique(mixed >> np.uint64(32))
    # (a * x + b) mod p for each hash function: x < 2^32 and a, b < p < 2^32, so it fits
    # in 64 bits without wrapping.
    hashed = (_A[:, None] * values[None, :] + _B[:, None]) % np.uint64(_PRIME)
    return tuple(int(v) for v in hashed.min(axis=1))


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """The share of signature positions on which two fingerprints agree (0 if either has none)."""
    if not a or not b:
        return 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def band_keys(signature: Sequence[int]) -> list[int]:
    """One signed 64-bit key per LSH band of a signature (none for an empty one), for the
    ``story_bands`` table. Two signatures sharing a band share its key; a shared key is
    checked with ``shares_band``."""
    if not signature:
        return []
    return [int(k) for k in band_key_matrix(np.asarray([signature], dtype=np.uint64))[0]]


# Odd 64-bit constants of a multiplicative mix (from splitmix64).
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def band_key_matrix(signatures: np.ndarray) -> np.ndarray:
    """The band keys (int64, ``(n, BANDS)``) of ``n`` signatures (``(n, SIGNATURE_SIZE)``):
    a mix of each band's number and values, computed for all at once (numpy wraps the
    64-bit products, as the mix wants)."""
    rows = SIGNATURE_SIZE // BANDS
    values = np.asarray(signatures, dtype=np.uint64).reshape(len(signatures), BANDS, rows)
    key = np.broadcast_to(np.arange(1, BANDS + 1, dtype=np.uint64) * _MIX[0], values.shape[:2])
    for row in range(rows):
        key = (key ^ values[:, :, row]) * _MIX[1]
        key = (key ^ (key >> np.uint64(29))) * _MIX[2]
    keys: np.ndarray = (key ^ (key >> np.uint64(32))).view(np.int64)
    return keys


def shares_band(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether two signatures agree on every row of at least one band."""
    rows = SIGNATURE_SIZE // BANDS
    return any(
        a[band * rows : (band + 1) * rows] == b[band * rows : (band + 1) * rows]
        for band in range(BANDS)
    )


def group_stories(fingerprints: Sequence[tuple[str, Fingerprint]]) -> dict[str, str]:
    """For each article id (in ingest order), the id of the story it belongs to: the first
    article of ``fingerprints`` with the same normalised text or a near-copy signature."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    order = {article_id: i for i, (article_id, _) in enumerate(fingerprints)}

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The earlier article names the story.
            first, second = (ra, rb) if order[ra] < order[rb] else (rb, ra)
            parent[second] = first

    by_hash: dict[str, str] = {}
    buckets: dict[tuple[int, tuple[int, ...]], list[str]] = {}
    signatures = dict(fingerprints)
    rows = SIGNATURE_SIZE // BANDS
    for article_id, print_ in fingerprints:
        parent[article_id] = article_id
        if (same := by_hash.setdefault(print_.text_hash, article_id)) != article_id:
            union(same, article_id)
            continue
        if not print_.signature:
            continue
        for band in range(BANDS):
            key = (band, print_.signature[band * rows : (band + 1) * rows])
            for other in buckets.setdefault(key, []):
                if find(other) != find(article_id) and (
                    similarity(signatures[other].signature, print_.signature)
                    >= NEAR_COPY_SIMILARITY
                ):
                    union(other, article_id)
            buckets[key].append(article_id)
    return {article_id: find(article_id) for article_id in parent}


def one_per_story(
    article_ids: Sequence[str], stories: Mapping[str, str]
) -> tuple[list[bool], dict[str, str]]:
    """For results from ``article_ids`` (ranked, an article may repeat): whether each is
    kept, as it is from the first article of its story to come (or from an article without
    copies, which ``stories`` leaves out); and for each story, the article shown."""
    shown: dict[str, str] = {}
    keep = []
    for article_id in article_ids:
        story = stories.get(article_id)
        keep.append(story is None or shown.setdefault(story, article_id) == article_id)
    return keep, shown


def group_all(
    hashes: Sequence[str],
    signatures: np.ndarray,
    first: Sequence[int],
) -> list[int]:
    """``group_stories`` for many articles at once, at the cost of a sort: for article
    ``i`` (in ingest order), the number of the first article of its story.

    ``hashes``: each article's text hash. ``first``: for each article, the number of the
    first article with its text hash; only those (the distinct texts) have a row in
    ``signatures`` (``(distinct texts, SIGNATURE_SIZE)``, in order; an all-zero row for a
    body too short for one). Pairs of distinct texts sharing a band key are compared, as
    ``group_stories`` compares the articles of a band's bucket."""
    parent = list(range(len(hashes)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:  # the earlier article names the story
            parent[max(ra, rb)] = min(ra, rb)

    for number, first_number in enumerate(first):
        if first_number != number:
            union(first_number, number)
    distinct = np.asarray([n for n, f in enumerate(first) if f == n], dtype=np.int64)
    matrix = np.asarray(signatures, dtype=np.uint64)
    signed = np.flatnonzero(matrix.any(axis=1)) if len(matrix) else np.zeros(0, np.int64)
    if len(signed) > 1:
        keys = band_key_matrix(matrix[signed])
        owners = np.repeat(signed, BANDS)
        flat = keys.ravel()
        order = np.lexsort((owners, flat))
        flat, owners = flat[order], owners[order]
        # Runs of one key held by more than one text: its bucket.
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
        ends = np.r_[starts[1:], len(flat)]
        rows = SIGNATURE_SIZE // BANDS
        bands = np.tile(np.arange(BANDS), len(signed))[order]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if end - start < 2:
                continue
            members = owners[start:end]
            band = int(bands[start])
            columns = slice(band * rows, (band + 1) * rows)
            for j in range(1, len(members)):
                new, earlier = matrix[members[j]], matrix[members[:j]]
                agree = (earlier == new).mean(axis=1)
                same_band = (earlier[:, columns] == new[columns]).all(axis=1)
                for k in np.flatnonzero(same_band & (agree >= NEAR_COPY_SIMILARITY)).tolist():
                    union(int(distinct[members[k]]), int(distinct[members[j]]))
    return [find(n) for n in range(len(hashes))]


def _signature_blob(signature: Sequence[int]) -> bytes:
    # MinHash values are below 2^32 (the prime): four bytes each.
    return np.asarray(signature, dtype=np.uint32).tobytes()


def _signature(blob: bytes) -> tuple[int, ...]:
    # Eight bytes a value in the release before (512 bytes a signature), four since.
    width = np.uint64 if len(blob) == SIGNATURE_SIZE * 8 else np.uint32
    return tuple(int(v) for v in np.frombuffer(blob, dtype=width))


class CopiesTable:
    """The ``article_copies`` table of a store: fingerprints and stories, kept up to date
    at the cost of the write, not of the index.

    Triggers on ``articles`` note, in the write's own transaction, which articles were added
    (``copies_pending``) and which stories lost an article (``copies_split``); ``update``
    then fingerprints only the added articles and finds their candidates by indexed
    look-ups (``article_copies.text_hash`` and the LSH bands in ``copy_bands``), and
    regroups only the stories that lost an article. Stories are connected components of
    "same normalised text or near-copy signature sharing a band", each named by its
    earliest-ingested article, so adding articles one by one and splitting only the
    stories that lost one gives what ``group_stories`` gives over every article.

    An index written before copies were found has no table: a reader then sees every
    article as its own story. An index written before the bands has no ``copies_state``
    row: its next write takes every article as added, once (the upgrade).
    """

    def __init__(self, db: sqlite3.Connection, *, writable: bool) -> None:
        self._db = db
        # What the last ``update`` did (for tests and logs): articles fingerprinted, and
        # stories regrouped after losing an article.
        self.fingerprinted = 0
        self.regrouped = 0
        if writable:
            db.executescript(SCHEMA)
        self.present = bool(
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'article_copies'"
            ).fetchone()
        )

    def update(self) -> int:
        """Fingerprint the articles added since the last update and join them to their
        stories; regroup the stories that lost an article. Returns the number of articles
        that are copies of another. Called by ingest before it commits."""
        self.fingerprinted = self.regrouped = 0
        layout = self._db.execute("SELECT value FROM copies_state WHERE key = 'bands'").fetchone()
        if layout is None or layout[0] != BANDS_LAYOUT:
            self.fingerprinted = self._start_over()
            return self._count_copies()
        removed = self._db.execute("SELECT article, signature FROM copies_removed").fetchall()
        if removed:
            self._db.executemany(
                "DELETE FROM story_bands WHERE band_key = ? AND article = ?",
                [(key, rowid) for rowid, blob in removed for key in band_keys(_signature(blob))],
            )
            self._db.execute("DELETE FROM copies_removed")
        split = [r[0] for r in self._db.execute("SELECT story FROM copies_split")]
        for story in split:
            self._regroup(story)
        self.regrouped = len(split)
        added = self._db.execute(
            "SELECT a.id, a.text, a.rowid FROM copies_pending CROSS JOIN articles a"
            " ON a.id = copies_pending.article_id"
            " ORDER BY a.rowid"
        ).fetchall()
        for article_id, text, rowid in added:
            self._add(article_id, fingerprint(text), rowid)
        self.fingerprinted = len(added)
        if split or added:
            self._db.execute("DELETE FROM copies_split")
            self._db.execute("DELETE FROM copies_pending")
        copies = self._count_copies()
        if added or split:
            logger.info(
                "%d articles fingerprinted, %d stories regrouped; %d are copies of another",
                len(added),
                len(split),
                copies,
            )
        return copies

    def _count_copies(self) -> int:
        # Read through the partial index of copies: as many rows as there are copies.
        copies: int = self._db.execute(
            "SELECT count(*) FROM article_copies INDEXED BY article_copies_copy"
            " WHERE article_id != story"
        ).fetchone()[0]
        return copies

    def _start_over(self) -> int:
        """``_group_afresh`` with a page cache that holds what it writes: a transaction
        larger than the cache spills to the write-ahead log, and every later look-up then
        reads through it (the release before, adding a million-chunk index's articles one
        by one, read 525 GB so and had not finished after 23 minutes)."""
        db = self._db
        cache = db.execute("PRAGMA cache_size").fetchone()[0]
        db.execute(f"PRAGMA cache_size = {-BULK_CACHE_KB}")
        try:
            return self._group_afresh()
        finally:
            db.execute(f"PRAGMA cache_size = {int(cache)}")

    def _group_afresh(self) -> int:
        """Fingerprint and group every article afresh, in bulk (an index written before
        the bands, or before this layout of them: once). Texts met before are not
        fingerprinted again; candidates come from one sort of every band key
        (``group_all``); the rows go in in key order. Returns the articles fingerprinted."""
        db = self._db
        started = time.perf_counter()
        if not db.in_transaction:  # one transaction, the caller's commit ends it
            db.execute("BEGIN")
        for statement in _BEFORE.split(";"):
            if statement.strip():
                db.execute(statement)
        for table in ("story_bands", "article_copies", "copies_split", "copies_pending"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM copies_removed")
        ids: list[str] = []
        rowids: list[int] = []
        hashes: list[str] = []
        first: list[int] = []
        signatures: list[tuple[int, ...]] = []
        seen: dict[str, int] = {}
        # Texts met before, byte for byte (by a hash of the raw text): not read again.
        raw: dict[bytes, str] = {}
        for article_id, text, rowid in db.execute(
            "SELECT id, text, rowid FROM articles ORDER BY rowid"
        ):
            raw_hash = hashlib.blake2b(text.encode(), digest_size=16).digest()
            text_hash = raw.get(raw_hash)
            tokens: list[str] = []
            if text_hash is None:
                tokens = normalised_words(text)
                text_hash = raw[raw_hash] = _text_hash(tokens)
            number = len(ids)
            ids.append(article_id)
            rowids.append(rowid)
            hashes.append(text_hash)
            known = seen.setdefault(text_hash, number)
            first.append(known)
            if known == number:
                signatures.append(_signature_of(tokens) or (0,) * SIGNATURE_SIZE)
        matrix = np.asarray(signatures, dtype=np.uint32).reshape(-1, SIGNATURE_SIZE)
        fingerprinted = time.perf_counter()
        stories = group_all(hashes, matrix, first)
        # Where each article's signature is: the row of the first article of its text.
        row_of = {
            number: row for row, number in enumerate(n for n, f in enumerate(first) if f == n)
        }
        blobs = [
            _signature_blob(matrix[row]) if matrix[row].any() else b"" for row in range(len(matrix))
        ]
        db.executemany(
            "INSERT INTO article_copies (article_id, text_hash, signature, story)"
            " VALUES (?, ?, ?, ?)",
            (
                (ids[n], hashes[n], blobs[row_of[first[n]]], ids[stories[n]])
                for n in range(len(ids))
            ),
        )
        # Every fingerprinted article's bands, a copy's as its text's: sorted by key.
        with_signature = np.asarray(
            [n for n in range(len(ids)) if blobs[row_of[first[n]]]], dtype=np.int64
        )
        if len(with_signature):
            rows = np.asarray([row_of[first[n]] for n in with_signature.tolist()], np.int64)
            keys = band_key_matrix(matrix)[rows].ravel()
            owners = np.repeat(np.asarray(rowids, dtype=np.int64)[with_signature], BANDS)
            order = np.lexsort((owners, keys))
            keys, owners = keys[order], owners[order]
            step = 200_000
            for start in range(0, len(keys), step):
                db.executemany(
                    "INSERT OR IGNORE INTO story_bands (band_key, article) VALUES (?, ?)",
                    zip(
                        keys[start : start + step].tolist(),
                        owners[start : start + step].tolist(),
                        strict=True,
                    ),
                )
        db.execute(
            "INSERT OR REPLACE INTO copies_state (key, value) VALUES ('bands', ?)",
            (BANDS_LAYOUT,),
        )
        logger.info(
            "grouped every article afresh: %d articles (%d distinct texts) fingerprinted in"
            " %.1f s, grouped and written in %.1f s",
            len(ids),
            len(matrix),
            fingerprinted - started,
            time.perf_counter() - fingerprinted,
        )
        return len(ids)

    def _add(self, article_id: str, print_: Fingerprint, rowid: int) -> None:
        """Join one article to the stories of the articles it copies (merging them)."""
        linked = {
            r[0]
            for r in self._db.execute(
                "SELECT story FROM article_copies WHERE text_hash = ?", (print_.text_hash,)
            )
        }
        keys = band_keys(print_.signature)
        if keys:
            marks = ",".join("?" * len(keys))
            # A band's row may name a rowid whose article has gone (or been replaced):
            # every candidate is checked against its own signature.
            for story, blob in self._db.execute(
                "SELECT c.story, c.signature FROM article_copies c WHERE c.article_id IN"
                " (SELECT a.id FROM articles a WHERE a.rowid IN"
                f" (SELECT article FROM story_bands WHERE band_key IN ({marks})))",
                keys,
            ):
                if story in linked:
                    continue
                other = _signature(blob)
                if shares_band(other, print_.signature) and (
                    similarity(other, print_.signature) >= NEAR_COPY_SIMILARITY
                ):
                    linked.add(story)
        story = article_id
        if linked:
            marks = ",".join("?" * len(linked))
            first_id, first_rowid = self._db.execute(
                f"SELECT id, rowid FROM articles WHERE id IN ({marks}) ORDER BY rowid LIMIT 1",
                list(linked),
            ).fetchone()
            if first_rowid < rowid:
                story = first_id
            self._db.execute(
                f"UPDATE article_copies SET story = ? WHERE story IN ({marks}) AND story != ?",
                [story, *linked, story],
            )
        self._db.execute(
            "INSERT INTO article_copies (article_id, text_hash, signature, story)"
            " VALUES (?, ?, ?, ?)",
            (article_id, print_.text_hash, _signature_blob(print_.signature), story),
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO story_bands (band_key, article) VALUES (?, ?)",
            [(key, rowid) for key in keys],
        )

    def _regroup(self, story: str) -> None:
        """Group again the articles left in a story that lost one (it may fall apart)."""
        rows = self._db.execute(
            "SELECT c.article_id, c.text_hash, c.signature FROM article_copies c"
            " JOIN articles a ON a.id = c.article_id WHERE c.story = ? ORDER BY a.rowid",
            (story,),
        ).fetchall()
        stories = group_stories([(r[0], Fingerprint(r[1], _signature(r[2]))) for r in rows])
        self._db.executemany(
            "UPDATE article_copies SET story = ? WHERE article_id = ? AND story != ?",
            [(new, article_id, new) for article_id, new in stories.items()],
        )

    def stories(self, article_ids: Iterable[str]) -> dict[str, str]:
        """The story of each of ``article_ids`` that is not its own (a copy's original, or an
        original's own id when it has copies); articles without copies are left out."""
        ids = list(dict.fromkeys(article_ids))
        if not self.present or not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT c.article_id, c.story FROM article_copies c WHERE c.article_id IN ({marks})"
            " AND EXISTS (SELECT 1 FROM article_copies o"
            " WHERE o.story = c.story AND o.article_id != c.article_id)",
            ids,
        )
        return {r[0]: r[1] for r in rows}

    def heads(self, stories: Iterable[str], first: int) -> dict[str, tuple[list[str], int]]:
        """The first ``first`` article ids of each story, in ingest order, and how many it
        has: what an answer names costs the same for a story of 3 articles or of 300."""
        ids = list(dict.fromkeys(stories))
        if not self.present or not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found: dict[str, tuple[list[str], int]] = {}
        for story, article_id, total in self._db.execute(
            "SELECT story, article_id, total FROM (SELECT c.story, c.article_id,"
            " row_number() OVER (PARTITION BY c.story ORDER BY a.rowid) AS n,"
            " count(*) OVER (PARTITION BY c.story) AS total FROM article_copies c"
            f" JOIN articles a ON a.id = c.article_id WHERE c.story IN ({marks}))"
            " WHERE n <= ? ORDER BY story, n",
            [*ids, first],
        ):
            found.setdefault(story, ([], total))[0].append(article_id)
        return found

    def groups(self) -> list[list[str]]:
        """Every story with copies: its article ids in ingest order, the original first."""
        if not self.present:
            return []
        rows = self._db.execute(
            "SELECT c.story, c.article_id FROM article_copies c JOIN articles a"
            " ON a.id = c.article_id WHERE c.story IN (SELECT story FROM article_copies"
            " GROUP BY story HAVING count(*) > 1) ORDER BY a.rowid"
        ).fetchall()
        found: dict[str, list[str]] = {}
        for story, article_id in rows:
            found.setdefault(story, []).append(article_id)
        return sorted(found.values(), key=lambda ids: ids[0])
