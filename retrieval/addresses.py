"""Which addresses a URL may be fetched from (SSRF rules), and the one lookup that decides it.

A URL typed by a stranger (a Discord admin's ``/library add``) is fetched only from public
addresses on the web ports; the operator's own sources keep today's rule (a source on a
local or private address may list pages there too, a public one may not). The fetcher
resolves a host once, checks every address against the request's ``UrlPolicy`` and
connects to a checked address (``retrieval.web.connect``): no second lookup, so no
DNS-rebinding window.

Reasons are one line and never name an internal address or port: a refusal must not tell
a stranger which hosts or ports exist behind the bot.

Standard library only: ``config`` validates ``[web] allow_addresses`` with it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from .errors import UrlRefused
from .urls import WEB_SCHEMES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

WEB_PORTS = (80, 443)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# IPv6 forms that carry an IPv4 address (and so can reach IPv4 networks the IPv4 rules
# would refuse): IPv4-mapped, IPv4-compatible (deprecated), IPv4-translated, NAT64 (well
# known and local-use prefixes), 6to4 and Teredo. None is "public" for a stranger's URL.
_EMBEDDING_IPV4 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::ffff:0:0/96",
        "::/96",
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
    )
)
# A host name made only of digits, dots and hex spellings ("2130706433", "0x7f.1",
# "0177.0.0.1"): resolvers read these as IPv4 addresses in forms nobody writes on purpose.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*\.?$", re.IGNORECASE)


@dataclass(frozen=True)
class UrlPolicy:
    """Where a URL may lead.

    ``public_only``: every address the host resolves to must be public (True for URLs typed
    by strangers, and for what a public source lists). ``allow_addresses``: networks opened
    by the operator (``[web] allow_addresses``), on any port, whatever ``public_only`` says.
    ``allowed_ports``: the ports a public-only URL may use.
    """

    public_only: bool = True
    allow_addresses: tuple[IPNetwork, ...] = ()
    allowed_ports: tuple[int, ...] = WEB_PORTS

    def allows(self, address: IPAddress, port: int) -> bool:
        """Whether a connection to ``address``:``port`` is within the policy."""
        if any(address in network for network in self.allow_addresses):
            return True
        if not self.public_only:
            return True
        return is_public(address) and port in self.allowed_ports


class Resolver(Protocol):
    """Turns a host name into addresses (the tests' stub never touches the network)."""

    def resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """Every address of ``host``; OSError when it has none."""
        ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``)."""

    def resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = dict.fromkeys(_address(str(info[4][0])) for info in infos)
        return tuple(found)


def is_public(address: IPAddress) -> bool:
    """A globally reachable unicast address, not one that smuggles an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _EMBEDDING_IPV4):
            return False
        if address.is_site_local:
            return False
    return bool(
        address.is_global
        and not (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )
    )


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``[web] allow_addresses`` as networks; ValueError names a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def check_url(url: str, policy: UrlPolicy, resolver: Resolver | None = None) -> None:
    """Raise UrlRefused (one line, naming no internal address) unless ``url`` may be fetched."""
    checked_addresses(url, policy, resolver or SystemResolver())


def checked_addresses(url: str, policy: UrlPolicy, resolver: Resolver) -> tuple[IPAddress, ...]:
    """The addresses ``url``'s host resolves to, all within ``policy``, from one lookup."""
    parts, port = check_form(url, policy)
    return check_addresses(host_of(parts), port, policy, lookup(host_of(parts), port, resolver))


def check_form(url: str, policy: UrlPolicy) -> tuple[SplitResult, int]:
    """What can be refused without a lookup: scheme, credentials, odd IP spellings. The
    port is checked with the addresses (``[web] allow_addresses`` open any port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("not a valid URL (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES:
        raise UrlRefused("only http and https URLs are fetched")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with a user name or password are refused")
    host = host_of(parts)
    if _literal(host) is None and _NUMERIC_HOST.match(host):
        raise UrlRefused("the host is an IP address written in an unusual form")
    return parts, port if port is not None else _DEFAULT_PORTS[scheme]


def check_addresses(
    host: str, port: int, policy: UrlPolicy, addresses: tuple[IPAddress, ...]
) -> tuple[IPAddress, ...]:
    """``addresses`` when every one is allowed; else UrlRefused (all or nothing: a host
    that also resolves to an internal address is refused, not half-trusted)."""
    for address in addresses:
        if not policy.allows(address, port):
            if is_public(address) or any(address in n for n in policy.allow_addresses):
                raise UrlRefused(_port_reason(policy))
            raise UrlRefused("the host is not a public address")
    return addresses


def lookup(host: str, port: int, resolver: Resolver) -> tuple[IPAddress, ...]:
    """The host's addresses (a literal is its own); a failed lookup is a refusal."""
    literal = _literal(host)
    if literal is not None:
        return (literal,)
    try:
        addresses = resolver.resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        addresses = ()
    if not addresses:
        raise UrlRefused("the host name could not be resolved")
    return addresses


def host_of(parts: SplitResult) -> str:
    """The host as connected to: lower case, IDNA-encoded, IPv6 without brackets or zone."""
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _literal(host: str) -> IPAddress | None:
    try:
        return _address(host)
    except ValueError:
        return None


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%")[0])


def _port_reason(policy: UrlPolicy) -> str:
    ports = ", ".join(str(p) for p in policy.allowed_ports)
    return f"only ports {ports} are fetched for this source"
