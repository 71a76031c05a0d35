"""The CLI's corpora: ``--corpus NAME``, the settings of the corpus a command uses, and
`citebot sync` over one corpus or each corpus in turn."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import CitebotError

if TYPE_CHECKING:
    from .config import Settings
    from .ingest import IngestReport

CORPUS_KEY = "citebot.corpus"


def corpus_option(function: Any) -> Any:
    """``--corpus NAME``: the corpus (a ``[corpora.NAME]`` of the config) this command uses;
    ``retrieval.cli.settings_of(ctx, index)`` applies it."""
    return click.option(
        "--corpus",
        metavar="NAME",
        expose_value=False,
        callback=lambda ctx, _param, name: ctx.meta.__setitem__(CORPUS_KEY, name),
        help='The corpus (a [corpora.NAME] of the config; default: "default", or the only one).',
    )(function)


def corpus_settings(ctx: click.Context, settings: Settings, index: Path | None) -> Settings:
    """``settings`` for the corpus of ``--corpus`` in a command that takes it; without it
    (and without ``--index``), "default" or the only corpus. A usage error names the choice."""
    if CORPUS_KEY not in ctx.meta:  # a command without --corpus
        return settings
    corpus = ctx.meta[CORPUS_KEY]
    try:
        if corpus is not None:
            return settings.for_corpus(corpus)
        if index is None and settings.corpora:
            return settings.for_corpus(settings.main_corpus())
    except CitebotError as exc:
        raise click.UsageError(str(exc)) from None
    return settings


def sync_corpora(
    settings: Settings, embedder: Callable[[Settings], Any], *, force: bool, as_json: bool
) -> int:
    """Sync every corpus that has sources; one corpus's failure does not stop the others.
    The exit status: 2 when anything failed."""
    failed = False
    for name in settings.corpus_names():
        one = settings.for_corpus(name)
        if not one.sources:
            continue
        if not as_json:
            click.echo(f"corpus {name}:")
        try:
            report = sync_corpus(one, embedder, force=force, as_json=as_json, corpus=name)
        except CitebotError as exc:
            click.echo(f"corpus {name}: sync failed: {exc}", err=True)
            failed = True
            continue
        failed = failed or bool(report.skipped)
    return 2 if failed else 0


def sync_corpus(
    settings: Settings,
    embedder: Callable[[Settings], Any],
    *,
    force: bool,
    as_json: bool,
    corpus: str | None = None,
) -> IngestReport:
    """Bring one corpus's index in step with its sources, and print what changed."""
    from .ingest import ingest

    report = ingest(
        list(settings.sources),
        settings,
        embedder(settings),
        prune=True,
        force=force,
        show_progress=sys.stderr.isatty() and not as_json,
    )
    if as_json:
        data = report.to_dict()
        click.echo(json.dumps({"corpus": corpus, **data} if corpus else data, ensure_ascii=False))
    else:
        for change in report.changes:
            click.echo(f"{change.kind:<8} {change.title} ({change.source})")
        for problem in report.skipped:
            click.echo(f"failed   {problem}", err=True)
        for failed in report.failed:
            click.echo(f"nothing was removed from {failed.root}: {failed.failure}", err=True)
        click.echo(
            f"synced {len(report.sources)} sources: {report.changes_line()};"
            f" {report.chunks_embedded} chunks embedded in {report.seconds:.1f}s"
        )
    return report
