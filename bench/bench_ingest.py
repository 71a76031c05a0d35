"""Ingest and question-latency benchmark.

    .venv/bin/python bench/bench_ingest.py ../shared/corpus/bbc-news

Ingests FOLDER into a fresh index and reports, from the same run:
  - ingest throughput (chunks/s, end to end: reading, chunking, embedding, writing)
    beside plain fp32 `SentenceTransformer.encode` of the very same chunk texts (baseline);
  - warm single-question latency p50/p99 (with its parts), over questions made from
    the corpus's own headlines (deterministic sample);
  - `citebot ask` from process start to printed answer (cold start);
  - peak memory (RSS).
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.chunking import embedding_text
from retrieval.config import Settings
from retrieval.embedding import SentenceTransformerEmbedder
from retrieval.ingest import ingest
from retrieval.search import Searcher


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--questions", type=int, default=300, help="warm questions to time")
    parser.add_argument("--cold-runs", type=int, default=3, help="`citebot ask` runs to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="citebot-bench-") as scratch:
        settings = Settings(index_dir=Path(scratch) / "index")
        embedder = SentenceTransformerEmbedder(settings.model)
        embedder.model  # load outside the timings  # noqa: B018

        started = time.perf_counter()
        report = ingest([args.folder], settings, embedder, show_progress=True)
        ingest_seconds = time.perf_counter() - started
        searcher = Searcher.open(settings, embedder)
        store = searcher.index.store

        # The baseline embeds exactly the texts ingest embedded, in corpus order.
        texts = []
        titles = []
        for summary in store.summaries():
            article = store.article(summary.article.id)
            assert article is not None
            titles.append(article.title)
            for chunk_id in store.chunk_ids(article.id):
                row = store.chunks([chunk_id])[chunk_id]
                passage = article.text[row.char_start : row.char_end]
                texts.append(embedding_text(article.title, passage, settings.chunking.title_prefix))
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=settings.model.batch_size, convert_to_numpy=True)
        baseline_seconds = time.perf_counter() - started

        questions = random.Random(7).sample(titles, min(args.questions, len(titles)))
        for question in questions[:10]:
            searcher.search(question)
        latencies, parts = [], {}
        for question in questions:
            t = time.perf_counter()
            answer = searcher.search(question)
            latencies.append((time.perf_counter() - t) * 1000)
            for name, ms in answer.timings_ms.items():
                parts.setdefault(name, []).append(ms)

        cold = []
        citebot = Path(sys.executable).with_name("citebot")
        for _ in range(args.cold_runs):
            t = time.perf_counter()
            subprocess.run(
                [str(citebot), "ask", "--index", str(settings.index_dir), questions[0]],
                check=True,
                capture_output=True,
            )
            cold.append(time.perf_counter() - t)

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ingest_rate = report.chunks_embedded / ingest_seconds
        baseline_rate = len(texts) / baseline_seconds
        print(
            f"machine: {platform.processor() or platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}"
        )
        print(
            f"corpus: {args.folder}: {report.articles} articles, {report.chunks_embedded} chunks, {len(report.skipped)} skipped"
        )
        print(f"ingest (end to end)      {ingest_seconds:8.1f} s   {ingest_rate:7.1f} chunks/s")
        print(
            f"baseline: plain encode   {baseline_seconds:8.1f} s   {baseline_rate:7.1f} chunks/s   (fp32, same texts)"
        )
        print(f"ingest / baseline        {ingest_rate / baseline_rate:8.2f} x")
        print(
            f"warm question ({len(latencies)} q)   p50 {percentile(latencies, 50):6.1f} ms   p99 {percentile(latencies, 99):6.1f} ms"
        )
        for name, values in parts.items():
            print(
                f"  {name:22s} p50 {percentile(values, 50):6.1f} ms   p99 {percentile(values, 99):6.1f} ms"
            )
        print(
            f"citebot ask, cold        median {statistics.median(cold):5.2f} s   max {max(cold):5.2f} s   ({len(cold)} runs)"
        )
        print(f"peak RSS                 {peak_mb:8.0f} MB")


if __name__ == "__main__":
    main()
