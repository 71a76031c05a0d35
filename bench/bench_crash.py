"""Crash benchmark: kill -9 an ingest at every named step (of a write in place, of a
compaction, of the upgrade of an index written before segments, of the write that groups
the copies of an index with the release before's bands afresh, of a first ingest and of a
rebuild, of a batch of a write committed in batches, of the batches of a first ingest and
of a rebuild) and at N random moments: writes in place without and with batches, first
ingests and rebuilds with batches.

    .venv/bin/python bench/bench_crash.py --kills 50

Uses the crash lab of tests/reliability (an ingest subprocess with the fake embedder,
200 JSON Lines articles, each run adding, updating and pruning). After each kill it
checks that the index opens, that FAISS ids = SQLite chunk ids = FTS rows (compared in
full), that it holds the old or the new articles, and that the next ingest succeeds and
leaves nothing behind (after a rebuild, the next ingest is a rebuild: it resumes or
removes what the killed one staged). Prints one line per kind of run and the share that
passed.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package

from retrieval.index import (
    BATCH_STEPS,
    BATCHED_FIRST_INGEST_STEPS,
    COMPACTION_STEPS,
    GENERATION_STEPS,
    STAGING_STEPS,
    UPGRADE_STEPS,
    WRITE_STEPS,
    read_manifest,
)
from tests.helpers import as_written_before_rowid_bands
from tests.reliability.crash import CrashLab

# Articles a batch of the "batches" runs commits ([ingest] commit_every_articles).
BATCH = 25
# Each kind of run and the steps it passes.
STEPS = {
    "update": WRITE_STEPS,
    "batches": BATCH_STEPS,
    "compact": COMPACTION_STEPS,
    "upgrade": UPGRADE_STEPS,
    # A write into an index whose copies' bands are kept by text id (the release before):
    # it groups every article afresh in its own transaction.
    "copies": WRITE_STEPS,
    "rebuild": GENERATION_STEPS,
    "first": GENERATION_STEPS,
    "first batches": BATCHED_FIRST_INGEST_STEPS,
    "rebuild batches": STAGING_STEPS,
}
BATCHED = ("batches", "first batches", "rebuild batches")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=50, help="random moments to kill at")
    parser.add_argument("--articles", type=int, default=200, help="articles per corpus version")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random moments")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    steps = sum(len(s) for s in STEPS.values())
    print(f"seed {seed}, {args.articles} articles a version, {steps} named steps")

    with tempfile.TemporaryDirectory(prefix="citebot-crash-") as scratch:
        lab = CrashLab(Path(scratch) / "lab", articles=args.articles)

        def run(name: str, before: str | None, index_dir: Path, **crash: Any) -> dict[str, Any]:
            """One crash and recovery; what happened, never raising."""
            after = "a" if before == "b" else "b"
            result: dict[str, Any] = {"name": name, "killed": False, "ok": False, "state": "?"}
            result["left"] = ()
            try:
                if crash.pop("staged_before", False):  # a killed rebuild, to resume
                    lab.crash(
                        index_dir, before, after, **{**crash, "kill_at": "staging-batch-committed"}
                    )
                outcome = lab.crash(index_dir, before, after, **crash)
                result.update(killed=outcome.killed, state=outcome.state, left=outcome.leftovers)
                lab.recover(index_dir, after, rebuild=crash.get("rebuild", False))
                result["ok"] = True
            except Exception as exc:  # a failed check is a result to count, not a crash
                result["error"] = f"{type(exc).__name__}: {exc}"
            return result

        results = []
        started = time.perf_counter()
        for mode, steps in STEPS.items():
            for step in steps:
                index_dir = Path(scratch) / f"step-{mode}-{step}"
                before = None if mode.startswith("first") else "a"
                if before:
                    lab.index_of(before, index_dir, before_segments=mode == "upgrade")
                if mode == "copies":
                    folder = index_dir / read_manifest(index_dir).folder
                    as_written_before_rowid_bands(folder / "store.sqlite")
                results.append(
                    run(
                        f"step {mode}",
                        before,
                        index_dir,
                        kill_at=step,
                        rebuild=mode.startswith("rebuild"),
                        compact=mode == "compact",
                        commit_every=BATCH if mode in BATCHED else None,
                        staged_before=step == "resumed",
                    )
                )
        step_seconds = time.perf_counter() - started

        index_dir = lab.index_of("a", Path(scratch) / "random")
        duration = max(
            lab.crash(index_dir, "a", "b").seconds, lab.crash(index_dir, "b", "a").seconds
        )
        rng = random.Random(seed)
        started = time.perf_counter()
        for number in range(args.kills):
            before = "ab"[number % 2]
            results.append(run("random", before, index_dir, kill_after=rng.uniform(0, duration)))
        random_seconds = time.perf_counter() - started

        # The same, committing in batches of BATCH articles: a kill keeps the batches.
        index_dir = lab.index_of("a", Path(scratch) / "random-batches")
        started = time.perf_counter()
        for number in range(args.kills):
            before = "ab"[number % 2]
            moment = rng.uniform(0, duration)
            results.append(
                run("random batches", before, index_dir, kill_after=moment, commit_every=BATCH)
            )
        batch_seconds = time.perf_counter() - started

        # First ingests (a new folder each) and rebuilds, in batches, killed at random
        # within the time an uninterrupted one takes (it embeds every article).
        first = lab.crash(Path(scratch) / "first-timing", None, "b", commit_every=BATCH).seconds
        index_dir = lab.index_of("a", Path(scratch) / "random-rebuild")
        rebuilding = lab.crash(index_dir, "a", "b", rebuild=True, commit_every=BATCH).seconds
        started = time.perf_counter()
        for number in range(args.kills):
            index_dir = Path(scratch) / f"random-first-{number}"
            moment = rng.uniform(0, first)
            results.append(
                run("random first", None, index_dir, kill_after=moment, commit_every=BATCH)
            )
        index_dir = Path(scratch) / "random-rebuild"
        for number in range(args.kills):
            before = "ba"[number % 2]
            moment = rng.uniform(0, rebuilding)
            results.append(
                run(
                    "random rebuild",
                    before,
                    index_dir,
                    kill_after=moment,
                    commit_every=BATCH,
                    rebuild=True,
                )
            )
        new_seconds = time.perf_counter() - started

    print(
        f"uninterrupted ingest (after imports): {duration * 1000:.0f} ms; a first ingest"
        f" {first * 1000:.0f} ms, a rebuild {rebuilding * 1000:.0f} ms (batches of {BATCH})"
    )
    groups = ["random", "random batches", "random first", "random rebuild"]
    for name in [*(f"step {mode}" for mode in STEPS), *groups]:
        group = [r for r in results if r["name"] == name]
        ok = sum(r["ok"] for r in group)
        killed = sum(r["killed"] for r in group)
        states = Counter(r["state"] for r in group)
        healed = sum(bool(r["left"]) for r in group if r["ok"])
        print(
            f"{name:20} runs {len(group):3}  killed {killed:3}  passed {ok:3}/{len(group)}"
            f" ({ok / len(group):.0%})  old/new/none/partial {states['before']}"
            f"/{states['after']}/{states['none']}/{states['partial']}"
            f"  left something to heal {healed}"
        )
    print(
        f"time: steps {step_seconds:.1f}s, random {random_seconds:.1f}s,"
        f" random batches {batch_seconds:.1f}s, random first + rebuild {new_seconds:.1f}s"
    )
    for failure in (r for r in results if not r["ok"]):
        print(f"FAILED {failure['name']}: {failure['error']}")
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
