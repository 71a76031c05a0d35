"""Answers in channels: mentions anywhere, every message in configured channels."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.actions import HINT


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    general = guild.create_text_channel("general")
    questions = guild.create_text_channel("questions")
    alice = guild.add_member(simcord_env.create_user("alice"))
    return guild, general, questions, alice


def bot_messages(channel, bot_id: int):
    return [m for m in channel.history() if m.author.id == bot_id]


async def test_mention_is_answered_as_a_reply_without_pinging(
    simcord_env, simcord_bot, world
) -> None:
    _, general, _, alice = world
    me = simcord_bot.user
    question = await alice.send(general, f"<@{me.id}> how do libraries lend tools?")
    reply = general.last_message
    assert reply.author.id == me.id
    assert reply.reference is not None and reply.reference.message_id == question.id
    assert "**[1]** [How tool libraries lend tools]" in reply.embeds[0].description
    assert reply.embeds[0].title == "❓ how do libraries lend tools?"
    posted = [
        r.json
        for r in simcord_env.http_requests
        if r.path.endswith("/messages") and r.method == "POST"
    ]
    assert posted[-1]["allowed_mentions"] == {"parse": [], "replied_user": False}


async def test_empty_mention_gets_a_one_line_hint(simcord_bot, world) -> None:
    _, general, _, alice = world
    await alice.send(general, f"<@{simcord_bot.user.id}>   ")
    assert general.last_message.content == HINT
    assert "\n" not in HINT


@pytest.mark.usefixtures("simcord_env")
async def test_configured_channel_answers_every_message_but_others_need_a_mention(
    simcord_bot, world
) -> None:
    _, general, questions, alice = world
    simcord_bot.config = replace(simcord_bot.config, channels=frozenset({questions.id}))
    await alice.send(general, "how do libraries lend tools?")
    assert bot_messages(general, simcord_bot.user.id) == []
    await alice.send(questions, "how do libraries lend tools?")
    answers = bot_messages(questions, simcord_bot.user.id)
    assert len(answers) == 1 and answers[0].embeds[0].title == "❓ how do libraries lend tools?"
    # An empty message there (an image, say) gets no hint: it was not addressed to the bot.
    await alice.send(questions, "", attachments=[("a.png", b"png")])
    assert len(bot_messages(questions, simcord_bot.user.id)) == 1


async def test_bots_are_ignored(simcord_env, simcord_bot, world) -> None:
    guild, general, questions, _ = world
    simcord_bot.config = replace(simcord_bot.config, channels=frozenset({questions.id}))
    robot = guild.add_member(simcord_env.create_user("robot", bot=True))
    await robot.send(questions, "how do libraries lend tools?")
    await robot.send(general, f"<@{simcord_bot.user.id}> how do libraries lend tools?")
    assert bot_messages(questions, simcord_bot.user.id) == []
    assert bot_messages(general, simcord_bot.user.id) == []


@pytest.mark.usefixtures("simcord_env", "clock")
async def test_too_long_and_cooldown_get_friendly_replies(simcord_bot, world) -> None:
    _, general, _, alice = world
    mention = f"<@{simcord_bot.user.id}>"
    await alice.send(general, f"{mention} {'why ' * 300}")
    assert "please keep it to 1,000 or fewer" in general.last_message.content
    simcord_bot.cooldown.seconds = 20
    await alice.send(general, f"{mention} how do libraries lend tools?")
    assert general.last_message.embeds
    await alice.send(general, f"{mention} and bees?")
    assert general.last_message.content.startswith("You're asking quickly")


@pytest.mark.usefixtures("simcord_env")
async def test_buttons_work_on_channel_answers(simcord_bot, world) -> None:
    _, general, _, alice = world
    await alice.send(general, f"<@{simcord_bot.user.id}> how do bees forage in cities?")
    answer = general.last_message
    shown = await alice.click(answer, label="📄 1")
    assert shown.ephemeral and shown.response.embeds[0].title == "Urban beekeeping basics"


@pytest.mark.usefixtures("simcord_env")
async def test_cooldown_comes_before_hints_and_bad_questions_and_is_said_once(
    simcord_bot, world, clock
) -> None:
    _, general, _, alice = world
    mention = f"<@{simcord_bot.user.id}>"
    simcord_bot.cooldown.seconds = 20
    await alice.send(general, f"{mention} how do libraries lend tools?")
    answered = len(bot_messages(general, simcord_bot.user.id))
    await alice.send(general, mention)  # would be the hint
    assert general.last_message.content.startswith("You're asking quickly")
    # A burst while waiting gets no more replies: not the hint, not the length message.
    await alice.send(general, mention)
    await alice.send(general, f"{mention} {'why ' * 300}")
    await alice.send(general, f"{mention} and bees?")
    assert len(bot_messages(general, simcord_bot.user.id)) == answered + 1
    clock.now += 21
    await alice.send(general, mention)
    assert general.last_message.content == HINT
