"""The sync schedule: every `sync_interval_minutes` the bot re-reads its sources in the
background, swaps the index in like /reindex, and /stats says when and what it did."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import simcord

from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from retrieval.config import Settings
from retrieval.errors import CitebotError
from retrieval.ingest import IngestReport
from retrieval.live import IndexHolder
from tests.fakes import FakeEmbedder

from .conftest import NEW_ARTICLE, FakeSource, index_folder

BIKES = "Where are bicycle punctures repaired?"


async def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_syncs_run_on_schedule_and_swap_the_index(
    settings: Settings, embedder: FakeEmbedder
) -> None:
    holder = IndexHolder(index_folder(settings, embedder))
    first = holder.generation
    Path(settings.sources[0], "bikes.md").write_text(NEW_ARTICLE, encoding="utf-8")
    task = asyncio.ensure_future(holder.sync_every(0.05))
    try:
        await wait_for(lambda: holder.generation > first)
        answer = await holder.search(BIKES)
        assert answer.passages[0].article.title == "Repairing bicycles"
        assert holder.last_sync is not None and holder.last_sync.report is not None
        assert holder.last_sync.report.added == 1
    finally:
        task.cancel()
        await holder.close()


async def test_a_failed_sync_keeps_the_index_and_is_tried_again(settings: Settings) -> None:
    attempts: list[int] = []

    def rebuild() -> IngestReport:
        attempts.append(1)
        if len(attempts) == 1:
            raise CitebotError(f"cannot read {settings.sources[0]}")
        return IngestReport(added=2)

    searchers = [FakeSearcher(), FakeSearcher()]
    holder = IndexHolder(FakeSource(*searchers, rebuild=rebuild))
    task = asyncio.ensure_future(holder.sync_every(0.05))
    try:
        await wait_for(lambda: holder.last_sync is not None)
        assert holder.last_sync.error is not None and holder.current is searchers[0]
        await wait_for(lambda: len(attempts) >= 2 and holder.current is searchers[1])
        assert holder.last_sync.report == IngestReport(added=2)
    finally:
        task.cancel()


async def test_the_bot_starts_the_schedule_from_the_config(settings: Settings, store) -> None:
    # 300 ms: long enough between syncs for the fake Discord to see the bot settle at start
    # on a loaded machine (at 60 ms it sometimes never did), short enough to see two syncs.
    settings = replace(settings, bot=replace(settings.bot, sync_interval_minutes=0.005))
    holder = IndexHolder(FakeSource(*(FakeSearcher() for _ in range(100))))
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    assert client.config.sync_seconds == pytest.approx(0.3)
    async with simcord.run(client):
        await wait_for(lambda: holder.generation >= 2)
    assert holder.last_sync is not None and holder.last_sync.report == IngestReport()


async def test_stats_shows_a_failed_sync_without_paths(settings: Settings, store) -> None:
    def rebuild() -> IngestReport:
        raise CitebotError(f"cannot read {settings.sources[0]}/broken.md")

    holder = IndexHolder(FakeSource(FakeSearcher(), rebuild=rebuild))
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    with pytest.raises(CitebotError):
        await holder.reindex()
    async with simcord.run(client) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        alice = guild.add_member(env.create_user("alice"))
        stats = await alice.slash(channel, "stats")
    line = {f.name: f.value for f in stats.response.embeds[0].fields}["Last sync"]
    assert " UTC · failed: cannot read " in line and "broken.md" in line
    assert settings.sources[0] not in line


async def test_stats_before_any_sync(settings: Settings, store) -> None:
    holder = IndexHolder(FakeSource(FakeSearcher()))
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    async with simcord.run(client) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        alice = guild.add_member(env.create_user("alice"))
        stats = await alice.slash(channel, "stats")
    fields = {f.name: f.value for f in stats.response.embeds[0].fields}
    assert fields["Last sync"] == "none since the bot started"


async def test_stats_after_a_successful_sync(settings: Settings, store) -> None:
    holder = IndexHolder(
        FakeSource(
            FakeSearcher(), FakeSearcher(), rebuild=lambda: IngestReport(added=3, unchanged=4)
        )
    )
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    await holder.reindex()
    async with simcord.run(client) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        alice = guild.add_member(env.create_user("alice"))
        stats = await alice.slash(channel, "stats")
    line = {f.name: f.value for f in stats.response.embeds[0].fields}["Last sync"]
    assert line.endswith(" UTC · 3 added, 0 updated, 0 removed, 0 failed, 4 unchanged")


class FakeSearcher:
    """Enough of a searcher for /stats."""

    def stats(self):
        from retrieval.records import IndexStats

        return IndexStats(1, 2, "fake", 4, 100, "2024-01-01", "2024-01-02", "/index")

    def close(self) -> None:
        pass
