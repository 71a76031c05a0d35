"""The corpora the bot answers from: the configured ones and the servers' own.

``BotCorpora`` knows which corpora exist (``[corpora.*]`` in the config, and with
``[bot] server_corpora`` one per server whose admins added a source), their settings and
sources (the config's plus those added with /library), where each is answered (the
router), and how each is synced: one at a time per corpus, a failure kept to that
corpus. Opening and idle closing are the library's ``CorpusRegistry``; the model is
shared through ``SharedEmbedders``. No Discord import.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.config import DEFAULT_CORPUS, Settings
from retrieval.corpora import CorpusRegistry, SharedEmbedders, UnknownCorpusError
from retrieval.errors import CitebotError
from retrieval.live import IndexFolder, IndexHolder, ReindexBusyError, SyncResult

from .routing import Place, Router
from .serverdata import ServerData
from .urlcheck import stranger_source

if TYPE_CHECKING:
    from retrieval.embedding import Embedder
    from retrieval.ingest import IngestReport
    from retrieval.sources import Source

logger = logging.getLogger(__name__)

SERVER_PREFIX = "server-"
NO_ARTICLES = "This server has no articles yet. A server admin can add some with `/library add`."


class NoArticlesError(CitebotError):
    """Nothing answers here: no corpus, or a corpus not built yet."""

    def __init__(self) -> None:
        super().__init__(NO_ARTICLES)


def server_corpus_name(guild_id: int) -> str:
    return f"{SERVER_PREFIX}{guild_id}"


def default_corpus(settings: Settings) -> str | None:
    """``[bot] default_corpus``, else "default" when the config has it (a config without
    ``[corpora.*]`` keeps answering everywhere from its one index)."""
    if settings.bot.default_corpus is not None:
        return settings.bot.default_corpus
    return DEFAULT_CORPUS if DEFAULT_CORPUS in settings.corpus_names() else None


class BotCorpora:
    def __init__(
        self,
        settings: Settings,
        data: ServerData,
        embedders: SharedEmbedders,
        make_ingest_embedder: Callable[[Settings], Embedder],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.data = data
        self.embedders = embedders
        self.make_ingest_embedder = make_ingest_embedder
        idle = settings.bot.idle_close_minutes * 60
        self.registry: CorpusRegistry[IndexHolder] = (
            CorpusRegistry(self._open, idle_seconds=idle, clock=clock)
            if clock
            else CorpusRegistry(self._open, idle_seconds=idle)
        )
        self.configured = {c.name: c for c in settings.corpus_list()}
        self._servers = {g for g, removed in data.server_corpora().items() if removed is None}
        self.router = Router(settings.bot.routes, default_corpus(settings), self._server_corpus)
        self._locks: dict[str, asyncio.Lock] = {}
        # The last sync of each corpus (this run), for /stats and /library list.
        self.last_sync: dict[str, SyncResult] = {}

    # -- which corpora --------------------------------------------------------------------

    def _server_corpus(self, guild_id: int) -> str | None:
        if self.settings.bot.server_corpora and guild_id in self._servers:
            return server_corpus_name(guild_id)
        return None

    def corpus_for(self, place: Place) -> str | None:
        return self.router.corpus_for(place)

    def names(self) -> list[str]:
        """Every corpus to sync: the configured ones and the present servers' own."""
        return [*self.configured, *(server_corpus_name(g) for g in sorted(self._servers))]

    def library_corpus(self, place: Place) -> str | None:
        """The corpus /library manages at ``place``: the routed one (unless other servers
        read it too), else the server's own (made on first add) when server corpora are
        on; None: nothing to manage here."""
        if place.guild_id is None:
            return None
        if routed := self.router.route_for(place):
            # A corpus other servers read too is the operator's to change, not one server's.
            shared = routed == self.router.default_corpus or any(
                route.corpus == routed and route.guild != place.guild_id
                for route in self.router.routes
            )
            return None if shared else routed
        if self.settings.bot.server_corpora:
            return server_corpus_name(place.guild_id)
        return None

    def make_server_corpus(self, guild_id: int) -> str:
        self.data.make_server_corpus(guild_id)
        self.data.mark_removed(guild_id, False)
        self._servers.add(guild_id)
        return server_corpus_name(guild_id)

    def settings_for(self, name: str) -> Settings:
        if name in self.configured:
            return self.settings.for_corpus(name)
        if name.startswith(SERVER_PREFIX) and self.settings.bot.data_dir:
            folder = Path(self.settings.bot.data_dir) / "servers" / name.removeprefix(SERVER_PREFIX)
            web = self.settings.web
            # A feed or sitemap added by a server gives at most the server's article limit.
            web = replace(web, max_urls=min(web.max_urls, self.settings.bot.max_articles))
            return replace(self.settings, index_dir=folder / "index", sources=(), web=web)
        raise UnknownCorpusError(f"no corpus named {name!r}")

    def config_sources(self, name: str) -> tuple[str, ...]:
        return self.configured[name].sources if name in self.configured else ()

    def source_urls(self, name: str) -> list[str]:
        """The corpus's sources as given: the config's, then those added from Discord."""
        added = [s.url for s in self.data.sources(name)]
        config = list(self.config_sources(name))
        return config + [url for url in added if url not in config]

    def sources_of(self, name: str) -> list[str | Source]:
        """What a sync of ``name`` reads: the config's sources under the operator's rules,
        those added from Discord under the rules for URLs typed by strangers."""
        config = self.config_sources(name)
        settings = self.settings_for(name)
        return [
            url if url in config else stranger_source(url, settings)
            for url in self.source_urls(name)
        ]

    def has_index(self, name: str) -> bool:
        """Whether the corpus's index was built (a damaged one counts: opening says why)."""
        from retrieval.errors import IndexNotFoundError
        from retrieval.index import backend_of

        settings = self.settings_for(name)
        try:
            backend_of(settings).read_manifest(Path(settings.index_dir))
        except IndexNotFoundError:
            return False
        except CitebotError:
            return True
        return True

    # -- opening --------------------------------------------------------------------------

    def _folder(self, name: str) -> IndexFolder:
        settings = self.settings_for(name)
        return IndexFolder(
            settings,
            self.embedders.for_settings(settings),
            lambda: self.make_ingest_embedder(settings),
            lambda: self.sources_of(name),
        )

    def _open(self, name: str) -> IndexHolder:
        return IndexHolder(self._folder(name))

    @asynccontextmanager
    async def use(self, name: str | None) -> AsyncIterator[IndexHolder]:
        """The open corpus ``name``; NoArticlesError when there is none or it is not built."""
        if name is None:
            raise NoArticlesError
        if self.registry.holder(name) is None and not (
            await asyncio.to_thread(self.openable, name)
        ):
            raise NoArticlesError
        async with self.registry.use(name) as holder:
            yield holder

    def openable(self, name: str) -> bool:
        """Whether ``name`` is a corpus with a built index (so a question can open it)."""
        try:
            return self.has_index(name)
        except UnknownCorpusError:
            return False

    # -- syncing --------------------------------------------------------------------------

    def syncing(self, name: str) -> bool:
        lock = self._locks.get(name)
        holder = self.registry.holder(name)
        return bool((lock and lock.locked()) or (holder and holder.reindexing))

    async def sync(self, name: str, *, force: bool = False) -> IngestReport:
        """Read the corpus's sources into a new generation and answer from it.

        ``force`` is an explicit removal: articles of removed sources go even when that is
        most of the corpus, and a corpus left with no source is emptied. ReindexBusyError
        while a sync of the corpus runs.
        """
        if self.syncing(name):
            raise ReindexBusyError
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            try:
                holder = self.registry.holder(name)
                if holder is not None and not force:
                    report = await holder.reindex()
                else:
                    report = await asyncio.to_thread(self._rebuild, name, force)
                    if holder is not None:
                        await holder.refresh()
            except Exception as exc:
                self.last_sync[name] = SyncResult(datetime.now(UTC), error=exc)
                raise
            self.last_sync[name] = SyncResult(datetime.now(UTC), report)
            if name in self._with_library_sources():
                await asyncio.to_thread(self._record, name, report)
            return report

    def _rebuild(self, name: str, force: bool) -> IngestReport:
        from retrieval.ingest import IngestReport, ingest

        settings = self.settings_for(name)
        sources = self.sources_of(name)
        if not sources and not (force and self.has_index(name)):
            if force:
                return IngestReport()
            raise CitebotError("This corpus has no sources yet.")
        embedder = self.make_ingest_embedder(settings)
        return ingest(sources, settings, embedder, prune=True, force=force)

    def _with_library_sources(self) -> set[str]:
        """The corpora with sources added from Discord (whose syncs are recorded per source)."""
        return set(self.data.corpora_with_sources())

    def _record(self, name: str, report: IngestReport) -> None:
        results = {s.root: (s.articles, s.failure) for s in report.sources}
        self.data.record_sync(
            name, {url: results.get(url, (0, None)) for url in self.source_urls(name)}
        )

    # -- servers the bot left -------------------------------------------------------------

    def left_server(self, guild_id: int) -> None:
        """The bot was removed from a server: its corpus is kept for keep_removed_days."""
        if guild_id in self._servers:
            self.data.mark_removed(guild_id, True)
            self._servers.discard(guild_id)
            logger.info(
                "left server %s: its corpus is kept for %g days",
                guild_id,
                self.settings.bot.keep_removed_days,
            )

    def joined_server(self, guild_id: int) -> None:
        if guild_id in self.data.server_corpora():
            self.data.mark_removed(guild_id, False)
            self._servers.add(guild_id)

    async def delete_expired(self, now: datetime | None = None) -> list[int]:
        """Delete the corpora of servers left more than keep_removed_days ago; nothing else."""
        expired = self.data.expired_server_corpora(self.settings.bot.keep_removed_days, now)
        for guild_id in expired:
            name = server_corpus_name(guild_id)
            await self.registry.close(name)
            folder = Path(self.settings_for(name).index_dir).parent
            await asyncio.to_thread(shutil.rmtree, folder, True)
            self.data.forget_server(guild_id, name)
            logger.info("deleted the corpus of server %s (left long ago)", guild_id)
        return expired

    async def close(self) -> None:
        await self.registry.close_all()
