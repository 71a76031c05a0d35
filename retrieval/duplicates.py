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
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
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
"""


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
    text_hash = hashlib.blake2b(" ".join(tokens).encode(), digest_size=16).hexdigest()
    if len(tokens) < MIN_WORDS:
        return Fingerprint(text_hash, ())
    shingles = {
        zlib.crc32(" ".join(tokens[i : i + SHINGLE_WORDS]).encode())
        for i in range(len(tokens) - SHINGLE_WORDS + 1)
    }
    values = np.fromiter(shingles, dtype=np.uint64, count=len(shingles))
    # (a * x + b) mod p for each hash function: x < 2^32 and a, b < p < 2^32, so it fits
    # in 64 bits without wrapping.
    hashed = (_A[:, None] * values[None, :] + _B[:, None]) % np.uint64(_PRIME)
    return Fingerprint(text_hash, tuple(int(v) for v in hashed.min(axis=1)))


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """The share of signature positions on which two fingerprints agree (0 if either has none)."""
    if not a or not b:
        return 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


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


def _signature_blob(signature: Sequence[int]) -> bytes:
    return np.asarray(signature, dtype=np.uint64).tobytes()


def _signature(blob: bytes) -> tuple[int, ...]:
    return tuple(int(v) for v in np.frombuffer(blob, dtype=np.uint64))


class CopiesTable:
    """The ``article_copies`` table of a store: fingerprints and stories.

    An index written before copies were found has no table: a reader then sees every
    article as its own story, and the next ingest fingerprints every article.
    """

    def __init__(self, db: sqlite3.Connection, *, writable: bool) -> None:
        self._db = db
        if writable:
            db.executescript(SCHEMA)
        self.present = bool(
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'article_copies'"
            ).fetchone()
        )

    def update(self) -> int:
        """Fingerprint the articles that have none, then group every article into stories.
        Returns the number of articles that are copies of another. Called by ingest
        before it commits."""
        missing = self._db.execute(
            "SELECT a.id, a.text FROM articles a LEFT JOIN article_copies c ON c.article_id = a.id"
            " WHERE c.article_id IS NULL"
        ).fetchall()
        for article_id, text in missing:
            print_ = fingerprint(text)
            self._db.execute(
                "INSERT INTO article_copies (article_id, text_hash, signature, story)"
                " VALUES (?, ?, ?, ?)",
                (article_id, print_.text_hash, _signature_blob(print_.signature), article_id),
            )
        rows = self._db.execute(
            "SELECT c.article_id, c.text_hash, c.signature FROM article_copies c"
            " JOIN articles a ON a.id = c.article_id ORDER BY a.rowid"
        ).fetchall()
        stories = group_stories([(r[0], Fingerprint(r[1], _signature(r[2]))) for r in rows])
        self._db.executemany(
            "UPDATE article_copies SET story = ? WHERE article_id = ? AND story != ?",
            [(story, article_id, story) for article_id, story in stories.items()],
        )
        copies = sum(article_id != story for article_id, story in stories.items())
        logger.info("%d articles fingerprinted; %d are copies of another", len(missing), copies)
        return copies

    def forget(self, article_id: str) -> None:
        """Drop an article's fingerprint (its text changed): ``update`` takes it again."""
        if self.present:
            self._db.execute("DELETE FROM article_copies WHERE article_id = ?", (article_id,))

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

    def members(self, stories: Iterable[str]) -> dict[str, list[str]]:
        """The article ids of each story, in ingest order."""
        ids = list(dict.fromkeys(stories))
        if not self.present or not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found: dict[str, list[str]] = {}
        for story, article_id in self._db.execute(
            f"SELECT c.story, c.article_id FROM article_copies c JOIN articles a"
            f" ON a.id = c.article_id WHERE c.story IN ({marks}) ORDER BY a.rowid",
            ids,
        ):
            found.setdefault(story, []).append(article_id)
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
