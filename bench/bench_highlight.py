"""The highlight on labelled questions: how often it holds the answer, how long it is, and
what the ideas tried to raise it measured, each against the shipped rules in the same run.

    .venv/bin/python bench/bench_highlight.py \
        --articles ../shared/eval/xquad-en/articles.jsonl \
        --distractors ../shared/corpus/bbc-news \
        --questions ../shared/eval/xquad-en/questions-dev.jsonl --index /tmp/quality-index

The index is built as bench_quality.py builds it (or reused with --index). For each
question whose top 10 holds a hit passage, the first hit passage is kept with its
sentences, their similarity of meaning to the question (the stored sentence vectors) and
which of them hold an answer. Everything below is computed on those passages, so the
rows differ only in how the highlight is chosen:

- the shipped rules, and with the answer cues off (``highlight.ANSWER_TYPE_BONUS``);
- the neighbour share swept (``highlight.NEIGHBOUR_SHARE``): highlight length against
  accuracy, the trade-off every rule that adds sentences moves along;
- the single best sentence, and whether the answer is among the best 2 or 3 (a ceiling
  for any rule choosing among sentences by these scores);
- a learned combination: a softmax over a passage's sentences of a linear score of 13
  features, fitted on the questions of 5/6 of the articles and measured on the rest
  (6 folds, split by article, so no article is in its own training set);
- the ideas of issue 19's second pass, each beside the plain neighbour rule at the same
  shares: a who/where question favouring sentences with a name it lacks, a neighbour
  favoured for the question words it adds or for coming next, and (``--pairs``, which
  embeds every two adjacent sentences together: a few minutes) a pair of sentences scored
  by the meaning of the two read together.

Each row gives the share for the articles of half A and half B (alternate articles by id:
rules were tuned on A, B is held out) and for all.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_quality import build, quality_parser

from retrieval import highlight
from retrieval.config import Settings
from retrieval.evaluate import is_hit, load_questions
from retrieval.highlight import answer_cues, best_sentences, sentence_meaning
from retrieval.questions import content_terms, without_set_aside
from retrieval.search import Searcher
from retrieval.text import STOPWORDS, keyword_terms, sentence_spans, stem, words

Span = tuple[int, int]


@dataclass(frozen=True)
class HitPassage:
    question: str
    article_id: str
    title: str
    text: str
    spans: list[Span]
    meaning: list[float] | None
    # Per sentence: does it hold an answer?
    holds: list[bool]
    answers: tuple[str, ...]
    # Per two adjacent sentences: the similarity of meaning of the two read together
    # (embedded as one text; only with --pairs).
    pair_meaning: list[float] | None = None

    def right(self, span: Span) -> bool:
        highlight = self.text[span[0] : span[1]].lower()
        return any(a.lower() in highlight for a in self.answers)


def collect(searcher: Searcher, questions_path: Path, pairs: bool = False) -> list[HitPassage]:
    kept = []
    for question in load_questions(questions_path):
        answer = searcher.search(question.question, k=10)
        passage = next((p for p in answer.passages if is_hit(p, question)), None)
        if passage is None:
            continue
        spans = sentence_spans(passage.text)
        stored = searcher.index.sentence_vectors(passage.chunk_ids)
        vector = searcher.embedder.embed([without_set_aside(question.question)])[0]
        vectors = [stored[i] for i in passage.chunk_ids if i in stored]
        meaning = sentence_meaning(vector, spans, passage.char_start, vectors) if vectors else None
        low = passage.text.lower()
        holds = [any(a.lower() in low[x:y] for a in question.answers) for x, y in spans]
        pair_meaning = None
        if pairs and len(spans) > 1:
            together = [passage.text[a:d] for (a, _), (_, d) in itertools.pairwise(spans)]
            pair_meaning = (searcher.embedder.embed(together) @ vector).tolist()
        kept.append(
            HitPassage(
                question.question,
                question.article_id,
                passage.article.title,
                passage.text,
                spans,
                meaning,
                holds,
                question.answers,
                pair_meaning,
            )
        )
    return kept


def row(name: str, passages: Sequence[HitPassage], choose: Callable[[HitPassage], Span]) -> None:
    """Share holding an answer (half A, half B, all), mean characters and sentences (all)."""
    articles = sorted({p.article_id for p in passages})
    half = {a: i % 2 for i, a in enumerate(articles)}
    right = [0, 0]
    count = [0, 0]
    chars = sentences = 0
    for p in passages:
        span = choose(p)
        right[half[p.article_id]] += p.right(span)
        count[half[p.article_id]] += 1
        chars += span[1] - span[0]
        sentences += sum(span[0] <= a and b <= span[1] for a, b in p.spans)
    n = len(passages)
    a, b = (r / max(1, c) for r, c in zip(right, count, strict=True))
    print(
        f"{name:44s} {a:6.3f} {b:6.3f} {sum(right) / n:6.3f}  {chars / n:6.0f}  {sentences / n:5.2f}"
    )


def shipped(weight: float) -> Callable[[HitPassage], Span]:
    return lambda p: best_sentences(p.question, p.text, p.meaning, weight, p.spans)


def features(p: HitPassage) -> np.ndarray:
    """One row per sentence: meaning (and against the passage's best), shared words (and
    the neighbours'), the share of its content words restating the question, its new
    words, words shared outside the article title, the answer cue, length, position."""
    n = len(p.spans)
    terms = {stem(t) for t in keyword_terms(p.question)}
    title = {stem(w) for w in words(p.title)}
    content = [[stem(w) for w in words(p.text[a:b]) if w not in STOPWORDS] for a, b in p.spans]
    shared = [set(c) & terms for c in content]
    weight = {t: math.log(1 + n / (1 + sum(t in s for s in shared))) for t in terms}

    def scaled(values: list[float]) -> list[float]:
        top = max(values) or 1.0
        return [v / top for v in values]

    by_words = scaled([sum(weight[t] for t in s) for s in shared])
    off_title = scaled([sum(weight[t] for t in s - title) for s in shared])
    meaning = p.meaning or [0.0] * n
    best = max(meaning)
    cues = answer_cues(p.question, p.text, p.spans)
    rows = []
    for i, c in enumerate(content):
        new = [w for w in c if w not in terms]
        rows.append(
            [
                meaning[i],
                meaning[i] - best,
                by_words[i],
                by_words[i - 1] if i else 0.0,
                by_words[i + 1] if i < n - 1 else 0.0,
                meaning[i - 1] - best if i else -0.5,
                meaning[i + 1] - best if i < n - 1 else -0.5,
                (len(c) - len(new)) / max(1, len(c)),
                math.log1p(len(new)),
                off_title[i],
                cues[i],
                math.log1p(len(c)),
                float(i == 0),
            ]
        )
    return np.array(rows)


def fit(data: list[tuple[np.ndarray, np.ndarray]], l2: float = 1.0) -> np.ndarray:
    """Weights of a softmax over each passage's sentences maximising the probability of
    the sentences that hold an answer (conditional logit), L2-regularised."""
    from scipy.optimize import minimize

    stacked = np.concatenate([x for x, _ in data])
    mean, scale = stacked.mean(0), stacked.std(0) + 1e-9
    scaled = [((x - mean) / scale, y) for x, y in data]

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = l2 * b @ b, 2 * l2 * b
        for x, y in scaled:
            s = x @ b
            p = np.exp(s - s.max())
            p /= p.sum()
            py = p[y].sum()
            total -= math.log(py + 1e-12)
            q = np.where(y, p / py, 0.0)
            grad -= (q - p) @ x
        return total, grad

    b = minimize(loss, np.zeros(stacked.shape[1]), jac=True, method="L-BFGS-B").x
    return b / scale


def held_out_scores(passages: list[HitPassage], folds: int = 6, seed: int = 0) -> list[np.ndarray]:
    matrices = [features(p) for p in passages]
    articles = sorted({p.article_id for p in passages})
    np.random.default_rng(seed).shuffle(articles)
    fold = {a: i % folds for i, a in enumerate(articles)}
    scores: list[np.ndarray] = [np.zeros(0)] * len(passages)
    for f in range(folds):
        train = [
            (m, np.array(p.holds))
            for m, p in zip(matrices, passages, strict=True)
            if fold[p.article_id] != f and any(p.holds)
        ]
        weights = fit(train)
        for i, p in enumerate(passages):
            if fold[p.article_id] == f:
                scores[i] = matrices[i] @ weights
    return scores


def main() -> None:
    parser = quality_parser(__doc__)
    parser.add_argument(
        "--pairs", action="store_true", help="also score pairs of sentences read together"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="citebot-highlight-") as scratch:
        index_dir = args.index or Path(scratch) / "index"
        settings, embedder = build(index_dir, [args.articles, *args.distractors], args.backend)
        searcher = Searcher.open(settings, embedder).with_settings(min_confidence=-1.0)
        passages = collect(searcher, args.questions, args.pairs)
        searcher.close()
    weight = Settings().search.highlight_meaning_weight
    with_meaning = sum(p.meaning is not None for p in passages)
    print(f"\n{len(passages)} hit passages ({with_meaning} with sentence vectors);")
    print("highlight: share holding an answer (half A, half B, all), mean characters, sentences")
    print(f"{'':44s} {'A':>6s} {'B':>6s} {'all':>6s}  {'chars':>6s}  {'sents':>5s}")
    row(f"shipped (meaning weight {weight})", passages, shipped(weight))
    row("shipped, words only (weight 0)", passages, shipped(0.0))
    bonus = highlight.ANSWER_TYPE_BONUS
    highlight.ANSWER_TYPE_BONUS = 0.0
    row("  answer cues off", passages, shipped(weight))
    highlight.ANSWER_TYPE_BONUS = bonus

    print("\nneighbour share (a neighbour joins at this share of the best score)")
    share = highlight.NEIGHBOUR_SHARE
    for value in (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.0):
        highlight.NEIGHBOUR_SHARE = value
        mark = " (shipped)" if value == share else ""
        row(f"  {value:.2f}{mark}", passages, shipped(weight))
    highlight.NEIGHBOUR_SHARE = share

    def combined(p: HitPassage) -> np.ndarray:
        meaning = np.array(p.meaning or [0.0] * len(p.spans))
        m = features(p)
        return weight * meaning + (1 - weight) * m[:, 2] + m[:, 10]

    def around(p: HitPassage, best: int, before: int, after: int) -> Span:
        low, high = max(0, best - before), min(len(p.spans) - 1, best + after)
        return p.spans[low][0], p.spans[high][1]

    print("\nsentences chosen by the shipped score without the neighbour rules")
    scores = {id(p): combined(p) for p in passages}
    row(
        "  the best sentence alone",
        passages,
        lambda p: around(p, int(np.argmax(scores[id(p)])), 0, 0),
    )
    for top in (2, 3):
        hit = sum(
            any(p.holds[i] for i in np.argsort(-scores[id(p)])[:top]) for p in passages
        ) / len(passages)
        print(f"  an answer among the best {top} sentences: {hit:.3f}")
    row(
        "  the best with both neighbours, always",
        passages,
        lambda p: around(p, int(np.argmax(scores[id(p)])), 1, 1),
    )

    print("\nlearned combination (held out by article, 6 folds; best sentence alone)")
    for seed in (0, 1):
        learned = held_out_scores(passages, seed=seed)
        picks = {id(p): int(np.argmax(s)) for p, s in zip(passages, learned, strict=True)}
        row(f"  split {seed}", passages, lambda p, picks=picks: around(p, picks[id(p)], 0, 0))

    second_pass(passages, combined, weight)


# A question asking for a person or a place ("Who ...?", "Where ...?", "Which company ...?").
_ASKS_NAME = re.compile(
    r"^\W*(?:who|whom|whose|where)\b|\b(?:what|which|in what)\s+(?:\w+\s+)?(?:person|people"
    r"|player|author|writer|leader|president|company|team|group|country|city|place|region"
    r"|state|location|town)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<=\s)[A-Z][\w'’-]*")


def with_new_names(p: HitPassage) -> list[bool]:
    """Per sentence: does it hold a capitalised word (not its first) the question lacks?"""
    asked = {stem(w) for w in words(p.question)}
    return [
        any(stem(w.lower()) not in asked for w in _CAPITALISED.findall(p.text[a:b]))
        for a, b in p.spans
    ]


def best_and_neighbour(
    p: HitPassage,
    scores: np.ndarray,
    share: float,
    favour: Callable[[HitPassage, int, int], float] | None = None,
) -> Span:
    """The best sentence by ``scores``, and its better neighbour in the same paragraph when
    that scores at least ``share`` of it (``favour(p, best, neighbour)`` added to it)."""
    best = int(np.argmax(scores))
    breaks = highlight.paragraph_breaks(p.text, p.spans)
    near = [j for j in (best - 1, best + 1) if 0 <= j < len(p.spans) and not breaks[min(j, best)]]
    bonus = {j: scores[j] + (favour(p, best, j) if favour else 0.0) for j in near}
    j = max(near, key=bonus.__getitem__, default=None)
    if j is None or scores[best] <= 0 or bonus[j] < share * scores[best]:
        return p.spans[best]
    return p.spans[min(j, best)][0], p.spans[max(j, best)][1]


def second_pass(
    passages: list[HitPassage], combined: Callable[[HitPassage], np.ndarray], weight: float
) -> None:
    """Issue 19's second pass: each idea beside the plain neighbour rule at the same shares."""
    scores = {id(p): combined(p) for p in passages}
    named = {id(p): np.array(with_new_names(p), dtype=float) for p in passages}
    terms = {
        id(p): highlight.terms_by_sentence(p.text, p.spans, content_terms(p.question))
        for p in passages
    }

    def named_scores(p: HitPassage) -> np.ndarray:
        cue = 0.05 * named[id(p)] if _ASKS_NAME.search(p.question) else 0.0
        return scores[id(p)] + cue

    def adds_terms(p: HitPassage, best: int, j: int) -> float:
        asked = content_terms(p.question)
        return 0.2 * len(terms[id(p)][j] - terms[id(p)][best]) / max(1, len(asked))

    def comes_next(p: HitPassage, best: int, j: int) -> float:
        return 0.05 if j > best else 0.0

    print("\nissue 19, second pass: the best sentence and its better neighbour at a share")
    for share in (0.85, 0.75, 0.65):
        print(f"  share {share:.2f}")
        row(
            "    the neighbour rule alone",
            passages,
            lambda p, s=share: best_and_neighbour(p, scores[id(p)], s),
        )
        row(
            "    + who/where: a name the question lacks +0.05",
            passages,
            lambda p, s=share: best_and_neighbour(p, named_scores(p), s),
        )
        row(
            "    + a neighbour adding question words",
            passages,
            lambda p, s=share: best_and_neighbour(p, scores[id(p)], s, adds_terms),
        )
        row(
            "    + the next sentence +0.05",
            passages,
            lambda p, s=share: best_and_neighbour(p, scores[id(p)], s, comes_next),
        )
    if any(p.pair_meaning is not None for p in passages):
        print("\na pair of sentences scored by their meaning read together, minus a cost")
        for cost in (0.0, 0.02, 0.03, 0.05):
            row(
                f"  cost {cost:.2f}",
                passages,
                lambda p, c=cost: best_pair(p, scores[id(p)], weight, c),
            )


def best_pair(p: HitPassage, scores: np.ndarray, weight: float, cost: float) -> Span:
    """The best sentence, or two adjacent ones when the two read together (their meaning
    embedded as one text, the question words either holds) score more, less ``cost``."""
    best, top = p.spans[int(np.argmax(scores))], float(np.max(scores))
    if p.pair_meaning is None:
        return best
    asked = content_terms(p.question)
    held = highlight.terms_by_sentence(p.text, p.spans, asked)
    n = len(p.spans)
    idf = {t: math.log(1 + n / (1 + sum(t in h for h in held))) for t in asked}
    scale = max(sum(idf[t] for t in h) for h in held) or 1.0
    breaks = highlight.paragraph_breaks(p.text, p.spans)
    cues = answer_cues(p.question, p.text, p.spans)
    for i, meaning in enumerate(p.pair_meaning):
        shared = sum(idf[t] for t in held[i] | held[i + 1]) / scale
        score = weight * meaning + (1 - weight) * shared + max(cues[i], cues[i + 1]) - cost
        if not breaks[i] and score > top:
            best, top = (p.spans[i][0], p.spans[i + 1][1]), score
    return best


if __name__ == "__main__":
    main()
