"""Retrieval quality on labelled questions: hit@k, MRR@10, latency, and what missed.

Questions are JSON Lines objects with ``question``, ``article_id`` and ``answers``. A
result is a hit when it comes from ``article_id`` and its passage contains one of the
answers (case-insensitive). A "not covered" answer has no results, so it is a miss.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import CitebotError
from .records import Answer
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
class EvalReport:
    questions: int
    hit_at: dict[int, float]
    mrr_at_10: float
    answered: float
    latency_p50_ms: float
    latency_p99_ms: float
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


def first_hit(answer: Answer, question: LabelledQuestion) -> int | None:
    """1-based rank of the first passage that answers the question, if any."""
    wanted = [a.lower() for a in question.answers]
    for passage in answer.passages:
        text = passage.text.lower()
        if passage.article.id == question.article_id and any(a in text for a in wanted):
            return passage.rank
    return None


def evaluate(searcher: Searcher, questions: Sequence[LabelledQuestion], k: int = 10) -> EvalReport:
    ranks: list[int | None] = []
    latencies: list[float] = []
    answered = 0
    misses: list[Miss] = []
    for question in questions:
        started = time.perf_counter()
        answer = searcher.search(question.question, k=k)
        latencies.append((time.perf_counter() - started) * 1000)
        answered += answer.answered
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
        answered=answered / total,
        latency_p50_ms=float(np.percentile(latencies, 50)),
        latency_p99_ms=float(np.percentile(latencies, 99)),
        misses=misses,
    )
