"""Buttons that last: they work after a restart and after the interaction token expired,
and "More results" counts against the clicking user's cooldown."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot import render
from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from bot.store import BotStore, feedback_path
from retrieval.config import Settings
from retrieval.live import IndexHolder

from .conftest import index_folder

QUESTION = "How do libraries lend tools?"


@pytest.fixture
async def long_answers(simcord_bot, settings: Settings) -> None:
    """Long articles about the question, so an answer of eight passages has several pages."""
    folder = Path(settings.sources[0])
    sentence = "Libraries lend tools to members who borrow drills, ladders and saws for a week. "
    for name in ("lending", "sharing", "borrowing"):
        paragraphs = [f"{name.title()} paragraph {i}. " + sentence * 6 for i in range(12)]
        text = f"# Tool {name} in town\n\n" + "\n\n".join(paragraphs) + "\n"
        (folder / f"{name}.md").write_text(text, encoding="utf-8")
    await simcord_bot.holder.reindex()


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    bob = guild.add_member(simcord_env.create_user("bob"))
    return channel, alice, bob


def labels(message) -> list[str]:
    return [c["label"] for row in message.components for c in row["components"]]


def custom_ids(message) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row["components"]]


async def restart(env, settings: Settings, embedder) -> CitebotClient:
    """A new process: a fresh client, index holder and store over the same files."""
    holder = IndexHolder(index_folder(settings, embedder))
    store = BotStore(feedback_path(settings))
    fresh = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    await env.restart_bot(fresh)
    return fresh


@pytest.mark.usefixtures("simcord_env")
async def test_custom_ids_carry_only_small_ids(world) -> None:
    channel, alice, _ = world
    answer = await alice.slash(channel, "ask", question=QUESTION, count=8)
    ids = custom_ids(answer.response)
    assert ids and all(len(i) <= 100 and i.startswith("citebot:") for i in ids)
    assert len(set(ids)) == len(ids)  # Discord refuses a message with duplicate custom ids
    assert QUESTION not in " ".join(ids)


@pytest.mark.usefixtures("long_answers")
async def test_every_button_works_after_a_restart_and_token_expiry(
    simcord_env, world, settings: Settings, embedder
) -> None:
    channel, alice, _ = world
    answer = await alice.slash(channel, "ask", question=QUESTION, count=8)
    first_page = answer.response.embeds[0].description
    assert "Next ▶" in labels(answer.response)
    long_article = await alice.slash(channel, "article", title="lending")
    total = int(long_article.response.embeds[0].footer.text.rsplit("/", 1)[1])
    assert total > 1
    fresh = await restart(simcord_env, settings, embedder)
    await simcord_env.advance_time(16 * 60)  # the /ask interaction token has expired

    turned = await alice.click(answer.response, label="Next ▶")
    expected = render.answer_pages(await fresh.holder.search(QUESTION, 8)).embeds[1]
    assert turned.response.embeds[0].to_dict() == expected.to_dict()
    assert turned.response.embeds[0].description != first_page
    back = await alice.click(turned.response, label="◀ Prev")
    assert back.response.embeds[0].description == first_page

    more = await alice.click(answer.response, label="More results")
    assert more.response.embeds[0].title == f"❓ {QUESTION}"

    article = await alice.click(answer.response, label="📄 1")
    assert article.ephemeral and article.response.embeds[0].title
    assert article.response.embeds[0].footer.text.endswith("page 1/" + _last(article))
    page2 = await alice.click(long_article.response, label="Next ▶")
    assert page2.response.embeds[0].title == "Tool lending in town"
    assert page2.response.embeds[0].footer.text.endswith(f"page 2/{total}")

    thanks = await alice.click(answer.response, label="👎")
    assert thanks.ephemeral and thanks.response.content == "Thanks — noted."
    (vote,) = fresh.store.votes()
    assert (vote.user_id, vote.question, vote.vote) == (alice.id, QUESTION, -1)
    assert vote.answer_id is not None and vote.chunk_ids
    fresh.store.close()


def _last(result) -> str:
    return result.response.embeds[0].footer.text.rsplit("/", 1)[1]


@pytest.mark.usefixtures("simcord_env", "long_answers")
async def test_only_the_asker_turns_pages(world) -> None:
    channel, alice, bob = world
    answer = await alice.slash(channel, "ask", question=QUESTION, count=8)
    refused = await bob.click(answer.response, label="Next ▶")
    assert refused.ephemeral and refused.response.content.startswith("Only the person who asked")


@pytest.mark.usefixtures("simcord_env")
async def test_more_results_count_against_the_clicking_users_cooldown(
    simcord_bot, world, clock
) -> None:
    channel, alice, bob = world
    simcord_bot.cooldown.seconds = 30
    answer = await alice.slash(channel, "ask", question=QUESTION, count=1)
    # The asker just asked: More results is another question, so she waits too.
    waited = await alice.click(answer.response, label="More results")
    assert waited.ephemeral and "please wait 30 s" in waited.response.content
    # Someone else may click once, gets their results privately, then waits.
    other = await bob.click(answer.response, label="More results")
    assert other.ephemeral and other.response.embeds[0].footer.text == "Result 2"
    again = await bob.click(answer.response, label="More results")
    assert again.ephemeral and "please wait" in again.response.content
    clock.now += 31
    mine = await alice.click(answer.response, label="More results")
    assert not mine.ephemeral and mine.response.embeds[0].footer.text == "Result 2"


@pytest.mark.usefixtures("simcord_env")
async def test_a_button_of_an_unknown_answer_says_so(simcord_bot, world) -> None:
    channel, alice, _ = world
    answer = await alice.slash(channel, "ask", question=QUESTION, count=1)
    # The bot's database lost its answers since (replaced, or wiped by an admin).
    with sqlite3.connect(simcord_bot.store.path) as db:
        db.execute("DELETE FROM answers")
    result = await alice.click(answer.response, label="More results")
    assert result.ephemeral
    assert result.response.content == "That answer is no longer available; please ask again."


@pytest.mark.usefixtures("simcord_env")
async def test_sources_pages_turn(simcord_bot, world, settings: Settings) -> None:
    channel, alice, _ = world
    folder = Path(settings.sources[0])
    for i in range(30):
        (folder / f"note-{i:02}.md").write_text(f"# Note {i}\n\nA short note number {i}.\n")
    await simcord_bot.holder.reindex()
    listing = await alice.slash(channel, "sources")
    assert listing.response.embeds[0].footer.text == "page 1/3"
    second = await alice.click(listing.response, label="Next ▶")
    assert second.response.embeds[0].footer.text == "page 2/3"


@pytest.mark.usefixtures("simcord_env")
async def test_a_button_error_is_one_private_line(simcord_bot, world, settings: Settings) -> None:
    channel, alice, _ = world
    answer = await alice.slash(channel, "ask", question="How do bees forage in cities?", count=1)
    (Path(settings.sources[0]) / "bees.md").unlink()
    await simcord_bot.holder.reindex()  # the cited article is gone from the index
    result = await alice.click(answer.response, label="📄 1")
    assert result.ephemeral
    assert result.response.content == "no article with id or title 'bees'"
