"""/settings: a server's admins choose where and for whom the bot answers.

Per server, kept in the bot's database and overriding the config's defaults there: the
answer channels (every message is a question), the forum channels (every new post is
answered in its thread), whether answers open threads, and the roles that may ask
(default everyone). Without an answer channel the bot answers only mentions, replies,
DMs, slash commands and "Find sources". Admin-only like /library.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from .admin import AdminGroup
from .replies import send
from .serverdata import ServerSettings

if TYPE_CHECKING:
    from .app import CitebotClient

logger = logging.getLogger(__name__)


def _toggle(current: tuple[int, ...], item: int, on: bool) -> tuple[int, ...]:
    kept = tuple(i for i in current if i != item)
    return (*kept, item) if on else kept


def _mentions(ids: tuple[int, ...], prefix: str) -> str:
    return ", ".join(f"<{prefix}{i}>" for i in ids) or "none"


class SettingsAdmin(commands.Cog):
    settings = AdminGroup(
        name="settings",
        description="Where and for whom the bot answers in this server (admins).",
    )

    def __init__(self, bot: CitebotClient) -> None:
        self.bot = bot

    async def current(self, interaction: discord.Interaction) -> ServerSettings:
        assert interaction.guild_id is not None  # a server-only group
        return await asyncio.to_thread(self.bot.corpora.data.server_settings, interaction.guild_id)

    async def save(self, interaction: discord.Interaction, chosen: ServerSettings) -> None:
        assert interaction.guild_id is not None
        await asyncio.to_thread(
            self.bot.corpora.data.save_server_settings, interaction.guild_id, chosen
        )
        logger.info(
            "user %s changed the settings of server %s", interaction.user.id, interaction.guild_id
        )
        await send(interaction, content=self.describe(interaction.guild_id))

    def describe(self, guild_id: int) -> str:
        bot = self.bot
        roles = bot.server_settings(guild_id).ask_roles
        lines = [
            f"**Answer channels:** {_mentions(tuple(sorted(bot.answer_channels(guild_id))), '#')}",
            f"**Forum channels:** {_mentions(tuple(sorted(bot.forum_channels(guild_id))), '#')}",
            f"**Answers open threads:** {'yes' if bot.threads(guild_id) else 'no'}",
            f"**Who may ask:** {_mentions(roles, '@&') if roles else 'everyone'}",
        ]
        if not bot.message_content:
            lines.append(
                "-# The bot runs without the Message Content intent: answer and forum"
                " channels are off until it has it."
            )
        return "\n".join(lines)

    @settings.command(name="show", description="This server's settings.")
    async def show(self, interaction: discord.Interaction) -> None:
        await self.current(interaction)
        assert interaction.guild_id is not None
        await send(interaction, content=self.describe(interaction.guild_id))

    @settings.command(
        name="answer-channel", description="Answer every message in a channel, or stop."
    )
    @app_commands.describe(channel="A text channel", on="Answer every message there")
    async def answer_channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel, on: bool
    ) -> None:
        chosen = await self.current(interaction)
        base = chosen.channels if chosen.channels is not None else tuple(self.bot.config.channels)
        await self.save(interaction, replace(chosen, channels=_toggle(base, channel.id, on)))

    @settings.command(
        name="forum-channel", description="Answer every new post of a forum, or stop."
    )
    @app_commands.describe(channel="A forum channel", on="Answer each new post in its thread")
    async def forum_channel(
        self, interaction: discord.Interaction, channel: discord.ForumChannel, on: bool
    ) -> None:
        chosen = await self.current(interaction)
        base = (
            chosen.forum_channels
            if chosen.forum_channels is not None
            else tuple(self.bot.config.forum_channels)
        )
        await self.save(interaction, replace(chosen, forum_channels=_toggle(base, channel.id, on)))

    @settings.command(name="threads", description="Whether answers in channels open a thread.")
    async def threads(self, interaction: discord.Interaction, on: bool) -> None:
        chosen = await self.current(interaction)
        await self.save(interaction, replace(chosen, threads=on))

    @settings.command(
        name="ask-role", description="Let a role ask (once any is set, only they may)."
    )
    @app_commands.describe(role="A role", on="Whether its members may ask")
    async def ask_role(
        self, interaction: discord.Interaction, role: discord.Role, on: bool
    ) -> None:
        chosen = await self.current(interaction)
        await self.save(
            interaction, replace(chosen, ask_roles=_toggle(chosen.ask_roles, role.id, on))
        )

    @settings.command(name="reset", description="Back to the bot's defaults for this server.")
    async def reset(self, interaction: discord.Interaction) -> None:
        await self.save(interaction, ServerSettings())
