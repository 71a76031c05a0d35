"""The Discord client: configuration, the command tree with its one error handler, start-up.

Everything the bot needs (index holder, store, cooldown) is built in ``bot.cli`` (or a
test) and passed in; the commands are cog methods (bot/cogs.py) and the buttons are
dynamic items (bot/buttons.py). Every send uses ``AllowedMentions.none()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from retrieval.config import SearchSettings, Settings
from retrieval.live import IndexHolder

from .actions import Answerer, may_administer
from .cooldown import Cooldown
from .errors import Redactor
from .replies import NO_MENTIONS, report_error
from .store import BotStore, state_path
from .sync import sync_commands

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
        )


def intents() -> discord.Intents:
    """Guilds (channels, permissions), guild and direct messages (mentions, answer channels,
    threads, DMs), and message content (privileged: needed to read questions in the answer
    channels and the bot's threads)."""
    return discord.Intents(guilds=True, guild_messages=True, dm_messages=True, message_content=True)


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
        holder: IndexHolder,
        store: BotStore,
        *,
        cooldown: Cooldown | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("intents", intents())
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
        self.holder = holder
        self.store = store
        self.answerer = Answerer(holder, store)
        self.cooldown = cooldown or Cooldown(config.cooldown_seconds)
        self.redact = Redactor.for_folders(config.index_dir, config.sources)
        self.synced: list[str] = []
        self._background: set[asyncio.Task[Any]] = set()

    async def setup_hook(self) -> None:
        # Loaded as an extension (by name), so the commands' module may name this class
        # without the two modules importing each other.
        await self.load_extension(COMMANDS_EXTENSION)
        if self.config.follow_seconds > 0:
            self.spawn(self.holder.follow(self.config.follow_seconds))
        if self.config.sync_seconds > 0:
            self.spawn(self.holder.sync_every(self.config.sync_seconds))
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
