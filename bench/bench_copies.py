"""Copies benchmark: what finding copies (retrieval.duplicates) adds to a write.

    .venv/bin/python bench/bench_copies.py --index /tmp/bbc-index
    PYTHONPATH=/path/to/baseline-tree .venv/bin/python bench/bench_copies.py --index /tmp/bbc-index

Copies the store of the index's current generation into --work, brings its copies up to
date once (for an index written before the bands: the one-time upgrade, timed), then times
``CopiesTable.update()`` on an unchanged store and after adding one BBC-sized article,
--rounds times each, and prints the medians. Run it once per code tree (PYTHONPATH) in the
same session for a same-run baseline.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from retrieval.index.store import Store
from retrieval.records import Article

TEXT = " ".join(f"word{n % 97} about the story number {n}" for n in range(160))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    generation = sorted(args.index.glob("gen-*"))[-1]
    work = Path(tempfile.mkdtemp(dir=args.work, prefix="copies-"))
    try:
        shutil.copy(generation / "store.sqlite", work / "store.sqlite")
        store = Store(work / "store.sqlite")
        started = time.perf_counter()
        store.copies.update()
        store.commit()
        print(f"first update (the upgrade, if any): {time.perf_counter() - started:.2f} s")
        unchanged, added = [], []
        for n in range(args.rounds):
            started = time.perf_counter()
            store.copies.update()
            unchanged.append(time.perf_counter() - started)
            store.commit()
            article = Article(id=f"bench-{n}", title="bench", text=f"{TEXT} {n}", source="bench")
            store.add_article(article, "bench", [])
            started = time.perf_counter()
            store.copies.update()
            added.append(time.perf_counter() - started)
            store.commit()
        store.close()
        print(
            f"update(), unchanged: median {statistics.median(unchanged) * 1000:.1f} ms;"
            f" after adding one article: median {statistics.median(added) * 1000:.1f} ms"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
