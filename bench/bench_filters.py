"""Filtered questions: latency of search with source filters of different reach, and of
the two ways the dense half can honour a filter.

    .venv/bin/python bench/bench_filters.py --index INDEX [--questions 200]

INDEX is an existing index (for instance the one bench_quality.py builds with --index).
The questions are the indexed articles' own titles (a deterministic sample). For each
source filter (the folders and one single file, chosen from the index's sources), it
reports warm ``Searcher.search`` latency p50/p99 beside the unfiltered search in the same
run, then times the dense half alone both ways: the nearest admitted chunks of a 4x wider
search (falling back to a second search when too few are admitted: what search does), and
a search among the admitted ids from the start (a FAISS bitmap selector over all of them).
Both give the exact nearest admitted chunks; the table checks that they agree.
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from pathlib import Path

import numpy as np

from retrieval.config import Settings
from retrieval.embedding import SentenceTransformerEmbedder
from retrieval.records import SearchFilter
from retrieval.search import Searcher

OVERFETCH = 4


def percentiles(values: list[float]) -> str:
    return f"{np.percentile(values, 50):6.2f} {np.percentile(values, 99):6.2f}"


def wider_first(
    searcher: Searcher, vector: np.ndarray, limit: int, where: SearchFilter
) -> list[tuple[int, float]]:
    """The alternative: keep the admitted ones of a wider search, else search among them."""
    store, vectors = searcher.index.store, searcher.index.vectors
    wide = vectors.search(vector, limit * OVERFETCH)
    admitted = set(store.admitted_chunk_ids(where, [i for i, _ in wide]))
    near = [(i, s) for i, s in wide if i in admitted]
    if len(near) >= limit or len(wide) == len(vectors):
        return near[:limit]
    return vectors.search(vector, limit, among=store.admitted_chunk_ids(where))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()

    settings = Settings(index_dir=args.index)
    searcher = Searcher.open(settings, SentenceTransformerEmbedder(settings.model))
    store, vectors = searcher.index.store, searcher.index.vectors
    summaries = store.summaries()
    titles = random.Random(7).sample([s.article.title for s in summaries], args.questions)
    folders = searcher.suggest_sources("", 100)
    single = sorted(s.article.source for s in summaries)[0]
    filters = [None, *(SearchFilter(source=f) for f in folders), SearchFilter(source=single)]
    print(f"{platform.processor() or platform.machine()}, {len(vectors)} chunks,")
    print(f"{len(titles)} questions; times in ms (p50 p99)\n")
    print(f"{'filter':28s} {'chunks':>7s}   search p50/p99   dense: wider first   among ids")
    limit = settings.search.candidates
    question_vectors = searcher.embedder.embed(titles)
    for question in titles[:10]:
        searcher.search(question)  # warm-up
    for where in filters:
        admitted = len(store.admitted_chunk_ids(where)) if where else len(vectors)
        timings, wider, among = [], [], []
        for question, vector in zip(titles, question_vectors, strict=True):
            started = time.perf_counter()
            searcher.search(question, filters=where)
            timings.append((time.perf_counter() - started) * 1000)
            if where is None:
                continue
            started = time.perf_counter()
            first = wider_first(searcher, vector, limit, where)
            wider.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            ids = store.admitted_chunk_ids(where)
            second = vectors.search(vector, limit, among=ids)
            among.append((time.perf_counter() - started) * 1000)
            assert [i for i, _ in first] == [i for i, _ in second], where
        name = where.describe() if where else "none"
        dense = f"{percentiles(wider)}     {percentiles(among)}" if where else ""
        print(f"{name[:28]:28s} {admitted:7d}   {percentiles(timings)}    {dense}")
    print(f"\n(wider first: {OVERFETCH} x {limit} candidates, then among the admitted ids")
    print(" only when fewer than needed were admitted; search uses among ids)")


if __name__ == "__main__":
    main()
