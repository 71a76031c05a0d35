"""A URL as a source, read against the local news site: kinds, metadata, every fault by URL."""

from __future__ import annotations

import gzip
from dataclasses import replace

import pytest

from retrieval.config import Settings
from retrieval.errors import CitebotError
from retrieval.records import Article, Problem
from retrieval.web.source import WebSource
from tests.web import newsroom, samples
from tests.web.server import LocalSite, Route


def read(url: str, settings: Settings) -> tuple[WebSource, list[Article], list[Problem]]:
    source = WebSource(url, settings)
    items = list(source.read())
    articles = [i for i in items if isinstance(i, Article)]
    problems = [i for i in items if isinstance(i, Problem)]
    return source, articles, problems


def test_every_fault_is_reported_by_url_with_its_reason(
    news: LocalSite, settings: Settings
) -> None:
    good = [newsroom.article_path(1), "/cafe"]
    news.routes["/sitemap.xml"] = Route(
        newsroom.sitemap_of(news, good + list(newsroom.FAULTS)), "application/xml"
    )
    source, articles, problems = read(news.url("/sitemap.xml"), settings)
    assert {p.where: p.reason for p in problems} == {
        news.url(path): reason for path, reason in newsroom.FAULTS.items()
    }
    assert [a.id for a in articles] == [news.url(p) for p in good]
    outcome = source.outcome
    assert outcome.failure is None and not outcome.complete
    # Only pages that answer 404 or 410 are gone; a 500 or a timeout may come back.
    assert outcome.gone == {news.url("/missing"), news.url("/gone")}
    assert news.hits_to("/private/memo") == []


def test_an_article_page(news: LocalSite, settings: Settings) -> None:
    url = news.url(newsroom.article_path(2))
    source, (article,), problems = read(url, settings)
    assert problems == []
    assert (article.id, article.source, article.url) == (url, url, url)
    assert article.title == "News 2: the harbour ferry"
    assert article.author == "Desk Writer" and article.date == "2024-02-03"
    assert article.paragraphs[0].startswith("The harbour ferry 2 was the subject")
    assert "Home" not in article.text and "rights reserved" not in article.text
    assert source.root == url and source.outcome.documents == 1


def test_a_redirected_page_keeps_the_address_it_was_listed_under(
    news: LocalSite, settings: Settings
) -> None:
    _, (article,), _ = read(news.url("/old-address"), settings)
    assert article.id == news.url("/old-address")
    assert article.url == news.url(newsroom.article_path(1))  # where it is now, to cite


def test_a_canonical_link_is_the_address_cited(news: LocalSite, settings: Settings) -> None:
    html = samples.page("Canon", samples.article_text("canon"), canonical=news.url("/canon"))
    news.routes["/canon?utm=feed"] = Route(html.encode())
    _, (article,), _ = read(news.url("/canon?utm=feed"), settings)
    assert article.id == news.url("/canon?utm=feed") and article.url == news.url("/canon")


def test_a_page_labelled_utf8_in_windows_1252_and_a_gzip_page(
    news: LocalSite, settings: Settings
) -> None:
    _, (cafe,), _ = read(news.url("/cafe"), settings)
    assert "café’s “new” terrace" in cafe.text
    _, (compressed,), _ = read(news.url("/compressed"), settings)
    assert compressed.title == "Compressed"


def test_rss_full_text_entries_and_teasers(news: LocalSite, settings: Settings) -> None:
    full = "".join(f"<p>{p}</p>" for p in samples.article_text("full text entry") * 4)
    news.routes["/feed.rss"] = Route(
        samples.rss(
            [
                samples.Entry("Whole story", news.url("/whole"), full, "Ann Writer", "2024-03-02"),
                samples.Entry(
                    "Teaser title",
                    news.url(newsroom.article_path(3)),
                    "<p>Read more…</p>",
                    "Bo Byline",
                    "2024-03-01",
                ),
            ]
        ),
        "application/rss+xml",
        etag='"feed-1"',
    )
    source, articles, problems = read(news.url("/feed.rss"), settings)
    assert problems == []
    whole, teaser = articles
    # The full text came from the feed: its link was not fetched.
    assert news.hits_to("/whole") == []
    assert (whole.id, whole.url, whole.title) == (news.url("/whole"),) * 2 + ("Whole story",)
    assert (whole.author, whole.date) == ("Ann Writer", "2024-03-02")
    assert whole.paragraphs[0].startswith("The full text entry was the subject")
    # The teaser's link was fetched and extracted; the entry's metadata wins.
    assert teaser.id == news.url(newsroom.article_path(3))
    assert (teaser.title, teaser.author, teaser.date) == ("Teaser title", "Bo Byline", "2024-03-01")
    assert teaser.paragraphs[0].startswith("The bakery 3 was the subject")
    assert source.outcome.gone == frozenset() and source.outcome.failure is None


def test_atom_entries_without_text_are_read_from_their_links(
    news: LocalSite, settings: Settings
) -> None:
    entries = [
        samples.Entry(
            f"Atom {n}", news.url(newsroom.article_path(n)), None, "Cy", "2024-01-0" + str(n)
        )
        for n in (4, 5)
    ]
    news.routes["/atom.xml"] = Route(samples.atom(entries), "application/atom+xml")
    _, articles, problems = read(news.url("/atom.xml"), settings)
    assert problems == []
    assert [(a.title, a.date, a.author) for a in articles] == [
        ("Atom 4", "2024-01-04", "Cy"),
        ("Atom 5", "2024-01-05", "Cy"),
    ]


def test_a_sitemap_index_with_a_gzipped_sitemap(news: LocalSite, settings: Settings) -> None:
    news.routes["/sitemap_index.xml"] = Route(
        samples.sitemap_index([news.url("/sitemap-1.xml"), news.url("/sitemap-2.xml.gz")]),
        "application/xml",
    )
    news.routes["/sitemap-1.xml"] = Route(
        newsroom.sitemap_of(news, [newsroom.article_path(1), "/report.pdf"]), "application/xml"
    )
    news.routes["/sitemap-2.xml.gz"] = Route(
        gzip.compress(newsroom.sitemap_of(news, [newsroom.article_path(2)])), "application/x-gzip"
    )
    source, articles, problems = read(news.url("/sitemap_index.xml"), settings)
    assert problems == []
    assert [a.id for a in articles] == [
        news.url(p) for p in (newsroom.article_path(1), "/report.pdf", newsroom.article_path(2))
    ]
    assert source.outcome.documents == 6  # the index, two sitemaps, three pages


def test_a_pdf_by_url_is_read_by_page(news: LocalSite, settings: Settings) -> None:
    _, (report,), _ = read(news.url("/report.pdf"), settings)
    assert report.title == "Harbour report" and report.pages == (1, 2)
    assert report.url == news.url("/report.pdf")
    assert report.paragraphs[1].startswith("It recommends a second boat")


def test_a_sitemap_that_lists_a_sitemap_index_where_pages_belong(
    news: LocalSite, settings: Settings
) -> None:
    news.routes["/feed.rss"] = Route(samples.rss([]), "application/rss+xml")
    news.routes["/s.xml"] = Route(newsroom.sitemap_of(news, ["/feed.rss"]), "application/xml")
    _, _, problems = read(news.url("/s.xml"), settings)
    assert problems == [
        Problem(news.url("/feed.rss"), "a feed where an article page or a PDF was expected")
    ]


def test_an_unreadable_root_is_a_failure_and_nothing_is_gone(
    news: LocalSite, settings: Settings
) -> None:
    source, articles, problems = read(news.url("/feed-that-moved.xml"), settings)
    assert articles == [] and problems == [
        Problem(news.url("/feed-that-moved.xml"), "HTTP 404 Not Found")
    ]
    # Not an indexed article's address: the feed moved, its articles stay.
    assert source.outcome.failure == "HTTP 404 Not Found"
    assert source.outcome.gone == frozenset()
    source, _, _ = read(news.url("/logo.png"), settings)
    assert source.outcome.failure == newsroom.FAULTS["/logo.png"]


def test_at_most_max_urls_pages_per_source(news: LocalSite, settings: Settings) -> None:
    paths = [newsroom.article_path(n) for n in range(1, 6)]
    news.routes["/s.xml"] = Route(newsroom.sitemap_of(news, paths), "application/xml")
    capped = replace(settings, web=replace(settings.web, max_urls=2))
    _, articles, problems = read(news.url("/s.xml"), capped)
    assert len(articles) == 2
    assert problems == [
        Problem(
            news.url("/s.xml"), "lists more than 2 pages; the rest were not read ([web] max_urls)"
        )
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/a", "only http and https URLs can be sources"),
        ("https://user:secret@example.org/feed", "URLs with a user name or password"),
    ],
)
def test_unusable_urls_are_refused_up_front(url: str, message: str, settings: Settings) -> None:
    with pytest.raises(CitebotError, match=message) as caught:
        WebSource(url, settings)
    assert "secret" not in str(caught.value)
