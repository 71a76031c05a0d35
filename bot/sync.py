"""Slash-command sync only when the command set changed (or when forced).

The hash of each target's command payload is kept in a small JSON state file, so a
restart with the same commands makes no sync call (Discord rate-limits them).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import discord
from discord import app_commands

logger = logging.getLogger(__name__)


def payload_hash(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    commands = sorted(tree.get_commands(guild=guild), key=lambda c: (c.name, type(c).__name__))
    payload = [c.to_dict(tree) for c in commands]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_state(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    hashes = data.get("commands") if isinstance(data, dict) else None
    return dict(hashes) if isinstance(hashes, dict) else {}


def _write_state(path: Path, hashes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"commands": hashes}, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


async def sync_commands(
    tree: app_commands.CommandTree,
    application_id: int,
    dev_guilds: Sequence[int],
    state_file: Path,
    *,
    force: bool = False,
) -> list[str]:
    """Sync to each dev guild (instant), else globally; only targets whose hash changed.

    Returns the targets synced ("global" or "guild:<id>").
    """
    guilds: list[discord.Object | None] = [discord.Object(id=g) for g in dev_guilds] or [None]
    hashes = _read_state(state_file)
    synced: list[str] = []
    for guild in guilds:
        if guild is not None:
            tree.copy_global_to(guild=guild)
        target = "global" if guild is None else f"guild:{guild.id}"
        key = f"{application_id}:{target}"
        digest = payload_hash(tree, guild)
        if not force and hashes.get(key) == digest:
            logger.info("slash commands unchanged for %s; not syncing", target)
            continue
        await tree.sync(guild=guild)
        logger.info("synced slash commands to %s", target)
        hashes[key] = digest
        synced.append(target)
        _write_state(state_file, hashes)
    return synced
