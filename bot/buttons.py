"""Buttons that last: each custom id carries what is needed to recompute its page.

Every button is a ``DynamicItem``: discord.py matches a click's custom id against the
templates below whenever it arrives, so buttons keep working after a restart and after
the original interaction's token has expired. A click answers with its own, fresh
response (editing the message it is on, or sending a new one); nothing is kept in memory
per message. Answers are referenced by their id in the bot's store, articles by a short
reference (article ids can be longer than a custom id allows).

Custom ids (at most 100 characters)::

    citebot:answer:<answer id>:<page>        turn an answer's pages (the asker only)
    citebot:more:<answer id>                 the next results (counts as a question)
    citebot:article:<ref>:<page>[:<n>]       an article's page; with n, from answer button 📄 n
    citebot:sources:<page>                   the list of articles
    citebot:vote:<answer id>:<up|down>       feedback
    citebot:feedback:<page>                  the feedback report (admins)
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import discord

from retrieval import metrics

from . import actions, render
from .actions import AnswerResult, Asker
from .feedback import feedback_report
from .replies import GONE, NO_MENTIONS, REFUSED, cooldown_message, report_error, send
from .store import Vote

if TYPE_CHECKING:
    from .app import CitebotClient

logger = logging.getLogger(__name__)

Button = discord.ui.Button[discord.ui.View]


def _client(interaction: discord.Interaction) -> CitebotClient:
    return cast("CitebotClient", interaction.client)


def _corpus(interaction: discord.Interaction) -> str | None:
    """The corpus answering where the button was clicked: a button recalls only from it."""
    return _client(interaction).corpus_at(interaction.guild_id, interaction.channel)


class _Handled:
    """Routes a button's errors to the one error reporter (discord.py would only log them)."""

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await self.handle(interaction)
        except Exception as exc:
            await report_error(interaction, exc)

    async def handle(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


def _button(
    custom_id: str,
    label: str,
    *,
    style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    disabled: bool = False,
) -> Button:
    return discord.ui.Button(label=label, style=style, custom_id=custom_id, disabled=disabled)


# -- answers ---------------------------------------------------------------------------------


class AnswerPage(
    _Handled,
    discord.ui.DynamicItem[Button],
    template=r"citebot:answer:(?P<answer>\d+):(?P<page>\d+)",
):
    def __init__(self, answer_id: int, page: int, label: str, *, disabled: bool = False) -> None:
        super().__init__(
            _button(f"citebot:answer:{answer_id}:{page}", label, disabled=disabled), row=0
        )
        self.answer_id = answer_id
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["answer"]), int(match["page"]), cast(Button, item).label or "")

    async def handle(self, interaction: discord.Interaction) -> None:
        result = await _client(interaction).answerer.recall(self.answer_id, _corpus(interaction))
        if result is None:
            await send(interaction, content=GONE)
            return
        if interaction.user.id != result.shown.user_id:
            await send(interaction, content="Only the person who asked can turn these pages.")
            return
        page = min(self.page, len(result.pages.embeds) - 1)
        await interaction.response.edit_message(
            embed=result.pages.embeds[page],
            view=answer_view(result, page),
            allowed_mentions=NO_MENTIONS,
        )


class MoreResults(
    _Handled, discord.ui.DynamicItem[Button], template=r"citebot:more:(?P<answer>\d+)"
):
    """The next results. Anyone may click; it counts as a question against the clicking
    user's cooldown. The asker's results are posted like the answer (publicly if it was);
    anyone else gets theirs privately."""

    def __init__(self, answer_id: int) -> None:
        super().__init__(
            _button(f"citebot:more:{answer_id}", "More results", style=discord.ButtonStyle.primary),
            row=0,
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["answer"]))

    async def handle(self, interaction: discord.Interaction) -> None:
        client = _client(interaction)
        corpus = _corpus(interaction)
        shown = await client.answerer.shown(self.answer_id, corpus)
        if shown is None:
            await send(interaction, content=GONE)
            return
        wait = client.cooldown.retry_after(interaction.user.id)
        if wait:
            await send(interaction, content=cooldown_message(wait))
            return
        private = actions.private_for(shown, interaction.user.id)
        await interaction.response.defer(ephemeral=private, thinking=True)
        asker = Asker(
            interaction.user.id, interaction.guild_id, interaction.channel_id, private, corpus
        )
        result = await client.answerer.more(shown, asker)
        await send_answer(interaction, result, ephemeral=private)


class VoteButton(
    _Handled,
    discord.ui.DynamicItem[Button],
    template=r"citebot:vote:(?P<answer>\d+):(?P<vote>up|down)",
):
    """👍/👎: one vote per user and answer message; a second click replaces the first."""

    def __init__(self, answer_id: int, up: bool) -> None:
        style = discord.ButtonStyle.success if up else discord.ButtonStyle.danger
        custom_id = f"citebot:vote:{answer_id}:{'up' if up else 'down'}"
        super().__init__(_button(custom_id, "👍" if up else "👎", style=style), row=2)
        self.answer_id = answer_id
        self.up = up

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["answer"]), match["vote"] == "up")

    async def handle(self, interaction: discord.Interaction) -> None:
        client = _client(interaction)
        shown = await client.answerer.shown(self.answer_id, _corpus(interaction))
        if shown is None:
            await send(interaction, content=GONE)
            return
        message = interaction.message
        vote = Vote(
            message_id=message.id if message else 0,
            user_id=interaction.user.id,
            question=shown.question,
            vote=1 if self.up else -1,
            chunk_ids=shown.chunk_ids,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            answer_id=shown.id,
        )
        await asyncio.to_thread(client.store.record, vote)
        metrics.feedback("up" if self.up else "down")
        await send(
            interaction, content="Thanks for the feedback!" if self.up else "Thanks — noted."
        )


def answer_view(result: AnswerResult, page: int = 0) -> discord.ui.View:
    """Pages, More results, each cited article, and 👍/👎 for one answer's page."""
    view = discord.ui.View(timeout=None)
    answer_id = result.shown.id
    count = len(result.pages.embeds)
    if count > 1:
        view.add_item(AnswerPage(answer_id, max(0, page - 1), "◀ Prev", disabled=page == 0))
        view.add_item(AnswerPage(answer_id, page + 1, "Next ▶", disabled=page >= count - 1))
    answer = result.answer
    if answer.answered and answer.passages:
        view.add_item(MoreResults(answer_id))
    for number, ref in enumerate(result.article_refs, start=1):
        view.add_item(ArticlePage(ref, 0, f"📄 {number}", number=number, row=1))
    if answer.passages:
        view.add_item(VoteButton(answer_id, True))
        view.add_item(VoteButton(answer_id, False))
    return view


async def send_answer(
    interaction: discord.Interaction, result: AnswerResult, *, ephemeral: bool
) -> None:
    filters = result.shown.filters
    # The filters stay in the message's text, so a page turn (which edits embeds) keeps them.
    text = {"content": render.filters_line(filters)} if filters else {}
    await send(
        interaction,
        embed=result.pages.embeds[0],
        view=answer_view(result),
        ephemeral=ephemeral,
        **text,
    )


# -- articles, sources and other listings ------------------------------------------------------


def _nav(
    make: Callable[[int, str, bool], discord.ui.Item[Any]], page: int, total: int
) -> list[discord.ui.Item[Any]]:
    if total <= 1:
        return []
    return [
        make(max(0, page - 1), "◀ Prev", page == 0),
        make(page + 1, "Next ▶", page >= total - 1),
    ]


def paged_view(
    make: Callable[[int, str, bool], discord.ui.Item[Any]], page: int, total: int
) -> discord.ui.View | None:
    items = _nav(make, page, total)
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


class ArticlePage(
    _Handled,
    discord.ui.DynamicItem[Button],
    template=r"citebot:article:(?P<ref>\d+):(?P<page>\d+)(?::(?P<number>\d+))?",
):
    """An article's page. From an answer (📄 n) it opens privately; within the article's own
    message it turns the page in place."""

    def __init__(
        self,
        ref: int,
        page: int,
        label: str,
        *,
        number: int | None = None,
        disabled: bool = False,
        row: int | None = None,
    ) -> None:
        suffix = f":{number}" if number is not None else ""
        super().__init__(
            _button(f"citebot:article:{ref}:{page}{suffix}", label, disabled=disabled), row=row
        )
        self.ref = ref
        self.page = page
        self.from_answer = number is not None

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        number = int(match["number"]) if match["number"] else None
        return cls(int(match["ref"]), int(match["page"]), "", number=number)

    async def handle(self, interaction: discord.Interaction) -> None:
        client = _client(interaction)
        corpus = _corpus(interaction)
        article_id = (
            await asyncio.to_thread(client.store.article_id, self.ref, corpus) if corpus else None
        )
        if article_id is None:
            await send(interaction, content="That article is no longer available.")
            return
        if self.from_answer:
            await interaction.response.defer(ephemeral=True, thinking=True)
        async with client.corpora.use(corpus) as holder:
            _, pages = await actions.article_pages(holder, article_id)
        page = min(self.page, len(pages) - 1)
        view = article_view(self.ref, page, len(pages))
        if self.from_answer:
            await send(interaction, embed=pages[page], **_with(view))
        else:
            await interaction.response.edit_message(
                embed=pages[page], view=view, allowed_mentions=NO_MENTIONS
            )


def article_view(ref: int, page: int, total: int) -> discord.ui.View | None:
    return paged_view(
        lambda target, label, disabled: ArticlePage(ref, target, label, disabled=disabled),
        page,
        total,
    )


class _ListingPage(_Handled):
    """A page of a listing (custom id ``<PREFIX>:<page>``), turned in place."""

    PREFIX: ClassVar[str]

    def __init__(self, page: int, label: str, *, disabled: bool = False) -> None:
        # The next class in the MRO is the DynamicItem the subclass also derives from.
        super().__init__(_button(f"{self.PREFIX}:{page}", label, disabled=disabled))  # type: ignore[call-arg]
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["page"]), "")

    @classmethod
    def listing_view(cls, page: int, total: int) -> discord.ui.View | None:
        """The page buttons. (Not ``view``: that is the Item's own view, which discord.py sets.)"""

        def make(target: int, label: str, disabled: bool) -> discord.ui.Item[Any]:
            # Each subclass is a DynamicItem too (see __init__).
            return cast("discord.ui.Item[Any]", cls(target, label, disabled=disabled))

        return paged_view(make, page, total)

    async def pages(self, interaction: discord.Interaction) -> list[discord.Embed] | None:
        """The listing's pages; None when the user may not see them (already answered)."""
        raise NotImplementedError

    async def handle(self, interaction: discord.Interaction) -> None:
        pages = await self.pages(interaction)
        if pages is None:
            return
        page = min(self.page, len(pages) - 1)
        await interaction.response.edit_message(
            embed=pages[page],
            view=self.listing_view(page, len(pages)),
            allowed_mentions=NO_MENTIONS,
        )


class SourcesPage(
    _ListingPage, discord.ui.DynamicItem[Button], template=r"citebot:sources:(?P<page>\d+)"
):
    PREFIX = "citebot:sources"

    async def pages(self, interaction: discord.Interaction) -> list[discord.Embed]:
        async with _client(interaction).corpora.use(_corpus(interaction)) as holder:
            return await actions.sources(holder)


class FeedbackPage(
    _ListingPage, discord.ui.DynamicItem[Button], template=r"citebot:feedback:(?P<page>\d+)"
):
    PREFIX = "citebot:feedback"

    async def pages(self, interaction: discord.Interaction) -> list[discord.Embed] | None:
        client = _client(interaction)
        if not client.may_administer(interaction):
            await send(interaction, content=REFUSED)
            return None
        return await feedback_pages(client, _corpus(interaction))


async def feedback_pages(client: CitebotClient, corpus: str | None) -> list[discord.Embed]:
    """The votes on the answers of ``corpus`` (the one answering where it is asked)."""
    report = await asyncio.to_thread(feedback_report, client.store, corpus=corpus or "")
    return render.feedback_pages(report)


def _with(view: discord.ui.View | None) -> dict[str, Any]:
    """``view=...`` only when there is one (discord.py rejects ``view=None`` on sends)."""
    return {"view": view} if view is not None else {}


async def send_pages(
    interaction: discord.Interaction,
    pages: Sequence[discord.Embed],
    view: discord.ui.View | None,
    *,
    ephemeral: bool = True,
) -> None:
    await send(interaction, embed=pages[0], ephemeral=ephemeral, **_with(view))


def dynamic_items() -> tuple[type[discord.ui.DynamicItem[Any]], ...]:
    """Every button class, for ``Client.add_dynamic_items`` at start."""
    return (AnswerPage, MoreResults, VoteButton, ArticlePage, SourcesPage, FeedbackPage)
