"""Hostile and broken servers (issue 15): one bad URL costs only itself, every request has a
deadline, decoding is bounded, web documents get the file limits, crawls are bounded per
source, attribution cannot be spoofed, the deletion rule, politeness and text."""

from __future__ import annotations

import logging
import time
import tracemalloc
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from retrieval.cli import cli
from retrieval.config import IngestSettings, Settings, WebSettings
from retrieval.errors import FetchError
from retrieval.ingest import IngestReport, ingest
from retrieval.web.content import decode_html
from retrieval.web.fetch import Fetcher
from tests.fakes import FakeEmbedder
from tests.web import newsroom, samples
from tests.web.server import DripSite, LocalSite, Route
from tests.web.test_source import read
from tests.web.test_sync import fake_model


def run(sources: list[str], settings: Settings, **options: bool) -> IngestReport:
    return ingest(sources, settings, FakeEmbedder(), **options)


def full_text_entry(n: int, link: str | None) -> samples.Entry:
    text = " ".join(samples.article_text(f"harbour plan {n}", 6) * 3)
    return samples.Entry(f"Entry {n}", link, f"<p>{text}</p>", "Ed", "2024-02-01")


# -- 1. one bad URL costs only itself ----------------------------------------------------

SURROGATE_FEED = (
    b"<rss version='2.0'><channel><title>t</title><item><title>&#55296;</title>"
    b"<link>http://127.0.0.1:8765/a</link></item></channel></rss>"
)


def test_a_feed_that_breaks_the_feed_parser_costs_only_itself(
    news: LocalSite, settings: Settings
) -> None:
    news.routes["/f.xml"] = Route(SURROGATE_FEED, "application/rss+xml")
    good = news.url(newsroom.article_path(1))
    report = run([news.url("/f.xml"), good], settings)
    assert report.added == 1
    (problem,) = report.skipped
    assert problem.where == news.url("/f.xml")
    # What is wrong, in words: not Python's "'utf-8' codec can't encode character '\ud800'…".
    assert problem.reason == "cannot be read: it holds characters that are not valid text"


def test_unparseable_listed_urls_are_problems_of_their_own(
    news: LocalSite, settings: Settings
) -> None:
    good = news.url(newsroom.article_path(1))
    long_url = news.url("/" + "a" * 70_000)
    news.routes["/s.xml"] = Route(
        samples.urlset(
            [
                ("http://127.0.0.1:99999/x", None),
                ("http://[::1/x", None),
                (good, None),
                (long_url, None),
            ]
        ),
        "application/xml",
    )
    _, articles, problems = read(news.url("/s.xml"), settings)
    assert [a.id for a in articles] == [good]
    reasons = [p.reason for p in problems]
    assert reasons == [
        "not a valid URL (bad host or port)",
        "not a valid URL (bad host or port)",
        "not a valid URL (longer than 8,192 characters)",
    ]
    assert all(len(p.where) <= 200 for p in problems)


def test_a_2000_deep_chain_of_sitemap_indexes_stops_at_the_depth_limit(
    news: LocalSite, settings: Settings
) -> None:
    for n in range(2000):
        news.routes[f"/s{n}.xml"] = Route(
            samples.sitemap_index([news.url(f"/s{n + 1}.xml")]), "application/xml"
        )
    _, articles, problems = read(news.url("/s0.xml"), settings)
    assert articles == []
    assert [p.reason for p in problems] == [
        "nests sitemap indexes more than 4 deep; the deeper ones were not read"
        " ([web] max_sitemap_depth)"
    ]
    assert len(news.hits_to("/s5.xml")) == 0 and len(news.hits_to("/s4.xml")) == 1


def test_a_url_with_control_characters_is_a_fetch_error(
    site: LocalSite, web_settings: WebSettings
) -> None:
    with Fetcher(web_settings) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(site.url("/a\x01b"))
    assert caught.value.reason == "refused: not a valid URL"
    assert site.hits == []


# -- 2. every request has a wall-clock deadline ------------------------------------------

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Filler: " + b"x" * 200 + b"\r\n\r\n"


@pytest.mark.parametrize("path", ["/page", "/robots.txt"])
def test_a_dripping_server_is_cut_off_at_the_timeout(web_settings: WebSettings, path: str) -> None:
    with DripSite({path: HEADERS}, interval=0.05) as drip, Fetcher(web_settings) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.get(drip.base + "/page")
        took = time.monotonic() - started
    # 260 bytes at 0.05 s each would take 13 s; each byte comes well within the timeout.
    assert took < web_settings.timeout_seconds + 1.0
    assert caught.value.reason.startswith("timed out after 2s")


# -- 3. decompression is bounded ---------------------------------------------------------


def _gzip_stream(chunks: int, chunk: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(chunk) for _ in range(chunks)]
    return b"".join([*out, packer.flush()])


def test_a_stacked_gzip_bomb_is_stopped_at_the_limit(
    site: LocalSite, web_settings: WebSettings
) -> None:
    inner = _gzip_stream(300, b"\0" * 1_000_000)  # 300 MB of zeros
    bomb = _gzip_stream(1, inner)
    site.routes["/bomb"] = Route(bomb, headers={"Content-Encoding": "gzip, gzip"})
    small = replace(web_settings, max_bytes=1_000_000)
    tracemalloc.start()
    try:
        with Fetcher(small) as fetcher, pytest.raises(FetchError) as caught:
            fetcher.get(site.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "limit" in caught.value.reason
    assert peak < 20_000_000


def test_an_unknown_content_encoding_is_refused(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/x"] = Route(b"data", headers={"Content-Encoding": "compress"})
    with Fetcher(web_settings) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(site.url("/x"))
    assert caught.value.reason == (
        "the response could not be decoded: unsupported Content-Encoding 'compress'"
    )


# -- 4. web documents get the same limits as files ---------------------------------------


def test_web_pages_pass_the_article_and_title_limits(news: LocalSite, settings: Settings) -> None:
    long = samples.page("Long", samples.article_text("bridge") * 40)
    news.routes["/long"] = Route(long.encode())
    titled = samples.page("T" * 400, samples.article_text("ferry"))
    news.routes["/titled"] = Route(titled.encode())
    limits = IngestSettings(max_article_chars=5_000, max_title_chars=300)
    limited = replace(settings, ingest=limits)
    _, articles, problems = read(news.url("/long"), limited)
    assert articles == [] and "[ingest] max_article_chars" in problems[0].reason
    _, articles, problems = read(news.url("/titled"), limited)
    assert articles == [] and "[ingest] max_title_chars" in problems[0].reason


def test_web_pages_are_parsed_in_a_worker_within_its_time_limit(
    news: LocalSite, settings: Settings
) -> None:
    # A megabyte of text takes trafilatura well over a second: past the limit, the
    # worker is killed and the page reported; in this process it would have been read.
    news.routes["/big"] = Route(samples.page("Big", ["word " * 20_000] * 10).encode())
    limits = IngestSettings(max_seconds_per_file=0.3, max_article_chars=10_000_000)
    _, articles, problems = read(news.url("/big"), replace(settings, ingest=limits))
    assert articles == []
    assert problems[0].reason == "took longer than 0.3 s to read ([ingest] max_seconds_per_file)"


# -- 5. crawl work is bounded per source --------------------------------------------------


def test_max_urls_counts_full_text_entries(news: LocalSite, settings: Settings) -> None:
    entries = [full_text_entry(n, news.url(f"/story/{n}")) for n in range(300)]
    news.routes["/full.rss"] = Route(samples.rss(entries), "application/rss+xml")
    capped = replace(settings, web=replace(settings.web, max_urls=20))
    _, articles, problems = read(news.url("/full.rss"), capped)
    assert len(articles) == 20
    assert [p.reason for p in problems] == [
        "lists more than 20 pages; the rest were not read ([web] max_urls)"
    ]


def test_child_sitemaps_are_capped_per_source(news: LocalSite, settings: Settings) -> None:
    children = [news.url(f"/child{n}.xml") for n in range(10)]
    news.routes["/index.xml"] = Route(samples.sitemap_index(children), "application/xml")
    for n in range(10):
        news.routes[f"/child{n}.xml"] = Route(
            samples.urlset([(news.url(newsroom.article_path(n + 1)), None)]), "application/xml"
        )
    capped = replace(settings, web=replace(settings.web, max_sitemaps=3))
    _, articles, problems = read(news.url("/index.xml"), capped)
    assert len(articles) == 3
    assert [p.reason for p in problems] == [
        "lists more than 3 sitemaps; the rest were not read ([web] max_sitemaps)"
    ]
    assert news.hits_to("/child3.xml") == []


def test_requests_are_capped_per_source(news: LocalSite, settings: Settings) -> None:
    paths = [newsroom.article_path(n) for n in range(1, 8)]
    news.routes["/s.xml"] = Route(newsroom.sitemap_of(news, paths), "application/xml")
    capped = replace(settings, web=replace(settings.web, max_requests=4))
    _, articles, problems = read(news.url("/s.xml"), capped)
    assert len(articles) == 3
    assert [p.reason for p in problems] == [
        "needed more than 4 requests; the rest were not read ([web] max_requests)"
    ]


# -- 7. attribution cannot be spoofed ----------------------------------------------------


def test_a_canonical_on_another_site_is_not_cited(news: LocalSite, settings: Settings) -> None:
    page = samples.page(
        "Spoof", samples.article_text("tram"), canonical="https://bank.example/login"
    )
    news.routes["/spoof"] = Route(page.encode())
    _, (article,), _ = read(news.url("/spoof"), settings)
    assert article.url == news.url("/spoof")


def test_a_full_text_entry_cannot_claim_another_sites_page(
    news: LocalSite, settings: Settings
) -> None:
    entries = [
        full_text_entry(1, "https://victim.example/real-story"),
        full_text_entry(2, "http://user:secret@127.0.0.1/own"),
    ]
    news.routes["/f.rss"] = Route(samples.rss(entries), "application/rss+xml")
    _, articles, problems = read(news.url("/f.rss"), settings)
    assert problems == []
    spoofed, own = articles
    # Its text is the feed's: known and cited by the feed's address, not the other site's.
    assert spoofed.id.startswith(news.url("/f.rss") + "#") and spoofed.url == news.url("/f.rss")
    assert spoofed.source == spoofed.id
    assert "secret" not in f"{own.id} {own.url} {own.source}"


# -- 8. the deletion rule ---------------------------------------------------------------


def test_a_listed_page_that_is_gone_is_removed_though_its_lastmod_is_unchanged(
    news: LocalSite, settings: Settings
) -> None:
    paths = [newsroom.article_path(n) for n in (1, 2)]
    news.routes["/s.xml"] = Route(newsroom.sitemap_of(news, paths), "application/xml")
    daily = replace(settings, web=replace(settings.web, recheck_days=0))
    assert run([news.url("/s.xml")], daily).added == 2
    del news.routes[paths[1]]
    report = run([news.url("/s.xml")], daily, prune=True)
    assert [c.id for c in report.changes if c.kind == "removed"] == [news.url(paths[1])]
    assert report.skipped == []


def test_a_url_that_was_a_page_and_is_now_a_feed_drops_the_page(
    news: LocalSite, settings: Settings
) -> None:
    news.routes["/home"] = Route(
        samples.page("Home", samples.article_text("library")).encode(), "text/html"
    )
    assert run([news.url("/home")], settings).added == 1
    feed = samples.rss([samples.Entry("One", news.url(newsroom.article_path(1)), None)])
    news.routes["/home"] = Route(feed, "application/rss+xml")
    report = run([news.url("/home")], settings, prune=True, force=True)
    assert [c.id for c in report.changes if c.kind == "removed"] == [news.url("/home")]


def test_sync_exits_0_when_the_only_change_is_a_page_gone(
    news: LocalSite, settings: Settings, tmp_path: Path
) -> None:
    paths = [newsroom.article_path(n) for n in (1, 2, 3)]
    news.routes["/s.xml"] = Route(newsroom.sitemap_of(news, paths), "application/xml")
    config = tmp_path / "citebot.toml"
    config.write_text(
        f'index_dir = "{tmp_path / "index"}"\nsources = ["{news.url("/s.xml")}"]\n'
        "[web]\ndelay_seconds = 0.0\nrecheck_days = 0\n"
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(config), "sync"], obj=fake_model())
    assert first.exit_code == 0, first.output
    del news.routes[paths[0]]
    result = runner.invoke(cli, ["--config", str(config), "sync"], obj=fake_model())
    assert result.exit_code == 0, result.output
    assert "1 removed" in result.output


# -- 9. politeness and text --------------------------------------------------------------


def test_retry_after_is_honoured_and_reported(
    site: LocalSite, web_settings: WebSettings, caplog: pytest.LogCaptureFixture
) -> None:
    site.routes["/busy"] = Route(
        b"later", status=503, headers={"Retry-After": "1"}, then=Route(b"<p>ok</p>")
    )
    with caplog.at_level(logging.INFO), Fetcher(web_settings) as fetcher:
        fetched = fetcher.get(site.url("/busy"))
    first, second = site.hits_to("/busy")
    assert fetched.body == b"<p>ok</p>" and second.started - first.ended >= 0.95
    assert "retrying in 1s (Retry-After)" in caplog.text


def test_a_retry_after_over_the_cap_is_a_reported_failure(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/busy"] = Route(b"later", status=429, headers={"Retry-After": "3600"})
    with Fetcher(web_settings) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(site.url("/busy"))
    assert caught.value.reason == (
        "HTTP 429 Too Many Requests; it asks to retry after 3600s, more than the 60s allowed"
        " ([web] max_retry_after_seconds)"
    )
    time.sleep(0.1)  # the server logs a request once it has answered
    assert len(site.hits_to("/busy")) == 1


def test_crawl_delay_applies_to_the_first_request_after_robots_txt(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/robots.txt"] = Route(b"User-agent: *\nCrawl-delay: 0.5\n", "text/plain")
    site.routes["/a"] = Route(b"<p>a</p>")
    with Fetcher(web_settings) as fetcher:
        fetcher.get(site.url("/a"))
    robots, page = site.hits_to("/robots.txt")[0], site.hits_to("/a")[0]
    assert page.started - robots.ended >= 0.49


def test_robots_txt_is_read_once_per_host_per_run(news: LocalSite, settings: Settings) -> None:
    run([news.url(newsroom.article_path(1)), news.url(newsroom.article_path(2))], settings)
    assert len(news.hits_to("/robots.txt")) == 1


def test_utf8_with_a_stray_byte_stays_utf8() -> None:
    body = "<p>café crème</p>".encode() + b"\xff"
    assert decode_html(body, "utf-8") == "<p>café crème</p>\ufffd"


def test_invisible_characters_are_stripped_from_titles(news: LocalSite, settings: Settings) -> None:
    title = "Pay\u202egnp.exe\u200b now"
    news.routes["/bidi"] = Route(samples.page(title, samples.article_text("canal")).encode())
    entry = samples.Entry(title, news.url(newsroom.article_path(1)), None)
    news.routes["/bidi.rss"] = Route(samples.rss([entry]), "application/rss+xml")
    _, (page,), _ = read(news.url("/bidi"), settings)
    _, (listed,), _ = read(news.url("/bidi.rss"), settings)
    assert page.title == listed.title == "Paygnp.exe now"


def test_trafilaturas_error_lines_come_through_our_logging_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import retrieval.web.documents  # noqa: F401  (it routes trafilatura's log)

    with caplog.at_level(logging.DEBUG):
        logging.getLogger("trafilatura.utils").error("parsed tree length: 1, wrong data type")
    ours = [r for r in caplog.records if r.name == "retrieval.web.documents"]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (logging.DEBUG, "trafilatura: parsed tree length: 1, wrong data type")
    ]
    # Not passed on to the root logger, where the CLI would print it as an ERROR line.
    assert logging.getLogger("trafilatura").propagate is False
