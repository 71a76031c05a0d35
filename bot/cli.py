"""`citebot bot`: registered with the citebot command through an entry point.

Kept light: discord.py, the index and the model are imported only when the bot runs,
so `citebot --help` stays fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from retrieval.cli import Runtime, config_option, index_option, settings_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from retrieval.config import Settings
    from retrieval.embedding import Embedder
    from retrieval.records import IndexStats

    from .app import CitebotClient

logger = logging.getLogger(__name__)


class TokenError(click.ClickException):
    pass


def read_token(environ: dict[str, str] | None = None) -> str:
    """The bot token from $DISCORD_TOKEN, else from the file named by $DISCORD_TOKEN_FILE."""
    environ = dict(os.environ) if environ is None else environ
    if token := environ.get("DISCORD_TOKEN", "").strip():
        return token
    if name := environ.get("DISCORD_TOKEN_FILE", "").strip():
        try:
            token = Path(name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TokenError(f"cannot read DISCORD_TOKEN_FILE {name}: {exc.strerror}") from None
        if token:
            return token
        raise TokenError(f"DISCORD_TOKEN_FILE {name} is empty")
    raise TokenError("set DISCORD_TOKEN, or DISCORD_TOKEN_FILE to a file holding the bot token")


def build_client(
    settings: Settings,
    *,
    make_embedder: Callable[[Settings], Embedder] | None = None,
    force_sync: bool = False,
    message_content: bool | None = None,
    **options: Any,
) -> CitebotClient:
    """Build the client and its dependencies: the corpora (opened on first use; one model
    shared by all of them), the bot's database and its settings.

    ``make_embedder(settings)`` makes the model of a corpus (default: the model its index
    was built with, run the same way, so an ONNX index needs no torch): one instance per
    model and backend answers questions, and each re-index makes one of its own.
    """
    from retrieval.corpora import SharedEmbedders

    from .app import BotConfig, CitebotClient
    from .hub import BotCorpora, default_corpus
    from .serverdata import ServerData
    from .store import BotStore, feedback_path

    if make_embedder is None:
        from retrieval.models import load_embedder

        make_embedder = load_embedder
    store = BotStore(feedback_path(settings))
    corpora = BotCorpora(
        settings, ServerData(store.path), SharedEmbedders(make_embedder), make_embedder
    )
    missing = [name for name in corpora.configured if not corpora.has_index(name)]
    if missing and len(corpora.configured) == 1 and not settings.bot.server_corpora:
        from retrieval.index import backend_of

        only = settings.for_corpus(missing[0])
        backend_of(only).read_manifest(Path(only.index_dir))  # says what is missing
    for name in missing:
        logger.warning(
            "corpus %s has no index yet: build it with `citebot sync --corpus %s`", name, name
        )
    # Load the model now, not on the first question.
    main = default_corpus(settings) or settings.corpus_names()[0]
    corpora.embedders.for_settings(corpora.settings_for(main)).embed(["warm up"])
    config = BotConfig.from_settings(settings, force_sync=force_sync)
    return CitebotClient(config, corpora, store, message_content=message_content, **options)


async def run(
    make_client: Callable[[bool | None], CitebotClient], token: str, metrics_port: int = 0
) -> None:
    """Run the bot until it is stopped. With ``[bot] message_content = "auto"``, a refusal
    of the Message Content intent by Discord reconnects without it (logged once). With a
    ``metrics_port``, /metrics is served beside it."""
    import asyncio
    import signal

    import discord

    from retrieval import metrics

    client = make_client(None)
    exporter = None
    if metrics_port and metrics.enable():
        exporter = metrics.serve_http(metrics_port)
        logger.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
        stats = await _main_stats(client)
        if stats is not None:
            metrics.build_info(stats.model, stats.runs_as)
            metrics.index(stats)
    latency = asyncio.create_task(_record_latency(lambda: client)) if exporter else None
    loop = asyncio.get_running_loop()
    closing: set[asyncio.Future[None]] = set()

    def stop() -> None:
        closing.add(asyncio.ensure_future(client.close()))  # the client running now

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    try:
        while True:
            try:
                async with client:
                    await client.start(token)
                return
            except discord.PrivilegedIntentsRequired:
                if client.config.message_content != "auto" or not client.message_content:
                    raise
                logger.warning(
                    "Discord refused the Message Content intent (not enabled for this bot, or"
                    " not approved): reconnecting without it; answer channels and forum"
                    " channels are off, slash commands, Find sources, mentions, replies and"
                    " DMs still work"
                )
                await client.corpora.close()
                client.store.close()
                client = make_client(False)
                client.message_content_note = "Discord refused it"
    finally:
        if latency is not None:
            latency.cancel()
        if exporter is not None:
            exporter.shutdown()
        if client.is_closed():
            await client.corpora.close()
            client.store.close()


async def _main_stats(client: CitebotClient) -> IndexStats | None:
    """The statistics of the main corpus (the default one), if it is built."""
    name = client.corpora.router.default_corpus
    if name is None or not client.corpora.openable(name):
        return None
    async with client.corpora.use(name) as holder:
        return await holder.stats()


async def _record_latency(current: Callable[[], CitebotClient], every: float = 15.0) -> None:
    """The gateway's heartbeat latency, and the main index's size, for /metrics."""
    import asyncio

    from retrieval import metrics

    while True:
        await asyncio.sleep(every)
        client = current()
        metrics.gateway_latency(client.latency)
        try:
            if (stats := await _main_stats(client)) is not None:
                metrics.index(stats)
        except Exception:  # a folder mid-swap: next turn
            logger.debug("index statistics unavailable", exc_info=True)


@click.command("bot")
@index_option
@click.option("--sync", is_flag=True, help="Sync slash commands now, even if unchanged.")
@config_option
@click.pass_context
def bot_command(ctx: click.Context, index: Path | None, sync: bool) -> None:
    """Run the Discord bot (token from $DISCORD_TOKEN or $DISCORD_TOKEN_FILE)."""
    import asyncio

    runtime = ctx.find_object(Runtime) or Runtime()
    settings = settings_of(ctx, index)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The bot is a service: its progress belongs in the log even without -v.
    for name in ("bot", "discord"):
        logging.getLogger(name).setLevel(
            min(logging.getLogger().level or logging.INFO, logging.INFO)
        )
    token = read_token()
    started = time.perf_counter()

    def make_client(message_content: bool | None) -> CitebotClient:
        client = build_client(
            settings,
            make_embedder=runtime.make_embedder,
            force_sync=sync,
            message_content=message_content,
        )
        logger.info("model loaded in %.1fs", time.perf_counter() - started)
        return client

    asyncio.run(run(make_client, token, settings.bot.metrics_port))


@click.command("feedback")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Questions and articles to list.",
)
@config_option
@click.pass_context
def feedback_command(ctx: click.Context, index: Path | None, as_json: bool, limit: int) -> None:
    """Report the bot's 👍/👎 votes: totals, the most down-voted questions with the
    passages they got, and the articles most often voted down.

    Reads the bot's database: [bot] feedback_db, else feedback.sqlite in the index folder.
    """
    import json

    from .feedback import feedback_report, render_text
    from .store import BotStore, feedback_path

    store = BotStore(feedback_path(settings_of(ctx, index)), read_only=True)
    try:
        report = feedback_report(store, limit=limit)
    finally:
        store.close()
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else render_text(report))
