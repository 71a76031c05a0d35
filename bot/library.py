"""/library: a server's admins manage its articles from Discord.

``/library add url:`` adds a web source to the corpus of the server (or of the channel
it is used in, when a route names one) and reads it in the background; ``remove``,
``list`` and ``sync`` do what they say. Admin-only twice: hidden from members without
Manage Server (default permissions) and checked again when run (``[bot] admin_role``
counts). Sources added here are kept in the bot's database, never in the config; the
config's own sources are listed as such and cannot be removed from here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from retrieval.errors import CitebotError
from retrieval.live import ReindexBusyError

from . import render
from .admin import AdminGroup
from .errors import public_message
from .replies import NO_MENTIONS, send
from .routing import place_of
from .urlcheck import address_refusal, refusal

if TYPE_CHECKING:
    from retrieval.addresses import Resolver
    from retrieval.config import Settings
    from retrieval.ingest import IngestReport

    from .app import CitebotClient

logger = logging.getLogger(__name__)

NO_LIBRARY = (
    "This server has no library the bot can manage: the bot's operator routes a corpus"
    " to it (or turns on server corpora)."
)
# An explicit removal of more articles than this needs confirm:true.
CONFIRM_OVER = 100
FAILED_SHOWN = 3


class LibraryAdmin(commands.Cog):
    library = AdminGroup(
        name="library",
        description="Manage this server's articles (admins).",
    )

    def __init__(self, bot: CitebotClient) -> None:
        self.bot = bot
        # How host names are looked up (None: the system's; tests pass a stub).
        self.resolver: Resolver | None = None

    async def corpus(self, interaction: discord.Interaction) -> str | None:
        """The corpus managed here; None (said) if none."""
        corpus = self.bot.corpora.library_corpus(
            place_of(interaction.guild_id, interaction.channel)
        )
        if corpus is None:
            await send(interaction, content=NO_LIBRARY)
        return corpus

    @library.command(name="add", description="Add a web page, feed, sitemap or PDF.")
    @app_commands.describe(url="An http(s) address: an article, RSS/Atom feed, sitemap or PDF")
    async def add(self, interaction: discord.Interaction, url: str) -> None:
        corpus = await self.corpus(interaction)
        if corpus is None:
            return
        url = url.strip()
        if why := refusal(url, self.settings_of(corpus)):
            logger.info(
                "refused /library add of %r for user %s: %s", url[:200], interaction.user.id, why
            )
            await send(interaction, content=f"Not added: {why}.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        if why := await self.over_limits(corpus):
            await self.tell(interaction, f"Not added: {why}")
            return
        if why := await asyncio.to_thread(
            address_refusal, url, self.settings_of(corpus), self.resolver
        ):
            logger.info(
                "refused /library add of %r for user %s: %s", url[:200], interaction.user.id, why
            )
            await self.tell(interaction, f"Not added: {why}.")
            return
        corpora = self.bot.corpora
        if url in corpora.config_sources(corpus):
            await self.tell(interaction, "That source is already in the library (from the config).")
            return
        assert interaction.guild_id is not None
        if corpus not in corpora.configured:
            corpora.make_server_corpus(interaction.guild_id)
        added = await asyncio.to_thread(
            corpora.data.add_source, corpus, url, interaction.guild_id, interaction.user.id
        )
        if not added:
            await self.tell(interaction, "That source is already in the library.")
            return
        logger.info("user %s added %s to corpus %s", interaction.user.id, url, corpus)
        await self.tell(interaction, f"Added <{url}>: reading it now, I'll say here what it gave.")
        self.bot.spawn(self.sync_and_report(interaction, corpus, url))

    @library.command(name="remove", description="Remove a source and its articles.")
    @app_commands.describe(
        url="The source's address, as /library list shows it",
        confirm=f"Needed to remove more than {CONFIRM_OVER} articles",
    )
    async def remove(
        self, interaction: discord.Interaction, url: str, confirm: bool = False
    ) -> None:
        corpus = await self.corpus(interaction)
        if corpus is None:
            return
        url = url.strip()
        corpora = self.bot.corpora
        if url in corpora.config_sources(corpus):
            await send(
                interaction,
                content="That source comes from the bot's config: only its operator can remove it.",
            )
            return
        known = {s.url: s for s in corpora.data.sources(corpus)}
        if url not in known:
            await send(interaction, content="That source is not in this server's library.")
            return
        articles = known[url].articles or 0
        if articles > CONFIRM_OVER and not confirm:
            await send(
                interaction,
                content=f"That would remove about {articles:,} articles; run it again with"
                " `confirm:true` to go ahead.",
            )
            return
        if corpora.syncing(corpus):
            await send(interaction, content="A sync is running; try again when it is done.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.to_thread(corpora.data.remove_source, corpus, url)
        logger.info("user %s removed %s from corpus %s", interaction.user.id, url, corpus)
        try:
            report = await corpora.sync(corpus, force=True)
        except CitebotError as exc:
            await self.tell(
                interaction,
                f"Removed the source; its articles go at the next sync"
                f" ({public_message(exc, self.bot.redact)}).",
            )
            return
        await self.tell(interaction, f"Removed <{url}>: {report.removed:,} articles removed.")

    @library.command(name="list", description="This server's sources, with their articles.")
    async def list(self, interaction: discord.Interaction) -> None:
        corpus = await self.corpus(interaction)
        if corpus is None:
            return
        corpora = self.bot.corpora
        lines = [f"**Corpus** `{corpus}`"]
        for source in corpora.config_sources(corpus):
            lines.append(f"• {render.shorten(self.bot.redact(source), 200)} — from the config")
        for added in await asyncio.to_thread(corpora.data.sources, corpus):
            if added.last_sync is None:
                state = "not read yet"
            elif added.failure:
                state = f"last sync {added.last_sync}: failed ({render.shorten(self.bot.redact(added.failure), 120)})"
            else:
                state = f"{added.articles or 0:,} articles, last sync {added.last_sync}: ok"
            lines.append(f"• <{render.shorten(added.url, 300)}> — {state}")
        if len(lines) == 1:
            lines.append("No sources yet: add one with `/library add`.")
        await send(interaction, content=render.shorten("\n".join(lines), render.CONTENT_LIMIT))

    @library.command(name="sync", description="Read this server's sources again now.")
    async def sync(self, interaction: discord.Interaction) -> None:
        corpus = await self.corpus(interaction)
        if corpus is None:
            return
        if self.bot.corpora.syncing(corpus):
            await send(interaction, content="A sync is already running.")
            return
        await send(
            interaction, content="Syncing in the background; questions keep working meanwhile."
        )
        self.bot.spawn(self.sync_and_report(interaction, corpus, None))

    # -- helpers --------------------------------------------------------------------------

    def settings_of(self, corpus: str) -> Settings:
        return self.bot.corpora.settings_for(corpus)

    async def over_limits(self, corpus: str) -> str | None:
        """Why the corpus may take no more sources (the server's limits), or None."""
        corpora = self.bot.corpora
        limits = self.bot.corpora.settings.bot
        count = len(await asyncio.to_thread(corpora.data.sources, corpus))
        if count >= limits.max_sources:
            return f"this server's library has {count} sources, the most it may have."
        if not await asyncio.to_thread(corpora.openable, corpus):
            return None
        async with corpora.use(corpus) as holder:
            stats = await holder.stats()
        if stats.articles >= limits.max_articles:
            return f"the library holds {stats.articles:,} articles, the most it may hold."
        if stats.size_bytes >= limits.max_corpus_mb * 1e6:
            return f"the library's index is {render.human_size(stats.size_bytes)}, the most it may take."
        return None

    async def tell(self, interaction: discord.Interaction, text: str) -> None:
        try:
            await interaction.followup.send(
                render.shorten(text, render.CONTENT_LIMIT),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException:
            logger.info("could not post a /library result (interaction expired?): %s", text)

    async def sync_and_report(
        self, interaction: discord.Interaction, corpus: str, url: str | None
    ) -> None:
        corpora = self.bot.corpora
        while corpora.syncing(corpus):  # another sync first; this one reads the new source
            await asyncio.sleep(0.5)
        try:
            report = await corpora.sync(corpus)
        except ReindexBusyError:
            text = "A sync is already running; the source is read at the next one."
        except CitebotError as exc:
            logger.warning("corpus %s: sync failed: %s", corpus, exc)
            text = (
                f"Sync failed: {public_message(exc, self.bot.redact)} The previous articles stay."
            )
        except Exception:
            logger.exception("corpus %s: sync failed", corpus)
            text = "Sync failed; the error was logged. The previous articles stay."
        else:
            text = self.summary(report, url)
        await self.tell(interaction, text)

    def summary(self, report: IngestReport, url: str | None) -> str:
        """``12 articles added, 2 failed: …`` (of ``url`` when given), or why nothing was."""
        sources = [s for s in report.sources if url is None or s.root == url]
        failures = [s.failure for s in sources if s.failure]
        if url is not None and failures:
            return f"Nothing was added from <{url}>: {self.bot.redact(failures[0])}"
        added = sum(s.added for s in sources)
        problems = [p for s in sources for p in s.problems]
        text = f"{added:,} articles added"
        if url is None:
            text += f", {report.updated:,} updated, {report.removed:,} removed"
        if problems:
            shown = "; ".join(
                f"{render.shorten(p.where, 80)}: {render.shorten(self.bot.redact(p.reason), 80)}"
                for p in problems[:FAILED_SHOWN]
            )
            text += f", {len(problems)} failed: {shown}"
        elif url is not None and added == 0 and not any(s.articles for s in sources):
            return f"Nothing was added from <{url}>: no articles were found there."
        return text + "."
