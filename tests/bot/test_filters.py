"""/ask filters: source, author, after, before, applied inside retrieval; autocomplete for
source and author from the index; a bad filter is a friendly line before any search."""

from __future__ import annotations

import pytest

from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from bot.store import BotStore, feedback_path
from retrieval.live import IndexHolder

from .conftest import index_folder


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    return channel, alice


def callback_types(env) -> list[int]:
    return [r.json["type"] for r in env.http_requests if r.path.endswith("/callback")]


@pytest.mark.usefixtures("simcord_env")
async def test_author_filter_and_the_filter_line(world) -> None:
    channel, alice = world
    result = await alice.slash(
        channel, "ask", question="What do members borrow and feed?", author="ada"
    )
    assert result.response.content == '-# Filtered: author "ada"'
    description = result.response.embeds[0].description
    assert "How tool libraries lend tools" in description
    assert "Sourdough" not in description and "beekeeping" not in description


@pytest.mark.usefixtures("simcord_env")
async def test_date_filters_leave_other_articles_out(world) -> None:
    channel, alice = world
    question = "How do I feed a sourdough starter?"
    unfiltered = await alice.slash(channel, "ask", question=question)
    assert "Sourdough bread at home" in unfiltered.response.embeds[0].description
    later = await alice.slash(channel, "ask", question=question, after="2023-01-01")
    assert "Sourdough bread at home" not in later.response.embeds[0].description
    assert later.response.content == "-# Filtered: after 2023-01-01"
    earlier = await alice.slash(
        channel, "ask", question=question, after="1 November 2022", before="2022-12-31"
    )
    assert "Sourdough bread at home" in earlier.response.embeds[0].description


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"after": "yesterday"},
            "after: “yesterday” is not a single day; write it like 2024-02-11.",
        ),
        ({"before": "2024"}, "before: “2024” is not a single day; write it like 2024-02-11."),
        (
            {"after": "2024-05-01", "before": "2024-01-01"},
            "the date range is empty: after 2024-05-01 is later than before 2024-01-01",
        ),
        ({"author": "Nobody"}, 'No article matches author "Nobody".'),
    ],
)
async def test_a_bad_filter_is_a_friendly_line_before_any_search(
    simcord_env, world, embedder, options, message
) -> None:
    channel, alice = world
    embedded = len(embedder.embedded)
    result = await alice.slash(channel, "ask", question="How do libraries lend tools?", **options)
    assert result.ephemeral and result.response.content == message
    assert callback_types(simcord_env)[-1] == 4  # answered at once, not deferred
    assert len(embedder.embedded) == embedded  # no model call


@pytest.mark.usefixtures("simcord_env")
async def test_source_and_author_autocomplete_from_the_index(world, embedder) -> None:
    channel, alice = world
    embedded = len(embedder.embedded)
    sources = await alice.autocomplete(channel, "ask", "source", "b")
    assert [c["value"] for c in sources] == ["bees.md", "bread.md"]
    authors = await alice.autocomplete(channel, "ask", "author", "ad")
    assert authors == [{"name": "Ada Lender", "value": "Ada Lender"}]
    assert len(embedder.embedded) == embedded
    only_bees = await alice.slash(channel, "ask", question="What is fed?", source="bees.md")
    assert "Urban beekeeping basics" in only_bees.response.embeds[0].description
    assert "Sourdough" not in only_bees.response.embeds[0].description


async def test_more_results_keep_the_filters_after_a_restart(
    simcord_env, world, settings, embedder
) -> None:
    channel, alice = world
    answer = await alice.slash(
        channel,
        "ask",
        question="How often do beekeepers inspect a hive?",
        count=1,
        source="bees.md",
    )
    assert "Urban beekeeping basics" in answer.response.embeds[0].description
    holder = IndexHolder(index_folder(settings, embedder))
    store = BotStore(feedback_path(settings))
    fresh = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    await simcord_env.restart_bot(fresh)
    more = await alice.click(answer.response, label="More results")
    assert more.response.content == '-# Filtered: source "bees.md"'
    page = more.response.embeds[0].description
    assert "Urban beekeeping basics" in page or page == "No more results for this question."
    assert "How tool libraries lend tools" not in page
    (shown,) = [a for a in store.answers() if a.offset == 1]
    assert shown.filters is not None and shown.filters.source == "bees.md"
    store.close()
