"""Whether a URL typed in Discord may be fetched: one line saying why not, or None.

The checks a stranger's URL needs before anything is fetched: http(s) only, no user name
or password, never a local path, and (``retrieval.web.addresses``, the fetcher's own
rules, with ``[web] allow_addresses`` as the operator's exceptions) only public addresses.
``url_policy`` is the one place the bot builds the fetcher's policy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from retrieval.config import Settings

if TYPE_CHECKING:
    from retrieval.sources import Source

logger = logging.getLogger(__name__)


def refusal(url: str) -> str | None:
    """Why ``url`` is refused before any look-up (scheme, credentials, local paths)."""
    text = url.strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        return "that is not a web address (no spaces, one address)."
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "that is not a valid web address."
    if parts.scheme.lower() not in ("http", "https"):
        return "only http:// and https:// addresses can be added (never files or other schemes)."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "addresses with a user name or password are refused."
    if not parts.hostname:
        return "that address names no host."
    return None


def _addresses() -> Any:
    """The fetcher's address rules (``retrieval.web.addresses``, branch `web`), or None
    while they are not installed. Imported by name: the one place to change at that merge."""
    import importlib

    try:
        return importlib.import_module("retrieval.web.addresses")
    except ImportError:
        return None


def stranger_source(url: str, settings: Settings) -> str | Source:
    """A source added from Discord, as ingest reads it: fetched under the public-only
    policy, every redirect and listed page included (the fetcher's checks, branch `web`);
    until the fetcher has them, the URL as is (checked by ``address_refusal`` when added)."""
    if _addresses() is None:
        return url
    from retrieval.web.source import WebSource

    source: Source = cast(Any, WebSource)(url, settings, policy=url_policy(settings))
    return source


def url_policy(settings: Settings) -> Any:
    """The fetcher's policy for URLs typed in Discord: public addresses only, with the
    operator's ``[web] allow_addresses`` as exceptions."""
    import ipaddress

    allowed = tuple(ipaddress.ip_network(a, strict=False) for a in settings.web.allow_addresses)
    return _addresses().UrlPolicy(public_only=True, allow_addresses=allowed)


def address_refusal(url: str, settings: Settings) -> str | None:
    """Why ``url`` is refused by the fetcher's address rules (it resolves the host once)."""
    addresses = _addresses()
    if addresses is None:  # the fetcher's address checks are not installed (branch `web`)
        return _interim_address_refusal(url, settings)
    try:
        addresses.check_url(url, url_policy(settings))
    except addresses.UrlRefused as exc:
        return str(exc)
    return None


def _interim_address_refusal(url: str, settings: Settings) -> str | None:
    """Until the fetcher checks addresses itself: resolve the host, refuse any address that
    is not public and not allowed by the operator. (No redirect checks: the fetcher's.)"""
    import ipaddress
    import socket

    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    allowed = [ipaddress.ip_network(a, strict=False) for a in settings.web.allow_addresses]
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"the host {host!r} could not be found."
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in network for network in allowed):
            continue
        if not address.is_global or address.is_multicast:
            return f"{host} resolves to a non-public address ({address}): refused."
        if parts.port not in (None, 80, 443):
            return "only the standard web ports (80 and 443) can be used."
    return None
