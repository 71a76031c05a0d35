"""Ingest benchmark: `citebot ingest` against plain fp32 sentence-transformers on the same
chunks, re-ingest of an unchanged corpus, warm question latency, and (optionally) the
retrieval quality of the int8 index against the fp32 one.

    .venv/bin/python bench/bench_ingest.py ../shared/corpus/bbc-news \\
        [--quality-articles ../shared/eval/xquad-en/articles.jsonl \\
         --quality-questions ../shared/eval/xquad-en/questions-dev.jsonl] \\
        [--before CHECKOUT]

Reports, from one run:
  - `citebot ingest FOLDER` into a fresh index with the default settings (int8 ONNX), in its
    own process, end to end (start, read, chunk, embed, write): wall time, CPU time;
  - the baseline: plain fp32 `SentenceTransformer.encode` (batch 32) of the very same chunk
    texts, read back from the index, in this process; wall and CPU time. On a shared machine
    the CPU-time ratio is the steadier figure; both are printed;
  - with --before CHECKOUT, first the same ingest by another checkout of citebot (say the
    main branch before a change: `git archive main | tar -x -C CHECKOUT`), so a change is
    measured against its baseline on the same machine, in the same run;
  - `citebot ingest FOLDER` again, unchanged: it must embed nothing;
  - warm single-question latency p50/p99 (with its parts) over the corpus's own headlines;
  - with --quality-*: the quality benchmark (bench_quality.py: labelled articles plus FOLDER
    as distractors) on an int8 index and an fp32 (torch) index: hit@1/5 and MRR@10. The
    FOLDER chunks' vectors are reused from the ingest (int8) and the baseline (fp32): they
    are the vectors those indexes would get (one text per run in int8; fp32 encode), so
    only the labelled articles are embedded again.
The exported ONNX model is made (or found in the cache) before the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bench_cold import CITEBOT, run_child
from bench_quality import build, evaluate_methods, open_for_quality

from retrieval.chunking import embedding_text
from retrieval.config import ModelSettings, Settings
from retrieval.embedding import Embedder, SentenceTransformerEmbedder
from retrieval.embedding.export import cached_export
from retrieval.evaluate import load_questions
from retrieval.models import load_embedder
from retrieval.search import Searcher

QUALITY_METHODS = {
    "hybrid (default)": {},
    "dense only": {"fusion": "dense"},
}


class Reusing:
    """An embedder that returns vectors already made for known texts (bench only). It gives
    no sentence vectors (the quality part measures retrieval, not the highlight), so ingest
    embeds only the texts it does not know."""

    def __init__(self, inner: Embedder, known: dict[str, np.ndarray]) -> None:
        self.inner, self.known = inner, known
        self.name, self.backend = inner.name, inner.backend

    def __getattr__(self, name: str):
        if name == "embed_with_spans":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.known]
        if missing:
            self.known.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.vstack([self.known[t] for t in texts]).astype(np.float32)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def ingest_in_child(
    folder: Path, index: Path, code: Path | None = None
) -> tuple[float, float, dict]:
    """`citebot ingest` in a process of its own: wall and CPU seconds, and its report. With
    ``code``, the citebot of that checkout (its `retrieval` package comes first)."""
    env = {"PYTHONPATH": str(code.resolve())} if code else None
    argv = [CITEBOT, "ingest", str(folder), "--index", str(index), "--json"]
    wall, _, cpu, out = run_child(argv, env=env, cwd=code)
    return wall, cpu, json.loads(out)


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def warm_in_child(index: Path, titles: list[str], count: int) -> dict[str, list[float]]:
    """Warm-question timings (end to end and by part) over ``index`` in a fresh process,
    as the bot and `citebot ask --batch` answer: no torch loaded, a small heap (this
    process, holding the fp32 model and every chunk, makes Python's own work slower)."""
    questions = random.Random(7).sample(titles, min(count, len(titles)))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(questions, handle)
        handle.flush()
        output = subprocess.run(
            # (The folder argument is required and unused there.)
            [sys.executable, __file__, str(index), "--warm-child", str(index), handle.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(output)


def warm_child(index: Path, questions_file: Path) -> None:
    questions = json.loads(questions_file.read_text())
    searcher = Searcher.open(Settings(index_dir=index))
    for question in questions[:10]:
        searcher.search(question)
    timings: dict[str, list[float]] = {"total": []}
    for question in questions:
        t = time.perf_counter()
        answer = searcher.search(question)
        timings["total"].append((time.perf_counter() - t) * 1000)
        for name, ms in answer.timings_ms.items():
            timings.setdefault(name, []).append(ms)
    searcher.close()
    print(json.dumps(timings))


def print_warm(timings: dict[str, list[float]]) -> None:
    total = timings.pop("total")
    print(
        f"warm question ({len(total)} q, fresh process): p50 {percentile(total, 50):.1f} ms,"
        f" p99 {percentile(total, 99):.1f} ms   targets 8 / 20 ms"
    )
    for name, values in timings.items():
        print(
            f"  {name:16s} p50 {percentile(values, 50):6.1f} ms"
            f"   p99 {percentile(values, 99):6.1f} ms"
        )


def chunk_texts(searcher: Searcher, settings: Settings) -> tuple[list[str], list[str], np.ndarray]:
    """The embedded text of every chunk in the index, the article titles, the stored vectors."""
    store = searcher.index.store
    texts, titles, ids = [], [], []
    for summary in store.summaries():
        article = store.article(summary.article.id)
        assert article is not None
        titles.append(article.title)
        rows = store.chunks(store.chunk_ids(article.id))
        for chunk_id in sorted(rows):
            row = rows[chunk_id]
            passage = article.text[row.char_start : row.char_end]
            texts.append(embedding_text(article.title, passage, settings.chunking.title_prefix))
            ids.append(chunk_id)
    every_id, every_vector = searcher.index.vectors.vectors()
    row_of = {int(chunk_id): row for row, chunk_id in enumerate(every_id)}
    stored = every_vector[[row_of[i] for i in ids]]
    return texts, titles, stored


def quality(
    articles: Path,
    questions_path: Path,
    distractors: Path,
    workdir: Path,
    known: dict[str, dict[str, np.ndarray]],
) -> None:
    questions = load_questions(questions_path)
    results = {}
    for backend in ("onnx-int8", "torch"):
        print(f"\nquality index, backend {backend}:", flush=True)
        index_dir = workdir / f"quality-{backend}"
        settings = Settings(index_dir=index_dir, model=ModelSettings(backend=backend))
        embedder = Reusing(load_embedder(settings), known[backend])
        build(index_dir, [articles, distractors], backend, embedder)
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
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--questions", type=int, default=300, help="warm questions to time")
    parser.add_argument("--workdir", type=Path, help="keep the indexes here (default: a temp dir)")
    parser.add_argument("--quality-articles", type=Path)
    parser.add_argument("--quality-questions", type=Path)
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="also time the ingest of another checkout of citebot (e.g. `git archive main`)"
        " in this run, first, into an index of its own",
    )
    parser.add_argument("--warm-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--warm-only",
        action="store_true",
        help="only time warm questions over the index already in --workdir",
    )
    args = parser.parse_args()
    if args.warm_child:
        warm_child(*args.warm_child)
        return
    if args.warm_only:
        index = args.workdir / "index"
        searcher = Searcher.open(Settings(index_dir=index))
        titles = [s.article.title for s in searcher.index.summaries()]
        searcher.close()
        print(f"machine: {platform.machine()}; {load()} (1 / 5 / 15 min); index {index}")
        print_warm(warm_in_child(index, titles, args.questions))
        return

    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores,"
        f" Python {platform.python_version()}; {load()} (1 / 5 / 15 min)"
    )
    started = time.perf_counter()
    export = cached_export(ModelSettings(), "onnx-int8")
    print(f"int8 ONNX model: {export.folder} ({time.perf_counter() - started:.1f} s to get)")

    with tempfile.TemporaryDirectory(prefix="citebot-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        index = workdir / "index"
        settings = Settings(index_dir=index)
        line = "{:34s} {:8.1f}s {:9.1f} {:8.1f}s {:13.1f}   {}"
        header = f"{'':34s} {'wall':>9s} {'chunks/s':>9s} {'CPU':>9s} {'chunks/CPU-s':>13s}"
        before = None
        if args.before:
            wall, cpu, old = ingest_in_child(args.folder, workdir / "index-before", args.before)
            before = (wall, cpu)
            print(f"\n{header}")
            n = old["chunks_embedded"]
            print(line.format("before: " + str(args.before), wall, n / wall, cpu, n / cpu, load()))
        ingest_wall, ingest_cpu, report = ingest_in_child(args.folder, index)
        chunks = report["chunks_embedded"]
        articles = report["added"] + report["updated"] + report["unchanged"]
        print(
            f"\ncorpus: {args.folder}: {articles} articles, {chunks} chunks,"
            f" {len(report['skipped'])} skipped"
        )
        print(header)
        print(
            line.format(
                "citebot ingest (int8 ONNX)",
                ingest_wall,
                chunks / ingest_wall,
                ingest_cpu,
                chunks / ingest_cpu,
                load(),
            ),
            flush=True,
        )
        if before:
            print(
                f"this ingest against the one before: wall {before[0] / ingest_wall:.2f}x,"
                f" CPU {before[1] / ingest_cpu:.2f}x faster",
                flush=True,
            )

        again_wall, _, again = ingest_in_child(args.folder, index)
        print(
            f"re-ingest, unchanged: {again_wall:.1f} s ({again['chunks_embedded']} chunks embedded)"
            f" = {again_wall / ingest_wall:.1%} of the first ingest   target <= 10%",
            flush=True,
        )

        searcher = Searcher.open(settings)
        texts, titles, int8_vectors = chunk_texts(searcher, settings)
        assert len(texts) == chunks, (len(texts), chunks)

        baseline = SentenceTransformerEmbedder(ModelSettings(backend="torch"))
        model = baseline.model
        model.encode(texts[:64], batch_size=32)  # warm-up, outside the timing
        cpu = time.process_time()
        wall = time.perf_counter()
        fp32_vectors = model.encode(
            texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True
        )
        base_wall = time.perf_counter() - wall
        base_cpu = time.process_time() - cpu
        print(
            line.format(
                "baseline: fp32 encode, same texts",
                base_wall,
                chunks / base_wall,
                base_cpu,
                chunks / base_cpu,
                load(),
            )
        )
        print(
            f"speed-up (baseline / ingest): wall {base_wall / ingest_wall:.2f}x,"
            f" CPU {base_cpu / ingest_cpu:.2f}x   target >= 3x"
        )
        agreement = np.sum(int8_vectors * fp32_vectors, axis=1)
        print(
            f"cosine int8 to fp32 over the {chunks} chunks: min {agreement.min():.4f},"
            f" mean {agreement.mean():.4f}",
            flush=True,
        )

        searcher.close()
        print_warm(warm_in_child(index, titles, args.questions))

        if args.quality_articles and args.quality_questions:
            known = {
                "onnx-int8": dict(zip(texts, int8_vectors, strict=True)),
                "torch": dict(zip(texts, fp32_vectors, strict=True)),
            }
            quality(args.quality_articles, args.quality_questions, args.folder, workdir, known)


if __name__ == "__main__":
    main()
