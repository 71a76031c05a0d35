"""/reindex: permissions, background rebuild and the swap without failing questions."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from pathlib import Path

import discord
import pytest

from bot.replies import NotAnAdministrator
from retrieval.config import Settings
from retrieval.errors import CitebotError
from retrieval.ingest import IngestReport
from retrieval.live import IndexHolder, ReindexBusyError
from retrieval.records import Answer

from .conftest import NEW_ARTICLE, FakeSource


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    managers = guild.create_role("Managers", permissions=discord.Permissions(manage_guild=True))
    helpers = guild.create_role("Helpers")
    admin = guild.add_member(simcord_env.create_user("admin"), roles=[managers])
    helper = guild.add_member(simcord_env.create_user("helper"), roles=[helpers])
    user = guild.add_member(simcord_env.create_user("user"))
    return channel, admin, helper, user, helpers


async def fetched(bot, name: str) -> discord.app_commands.AppCommand:
    return next(c for c in await bot.tree.fetch_commands() if c.name == name)


@pytest.mark.usefixtures("simcord_env")
async def test_reindex_is_hidden_from_members_without_manage_server(simcord_bot, world) -> None:
    channel, admin, helper, user, _ = world
    assert "reindex" in admin.available_commands(channel)
    assert "reindex" not in user.available_commands(channel)
    assert "reindex" not in helper.available_commands(channel)
    synced = simcord_bot.tree.get_command("reindex").to_dict(simcord_bot.tree)
    assert synced["default_member_permissions"] == discord.Permissions(manage_guild=True).value
    assert synced["contexts"] == [0] and synced["integration_types"] == [0]  # servers only


async def test_reindex_is_refused_at_run_time_when_a_server_shows_it_to_everyone(
    simcord_env, simcord_bot, world, caplog
) -> None:
    channel, _, helper, user, _ = world
    caplog.set_level(logging.INFO, logger="bot")
    command = await fetched(simcord_bot, "reindex")
    generation = simcord_bot.holder.generation
    for member in (user, helper):
        member.guild.set_command_permissions(command, {member: True})
        result = await member.slash(channel, "reindex")
        assert result.ephemeral and result.response.content.startswith(
            "Only members with Manage Server"
        )
    assert simcord_bot.holder.generation == generation
    # Refused by the admin commands' one check, reported through the tree's error handler.
    assert [type(e) for e in simcord_env.errors] == [NotAnAdministrator] * 2
    # Each refusal is logged once, naming the user (not again as a "user error").
    for member in (user, helper):
        lines = [r.getMessage() for r in caplog.records if str(member.id) in r.getMessage()]
        assert lines == [f"refused reindex to user {member.id}"]


@pytest.mark.usefixtures("simcord_env")
async def test_configured_role_may_reindex(simcord_bot, world, settings: Settings) -> None:
    channel, _, helper, _, helpers = world
    simcord_bot.config = replace(simcord_bot.config, admin_role=helpers.id)
    # The server grants the command to the role (Server Settings → Integrations).
    helper.guild.set_command_permissions(await fetched(simcord_bot, "reindex"), {helpers: True})
    Path(settings.sources[0], "bikes.md").write_text(NEW_ARTICLE, encoding="utf-8")
    generation = simcord_bot.holder.generation
    result = await helper.slash(channel, "reindex")
    assert result.response.content.startswith("Re-indexing in the background")
    assert simcord_bot.holder.generation == generation + 1


@pytest.mark.usefixtures("simcord_env", "simcord_bot")
async def test_reindex_picks_up_new_articles_without_restart(world, settings: Settings) -> None:
    channel, admin, _, user, _ = world
    question = "Where are bicycle punctures repaired?"
    before = await user.slash(channel, "ask", question=question)
    assert "Repairing bicycles" not in before.response.embeds[0].description
    Path(settings.sources[0], "bikes.md").write_text(NEW_ARTICLE, encoding="utf-8")
    result = await admin.slash(channel, "reindex")
    assert result.ephemeral and result.response.content.startswith("Re-indexing in the background")
    assert (
        result.followups[-1].content
        == "Re-index finished: 5 articles, " + result.followups[-1].content.split(", ", 1)[1]
    )
    after = await user.slash(channel, "ask", question=question)
    assert "**[1]** *Repairing bicycles*" in after.response.embeds[0].description


class SlowSearcher:
    """Blocks inside search until released, like a long model call; records closing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed = False

    def search(self, question: str, k=None, offset: int = 0, filters=None) -> Answer:
        assert not self.closed, "searched a closed index"
        self.entered.set()
        assert self.release.wait(5)
        assert not self.closed, "index closed during a search"
        return Answer(f"{self.name}:{question}", True, ())

    def close(self) -> None:
        self.closed = True


async def test_swap_waits_for_questions_in_flight() -> None:
    old, new = SlowSearcher("old"), SlowSearcher("new")
    new.release.set()
    holder = IndexHolder(FakeSource(old, new))
    asking = asyncio.create_task(holder.search("q"))
    assert await asyncio.to_thread(old.entered.wait, 5)
    await holder.reindex()
    assert holder.current is new and not old.closed  # still answering
    old.release.set()
    answer = await asyncio.wait_for(asking, 5)
    assert answer.question == "old:q" and old.closed  # finished on the old index, then closed
    assert (await holder.search("q")).question == "new:q"


async def test_second_reindex_while_one_runs_is_refused() -> None:
    started, finish = threading.Event(), threading.Event()

    def slow_rebuild() -> IngestReport:
        started.set()
        finish.wait(5)
        return IngestReport()

    holder = IndexHolder(FakeSource(SlowSearcher("old"), SlowSearcher("new"), rebuild=slow_rebuild))
    first = asyncio.create_task(holder.reindex())
    assert await asyncio.to_thread(started.wait, 5)
    assert holder.reindexing
    with pytest.raises(ReindexBusyError):
        await holder.reindex()
    finish.set()
    await asyncio.wait_for(first, 5)
    assert holder.generation == 2 and not holder.reindexing


@pytest.mark.usefixtures("simcord_env", "simcord_bot")
async def test_reindex_reports_skipped_files_by_name_without_server_paths(
    world, settings: Settings
) -> None:
    channel, admin, _, _, _ = world
    sources = Path(settings.sources[0])
    (sources / "2024").mkdir()
    (sources / "2024" / "broken.json").write_text("{not json", encoding="utf-8")
    (sources / "empty.md").write_text("", encoding="utf-8")
    result = await admin.slash(channel, "reindex")
    report = result.followups[-1]
    assert report.content.startswith("Re-index finished: 4 articles")
    assert "2 files or records skipped:" in report.content
    listed = report.embeds[0].description
    assert report.embeds[0].title == "Skipped (2)"
    assert "`articles/2024/broken.json` — " in listed and "`articles/empty.md` — " in listed
    for text in (report.content, listed):
        assert str(sources) not in text and str(settings.index_dir) not in text
        assert "/tmp" not in text


def test_a_long_skipped_list_is_cut_and_counted() -> None:
    from bot import render

    skipped = [(f"articles/file-{i:04}.json", "invalid JSON: Expecting value") for i in range(500)]
    embed = render.skipped_embed(skipped)
    assert render.fits(embed)
    lines = embed.description.splitlines()
    shown = len(lines) - 1
    assert 10 < shown < 500
    assert lines[-1] == f"…and {500 - shown} more; the full list is in the bot's log."


@pytest.mark.usefixtures("simcord_env")
async def test_reindex_without_sources_fails_cleanly_and_keeps_the_index(
    simcord_bot, world, settings: Settings, embedder
) -> None:
    from retrieval.live import IndexFolder

    channel, admin, _, _, _ = world
    folder = IndexFolder(replace(settings, sources=()), embedder, lambda: embedder)
    with pytest.raises(CitebotError, match="No article paths are configured"):
        folder.rebuild()
    simcord_bot.holder.source = folder
    generation = simcord_bot.holder.generation
    result = await admin.slash(channel, "reindex")
    assert result.followups[-1].content == (
        "Re-index failed: No article paths are configured (`sources` in the config file)."
        " The previous index is still in use."
    )
    assert simcord_bot.holder.generation == generation
    answer = await admin.slash(channel, "ask", question="How do libraries lend tools?")
    assert answer.response.embeds[0].description.startswith(">")


@pytest.mark.usefixtures("simcord_env")
async def test_every_admin_command_has_the_one_guard(simcord_bot) -> None:
    """Groups of admin commands are AdminGroups (one check for all their subcommands) and
    carry no checks of their own; a single admin command takes the same check."""
    from bot.admin import AdminGroup, administrators_only

    manage_guild = discord.Permissions(manage_guild=True)
    admin_commands = [
        c for c in simcord_bot.tree.get_commands() if c.default_permissions == manage_guild
    ]
    groups = [c for c in admin_commands if isinstance(c, discord.app_commands.Group)]
    singles = [c for c in admin_commands if isinstance(c, discord.app_commands.Command)]
    assert {g.name for g in groups} >= {"library", "settings"}
    assert {c.name for c in singles} >= {"reindex", "feedback"}
    for group in groups:
        assert isinstance(group, AdminGroup), group.name
        for sub in group.walk_commands():
            assert sub.checks == [], (group.name, sub.name)
    for command in singles:
        assert command.checks == [administrators_only], command.name
