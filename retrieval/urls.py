"""URLs as sources: telling them from paths, and one spelling of each for article ids."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

WEB_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def looks_like_url(text: str) -> bool:
    """``scheme://...``: meant as a URL (perhaps of an unsupported scheme), never as a path."""
    return bool(_SCHEME.match(text))


def is_web_url(text: str) -> bool:
    """An http or https URL with a host."""
    if not looks_like_url(text):
        return False
    parts = urlsplit(text)
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)


def normalize_url(url: str) -> str:
    """One spelling per page: scheme and host lower-cased; default port, fragment and any
    user name or password dropped (sources with credentials are refused before this).

    The path and query are kept as given: servers may treat their case and order as
    meaningful.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def origin(url: str) -> str:
    """``scheme://host[:port]``: what robots.txt and the politeness delay apply to."""
    parts = urlsplit(normalize_url(url))
    return f"{parts.scheme}://{parts.netloc}"
