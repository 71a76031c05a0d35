"""What the commands do, as plain async code over the index holder and the bot's store.

No interaction objects here: the Discord layer (cogs and buttons) acknowledges, calls
these, and sends. Every answer shown is recorded in the store, so its buttons can
recompute it later, after a restart too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

import discord

from retrieval import metrics
from retrieval.config import SearchSettings
from retrieval.dates import parse_day
from retrieval.errors import BadFilterError
from retrieval.live import IndexHolder, SyncResult
from retrieval.records import Answer, ArticleSummary, SearchFilter
from retrieval.search import check_question

from . import render
from .errors import Redactor, public_message
from .hub import BotCorpora
from .store import BotStore, ShownAnswer

logger = logging.getLogger(__name__)

# Autocomplete must answer within Discord's 3 s; a busy index gets no suggestions rather than an error.
AUTOCOMPLETE_TIMEOUT = 2.0
CHOICE_LIMIT = 100
# An answer offers its first few cited articles as buttons (one row of five).
ARTICLE_BUTTONS = 5

HINT = (
    "Ask me a question after the mention, e.g. `@citebot how do libraries lend tools?` "
    "— or use `/ask`."
)


@dataclass(frozen=True)
class Asker:
    """Who asked, where (and so from which corpus: None when none answers there), and
    whether the answer is for their eyes only."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    private: bool = False
    corpus: str | None = None


@dataclass(frozen=True)
class AnswerResult:
    """An answer, its pages, its record in the store, and references to the articles it cites."""

    answer: Answer
    pages: render.AnswerPages
    shown: ShownAnswer
    article_refs: tuple[int, ...]


def question_from_message(content: str, bot_id: int) -> str:
    """The message text without the bot's own mention(s)."""
    return " ".join(re.sub(rf"<@!?{bot_id}>", " ", content).split())


def question_from_text(text: str, settings: SearchSettings) -> str:
    """Someone else's message as a question ("Find sources"): too long is cut, not refused.

    The cut falls at a word boundary within ``max_question_chars``; empty text is still
    a BadQuestionError.
    """
    text = " ".join(text.split())
    limit = settings.max_question_chars
    if len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = cut[:space] if space > limit // 2 else cut
    return check_question(text, settings)


def follow_up_query(opening: str, previous: str, text: str, limit: int) -> str:
    """A thread follow-up with the thread's earlier questions as context.

    The question that opened the thread names the topic; the previous follow-up (when
    there was one) carries what the conversation was just about. When all of it does not
    fit in ``limit`` characters, the previous follow-up goes first, then the opening
    question is shortened from its end; the follow-up itself is always kept whole.
    """
    context = [opening] + ([previous] if previous and previous != opening else [])
    while context:
        query = " ".join([*context, text])
        if len(query) <= limit:
            return query
        if len(context) > 1:
            context.pop()
            continue
        room = limit - len(text) - 1
        if room < 20:
            return text
        return f"{render.shorten(opening, room)} {text}"
    return text


class Answerer:
    """Answers questions, records what was shown, and recalls an answer for a button.

    Recent answers are cached with the index generation they came from, so turning pages
    does not search again; after a swap to a newer index, an answer is recomputed. An
    answer is recalled only from the corpus it came from, and only where that corpus
    answers: a button never shows another corpus's articles.
    """

    def __init__(self, corpora: BotCorpora, store: BotStore, *, cache_size: int = 256) -> None:
        self.corpora = corpora
        self.store = store
        self._cache: OrderedDict[int, tuple[str, int, AnswerResult]] = OrderedDict()
        self._cache_size = cache_size

    async def ask(
        self,
        question: str,
        asker: Asker,
        *,
        k: int | None = None,
        offset: int = 0,
        asked: str | None = None,
        filters: SearchFilter | None = None,
    ) -> AnswerResult:
        async with self.corpora.use(asker.corpus) as holder:
            generation = holder.generation
            metrics.surface.set("discord")  # the library counts the question as the bot's
            answer = await holder.search(question, k, offset, filters)
        assert asker.corpus is not None  # use() refuses None
        logger.info(
            "answered %r: %s, %d passages",
            question[:80],
            "covered" if answer.answered else "not covered",
            len(answer.passages),
        )
        shown = await asyncio.to_thread(
            self.store.add_answer,
            answer,
            asked=asked or question,
            k=k,
            user_id=asker.user_id,
            private=asker.private,
            guild_id=asker.guild_id,
            channel_id=asker.channel_id,
            filters=filters,
            corpus=asker.corpus,
        )
        result = await self._result(answer, shown)
        self._remember(shown.id, asker.corpus, generation, result)
        return result

    async def recall(self, answer_id: int, corpus: str | None) -> AnswerResult | None:
        """The answer behind a button clicked where ``corpus`` answers, recomputed from the
        store if not cached; None if unknown or from another corpus."""
        shown = await self.shown(answer_id, corpus)
        if shown is None or corpus is None:
            return None
        async with self.corpora.use(corpus) as holder:
            generation = holder.generation
            cached = self._cache.get(answer_id)
            if cached is not None and cached[:2] == (corpus, generation):
                self._cache.move_to_end(answer_id)
                return cached[2]
            metrics.surface.set("discord")
            answer = await holder.search(shown.question, shown.k, shown.offset, shown.filters)
        result = await self._result(answer, shown)
        self._remember(answer_id, corpus, generation, result)
        return result

    async def shown(self, answer_id: int, corpus: str | None) -> ShownAnswer | None:
        """What the store kept of an answer (no search); None if unknown, or if it came
        from another corpus than ``corpus`` (the one answering where the button is)."""
        shown = await asyncio.to_thread(self.store.answer, answer_id)
        if shown is None or shown.corpus != corpus:
            return None
        return shown

    async def _result(self, answer: Answer, shown: ShownAnswer) -> AnswerResult:
        pages = render.answer_pages(answer)
        cited = [ref.id for ref in pages.cited[:ARTICLE_BUTTONS]]
        refs = await asyncio.to_thread(self.store.article_refs, cited, shown.corpus)
        return AnswerResult(answer, pages, shown, tuple(refs))

    async def more(self, shown: ShownAnswer, asker: Asker) -> AnswerResult:
        """The next results after ``shown``, as many as it showed."""
        return await self.ask(
            shown.question,
            asker,
            k=len(shown.passages) or shown.k,
            offset=shown.offset + len(shown.passages),
            asked=shown.asked,
            filters=shown.filters,
        )

    def _remember(self, answer_id: int, corpus: str, generation: int, result: AnswerResult) -> None:
        self._cache[answer_id] = (corpus, generation, result)
        self._cache.move_to_end(answer_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def private_for(shown: ShownAnswer, user_id: int) -> bool:
    """More results of someone else's answer are shown to the clicking user only."""
    return shown.private or user_id != shown.user_id


async def article_pages(holder: IndexHolder, id_or_title: str) -> tuple[str, list[discord.Embed]]:
    found = await holder.article(id_or_title)
    return found.id, render.article_pages(found)


async def sources(holder: IndexHolder) -> list[discord.Embed]:
    summaries: list[ArticleSummary] = await holder.articles()
    return render.sources_pages(summaries)


async def stats(
    holder: IndexHolder, redact: Redactor, last_sync: SyncResult | None = None
) -> discord.Embed:
    """The index's statistics, with when the sources were last read in and what that did."""
    result = last_sync or holder.last_sync
    error = public_message(result.error, redact) if result and result.error else None
    return render.stats_embed(await holder.stats(), render.sync_line(result, error))


async def suggest(holder: IndexHolder, text: str) -> list[tuple[str, str]]:
    """(name, value) autocomplete choices for article titles; value is the article id."""
    try:
        refs = await asyncio.wait_for(holder.suggest_titles(text, 25), timeout=AUTOCOMPLETE_TIMEOUT)
    except TimeoutError:
        logger.warning("title autocomplete timed out for %r", text[:50])
        return []
    return [
        (render.shorten(ref.title, CHOICE_LIMIT), ref.id)
        for ref in refs
        if 0 < len(ref.id) <= CHOICE_LIMIT
    ]


async def suggest_filter_values(
    suggest: Callable[[str, int], Awaitable[list[str]]], text: str
) -> list[str]:
    """Autocomplete values for the source and author filters (no model call)."""
    try:
        values = await asyncio.wait_for(suggest(text, 25), timeout=AUTOCOMPLETE_TIMEOUT)
    except TimeoutError:
        logger.warning("filter autocomplete timed out for %r", text[:50])
        return []
    return [v for v in values if 0 < len(v) <= CHOICE_LIMIT]


def day(text: str | None, name: str) -> date | None:
    """A date filter typed by a user; BadFilterError with an example when it names no day."""
    if text is None or not text.strip():
        return None
    found = parse_day(text)
    if found is None:
        raise BadFilterError(
            f"{name}: “{render.shorten(text, 40)}” is not a single day; write it like 2024-02-11."
        )
    return found


def search_filter(
    source: str | None, author: str | None, after: str | None, before: str | None
) -> SearchFilter | None:
    """The /ask filters as a SearchFilter, or None when none is given."""
    filters = SearchFilter(source, author, day(after, "after"), day(before, "before"))
    return filters or None


def may_administer(
    permissions: discord.Permissions, role_ids: list[int] | set[int], admin_role: int | None
) -> bool:
    """Manage Server, or the configured admin role."""
    return permissions.manage_guild or (admin_role is not None and admin_role in set(role_ids))
