"""Where users are: "Find sources" on a message, direct messages, threads with follow-ups."""

from __future__ import annotations

from dataclasses import replace

import discord
import pytest

from bot.actions import HINT, follow_up_query, question_from_text
from bot.cogs import NO_TEXT
from retrieval.config import SearchSettings
from retrieval.errors import BadQuestionError
from retrieval.questions import whole_article


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    bob = guild.add_member(simcord_env.create_user("bob"))
    return guild, channel, alice, bob


def answer_text(message) -> str:
    return message.embeds[0].description if message.embeds else message.content


# -- "Find sources" ------------------------------------------------------------------------------


@pytest.mark.usefixtures("simcord_env", "simcord_bot")
async def test_find_sources_answers_privately_from_the_message_text(world) -> None:
    _, channel, alice, bob = world
    claim = await bob.send(channel, "Apparently hives are inspected every week in summer?")
    result = await alice.context_menu(channel, "Find sources", claim)
    assert result.ephemeral
    embed = result.response.embeds[0]
    assert embed.title == "❓ Apparently hives are inspected every week in summer?"
    assert "Urban beekeeping basics" in embed.description
    labels = [c["label"] for row in result.response.components for c in row["components"]]
    assert "More results" in labels and "👍" in labels
    # Nothing was posted in the channel.
    assert channel.last_message.id == claim.id


@pytest.mark.usefixtures("simcord_env", "simcord_bot")
async def test_find_sources_on_a_message_without_text(world) -> None:
    _, channel, alice, bob = world
    image = await bob.send(channel, "", attachments=[("a.png", b"png")])
    result = await alice.context_menu(channel, "Find sources", image)
    assert result.ephemeral and result.response.content == NO_TEXT


@pytest.mark.usefixtures("simcord_env")
async def test_find_sources_obeys_the_cooldown(simcord_bot, world) -> None:
    _, channel, alice, bob = world
    simcord_bot.cooldown.seconds = 30
    claim = await bob.send(channel, "Libraries lend tools now?")
    await alice.context_menu(channel, "Find sources", claim)
    again = await alice.context_menu(channel, "Find sources", claim)
    assert again.ephemeral and "please wait" in again.response.content


def test_a_long_message_is_cut_at_a_word_not_refused() -> None:
    settings = SearchSettings(max_question_chars=50)
    question = question_from_text("word " * 40, settings)
    assert len(question) <= 50 and question.endswith("word")
    with pytest.raises(BadQuestionError):
        question_from_text("   \n ", settings)


# -- direct messages ---------------------------------------------------------------------------


@pytest.mark.usefixtures("simcord_env")
async def test_direct_messages_are_answered(simcord_bot, world) -> None:
    _, _, alice, _ = world
    await alice.send_dm("how do bees forage in cities?")
    dm = alice.user.dm_channel
    reply = dm.last_message
    assert reply.author.id == simcord_bot.user.id
    assert "Urban beekeeping basics" in answer_text(reply)
    await alice.send_dm(f"<@{simcord_bot.user.id}>")
    assert dm.last_message.content == HINT


@pytest.mark.usefixtures("simcord_env", "simcord_bot")
async def test_slash_commands_work_in_direct_messages(world) -> None:
    _, _, alice, _ = world
    assert {"ask", "article", "sources", "stats"} <= set(alice.user.available_commands())
    assert "reindex" not in alice.user.available_commands()
    result = await alice.user.slash("ask", question="How do libraries lend tools?")
    assert "How tool libraries lend tools" in result.response.embeds[0].description
    shown = await alice.user.click(result.response, label="📄 1")
    assert shown.response.embeds[0].title == "How tool libraries lend tools"


@pytest.mark.usefixtures("simcord_env")
async def test_commands_may_be_installed_to_users_and_used_everywhere(simcord_bot) -> None:
    tree = simcord_bot.tree
    payloads = {c["name"]: c for c in (c.to_dict(tree) for c in tree.get_commands())}
    menu = next(iter(tree.get_commands(type=discord.AppCommandType.message)))
    payloads[menu.name] = menu.to_dict(tree)
    for name in ("ask", "article", "sources", "stats", "Find sources"):
        assert payloads[name]["contexts"] == [0, 1, 2], name  # guild, bot DM, group DM
        assert payloads[name]["integration_types"] == [0, 1], name  # server and user installs
    assert payloads["reindex"]["contexts"] == [0] and payloads["reindex"]["integration_types"] == [
        0
    ]


# -- threads and follow-ups --------------------------------------------------------------------


@pytest.fixture
def threads_on(simcord_bot):
    simcord_bot.config = replace(simcord_bot.config, threads=True)


@pytest.mark.usefixtures("simcord_env", "threads_on")
async def test_a_question_opens_a_thread_and_a_follow_up_uses_its_context(
    simcord_bot, world, store
) -> None:
    _, channel, alice, _ = world
    me = simcord_bot.user.id
    question = await alice.send(channel, f"<@{me}> how do beekeepers keep bees in cities?")
    (thread,) = channel.threads
    assert thread.name == "how do beekeepers keep bees in cities?"
    opening = thread.history()
    assert opening and "Urban beekeeping basics" in answer_text(opening[-1])
    # The answer went to the thread, not the channel.
    assert not [m for m in channel.history() if m.author.id == me and m.embeds]
    assert thread.id == question.id  # a thread on the question message

    # A follow-up needs no mention in the bot's own thread.
    follow_up = await alice.send(thread, "and how often are they inspected?")
    reply = thread.last_message
    assert reply.author.id == me and reply.reference.message_id == follow_up.id
    assert reply.embeds[0].title == (
        "❓ how do beekeepers keep bees in cities? and how often are they inspected?"
    )
    assert "Urban beekeeping basics" in reply.embeds[0].description
    latest = store.answers()[-1]
    assert latest.asked == "and how often are they inspected?"
    assert latest.channel_id == thread.id


@pytest.mark.usefixtures("threads_on")
async def test_other_threads_are_not_followed(simcord_env, simcord_bot, world) -> None:
    _, channel, alice, bob = world
    started = await bob.send(channel, "Weekend plans")
    # A thread someone else opened: the bot answers there only when mentioned.
    thread_handle = await _thread_by(simcord_env, bob, channel, started)
    await alice.send(thread_handle, "how do libraries lend tools?")
    assert all(m.author.id != simcord_bot.user.id for m in thread_handle.history())


async def _thread_by(env, member, channel, message):
    """A thread opened by ``member`` on ``message``. simcord's actors cannot open threads, so
    this goes through its backend (not a public API, but the only way in simcord 3.2)."""
    env.backend.create_thread(channel.id, name="chat", owner_id=member.id, message_id=message.id)
    await env.settle()
    return channel.threads[-1]


@pytest.mark.usefixtures("simcord_env")
async def test_threads_off_answers_as_a_reply(simcord_bot, world) -> None:
    _, channel, alice, _ = world
    await alice.send(channel, f"<@{simcord_bot.user.id}> how do libraries lend tools?")
    assert channel.threads == []
    assert channel.last_message.author.id == simcord_bot.user.id


def test_follow_up_query_keeps_the_topic_and_fits() -> None:
    assert follow_up_query("Q1?", "Q1?", "and then?", 100) == "Q1? and then?"
    assert follow_up_query("Q1?", "F1?", "F2?", 100) == "Q1? F1? F2?"
    # Too long: the previous follow-up goes first, then the opening question is shortened.
    assert follow_up_query("topic " * 5, "previous " * 5, "now?", 40).endswith(" now?")
    query = follow_up_query("topic " * 20, "previous", "what now?", 40)
    assert len(query) <= 40 and query.startswith("topic") and query.endswith("what now?")
    assert "previous" not in query
    assert follow_up_query("x" * 100, "", "y" * 30, 40) == "y" * 30


def test_a_thread_follow_up_names_the_article_of_its_opening_question() -> None:
    query = follow_up_query("Summarise the piece on TSMC", "", "What is it about?", 1000)
    found = whole_article(query)
    assert found is not None and found.topic == ("tsmc",)
    # Asked alone, "What is it about?" names no article: the answer asks which.
    alone = whole_article("What is it about?")
    assert alone is not None and alone.topic == ()
