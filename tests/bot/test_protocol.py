"""End to end over real HTTP and websocket: discord.py against a fake Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.app import BotConfig, CitebotClient
from bot.services import Cooldown

from .fake_discord import BOT_ID, CHANNEL_ID, FakeDiscord

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
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
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
            "**[1]** [How tool libraries lend tools](<https://example.org/tool-libraries>)"
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
