"""Ingest benchmark: `citebot ingest` against plain fp32 sentence-transformers on the same
chunks, re-ingest of an unchanged corpus, warm question latency, and (optionally) the
retrieval quality of the int8 index against the fp32 one.

    .venv/bin/python bench/bench_ingest.py ../shared/corpus/bbc-news \\
        [--quality-articles ../shared/eval/xquad-en/articles.jsonl \\
         --quality-questions ../shared/eval/xquad-en/questions-dev.jsonl]

Reports, from one run:
  - `citebot ingest FOLDER` into a fresh index with the default settings (int8 ONNX), in its
    own process, end to end (start, read, chunk, embed, write): wall time, CPU time;
  - the baseline: plain fp32 `SentenceTransformer.encode` (batch 32) of the very same chunk
    texts, read back from the index, in this process; wall and CPU time. On a shared machine
    the CPU-time ratio is the steadier figure; both are printed;
  - `citebot ingest FOLDER` again, unchanged: it must embed nothing;
  - warm single-question latency p50/p99 (with its parts) over the corpus's own headlines;
  - with --quality-*: the quality benchmark (bench_quality.py: labelled articles plus FOLDER
    as distractors) on an int8 index and an fp32 (torch) index: hit@1/5 and MRR@10.
The exported ONNX model is made (or found in the cache) before the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_cold import CITEBOT, run_child
from bench_quality import build, evaluate_methods, open_for_quality

from retrieval.chunking import embedding_text
from retrieval.config import ModelSettings, Settings
from retrieval.embedding import SentenceTransformerEmbedder
from retrieval.embedding.export import cached_export
from retrieval.evaluate import load_questions
from retrieval.search import Searcher

QUALITY_METHODS = {
    "hybrid (default)": {},
    "dense only": {"fusion": "dense"},
}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def ingest_in_child(folder: Path, index: Path) -> tuple[float, float, dict]:
    wall, _, cpu, out = run_child([CITEBOT, "ingest", str(folder), "--index", str(index), "--json"])
    return wall, cpu, json.loads(out)


def chunk_texts(searcher: Searcher, settings: Settings) -> tuple[list[str], list[str]]:
    """The embedded text of every chunk in the index, and the article titles."""
    store = searcher.index.store
    texts, titles = [], []
    for summary in store.summaries():
        article = store.article(summary.article.id)
        assert article is not None
        titles.append(article.title)
        rows = store.chunks(store.chunk_ids(article.id))
        for chunk_id in sorted(rows):
            row = rows[chunk_id]
            passage = article.text[row.char_start : row.char_end]
            texts.append(embedding_text(article.title, passage, settings.chunking.title_prefix))
    return texts, titles


def quality(articles: Path, questions_path: Path, distractors: Path, workdir: Path) -> None:
    questions = load_questions(questions_path)
    results = {}
    for backend in ("onnx-int8", "torch"):
        print(f"\nquality index, backend {backend}:")
        settings = build(workdir / f"quality-{backend}", [articles, distractors], backend)
        searcher = open_for_quality(settings, questions)
        results[backend] = evaluate_methods(searcher, questions, QUALITY_METHODS)
        searcher.close()
    print(f"\nquality, {len(questions)} questions    hit@1   hit@5   MRR@10")
    for method in QUALITY_METHODS:
        for backend, label in (("torch", "fp32 (torch)"), ("onnx-int8", "int8 (onnx)")):
            r = results[backend][method]
            print(
                f"  {method:17s} {label:13s} {r.hit_at[1]:.3f}   {r.hit_at[5]:.3f}   {r.mrr_at_10:.3f}"
            )
        delta = results["onnx-int8"][method].hit_at[5] - results["torch"][method].hit_at[5]
        verdict = "OK" if delta >= -0.005 else "MISSED"
        print(f"  {method:17s} hit@5 int8 - fp32: {delta * 100:+.1f} points (>= -0.5: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--questions", type=int, default=300, help="warm questions to time")
    parser.add_argument("--workdir", type=Path, help="keep the indexes here (default: a temp dir)")
    parser.add_argument("--quality-articles", type=Path)
    parser.add_argument("--quality-questions", type=Path)
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores,"
        f" Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    export = cached_export(ModelSettings(), "onnx-int8")
    print(f"int8 ONNX model: {export.folder} ({time.perf_counter() - started:.1f} s to get)")

    with tempfile.TemporaryDirectory(prefix="citebot-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        index = workdir / "index"
        settings = Settings(index_dir=index)
        ingest_wall, ingest_cpu, report = ingest_in_child(args.folder, index)
        again_wall, _, again = ingest_in_child(args.folder, index)

        searcher = Searcher.open(settings)
        texts, titles = chunk_texts(searcher, settings)
        assert len(texts) == report["chunks_embedded"], (len(texts), report["chunks_embedded"])

        baseline = SentenceTransformerEmbedder(ModelSettings(backend="torch"))
        model = baseline.model
        model.encode(texts[:64], batch_size=32)  # warm-up, outside the timing
        cpu = time.process_time()
        wall = time.perf_counter()
        model.encode(texts, batch_size=32, convert_to_numpy=True)
        base_wall = time.perf_counter() - wall
        base_cpu = time.process_time() - cpu

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
        searcher.close()

        chunks = report["chunks_embedded"]
        print(
            f"\ncorpus: {args.folder}: {report['articles']} articles, {chunks} chunks,"
            f" {len(report['skipped'])} skipped"
        )
        print(f"{'':34s} {'wall':>9s} {'chunks/s':>9s} {'CPU':>9s} {'chunks/CPU-s':>13s}")
        for name, w, c in (
            ("citebot ingest (int8 ONNX)", ingest_wall, ingest_cpu),
            ("baseline: fp32 encode, same texts", base_wall, base_cpu),
        ):
            print(f"{name:34s} {w:8.1f}s {chunks / w:9.1f} {c:8.1f}s {chunks / c:13.1f}")
        print(
            f"speed-up (baseline / ingest): wall {base_wall / ingest_wall:.2f}x,"
            f" CPU {base_cpu / ingest_cpu:.2f}x   target >= 3x"
        )
        print(
            f"re-ingest, unchanged: {again_wall:.1f} s ({again['chunks_embedded']} chunks embedded)"
            f" = {again_wall / ingest_wall:.1%} of the first ingest   target <= 10%"
        )
        print(
            f"warm question ({len(latencies)} q): p50 {percentile(latencies, 50):.1f} ms,"
            f" p99 {percentile(latencies, 99):.1f} ms   targets 8 / 20 ms"
        )
        for name, values in parts.items():
            print(
                f"  {name:14s} p50 {percentile(values, 50):6.1f} ms   p99 {percentile(values, 99):6.1f} ms"
            )

        if args.quality_articles and args.quality_questions:
            quality(args.quality_articles, args.quality_questions, args.folder, workdir)


if __name__ == "__main__":
    main()
