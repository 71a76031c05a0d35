"""Scale benchmark: a citebot index of a million chunks, against same-run baselines.

    .venv/bin/python bench/bench_scale.py \\
        --articles ../shared/eval/xquad-en/articles.jsonl \\
        --distractors ../shared/corpus/bbc-news \\
        --questions ../shared/eval/xquad-en/questions-dev.jsonl

The seed is the quality benchmark's index (the labelled articles and the distractors,
embedded with the real model and the backend a new index gets), kept in
bench/results/scale-seed (an unchanged re-run embeds nothing). From it the benchmark
writes a real citebot index folder of --chunks chunks: the labelled articles once, and
the distractor articles copied (ids "ID~N",
sources "copy-N/...") until the count is reached. The first copy keeps the real vectors;
each later copy gets every vector plus Gaussian noise, renormalised, so that a copy is as
close to its original as a real chunk is to its nearest neighbour in the seed (mean
cosine, measured). The index is written by the library's writer through the store's own
API (a bulk loader: no reading, chunking or embedding), and its vector index is built as
ingest builds it (VectorIndex.adapted with the default settings); `Searcher` opens it.
--index measures the questions on an index built before (a copy of --work's index, or
the lead's shared one), without building it again.

Reported, each beside its baseline from the same run:
  - build time: the store, and the approximate vector index (training and adding)
    against adding the same vectors to an exact index;
  - vector index size on disk and in memory (RSS of a process that reads it) per chunk,
    approximate against exact;
  - ANN recall@10 against exact search of the same float vectors, for the questions'
    own vectors, at several vectors_per_question with their dense-search latency;
  - warm questions through `Searcher.search`, p50/p99 of each part (embedding, dense,
    keyword, the dense half's BM25, assembling) and end to end, with the defaults
    (approximate vectors, keyword budget, exact BM25 of the candidates) against the
    budget of 10,000 ranked by FTS5 as before exact scores, that budget with exact
    scores, no budget, and exact vectors with BM25 over every match; hit@k of each on
    the labelled questions (the approximate set-ups share one index and its vectors);
  - the same questions over the seed index (BBC size, exact): end to end and without
    the embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from retrieval.config import ChunkSettings, Settings, VectorSettings
from retrieval.embedding import Embedder
from retrieval.evaluate import LabelledQuestion, first_hit, load_questions
from retrieval.index import (
    VECTORS_FILE,
    OpenIndex,
    VectorIndex,
    lock_for_writing,
    open_index,
    read_manifest,
)
from retrieval.ingest import ingest
from retrieval.models import load_embedder
from retrieval.records import Article, Chunk
from retrieval.search import Searcher

RESULTS = Path(__file__).parent / "results"
# vectors_per_question values for the recall table.
COMPARED = (8_000, 16_000, 32_000, 64_000, 128_000, 256_000)
THRESHOLD_SIZES = (10_000, 25_000, 50_000, 100_000, 200_000)
# BM25 over every chunk any term matches: the keyword half before the budget.
NO_BUDGET = 10**12
# The keyword budget before exact scores (the default then).
BUDGET_BEFORE = 10_000
WARM_UP = 10


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()},"
        f" load average {load:.1f} at start"
    )


# -- the seed ------------------------------------------------------------------------------


def seed_index(args: argparse.Namespace) -> tuple[Settings, Embedder]:
    """The seed, built (or brought up to date) with the model and backend a new index gets."""
    settings = Settings(index_dir=args.seed)
    embedder = load_embedder(settings)
    report = ingest([args.articles, *args.distractors], settings, embedder)
    print(
        f"seed index {args.seed}: {report.articles} articles, {report.chunks_embedded} embedded now"
    )
    return settings, embedder


def read_seed(index: OpenIndex) -> list[tuple[Article, list[Chunk], np.ndarray]]:
    """Every article of the seed with its chunks (text cut from the article) and vectors."""
    ids, vectors = index.vectors.vectors()
    row_of = {int(i): n for n, i in enumerate(ids)}
    store = index.store
    seed = []
    for summary in store.summaries():
        article = store.article(summary.article.id)
        assert article is not None
        rows = store.chunks(store.chunk_ids(article.id))
        ordered = sorted(rows.values(), key=lambda r: r.ordinal)
        chunks = [
            Chunk(
                article.id,
                r.ordinal,
                article.text[r.char_start : r.char_end],
                r.char_start,
                r.char_end,
                r.paragraph_start,
                r.paragraph_end,
            )
            for r in ordered
        ]
        seed.append((article, chunks, vectors[[row_of[r.id] for r in ordered]]))
    return seed


def nearest_neighbour_cosine(vectors: np.ndarray) -> float:
    """Mean cosine of each vector to its nearest other vector."""
    best = []
    for start in range(0, len(vectors), 2048):
        block = vectors[start : start + 2048] @ vectors.T
        for row in range(len(block)):
            block[row, start + row] = -1.0
        best.append(block.max(axis=1))
    return float(np.concatenate(best).mean())


# -- the million-chunk index -----------------------------------------------------------------


def perturbed(vectors: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """``vectors`` plus isotropic noise, renormalised, at about ``cosine`` to the originals."""
    sigma = np.sqrt((1.0 / cosine**2 - 1.0) / vectors.shape[1])
    noisy = vectors + rng.standard_normal(vectors.shape, dtype=np.float32) * np.float32(sigma)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def build(
    index_dir: Path,
    source: OpenIndex,
    embedder: Embedder,
    seed: list[tuple[Article, list[Chunk], np.ndarray]],
    labelled: set[str],
    target: int,
    cosine: float,
) -> dict[str, object]:
    """Write the big index; returns timings and the exact index of the same vectors."""
    manifest = source.manifest
    chunking = ChunkSettings(**manifest.chunking)
    store_seconds = exact_seconds = 0.0
    started = time.perf_counter()
    with (
        lock_for_writing(index_dir, manifest.model, rebuild=True, backend=manifest.backend) as lock,
        # The seed's model files go along (ONNX backends), as an ingest would copy them.
        lock.next_generation(manifest.dimension, chunking, embedder.artifact) as writer,
    ):
        count, copy = 0, 0
        while count < target:
            rng = np.random.default_rng(copy)
            for article, chunks, vectors in seed:
                if count >= target:
                    break
                if article.id in labelled:
                    if copy:
                        continue  # the labelled articles are in the index once
                    named, vectors_n = article, vectors
                else:
                    named = replace(
                        article,
                        id=f"{article.id}~{copy}",
                        source=f"copy-{copy}/{article.source}",
                    )
                    vectors_n = perturbed(vectors, cosine, rng) if copy else vectors
                moved = [replace(c, article_id=named.id) for c in chunks]
                t = time.perf_counter()
                ids = writer.store.add_article(named, f"{copy}", moved)
                store_seconds += time.perf_counter() - t
                t = time.perf_counter()
                writer.vectors.add(ids, vectors_n)
                exact_seconds += time.perf_counter() - t
                count += len(ids)
            copy += 1
            print(f"\r  {count:,} chunks written", end="", flush=True)
        print()
        exact = writer.vectors
        t = time.perf_counter()
        writer.vectors = exact.adapted(VectorSettings())
        ann_seconds = time.perf_counter() - t
        approximate = writer.vectors
    # The block's end commits: SQLite, the vector file, fsync, the manifest.
    total = time.perf_counter() - started
    return {
        "chunks": count,
        "store_seconds": store_seconds,
        "exact_seconds": exact_seconds,
        "ann_seconds": ann_seconds,
        "total_seconds": total,
        "exact": exact,
        "approximate": approximate,
    }


MEMORY_PROBE = """
import sys, faiss
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
before = rss()
index = faiss.read_index(sys.argv[1])
print(rss() - before, index.ntotal)
"""


def resident_bytes(path: Path) -> int:
    """What reading a FAISS file adds to a fresh process's resident memory."""
    output = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(output[0])


# -- measuring -------------------------------------------------------------------------------


def recall_at_10(approximate: VectorIndex, exact: VectorIndex, queries: np.ndarray) -> list:
    """Recall@10 and dense latency of the approximate index at several vectors_per_question,
    and the exact index's latency."""
    wanted = [{i for i, _ in exact.search(q, 10)} for q in queries]
    rows = []
    for compared in COMPARED:
        approximate.adapted(VectorSettings(approximate_from=1, vectors_per_question=compared))
        found, latencies = [], []
        for q, truth in zip(queries, wanted, strict=True):
            t = time.perf_counter()
            hits = approximate.search(q, 50)
            latencies.append((time.perf_counter() - t) * 1000)
            found.append(len({i for i, _ in hits[:10]} & truth) / len(truth))
        rows.append((compared, approximate.nprobe, float(np.mean(found)), *percentiles(latencies)))
    exact_latencies = []
    for q in queries:
        t = time.perf_counter()
        exact.search(q, 50)
        exact_latencies.append((time.perf_counter() - t) * 1000)
    approximate.adapted(VectorSettings())  # back to the default
    return [*rows, (len(exact), 0, 1.0, *percentiles(exact_latencies))]


def around_threshold(exact: VectorIndex, queries: np.ndarray) -> list[tuple]:
    """Exact against approximate dense search at sizes around the default threshold: the
    first N chunks of the big index (build time, latency of one question, recall@10)."""
    ids, vectors = exact.vectors()
    rows = []
    for size in THRESHOLD_SIZES:
        if size > len(ids):
            break
        small = VectorIndex.exact(ids[:size], vectors[:size])
        t = time.perf_counter()
        approximate = small.adapted(VectorSettings(approximate_from=1))
        build_seconds = time.perf_counter() - t
        timings: dict[str, list[float]] = {"exact": [], "approximate": []}
        found = []
        for q in queries:
            results = {}
            for name, index in (("exact", small), ("approximate", approximate)):
                t = time.perf_counter()
                results[name] = index.search(q, 50)
                timings[name].append((time.perf_counter() - t) * 1000)
            truth = {i for i, _ in results["exact"][:10]}
            found.append(len({i for i, _ in results["approximate"][:10]} & truth) / len(truth))
        rows.append(
            (
                size,
                *percentiles(timings["exact"]),
                *percentiles(timings["approximate"]),
                float(np.mean(found)),
                build_seconds,
                approximate.lists,
            )
        )
    return rows


def run_questions(
    searchers: dict[str, Searcher], questions: list[LabelledQuestion]
) -> dict[str, dict[str, object]]:
    """Each question through each searcher in turn; parts and hits. The first to ask a
    question reads its terms' pages cold, so the order rotates: each set-up goes first
    for as many questions as the others."""
    results: dict[str, dict[str, object]] = {
        name: {"total": [], "parts": {}, "ranks": []} for name in searchers
    }
    for question in questions[:WARM_UP]:
        for searcher in searchers.values():
            searcher.search(question.question, k=10)
    names = list(searchers)
    for n, question in enumerate(questions):
        turn = n % len(names)
        for name in names[turn:] + names[:turn]:
            searcher = searchers[name]
            t, cpu = time.perf_counter(), time.thread_time()
            answer = searcher.search(question.question, k=10)
            elapsed = (time.perf_counter() - t) * 1000
            result = results[name]
            result["total"].append(elapsed)
            # CPU time of this thread: less disturbed by a busy machine than wall time
            # (the model's own worker threads are not in it).
            result["parts"].setdefault("CPU, this thread", []).append(
                (time.thread_time() - cpu) * 1000
            )
            result["parts"].setdefault("non-embedding", []).append(
                elapsed - answer.timings_ms.get("embed_ms", 0.0)
            )
            for part, ms in answer.timings_ms.items():
                result["parts"].setdefault(part, []).append(ms)
            result["ranks"].append(first_hit(answer, question))
    return results


def hits(ranks: list[int | None]) -> str:
    total = len(ranks)
    at = {k: sum(r is not None and r <= k for r in ranks) / total for k in (1, 5, 10)}
    mrr = sum(1 / r for r in ranks if r is not None and r <= 10) / total
    return f"hit@1 {at[1]:.3f}  hit@5 {at[5]:.3f}  hit@10 {at[10]:.3f}  MRR@10 {mrr:.3f}"


def print_latencies(results: dict[str, dict[str, object]]) -> None:
    parts = [
        "embed_ms",
        "dense_ms",
        "keyword_ms",
        "keyword_dense_ms",
        "assemble_ms",
        "non-embedding",
        "CPU, this thread",
    ]
    print(f"  {'':46s}" + "".join(f"{p:>18s}" for p in [*parts, "end to end"]))
    for name, result in results.items():
        # A part a set-up does not have (the dense half's BM25 without exact scores) is 0.
        cells = [percentiles(result["parts"].get(p, [0.0])) for p in parts]
        cells.append(percentiles(result["total"]))
        print(f"  {name:46s}" + "".join(f"{a:8.1f} /{b:7.1f}" + "  " for a, b in cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=Path, required=True)
    parser.add_argument("--distractors", type=Path, nargs="*", default=[])
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=Path, default=RESULTS / "scale-seed")
    parser.add_argument("--work", type=Path, default=RESULTS / "scale", help="scratch folder")
    parser.add_argument(
        "--cosine", type=float, help="of a copy to its original (default: measured)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--index",
        type=Path,
        help="an index this benchmark built before (e.g. a copy of --work's index): measure"
        " the questions only, without building (no exact-vector baseline)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")

    seed_settings, embedder = seed_index(args)
    seed = open_index(seed_settings.index_dir, embedder.name)
    print(f"model: {embedder.name} ({embedder.backend})")
    seed_rows = read_seed(seed)
    labelled = {
        json.loads(line)["id"] for line in args.articles.read_text().splitlines() if line.strip()
    }

    questions = load_questions(args.questions)
    summary: dict[str, object] = {}
    exact: VectorIndex | None = None
    if args.index:
        index_dir = args.index
        chunks = open_index(index_dir, embedder.name).store.counts()[1]
        print(f"\nindex of {chunks:,} chunks at {index_dir} (built before)")
    else:
        index_dir, chunks, exact = build_and_measure(
            args, seed, embedder, seed_rows, labelled, questions, summary
        )
    results = measure_questions(index_dir, chunks, exact, seed, embedder, questions)
    if args.json:
        summary.update(
            chunks=chunks,
            latency={
                name: {
                    "total": percentiles(r["total"]),
                    **{p: percentiles(v) for p, v in r["parts"].items()},
                }
                for name, r in results.items()
            },
            quality={name: hits(r["ranks"]) for name, r in results.items()},
        )
        args.json.write_text(json.dumps(summary, indent=2))


def build_and_measure(
    args: argparse.Namespace,
    seed: OpenIndex,
    embedder: Embedder,
    seed_rows: list[tuple[Article, list[Chunk], np.ndarray]],
    labelled: set[str],
    questions: list[LabelledQuestion],
    summary: dict[str, object],
) -> tuple[Path, int, VectorIndex]:
    """Build the index; report its build, sizes, recall and the threshold (into ``summary``
    too); returns its folder, its chunks and the exact index of the same vectors."""
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    index_dir = args.work / "index"
    cosine = args.cosine or nearest_neighbour_cosine(seed.vectors.vectors()[1])
    print(f"copies: cosine {cosine:.3f} to their original (real chunks to their nearest neighbour)")
    built = build(index_dir, seed, embedder, seed_rows, labelled, args.chunks, cosine)
    chunks = built["chunks"]
    exact: VectorIndex = built["exact"]
    approximate: VectorIndex = built["approximate"]
    print(f"\nindex of {chunks:,} chunks ({approximate.describe()}); build:")
    print(f"  store (SQLite rows and FTS5, bulk loader)   {built['store_seconds']:7.1f} s")
    print(f"  vectors, approximate: training and adding   {built['ann_seconds']:7.1f} s")
    print(f"  vectors, exact (baseline): adding           {built['exact_seconds']:7.1f} s")
    print(f"  whole write, commit included                {built['total_seconds']:7.1f} s")

    folder = index_dir / read_manifest(index_dir).folder
    exact_file = args.work / "exact.faiss"
    exact.write(exact_file)
    sizes = {
        "approximate": (
            (folder / VECTORS_FILE).stat().st_size,
            resident_bytes(folder / VECTORS_FILE),
        ),
        "exact": (exact_file.stat().st_size, resident_bytes(exact_file)),
    }
    store_size = (folder / "store.sqlite").stat().st_size
    print("vector index per chunk:        on disk    in memory (RSS of a reader)")
    for name, (disk, memory) in sizes.items():
        print(f"  {name:28s} {disk / chunks:7.0f} B   {memory / chunks:7.0f} B")
    print(
        f"  store.sqlite (articles, chunks, FTS5): {store_size / chunks:,.0f} B per chunk on disk"
    )
    exact_file.unlink()

    vectors = embedder.embed([q.question for q in questions])
    recall = recall_at_10(approximate, exact, vectors)
    print(
        f"\nANN recall@10 against exact search, {len(questions)} question vectors; dense search"
        " of 50 (one thread):"
    )
    print("  vectors compared   lists   recall@10   p50 ms   p99 ms")
    default = VectorSettings().vectors_per_question
    for compared, nprobe, value, p50, p99 in recall:
        name = "exact" if not nprobe else f"{compared:,}"
        mark = " *" if compared == default else ""
        print(f"  {name:>16s}   {nprobe or '':>5}   {value:9.3f}   {p50:6.2f}   {p99:6.2f}{mark}")

    print(
        f"\ndense search around the threshold (default {VectorSettings().approximate_from:,}):"
        " the first N chunks, exact against approximate (defaults), p50 / p99 ms"
    )
    print("        N   exact             approximate       recall@10   build    lists")
    threshold = around_threshold(exact, vectors)
    for size, e50, e99, a50, a99, value, seconds, lists in threshold:
        print(
            f"  {size:>7,}   {e50:6.2f} / {e99:6.2f}   {a50:6.2f} / {a99:6.2f}   {value:9.3f}"
            f"   {seconds:5.1f} s   {lists:5d}"
        )

    opens = []
    for _ in range(3):
        t = time.perf_counter()
        open_index(index_dir, embedder.name).close()
        opens.append(time.perf_counter() - t)
    print(
        f"\nopening the index with its checks (ids walked in every list): {min(opens):.2f} s (best of 3)"
    )
    summary.update(
        chunks=chunks,
        cosine=cosine,
        build={k: v for k, v in built.items() if isinstance(v, float | int)},
        sizes=sizes,
        store_bytes=store_size,
        recall=recall,
        threshold=threshold,
        open_seconds=min(opens),
    )
    return index_dir, chunks, exact


def measure_questions(
    index_dir: Path,
    chunks: int,
    exact: VectorIndex | None,
    seed: OpenIndex,
    embedder: Embedder,
    questions: list[LabelledQuestion],
) -> dict[str, dict[str, object]]:
    """Warm questions through each set-up in turn: latency of each part, and quality."""
    settings = Settings(index_dir=index_dir)
    searcher = Searcher.open(settings, embedder).with_settings(min_confidence=-1.0)
    budget = searcher.settings.keyword_budget
    # The defaults before exact scores: FTS5 ranks the matches of the terms kept within
    # a budget of 10,000; and exact scores within that budget.
    before = searcher.with_settings(keyword_budget=BUDGET_BEFORE, exact_keyword_scores=False)
    exact_before = searcher.with_settings(keyword_budget=BUDGET_BEFORE)
    # The keyword budget's share of any difference: the default's vectors, BM25 unbounded.
    unbounded = searcher.with_settings(keyword_budget=NO_BUDGET)
    small = Searcher(seed, embedder, searcher.settings)
    setups = {
        f"{chunks:,}: budget {budget:,}, exact BM25 *": searcher,
        f"{chunks:,}: budget {BUDGET_BEFORE:,}, FTS5 ranks (before)": before,
        f"{chunks:,}: budget {BUDGET_BEFORE:,}, exact BM25": exact_before,
        f"{chunks:,}: no budget": unbounded,
    }
    if exact is not None:
        baseline = Searcher(replace(searcher.index, vectors=exact), embedder, searcher.settings)
        setups[f"{chunks:,}: exact vectors + no budget"] = baseline.with_settings(
            keyword_budget=NO_BUDGET
        )
    setups[f"{seed.store.counts()[1]:,} (seed): exact + budget"] = small
    results = run_questions(setups, questions)
    print(f"\nwarm questions ({len(questions)}, after {WARM_UP} to warm up), p50 / p99 ms:")
    print_latencies(results)
    print("\nquality of the same answers (labelled questions, 'not covered' off):")
    for name, result in results.items():
        print(f"  {name:46s} {hits(result['ranks'])}")
    return results


if __name__ == "__main__":
    main()
