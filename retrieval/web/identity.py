"""Whose article it is: the address an article is known and cited by.

A page or a feed may claim any address for what it serves (``rel=canonical``, an entry's
``<link>``). A claim on another registrable domain than the one that served the content
is not believed: otherwise a feed could index its text as another site's article, shadow
the real page, and put any link (a bank's login page) under the bot's citations.
Credentials in a listed URL are never stored or shown.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from ..urls import is_web_url


@lru_cache(maxsize=4096)
def registrable_domain(url: str) -> str | None:
    """``news.example.co.uk`` -> ``example.co.uk`` (public suffix list, bundled with
    ``tld``: nothing is downloaded); an IP address or an unknown suffix is its own domain."""
    from tld import get_fld

    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if not host:
        return None
    found = get_fld(host, fix_protocol=True, fail_silently=True)
    return str(found) if found else host


def same_site(claimed: str, served: str) -> bool:
    """Whether ``claimed`` is on the registrable domain of ``served``."""
    if not is_web_url(claimed):
        return False
    domain = registrable_domain(claimed)
    return domain is not None and domain == registrable_domain(served)


def strip_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (kept as given when it has none)."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return url
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
