"""Fixtures for the bot tests: a small index built with the fake embedder, and the bot itself.

``simcord_bot`` is the hook of simcord's pytest plugin: ``simcord_env`` runs this bot
against an in-memory Discord.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import BotConfig, CitebotClient
from bot.services import Cooldown, FeedbackStore, IndexHolder, SearcherLike, feedback_path
from retrieval.config import BotSettings, Settings
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder

ARTICLES = Path(__file__).parent / "articles"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build_settings(root: Path, **bot: object) -> Settings:
    """Settings over a copy of the test articles in ``root``, so a test may add some."""
    sources = root / "articles"
    if not sources.exists():
        shutil.copytree(ARTICLES, sources)
    bot_settings = BotSettings(cooldown_seconds=0.0, feedback_db=str(root / "feedback.sqlite"))
    return Settings(
        index_dir=root / "index", sources=(str(sources),), bot=replace(bot_settings, **bot)
    )


def build_index(settings: Settings, embedder: FakeEmbedder) -> None:
    ingest(list(settings.sources), settings, embedder, prune=True)


def fake_rebuild(embedder: FakeEmbedder):
    def rebuild(settings: Settings) -> SearcherLike:
        ingest(list(settings.sources), settings, embedder, prune=True)
        return Searcher.open(settings, embedder)

    return rebuild


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path: Path, embedder: FakeEmbedder) -> Settings:
    settings = build_settings(tmp_path)
    build_index(settings, embedder)
    return settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def holder(settings: Settings, embedder: FakeEmbedder):
    holder = IndexHolder(Searcher.open(settings, embedder), settings, fake_rebuild(embedder))
    yield holder
    holder.current.close()


@pytest.fixture
def feedback(settings: Settings):
    store = FeedbackStore(feedback_path(settings))
    yield store
    store.close()


@pytest.fixture
def simcord_bot(settings: Settings, holder: IndexHolder, feedback: FeedbackStore, clock: FakeClock):
    config = BotConfig.from_settings(settings)
    return CitebotClient(config, holder, feedback, cooldown=Cooldown(0.0, clock))
