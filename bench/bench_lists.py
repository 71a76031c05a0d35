"""How many inverted lists the approximate vector index should have: answer quality and the
vectors' share of a question's time, for several list counts at several vectors compared.

    .venv/bin/python bench/bench_lists.py --index INDEX \\
        --questions ../shared/eval/xquad-en/questions-dev.jsonl \\
        --lists 2000,4000,8000 --compared 16000,32000,64000,128000

INDEX is an approximate index built before (bench_scale.py's million chunks, say); it is
only read. Its stored vectors (decoded from 8 bits) are trained into an index of each
--lists count as ingest trains one (``VectorIndex.approximate``: the same sample, k-means
iterations and 8-bit vectors), which replaces the index's own in one `Searcher` in turn;
each of the labelled questions is then asked end to end with the index's other defaults
(keyword budget, exact BM25), at each --compared count of vectors (lists searched =
compared × lists / vectors). Reported: training time, hit@1 and hit@5, and p50 / p99 of
the dense search and of the question's CPU on its own thread. The index's own list count
runs first, untouched, as the baseline.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from retrieval.config import Settings
from retrieval.evaluate import LabelledQuestion, first_hit, load_questions
from retrieval.index import VectorIndex
from retrieval.models import load_embedder
from retrieval.search import Searcher

WARM_UP = 10


def numbers(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def measure(searcher: Searcher, questions: list[LabelledQuestion]) -> str:
    ranks, dense, cpu = [], [], []
    for question in questions:
        started = time.thread_time()
        answer = searcher.search(question.question, k=10)
        cpu.append((time.thread_time() - started) * 1000)
        dense.append(answer.timings_ms.get("dense_ms", 0.0))
        ranks.append(first_hit(answer, question))
    hit1 = np.mean([r == 1 for r in ranks])
    hit5 = np.mean([r is not None and r <= 5 for r in ranks])
    return (
        f"hit@1 {hit1:.3f}  hit@5 {hit5:.3f}  vectors p50/p99 {np.percentile(dense, 50):5.1f} /"
        f" {np.percentile(dense, 99):5.1f} ms  CPU {np.percentile(cpu, 50):5.1f} /"
        f" {np.percentile(cpu, 99):5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--lists", type=numbers, default=[2000, 4000, 8000])
    parser.add_argument("--compared", type=numbers, default=[16_000, 32_000, 64_000, 128_000])
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    settings = Settings(index_dir=args.index)
    searcher = Searcher.open(settings, load_embedder(settings)).with_settings(min_confidence=-1.0)
    questions = load_questions(args.questions)
    live = searcher.index.vectors
    own = live.main
    if own.kind != "approximate":
        raise SystemExit(f"{args.index} holds an exact vector index: nothing to compare")
    for question in questions[:WARM_UP]:
        searcher.search(question.question, k=10)
    print(f"the index's own: {own.describe()}")
    print(f"  {len(own) * own.nprobe // own.lists:>9,} compared: {measure(searcher, questions)}")
    ids, vectors = own.vectors()
    for lists in args.lists:
        started = time.perf_counter()
        trained = VectorIndex.approximate(ids, vectors, lists=lists, nprobe=1)
        print(f"{lists:,} lists: trained and filled in {time.perf_counter() - started:.0f} s")
        live.main = trained
        for compared in args.compared:
            trained.nprobe = round(compared * lists / len(trained))
            print(f"  {compared:>9,} compared: {measure(searcher, questions)}")
    live.main = own
    searcher.close()


if __name__ == "__main__":
    main()
