"""Answer-quality benchmark: dense-only, BM25-only and hybrid retrieval on labelled questions,
and the calibration of the "not covered" threshold.

    .venv/bin/python bench/bench_quality.py \
        --articles ../shared/eval/xquad-en/articles.jsonl \
        --distractors ../shared/corpus/bbc-news \
        --questions ../shared/eval/xquad-en/questions-dev.jsonl

One index holds the labelled articles (ids kept as given) and the distractors. Each
method answers every question with the same index and model; the table shows
hit@1/3/5/10, MRR@10 and warm latency. With --index DIR an existing index is reused.

Calibration: for every question, the best cosine similarity of any passage is taken
twice, once with the question's own article in the index ("covered") and once as if it
were not (its chunks left out: "not covered"). The table shows, per threshold, the share
of covered questions still answered and of uncovered ones refused.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from retrieval.config import Settings
from retrieval.embedding import SentenceTransformerEmbedder
from retrieval.evaluate import evaluate, load_questions
from retrieval.ingest import ingest
from retrieval.search import Searcher

METHODS = {
    "dense only": {"fusion": "dense"},
    "BM25 only": {"fusion": "keyword"},
    "RRF (k=60)": {"fusion": "rrf"},
    "convex 0.3": {"fusion": "convex", "dense_weight": 0.3},
    "convex 0.4": {"fusion": "convex", "dense_weight": 0.4},
    "convex 0.5": {"fusion": "convex", "dense_weight": 0.5},
    "convex 0.6": {"fusion": "convex", "dense_weight": 0.6},
}


def calibrate(searcher: Searcher, questions, thresholds) -> list[tuple[float, float, float]]:
    covered, uncovered = [], []
    for q in questions:
        vector = searcher.embedder.embed([q.question])[0]
        hits = searcher.index.vectors.search(vector, 300)
        rows = searcher.index.store.chunks(i for i, _ in hits)
        covered.append(hits[0][1])
        uncovered.append(max(s for i, s in hits if rows[i].article_id != q.article_id))
    covered_a, uncovered_a = np.array(covered), np.array(uncovered)
    return [
        (t, float((covered_a >= t).mean()), float((uncovered_a < t).mean())) for t in thresholds
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=Path, required=True)
    parser.add_argument("--distractors", type=Path, nargs="*", default=[])
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--index", type=Path, help="reuse (or build) the index here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="citebot-quality-") as scratch:
        settings = Settings(index_dir=args.index or Path(scratch) / "index")
        embedder = SentenceTransformerEmbedder(settings.model)
        report = ingest([args.articles, *args.distractors], settings, embedder, show_progress=True)
        print(f"index: {report.articles} articles ({report.chunks_embedded} chunks embedded now)")
        questions = load_questions(args.questions)
        base = Searcher.open(settings, embedder)
        # Quality is measured with "not covered" off, so the threshold does not mix in.
        base = base.with_settings(min_similarity=-1.0)
        base.search(questions[0].question)

        results = {}
        print(f"\n{len(questions)} questions")
        print(f"{'method':14s} hit@1  hit@3  hit@5  hit@10  MRR@10  p50 ms  p99 ms")
        for name, changes in METHODS.items():
            r = evaluate(base.with_settings(**changes), questions)
            results[name] = r.to_dict() | {"misses": len(r.misses)}
            h = r.hit_at
            print(
                f"{name:14s} {h[1]:.3f}  {h[3]:.3f}  {h[5]:.3f}  {h[10]:.3f}   {r.mrr_at_10:.3f}"
                f"  {r.latency_p50_ms:6.1f}  {r.latency_p99_ms:6.1f}"
            )

        print("\nnot-covered threshold (best passage cosine similarity):")
        print("threshold  covered answered  uncovered refused")
        table = calibrate(base, questions, [round(t, 2) for t in np.arange(0.20, 0.61, 0.05)])
        for t, answered, refused in table:
            print(f"  {t:.2f}        {answered:6.1%}            {refused:6.1%}")
        default = replace(Settings().search)
        print(f"(configured default min_similarity = {default.min_similarity})")
        if args.json:
            args.json.write_text(json.dumps({"methods": results, "calibration": table}, indent=2))


if __name__ == "__main__":
    main()
