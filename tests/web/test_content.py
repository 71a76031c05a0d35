"""Telling pages, feeds, sitemaps and PDFs apart; decoding pages whatever they claim; parsing."""

from __future__ import annotations

import gzip

import pytest

from retrieval.errors import LoadError
from retrieval.web.content import decode_html, detect_kind, gunzip
from retrieval.web.feeds import parse_feed
from retrieval.web.sitemaps import parse_sitemap
from tests.helpers import make_pdf
from tests.web import samples


@pytest.mark.parametrize(
    ("content_type", "body", "kind"),
    [
        ("text/html", samples.page("Title", ["Text."]).encode(), "html"),
        ("text/html", samples.rss([]), "feed"),  # a feed sent as text/html is still a feed
        ("application/xml", samples.atom([]), "feed"),
        ("text/xml", samples.urlset([]), "sitemap"),
        ("application/octet-stream", samples.sitemap_index([]), "sitemap"),
        ("application/octet-stream", make_pdf([["A page."]]), "pdf"),
        ("application/pdf", b"junk", "pdf"),
        ("application/rss+xml", b"not xml at all", "feed"),
        ("", b"<!doctype html><title>x</title><p>hi", "html"),
        ("application/json", b'{"a": 1}', None),
        ("image/png", b"\x89PNG\r\n", None),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_the_kind_comes_from_the_content_first(
    content_type: str, body: bytes, kind: str | None
) -> None:
    assert detect_kind(content_type, body) == kind


def test_valid_utf8_wins_over_a_wrong_latin1_label() -> None:
    body = "<p>Café crème — naïve</p>".encode()
    assert decode_html(body, "iso-8859-1") == "<p>Café crème — naïve</p>"


def test_windows_1252_bytes_labelled_utf8_are_read_as_windows_1252() -> None:
    body = "<p>“Smart quotes” and café</p>".encode("cp1252")
    assert decode_html(body, "utf-8") == "<p>“Smart quotes” and café</p>"


def test_the_meta_charset_is_used_when_the_header_says_nothing() -> None:
    body = '<meta charset="koi8-r"><p>Привет</p>'.encode("koi8-r")
    assert decode_html(body, None).endswith("<p>Привет</p>")


def test_gunzip_caps_what_it_inflates() -> None:
    assert gunzip(gzip.compress(b"abc"), 10) == b"abc"
    with pytest.raises(LoadError, match="limit"):
        gunzip(gzip.compress(b"x" * 1000), 100)


def test_rss_entries_with_full_text_dates_authors_and_links() -> None:
    body = samples.rss(
        [
            samples.Entry("One", "/one", "<p>Full text.</p>", "Ann", "2024-01-02"),
            samples.Entry("Two", "https://example.org/two", None, None, None),
        ]
    )
    feed = parse_feed(body, "https://example.org/feed.xml")
    assert feed.title == "Sample feed"
    one, two = feed.entries
    assert (one.title, one.link, one.author, one.date) == (
        "One",
        "https://example.org/one",
        "Ann",
        "2024-01-02",
    )
    assert one.html == "<p>Full text.</p>" and one.stamp
    assert (two.link, two.html, two.date) == ("https://example.org/two", None, None)


def test_atom_entries() -> None:
    body = samples.atom(
        [samples.Entry("A", "https://example.org/a", "<p>Body</p>", "Bo", "2023-05-06")]
    )
    (entry,) = parse_feed(body, "https://example.org/atom.xml").entries
    assert (entry.title, entry.link, entry.author, entry.date) == (
        "A",
        "https://example.org/a",
        "Bo",
        "2023-05-06",
    )
    assert entry.html == "<p>Body</p>"


def test_not_a_feed() -> None:
    with pytest.raises(LoadError, match="not a readable feed"):
        parse_feed(b"<html><body>hello</body></html>", "https://example.org/x")


def test_sitemaps_and_sitemap_indexes() -> None:
    urlset = parse_sitemap(
        samples.urlset([("/a", "2024-01-01"), ("https://example.org/b", None), ("/a", None)]),
        "https://example.org/sitemap.xml",
    )
    assert not urlset.is_index
    assert [(e.url, e.lastmod) for e in urlset.entries] == [
        ("https://example.org/a", "2024-01-01"),
        ("https://example.org/b", None),
    ]
    index = parse_sitemap(samples.sitemap_index(["/s1.xml"]), "https://example.org/index.xml")
    assert index.is_index and [e.url for e in index.entries] == ["https://example.org/s1.xml"]
    with pytest.raises(LoadError, match="not a sitemap"):
        parse_sitemap(samples.rss([]), "https://example.org/x")


def test_a_sitemap_with_an_entity_bomb_is_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://example.org/&b;</loc></url></urlset>"
    )
    entries = parse_sitemap(bomb, "https://example.org/s.xml").entries
    assert all("aaaaaaaaaa" not in e.url for e in entries)
