"""SSRF rules (issue 15 item 6, issue 16 item 6): which URLs may be fetched, and that the
fetcher connects only to the addresses it checked.

Names resolve through a stub resolver; a guard makes any connection outside 127.0.0.0/8
and ::1 fail (and records every attempt), so no test can reach another address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from retrieval.addresses import IPAddress, UrlPolicy, check_url, parse_networks
from retrieval.config import Settings, WebSettings
from retrieval.errors import CitebotError, FetchError, UrlRefused
from retrieval.records import Problem
from retrieval.web.fetch import Fetcher
from retrieval.web.source import WebSource
from tests.web.server import LocalSite, Route

PAGE = b"<html><body><p>Hello</p></body></html>"
LOOPBACK = parse_networks(["127.0.0.1/32"])


class StubResolver:
    """Names to addresses from a table; counts lookups; unknown names fail."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        self.lookups.append(host)
        answers = self.table.get(host)
        if not answers:
            raise OSError("no such host")
        if isinstance(answers[0], list):  # a different answer each time (rebinding)
            answer = answers[min(len(self.lookups) - 1, len(answers) - 1)]
        else:
            answer = answers
        return tuple(ipaddress.ip_address(a) for a in answer)  # type: ignore[arg-type]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every connection attempted; those outside loopback fail without touching the network."""
    attempted: list[str] = []
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host = address[0]
        attempted.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise OSError("the test guard refused a connection outside loopback")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    yield attempted


RESOLVER = StubResolver(
    {
        "public.test": ["93.184.216.34"],
        "localhost.test": ["127.0.0.1"],
        "private.test": ["10.0.0.7"],
        "metadata.test": ["169.254.169.254"],
        "mixed.test": ["93.184.216.34", "10.0.0.7"],
        "nat64.test": ["64:ff9b::a00:7"],
        "v6.test": ["2606:4700::1111"],
    }
)

NOT_PUBLIC = "the host is not a public address"
REFUSED = [
    ("http://127.0.0.1/", NOT_PUBLIC),
    ("http://localhost.test/", NOT_PUBLIC),
    ("http://[::1]/", NOT_PUBLIC),
    ("http://10.1.2.3/", NOT_PUBLIC),
    ("http://private.test/", NOT_PUBLIC),
    ("http://172.16.0.1/", NOT_PUBLIC),
    ("http://192.168.1.1/", NOT_PUBLIC),
    ("http://169.254.169.254/latest/meta-data/", NOT_PUBLIC),
    ("http://metadata.test/", NOT_PUBLIC),
    ("http://100.64.0.1/", NOT_PUBLIC),  # CGNAT
    ("http://224.0.0.1/", NOT_PUBLIC),  # multicast
    ("http://240.0.0.1/", NOT_PUBLIC),  # reserved
    ("http://0.0.0.0/", NOT_PUBLIC),
    ("http://[::]/", NOT_PUBLIC),
    ("http://[::ffff:127.0.0.1]/", NOT_PUBLIC),  # IPv4-mapped
    ("http://[::ffff:93.184.216.34]/", NOT_PUBLIC),  # mapped, even when public
    ("http://[::127.0.0.1]/", NOT_PUBLIC),  # IPv4-compatible
    ("http://[64:ff9b::a00:7]/", NOT_PUBLIC),  # NAT64
    ("http://nat64.test/", NOT_PUBLIC),
    ("http://[2002:a00:7::1]/", NOT_PUBLIC),  # 6to4
    ("http://[fe80::1]/", NOT_PUBLIC),
    ("http://[fc00::1]/", NOT_PUBLIC),
    ("http://[ff02::1]/", NOT_PUBLIC),
    ("http://mixed.test/", NOT_PUBLIC),  # one internal address is enough
    ("http://2130706433/", "the host is an IP address written in an unusual form"),
    ("http://0177.0.0.1/", "the host is an IP address written in an unusual form"),
    ("http://0x7f.0.0.1/", "the host is an IP address written in an unusual form"),
    ("http://0x7f000001/", "the host is an IP address written in an unusual form"),
    ("http://127.1/", "the host is an IP address written in an unusual form"),
    ("http://user:pass@public.test/", "URLs with a user name or password are refused"),
    ("http://user@public.test/", "URLs with a user name or password are refused"),
    ("ftp://public.test/file", "only http and https URLs are fetched"),
    ("file:///etc/passwd", "only http and https URLs are fetched"),
    ("gopher://public.test/", "only http and https URLs are fetched"),
    ("http://public.test:8080/", "only ports 80, 443 are fetched for this source"),
    ("http://public.test:22/", "only ports 80, 443 are fetched for this source"),
    ("http://nowhere.test/", "the host name could not be resolved"),
    ("http://127.0.0.1:99999/", "not a valid URL (bad host or port)"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_a_strangers_url_is_refused_for_each_class(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        check_url(url, UrlPolicy(public_only=True), RESOLVER)
    assert caught.value.reason == reason
    assert isinstance(caught.value, CitebotError)


@pytest.mark.parametrize(
    "url", ["http://public.test/feed.xml", "https://v6.test/", "http://93.184.216.34/"]
)
def test_public_urls_pass(url: str) -> None:
    check_url(url, UrlPolicy(public_only=True), RESOLVER)


def test_allow_addresses_open_any_port_but_never_credentials() -> None:
    policy = UrlPolicy(public_only=True, allow_addresses=LOOPBACK)
    check_url("http://127.0.0.1:8765/feed.xml", policy, RESOLVER)
    check_url("http://localhost.test:8765/", policy, RESOLVER)
    with pytest.raises(UrlRefused, match="user name or password"):
        check_url("http://u:p@127.0.0.1:8765/", policy, RESOLVER)
    with pytest.raises(UrlRefused, match="not a public address"):
        check_url("http://127.0.0.2:8765/", policy, RESOLVER)


@pytest.mark.parametrize(("url", "_"), REFUSED)
def test_the_fetcher_refuses_each_class_without_connecting(
    url: str, _: str, connections: list[str], web_settings: WebSettings
) -> None:
    fetcher = Fetcher(web_settings, policy=UrlPolicy(), resolver=RESOLVER)
    with fetcher, pytest.raises(UrlRefused):
        fetcher.get(url)
    assert connections == []


def test_a_refusal_names_no_internal_address_or_port(
    site: LocalSite, connections: list[str], web_settings: WebSettings
) -> None:
    site.routes["/a"] = Route(PAGE)
    port = int(site.base.rsplit(":", 1)[1])
    reasons = set()
    with Fetcher(web_settings, policy=UrlPolicy(), resolver=RESOLVER) as fetcher:
        for url in (site.url("/a"), "http://127.0.0.1:1/a", "http://10.9.9.9:5432/"):
            with pytest.raises(UrlRefused) as caught:
                fetcher.get(url)
            reasons.add(caught.value.reason)
    # An open port, a closed port and another network all read the same: no oracle.
    assert reasons == {f"refused: {NOT_PUBLIC}"}
    assert not any(str(port) in r or "127.0" in r for r in reasons)
    assert connections == [] and site.hits == []


def test_robots_txt_redirects_pass_the_same_checks(
    site: LocalSite, connections: list[str], web_settings: WebSettings
) -> None:
    site.routes["/robots.txt"] = Route(status=302, location="http://169.254.169.254/latest")
    site.routes["/a"] = Route(PAGE)
    port = site.base.rsplit(":", 1)[1]
    resolver = StubResolver({"site.test": ["127.0.0.1"]})
    policy = UrlPolicy(public_only=True, allow_addresses=LOOPBACK)
    fetcher = Fetcher(web_settings, policy=policy, resolver=resolver)
    with fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(f"http://site.test:{port}/a")
    assert caught.value.reason == f"refused: {NOT_PUBLIC} (a redirect) (reading robots.txt)"
    assert set(connections) == {"127.0.0.1"}
    assert site.hits_to("/a") == []


def test_the_connection_goes_to_the_checked_address_after_one_lookup(
    site: LocalSite, connections: list[str], web_settings: WebSettings
) -> None:
    site.routes["/a"] = Route(PAGE)
    site.routes["/b"] = Route(PAGE)
    port = site.base.rsplit(":", 1)[1]
    # A rebinding resolver: the checked answer first, an internal address afterwards.
    resolver = StubResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.7"]]})
    policy = UrlPolicy(public_only=True, allow_addresses=LOOPBACK)
    with Fetcher(web_settings, policy=policy, resolver=resolver) as fetcher:
        assert fetcher.get(f"http://rebind.test:{port}/a").body == PAGE
        assert fetcher.get(f"http://rebind.test:{port}/b").body == PAGE
    assert resolver.lookups == ["rebind.test"]
    assert set(connections) == {"127.0.0.1"}
    # Host (and, over TLS, SNI) still name the host: only the address is pinned.
    assert site.hits_to("/a")[0].headers["host"] == f"rebind.test:{port}"


def test_a_failed_lookup_is_a_refusal_and_is_not_remembered(
    connections: list[str], web_settings: WebSettings
) -> None:
    resolver = StubResolver({})
    with Fetcher(web_settings, resolver=resolver) as fetcher:
        for _ in range(2):
            with pytest.raises(UrlRefused) as caught:
                fetcher.get("http://nowhere.test/a")
            assert caught.value.reason == "refused: the host name could not be resolved"
    assert resolver.lookups == ["nowhere.test", "nowhere.test"]
    assert connections == []


def test_proxy_variables_cannot_redirect_requests(
    site: LocalSite, web_settings: WebSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.routes["/a"] = Route(PAGE)
    with LocalSite() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with Fetcher(web_settings) as fetcher:
            assert fetcher.get(site.url("/a")).body == PAGE
        assert proxy.hits == []


def test_a_public_source_lists_only_public_urls_on_the_web_ports(
    connections: list[str], web_settings: WebSettings
) -> None:
    with Fetcher(web_settings, resolver=RESOLVER) as fetcher:
        policy = fetcher.source_policy("http://public.test/feed.xml")
        assert policy.public_only and policy.allowed_ports == (80, 443)
        for listed in ("http://public.test:8080/x", "http://127.0.0.1/x", "http://private.test/"):
            with pytest.raises(UrlRefused):
                fetcher.get(listed, policy=policy)
        # A source on its own port keeps that port; a local source may list local pages.
        assert fetcher.source_policy("http://public.test:8443/f").allowed_ports == (80, 443, 8443)
        assert not fetcher.source_policy("http://private.test/f").public_only
        with pytest.raises(UrlRefused, match="could not be resolved"):
            fetcher.source_policy("http://nowhere.test/f")
    assert connections == []


def test_a_web_source_typed_by_a_stranger_is_refused_before_any_request(
    site: LocalSite, connections: list[str], tmp_path: Path, web_settings: WebSettings
) -> None:
    site.routes["/feed.xml"] = Route(PAGE)
    settings = Settings(index_dir=tmp_path / "index", web=web_settings)
    source = WebSource(site.url("/feed.xml"), settings, policy=UrlPolicy(public_only=True))
    items = list(source.read())
    assert items == [Problem(site.url("/feed.xml"), f"refused: {NOT_PUBLIC}")]
    assert source.outcome.failure == f"refused: {NOT_PUBLIC}"
    assert connections == [] and site.hits == []
    # The operator's allow_addresses open it (any port).
    allowed = replace(web_settings, allow_addresses=("127.0.0.1/32",))
    settings = Settings(index_dir=tmp_path / "index", web=allowed)
    policy = allowed.url_policy(public_only=True)
    source = WebSource(site.url("/feed.xml"), settings, policy=policy)
    list(source.read())
    assert site.hits_to("/feed.xml") != []
