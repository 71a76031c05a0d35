"""Questions people type beside the labelled ones: about the text, near the topic, off it;
the highlight's length; and answers that show one story twice.

    .venv/bin/python bench/bench_questions.py \
        --articles ../shared/eval/xquad-en/articles.jsonl \
        --distractors ../shared/corpus/bbc-news \
        --questions ../shared/eval/xquad-en/questions-dev.jsonl --index /tmp/quality-index

On the quality index (bench_quality.py's: the labelled articles and the BBC distractors),
with the default settings:

- the labelled dev questions: hit@1/5, MRR@10 ("not covered" off, as bench_quality
  measures them), the share answered (with it on) and the share answered with a caveat;
  the highlight: the share of first hit passages whose highlight holds an answer, and
  its mean length in sentences and characters;
- bench/data/meta-questions.jsonl: questions about the text ("What does the article say
  about ...", "Summarise the piece on ..."): answered with the right article in the top 3;
- bench/data/near-topic.jsonl: dev questions with one specific word changed to one the
  corpus never mentions: refused or qualified (a caveat);
- bench/data/off-topic.jsonl: questions no article is about: refused;
- one story twice: every BBC headline that has a copy in the corpus, and every 10th other
  one, asked as a question: answers whose passages (top 5) show the same text twice.

The script runs against whichever ``retrieval`` is importable, so a baseline is measured
in the same run with ``PYTHONPATH=<checkout of main>`` (fields a version lacks count as
absent).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
from bench_quality import build, quality_parser

from retrieval.evaluate import evaluate, highlight_is_right, is_hit, load_questions
from retrieval.records import Answer
from retrieval.search import Searcher
from retrieval.text import sentence_spans

DATA = Path(__file__).parent / "data"


def records(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def right_article_top3(answer: Answer, article_id: str) -> bool:
    return answer.answered and any(
        p.article.id == article_id for p in answer.passages if p.rank <= 3
    )


def bbc_headlines(folder: Path) -> list[str]:
    """Headlines of the BBC files that have a byte-for-byte copy, and of every 10th other."""
    files = sorted(folder.rglob("*.txt"))
    digests: dict[str, list[Path]] = {}
    for path in files:
        digests.setdefault(hashlib.sha1(path.read_bytes()).hexdigest(), []).append(path)
    copied = {p for group in digests.values() if len(group) > 1 for p in group}
    chosen = [p for i, p in enumerate(files) if p in copied or i % 10 == 0]
    headlines = [p.read_text(errors="replace").split("\n", 1)[0].strip() for p in chosen]
    return list(dict.fromkeys(h for h in headlines if h))


def shows_twice(answer: Answer) -> bool:
    texts = [" ".join(p.text.split()) for p in answer.passages]
    return len(set(texts)) < len(texts)


def main() -> None:
    parser = quality_parser(__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citebot-questions-") as scratch:
        index_dir = args.index or Path(scratch) / "index"
        settings, embedder = build(index_dir, [args.articles, *args.distractors], args.backend)
        searcher = Searcher.open(settings, embedder)
        questions = load_questions(args.questions)
        searcher.search(questions[0].question)  # warm-up
        figures: dict[str, object] = {}

        quality = evaluate(searcher.with_settings(min_confidence=-1.0), questions)
        figures["hit@1"], figures["hit@5"] = quality.hit_at[1], quality.hit_at[5]
        figures["mrr@10"] = quality.mrr_at_10
        answers = [searcher.search(q.question, k=10) for q in questions]
        figures["answered"] = float(np.mean([a.answered for a in answers]))
        figures["answered with a caveat"] = float(
            np.mean([a.answered and getattr(a, "caveat", None) is not None for a in answers])
        )
        # The highlight, on the answers with "not covered" off (as bench_quality's page).
        open_answers = [
            searcher.with_settings(min_confidence=-1.0).search(q.question, k=10) for q in questions
        ]
        hits = [
            (p, q)
            for a, q in zip(open_answers, questions, strict=True)
            if (p := next((p for p in a.passages if is_hit(p, q)), None))
        ]
        figures["highlight right"] = float(np.mean([highlight_is_right(p, q) for p, q in hits]))
        figures["highlight sentences"] = float(
            np.mean([len(sentence_spans(p.highlight)) for p, _ in hits])
        )
        figures["highlight chars"] = float(np.mean([len(p.highlight) for p, _ in hits]))
        figures["highlight questions"] = len(hits)

        meta = records("meta-questions.jsonl")
        meta_answers = [searcher.search(r["question"]) for r in meta]
        right = [
            right_article_top3(a, r["article_id"]) for a, r in zip(meta_answers, meta, strict=True)
        ]
        figures["meta right article top 3"] = float(np.mean(right))
        for kind in ("passage", "whole"):
            figures[f"meta ({kind}) right article top 3"] = float(
                np.mean([ok for ok, r in zip(right, meta, strict=True) if r["kind"] == kind])
            )
        figures["meta asked which (right one named)"] = sum(
            getattr(a, "kind", "") == "which_article"
            and any(n.id == r["article_id"] for n in a.nearest)
            for a, r in zip(meta_answers, meta, strict=True)
        )
        near = records("near-topic.jsonl")
        near_answers = [searcher.search(r["question"]) for r in near]
        refused = [not a.answered for a in near_answers]
        qualified = [a.answered and getattr(a, "caveat", None) is not None for a in near_answers]
        figures["near-topic refused"] = float(np.mean(refused))
        figures["near-topic qualified"] = float(np.mean(qualified))
        figures["near-topic refused or qualified"] = float(
            np.mean([a or b for a, b in zip(refused, qualified, strict=True)])
        )
        off = records("off-topic.jsonl")
        figures["off-topic refused"] = float(
            np.mean([not searcher.search(r["question"]).answered for r in off])
        )
        bbc = [d for d in args.distractors if d.is_dir()]
        if bbc:
            headlines = bbc_headlines(bbc[0])
            twice = [h for h in headlines if shows_twice(searcher.search(h, k=5))]
            figures["bbc questions"] = len(headlines)
            figures["bbc answers showing a passage twice"] = len(twice)
        width = max(len(name) for name in figures)
        for name, value in figures.items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            print(f"{name:{width}s}  {shown}")
        for answer, r in zip(near_answers, near, strict=True):
            verdict = (
                "refused"
                if not answer.answered
                else "qualified"
                if getattr(answer, "caveat", None)
                else "ANSWERED"
            )
            print(f"  near {verdict:9s} {answer.confidence:.3f}  {r['question']}")
        for answer, r, ok in zip(meta_answers, meta, right, strict=True):
            kind = getattr(answer, "kind", "passages")
            print(f"  meta {'ok ' if ok else 'MISS'} {kind:13s} {r['question']}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
