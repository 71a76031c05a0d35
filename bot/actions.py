"""What each command does, as plain async functions over the index holder (no Discord objects).

The Discord layer (bot/app.py) is a thin shim that acknowledges, calls these, and sends.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import discord

from retrieval.records import Answer

from . import render
from .services import IndexHolder

logger = logging.getLogger(__name__)

# Autocomplete must answer within Discord's 3 s; a busy index gets no suggestions rather than an error.
AUTOCOMPLETE_TIMEOUT = 2.0
CHOICE_LIMIT = 100

HINT = (
    "Ask me a question after the mention, e.g. `@citebot how do libraries lend tools?` "
    "— or use `/ask`."
)


@dataclass(frozen=True)
class AnswerResult:
    answer: Answer
    pages: render.AnswerPages


def question_from_message(content: str, bot_id: int) -> str:
    """The message text without the bot's own mention(s)."""
    return " ".join(re.sub(rf"<@!?{bot_id}>", " ", content).split())


async def ask(
    holder: IndexHolder, question: str, count: int | None, offset: int = 0
) -> AnswerResult:
    answer: Answer = await holder.call("search", question, count, offset)
    logger.info(
        "answered %r: %s, %d passages",
        question[:80],
        "covered" if answer.answered else "not covered",
        len(answer.passages),
    )
    return AnswerResult(answer, render.answer_pages(answer))


async def article(holder: IndexHolder, id_or_title: str) -> list[discord.Embed]:
    found = await holder.call("article", id_or_title)
    return render.article_pages(found)


async def sources(holder: IndexHolder) -> list[discord.Embed]:
    return render.sources_pages(await holder.call("articles"))


async def stats(holder: IndexHolder) -> discord.Embed:
    return render.stats_embed(await holder.call("stats"))


async def suggest(holder: IndexHolder, text: str) -> list[tuple[str, str]]:
    """(name, value) autocomplete choices for article titles; value is the article id."""
    try:
        refs = await asyncio.wait_for(
            holder.call("suggest_titles", text, 25), timeout=AUTOCOMPLETE_TIMEOUT
        )
    except TimeoutError:
        logger.warning("title autocomplete timed out for %r", text[:50])
        return []
    return [
        (render.shorten(ref.title, CHOICE_LIMIT), ref.id)
        for ref in refs
        if 0 < len(ref.id) <= CHOICE_LIMIT
    ]


def may_administer(
    permissions: discord.Permissions, role_ids: list[int] | set[int], admin_role: int | None
) -> bool:
    """Manage Server, or the configured admin role."""
    return permissions.manage_guild or (admin_role is not None and admin_role in set(role_ids))
