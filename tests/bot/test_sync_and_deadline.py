"""Command sync only on change or --sync; acknowledgement before retrieval, off the loop."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import simcord

from bot.app import CitebotClient
from retrieval.live import IndexFolder, IndexHolder


def sync_calls(env) -> list[str]:
    return [r.path for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]


def make_client(simcord_bot: CitebotClient, **changes) -> CitebotClient:
    return CitebotClient(
        replace(simcord_bot.config, **changes), simcord_bot.holder, simcord_bot.store
    )


async def test_sync_only_when_the_command_set_changes(simcord_bot) -> None:
    # The first start (fresh state file) syncs globally.
    async with simcord.run(simcord_bot) as env:
        assert simcord_bot.synced == ["global"]
        assert len(sync_calls(env)) == 1
    assert simcord_bot.config.state_file.exists()
    again = make_client(simcord_bot)
    async with simcord.run(again, strict_sync=False) as env:
        assert again.synced == [] and sync_calls(env) == []
    forced = make_client(simcord_bot, force_sync=True)
    async with simcord.run(forced, strict_sync=False) as env:
        assert forced.synced == ["global"] and len(sync_calls(env)) == 1
    changed = make_client(simcord_bot)

    @changed.tree.command(name="ping", description="A new command")
    async def ping(interaction) -> None:  # pragma: no cover - never invoked
        pass

    async with simcord.run(changed, strict_sync=False) as env:
        assert changed.synced == ["global"] and len(sync_calls(env)) == 1


async def test_dev_guilds_sync_instantly_to_each_guild(simcord_bot) -> None:
    client = make_client(simcord_bot, dev_guilds=(111, 222))
    async with simcord.run(client, strict_sync=False) as env:
        guild = env.create_guild(id=111)
        env.create_guild(id=222)
        assert client.synced == ["guild:111", "guild:222"]
        assert sorted(sync_calls(env)) == sorted(
            f"/applications/{client.application_id}/guilds/{g}/commands" for g in (111, 222)
        )
        channel = guild.create_text_channel("dev")
        alice = guild.add_member(env.create_user("alice"))
        assert "ask" in alice.available_commands(channel)


class RecordingSearcher:
    """Delegates to a real searcher; notes the thread and what Discord had seen at search time."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.env = None
        self.threads: list[int] = []
        self.acked_before_search: list[bool] = []

    def search(self, *args, **kwargs):
        self.threads.append(threading.get_ident())
        requests = self.env.http_requests if self.env else []
        self.acked_before_search.append(
            any(r.path.endswith("/callback") and r.json == {"type": 5} for r in requests)
        )
        return self.inner.search(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class RecordingFolder(IndexFolder):
    def open(self) -> RecordingSearcher:
        return RecordingSearcher(super().open())


@pytest.fixture
def holder(settings, embedder):
    holder = IndexHolder(RecordingFolder(settings, embedder, lambda: embedder))
    yield holder
    holder.current.close()


async def test_ask_is_acknowledged_before_retrieval_which_runs_off_the_loop(
    simcord_env, simcord_bot
) -> None:
    recording = simcord_bot.holder.current
    recording.env = simcord_env
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    result = await alice.slash(channel, "ask", question="How do libraries lend tools?")
    assert result.response.embeds
    assert recording.acked_before_search == [True]
    assert recording.threads and recording.threads[0] != threading.main_thread().ident
