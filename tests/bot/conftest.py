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
from bot.cooldown import Cooldown
from bot.store import BotStore, feedback_path
from retrieval.config import BotSettings, IngestSettings, Settings
from retrieval.ingest import IngestReport, ingest
from retrieval.live import IndexFolder, IndexHolder, SearcherLike
from tests.fakes import FakeEmbedder

ARTICLES = Path(__file__).parent / "articles"
# An article a test adds to the sources, to see a re-index (or a CLI ingest) pick it up.
NEW_ARTICLE = """---
title: Repairing bicycles
---
A bicycle repair cafe fixes punctures and brakes for free on Saturdays.
"""


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
    # No background index check: tests that need it call IndexHolder.refresh or turn it on.
    bot_settings = BotSettings(
        cooldown_seconds=0.0, feedback_db=str(root / "feedback.sqlite"), follow_seconds=0.0
    )
    return Settings(
        index_dir=root / "index",
        sources=(str(sources),),
        bot=replace(bot_settings, **bot),
        # simcord runs the bot on a virtual clock (time.monotonic stands still), on which
        # the time limits of parsing workers never expire: parse in the test process.
        ingest=IngestSettings(workers=0),
    )


def build_index(settings: Settings, embedder: FakeEmbedder) -> None:
    ingest(list(settings.sources), settings, embedder, prune=True)


def index_folder(settings: Settings, embedder: FakeEmbedder) -> IndexFolder:
    """The production index source, with the fake model for questions and re-indexes."""
    return IndexFolder(settings, embedder, lambda: embedder)


class FakeSource:
    """An index source that hands out given searchers, one per open, a generation each."""

    def __init__(self, *searchers: SearcherLike, rebuild=None) -> None:
        self.searchers = list(searchers)
        self.committed = 1
        self._rebuild = rebuild

    def generation(self) -> int:
        return self.committed

    def open(self) -> SearcherLike:
        return self.searchers.pop(0)

    def rebuild(self) -> IngestReport:
        report = self._rebuild() if self._rebuild else IngestReport()
        self.committed += 1
        return report


class Failing:
    """A searcher whose every call fails with a given error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str):
        if name == "close":
            return lambda: None

        def fail(*args, **kwargs):
            raise self.error

        return fail


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
    holder = IndexHolder(index_folder(settings, embedder))
    yield holder
    holder.current.close()


@pytest.fixture
def store(settings: Settings):
    store = BotStore(feedback_path(settings))
    yield store
    store.close()


@pytest.fixture
def simcord_bot(settings: Settings, holder: IndexHolder, store: BotStore, clock: FakeClock):
    config = BotConfig.from_settings(settings)
    return CitebotClient(config, holder, store, cooldown=Cooldown(0.0, clock))
