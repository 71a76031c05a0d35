"""`citebot serve`: the HTTP API, the search page and /metrics, over the retrieval library.

The library never imports this package; it registers its command through the
``citebot.commands`` entry point, like the bot.
"""

from __future__ import annotations


class ServerError(Exception):
    """Base of this package's errors: a refusal at start (say, keys missing for a public
    address), shown as one line."""
