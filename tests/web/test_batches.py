"""A long web sync committed in batches: what the web sources remember (validators,
listings) is committed only with the end of the run, so after a failure nothing vouches
for pages whose articles were not committed, and the next run completes the batches
without duplicating anything."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import IngestSettings, Settings
from retrieval.index import read_manifest
from retrieval.ingest import ingest
from tests.fakes import FailingSource, FakeEmbedder
from tests.reliability.crash import check_consistent
from tests.web import newsroom
from tests.web.server import LocalSite, Route


def stored(index_dir: Path, query: str) -> list[tuple[object, ...]]:
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def ten_pages(news: LocalSite) -> tuple[list[str], str]:
    """Ten articles served, and a sitemap listing them: their paths, its URL."""
    newsroom.serve(news, articles=10)
    paths = [newsroom.article_path(n) for n in range(1, 11)]
    news.routes["/sitemap.xml"] = Route(newsroom.sitemap_of(news, paths), "application/xml")
    return paths, news.url("/sitemap.xml")


def test_a_failed_sync_keeps_its_batches_and_the_next_completes_them(
    site: LocalSite, settings: Settings, tmp_path: Path
) -> None:
    news = site
    paths, sitemap = ten_pages(news)
    settings = replace(settings, ingest=IngestSettings(commit_every_articles=4))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "note.txt").write_text("Harbour note\n\nThe ferry runs twice a day.\n")
    ingest([notes], settings, FakeEmbedder())  # the index exists: later writes are in place

    # Ten pages read, then another source fails: two batches of four were committed.
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([sitemap, FailingSource(0)], settings, FakeEmbedder())
    check_consistent(settings.index_dir)
    pages = {r[0] for r in stored(settings.index_dir, "SELECT id FROM articles")} - {"note"}
    assert pages == {news.url(p) for p in paths[:8]}
    # Nothing of the web state was committed: no validator vouches for the two pages that
    # were read but not committed (nor, until a run ends, for the eight that were).
    assert stored(settings.index_dir, "SELECT url FROM web_resources") == []

    # The next run reads every page again: eight are unchanged, two added, none twice.
    report = ingest([sitemap], settings, FakeEmbedder())
    assert (report.added, report.unchanged, report.updated) == (2, 8, 0)
    ids = [r[0] for r in stored(settings.index_dir, "SELECT id FROM articles")]
    assert sorted(ids) == sorted([news.url(p) for p in paths] + ["note"])
    check_consistent(settings.index_dir)
    # Its state committed with it: the run after fetches no page.
    mark = len(news.hits)
    report = ingest([sitemap], settings, FakeEmbedder())
    assert report.unchanged == 10
    assert [h.path for h in news.hits[mark:]] == ["/robots.txt", "/sitemap.xml"]


def test_a_failed_first_sync_keeps_its_batches(
    site: LocalSite, settings: Settings, tmp_path: Path
) -> None:
    news = site
    paths, sitemap = ten_pages(news)
    settings = replace(settings, ingest=IngestSettings(commit_every_articles=4))

    # No index yet: the first batch creates it, the second is committed in place.
    with pytest.raises(RuntimeError, match="the source broke"):
        ingest([sitemap, FailingSource(0)], settings, FakeEmbedder())
    check_consistent(settings.index_dir)
    pages = {r[0] for r in stored(settings.index_dir, "SELECT id FROM articles")}
    assert pages == {news.url(p) for p in paths[:8]}
    assert stored(settings.index_dir, "SELECT url FROM web_resources") == []

    # The next run embeds only the two pages that were not committed.
    chunks = "SELECT count(*) FROM chunks"
    committed = stored(settings.index_dir, chunks)[0][0]
    report = ingest([sitemap], settings, FakeEmbedder())
    assert (report.added, report.unchanged, report.updated) == (2, 8, 0)
    assert report.chunks_embedded == stored(settings.index_dir, chunks)[0][0] - committed > 0
    check_consistent(settings.index_dir)
