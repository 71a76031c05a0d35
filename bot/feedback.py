"""What the 👍/👎 votes say: totals, the most down-voted questions with the passages they
got, and the articles most often voted down.

Shared by ``citebot feedback`` (which must not load discord.py: nothing here imports it)
and the bot's ``/feedback``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from retrieval.config import DEFAULT_CORPUS
from retrieval.records import paragraphs_label

from .store import BotStore, ShownAnswer, ShownPassage, Vote


@dataclass(frozen=True)
class QuestionVotes:
    """One question (as asked, whitespace and case folded) and the votes its answers got."""

    question: str
    down: int
    up: int
    # What the most down-voted answer to it showed; empty for votes older than the answer log.
    passages: tuple[ShownPassage, ...]


@dataclass(frozen=True)
class ArticleVotes:
    """An article and the votes on answers that cited it."""

    article_id: str
    title: str
    down: int
    up: int


@dataclass(frozen=True)
class FeedbackReport:
    votes: int
    up: int
    down: int
    voters: int
    answers: int
    questions: tuple[QuestionVotes, ...]
    articles: tuple[ArticleVotes, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(question: str) -> str:
    return " ".join(question.split()).casefold()


def feedback_report(
    store: BotStore, *, limit: int = 10, corpus: str | None = None
) -> FeedbackReport:
    """The report over the votes in ``store`` (those on answers of ``corpus`` when given);
    at most ``limit`` questions and articles."""
    votes = store.votes()
    answers = {a.id: a for a in store.answers(sorted({v.answer_id for v in votes if v.answer_id}))}
    if corpus is not None:
        votes = [
            v
            for v in votes
            if (answers[v.answer_id].corpus if v.answer_id in answers else DEFAULT_CORPUS) == corpus
        ]
    return build_report(votes, answers, limit=limit)


def build_report(
    votes: list[Vote], answers: dict[int, ShownAnswer], *, limit: int = 10
) -> FeedbackReport:
    tally: dict[str, Counter[int]] = defaultdict(Counter)
    asked_as: dict[str, str] = {}
    # Per question, down votes per answer: the answer voted down most is the one shown.
    downs_per_answer: dict[str, Counter[int]] = defaultdict(Counter)
    articles: dict[str, Counter[int]] = defaultdict(Counter)
    titles: dict[str, str] = {}
    for vote in votes:
        key = _key(vote.question)
        asked_as.setdefault(key, " ".join(vote.question.split()))
        tally[key][vote.vote] += 1
        shown = answers.get(vote.answer_id) if vote.answer_id is not None else None
        if shown is None:
            continue
        if vote.vote < 0:
            downs_per_answer[key][shown.id] += 1
        for article_id in dict.fromkeys(p.article_id for p in shown.passages):
            articles[article_id][vote.vote] += 1
        for passage in shown.passages:
            titles.setdefault(passage.article_id, passage.title)

    def passages_for(key: str) -> tuple[ShownPassage, ...]:
        ranked = downs_per_answer[key].most_common(1)
        return answers[ranked[0][0]].passages if ranked else ()

    questions = sorted(
        (
            QuestionVotes(asked_as[key], counts[-1], counts[1], passages_for(key))
            for key, counts in tally.items()
            if counts[-1] > 0
        ),
        key=lambda q: (-q.down, q.up, q.question),
    )
    voted_down = sorted(
        (
            ArticleVotes(article_id, titles[article_id], counts[-1], counts[1])
            for article_id, counts in articles.items()
            if counts[-1] > 0
        ),
        key=lambda a: (-a.down, a.up, a.title, a.article_id),
    )
    return FeedbackReport(
        votes=len(votes),
        up=sum(1 for v in votes if v.vote > 0),
        down=sum(1 for v in votes if v.vote < 0),
        voters=len({v.user_id for v in votes}),
        answers=len({v.message_id for v in votes}),
        questions=tuple(questions[:limit]),
        articles=tuple(voted_down[:limit]),
    )


def summary_line(report: FeedbackReport) -> str:
    return (
        f"{report.votes} vote{'s' if report.votes != 1 else ''} from {report.voters}"
        f" {'person' if report.voters == 1 else 'people'} on {report.answers}"
        f" answer{'s' if report.answers != 1 else ''}: {report.up} up, {report.down} down"
    )


def render_text(report: FeedbackReport) -> str:
    """The report for a terminal."""
    if not report.votes:
        return "No votes yet."
    lines = [summary_line(report)]
    if report.questions:
        lines += ["", "Most down-voted questions:"]
        for q in report.questions:
            lines.append(f"  {q.down} down, {q.up} up   {q.question}")
            for number, p in enumerate(q.passages, start=1):
                lines.append(
                    f"      [{number}] {p.title} ({p.article_id}) {paragraphs_label(*p.paragraphs)}"
                )
            if not q.passages:
                lines.append("      (the passages shown were not recorded)")
    if report.articles:
        lines += ["", "Articles most often voted down:"]
        for a in report.articles:
            lines.append(f"  {a.down} down, {a.up} up   {a.title} ({a.article_id})")
    return "\n".join(lines)
