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
    make_embedder: Callable[[], Embedder] | None = None,
    force_sync: bool = False,
    **options: Any,
) -> CitebotClient:
    """Open the index (and load the model) and build the client: the dependencies, passed in.

    ``make_embedder`` makes the model (default: the model the index was built with, run
    the same way, so an ONNX index needs no torch): one instance answers questions, and
    each re-index makes one of its own.
    """
    from retrieval.live import IndexFolder, IndexHolder

    from .app import BotConfig, CitebotClient
    from .store import BotStore, feedback_path

    if make_embedder is None:
        from retrieval.models import load_embedder

        def make_embedder() -> Embedder:
            return load_embedder(settings)

    embedder = make_embedder()
    holder = IndexHolder(IndexFolder(settings, embedder, make_embedder))
    # Load the model now, not on the first question.
    embedder.embed(["warm up"])
    store = BotStore(feedback_path(settings))
    config = BotConfig.from_settings(settings, force_sync=force_sync)
    return CitebotClient(config, holder, store, **options)


async def run(client: CitebotClient, token: str, metrics_port: int = 0) -> None:
    import asyncio
    import signal

    from retrieval import metrics

    exporter = None
    if metrics_port and metrics.enable():
        exporter = metrics.serve_http(metrics_port)
        logger.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
        stats = await client.holder.stats()
        metrics.build_info(stats.model, stats.runs_as)
        metrics.index(stats)
    latency = asyncio.create_task(_record_latency(client)) if exporter else None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(client.close()))
    try:
        async with client:
            await client.start(token)
    finally:
        if latency is not None:
            latency.cancel()
        if exporter is not None:
            exporter.shutdown()
        await client.holder.close()
        client.store.close()


async def _record_latency(client: CitebotClient, every: float = 15.0) -> None:
    """The gateway's heartbeat latency, and the index's size, for /metrics."""
    import asyncio

    from retrieval import metrics

    while True:
        await asyncio.sleep(every)
        metrics.gateway_latency(client.latency)
        try:
            metrics.index(await client.holder.stats())
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
    client = build_client(
        settings, make_embedder=lambda: runtime.make_embedder(settings), force_sync=sync
    )
    logger.info("index and model loaded in %.1fs", time.perf_counter() - started)
    asyncio.run(run(client, token, settings.bot.metrics_port))


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
