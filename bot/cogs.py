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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from retrieval.errors import BadQuestionError, CitebotError
from retrieval.live import ReindexBusyError
from retrieval.search import check_question

from . import actions, render
from .actions import HINT, Asker
from .admin import admin_command
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
from .hub import NO_ARTICLES, NoArticlesError
from .replies import (
    NO_MENTIONS,
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
NOT_ASKER = "In this server, only some roles may ask me questions."


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
        if not await self.may_ask_now(interaction):
            return
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        try:
            cleaned = check_question(question, self.bot.config.search)
            filters = actions.search_filter(source, author, after, before)
            async with self.bot.corpora.use(corpus) as holder:
                if filters:
                    await holder.check_filters(filters)
        except (BadQuestionError, NoArticlesError) as exc:
            await send(interaction, content=public_message(exc, self.bot.redact))
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        asker = Asker(
            interaction.user.id, interaction.guild_id, interaction.channel_id, private, corpus
        )
        result = await self.bot.answerer.ask(cleaned, asker, k=count, filters=filters)
        await send_answer(interaction, result, ephemeral=private)

    @ask.autocomplete("source")
    async def ask_source(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        values = await self.suggest_values(interaction, "suggest_sources", current)
        return [app_commands.Choice(name=v, value=v) for v in values]

    @ask.autocomplete("author")
    async def ask_author(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        values = await self.suggest_values(interaction, "suggest_authors", current)
        return [app_commands.Choice(name=v, value=v) for v in values]

    async def suggest_values(
        self, interaction: discord.Interaction, kind: str, current: str
    ) -> list[str]:
        """Filter values from the corpus of the place (none where no corpus answers)."""
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        try:
            async with self.bot.corpora.use(corpus) as holder:
                return await actions.suggest_filter_values(getattr(holder, kind), current)
        except NoArticlesError:
            return []

    async def may_ask_now(self, interaction: discord.Interaction) -> bool:
        """The server's "roles that may ask", then the asker's cooldown; a refusal is said
        privately."""
        if not self.bot.may_ask(interaction.guild_id, interaction.user):
            await send(interaction, content=NOT_ASKER)
            return False
        wait = self.bot.cooldown.retry_after(interaction.user.id)
        if wait:
            await send(interaction, content=cooldown_message(wait))
            return False
        return True

    async def find_sources(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Right-click a message → "Find sources": its text as the question, answered privately."""
        if not await self.may_ask_now(interaction):
            return
        text = message.content or " ".join(
            part for embed in message.embeds for part in (embed.title, embed.description) if part
        )
        try:
            question = actions.question_from_text(text, self.bot.config.search)
        except BadQuestionError:
            await send(interaction, content=NO_TEXT)
            return
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        if corpus is None:
            await send(interaction, content=NO_ARTICLES)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        asker = Asker(
            interaction.user.id, interaction.guild_id, interaction.channel_id, True, corpus
        )
        result = await self.bot.answerer.ask(question, asker)
        await send_answer(interaction, result, ephemeral=True)

    # -- messages ---------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot:
            return
        channel = message.channel
        guild_id = message.guild.id if message.guild else None
        # Spoken to: a mention, a reply to the bot, or a direct message. Listening (only
        # with the Message Content intent): an answer channel, a new post in a forum
        # channel, or a thread the bot opened itself (someone else's thread needs a mention).
        reference = message.reference.resolved if message.reference else None
        spoken_to = (
            isinstance(channel, discord.DMChannel)
            or any(u.id == me.id for u in message.mentions)
            or (isinstance(reference, discord.Message) and reference.author.id == me.id)
        )
        listening = self.bot.message_content
        own_thread = (
            listening
            and self.bot.threads(guild_id)
            and isinstance(channel, discord.Thread)
            and channel.owner_id == me.id
        )
        forum_post = (
            listening
            and isinstance(channel, discord.Thread)
            and channel.parent_id in self.bot.forum_channels(guild_id)
            and message.id == channel.id  # the post's first message
        )
        answer_channel = listening and channel.id in self.bot.answer_channels(guild_id)
        if not (spoken_to or own_thread or forum_post or answer_channel):
            return
        if not self.bot.may_ask(guild_id, message.author):
            return  # the server lets only some roles ask: the others are not answered
        try:
            if forum_post:
                await self.answer_forum_post(message)
            else:
                await self.answer_message(message, spoken_to=spoken_to, own_thread=own_thread)
        except Exception as exc:
            await report_message_error(self.bot, message, exc)

    async def answer_forum_post(self, message: discord.Message) -> None:
        """A new forum post: its title and first message are the question, answered in it."""
        thread = message.channel
        assert isinstance(thread, discord.Thread) and self.bot.user is not None
        text = actions.question_from_message(f"{thread.name}. {message.content}", self.bot.user.id)
        question = actions.question_from_text(text, self.bot.config.search)
        guild_id = message.guild.id if message.guild else None
        corpus = self.bot.corpus_at(guild_id, thread)
        asker = Asker(message.author.id, guild_id, thread.id, corpus=corpus)
        result = await self.bot.answerer.ask(question, asker)
        await thread.send(
            embed=result.pages.embeds[0], view=answer_view(result), allowed_mentions=NO_MENTIONS
        )

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
        guild_id = message.guild.id if message.guild else None
        corpus = self.bot.corpus_at(guild_id, channel)
        if corpus is None:
            await reply(message, content=NO_ARTICLES)
            return
        asker = Asker(message.author.id, guild_id, channel.id, corpus=corpus)
        answerer = self.bot.answerer
        if own_thread:
            query = await self.follow_up(channel.id, question)
            result = await answerer.ask(query, asker, asked=question)
        elif self.bot.threads(guild_id) and isinstance(channel, discord.TextChannel):
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
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.corpora.use(corpus) as holder:
            article_id, pages = await actions.article_pages(holder, title)
        assert corpus is not None
        (ref,) = await asyncio.to_thread(self.bot.store.article_refs, [article_id], corpus)
        await send_pages(interaction, pages, article_view(ref, 0, len(pages)))

    @article.autocomplete("title")
    async def article_title(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        try:
            async with self.bot.corpora.use(corpus) as holder:
                choices = await actions.suggest(holder, current)
        except NoArticlesError:
            return []
        return [app_commands.Choice(name=name, value=value) for name, value in choices]

    @app_commands.command(name="sources", description="List the indexed articles.")
    async def sources(self, interaction: discord.Interaction) -> None:
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.corpora.use(corpus) as holder:
            pages = await actions.sources(holder)
        await send_pages(interaction, pages, SourcesPage.listing_view(0, len(pages)))

    @app_commands.command(name="stats", description="Index size, model and last ingest.")
    async def stats(self, interaction: discord.Interaction) -> None:
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.corpora.use(corpus) as holder:
            assert corpus is not None
            embed = await actions.stats(
                holder, self.bot.redact, self.bot.corpora.last_sync.get(corpus)
            )
        render.add_corpus_fields(embed, corpus, self.bot.message_content_line())
        await send(interaction, embed=embed)


class Admin(commands.Cog):
    """Commands for server managers: hidden from others by default permissions, and
    checked again when run (a server may grant them to anyone in its settings)."""

    def __init__(self, bot: CitebotClient) -> None:
        self.bot = bot

    @admin_command(
        name="reindex", description="Re-read the configured articles and swap in the new index."
    )
    async def reindex(self, interaction: discord.Interaction) -> None:
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        if corpus is None:
            await send(interaction, content=NO_ARTICLES)
            return
        if self.bot.corpora.syncing(corpus):
            await send(interaction, content="A re-index is already running.")
            return
        await send(
            interaction, content="Re-indexing in the background; questions keep working meanwhile."
        )
        self.bot.spawn(self.reindex_and_report(interaction, corpus))

    async def reindex_and_report(self, interaction: discord.Interaction, corpus: str) -> None:
        embeds: list[discord.Embed] = []
        try:
            report = await self.bot.corpora.sync(corpus)
            async with self.bot.corpora.use(corpus) as holder:
                stats = await holder.stats()
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
        corpus = self.bot.corpus_at(interaction.guild_id, interaction.channel)
        pages = await feedback_pages(self.bot, corpus)
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
    from .library import LibraryAdmin
    from .settings import SettingsAdmin

    for cog in (Questions(bot), Library(bot), Admin(bot), LibraryAdmin(bot), SettingsAdmin(bot)):
        await bot.add_cog(cog)
    bot.add_dynamic_items(*dynamic_items())
