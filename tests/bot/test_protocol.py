"""End to end over real HTTP and websocket: discord.py against a fake Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from bot.store import BotStore, feedback_path
from retrieval.live import IndexHolder

from .conftest import index_folder
from .fake_discord import BOT_ID, CHANNEL_ID, DM_CHANNEL_ID, FakeDiscord

TOKEN = "FAKE.TOKEN-never-to-be-logged.0123456789"


@pytest.fixture
async def fake():
    fake = FakeDiscord()
    await fake.start()
    old = fake.point_discord_py_here()
    yield fake
    FakeDiscord.restore(old)
    await fake.stop()


async def test_ask_and_mention_end_to_end(
    fake: FakeDiscord, settings, holder, store, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(settings, holder, store)
    runner = asyncio.create_task(client.start(TOKEN))
    try:
        await asyncio.wait_for(fake.identified.wait(), 10)
        await asyncio.wait_for(client.wait_until_ready(), 10)
        assert fake.identify_payload["token"] == TOKEN
        # Commands were synced globally on first start.
        assert any(r.method == "PUT" and r.path.endswith("/commands") for r in fake.requests)

        iid = await fake.send_interaction("ask", {"question": "How do libraries lend tools?"})
        await fake.wait_for(lambda: iid in fake.answered)
        callback = next(r for r in fake.requests if r.path.startswith(f"/interactions/{iid}/"))
        assert callback.json == {"type": 5} and callback.query.get("with_response") in ("1", "true")
        assert fake.acked_at[iid] <= fake.answered_at[iid]
        followup = fake.answered[iid]
        description = followup["embeds"][0]["description"]
        assert (
            "**[1]** [How tool libraries lend tools](<https://example.org/tool-libraries#:~:text=A%20tool%20library%20is,"
            in description
        )
        assert followup["allowed_mentions"] == {"parse": []}
        assert followup["components"]  # the buttons

        await fake.send_message(f"<@{BOT_ID}> how do bees forage in cities?", mentions=[BOT_ID])
        await fake.wait_for(lambda: len(fake.channel_messages) == 1)
        reply = fake.channel_messages[0]
        assert "Urban beekeeping basics" in reply["embeds"][0]["description"]
        assert int(reply["message_reference"]["channel_id"]) == CHANNEL_ID
        assert reply["allowed_mentions"] == {"parse": [], "replied_user": False}
        assert fake.unknown == []
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)
    assert "citebot" in caplog.text  # logging was on, at DEBUG
    assert TOKEN not in caplog.text


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, client: CitebotClient) -> AsyncIterator[CitebotClient]:
    runner = asyncio.create_task(client.start(TOKEN))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)


def make_client(settings, holder, store, **config) -> CitebotClient:
    # discord.py waits guild_ready_timeout (2 s) for more guilds after the last one; the fake has one.
    return CitebotClient(
        replace(BotConfig.from_settings(settings), **config),
        holder,
        store,
        cooldown=Cooldown(0),
        guild_ready_timeout=0.05,
    )


def button(body: dict, label: str) -> str:
    return next(
        c["custom_id"]
        for row in body["components"]
        for c in row["components"]
        if c["label"] == label
    )


EPHEMERAL = 64


async def test_find_sources_and_group_dms_end_to_end(fake: FakeDiscord, settings, holder, store):
    async with running(fake, make_client(settings, holder, store)):
        claim = fake.user_message("900000000000000001", "Do tool libraries lend drills?")
        iid = await fake.send_interaction("Find sources", {}, target=claim)
        await fake.wait_for(lambda: iid in fake.answered)
        callback = next(r for r in fake.requests if r.path.startswith(f"/interactions/{iid}/"))
        assert callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
        answer = fake.answered[iid]
        assert answer["flags"] & EPHEMERAL
        assert answer["embeds"][0]["title"] == "❓ Do tool libraries lend drills?"
        assert "How tool libraries lend tools" in answer["embeds"][0]["description"]

        # In a group DM, through the user's install: no guild, no channel the bot can post in.
        iid = await fake.send_interaction(
            "ask", {"question": "How do bees forage in cities?"}, where="group_dm"
        )
        await fake.wait_for(lambda: iid in fake.answered)
        assert "Urban beekeeping basics" in fake.answered[iid]["embeds"][0]["description"]
        assert fake.unknown == []


async def test_direct_message_end_to_end(fake: FakeDiscord, settings, holder, store) -> None:
    async with running(fake, make_client(settings, holder, store)):
        await fake.send_message("how do bees forage in cities?", dm=True)
        await fake.wait_for(lambda: str(DM_CHANNEL_ID) in fake.posted)
        (_, reply), *_ = fake.posted[str(DM_CHANNEL_ID)]
        assert "Urban beekeeping basics" in reply["embeds"][0]["description"]
        assert reply["allowed_mentions"] == {"parse": [], "replied_user": False}
        assert fake.unknown == []


async def test_thread_and_follow_up_end_to_end(fake: FakeDiscord, settings, holder, store) -> None:
    async with running(fake, make_client(settings, holder, store, threads=True)):
        asked = await fake.send_message(
            f"<@{BOT_ID}> how do beekeepers keep bees in cities?", mentions=[BOT_ID]
        )
        await fake.wait_for(lambda: asked in fake.posted)
        (thread,) = fake.threads
        assert thread["id"] == asked and thread["name"] == "how do beekeepers keep bees in cities?"
        (_, opening), *_ = fake.posted[asked]
        assert "Urban beekeeping basics" in opening["embeds"][0]["description"]
        assert str(CHANNEL_ID) not in fake.posted  # nothing in the channel itself

        await fake.send_message("and how often are they inspected?", channel_id=asked)
        await fake.wait_for(lambda: len(fake.posted[asked]) == 2)
        _, follow_up = fake.posted[asked][1]
        assert follow_up["embeds"][0]["title"] == (
            "❓ how do beekeepers keep bees in cities? and how often are they inspected?"
        )
        assert fake.unknown == []


async def test_buttons_after_a_restart_end_to_end(
    fake: FakeDiscord, settings, holder, store, embedder
) -> None:
    async with running(fake, make_client(settings, holder, store)):
        iid = await fake.send_interaction(
            "ask", {"question": "How do libraries lend tools?", "count": 1}
        )
        await fake.wait_for(lambda: iid in fake.answered)
        message_id, answer = fake.answered_message[iid], fake.answered[iid]

    # A new process: its own index holder and store over the same files.
    fresh_store = BotStore(feedback_path(settings))
    fresh = make_client(settings, IndexHolder(index_folder(settings, embedder)), fresh_store)
    async with running(fake, fresh):
        more = await fake.click(message_id, answer, button(answer, "More results"))
        await fake.wait_for(lambda: more in fake.answered)
        assert fake.answered[more]["embeds"][0]["footer"]["text"] == "Result 2"
        vote = await fake.click(message_id, answer, button(answer, "👍"))
        await fake.wait_for(
            lambda: any(r.path.startswith(f"/interactions/{vote}/") for r in fake.requests)
        )
        callback = next(r for r in fake.requests if r.path.startswith(f"/interactions/{vote}/"))
        assert callback.json["data"]["content"] == "Thanks for the feedback!"
        (recorded,) = fresh_store.votes()
        assert str(recorded.message_id) == message_id
        assert fake.unknown == []
    fresh_store.close()


async def test_build_client_and_run_end_to_end(fake: FakeDiscord, settings, embedder) -> None:
    from bot.cli import build_client, run

    made = []

    def make_embedder(_settings):
        made.append(embedder)
        return embedder

    client = build_client(settings, make_embedder=make_embedder, guild_ready_timeout=0.05)
    assert made == [embedder] and embedder.embedded[-1] == "warm up"  # loaded before connecting
    assert client.config.sources == settings.sources and client.config.follow_seconds == 0
    assert client.store.path == feedback_path(settings)
    assert client.corpora.registry.open_names() == []  # indexes open on first use
    runner = asyncio.create_task(run(lambda _content: client, TOKEN))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
        iid = await fake.send_interaction("ask", {"question": "How do libraries lend tools?"})
        await fake.wait_for(lambda: iid in fake.answered)
        assert "How tool libraries lend tools" in fake.answered[iid]["embeds"][0]["description"]
        holder = client.corpora.registry.holder("default")
        assert holder is not None and holder.generation >= 1
        # A re-index embeds with a model of its own, made by the same factory.
        await client.corpora.sync("default")
        assert len(made) == 3  # the shared question model (made, then kept), and the re-index's
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)
    # run() closed what build_client opened.
    with pytest.raises(Exception, match="closed"):
        client.store.votes()
    with pytest.raises(Exception, match="closed"):
        holder.current.articles()
