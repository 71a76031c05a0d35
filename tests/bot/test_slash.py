"""Slash commands, buttons and autocomplete, with the real discord.py over simcord."""

from __future__ import annotations

import discord
import pytest
import simcord

from bot import render
from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from bot.store import BotStore
from retrieval.errors import ArticleNotFoundError
from retrieval.live import IndexHolder

from .conftest import Failing, FakeSource

QUESTION = "How do libraries lend tools?"


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    return guild, channel, alice


def callbacks(env) -> list[dict]:
    return [r.json for r in env.http_requests if r.path.endswith("/callback")]


def last_callback_type(env) -> int:
    return callbacks(env)[-1]["type"]


def sent_bodies(env) -> list[dict]:
    """JSON bodies of every message the bot created or edited (callbacks, followups, messages)."""
    out = []
    for r in env.http_requests:
        if r.method in ("POST", "PATCH") and isinstance(r.json, dict):
            body = r.json.get("data", r.json) if r.path.endswith("/callback") else r.json
            if "content" in body or "embeds" in body:
                out.append(body)
    return out


def assert_no_mentions_allowed(env) -> None:
    bodies = sent_bodies(env)
    assert bodies
    for body in bodies:
        assert body.get("allowed_mentions") == {"parse": []}, body


async def test_ask_defers_then_answers_with_bold_highlight_and_citations(
    simcord_env, world
) -> None:
    _, channel, alice = world
    result = await alice.slash(channel, "ask", question=QUESTION)
    assert result.acknowledged and not result.ephemeral
    assert callbacks(simcord_env) == [{"type": 5}]  # deferred; the answer is the followup
    embed = result.response.embeds[0]
    assert embed.title == f"❓ {QUESTION}"
    assert (
        "**[1]** [How tool libraries lend tools](<https://example.org/tool-libraries#:~:text=A%20tool%20library%20is,"
        in embed.description
    )
    assert "tool-libraries.md · 2024-03-01 · ¶" in embed.description
    assert "> **" in embed.description  # the answering sentence is bold inside the quote
    labels = [c["label"] for row in result.response.components for c in row["components"]]
    assert "More results" in labels and "📄 1" in labels and "👍" in labels and "👎" in labels
    assert_no_mentions_allowed(simcord_env)


@pytest.mark.usefixtures("simcord_env")
async def test_private_ask_is_ephemeral_and_count_limits_passages(world) -> None:
    _, channel, alice = world
    result = await alice.slash(channel, "ask", question=QUESTION, count=1, private=True)
    assert result.ephemeral
    description = result.response.embeds[0].description
    assert "**[1]**" in description and "**[2]**" not in description


@pytest.mark.usefixtures("simcord_env")
async def test_not_covered_answer_names_nearest_articles(world) -> None:
    _, channel, alice = world
    result = await alice.slash(channel, "ask", question="Who won football match yesterday?")
    embed = result.response.embeds[0]
    assert embed.description.startswith("**Not covered:**")
    assert "The nearest articles are:" in embed.description and "**[1]**" in embed.description
    labels = [c["label"] for row in result.response.components for c in row["components"]]
    assert "More results" not in labels and "👍" not in labels and "📄 1" in labels


@pytest.mark.parametrize(
    ("question", "expected"),
    [("   ", "Please ask a question"), ("why " * 300, "please keep it to 1,000 or fewer")],
)
async def test_bad_question_gets_a_friendly_ephemeral_reply(
    simcord_env, world, question, expected
) -> None:
    _, channel, alice = world
    result = await alice.slash(channel, "ask", question=question)
    assert result.ephemeral and last_callback_type(simcord_env) == 4  # answered at once
    assert expected in result.response.content
    assert "Traceback" not in result.response.content


async def test_cooldown_per_user_with_friendly_message(
    simcord_env, world, simcord_bot, clock
) -> None:
    guild, channel, alice = world
    bob = guild.add_member(simcord_env.create_user("bob"))
    simcord_bot.cooldown.seconds = 30
    await alice.slash(channel, "ask", question=QUESTION)
    assert last_callback_type(simcord_env) == 5
    refused = await alice.slash(channel, "ask", question=QUESTION)
    assert refused.ephemeral and "please wait 30 s" in refused.response.content
    await bob.slash(channel, "ask", question=QUESTION)
    assert last_callback_type(simcord_env) == 5  # the cooldown is per user
    clock.now += 31
    again = await alice.slash(channel, "ask", question=QUESTION)
    assert last_callback_type(simcord_env) == 5 and again.response.embeds


@pytest.mark.usefixtures("simcord_env")
async def test_cooldown_is_checked_before_the_question(world, simcord_bot) -> None:
    _, channel, alice = world
    simcord_bot.cooldown.seconds = 30
    await alice.slash(channel, "ask", question=QUESTION)
    refused = await alice.slash(channel, "ask", question="   ")
    assert refused.ephemeral and "please wait 30 s" in refused.response.content


async def test_more_results_continues_the_ranking(simcord_env, world) -> None:
    _, channel, alice = world
    first = await alice.slash(channel, "ask", question=QUESTION, count=1)
    more = await alice.click(first.response, label="More results")
    assert (
        last_callback_type(simcord_env) == 5 and not more.ephemeral
    )  # the asker's own public answer
    page = more.response.embeds[0]
    assert page.footer.text == "Result 2" and "**[2]**" in page.description
    # Someone else clicking gets their next results privately.
    bob = world[0].add_member(simcord_env.create_user("bob"))
    other = await bob.click(first.response, label="More results")
    assert other.ephemeral


@pytest.mark.usefixtures("simcord_env")
async def test_article_button_shows_the_cited_article_paginated(world) -> None:
    _, channel, alice = world
    answer = await alice.slash(channel, "ask", question="What did the lighthouse keeper polish?")
    assert "A year at the harbour lighthouse" in answer.response.embeds[0].description
    shown = await alice.click(answer.response, label="📄 1")
    assert shown.ephemeral
    first = shown.response.embeds[0]
    assert first.title == "A year at the harbour lighthouse"
    total = int(first.footer.text.rsplit("/", 1)[1])
    assert total > 5 and first.footer.text.endswith(f"page 1/{total}")
    assert "`¶1` " in first.description
    turned = await alice.click(shown.response, label="Next ▶")
    assert turned.response.embeds[0].footer.text.endswith(f"page 2/{total}")
    assert all(render.fits(e) for e in turned.response.embeds)


@pytest.mark.usefixtures("simcord_env")
async def test_feedback_votes_are_stored_one_per_user(world, store: BotStore) -> None:
    _, channel, alice = world
    answer = await alice.slash(channel, "ask", question=QUESTION, count=2)
    thanks = await alice.click(answer.response, label="👍")
    assert thanks.ephemeral and "Thanks" in thanks.response.content
    await alice.click(answer.response, label="👎")
    votes = store.votes()
    assert len(votes) == 1
    vote = votes[0]
    assert (vote.user_id, vote.question, vote.vote) == (alice.id, QUESTION, -1)
    assert vote.message_id == answer.response.id and len(vote.chunk_ids) >= 2


@pytest.mark.usefixtures("simcord_env")
async def test_article_title_autocomplete_and_lookup(world, embedder) -> None:
    _, channel, alice = world
    embedded_before = len(embedder.embedded)
    choices = await alice.autocomplete(channel, "article", "title", "sour")
    assert choices == [{"name": "Sourdough bread at home", "value": "bread"}]
    assert len(embedder.embedded) == embedded_before  # no model call
    assert len(await alice.autocomplete(channel, "article", "title", "")) == 4
    shown = await alice.slash(channel, "article", title="bread")
    embed = shown.response.embeds[0]
    assert embed.title == "Sourdough bread at home" and embed.url == "https://example.org/sourdough"
    assert {f.name: f.value for f in embed.fields}["Date"] == "2022-11-20"
    assert "`¶3` Bake the loaf" in embed.description


async def test_unknown_article_is_a_short_ephemeral_message(simcord_env, world) -> None:
    _, channel, alice = world
    result = await alice.slash(channel, "article", title="no such thing")
    assert result.ephemeral
    assert result.response.content.startswith("no article with id or title")
    assert [type(e.original) for e in simcord_env.errors] == [ArticleNotFoundError]


@pytest.mark.usefixtures("simcord_env")
async def test_sources_and_stats(world) -> None:
    _, channel, alice = world
    sources = await alice.slash(channel, "sources")
    description = sources.response.embeds[0].description
    assert sources.response.embeds[0].title == "Sources (4 articles)"
    assert "Sourdough bread at home" in description and "Urban beekeeping basics" in description
    stats = await alice.slash(channel, "stats")
    fields = {f.name: f.value for f in stats.response.embeds[0].fields}
    assert fields["Articles"] == "4" and fields["Model"].startswith("fake-hashing-embedder")
    assert fields["Size"].endswith("KB")


async def test_unexpected_error_is_short_ephemeral_and_logged(settings, store, caplog) -> None:
    holder = IndexHolder(FakeSource(Failing(RuntimeError("database exploded"))))
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    async with simcord.run(client) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        alice = guild.add_member(env.create_user("alice"))
        result = await alice.slash(channel, "ask", question=QUESTION)
        message = result.response.content
        assert message == "Sorry, something went wrong while handling that. The error was logged."
        assert "database exploded" in caplog.text and "Traceback" in caplog.text
        assert [str(e.__cause__ or e.original) for e in env.errors] == ["database exploded"]
        assert isinstance(env.errors[0], discord.app_commands.CommandInvokeError)
