"""Retrieval quality on labelled questions: hit@k, MRR@10, latency, and what missed; and
what an answer's first page shows: its highlight, its passages, their length.

Questions are JSON Lines objects with ``question``, ``article_id`` and ``answers``. A
result is a hit when it comes from ``article_id`` and its passage contains one of the
answers (case-insensitive). A "not covered" answer has no results, so it is a miss.

The first page is what a reader sees first: the passages marked ``shown`` among the
first ``page_size`` results. Measured on it: how many passages it shows, the share of
them from the question's own article, hit@3 counting only shown passages, and the
characters of passage text it shows (trimmed views). The highlight is right when the
sentence marked in the first hit passage contains an answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import CitebotError
from .records import Answer, Passage
from .search import Searcher

CUTOFFS = (1, 3, 5, 10)


@dataclass(frozen=True)
class LabelledQuestion:
    question: str
    article_id: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Miss:
    question: str
    article_id: str
    answers: tuple[str, ...]
    # What came first instead: its article id and the start of its passage; None if nothing did.
    first_article: str | None
    first_passage: str | None


@dataclass(frozen=True)
class PageReport:
    """What the first page of an answer shows, over the questions."""

    # Mean number of passages shown.
    passages: float
    # Of all passages shown, the share from the question's own article.
    own_article_share: float
    # Questions with a hit among the shown passages of rank 1 to 3.
    hit_at_3: float
    # Median characters of passage text shown: trimmed views, and the same passages whole.
    chars_median: float
    full_chars_median: float
    # Of the questions with a hit passage (top 10), those whose highlight there contains
    # an answer.
    highlight_right: float
    highlight_questions: int
    # Mean characters of those highlights: a longer highlight holds the answer more often,
    # so its share is read beside its length.
    highlight_chars: float = 0.0


@dataclass(frozen=True)
class EvalReport:
    questions: int
    hit_at: dict[int, float]
    mrr_at_10: float
    answered: float
    latency_p50_ms: float
    latency_p99_ms: float
    page: PageReport
    misses: list[Miss] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hit_at"] = {str(k): v for k, v in self.hit_at.items()}
        return data


def load_questions(path: Path) -> list[LabelledQuestion]:
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise CitebotError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answers = record["answers"]
            questions.append(
                LabelledQuestion(
                    str(record["question"]),
                    str(record["article_id"]),
                    tuple(answers) if isinstance(answers, list) else (str(answers),),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CitebotError(f"{path}:{number}: not a labelled question ({exc})") from None
    if not questions:
        raise CitebotError(f"{path}: no questions")
    return questions


def is_hit(passage: Passage, question: LabelledQuestion) -> bool:
    """The passage comes from the question's article and contains one of its answers."""
    text = passage.text.lower()
    return passage.article.id == question.article_id and any(
        a.lower() in text for a in question.answers
    )


def first_hit(answer: Answer, question: LabelledQuestion) -> int | None:
    """1-based rank of the first passage that answers the question, if any."""
    return next((p.rank for p in answer.passages if is_hit(p, question)), None)


def highlight_is_right(passage: Passage, question: LabelledQuestion) -> bool:
    highlight = passage.highlight.lower()
    return any(a.lower() in highlight for a in question.answers)


def page_report(
    answers: Sequence[Answer], questions: Sequence[LabelledQuestion], page_size: int
) -> PageReport:
    shown = [[p for p in a.passages[:page_size] if p.shown] for a in answers]
    own = [
        p.article.id == q.article_id for page, q in zip(shown, questions, strict=True) for p in page
    ]
    hits = [
        next((p for p in a.passages if is_hit(p, q)), None)
        for a, q in zip(answers, questions, strict=True)
    ]
    judged = [highlight_is_right(p, q) for p, q in zip(hits, questions, strict=True) if p]
    highlights = [len(p.highlight) for p in hits if p]
    return PageReport(
        passages=float(np.mean([len(page) for page in shown])),
        own_article_share=sum(own) / len(own) if own else 0.0,
        hit_at_3=float(
            np.mean(
                [
                    any(p.rank <= 3 and is_hit(p, q) for p in page)
                    for page, q in zip(shown, questions, strict=True)
                ]
            )
        ),
        chars_median=float(np.median([sum(len(p.trimmed()[0]) for p in pg) for pg in shown])),
        full_chars_median=float(np.median([sum(len(p.text) for p in pg) for pg in shown])),
        highlight_right=sum(judged) / len(judged) if judged else 0.0,
        highlight_questions=len(judged),
        highlight_chars=float(np.mean(highlights)) if highlights else 0.0,
    )


def evaluate(
    searcher: Searcher,
    questions: Sequence[LabelledQuestion],
    k: int = 10,
    page_size: int | None = None,
) -> EvalReport:
    """Run every question (top ``k``); the first page holds at most ``page_size`` passages
    (default: the searcher's ``k``)."""
    ranks: list[int | None] = []
    latencies: list[float] = []
    answers: list[Answer] = []
    misses: list[Miss] = []
    for question in questions:
        started = time.perf_counter()
        answer = searcher.search(question.question, k=k)
        latencies.append((time.perf_counter() - started) * 1000)
        answers.append(answer)
        rank = first_hit(answer, question)
        ranks.append(rank)
        if rank != 1:
            top = answer.passages[0] if answer.passages else None
            misses.append(
                Miss(
                    question.question,
                    question.article_id,
                    question.answers,
                    top.article.id if top else None,
                    top.text[:200] if top else None,
                )
            )
    total = len(questions)
    return EvalReport(
        questions=total,
        hit_at={c: sum(r is not None and r <= c for r in ranks) / total for c in CUTOFFS},
        mrr_at_10=sum(1 / r for r in ranks if r is not None and r <= 10) / total,
        answered=sum(a.answered for a in answers) / total,
        latency_p50_ms=float(np.percentile(latencies, 50)),
        latency_p99_ms=float(np.percentile(latencies, 99)),
        page=page_report(answers, questions, page_size or searcher.settings.k),
        misses=misses,
    )
