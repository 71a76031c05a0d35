"""Whether a URL typed in Discord may be fetched: one line saying why not, or None.

The checks a stranger's URL needs before anything is fetched: http(s) only, no user name
or password, never a local path (``refusal``, before any look-up), and only public
addresses (``address_refusal``: the fetcher's own rules, ``retrieval.addresses``, with
``[web] allow_addresses`` as the operator's exceptions). ``url_policy`` is the one place the
bot builds the fetcher's policy, and ``stranger_source`` makes every later fetch of the
source (redirects and listed pages too) keep to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrieval.config import Settings

if TYPE_CHECKING:
    from retrieval.addresses import Resolver, UrlPolicy
    from retrieval.sources import Source

logger = logging.getLogger(__name__)


def refusal(url: str, settings: Settings) -> str | None:
    """Why ``url`` is refused before any look-up (scheme, credentials, local paths, odd IP
    spellings), or None."""
    from retrieval.addresses import check_form
    from retrieval.errors import UrlRefused

    text = url.strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        return "that is not a web address (one address, no spaces)"
    try:
        check_form(text, url_policy(settings))
    except UrlRefused as exc:
        return str(exc)
    return None


def url_policy(settings: Settings) -> UrlPolicy:
    """The fetcher's policy for URLs typed in Discord: public addresses only, with the
    operator's ``[web] allow_addresses`` (and allowed ports) as exceptions."""
    return settings.web.url_policy(public_only=True)


def stranger_source(url: str, settings: Settings) -> Source:
    """A source added from Discord, as ingest reads it: fetched under the public-only
    policy, every redirect and every page it lists included (the fetcher checks each)."""
    from retrieval.web.source import WebSource

    return WebSource(url, settings, policy=url_policy(settings))


def address_refusal(url: str, settings: Settings, resolver: Resolver | None = None) -> str | None:
    """Why the fetcher's address rules refuse ``url`` (it resolves the host once), or None."""
    from retrieval.addresses import check_url
    from retrieval.errors import UrlRefused

    try:
        check_url(url, url_policy(settings), resolver)
    except UrlRefused as exc:
        return str(exc)
    return None
