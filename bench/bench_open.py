"""What the checks on open cost: open a synthetic index with and without them.

    .venv/bin/python bench/bench_open.py --chunks 200000

Writes an index of CHUNKS chunks (synthetic articles of 4 chunks, random 384-dimension
unit vectors) through the library's writer, then times, alternately and in the same
run, the checked `open_index` against the baseline: reading the manifest, opening the
store and reading the vectors, with no checks. Reports medians and the difference.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.config import ChunkSettings
from retrieval.index import (
    STORE_FILE,
    VECTORS_FILE,
    VectorIndex,
    lock_for_writing,
    open_index,
    read_manifest,
)
from retrieval.index.store import Store
from retrieval.records import Article, Chunk

MODEL = "synthetic"
DIMENSION = 384
CHUNKS_PER_ARTICLE = 4
WORDS = "council ferry library orchestra bakery harbour market river bridge winter".split()


def build(index_dir: Path, chunks: int) -> None:
    rng = np.random.default_rng(0)
    with (
        lock_for_writing(index_dir, MODEL) as lock,
        lock.next_generation(DIMENSION, ChunkSettings()) as writer,
    ):
        for number in range(chunks // CHUNKS_PER_ARTICLE):
            paragraphs = [
                " ".join(WORDS[(number + i + j) % len(WORDS)] for j in range(60))
                for i in range(CHUNKS_PER_ARTICLE)
            ]
            text = "\n\n".join(paragraphs)
            spans, start = [], 0
            for ordinal, paragraph in enumerate(paragraphs):
                spans.append(
                    Chunk(
                        f"a{number}",
                        ordinal,
                        paragraph,
                        start,
                        start + len(paragraph),
                        ordinal + 1,
                        ordinal + 1,
                    )
                )
                start += len(paragraph) + 2
            article = Article(f"a{number}", f"Article {number}", text, "synthetic.jsonl")
            ids = writer.store.add_article(article, str(number), spans)
            vectors = rng.standard_normal((len(ids), DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            writer.vectors.add(ids, vectors)


def unchecked_open(index_dir: Path) -> None:
    """The baseline: what opening did before the checks."""
    manifest = read_manifest(index_dir)
    folder = index_dir / manifest.folder
    store = Store(folder / STORE_FILE, read_only=True)
    VectorIndex.read(folder / VECTORS_FILE)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="citebot-open-") as scratch:
        index_dir = Path(scratch) / "index"
        started = time.perf_counter()
        build(index_dir, args.chunks)
        print(f"built {args.chunks:,} chunks in {time.perf_counter() - started:.1f}s")
        checked, baseline = [], []
        for _ in range(args.repeats):  # alternate, so both see the same page cache
            started = time.perf_counter()
            unchecked_open(index_dir)
            baseline.append(time.perf_counter() - started)
            started = time.perf_counter()
            open_index(index_dir, MODEL).close()
            checked.append(time.perf_counter() - started)
    base, check = statistics.median(baseline) * 1000, statistics.median(checked) * 1000
    print(f"open without checks (baseline): {base:.0f} ms median of {args.repeats}")
    print(f"open with checks:               {check:.0f} ms median (+{check - base:.0f} ms)")


if __name__ == "__main__":
    main()
