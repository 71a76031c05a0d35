"""The `citebot` command: a thin layer over the library.

Library errors (CitebotError) become one-line messages and exit status 1 here, in one
place. Heavy modules (torch, sentence-transformers, faiss) are imported only by the
commands that need them, so `citebot --help` stays fast.

(Over 600 lines, for a reason: every command's options and help text are here, and
docs/cli.md is generated from them; each command's body is a few lines over the library,
and what grew beside them has its own module: ``answer_text``, ``batch``, ``cli_corpora``.)
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .answer_text import render_answer
from .batch import read_batch
from .cli_corpora import CORPUS_KEY, corpus_option, corpus_settings
from .config import Settings, load_settings
from .errors import CitebotError
from .records import SearchFilter, failed_answer_dict
from .text import printable

if TYPE_CHECKING:
    from .embedding import Embedder
    from .index import Manifest

logger = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLE_QUESTION = "How do libraries lend tools?"


class CitebotGroup(click.Group):
    """Turns library errors into user messages; finds plugin commands (the bot) by entry point."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The OS hands over arguments that are not UTF-8 with their bytes escaped as lone
        # surrogates, which fail later wherever text is written (SQLite, the terminal).
        for number, arg in enumerate(args, start=1):
            if arg != printable(arg):
                raise click.UsageError(
                    f"argument {number} ({printable(arg)!r}) is not valid UTF-8 text", ctx
                )
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CitebotError as exc:
            raise click.ClickException(str(exc)) from None

    def _plugins(self) -> dict[str, Any]:
        # Imported here: reading package metadata costs a cold `citebot ask` tens of ms.
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group="citebot.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and (plugin := self._plugins().get(name)):
            command = plugin.load()
        return command


def load_model(
    settings: Settings, *, rebuild: bool = False, manifest: Manifest | None = None
) -> Embedder:
    """The model of the index in ``settings.index_dir``, run the way it was built (an ONNX
    index brings its own model file: no torch); for a new index or a ``rebuild``, the
    configured model and backend. Not loaded yet. What the commands embed with unless a
    Runtime says otherwise. ``manifest``: the index's, when a command has read it already."""
    from .models import load_embedder

    return load_embedder(settings, rebuild=rebuild, manifest=manifest)


@dataclass
class Runtime:
    """What the commands share (``ctx.obj``): the settings, and how to make the model.

    ``make_embedder`` is called with the settings (and keyword options a command may add,
    so a factory should accept ``**options``). A program embedding the CLI, or a test, may
    pass ``obj=Runtime(make_embedder=...)`` to ``cli.main`` or ``CliRunner.invoke``.
    Plugin commands read ``settings_of(ctx)``.
    """

    settings: Settings = field(default_factory=Settings)
    make_embedder: Callable[..., Embedder] = load_model


def settings_of(ctx: click.Context, index: Path | None = None) -> Settings:
    """The settings of this invocation (from ``--config``, given before or after the command),
    for the corpus of ``--corpus`` (see ``corpus_option``; without it, "default" or the only
    corpus of the config), with the folder of ``--index`` (see ``index_option``) when given."""
    return corpus_settings(ctx, ctx.ensure_object(Runtime).settings, index).with_index(index)


def _use_config(ctx: click.Context, path: Path | None) -> None:
    runtime = ctx.ensure_object(Runtime)
    if path is not None:
        try:
            runtime.settings = load_settings(path)
        except CitebotError as exc:
            raise click.ClickException(str(exc)) from None


def config_option(function: Any) -> Any:
    """``--config FILE`` after a command name too: `citebot bot --config FILE` works like
    `citebot --config FILE bot` (given in both places, the one after the command wins)."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=lambda ctx, _param, path: _use_config(ctx, path),
        help="Config file (TOML), as the global --config.",
    )(function)


def index_option(function: Any) -> Any:
    """``--index DIR``: the index folder for this command, over $CITEBOT_INDEX and the
    config's ``index_dir``; the command reads it with ``settings_of(ctx, index)``."""
    return click.option(
        "--index",
        type=click.Path(file_okay=False, path_type=Path),
        help="Index folder (default: $CITEBOT_INDEX, else the config's index_dir, else the user data folder).",
    )(function)


def _json_option(function: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


@click.group(cls=CitebotGroup)
@click.version_option(package_name="citebot")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CITEBOT_CONFIG",
    help="Config file (TOML). Default: $CITEBOT_CONFIG, else built-in defaults.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """Answer questions with verbatim, cited passages from your articles."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _use_config(ctx, config)


def _embedder(settings: Settings, **options: Any) -> Any:
    runtime = click.get_current_context().find_object(Runtime) or Runtime()
    return runtime.make_embedder(settings, **options)


def _open_searcher(settings: Settings) -> Any:
    from .models import open_index_with_model
    from .search import Searcher

    # The manifest is read once; no index: said before a model is chosen.
    index, embedder = open_index_with_model(
        settings, lambda manifest: _embedder(settings, manifest=manifest)
    )
    return Searcher(index, embedder, settings.search)


# -- ingest -------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1)
@index_option
@corpus_option
@click.option("--prune", is_flag=True, help="Remove indexed articles not found under PATHS.")
@click.option(
    "--force",
    is_flag=True,
    help="Prune even when that removes more than [ingest] max_prune_share of the index.",
)
@click.option("--rebuild", is_flag=True, help="Start the index afresh (after changing the model).")
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Read files and folders that links lead to outside PATHS (skipped by default).",
)
@_json_option
@config_option
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    index: Path | None,
    prune: bool,
    force: bool,
    rebuild: bool,
    follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Add the articles in PATHS (files, folders and URLs) to the index.

    Reads .txt, .md, .html, .pdf, .json and .jsonl files, and URLs of article pages,
    RSS/Atom feeds, sitemaps and PDFs. With no PATHS, reads the config's `sources`.
    Unchanged articles are not embedded again. With --prune, removes the articles no
    longer found, but never those of a path that is missing, unreadable or holds no
    articles, nor web articles that only dropped out of a feed or sitemap. Exits with
    status 2 when any path, URL, file or record was skipped.
    """
    from .ingest import ingest as run_ingest

    settings = settings_of(ctx, index)
    if follow_symlinks:
        settings = replace(settings, ingest=replace(settings.ingest, follow_symlinks=True))
    sources = list(paths) or list(settings.sources)
    if not sources:
        raise click.UsageError("give files or folders to ingest, or set `sources` in the config")
    report = run_ingest(
        sources,
        settings,
        _embedder(settings, rebuild=rebuild),
        prune=prune,
        force=force,
        rebuild=rebuild,
        show_progress=sys.stderr.isatty() and not as_json,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for problem in report.skipped:
            click.echo(f"skipped {problem}", err=True)
        if prune:
            for failed in report.failed:
                click.echo(f"nothing was pruned from {failed.root}: {failed.failure}", err=True)
        if len(report.sources) > 1:
            for counts in report.sources:
                click.echo(
                    f"  {counts.root}: {counts.articles} articles from"
                    f" {_documents(counts.documents, [counts.root])},"
                    f" {counts.added} added, {counts.updated} updated, {counts.removed} removed,"
                    f" {counts.skipped} skipped"
                )
        roots = [counts.root for counts in report.sources]
        seconds = max(report.seconds, 1e-9)
        click.echo(
            f"{report.articles} articles from {_documents(report.files, roots)}"
            f" in {settings.index_dir}:"
            f" {report.added} added, {report.updated} updated, {report.unchanged} unchanged,"
            f" {report.removed} removed; {report.chunks_embedded} chunks embedded"
            f" in {report.seconds:.1f}s ({report.articles / seconds:.1f} articles/s,"
            f" {report.chunks_embedded / seconds:.1f} chunks/s)"
        )
        if report.resumed:
            click.echo(
                f"resumed the rebuild that was cut short: {report.resumed} articles it had"
                " written were kept, not embedded again"
            )
        if report.copies:
            click.echo(
                f"{report.copies} articles are copies of another (`citebot articles"
                " --duplicates` lists them); answers show one of each"
            )
    if report.skipped:
        ctx.exit(2)


def _documents(count: int, roots: list[str]) -> str:
    """ "4 files", "12 pages" or "16 files and pages", after the kinds of ``roots``."""
    from .urls import looks_like_url

    web = sum(looks_like_url(root) for root in roots)
    noun = "pages" if web == len(roots) else "files and pages" if web else "files"
    return f"{count} {noun}"


@cli.command()
@index_option
@corpus_option
@click.option(
    "--force",
    is_flag=True,
    help="Remove articles even when that is more than [ingest] max_prune_share of the index.",
)
@_json_option
@config_option
@click.pass_context
def sync(ctx: click.Context, index: Path | None, force: bool, as_json: bool) -> None:
    """Bring the index in step with the config's `sources`, and print what changed.

    With several corpora in the config and no --corpus or --index, syncs each of them.

    Re-reads every source incrementally: unchanged files and pages are not embedded
    again, and URLs are fetched with conditional requests. Articles of files and folders
    that are gone are removed; an article that only dropped out of a feed or a sitemap
    is kept; a page that now answers 404 or 410 is removed. Exits with status 2 when
    anything could not be read.
    """
    from .cli_corpora import sync_corpora, sync_corpus

    if index is None and ctx.meta.get(CORPUS_KEY) is None:
        corpora = ctx.ensure_object(Runtime).settings
        if len(corpora.corpus_names()) > 1:
            ctx.exit(sync_corpora(corpora, _embedder, force=force, as_json=as_json))
    settings = settings_of(ctx, index)
    if not settings.sources:
        raise click.UsageError("set `sources` (files, folders or URLs) in the config to sync")
    report = sync_corpus(settings, _embedder, force=force, as_json=as_json)
    if report.skipped:
        ctx.exit(2)


# -- ask ----------------------------------------------------------------------------------


@cli.command()
@click.argument("question", required=False)
@index_option
@corpus_option
@click.option("-k", type=click.IntRange(1, 50), help="Passages to show (default: config k).")
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON Lines file of {"question": ...} objects; one answer line per question.',
)
@click.option("--source", help="Only articles from this source, or a folder, file or site.")
@click.option("--author", help="Only articles whose author contains this text.")
@click.option(
    "--after", type=click.DateTime(["%Y-%m-%d"]), help="Only articles dated on or after YYYY-MM-DD."
)
@click.option(
    "--before",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Only articles dated on or before YYYY-MM-DD.",
)
@click.option("--all", "show_all", is_flag=True, help="Also print the results below the cut-off.")
@click.option("--full", is_flag=True, help="Print whole passages, not the part around the answer.")
@_json_option
@config_option
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    index: Path | None,
    k: int | None,
    batch: Path | None,
    source: str | None,
    author: str | None,
    after: datetime | None,
    before: datetime | None,
    show_all: bool,
    full: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION with cited passages from the index.

    Prints the best sentence as a quote with its citation, then the passages close enough
    to the best one, each trimmed to the paragraph around its answer. JSON lists the top
    k results, those on the first page marked "shown".
    """
    if (question is None) == (batch is None):
        raise click.UsageError("give either a QUESTION or --batch FILE")
    settings = settings_of(ctx, index)
    filters = SearchFilter(
        source=source,
        author=author,
        after=after.date() if after else None,
        before=before.date() if before else None,
    )
    if question is not None:
        # Checked before the model loads, so a bad question fails in milliseconds.
        from .search import check_question

        check_question(question, settings.search)
    searcher = _open_searcher(settings)
    color = sys.stdout.isatty()
    if question is not None:
        answer = searcher.search(question, k, filters=filters)
        if as_json:
            click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            click.echo(render_answer(answer, color, show_all=show_all, full=full))
        return
    assert batch is not None
    searcher.check_filters(filters)  # once, rather than on every line
    for line in read_batch(batch):
        try:
            if line.error is not None:
                raise CitebotError(line.error)
            assert line.question is not None
            answer = searcher.search(line.question, k, filters=filters)
        except Exception as exc:  # one bad line costs only its own answer
            if not isinstance(exc, CitebotError):
                logger.warning("line %d of %s failed", line.number, batch, exc_info=True)
            error = str(exc) if isinstance(exc, CitebotError) else f"could not answer: {exc}"
            if as_json:
                click.echo(json.dumps(failed_answer_dict(line.number, line.question, error)))
            else:
                click.echo(f"Q: {line.question}\n{error}\n")
            continue
        if as_json:
            click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            rendered = render_answer(answer, color, show_all=show_all, full=full)
            click.echo(f"Q: {line.question}\n{rendered}\n")


# -- look-up ------------------------------------------------------------------------------


def _open_store_only(settings: Settings) -> Any:
    """A searcher whose model is never loaded: look-ups need only the store."""
    from .index import backend_of
    from .search import Searcher

    storage = backend_of(settings)
    manifest = storage.read_manifest(settings.index_dir)
    return Searcher(
        storage.open_reader(settings.index_dir, manifest.model, manifest=manifest),
        _embedder(settings, manifest=manifest),
        settings.search,
    )


@cli.command()
@click.option(
    "--duplicates",
    is_flag=True,
    help="List the groups of articles that tell the same story (copies), the original first.",
)
@index_option
@corpus_option
@_json_option
@config_option
@click.pass_context
def articles(ctx: click.Context, duplicates: bool, index: Path | None, as_json: bool) -> None:
    """List the indexed articles: id, title, source and chunk count."""
    searcher = _open_store_only(settings_of(ctx, index))
    if duplicates:
        groups = searcher.duplicate_groups()
        if as_json:
            listed = [[vars(ref) for ref in group] for group in groups]
            click.echo(json.dumps({"duplicates": listed}, ensure_ascii=False))
            return
        for group in groups:
            click.echo(f"{group[0].id}\t{group[0].title}\t{group[0].source}")
            for ref in group[1:]:
                click.echo(f"  = {ref.id}\t{ref.title}\t{ref.source}")
        copies = sum(len(g) - 1 for g in groups)
        click.echo(f"{len(groups)} stories with copies ({copies} copies)", err=True)
        return
    summaries = searcher.articles()
    if as_json:
        rows = [s.to_dict() for s in summaries]
        click.echo(json.dumps({"articles": rows}, ensure_ascii=False))
        return
    for s in summaries:
        click.echo(f"{s.article.id}\t{s.article.title}\t{s.article.source}\t{s.chunk_count} chunks")
    click.echo(f"{len(summaries)} articles", err=True)


@cli.command()
@click.argument("id_or_title")
@index_option
@corpus_option
@_json_option
@config_option
@click.pass_context
def article(ctx: click.Context, id_or_title: str, index: Path | None, as_json: bool) -> None:
    """Show one article, by id or title, with numbered paragraphs."""
    found = _open_store_only(settings_of(ctx, index)).article(id_or_title)
    if as_json:
        click.echo(json.dumps(found.to_dict(), ensure_ascii=False))
        return
    click.echo(found.title)
    meta = [found.source, found.url, found.date, found.author]
    click.echo(" · ".join(m for m in meta if m))
    click.echo()
    page = None
    for number, paragraph in enumerate(found.paragraphs, start=1):
        if found.pages and found.pages[number - 1] != page:
            page = found.pages[number - 1]
            click.echo(f"— page {page} —\n")
        click.echo(f"[{number}] {paragraph}\n")


@cli.command()
@index_option
@corpus_option
@_json_option
@config_option
@click.pass_context
def stats(ctx: click.Context, index: Path | None, as_json: bool) -> None:
    """Show article and chunk counts, the model and how it runs, and the size on disk."""
    result = _open_store_only(settings_of(ctx, index)).stats()
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(
        f"index      {result.path}\narticles   {result.articles}\nchunks     {result.chunks}\n"
        f"model      {result.model} ({result.dimension} dimensions)\n"
        f"backend    {result.runs_as}\n"
        f"size       {result.size_bytes / 1e6:.1f} MB\nvectors    {result.vector_index}\n"
        f"segments   main file {result.main_vectors:,} vectors; segment {result.segment_chunks:,}"
        f" chunks written since; {result.masked_chunks:,} masked chunks\n"
        f"compacted  {result.last_compaction or 'never'}\n"
        f"created    {result.created}\n"
        f"updated    {result.updated}"
    )


# -- eval ---------------------------------------------------------------------------------


@cli.command(name="eval")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@index_option
@corpus_option
@click.option(
    "--fusion",
    type=click.Choice(["convex", "rrf", "dense", "keyword"]),
    help="Override the fusion method.",
)
@click.option(
    "--misses", "show_misses", type=int, default=10, show_default=True, help="Misses to list."
)
@_json_option
@config_option
@click.pass_context
def eval_command(
    ctx: click.Context,
    questions: Path,
    index: Path | None,
    fusion: str | None,
    show_misses: int,
    as_json: bool,
) -> None:
    """Measure retrieval on labelled QUESTIONS (JSON Lines: question, article_id, answers).

    Reports hit@1/3/5/10 and MRR@10 (a hit is a passage from article_id containing one
    of the answers), latency p50/p99, what the first page shows (passages, the share from
    the question's article, hit@3 among them, characters), how often the highlight of
    the first hit passage holds an answer, and the questions that missed.
    """
    from .evaluate import evaluate, load_questions

    labelled = load_questions(questions)
    searcher = _open_searcher(settings_of(ctx, index))
    if fusion:
        searcher = searcher.with_settings(fusion=fusion)
    searcher.search(labelled[0].question)  # warm-up: the first call pays one-off costs
    report = evaluate(searcher, labelled)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    hits = "  ".join(f"hit@{c} {v:.3f}" for c, v in report.hit_at.items())
    click.echo(f"{report.questions} questions  {hits}  MRR@10 {report.mrr_at_10:.3f}")
    click.echo(
        f"answered {report.answered:.1%}  latency p50 {report.latency_p50_ms:.1f} ms"
        f"  p99 {report.latency_p99_ms:.1f} ms"
    )
    page = report.page
    click.echo(
        f"first page: {page.passages:.2f} passages, {page.own_article_share:.1%} from the"
        f" question's article, hit@3 {page.hit_at_3:.3f}, {page.chars_median:.0f} characters"
        f" (median); highlight holds the answer in {page.highlight_right:.1%}"
        f" of {page.highlight_questions} hit passages ({page.highlight_chars:.0f} characters"
        " on average)"
    )
    if report.misses and show_misses:
        click.echo(
            f"\n{len(report.misses)} questions not answered at rank 1; the first {show_misses}:"
        )
        for miss in report.misses[:show_misses]:
            click.echo(f"- {miss.question}  (wanted {miss.article_id}: {' | '.join(miss.answers)})")
            click.echo(f"  first: {miss.first_article}: {(miss.first_passage or '')[:120]}")


# -- demo -----------------------------------------------------------------------------------


@cli.command()
@index_option
@corpus_option
@click.option("--question", default=SAMPLE_QUESTION, show_default=True)
@config_option
@click.pass_context
def demo(ctx: click.Context, index: Path | None, question: str) -> None:
    """Index the bundled sample articles and answer a sample question."""
    import tempfile

    from .ingest import ingest as run_ingest
    from .search import Searcher

    with tempfile.TemporaryDirectory(prefix="citebot-demo-") as scratch:
        settings = settings_of(ctx, index or Path(scratch) / "index")
        embedder = _embedder(settings)
        report = run_ingest([SAMPLES_DIR], settings, embedder)
        click.echo(
            f"Indexed {report.articles} sample articles ({report.chunks_embedded} chunks).\n"
        )
        click.echo(f"Q: {question}\n")
        answer = Searcher.open(settings, embedder).search(question)
        click.echo(render_answer(answer, color=sys.stdout.isatty()))


def main() -> None:
    cli(prog_name="citebot")
