"""Web sources through ingest: incremental syncs, conditional requests, the deletion rule."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from retrieval.cli import Runtime, cli
from retrieval.config import Settings, WebSettings
from retrieval.ingest import IngestReport, ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.web import newsroom, samples
from tests.web.server import LocalSite, Route


@pytest.fixture
def settings(tmp_path: Path, web_settings: WebSettings) -> Settings:
    return Settings(index_dir=tmp_path / "index", web=replace(web_settings, timeout_seconds=0.5))


@pytest.fixture
def news(site: LocalSite) -> LocalSite:
    newsroom.serve(site, articles=50)
    return site


def run(sources: list[str], settings: Settings, **options: bool) -> tuple[IngestReport, int]:
    """Ingest with a fresh fake model; the report and how many chunks were embedded."""
    embedder = FakeEmbedder()
    report = ingest(sources, settings, embedder, **options)
    return report, len(embedder.embedded)


def fake_model() -> Runtime:
    """The CLI's seam for its model: the fake one, so no test loads the real model."""
    return Runtime(make_embedder=lambda settings, **options: FakeEmbedder())


def teaser_feed(site: LocalSite, numbers: range) -> bytes:
    return samples.rss(
        [
            samples.Entry(
                f"Entry {n}",
                site.url(newsroom.article_path(n)),
                "<p>Teaser.</p>",
                "Ed",
                "2024-02-01",
            )
            for n in numbers
        ]
    )


def requests_since(site: LocalSite, mark: int) -> list[tuple[str, int, bool]]:
    return [(h.path, h.status, h.conditional) for h in site.hits[mark:]]


def test_a_second_sync_of_an_unchanged_feed_is_one_conditional_request(
    news: LocalSite, settings: Settings
) -> None:
    news.routes["/feed.rss"] = Route(
        teaser_feed(news, range(1, 51)), "application/rss+xml", etag='"f1"'
    )
    feed = news.url("/feed.rss")
    first, embedded = run([feed], settings)
    assert (first.added, first.skipped) == (50, []) and embedded > 0
    mark = len(news.hits)
    again, embedded = run([feed], settings)
    assert embedded == 0 and again.chunks_embedded == 0
    assert (again.unchanged, again.added, again.updated) == (50, 0, 0)
    assert requests_since(news, mark) == [("/robots.txt", 200, False), ("/feed.rss", 304, True)]


def test_a_changed_feed_fetches_only_entries_whose_stamp_changed(
    news: LocalSite, settings: Settings
) -> None:
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(1, 4)), "application/rss+xml")
    feed = news.url("/feed.rss")
    run([feed], settings)
    entries = [
        samples.Entry(f"Entry {n}", news.url(newsroom.article_path(n)), None, "Ed", "2024-02-01")
        for n in (1, 2)
    ] + [samples.Entry("Entry 3", news.url(newsroom.article_path(3)), None, "Ed", "2024-02-09")]
    news.routes["/feed.rss"] = Route(samples.rss(entries), "application/rss+xml")
    page = news.routes[newsroom.article_path(3)]
    news.routes[newsroom.article_path(3)] = replace(
        page, body=page.body.replace(b"bakery", b"bakers"), etag='"a3-v2"'
    )
    mark = len(news.hits)
    report, embedded = run([feed], settings)
    assert (report.updated, report.unchanged) == (1, 2) and embedded > 0
    paths = [path for path, _, _ in requests_since(news, mark)]
    assert paths == ["/robots.txt", "/feed.rss", newsroom.article_path(3)]
    assert [c.kind for c in report.changes] == ["updated"]


def test_a_sitemap_with_unchanged_lastmods_fetches_no_page(
    news: LocalSite, settings: Settings
) -> None:
    paths = [newsroom.article_path(n) for n in range(1, 11)]
    news.routes["/sitemap.xml"] = Route(newsroom.sitemap_of(news, paths), "application/xml")
    run([news.url("/sitemap.xml")], settings)
    mark = len(news.hits)
    report, embedded = run([news.url("/sitemap.xml")], settings)
    assert (report.unchanged, embedded) == (10, 0)
    assert [p for p, _, _ in requests_since(news, mark)] == ["/robots.txt", "/sitemap.xml"]


def test_without_lastmods_pages_are_asked_conditionally(
    news: LocalSite, settings: Settings
) -> None:
    paths = [newsroom.article_path(n) for n in range(1, 4)] + ["/report.pdf"]
    news.routes["/sitemap.xml"] = Route(
        newsroom.sitemap_of(news, paths, lastmod=None), "application/xml"
    )
    run([news.url("/sitemap.xml")], settings)
    mark = len(news.hits)
    report, embedded = run([news.url("/sitemap.xml")], settings)
    assert (report.unchanged, embedded) == (4, 0)
    pages = [(p, s, c) for p, s, c in requests_since(news, mark) if p in paths]
    assert pages == [(p, 304, True) for p in paths]  # ETag for pages, Last-Modified for the PDF


def test_a_validator_never_vouches_for_content_that_was_not_committed(
    news: LocalSite, settings: Settings
) -> None:
    """A crash after fetching a new version must not leave its ETag behind."""
    url = news.url(newsroom.article_path(1))
    run([url], settings)
    page = news.routes[newsroom.article_path(1)]
    news.routes[newsroom.article_path(1)] = replace(
        page, body=page.body.replace(b"night bus", b"tram line"), etag='"a1-v2"'
    )

    class Crashing(FakeEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        ingest([url], settings, Crashing())
    mark = len(news.hits)
    report, _ = run([url], settings)
    assert report.updated == 1
    (request,) = [h for h in news.hits[mark:] if h.path == newsroom.article_path(1)]
    assert request.headers["if-none-match"] == '"a1"' and request.status == 200
    searcher = Searcher.open(settings, FakeEmbedder())
    try:
        assert "tram line" in searcher.article(url).text
    finally:
        searcher.close()


def test_the_deletion_rule(news: LocalSite, settings: Settings) -> None:
    # Pages no longer listed are checked on every prune (not once a week).
    settings = replace(settings, web=replace(settings.web, recheck_days=0))
    feed = news.url("/feed.rss")
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(1, 6)), "application/rss+xml")
    run([feed], settings)
    # Entries 1 to 4 roll off the feed: page 1 is still there, page 2 is deleted (404),
    # page 3 is gone (410), page 4's server fails for a while (500). Entry 5 stays in the
    # feed, updated, and its page is deleted.
    news.routes["/feed.rss"] = Route(
        samples.rss(
            [samples.Entry("Entry 5", news.url(newsroom.article_path(5)), None, "Ed", "2024-03-01")]
        ),
        "application/rss+xml",
    )
    del news.routes[newsroom.article_path(2)]
    del news.routes[newsroom.article_path(5)]
    news.routes[newsroom.article_path(3)] = Route(b"gone", "text/plain", status=410)
    news.routes[newsroom.article_path(4)] = Route(b"oops", "text/plain", status=500)
    mark = len(news.hits)
    kept, _ = run([feed], settings)
    # Without --prune nothing is removed, and articles no longer listed are not even asked.
    assert kept.removed == 0
    assert [p for p, _, _ in requests_since(news, mark)] == [
        "/robots.txt",
        "/feed.rss",
        newsroom.article_path(5),
    ]
    # (Three of five is more than the share a prune may take without --force.)
    pruned, _ = run([feed], settings, prune=True, force=True)
    assert sorted(c.id for c in pruned.changes if c.kind == "removed") == [
        news.url(newsroom.article_path(n)) for n in (2, 3, 5)
    ]
    searcher = Searcher.open(settings, FakeEmbedder())
    try:
        ids = {s.article.id for s in searcher.articles()}
    finally:
        searcher.close()
    assert ids == {news.url(newsroom.article_path(n)) for n in (1, 4)}
    # Pages removed because they are gone are removed, not failures: only page 4 failed.
    assert {p.where: p.reason for p in pruned.skipped} == {
        news.url(newsroom.article_path(4)): "HTTP 500 Internal Server Error",
    }


def test_unlisted_pages_are_checked_at_most_once_in_recheck_days(
    news: LocalSite, settings: Settings
) -> None:
    feed = news.url("/feed.rss")
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(1, 3)), "application/rss+xml")
    run([feed], settings)
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(2, 3)), "application/rss+xml")
    del news.routes[newsroom.article_path(1)]
    mark = len(news.hits)
    report, _ = run([feed], settings, prune=True)
    # Page 1 answered today: within [web] recheck_days (7) it is not asked again.
    assert report.removed == 0
    assert newsroom.article_path(1) not in [p for p, _, _ in requests_since(news, mark)]
    daily = replace(settings, web=replace(settings.web, recheck_days=0))
    report, _ = run([feed], daily, prune=True)
    assert [c.id for c in report.changes] == [news.url(newsroom.article_path(1))]


def test_an_unreachable_feed_removes_nothing(news: LocalSite, settings: Settings) -> None:
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(1, 3)), "application/rss+xml")
    run([news.url("/feed.rss")], settings)
    news.routes["/feed.rss"] = Route(b"down", "text/plain", status=503)
    report, _ = run([news.url("/feed.rss")], settings, prune=True)
    assert report.removed == 0 and report.failed[0].failure == "HTTP 503 Service Unavailable"


def test_a_page_in_a_feed_and_a_sitemap_is_one_article(news: LocalSite, settings: Settings) -> None:
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(1, 3)), "application/rss+xml")
    news.routes["/sitemap.xml"] = Route(
        newsroom.sitemap_of(news, [newsroom.article_path(n) for n in (2, 3)]), "application/xml"
    )
    # Without the feed's title and date, the sitemap's copy of page 2 differs: reported.
    report, _ = run([news.url("/feed.rss"), news.url("/sitemap.xml")], settings)
    assert report.added == 3
    assert [p.reason for p in report.skipped] == [
        f"duplicate article id {news.url(newsroom.article_path(2))!r}; kept the first"
    ]
    news.routes["/s2.xml"] = Route(
        newsroom.sitemap_of(news, [newsroom.article_path(3), newsroom.article_path(3)]),
        "application/xml",
    )
    again, _ = run([news.url("/sitemap.xml"), news.url("/s2.xml")], settings)
    assert again.skipped == []  # the very same article twice is no problem


def test_passages_from_web_pages_link_to_the_quoted_text(
    news: LocalSite, settings: Settings
) -> None:
    url = news.url(newsroom.article_path(2))
    run([url], settings)
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    try:
        passage = searcher.search("harbour ferry timetable", k=1).passages[0]
    finally:
        searcher.close()
    assert passage.article.url == url
    assert passage.link is not None and passage.link.startswith(url + "#:~:text=The%20harbour")


def test_cli_ingest_reports_each_failure_by_url_and_exits_2(
    news: LocalSite, settings: Settings
) -> None:
    news.routes["/sitemap.xml"] = Route(
        newsroom.sitemap_of(news, [newsroom.article_path(1), *newsroom.FAULTS]), "application/xml"
    )
    config = settings.index_dir.parent / "citebot.toml"
    config.write_text("[web]\ndelay_seconds = 0.0\ntimeout_seconds = 0.5\n")
    runner = CliRunner()
    args = ["--config", str(config), "ingest", "--index", str(settings.index_dir)]
    result = runner.invoke(cli, [*args, news.url("/sitemap.xml"), "--json"], obj=fake_model())
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert {s["where"]: s["reason"] for s in report["skipped"]} == {
        news.url(path): reason for path, reason in newsroom.FAULTS.items()
    }
    (source,) = report["sources"]
    assert source["root"] == news.url("/sitemap.xml")
    assert (source["articles"], source["added"], source["skipped"]) == (1, 1, len(newsroom.FAULTS))
    text = runner.invoke(cli, [*args, news.url("/sitemap.xml")], obj=fake_model())
    assert text.exit_code == 2
    for path, reason in newsroom.FAULTS.items():
        assert f"skipped {news.url(path)}: {reason}" in text.stderr
    # Read: the sitemap, the article, and the menu and stub pages (which held no article).
    assert "1 articles from 4 pages" in text.stdout


def test_citebot_sync_prints_what_changed(news: LocalSite, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "memo.md").write_text("# Memo\n\nThe memo says the harbour opens in May.\n")
    (folder / "old.md").write_text("# Old\n\nAn old note about the bakery.\n")
    news.routes["/feed.rss"] = Route(teaser_feed(news, range(1, 3)), "application/rss+xml")
    config = tmp_path / "citebot.toml"
    config.write_text(
        f'index_dir = "index"\nsources = ["notes", "{news.url("/feed.rss")}"]\n'
        "[web]\ndelay_seconds = 0.0\n"
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(config), "sync"], obj=fake_model())
    assert first.exit_code == 0, first.output
    assert f"added    Entry 1 ({news.url(newsroom.article_path(1))})" in first.stdout
    assert "added    Memo (memo.md)" in first.stdout
    assert "synced 2 sources: 4 added, 0 updated, 0 removed, 0 failed, 0 unchanged" in first.stdout

    (folder / "old.md").unlink()
    page = news.routes[newsroom.article_path(2)]
    news.routes[newsroom.article_path(2)] = replace(
        page, body=page.body.replace(b"harbour", b"harbor"), etag='"a2-v2"'
    )
    news.routes["/feed.rss"] = Route(
        samples.rss(
            [
                samples.Entry(
                    "Entry 1", news.url(newsroom.article_path(1)), None, "Ed", "2024-02-01"
                ),
                samples.Entry(
                    "Entry 2", news.url(newsroom.article_path(2)), None, "Ed", "2024-02-05"
                ),
                samples.Entry("Entry 9", news.url("/missing"), None, "Ed", "2024-02-05"),
            ]
        ),
        "application/rss+xml",
    )
    second = runner.invoke(cli, ["--config", str(config), "sync", "--force"], obj=fake_model())
    assert second.exit_code == 2
    lines = second.stdout.splitlines()
    assert f"updated  Entry 2 ({news.url(newsroom.article_path(2))})" in lines
    assert "removed  Old (old.md)" in lines
    assert f"failed   {news.url('/missing')}: HTTP 404 Not Found" in second.stderr
    assert "1 updated, 1 removed, 1 failed, 2 unchanged" in lines[-1]
