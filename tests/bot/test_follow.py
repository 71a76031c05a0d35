"""The bot follows the index: a generation written by the CLI (or a sync) is picked up
with the same no-missed-question swap as /reindex, and a deleted folder is never kept."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import BotConfig, CitebotClient
from retrieval.config import Settings
from retrieval.index import MANIFEST, committed_version
from retrieval.ingest import ingest
from retrieval.live import IndexHolder
from tests.fakes import FakeEmbedder

from .conftest import NEW_ARTICLE, index_folder

BIKES = "Where are bicycle punctures repaired?"


def cli_ingest(settings: Settings, embedder: FakeEmbedder, note: str | None = None) -> None:
    """What `citebot ingest` does to the folder, from outside the bot; with ``note``, an
    article is added first, so the ingest commits a new generation."""
    if note is not None:
        Path(settings.sources[0], f"{note}.md").write_text(
            f"# Note {note}\n\nA short note called {note}.\n", encoding="utf-8"
        )
    ingest(list(settings.sources), settings, embedder, prune=True)


def generation_folders(settings: Settings) -> list[str]:
    return sorted(p.name for p in Path(settings.index_dir).glob("gen-*"))


async def test_refresh_switches_to_a_generation_written_by_the_cli(
    holder: IndexHolder, settings: Settings, embedder: FakeEmbedder
) -> None:
    first = holder.generation
    opened = holder.current
    assert not await holder.refresh()  # nothing new yet
    assert holder.current is opened

    Path(settings.sources[0], "bikes.md").write_text(NEW_ARTICLE, encoding="utf-8")
    cli_ingest(settings, embedder)
    cli_ingest(settings, embedder, note="second")
    cli_ingest(settings, embedder, note="third")
    assert generation_folders(settings) == ["gen-000001"]  # each written in place

    assert await holder.refresh()
    assert holder.generation == first + 3 and holder.current is not opened
    answer = await holder.search(BIKES)
    assert answer.passages[0].article.title == "Repairing bicycles"
    stats = await holder.stats()
    assert stats.articles == 7


async def test_stats_after_the_folder_was_deleted_switch_first(
    holder: IndexHolder, settings: Settings, embedder: FakeEmbedder
) -> None:
    cli_ingest(settings, embedder, note="first")
    cli_ingest(settings, embedder, note="second")
    cli_ingest(settings, embedder, note="third")
    # No refresh was called: stats itself follows the index instead of reading a deleted folder.
    stats = await holder.stats()
    assert stats.articles == 7
    assert holder.generation == committed_version(Path(settings.index_dir))


async def test_a_question_in_flight_finishes_on_the_old_index(
    settings: Settings, embedder: FakeEmbedder
) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(FakeEmbedder):
        block = True

        def embed(self, texts):
            if self.block and texts == ["How do libraries lend tools?"]:
                entered.set()
                assert release.wait(5)
            return super().embed(texts)

    slow = Slow()
    holder = IndexHolder(index_folder(settings, slow))
    old = holder.current
    asking = asyncio.create_task(holder.search("How do libraries lend tools?"))
    assert await asyncio.to_thread(entered.wait, 5)
    cli_ingest(settings, embedder, note="meanwhile")
    slow.block = False
    assert await holder.refresh()
    assert holder.current is not old
    release.set()
    answer = await asyncio.wait_for(asking, 5)
    assert answer.passages[0].article.title == "How tool libraries lend tools"
    # The old searcher was closed once its question was done.
    with pytest.raises(Exception, match="closed"):
        old.articles()
    holder.current.close()


async def test_an_unreadable_manifest_keeps_the_current_index_and_logs_once(
    holder: IndexHolder, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="retrieval.live")
    manifest = Path(settings.index_dir, MANIFEST)
    saved = manifest.read_text()
    manifest.write_text("{not json")
    generation = holder.generation
    for _ in range(3):
        assert not await holder.refresh()
    assert holder.generation == generation
    assert (await holder.search("How do libraries lend tools?")).passages
    assert caplog.text.count("cannot check the index for a newer generation") == 1
    manifest.write_text(saved)
    assert not await holder.refresh()


async def test_the_running_bot_checks_in_the_background(
    settings: Settings, holder: IndexHolder, store, embedder: FakeEmbedder
) -> None:
    config = replace(BotConfig.from_settings(settings), follow_seconds=0.01)
    client = CitebotClient(config, holder, store)
    generation = holder.generation
    await client.setup_hook()  # starts the check (no state file sync: no application id)
    try:
        cli_ingest(settings, embedder, note="first")
        for _ in range(500):
            if holder.generation > generation:
                break
            await asyncio.sleep(0.01)
        assert holder.generation == generation + 1
    finally:
        await client.close()
    cli_ingest(settings, embedder, note="after")
    await asyncio.sleep(0.1)
    assert holder.generation == generation + 1  # the check stopped with the client
