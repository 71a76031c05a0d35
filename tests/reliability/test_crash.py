"""kill -9 during ingest: at every named step of a write in place, of a compaction, of an
upgrade, of a new generation's commit and of the batches of a first ingest and of a
rebuild, and at random moments. After each crash the index opens, FAISS = SQLite = FTS, it holds the old or
the new articles (never a mix), and the next ingest succeeds and cleans up.

CITEBOT_CRASH_KILLS sets the number of random moments (default 8; the issue's target
of 50 is run by bench/bench_crash.py).
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest

from retrieval.duplicates import BANDS_LAYOUT, fingerprint, group_stories
from retrieval.index import (
    APPROXIMATE,
    BATCH_STEPS,
    BATCHED_FIRST_INGEST_STEPS,
    COMPACTION_STEPS,
    GENERATION_STEPS,
    STAGING_STEPS,
    UPGRADE_STEPS,
    WRITE_STEPS,
    open_index,
    read_manifest,
)
from tests.fakes import FakeEmbedder
from tests.helpers import as_written_before_rowid_bands
from tests.reliability.crash import CrashLab

RANDOM_KILLS = int(os.environ.get("CITEBOT_CRASH_KILLS", "8"))

# What each step leaves for the next writer to clean up.
LEFT_AT = {
    "staged": ".staging-",
    "store-written": ".staging-",
    "vectors-written": ".staging-",
    "synced": ".staging-",
    "renamed": "gen-",
    "manifest-staged": "index.tmp",
    "compaction-written": "vectors-",
}


def expected_state(mode: str, step: str) -> str:
    """Which articles a kill at ``step`` leaves: a new generation is visible once the
    manifest is replaced, a write in place once SQLite committed; a compaction comes after
    its write's commit, an upgrade before the write."""
    if mode in ("first", "rebuild"):
        committed = GENERATION_STEPS.index(step) >= GENERATION_STEPS.index("committed")
        return "after" if committed else "none" if mode == "first" else "before"
    if mode == "compact":
        return "after"
    if mode == "upgrade":
        return "before"
    return "after" if step == "committed" else "before"


def index_for(lab: CrashLab, tmp_path: Path, mode: str, **copy: bool) -> tuple[Path, str | None]:
    """Where a crash of ``mode`` writes, and what it holds before ("a"; none: first)."""
    index_dir = tmp_path / "index"
    before = None if mode == "first" else "a"
    if before:
        lab.index_of(before, index_dir, **copy)
    return index_dir, before


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> CrashLab:
    return CrashLab(tmp_path_factory.mktemp("crash-lab-small"), articles=40)


# Every step of a write in place, of a compaction, of an upgrade and of a first ingest; a
# rebuild differs from a first ingest only in what it starts from, so a few of its steps
# suffice.
CASES = [
    *[("update", step) for step in WRITE_STEPS],
    *[("compact", step) for step in COMPACTION_STEPS],
    *[("upgrade", step) for step in UPGRADE_STEPS],
    *[("first", step) for step in GENERATION_STEPS],
    *[("rebuild", step) for step in ("healed", "synced", "renamed", "committed")],
]


@pytest.mark.parametrize(("mode", "step"), CASES)
def test_kill_at_each_commit_step(
    small_lab: CrashLab, tmp_path: Path, mode: str, step: str
) -> None:
    index_dir, before = index_for(small_lab, tmp_path, mode, before_segments=mode == "upgrade")

    outcome = small_lab.crash(
        index_dir, before, "b", kill_at=step, rebuild=mode == "rebuild", compact=mode == "compact"
    )

    assert outcome.killed, f"the ingest never reached {step!r}"
    assert outcome.state == expected_state(mode, step)
    if step in LEFT_AT:
        assert any(name.startswith(LEFT_AT[step]) for name in outcome.leftovers)
    if mode == "upgrade":
        upgraded = step == UPGRADE_STEPS[-1]
        assert read_manifest(index_dir).schema_version == (2 if upgraded else 1)
    small_lab.recover(index_dir, "b", rebuild=mode == "rebuild")
    assert read_manifest(index_dir).schema_version == 2


# Batches of 5 of the 40 articles: a first ingest publishes its first batch, then commits
# in place; a rebuild commits inside its staging folder, and the next rebuild resumes it.
BATCH = 5
BATCH_CASES = [
    *[("first", step) for step in BATCHED_FIRST_INGEST_STEPS],
    *[("rebuild", step) for step in STAGING_STEPS],
]
FIRST_PUBLISHED = ("first-batch-published", *BATCH_STEPS)


@pytest.mark.parametrize(("mode", "step"), BATCH_CASES)
def test_kill_at_each_batch_step_of_a_new_generation(
    small_lab: CrashLab, tmp_path: Path, mode: str, step: str
) -> None:
    index_dir, before = index_for(small_lab, tmp_path, mode)
    if step == "resumed":  # a rebuild killed after a batch, then the one resuming it
        small_lab.crash(
            index_dir,
            before,
            "b",
            kill_at="staging-batch-committed",
            rebuild=True,
            commit_every=BATCH,
        )

    outcome = small_lab.crash(
        index_dir, before, "b", kill_at=step, rebuild=mode == "rebuild", commit_every=BATCH
    )

    assert outcome.killed, f"the ingest never reached {step!r}"
    if mode == "rebuild":  # the old index is read until the rebuild ends
        assert outcome.state == "before"
        assert any(name.startswith(".staging-") for name in outcome.leftovers)
    else:  # the index exists from the first batch on
        assert outcome.state == ("partial" if step in FIRST_PUBLISHED else "none")
    small_lab.recover(index_dir, "b", rebuild=mode == "rebuild")


def _copies_layout(index_dir: Path) -> tuple[str | None, set[str], dict[str, str]]:
    """The copies state's band layout, the copies tables, and the stories."""
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        layout = db.execute("SELECT value FROM copies_state WHERE key = 'bands'").fetchone()
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        stories = dict(db.execute("SELECT article_id, story FROM article_copies").fetchall())
    finally:
        db.close()
    return layout[0] if layout else None, names, stories


@pytest.mark.parametrize("step", WRITE_STEPS)
def test_kill_at_each_step_of_the_write_that_regroups_the_copies(
    small_lab: CrashLab, tmp_path: Path, step: str
) -> None:
    """An index whose copies' bands are kept by text id (the release before) is grouped
    afresh, bands by rowid, in its next write's own transaction: killed before the commit,
    the old layout is whole; after it, the new one; the next write finishes it."""
    index_dir = small_lab.index_of("a", tmp_path / "index")
    store = index_dir / read_manifest(index_dir).folder / "store.sqlite"
    as_written_before_rowid_bands(store)
    _, _, stories_before = _copies_layout(index_dir)

    outcome = small_lab.crash(index_dir, "a", "b", kill_at=step)

    assert outcome.killed and outcome.state == expected_state("update", step)
    layout, names, stories = _copies_layout(index_dir)
    if step == "committed":
        assert layout == BANDS_LAYOUT and "copy_bands" not in names
    else:
        assert layout == "32" and {"copy_bands", "copies_article_removed"} <= names
        assert stories == stories_before
    small_lab.recover(index_dir, "b")
    layout, names, stories = _copies_layout(index_dir)
    assert layout == BANDS_LAYOUT and "copy_bands" not in names
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        rows = db.execute("SELECT id, text FROM articles ORDER BY rowid").fetchall()
    finally:
        db.close()
    assert stories == group_stories([(r[0], fingerprint(r[1])) for r in rows])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> CrashLab:
    return CrashLab(tmp_path_factory.mktemp("crash-lab"))


def test_kill_at_random_moments(lab: CrashLab, tmp_path: Path) -> None:
    index_dir = lab.index_of("a", tmp_path / "index")
    # One uninterrupted ingest each way measures how long a run takes here.
    duration = lab.crash(index_dir, "a", "b").seconds
    duration = max(duration, lab.crash(index_dir, "b", "a").seconds)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    versions = ["a", "b"]
    killed = 0
    for run in range(RANDOM_KILLS):
        before, after = versions[run % 2], versions[(run + 1) % 2]
        outcome = lab.crash(index_dir, before, after, kill_after=rng.uniform(0, duration))
        killed += outcome.killed
        assert outcome.state in ("before", "after"), (seed, run)
        lab.recover(index_dir, after)
    assert killed >= RANDOM_KILLS // 2, f"most moments fall within the ingest (seed {seed})"


@pytest.fixture(scope="module")
def approximate_lab(tmp_path_factory: pytest.TempPathFactory) -> CrashLab:
    """Indexes written as the approximate vector index (about 100 chunks, from 50 on)."""
    return CrashLab(tmp_path_factory.mktemp("crash-lab-ivf"), articles=40, approximate_from=50)


def vector_kind(index_dir: Path) -> str:
    index = open_index(index_dir, FakeEmbedder.name)
    try:
        return index.vectors.kind
    finally:
        index.close()


# Every step of a write in place and of a compaction of an approximate index (removing
# and adding by id), and the steps around writing the vectors of a first ingest (which
# trains one).
APPROXIMATE_CASES = [
    *[("update", step) for step in WRITE_STEPS],
    *[("compact", step) for step in COMPACTION_STEPS],
    *[("first", step) for step in ("store-written", "vectors-written", "committed")],
]


@pytest.mark.parametrize(("mode", "step"), APPROXIMATE_CASES)
def test_kill_at_each_commit_step_of_an_approximate_index(
    approximate_lab: CrashLab, tmp_path: Path, mode: str, step: str
) -> None:
    index_dir, before = index_for(approximate_lab, tmp_path, mode)
    if before:
        assert vector_kind(index_dir) == APPROXIMATE

    outcome = approximate_lab.crash(index_dir, before, "b", kill_at=step, compact=mode == "compact")

    assert outcome.killed, f"the ingest never reached {step!r}"
    assert outcome.state == expected_state(mode, step)
    approximate_lab.recover(index_dir, "b")
    assert vector_kind(index_dir) == APPROXIMATE
