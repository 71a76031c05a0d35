"""The polite fetcher against a real local server: limits, robots.txt, conditional GETs."""

from __future__ import annotations

import gzip
import itertools
import socket
import threading
from dataclasses import replace

import pytest

from retrieval.addresses import UrlPolicy
from retrieval.config import WebSettings
from retrieval.errors import FetchError
from retrieval.web.fetch import Fetcher, Validators
from tests.web.server import LocalSite, Route

PAGE = b"<html><body><p>Hello</p></body></html>"


def fetch(site: LocalSite, settings: WebSettings, path: str, **kwargs: object):
    with Fetcher(settings) as fetcher:
        return fetcher.get(site.url(path), **kwargs)


def failure(site: LocalSite, settings: WebSettings, path: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(site, settings, path)
    assert caught.value.url == site.url(path)
    return caught.value


def test_a_page_with_its_type_charset_and_validators(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/a"] = Route(
        PAGE, "text/html; charset=ISO-8859-1", etag='"v1"', last_modified="Mon, 01 Jan 2024"
    )
    fetched = fetch(site, web_settings, "/a")
    assert (fetched.status, fetched.body, fetched.content_type) == (200, PAGE, "text/html")
    assert fetched.charset == "ISO-8859-1"
    assert fetched.validators == Validators('"v1"', "Mon, 01 Jan 2024")
    request = site.hits_to("/a")[0]
    assert request.headers["user-agent"] == "citebot-tests/1.0"
    assert "gzip" in request.headers["accept-encoding"]


def test_gzip_is_decoded(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/z"] = Route(PAGE * 50, gzip=True)
    assert fetch(site, web_settings, "/z").body == PAGE * 50


def test_conditional_requests_get_not_modified(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/e"] = Route(PAGE, etag='"v1"')
    site.routes["/m"] = Route(PAGE, last_modified="Tue, 02 Jan 2024 10:00:00 GMT")
    first = fetch(site, web_settings, "/e")
    again = fetch(site, web_settings, "/e", validators=first.validators)
    assert again.not_modified and again.body == b"" and again.validators.etag == '"v1"'
    dated = fetch(site, web_settings, "/m")
    assert fetch(site, web_settings, "/m", validators=dated.validators).not_modified
    assert site.hits_to("/e")[1].headers["if-none-match"] == '"v1"'
    site.routes["/e"] = Route(PAGE + b"!", etag='"v2"')
    changed = fetch(site, web_settings, "/e", validators=first.validators)
    assert changed.status == 200 and changed.validators.etag == '"v2"'


def test_redirects_are_followed_up_to_the_cap(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/old"] = Route(status=301, location="/mid")
    site.routes["/mid"] = Route(status=302, location=site.url("/new"))
    site.routes["/new"] = Route(PAGE)
    fetched = fetch(site, web_settings, "/old")
    assert fetched.final_url == site.url("/new") and fetched.body == PAGE
    error = failure(site, replace(web_settings, max_redirects=1), "/old")
    assert error.reason == "more than 1 redirects"
    site.routes["/loop"] = Route(status=307, location="/loop")
    assert "redirects" in failure(site, web_settings, "/loop").reason


def test_a_redirect_to_another_scheme_is_refused(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/ftp"] = Route(status=301, location="ftp://127.0.0.1/file")
    reason = failure(site, web_settings, "/ftp").reason
    assert reason == "refused: only http and https URLs are fetched (a redirect)"


@pytest.mark.parametrize(
    ("status", "reason", "gone"),
    [
        (404, "HTTP 404 Not Found", True),
        (410, "HTTP 410 Gone", True),
        (500, "HTTP 500 Internal Server Error", False),
        (403, "HTTP 403 Forbidden", False),
    ],
)
def test_error_statuses(
    site: LocalSite, web_settings: WebSettings, status: int, reason: str, gone: bool
) -> None:
    site.routes["/x"] = Route(b"no", status=status)
    error = failure(site, web_settings, "/x")
    assert (error.reason, error.status, error.gone) == (reason, status, gone)


def test_a_slow_response_times_out(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/slow"] = Route(PAGE, delay=1.5)
    error = failure(site, replace(web_settings, timeout_seconds=0.3), "/slow")
    assert error.reason == "timed out after 0.3s"


def test_responses_over_the_size_cap_are_refused(
    site: LocalSite, web_settings: WebSettings
) -> None:
    small = replace(web_settings, max_bytes=1000)
    site.routes["/big"] = Route(b"x" * 5000)
    assert failure(site, small, "/big").reason == (
        "larger than the 1,000-byte limit ([web] max_bytes)"
    )
    # Compressed it is small; decompressed it is not: the cap applies to what is decoded.
    site.routes["/bomb"] = Route(b"x" * 100_000, gzip=True)
    assert len(gzip.compress(b"x" * 100_000)) < 1000
    assert "limit" in failure(site, small, "/bomb").reason


def test_robots_txt_is_obeyed_and_read_once(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/robots.txt"] = Route(
        b"User-agent: *\nDisallow: /private\n", "text/plain", etag='"r"'
    )
    site.routes["/private/page"] = Route(PAGE)
    site.routes["/public"] = Route(PAGE)
    with Fetcher(web_settings) as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.get(site.url("/private/page"))
        assert caught.value.reason == "disallowed by robots.txt"
        assert fetcher.get(site.url("/public")).body == PAGE
    assert site.hits_to("/private/page") == []
    assert len(site.hits_to("/robots.txt")) == 1


def test_robots_rules_for_citebot_and_redirect_targets(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/robots.txt"] = Route(
        b"User-agent: citebot\nDisallow: /drafts\n\nUser-agent: *\nDisallow: /\n", "text/plain"
    )
    site.routes["/open"] = Route(status=301, location="/drafts/one")
    error = failure(site, web_settings, "/open")
    assert error.reason == f"disallowed by robots.txt ({site.url('/drafts/one')})"
    site.routes["/fine"] = Route(PAGE)
    assert fetch(site, web_settings, "/fine").body == PAGE


def test_an_unreadable_robots_txt_allows_nothing_a_missing_one_everything(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/page"] = Route(PAGE)
    assert fetch(site, web_settings, "/page").body == PAGE  # robots.txt: 404
    site.routes["/robots.txt"] = Route(b"oops", status=503)
    error = failure(site, web_settings, "/page")
    assert error.reason == "robots.txt could not be read (HTTP 503); not fetching"


def test_one_request_at_a_time_per_host_with_the_delay(
    site: LocalSite, web_settings: WebSettings
) -> None:
    for n in range(4):
        site.routes[f"/p{n}"] = Route(PAGE, delay=0.05)
    polite = replace(web_settings, delay_seconds=0.2)
    with Fetcher(polite) as fetcher:
        threads = [
            threading.Thread(target=fetcher.get, args=(site.url(f"/p{n}"),)) for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert site.max_concurrent == 1
    hits = sorted(site.hits, key=lambda h: h.started)
    assert hits[0].path == "/robots.txt"
    gaps = [b.started - a.ended for a, b in itertools.pairwise(hits)]
    assert min(gaps) >= 0.19


def test_crawl_delay_slows_down_to_what_robots_txt_asks(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/robots.txt"] = Route(b"User-agent: *\nCrawl-delay: 0.3\n", "text/plain")
    site.routes["/a"] = Route(PAGE)
    site.routes["/b"] = Route(PAGE)
    with Fetcher(web_settings) as fetcher:
        fetcher.get(site.url("/a"))
        fetcher.get(site.url("/b"))
    first, second = site.hits_to("/a")[0], site.hits_to("/b")[0]
    assert second.started - first.ended >= 0.29


def test_hits_are_read_once_their_handlers_have_ended(
    site: LocalSite, web_settings: WebSettings
) -> None:
    """The local site's own record: a client can have the whole answer before the handler
    records its hit (the crawl-delay test failed so in CI, on a busy machine)."""
    site.routes["/a"] = Route(PAGE, linger=0.3)
    with Fetcher(web_settings) as fetcher:
        fetcher.get(site.url("/a"))
    (hit,) = site.hits_to("/a")
    assert hit.status == 200 and site.hits[-1] == hit


def test_local_addresses_are_refused_unless_allowed(
    site: LocalSite, web_settings: WebSettings
) -> None:
    site.routes["/a"] = Route(PAGE)
    with Fetcher(web_settings) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(site.url("/a"), policy=UrlPolicy(public_only=True))
    assert caught.value.reason == "refused: the host is not a public address"
    assert site.hits == []


def test_only_http_and_https(web_settings: WebSettings) -> None:
    with Fetcher(web_settings) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get("file:///etc/passwd")
    assert caught.value.reason == "refused: only http and https URLs are fetched"


def test_a_closed_port_is_reported(web_settings: WebSettings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Fetcher(web_settings) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(f"http://127.0.0.1:{port}/a")
    reason = caught.value.reason
    assert reason == "cannot connect (reading robots.txt)"


def test_requests_are_counted(site: LocalSite, web_settings: WebSettings) -> None:
    site.routes["/e"] = Route(PAGE, etag='"1"')
    with Fetcher(web_settings) as fetcher:
        first = fetcher.get(site.url("/e"))
        fetcher.get(site.url("/e"), first.validators)
        assert (fetcher.requests, fetcher.conditional_requests) == (3, 1)


def test_the_delay_holds_across_fetchers(site: LocalSite, web_settings: WebSettings) -> None:
    """Two sources on one host (each with its own fetcher) still keep the delay between them."""
    site.routes["/a"] = Route(PAGE)
    polite = replace(web_settings, delay_seconds=0.3)
    with Fetcher(polite) as first:
        first.get(site.url("/a"))
    with Fetcher(polite) as second:
        second.get(site.url("/a"))
    hits = sorted(site.hits, key=lambda h: h.started)
    gaps = [b.started - a.ended for a, b in itertools.pairwise(hits)]
    assert [h.path for h in hits] == ["/robots.txt", "/a", "/robots.txt", "/a"]
    assert min(gaps) >= 0.29
