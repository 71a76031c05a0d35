"""The Discord client: configuration, the command tree with its one error handler, start-up.

Everything the bot needs (corpora, store, cooldown) is built in ``bot.cli`` (or a
test) and passed in; the commands are cog methods (bot/cogs.py) and the buttons are
dynamic items (bot/buttons.py). Every send uses ``AllowedMentions.none()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from retrieval.config import DEFAULT_CORPUS, SearchSettings, Settings
from retrieval.corpora import Schedule, SharedEmbedders
from retrieval.errors import CitebotError
from retrieval.live import IndexFolder, IndexHolder

from .actions import Answerer, may_administer
from .cooldown import Cooldown
from .errors import Redactor
from .hub import BotCorpora, default_corpus
from .replies import NO_MENTIONS, report_error
from .routing import place_of
from .serverdata import ServerData, ServerSettings
from .store import BotStore, state_path
from .sync import sync_commands

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotConfig:
    """The bot's own settings, from ``Settings``."""

    channels: frozenset[int] = frozenset()
    dev_guilds: tuple[int, ...] = ()
    admin_role: int | None = None
    cooldown_seconds: float = 10.0
    threads: bool = False
    follow_seconds: float = 5.0
    # Seconds between two background syncs of the sources; 0: none.
    sync_seconds: float = 0.0
    search: SearchSettings = field(default_factory=SearchSettings)
    # Where the articles and the index live: named in re-index reports, never shown as paths.
    sources: tuple[str, ...] = ()
    index_dir: Path | None = None
    state_file: Path | None = None
    force_sync: bool = False
    # The settings the corpora are made from (server corpora, limits, routes).
    settings: Settings | None = None
    forum_channels: frozenset[int] = frozenset()
    # True, False or "auto" ([bot] message_content).
    message_content: bool | str = "auto"

    @classmethod
    def from_settings(cls, settings: Settings, *, force_sync: bool = False) -> BotConfig:
        bot = settings.bot
        return cls(
            channels=frozenset(bot.channels),
            dev_guilds=tuple(bot.dev_guilds),
            admin_role=bot.admin_role,
            cooldown_seconds=bot.cooldown_seconds,
            threads=bot.threads,
            follow_seconds=bot.follow_seconds,
            sync_seconds=bot.sync_interval_minutes * 60,
            search=settings.search,
            sources=tuple(settings.sources),
            index_dir=Path(settings.index_dir),
            state_file=state_path(settings),
            force_sync=force_sync,
            settings=settings,
            forum_channels=frozenset(bot.forum_channels),
            message_content=bot.message_content,
        )


def intents(message_content: bool = True) -> discord.Intents:
    """Guilds (channels, permissions), guild and direct messages (mentions, answer channels,
    threads, DMs), and message content (privileged: needed to read questions in the answer
    channels, forum posts and the bot's threads; without it Discord still gives the text of
    mentions, replies to the bot and DMs)."""
    return discord.Intents(
        guilds=True, guild_messages=True, dm_messages=True, message_content=message_content
    )


# Where the commands may be used: servers, the bot's DMs and group DMs; installed to a
# server or to a user. Admin commands narrow this to servers (bot/cogs.py).
EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
ANY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)


# The cogs and persistent buttons (bot/cogs.py, bot/buttons.py).
COMMANDS_EXTENSION = "bot.cogs"


class CitebotTree(app_commands.CommandTree):
    """The command tree; every error a command lets escape is reported here."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, getattr(error, "original", error))


class CitebotClient(commands.Bot):
    def __init__(
        self,
        config: BotConfig,
        corpora: BotCorpora | IndexHolder,
        store: BotStore,
        *,
        cooldown: Cooldown | None = None,
        message_content: bool | None = None,
        **options: Any,
    ) -> None:
        # Whether this connection asks for the Message Content intent (see bot.cli.run).
        if message_content is None:
            message_content = config.message_content is not False
        self.message_content = message_content
        # Why answer channels and forums are off, for /stats (None: they are on).
        self.message_content_note: str | None = (
            None if message_content else "off in the config ([bot] message_content = false)"
        )
        options.setdefault("intents", intents(message_content))
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            tree_cls=CitebotTree,
            allowed_contexts=EVERYWHERE,
            allowed_installs=ANY_INSTALL,
            allowed_mentions=NO_MENTIONS,
            **options,
        )
        self.config = config
        if isinstance(corpora, IndexHolder):
            # One index, as before corpora: it is the corpus "default", answering everywhere.
            holder, corpora = corpora, single_corpus(config, corpora, store)
            self.holder: IndexHolder | None = holder
        else:
            self.holder = None
        self.corpora = corpora
        self.store = store
        self.answerer = Answerer(corpora, store)
        self.cooldown = cooldown or Cooldown(config.cooldown_seconds)
        # Paths of every corpus and of the bot's own data are never shown to a user.
        settings = corpora.settings
        folders = [
            *(source for corpus in settings.corpus_list() for source in corpus.sources),
            *(str(corpus.index_dir) for corpus in settings.corpus_list()),
            *([settings.bot.data_dir] if settings.bot.data_dir else []),
        ]
        self.redact = Redactor.for_folders(config.index_dir, [*config.sources, *folders])
        self.synced: list[str] = []
        self._background: set[asyncio.Task[Any]] = set()

    async def setup_hook(self) -> None:
        # Loaded as an extension (by name), so the commands' module may name this class
        # without the two modules importing each other.
        await self.load_extension(COMMANDS_EXTENSION)
        schedule = Schedule(
            self.corpora.registry,
            self.corpora.names,
            sync=self.corpora.sync,
            follow_seconds=self.config.follow_seconds,
            sync_seconds=self.config.sync_seconds,
        )
        # The schedule's turn: the shortest of its periods, within a minute.
        periods = [
            p
            for p in (
                self.config.follow_seconds,
                self.config.sync_seconds,
                self.corpora.registry.idle_seconds,
            )
            if p > 0
        ]
        if periods:
            self.spawn(schedule.run(min(60.0, *periods)))
        if self.corpora.settings.bot.server_corpora:
            self.spawn(self.delete_expired_corpora())
        if not self.message_content:
            logger.warning(
                "no Message Content intent (%s): answer channels and forum channels are off;"
                " slash commands, Find sources, mentions, replies and DMs still work",
                self.message_content_note,
            )
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

    # -- where: the corpus and the server's settings ---------------------------------------

    def corpus_at(self, guild_id: int | None, channel: Any) -> str | None:
        """The corpus answering in ``channel`` of server ``guild_id`` (None: no corpus)."""
        return self.corpora.corpus_for(place_of(guild_id, channel))

    def server_settings(self, guild_id: int | None) -> ServerSettings:
        if guild_id is None:
            return ServerSettings()
        return self.corpora.data.server_settings(guild_id)

    def answer_channels(self, guild_id: int | None) -> frozenset[int]:
        chosen = self.server_settings(guild_id).channels
        return self.config.channels if chosen is None else frozenset(chosen)

    def forum_channels(self, guild_id: int | None) -> frozenset[int]:
        chosen = self.server_settings(guild_id).forum_channels
        return self.config.forum_channels if chosen is None else frozenset(chosen)

    def threads(self, guild_id: int | None) -> bool:
        chosen = self.server_settings(guild_id).threads
        return self.config.threads if chosen is None else chosen

    def may_ask(self, guild_id: int | None, member: Any) -> bool:
        """Whether the server's "roles that may ask" (default everyone) include ``member``."""
        roles = self.server_settings(guild_id).ask_roles
        if not roles:
            return True
        have = {r.id for r in getattr(member, "roles", [])}
        return bool(have & set(roles))

    async def delete_expired_corpora(self, every: float = 3600.0) -> None:
        """Hourly, until cancelled: delete the corpora of servers left long enough ago."""
        while True:
            try:
                await self.corpora.delete_expired()
            except Exception:
                logger.exception("could not delete the corpora of servers the bot left")
            await asyncio.sleep(every)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.corpora.left_server(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.corpora.joined_server(guild.id)

    def message_content_line(self) -> str:
        if self.message_content:
            return "on: answer channels and forum channels work"
        return f"off ({self.message_content_note}): answer channels and forum channels are off"

    def may_administer(self, interaction: discord.Interaction) -> bool:
        """Manage Server, or the configured admin role; a refusal is logged."""
        roles = {r.id for r in getattr(interaction.user, "roles", [])}
        allowed = may_administer(interaction.permissions, roles, self.config.admin_role)
        if not allowed:
            name = interaction.command.name if interaction.command else "a button"
            logger.info("refused %s to user %s", name, interaction.user.id)
        return allowed

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions in messages are answered by the Questions cog."""

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await super().close()


def single_corpus(config: BotConfig, holder: IndexHolder, store: BotStore) -> BotCorpora:
    """The corpora of a bot given one open index: "default", answering everywhere."""
    settings = config.settings or Settings()
    folder = holder.source

    def model(_settings: Settings) -> Embedder:
        if not isinstance(folder, IndexFolder):  # a test's stand-in index: one corpus only
            raise CitebotError("no other corpus can be opened")
        return folder.make_ingest_embedder()

    corpora = BotCorpora(settings, ServerData(store.path), SharedEmbedders(model), model)
    corpora.registry.adopt(default_corpus(settings) or DEFAULT_CORPUS, holder)
    return corpora
