"""Answer-quality benchmark: dense-only, BM25-only and hybrid retrieval on labelled questions,
and the calibration of the "not covered" threshold.

    .venv/bin/python bench/bench_quality.py \
        --articles ../shared/eval/xquad-en/articles.jsonl \
        --distractors ../shared/corpus/bbc-news \
        --questions ../shared/eval/xquad-en/questions-dev.jsonl

One index holds the labelled articles (ids kept as given) and the distractors. Each
method answers every question with the same index and model; the table shows
hit@1/3/5/10, MRR@10 and warm latency. With --index DIR an existing index is reused.

Calibration: for every question, the answer confidence is taken twice, once with the
question's own article in the index ("covered") and once as if it were not (its chunks
left out: "not covered"). The table shows, per threshold on the confidence
(search.answer_confidence), the share of covered questions still answered and of
uncovered ones refused.

First page (retrieval.evaluate.PageReport): what an answer shows first, before (the top
k passages whole, the highlight by shared words only) and now (the passages above the
relevance cut-off, trimmed around highlights chosen by meaning and words), then the
calibration of ``relevance_cutoff`` and of ``highlight_meaning_weight``.

--parts picks sections (methods, threshold, page, cutoff, highlight); default: all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from retrieval.config import BACKENDS, ModelSettings, Settings
from retrieval.embedding import Embedder
from retrieval.evaluate import EvalReport, LabelledQuestion, evaluate, load_questions
from retrieval.ingest import ingest
from retrieval.models import load_embedder
from retrieval.search import Searcher, answer_confidence, fuse

PARTS = ("methods", "threshold", "page", "cutoff", "highlight")
CUTOFFS = [0.0, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 1.0]
MEANING_WEIGHTS = [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]

METHODS = {
    "dense only": {"fusion": "dense"},
    "BM25 only": {"fusion": "keyword"},
    "RRF (k=60)": {"fusion": "rrf"},
    "convex 0.3": {"fusion": "convex", "dense_weight": 0.3},
    "convex 0.4 *": {"fusion": "convex", "dense_weight": 0.4},
    # The baseline of the keyword budget: BM25 ranks every chunk any term matches.
    "0.4, no budget": {"fusion": "convex", "dense_weight": 0.4, "keyword_budget": 10**12},
    "BM25, no budget": {"fusion": "keyword", "keyword_budget": 10**12},
    "convex 0.5": {"fusion": "convex", "dense_weight": 0.5},
    "convex 0.6": {"fusion": "convex", "dense_weight": 0.6},
}


def confidences(searcher: Searcher, question: LabelledQuestion) -> tuple[float, float]:
    """The answer confidence with the question's own article in the index, and as if it were not."""
    n = searcher.settings.candidates
    vector = searcher.embedder.embed([question.question])[0]
    # Fetch extra candidates, so that n are left once the own article's chunks are dropped.
    dense = searcher.index.vectors.search(vector, n * 3)
    keyword = searcher.index.keyword_search(
        question.question, n * 3, budget=searcher.settings.keyword_budget
    )
    rows = searcher.index.chunks(i for i, _ in dense + keyword)
    result = []
    for keep in (lambda _: True, lambda article_id: article_id != question.article_id):
        d = [(i, s) for i, s in dense if keep(rows[i].article_id)][:n]
        k = [(i, s) for i, s in keyword if keep(rows[i].article_id)][:n]
        top = rows[fuse(d, k, searcher.settings)[0].chunk_id]
        article = searcher.index.article(top.article_id)
        assert article is not None
        result.append(
            answer_confidence(question.question, d, article.text[top.char_start : top.char_end])
        )
    return result[0], result[1]


def calibrate(searcher: Searcher, questions: list[LabelledQuestion], thresholds: list[float]):
    pairs = np.array([confidences(searcher, q) for q in questions])
    covered, uncovered = pairs[:, 0], pairs[:, 1]
    return [(t, float((covered >= t).mean()), float((uncovered < t).mean())) for t in thresholds]


class RememberingEmbedder:
    """The model, remembering each question's vector: every method and setting asks the same
    612 questions, and on a busy machine embedding them again would be most of the run.
    Latency columns after the first method therefore leave out the question embedding."""

    def __init__(self, model: Embedder) -> None:
        self.model = model
        self._vectors: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) != 1:
            return self.model.embed(texts)
        if texts[0] not in self._vectors:
            self._vectors[texts[0]] = self.model.embed(texts)
        return self._vectors[texts[0]]


def page_header(first: str) -> str:
    return (
        f"{first:34s} shown  own art.  hit@3 shown  chars  (whole)  highlight  (chars)"
        "  p50 ms  p99 ms"
    )


def page_row(name: str, report: EvalReport) -> str:
    page = report.page
    return (
        f"{name:34s} {page.passages:5.2f}  {page.own_article_share:8.3f}  {page.hit_at_3:11.3f}"
        f"  {page.chars_median:5.0f}  {page.full_chars_median:7.0f}  {page.highlight_right:9.3f}"
        f"  {page.highlight_chars:7.0f}"
        f"  {report.latency_p50_ms:6.1f}  {report.latency_p99_ms:6.1f}"
    )


def quality_parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments every benchmark over the quality index takes."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=Path, required=True)
    parser.add_argument("--distractors", type=Path, nargs="*", default=[])
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--index", type=Path, help="reuse (or build) the index here")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    return parser


def build(
    index_dir: Path, paths: list[Path], backend: str = "auto", embedder: Embedder | None = None
) -> tuple[Settings, Embedder]:
    """The quality index (labelled articles plus distractors) with ``backend``, brought up
    to date (an unchanged one embeds nothing), and its embedder."""
    settings = Settings(index_dir=index_dir, model=ModelSettings(backend=backend))
    embedder = embedder or load_embedder(settings)
    report = ingest(paths, settings, embedder, show_progress=True)
    print(f"index: {report.articles} articles ({report.chunks_embedded} chunks embedded now)")
    return settings, embedder


def open_for_quality(settings: Settings, questions: list[LabelledQuestion]) -> Searcher:
    """Quality is measured with "not covered" off, so the threshold does not mix in."""
    searcher = Searcher.open(settings).with_settings(min_confidence=-1.0)
    searcher.search(questions[0].question)  # warm-up
    return searcher


def evaluate_methods(
    searcher: Searcher, questions: list[LabelledQuestion], methods: dict[str, dict] = METHODS
) -> dict[str, EvalReport]:
    return {name: evaluate(searcher.with_settings(**c), questions) for name, c in methods.items()}


def sweep(
    base: Searcher, questions: list[LabelledQuestion], setting: str, values: Sequence[float]
) -> dict[float, dict]:
    """The first page's figures with one search setting at each of ``values``, a row each."""
    rows = {}
    for value in values:
        report = evaluate(base.with_settings(**{setting: value}), questions)
        rows[value] = asdict(report.page)
        print(page_row(f"{value:.2f}", report))
    return rows


def main() -> None:
    parser = quality_parser(__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="citebot-quality-") as scratch:
        index_dir = args.index or Path(scratch) / "index"
        paths = [args.articles, *args.distractors]
        settings, embedder = build(index_dir, paths, args.backend)
        questions = load_questions(args.questions)
        base = Searcher.open(settings, RememberingEmbedder(embedder))
        # Quality is measured with "not covered" off, so the threshold does not mix in.
        base = base.with_settings(min_confidence=-1.0)
        base.search(questions[0].question)

        figures: dict[str, object] = {}
        if "methods" in args.parts:
            results = {}
            print(f"\n{len(questions)} questions (* = the default settings)")
            print(f"{'method':14s} hit@1  hit@3  hit@5  hit@10  MRR@10  p50 ms  p99 ms")
            for name, changes in METHODS.items():
                r = evaluate(base.with_settings(**changes), questions)
                results[name] = r.to_dict() | {"misses": len(r.misses)}
                h = r.hit_at
                print(
                    f"{name:14s} {h[1]:.3f}  {h[3]:.3f}  {h[5]:.3f}  {h[10]:.3f}   {r.mrr_at_10:.3f}"
                    f"  {r.latency_p50_ms:6.1f}  {r.latency_p99_ms:6.1f}"
                )
            figures["methods"] = results

        if "threshold" in args.parts:
            print("\nnot-covered threshold on the answer confidence (hybrid search as configured):")
            print("threshold  covered answered  uncovered refused")
            thresholds = [round(t, 3) for t in np.arange(0.30, 0.551, 0.025)]
            table = calibrate(
                base.with_settings(**Settings().search.__dict__ | {"min_confidence": -1.0}),
                questions,
                thresholds,
            )
            for t, answered, refused in table:
                print(f"  {t:.2f}        {answered:6.1%}            {refused:6.1%}")
            print(f"(default min_confidence = {Settings().search.min_confidence})")
            figures["calibration"] = table

        defaults = Settings().search
        if "page" in args.parts:
            print(f"\nfirst page of an answer (at most k = {defaults.k} passages; chars: median")
            print("characters of passage text shown, trimmed and whole; highlight: share of")
            print("questions whose first hit passage has the answer in its highlight)")
            print(page_header("layout"))
            before = evaluate(
                base.with_settings(relevance_cutoff=0.0, highlight_meaning_weight=0.0), questions
            )
            now = evaluate(base, questions)
            print(page_row("before: top k whole, words only", before))
            print(page_row("now: cut-off, trimmed, meaning", now))
            figures["page"] = {
                name: report.to_dict() | {"misses": len(report.misses)}
                for name, report in (("before", before), ("now", now))
            }

        if "cutoff" in args.parts:
            print("\nrelevance_cutoff (the first page shows passages scoring at least this")
            print(f"share of the best one's score; default {defaults.relevance_cutoff})")
            print(page_header("cut-off"))
            figures["cutoff"] = sweep(base, questions, "relevance_cutoff", CUTOFFS)

        if "highlight" in args.parts:
            print("\nhighlight_meaning_weight (the highlight's sentence score: this weight x")
            print("similarity of meaning + the rest x shared words; default")
            print(f"{defaults.highlight_meaning_weight})")
            print(page_header("weight"))
            figures["highlight"] = sweep(
                base, questions, "highlight_meaning_weight", MEANING_WEIGHTS
            )

        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
