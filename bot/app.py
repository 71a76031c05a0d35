"""The Discord layer: client, slash commands, channel answers and buttons.

Everything the bot needs is built in ``bot.cli`` (or a test) and passed in; commands are
thin shims over ``bot.actions``. Every send uses ``AllowedMentions.none()``; every error
becomes a short ephemeral message plus a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from retrieval.config import SearchSettings, Settings
from retrieval.errors import CitebotError
from retrieval.search import check_question

from . import actions, render
from .services import Cooldown, FeedbackStore, IndexHolder, ReindexBusyError, Vote, state_path
from .sync import sync_commands

logger = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
GENERIC_ERROR = "Sorry, something went wrong while handling that. The error was logged."
# Interaction tokens last 15 minutes; buttons on interaction messages stop a little before.
VIEW_TIMEOUT = 14 * 60
MAX_COUNT = 10
ARTICLE_BUTTONS = 5


@dataclass(frozen=True)
class BotConfig:
    """The bot's own settings, from ``Settings.bot`` plus defaults for keys not yet in config.py."""

    channels: frozenset[int] = frozenset()
    dev_guilds: tuple[int, ...] = ()
    admin_role: int | None = None
    cooldown_seconds: float = 10.0
    search: SearchSettings = field(default_factory=SearchSettings)
    state_file: Path | None = None
    force_sync: bool = False
    view_timeout: float = VIEW_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings, *, force_sync: bool = False) -> BotConfig:
        bot = settings.bot
        return cls(
            channels=frozenset(bot.channels),
            dev_guilds=tuple(bot.dev_guilds),
            admin_role=bot.admin_role,
            cooldown_seconds=bot.cooldown_seconds,
            search=settings.search,
            state_file=state_path(settings),
            force_sync=force_sync,
        )


def intents() -> discord.Intents:
    """Guilds (channels, permissions), guild messages (mentions, answer channels), and message
    content (privileged: needed to read questions in the configured answer channels)."""
    return discord.Intents(guilds=True, guild_messages=True, message_content=True)


def cooldown_message(seconds: float) -> str:
    return (
        f"You're asking quickly — please wait {max(1, round(seconds))} s before the next question."
    )


class CitebotClient(discord.Client):
    def __init__(
        self,
        config: BotConfig,
        holder: IndexHolder,
        feedback: FeedbackStore,
        *,
        cooldown: Cooldown | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("intents", intents())
        super().__init__(allowed_mentions=NO_MENTIONS, **options)
        self.config = config
        self.holder = holder
        self.feedback = feedback
        self.cooldown = cooldown or Cooldown(config.cooldown_seconds)
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        self.synced: list[str] = []
        self._background: set[asyncio.Task[Any]] = set()
        register_commands(self.tree, self)

    async def setup_hook(self) -> None:
        state = self.config.state_file
        if state is None or self.application_id is None:
            logger.warning("no state file or application id; slash commands not synced")
            return
        self.synced = await sync_commands(
            self.tree,
            self.application_id,
            self.config.dev_guilds,
            state,
            force=self.config.force_sync,
        )

    async def on_ready(self) -> None:
        logger.info(
            "connected as %s (id %s) to %d guilds",
            self.user,
            self.user and self.user.id,
            len(self.guilds),
        )

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- errors ------------------------------------------------------------------------

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        await report_error(interaction, original)

    # -- channel messages --------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        mentioned = any(u.id == me.id for u in message.mentions)
        in_channel = message.channel.id in self.config.channels
        if not (mentioned or in_channel):
            return
        try:
            await self.answer_message(message, mentioned)
        except Exception as exc:
            await report_message_error(message, exc)

    async def answer_message(self, message: discord.Message, mentioned: bool) -> None:
        assert self.user is not None
        text = actions.question_from_message(message.content, self.user.id)
        if not text:
            if mentioned:
                await reply(message, content=actions.HINT)
            return
        question = check_question(text, self.config.search)
        wait = self.cooldown.retry_after(message.author.id)
        if wait:
            await reply(message, content=cooldown_message(wait))
            return
        result = await actions.ask(self.holder, question, None)
        view = AnswerView(self, result, asker_id=message.author.id, private=False)
        view.message = await reply(message, embed=result.pages.embeds[0], view=view)


# -- sending -----------------------------------------------------------------------------


async def reply(message: discord.Message, **kwargs: Any) -> discord.Message:
    return await message.reply(mention_author=False, allowed_mentions=NO_MENTIONS, **kwargs)


async def send(interaction: discord.Interaction, *, ephemeral: bool = True, **kwargs: Any) -> Any:
    """Respond, or follow up when already acknowledged; returns the message when known."""
    kwargs.setdefault("allowed_mentions", NO_MENTIONS)
    if not interaction.response.is_done():
        await interaction.response.send_message(ephemeral=ephemeral, **kwargs)
        return await interaction.original_response() if "view" in kwargs else None
    return await interaction.followup.send(ephemeral=ephemeral, wait=True, **kwargs)


def user_message(error: BaseException) -> str:
    if isinstance(error, CitebotError):
        return str(error)[: render.CONTENT_LIMIT]
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return GENERIC_ERROR


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    if isinstance(error, CitebotError):
        logger.info("user error in %s: %s", _where(interaction), error)
    else:
        logger.error("error in %s", _where(interaction), exc_info=error)
    try:
        await send(interaction, content=user_message(error), ephemeral=True)
    except discord.HTTPException:
        logger.exception("could not report an error to the user")


async def report_message_error(message: discord.Message, error: BaseException) -> None:
    if isinstance(error, CitebotError):
        logger.info("user error in message %s: %s", message.id, error)
    else:
        logger.error("error answering message %s", message.id, exc_info=error)
    try:
        await reply(message, content=user_message(error))
    except discord.HTTPException:
        logger.exception("could not report an error to the user")


def _where(interaction: discord.Interaction) -> str:
    name = interaction.command.qualified_name if interaction.command else "component"
    return f"/{name} by user {interaction.user.id}"


# -- views -------------------------------------------------------------------------------


class PagedView(discord.ui.View):
    """Prev/next over a list of embeds; only the person it was made for may turn pages."""

    def __init__(self, pages: Sequence[discord.Embed], owner_id: int, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.pages = list(pages)
        self.owner_id = owner_id
        self.index = 0
        self.message: discord.Message | discord.WebhookMessage | None = None
        if len(self.pages) > 1:
            self.prev_button = self._button("◀ Prev", "prev", self.prev_page, row=0, disabled=True)
            self.next_button = self._button("Next ▶", "next", self.next_page, row=0)

    def _button(
        self,
        label: str,
        key: str,
        callback: Callable[[discord.Interaction], Awaitable[None]],
        *,
        row: int,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        disabled: bool = False,
    ) -> discord.ui.Button[Any]:
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=label,
            style=style,
            row=row,
            disabled=disabled,
            custom_id=f"citebot:{key}:{id(self)}",
        )
        button.callback = callback  # type: ignore[method-assign]
        self.add_item(button)
        return button

    async def _turn(self, interaction: discord.Interaction, step: int) -> None:
        if interaction.user.id != self.owner_id:
            await send(interaction, content="Only the person who asked can turn these pages.")
            return
        self.index = max(0, min(len(self.pages) - 1, self.index + step))
        self.prev_button.disabled = self.index == 0
        self.next_button.disabled = self.index == len(self.pages) - 1
        await interaction.response.edit_message(
            embed=self.pages[self.index], view=self, allowed_mentions=NO_MENTIONS
        )

    async def prev_page(self, interaction: discord.Interaction) -> None:
        await self._turn(interaction, -1)

    async def next_page(self, interaction: discord.Interaction) -> None:
        await self._turn(interaction, +1)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                logger.debug("could not disable the buttons of an expired view")

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error)


class AnswerView(PagedView):
    """An answer's buttons: pages, next results, each cited article, and 👍/👎."""

    def __init__(
        self, client: CitebotClient, result: actions.AnswerResult, *, asker_id: int, private: bool
    ) -> None:
        super().__init__(result.pages.embeds, asker_id, client.config.view_timeout)
        self.client = client
        self.result = result
        self.private = private
        answer = result.answer
        if answer.answered and answer.passages:
            self._button(
                "More results", "more", self.more_results, row=0, style=discord.ButtonStyle.primary
            )
        for number, ref in enumerate(result.pages.cited[:ARTICLE_BUTTONS], start=1):
            self._button(f"📄 {number}", f"article{number}", self._show_article(ref.id), row=1)
        if answer.passages:
            self._button("👍", "up", self._vote(+1), row=2, style=discord.ButtonStyle.success)
            self._button("👎", "down", self._vote(-1), row=2, style=discord.ButtonStyle.danger)

    async def more_results(self, interaction: discord.Interaction) -> None:
        answer = self.result.answer
        private = self.private or interaction.user.id != self.owner_id
        await interaction.response.defer(ephemeral=private, thinking=True)
        count = len(answer.passages)
        result = await actions.ask(
            self.client.holder, answer.question, count, answer.offset + count
        )
        view = AnswerView(self.client, result, asker_id=interaction.user.id, private=private)
        view.message = await send(
            interaction, embed=result.pages.embeds[0], view=view, ephemeral=private
        )

    def _show_article(self, article_id: str) -> Callable[[discord.Interaction], Awaitable[None]]:
        async def show(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            pages = await actions.article(self.client.holder, article_id)
            view = PagedView(pages, interaction.user.id, self.client.config.view_timeout)
            view.message = await send(interaction, embed=pages[0], view=view)

        return show

    def _vote(self, value: int) -> Callable[[discord.Interaction], Awaitable[None]]:
        async def vote(interaction: discord.Interaction) -> None:
            message = interaction.message
            record = Vote(
                message_id=message.id if message else 0,
                user_id=interaction.user.id,
                question=self.result.answer.question,
                vote=value,
                chunk_ids=self.result.pages.chunk_ids,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
            )
            await asyncio.to_thread(self.client.feedback.record, record)
            await send(
                interaction, content="Thanks for the feedback!" if value > 0 else "Thanks — noted."
            )

        return vote


# -- slash commands ----------------------------------------------------------------------


def register_commands(tree: app_commands.CommandTree, client: CitebotClient) -> None:
    """Define the slash commands as closures over ``client`` (no globals).

    They read ``client.config`` when they run, so a changed config applies at once.
    """

    @tree.command(name="ask", description="Ask a question; get cited passages from the articles.")
    @app_commands.describe(
        question="Your question",
        count="How many passages (1–10)",
        private="Only you see the answer",
    )
    async def ask(
        interaction: discord.Interaction,
        question: str,
        count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
        private: bool = False,
    ) -> None:
        # Cheap checks answer at once; everything else comes after the acknowledgement.
        try:
            cleaned = check_question(question, client.config.search)
        except CitebotError as exc:
            await send(interaction, content=str(exc))
            return
        wait = client.cooldown.retry_after(interaction.user.id)
        if wait:
            await send(interaction, content=cooldown_message(wait))
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        result = await actions.ask(client.holder, cleaned, count)
        view = AnswerView(client, result, asker_id=interaction.user.id, private=private)
        view.message = await send(
            interaction, embed=result.pages.embeds[0], view=view, ephemeral=private
        )

    @tree.command(name="article", description="Show an indexed article in full.")
    @app_commands.describe(title="The article's title (start typing to search)")
    async def article(interaction: discord.Interaction, title: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        pages = await actions.article(client.holder, title)
        view = PagedView(pages, interaction.user.id, client.config.view_timeout)
        view.message = await send(interaction, embed=pages[0], view=view)

    @article.autocomplete("title")
    async def article_title(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await actions.suggest(client.holder, current)
        return [app_commands.Choice(name=name, value=value) for name, value in choices]

    @tree.command(name="sources", description="List the indexed articles.")
    async def sources(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        pages = await actions.sources(client.holder)
        view = PagedView(pages, interaction.user.id, client.config.view_timeout)
        view.message = await send(interaction, embed=pages[0], view=view)

    @tree.command(name="stats", description="Index size, model and last ingest.")
    async def stats(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send(interaction, embed=await actions.stats(client.holder))

    @tree.command(
        name="reindex", description="Re-read the configured articles and swap in the new index."
    )
    @app_commands.guild_only()
    async def reindex(interaction: discord.Interaction) -> None:
        member = interaction.user
        roles = {r.id for r in getattr(member, "roles", [])}
        if not actions.may_administer(interaction.permissions, roles, client.config.admin_role):
            logger.info("refused /reindex to user %s", member.id)
            await send(
                interaction,
                content="Only members with Manage Server (or the bot's admin role) may re-index.",
            )
            return
        if client.holder.reindexing:
            await send(interaction, content="A re-index is already running.")
            return
        await send(
            interaction, content="Re-indexing in the background; questions keep working meanwhile."
        )
        client.spawn(_reindex_and_report(client, interaction))


async def _reindex_and_report(client: CitebotClient, interaction: discord.Interaction) -> None:
    try:
        searcher = await client.holder.reindex()
        stats = await asyncio.to_thread(searcher.stats)
        text = f"Re-index finished: {stats.articles:,} articles, {stats.chunks:,} passages."
    except ReindexBusyError:
        text = "A re-index is already running."
    except CitebotError as exc:
        logger.warning("re-index failed: %s", exc)
        text = f"Re-index failed: {exc}"[: render.CONTENT_LIMIT]
    except Exception:
        logger.exception("re-index failed")
        text = "Re-index failed; the error was logged. The previous index is still in use."
    try:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        logger.info("could not post the re-index result (interaction expired?): %s", text)
