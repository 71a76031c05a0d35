"""`citebot serve`: registered with the citebot command through an entry point.

Kept light: aiohttp, the index and the model are imported only when the server runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from retrieval.cli import Runtime, config_option
from retrieval.errors import CitebotError

if TYPE_CHECKING:
    from retrieval.config import Settings

logger = logging.getLogger(__name__)


def served_corpora(
    settings: Settings, index: Path | None, corpus: str | None
) -> tuple[dict[str, Settings], str]:
    """The corpora to serve by name, and the main one (asked for without ``corpus=``):
    ``--index DIR`` alone as "default", ``--corpus NAME`` alone, or every corpus of the
    config with "default" (or the first) as the main one."""
    from retrieval.config import DEFAULT_CORPUS

    if index is not None:
        if corpus is not None:
            raise click.UsageError("give --index or --corpus, not both")
        return {DEFAULT_CORPUS: settings.with_index(index)}, DEFAULT_CORPUS
    if corpus is not None:
        return {corpus: settings.for_corpus(corpus)}, corpus
    names = settings.corpus_names()
    main = DEFAULT_CORPUS if DEFAULT_CORPUS in names else names[0]
    return {name: settings.for_corpus(name) for name in names}, main


@click.command("serve")
@click.option(
    "--index",
    type=click.Path(file_okay=False, path_type=Path),
    help="Serve only this index folder, as the corpus default.",
)
@click.option(
    "--corpus",
    metavar="NAME",
    help="Serve only this corpus of the config (default: every corpus).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@config_option
@click.pass_context
def serve_command(
    ctx: click.Context, index: Path | None, corpus: str | None, host: str, port: int
) -> None:
    """Serve the HTTP API (/v1), the search page (/) and /metrics.

    Every corpus of the config is served (choose one with corpus= on each request;
    without it, the corpus "default" or the first).

    Keys come from $CITEBOT_API_KEYS (search and read) and $CITEBOT_ADMIN_KEYS (push and
    delete), comma-separated. Without keys the server listens on loopback only.
    """
    from aiohttp import web

    from retrieval import metrics

    from . import ServerError, memory
    from .accesslog import AccessLogger
    from .app import make_app
    from .corpora import Corpora
    from .security import Keys, check_binding, is_loopback

    runtime = ctx.find_object(Runtime) or Runtime()
    settings = runtime.settings
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("server", "aiohttp.access"):
        logging.getLogger(name).setLevel(
            min(logging.getLogger().level or logging.INFO, logging.INFO)
        )
    try:
        served, main = served_corpora(runtime.settings, index, corpus)
    except CitebotError as exc:
        raise click.UsageError(str(exc)) from None
    keys = Keys.from_environment()
    try:
        check_binding(host, keys)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    if not keys.any:
        click.echo(
            f"No keys set ($CITEBOT_API_KEYS, $CITEBOT_ADMIN_KEYS): listening on {host} only,"
            " open to local clients.",
            err=True,
        )
    elif is_loopback(host):
        click.echo(f"Listening on {host}: keys are required.", err=True)
    memory.limit_arenas()
    metrics.enable()
    corpora = Corpora(served, lambda s: runtime.make_embedder(s), default=main)
    app = make_app(corpora, settings.serve, keys, follow_seconds=settings.bot.follow_seconds)
    web.run_app(
        app,
        host=host,
        port=port,
        shutdown_timeout=settings.serve.request_timeout_seconds,
        print=lambda _: click.echo(f"citebot serve on http://{host}:{port}/", err=True),
        access_log_class=AccessLogger,
    )
