"""Which corpus answers where: the rules of ``[[bot.routes]]`` and ``[bot] default_corpus``.

In order: a route naming the channel (or, for a thread or forum post, its parent
channel); the server's route; the server's own corpus (``[bot] server_corpora``, once an
admin has added a source); the default corpus. No Discord import: a place is three ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retrieval.config import RouteSettings


@dataclass(frozen=True)
class Place:
    """Where something was asked: the server (None in DMs), the channel, and the parent
    channel when the channel is a thread or a forum post."""

    guild_id: int | None
    channel_id: int | None
    parent_id: int | None = None


def place_of(guild_id: int | None, channel: Any) -> Place:
    """The place of a channel (a discord.py channel object): threads and forum posts are
    placed under their parent."""
    return Place(guild_id, getattr(channel, "id", None), getattr(channel, "parent_id", None))


@dataclass(frozen=True)
class Router:
    routes: tuple[RouteSettings, ...] = ()
    default_corpus: str | None = None
    # The corpus a server made for itself, if any (server corpora).
    server_corpus: Callable[[int], str | None] = lambda _guild: None

    def corpus_for(self, place: Place) -> str | None:
        """The corpus of ``place``; None when nothing answers there."""
        if place.guild_id is None:
            return self.default_corpus
        return self.route_for(place) or self.server_corpus(place.guild_id) or self.default_corpus

    def route_for(self, place: Place) -> str | None:
        """The corpus a route names for ``place`` (its channel's, else its server's)."""
        if place.guild_id is None:
            return None
        channel_routes = {
            channel: route.corpus
            for route in self.routes
            if route.guild == place.guild_id
            for channel in route.channels
        }
        for channel in (place.channel_id, place.parent_id):
            if channel is not None and channel in channel_routes:
                return channel_routes[channel]
        for route in self.routes:
            if route.guild == place.guild_id and not route.channels:
                return route.corpus
        return None
