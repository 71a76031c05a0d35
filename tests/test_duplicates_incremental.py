"""Copies found at the cost of the write (retrieval.duplicates.CopiesTable.update): only the
articles a write adds are fingerprinted, only the stories it takes an article from are
regrouped, and the stories always equal a full regrouping (group_stories) of every article."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from retrieval.duplicates import (
    BANDS,
    SIGNATURE_SIZE,
    _signature,
    band_keys,
    fingerprint,
    group_all,
    group_stories,
)
from retrieval.index.store import Store
from retrieval.records import Article
from tests.helpers import CORPUS, as_written_before_rowid_bands

FERRY = (CORPUS / "ferry.txt").read_text().split("\n", 1)[1]
WORDS = (CORPUS / "orchestra.md").read_text().split() + FERRY.split()


def _article(article_id: str, text: str) -> Article:
    return Article(id=article_id, title=article_id, text=text, source="test")


def _stories(store: Store) -> dict[str, str]:
    rows = store.connection.execute("SELECT article_id, story FROM article_copies")
    return {r[0]: r[1] for r in rows}


def _full_regrouping(store: Store) -> dict[str, str]:
    rows = store.connection.execute("SELECT id, text FROM articles ORDER BY rowid").fetchall()
    return group_stories([(r[0], fingerprint(r[1])) for r in rows])


def _write(store: Store, add: dict[str, str] | None = None, remove: tuple[str, ...] = ()) -> int:
    for article_id in remove:
        store.delete_article(article_id)
    for article_id, text in (add or {}).items():
        store.add_article(_article(article_id, text), "hash", [])
    copies = store.copies.update()
    store.commit()
    return copies


def test_a_write_that_changes_nothing_fingerprints_and_regroups_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    _write(store, {"ferry": FERRY, "copy": FERRY, "other": " ".join(WORDS[:80])})
    assert store.copies.fingerprinted == 3
    statements: list[str] = []
    changes = store.connection.total_changes
    store.connection.set_trace_callback(statements.append)
    assert _write(store) == 1
    store.connection.set_trace_callback(None)
    assert store.copies.fingerprinted == 0 and store.copies.regrouped == 0
    assert store.connection.total_changes == changes
    # Only look-ups: no statement writes, none reads through articles or fingerprints.
    plans = [
        row[3]
        for statement in statements
        if statement.startswith("SELECT")
        for row in store.connection.execute("EXPLAIN QUERY PLAN " + statement)
    ]
    assert plans and all(s.split()[0] in ("SELECT", "COMMIT") for s in statements)
    scans = [p for p in plans if p.startswith("SCAN") and "copies_" not in p]
    assert scans == []
    store.close()


def test_adding_then_removing_keeps_the_stories_right(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    corrected = FERRY.replace("eight return crossings", "nine return crossings")
    _write(store, {"ferry": FERRY, "other": " ".join(WORDS[:80])})
    assert _write(store, {"corrected": corrected, "copy": FERRY}) == 2
    assert _stories(store) == {
        "ferry": "ferry",
        "corrected": "ferry",
        "copy": "ferry",
        "other": "other",
    }
    # The story's first article goes: the story is named by the next one.
    assert _write(store, remove=("ferry",)) == 1
    assert store.copies.fingerprinted == 0 and store.copies.regrouped == 1
    assert _stories(store) == {"corrected": "corrected", "copy": "corrected", "other": "other"}
    # Replaced by an unrelated text: it leaves the story, which ends.
    assert _write(store, {"copy": " ".join(WORDS[40:120])}, remove=("copy",)) == 0
    assert _stories(store) == _full_regrouping(store)
    assert set(_stories(store).values()) == {"corrected", "copy", "other"}
    store.close()


def _random_text(rng: random.Random, bases: list[str]) -> str:
    if bases and rng.random() < 0.6:
        words = rng.choice(bases).split()
        kind = rng.random()
        if kind < 0.3:
            return " ".join(words)  # an exact copy
        if kind < 0.6:  # a corrected copy: a few words changed
            for _ in range(rng.randint(1, 6)):
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            return " ".join(words)
        cut = rng.randint(len(words) // 3, len(words))  # a part, with more added
        return " ".join(words[:cut] + rng.sample(WORDS, rng.randint(0, 40)))
    return " ".join(rng.choices(WORDS, k=rng.choice([10, 30, 60, 120])))


def test_incremental_grouping_equals_a_full_regrouping(tmp_path: Path) -> None:
    rng = random.Random(18)
    store = Store(tmp_path / "store.sqlite")
    texts: dict[str, str] = {}
    for write in range(40):
        removed = tuple(rng.sample(sorted(texts), min(len(texts), rng.randint(0, 3))))
        replaced = [i for i in removed if rng.random() < 0.5]
        for article_id in removed:
            del texts[article_id]
        added = {f"a{write}-{n}": _random_text(rng, list(texts.values())) for n in range(4)}
        added.update({i: _random_text(rng, list(texts.values())) for i in replaced})
        texts.update(added)
        copies = _write(store, added, removed)
        expected = _full_regrouping(store)
        assert _stories(store) == expected, f"write {write}"
        assert copies == sum(a != s for a, s in expected.items())
    assert sum(a != s for a, s in _stories(store).items()) > 20  # copies were made
    store.close()


def test_an_index_without_bands_is_grouped_once_on_its_next_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    _write(store, {"ferry": FERRY, "copy": FERRY})
    # As the release before wrote it: fingerprints and stories, no bands.
    store.connection.execute("DELETE FROM copies_state")
    store.connection.execute("DELETE FROM story_bands")
    store.connection.execute("UPDATE article_copies SET story = article_id")
    store.commit()
    assert _write(store, {"fixed": FERRY.replace("eight", "nine")}) == 2
    assert store.copies.fingerprinted == 3
    assert _stories(store) == {"ferry": "ferry", "copy": "ferry", "fixed": "ferry"}
    assert _write(store) == 2 and store.copies.fingerprinted == 0
    store.close()


def _bands(store: Store) -> set[tuple[int, int]]:
    rows = store.connection.execute("SELECT band_key, article FROM story_bands")
    return {(r[0], r[1]) for r in rows}


def _expected_bands(store: Store) -> set[tuple[int, int]]:
    rows = store.connection.execute(
        "SELECT a.rowid, c.signature FROM article_copies c JOIN articles a ON a.id = c.article_id"
    )
    return {(key, rowid) for rowid, blob in rows for key in band_keys(_signature(blob))}


def test_the_bands_are_kept_by_rowid_and_leave_with_their_article(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    _write(store, {"ferry": FERRY, "copy": FERRY, "other": " ".join(WORDS[:80])})
    assert len(_bands(store)) == 3 * BANDS  # a copy's rows too (its text's keys, its rowid)
    assert _bands(store) == _expected_bands(store)
    _write(store, {"copy": " ".join(WORDS[40:120])}, remove=("copy", "other"))
    assert _bands(store) == _expected_bands(store)
    assert not store.connection.execute("SELECT count(*) FROM copies_removed").fetchone()[0]
    store.close()


def test_bands_by_text_id_are_replaced_by_bands_by_rowid_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = Store(path)
    _write(store, {"ferry": FERRY, "copy": FERRY, "other": " ".join(WORDS[:80])})
    store.close()
    as_written_before_rowid_bands(path)
    store = Store(path)  # a writer opens it: both triggers exist until the next update
    store.delete_article("other")
    assert _write(store, {"fixed": FERRY.replace("eight", "nine")}) == 2
    assert store.copies.fingerprinted == 3
    names = {r[0] for r in store.connection.execute("SELECT name FROM sqlite_master")}
    assert "copy_bands" not in names and "copies_article_removed" not in names
    assert _stories(store) == {"ferry": "ferry", "copy": "ferry", "fixed": "ferry"}
    assert _bands(store) == _expected_bands(store)
    # Once: the next write fingerprints nothing, and removals take their bands along.
    assert _write(store, remove=("ferry",)) == 1 and store.copies.fingerprinted == 0
    assert _bands(store) == _expected_bands(store)
    assert _stories(store) == _full_regrouping(store)
    store.close()


def test_grouping_every_article_at_once_equals_grouping_them_one_by_one() -> None:
    rng = random.Random(20261205)
    texts: list[str] = []
    for _ in range(300):
        texts.append(_random_text(rng, texts[-30:]))
    prints = [fingerprint(t) for t in texts]
    expected = group_stories([(str(n), p) for n, p in enumerate(prints)])
    hashes = [p.text_hash for p in prints]
    first = [hashes.index(h) for h in hashes]
    signatures = np.asarray(
        [p.signature or (0,) * SIGNATURE_SIZE for n, p in enumerate(prints) if first[n] == n],
        dtype=np.uint64,
    )
    grouped = group_all(hashes, signatures, first)
    assert {str(n): str(s) for n, s in enumerate(grouped)} == expected
    assert sum(n != s for n, s in enumerate(grouped)) > 50  # copies were made
