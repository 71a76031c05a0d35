"""Two servers with corpora on overlapping topics, a third without a route, and the bot
over them against the fake Discord: for the corpus tests and the corpora benchmark."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from bot.hub import BotCorpora
from bot.serverdata import ServerData
from bot.store import BotStore, feedback_path
from retrieval.config import (
    BotSettings,
    CorpusSettings,
    IngestSettings,
    RouteSettings,
    SearchSettings,
    Settings,
    WebSettings,
)
from retrieval.corpora import SharedEmbedders
from retrieval.ingest import ingest

from .fake_discord import Guild

GUILD_A = 710000000000000001  # politics
GUILD_B = 720000000000000001  # tech
GUILD_C = 730000000000000001  # no route: a corpus of its own on demand
CHANNEL_A = 710000000000000011
ANSWER_A = 710000000000000012
FORUM_A = 710000000000000013
CHANNEL_B = 720000000000000011
ANSWER_B = 720000000000000012
CHANNEL_C = 730000000000000011
ADMIN = 700000000000000101
MEMBER = 700000000000000102
ASKER_ROLE = 710000000000000099

GUILDS = (
    Guild(GUILD_A, (CHANNEL_A, ANSWER_A), (FORUM_A,), "Politics club", (ASKER_ROLE,)),
    Guild(GUILD_B, (CHANNEL_B, ANSWER_B), (), "Tech club"),
    Guild(GUILD_C, (CHANNEL_C,), (), "Newcomers"),
)

# The same topics from two sides: every question below matches articles of both corpora.
TOPICS = {
    "chips": (
        "export controls on chips are debated in parliament as a matter of national security",
        "a chip fab etches silicon wafers with extreme ultraviolet light to make chips",
    ),
    "bikes": (
        "the council votes on bike lanes and the budget for cycling in the city",
        "an electric bike motor and battery are tuned for cycling up steep hills",
    ),
    "housing": (
        "housing policy and rent control split the coalition before the election",
        "smart home sensors in housing measure heat and damp in every room",
    ),
    "energy": (
        "energy subsidies and a carbon tax are the opposition's main campaign theme",
        "solar panels and grid batteries store energy for the evening peak",
    ),
    "water": (
        "a referendum on water privatisation goes to the voters next spring",
        "water filters with membranes clean river water for drinking at low cost",
    ),
}
POLITICS_PREFIX = "Policy"
TECH_PREFIX = "Tech"


def write_articles(root: Path, prefix: str, side: int, copies: int = 1) -> Path:
    folder = root / prefix.lower()
    folder.mkdir(parents=True, exist_ok=True)
    for topic, texts in TOPICS.items():
        for n in range(copies):
            title = f"{prefix} {topic} {n}"
            body = f"{texts[side]}. Paragraph {n} on {topic} from {prefix.lower()} desk."
            (folder / f"{topic}-{n}.md").write_text(
                f"---\ntitle: {title}\n---\n{body}\n\nMore about {topic}: {texts[side]}.\n",
                encoding="utf-8",
            )
    return folder


def corpora_settings(root: Path, **bot: Any) -> Settings:
    politics = write_articles(root, POLITICS_PREFIX, 0)
    tech = write_articles(root, TECH_PREFIX, 1)
    bot_settings = BotSettings(
        routes=(RouteSettings(GUILD_A, "politics"), RouteSettings(GUILD_B, "tech")),
        server_corpora=True,
        data_dir=str(root / "bot"),
        cooldown_seconds=0.0,
        follow_seconds=0.0,
    )
    return Settings(
        index_dir=root / "unused-index",
        corpora=(
            CorpusSettings("politics", root / "politics-index", (str(politics),)),
            CorpusSettings("tech", root / "tech-index", (str(tech),)),
        ),
        bot=replace(bot_settings, **bot),
        search=SearchSettings(min_confidence=0.0),
        ingest=IngestSettings(workers=0),
        web=WebSettings(delay_seconds=0.0, timeout_seconds=5.0, allow_addresses=("127.0.0.1/32",)),
    )


def build_corpora(settings: Settings, embedder: Any) -> None:
    for corpus in settings.corpora:
        one = settings.for_corpus(corpus.name)
        ingest(list(one.sources), one, embedder, prune=True)


def make_client(settings: Settings, embedder: Any, **options: Any) -> CitebotClient:
    """The bot as `citebot bot` builds it, with the fake model (one, shared)."""
    store = BotStore(feedback_path(settings))
    corpora = BotCorpora(
        settings,
        ServerData(store.path),
        SharedEmbedders(lambda _settings: embedder),
        lambda _settings: embedder,
    )
    options.setdefault("guild_ready_timeout", 0.05)
    return CitebotClient(
        BotConfig.from_settings(settings), corpora, store, cooldown=Cooldown(0), **options
    )


TOKEN = "FAKE.TOKEN-corpora.0123456789"


@contextlib.asynccontextmanager
async def running(client: CitebotClient) -> AsyncIterator[CitebotClient]:
    runner = asyncio.create_task(client.start(TOKEN))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)
        await client.corpora.close()
        client.store.close()
