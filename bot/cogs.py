"""The bot's commands, grouped by what they are about, as cog methods.

``Questions``: /ask, the "Find sources" message command, and answers to messages
(mentions, answer channels, direct messages, follow-ups in the bot's threads).
``Library``: /article, /sources, /stats. ``Admin``: /reindex, /feedback.
Errors that escape a command go to the tree's ``on_error`` (bot/app.py); buttons are in
bot/buttons.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from retrieval.errors import BadQuestionError, CitebotError
from retrieval.live import ReindexBusyError
from retrieval.search import check_question

from . import actions, render
from .actions import HINT, Asker
from .buttons import (
    FeedbackPage,
    SourcesPage,
    answer_view,
    article_view,
    dynamic_items,
    feedback_pages,
    send_answer,
    send_pages,
)
from .errors import public_message, source_name
from .replies import (
    NO_MENTIONS,
    NotAnAdministrator,
    cooldown_message,
    reply,
    report_message_error,
    send,
)

if TYPE_CHECKING:
    from retrieval.ingest import IngestReport

    from .app import CitebotClient

logger = logging.getLogger(__name__)

MAX_COUNT = 10
THREAD_NAME_LIMIT = 100
NO_TEXT = "That message has no text to look up."


class Questions(commands.Cog):
    def __init__(self, bot: CitebotClient) -> None:
        self.bot = bot
        # Context menus cannot be cog methods in discord.py; this is its documented pattern.
        self.find_sources_menu = app_commands.ContextMenu(
            name="Find sources", callback=self.find_sources
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.find_sources_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.find_sources_menu.name, type=self.find_sources_menu.type)

    @app_commands.command(
        name="ask", description="Ask a question; get cited passages from the articles."
    )
    @app_commands.describe(
        question="Your question",
        count="How many passages (1–10)",
        private="Only you see the answer",
        source="Only articles from this source: a folder, file or site (start typing)",
        author="Only articles whose author contains this (start typing)",
        after="Only articles dated on or after this day, like 2024-02-11",
        before="Only articles dated on or before this day, like 2024-02-11",
    )
    async def ask(
        self,
        interaction: discord.Interaction,
        question: str,
        count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
        private: bool = False,
        source: app_commands.Range[str, 1, 200] | None = None,
        author: app_commands.Range[str, 1, 200] | None = None,
        after: app_commands.Range[str, 1, 40] | None = None,
        before: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        # The cooldown comes first, so no reply of any kind escapes it; the cheap checks
        # (the question, the filters against the index database) answer at once;
        # everything else comes after the acknowledgement.
        wait = self.bot.cooldown.retry_after(interaction.user.id)
        if wait:
            await send(interaction, content=cooldown_message(wait))
            return
        try:
            cleaned = check_question(question, self.bot.config.search)
            filters = actions.search_filter(source, author, after, before)
            if filters:
                await self.bot.holder.check_filters(filters)
        except BadQuestionError as exc:
            await send(interaction, content=public_message(exc, self.bot.redact))
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        asker = Asker(interaction.user.id, interaction.guild_id, interaction.channel_id, private)
        result = await self.bot.answerer.ask(cleaned, asker, k=count, filters=filters)
        await send_answer(interaction, result, ephemeral=private)

    @ask.autocomplete("source")
    async def ask_source(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        values = await actions.suggest_filter_values(self.bot.holder.suggest_sources, current)
        return [app_commands.Choice(name=v, value=v) for v in values]

    @ask.autocomplete("author")
    async def ask_author(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        values = await actions.suggest_filter_values(self.bot.holder.suggest_authors, current)
        return [app_commands.Choice(name=v, value=v) for v in values]

    async def find_sources(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Right-click a message → "Find sources": its text as the question, answered privately."""
        wait = self.bot.cooldown.retry_after(interaction.user.id)
        if wait:
            await send(interaction, content=cooldown_message(wait))
            return
        text = message.content or " ".join(
            part for embed in message.embeds for part in (embed.title, embed.description) if part
        )
        try:
            question = actions.question_from_text(text, self.bot.config.search)
        except BadQuestionError:
            await send(interaction, content=NO_TEXT)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        asker = Asker(interaction.user.id, interaction.guild_id, interaction.channel_id, True)
        result = await self.bot.answerer.ask(question, asker)
        await send_answer(interaction, result, ephemeral=True)

    # -- messages ---------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot:
            return
        channel = message.channel
        # Spoken to: a mention, or a direct message. Listening: an answer channel, or a
        # thread the bot opened itself (someone else's thread needs a mention).
        spoken_to = isinstance(channel, discord.DMChannel) or any(
            u.id == me.id for u in message.mentions
        )
        own_thread = (
            self.bot.config.threads
            and isinstance(channel, discord.Thread)
            and channel.owner_id == me.id
        )
        if not (spoken_to or own_thread or channel.id in self.bot.config.channels):
            return
        try:
            await self.answer_message(message, spoken_to=spoken_to, own_thread=own_thread)
        except Exception as exc:
            await report_message_error(self.bot, message, exc)

    async def answer_message(
        self, message: discord.Message, *, spoken_to: bool, own_thread: bool
    ) -> None:
        assert self.bot.user is not None
        text = actions.question_from_message(message.content, self.bot.user.id)
        if not text and not spoken_to:
            return  # an image in an answer channel, say: not addressed to the bot
        cooldown = self.bot.cooldown
        wait = cooldown.retry_after(message.author.id)
        if wait:
            # One notice per wait, so a burst of messages does not become a burst of replies.
            if cooldown.first_refusal(message.author.id):
                await reply(message, content=cooldown_message(wait))
            return
        if not text:
            await reply(message, content=HINT)
            return
        question = check_question(text, self.bot.config.search)
        channel = message.channel
        asker = Asker(message.author.id, message.guild.id if message.guild else None, channel.id)
        answerer = self.bot.answerer
        if own_thread:
            query = await self.follow_up(channel.id, question)
            result = await answerer.ask(query, asker, asked=question)
        elif self.bot.config.threads and isinstance(channel, discord.TextChannel):
            thread = await self.open_thread(message, question)
            if thread is not None:
                result = await answerer.ask(question, replace(asker, channel_id=thread.id))
                await thread.send(
                    embed=result.pages.embeds[0],
                    view=answer_view(result),
                    allowed_mentions=NO_MENTIONS,
                )
                return
            result = await answerer.ask(question, asker)
        else:
            result = await answerer.ask(question, asker)
        await reply(message, embed=result.pages.embeds[0], view=answer_view(result))

    async def follow_up(self, thread_id: int, question: str) -> str:
        """The query for a follow-up: the question with the thread's earlier ones as context."""
        earlier = await asyncio.to_thread(self.bot.store.thread_questions, thread_id)
        if earlier is None:
            return question
        opening, latest = earlier
        limit = self.bot.config.search.max_question_chars
        return actions.follow_up_query(opening.asked, latest.asked, question, limit)

    async def open_thread(self, message: discord.Message, question: str) -> discord.Thread | None:
        try:
            return await message.create_thread(
                name=render.shorten(question, THREAD_NAME_LIMIT), auto_archive_duration=1440
            )
        except discord.HTTPException as exc:
            logger.warning(
                "could not open a thread in channel %s (%s); replying instead",
                message.channel.id,
                exc.text or exc.status,
            )
            return None


class Library(commands.Cog):
    def __init__(self, bot: CitebotClient) -> None:
        self.bot = bot

    @app_commands.command(name="article", description="Show an indexed article in full.")
    @app_commands.describe(title="The article's title (start typing to search)")
    async def article(self, interaction: discord.Interaction, title: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        article_id, pages = await actions.article_pages(self.bot.holder, title)
        (ref,) = await asyncio.to_thread(self.bot.store.article_refs, [article_id])
        await send_pages(interaction, pages, article_view(ref, 0, len(pages)))

    @article.autocomplete("title")
    async def article_title(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await actions.suggest(self.bot.holder, current)
        return [app_commands.Choice(name=name, value=value) for name, value in choices]

    @app_commands.command(name="sources", description="List the indexed articles.")
    async def sources(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        pages = await actions.sources(self.bot.holder)
        await send_pages(interaction, pages, SourcesPage.listing_view(0, len(pages)))

    @app_commands.command(name="stats", description="Index size, model and last ingest.")
    async def stats(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send(interaction, embed=await actions.stats(self.bot.holder, self.bot.redact))


async def _administrators_only(interaction: discord.Interaction[CitebotClient]) -> bool:
    """The admin commands' one check, at run time: a server may grant them to anyone."""
    if not interaction.client.may_administer(interaction):
        raise NotAnAdministrator("Manage Server or the admin role is needed")
    return True


def admin_command(*, name: str, description: str) -> Callable[[Any], Any]:
    """A command for server managers: in servers only, installed with the server, and shown
    only to members with Manage Server until a server's settings grant it to others (so
    the command checks again when run: ``_administrators_only``)."""

    def decorate(callback: Any) -> Any:
        callback = app_commands.check(_administrators_only)(callback)
        callback = app_commands.default_permissions(manage_guild=True)(callback)
        callback = app_commands.allowed_installs(guilds=True, users=False)(callback)
        callback = app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)(
            callback
        )
        return app_commands.command(name=name, description=description)(callback)

    return decorate


class Admin(commands.Cog):
    """Commands for server managers: hidden from others by default permissions, and
    checked again when run (a server may grant them to anyone in its settings)."""

    def __init__(self, bot: CitebotClient) -> None:
        self.bot = bot

    @admin_command(
        name="reindex", description="Re-read the configured articles and swap in the new index."
    )
    async def reindex(self, interaction: discord.Interaction) -> None:
        if self.bot.holder.reindexing:
            await send(interaction, content="A re-index is already running.")
            return
        await send(
            interaction, content="Re-indexing in the background; questions keep working meanwhile."
        )
        self.bot.spawn(self.reindex_and_report(interaction))

    async def reindex_and_report(self, interaction: discord.Interaction) -> None:
        embeds: list[discord.Embed] = []
        try:
            report = await self.bot.holder.reindex()
            stats = await self.bot.holder.stats()
            text = render.reindex_summary(report, stats)
            if report.skipped:
                embeds.append(render.skipped_embed(self.skipped(report)))
        except ReindexBusyError:
            text = "A re-index is already running."
        except CitebotError as exc:
            logger.warning("re-index failed: %s", exc)
            text = (
                f"Re-index failed: {public_message(exc, self.bot.redact)}"
                " The previous index is still in use."
            )
        except Exception:
            logger.exception("re-index failed")
            text = "Re-index failed; the error was logged. The previous index is still in use."
        try:
            await interaction.followup.send(
                render.shorten(text, render.CONTENT_LIMIT),
                embeds=embeds,
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException:
            logger.info("could not post the re-index result (interaction expired?): %s", text)

    @admin_command(
        name="feedback", description="What the 👍/👎 votes say: totals, questions, articles."
    )
    async def feedback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        pages = await feedback_pages(self.bot)
        await send_pages(interaction, pages, FeedbackPage.listing_view(0, len(pages)))

    def skipped(self, report: IngestReport) -> list[tuple[str, str]]:
        """Each skipped file by its name under its source, with the reason; no server paths."""
        sources = self.bot.config.sources
        return [
            (
                # A file or record is named relative to its source; a failed source by itself.
                source_name(p.where, sources)
                if Path(p.where).is_absolute()
                else f"{Path(source.root).name}/{p.where}",
                self.bot.redact(p.reason),
            )
            for source in report.sources
            for p in source.problems
        ]


async def setup(bot: CitebotClient) -> None:
    """The extension's entry point (``bot.load_extension``): the commands and the buttons."""
    for cog in (Questions(bot), Library(bot), Admin(bot)):
        await bot.add_cog(cog)
    bot.add_dynamic_items(*dynamic_items())
