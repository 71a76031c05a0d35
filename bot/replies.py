"""Sending, and turning errors into replies: the few functions every part of the bot uses.

Every send passes ``AllowedMentions.none()``; every error becomes one short line for
the user (see ``bot.errors``) plus a log line with the details.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from retrieval.errors import CitebotError

from .errors import Redactor, public_message

logger = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
NOT_HERE = "You can't use this command here."
GONE = "That answer is no longer available; please ask again."
REFUSED = "Only members with Manage Server (or the bot's admin role) may do this."


def cooldown_message(seconds: float) -> str:
    return (
        f"You're asking quickly — please wait {max(1, round(seconds))} s before the next question."
    )


async def reply(message: discord.Message, **kwargs: Any) -> discord.Message:
    return await message.reply(mention_author=False, allowed_mentions=NO_MENTIONS, **kwargs)


async def send(interaction: discord.Interaction, *, ephemeral: bool = True, **kwargs: Any) -> Any:
    """Respond, or follow up when already acknowledged; returns the message when known."""
    kwargs.setdefault("allowed_mentions", NO_MENTIONS)
    if not interaction.response.is_done():
        await interaction.response.send_message(ephemeral=ephemeral, **kwargs)
        return None
    return await interaction.followup.send(ephemeral=ephemeral, wait=True, **kwargs)


def _redactor(client: discord.Client) -> Redactor:
    redact: Redactor | None = getattr(client, "redact", None)
    return redact or Redactor()


class NotAnAdministrator(app_commands.CheckFailure):
    """An admin command run by a member without Manage Server or the bot's admin role."""


def user_message(client: discord.Client, error: BaseException) -> str:
    if isinstance(error, NotAnAdministrator):
        return REFUSED
    if isinstance(error, app_commands.CheckFailure):
        return NOT_HERE
    return public_message(error, _redactor(client))


def _log(error: BaseException, where: str) -> None:
    if isinstance(error, NotAnAdministrator):
        return  # logged where it was decided (CitebotClient.may_administer), once
    if isinstance(error, CitebotError | app_commands.CheckFailure):
        logger.info("user error in %s: %s", where, error)
    else:
        logger.error("error in %s", where, exc_info=error)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Log ``error`` and tell the user in one private line."""
    _log(error, _where(interaction))
    try:
        await send(interaction, content=user_message(interaction.client, error), ephemeral=True)
    except discord.HTTPException:
        logger.exception("could not report an error to the user")


async def report_message_error(
    client: discord.Client, message: discord.Message, error: BaseException
) -> None:
    _log(error, f"message {message.id}")
    try:
        await reply(message, content=user_message(client, error))
    except discord.HTTPException:
        logger.exception("could not report an error to the user")


def _where(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        name = f"/{interaction.command.qualified_name}"
    else:
        custom_id = dict(interaction.data or {}).get("custom_id", "?")
        name = f"button {custom_id}"
    return f"{name} by user {interaction.user.id}"
