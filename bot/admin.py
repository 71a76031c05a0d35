"""The one guard of every admin command.

Admin commands are shown only to members with Manage Server (``default_permissions``), but
a server may grant them to anyone in its integration settings, so each is checked again
when run (``[bot] admin_role`` honoured): ``administrators_only``. Groups of admin commands
(``/library``, ``/settings``) are ``AdminGroup``s, whose one check covers every
subcommand; the single admin commands (``/reindex``, ``/feedback``) take it through
``admin_command``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

from .replies import NotAnAdministrator

if TYPE_CHECKING:
    from .app import CitebotClient

REFUSAL = "Manage Server or the admin role is needed"


async def administrators_only(interaction: discord.Interaction[CitebotClient]) -> bool:
    """The admin commands' one check, at run time: a server may grant them to anyone."""
    if not interaction.client.may_administer(interaction):
        raise NotAnAdministrator(REFUSAL)
    return True


class AdminGroup(app_commands.Group):
    """A group of commands for a server's admins: in servers only, installed with the server,
    shown to members with Manage Server, and every subcommand checked when run."""

    def __init__(self, *, name: str, description: str) -> None:
        super().__init__(
            name=name,
            description=description,
            default_permissions=discord.Permissions(manage_guild=True),
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        # discord.py runs a parent group's check before any of its subcommands. The group is
        # only ever added to citebot's client, which the base class cannot know.
        return await administrators_only(cast("discord.Interaction[CitebotClient]", interaction))


def admin_command(*, name: str, description: str) -> Callable[[Any], Any]:
    """A single command for a server's admins, guarded as an ``AdminGroup``'s subcommands are."""

    def decorate(callback: Any) -> Any:
        callback = app_commands.check(administrators_only)(callback)
        callback = app_commands.default_permissions(manage_guild=True)(callback)
        callback = app_commands.allowed_installs(guilds=True, users=False)(callback)
        callback = app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)(
            callback
        )
        return app_commands.command(name=name, description=description)(callback)

    return decorate
