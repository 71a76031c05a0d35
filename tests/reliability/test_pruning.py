"""Pruning never loses articles to a missing, unreadable or empty source, nor by surprise."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from retrieval.cli import Runtime, cli
from retrieval.config import IngestSettings, Settings
from retrieval.errors import PruneRefusedError
from retrieval.index import IndexedArticle, read_manifest
from retrieval.ingest import ingest
from retrieval.pruning import prune_plan
from retrieval.records import Article, Problem
from retrieval.sources import SourceOutcome
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, CORPUS_IDS


def article_ids(settings: Settings) -> set[str]:
    return set(article_roots(settings))


def article_roots(settings: Settings) -> dict[str, str | None]:
    manifest = read_manifest(settings.index_dir)
    db = sqlite3.connect(settings.index_dir / manifest.folder / "store.sqlite")
    try:
        return dict(db.execute("SELECT id, root FROM articles").fetchall())
    finally:
        db.close()


def write_articles(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.txt").write_text(
            f"Notes About {name.title()}\n\nThe {name} story has one paragraph of text.\n",
            encoding="utf-8",
        )
    return folder


@pytest.fixture
def two_roots(tmp_path: Path, settings: Settings) -> tuple[Path, Path]:
    """The test corpus (5 articles) and a second folder of 3, both indexed."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    extra = write_articles(tmp_path / "extra", ["gulls", "tides", "nets"])
    ingest([corpus, extra], settings, FakeEmbedder())
    return corpus, extra


def run(*args: str | Path) -> Result:
    """The CLI with the fake model, given through its public Runtime."""
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    return CliRunner().invoke(cli, [str(a) for a in args], obj=runtime)


# -- a root that cannot be read is never pruned from ----------------------------------------


def test_prune_with_a_missing_root_keeps_its_articles(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, extra = two_roots
    before = article_ids(settings)
    shutil.rmtree(extra)  # an unmounted share
    result = run("ingest", "--prune", corpus, extra, "--index", settings.index_dir)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{extra}: no such file or folder" in result.stderr
    assert f"nothing was pruned from {extra}" in result.stderr
    assert article_ids(settings) == before


@pytest.mark.usefixtures("two_roots")
def test_prune_with_only_a_missing_root_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    """The issue's repro: `citebot ingest --prune /missing` emptied the index."""
    before = article_ids(settings)
    result = run("ingest", "--prune", tmp_path / "missing", "--index", settings.index_dir)
    assert result.exit_code != 0
    assert article_ids(settings) == before


def test_prune_with_an_empty_root_keeps_its_articles(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, extra = two_roots
    for path in extra.iterdir():
        path.unlink()
    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert report.removed == 0
    assert [(s.root, s.failure) for s in report.failed] == [(str(extra), "no articles found")]
    assert Problem(str(extra), "no articles found") in report.skipped
    assert len(article_ids(settings)) == 8


def test_prune_with_a_root_whose_files_all_fail_keeps_its_articles(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, extra = two_roots
    for path in extra.iterdir():
        path.write_bytes(b"\x00\x01 binary now")
    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert report.removed == 0
    assert report.failed and report.failed[0].root == str(extra)
    assert len(article_ids(settings)) == 8


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_prune_with_an_unreadable_root_keeps_its_articles(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, extra = two_roots
    extra.chmod(0)
    try:
        report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    finally:
        extra.chmod(0o755)
    assert report.removed == 0 and report.failed


def test_a_file_that_fails_this_time_keeps_its_articles(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    """An edit that breaks a file (or one line of it) does not delete what it held."""
    corpus, extra = two_roots
    (corpus / "clubs.json").write_text('{"articles": [', encoding="utf-8")  # truncated
    (extra / "gulls.txt").unlink()
    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert report.removed == 1  # gulls, deleted for real
    assert {"bees-2024", "skatepark"} <= article_ids(settings)
    assert "gulls" not in article_ids(settings)


def test_prune_still_removes_deleted_articles_of_good_roots(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, extra = two_roots
    (extra / "nets.txt").unlink()
    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert report.removed == 1
    assert article_ids(settings) == CORPUS_IDS | {"gulls", "tides"}
    extra_report = next(s for s in report.sources if s.root == str(extra))
    assert (extra_report.articles, extra_report.removed, extra_report.unchanged) == (2, 1, 2)


def test_articles_of_a_root_not_given_are_pruned_as_before(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, _ = two_roots
    report = ingest([corpus], settings, FakeEmbedder(), prune=True)
    assert report.removed == 3
    assert article_ids(settings) == CORPUS_IDS


# -- a large prune needs --force ------------------------------------------------------------


def test_a_prune_removing_more_than_the_share_is_refused(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, extra = two_roots
    generation = read_manifest(settings.index_dir).generation
    for name in ("orchestra.md", "ferry.txt", "clubs.json", "bakery.html"):
        (corpus / name).unlink()
    write_articles(corpus, ["kelp"])  # something new is not added either
    with pytest.raises(PruneRefusedError, match=r"remove 5 of the 8 indexed articles \(62%\)"):
        ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert read_manifest(settings.index_dir).generation == generation
    assert article_ids(settings) == CORPUS_IDS | {"gulls", "tides", "nets"}

    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True, force=True)
    assert (report.removed, report.added) == (5, 1)
    assert article_ids(settings) == {"gulls", "tides", "nets", "kelp"}


def test_the_share_is_configurable(settings: Settings, two_roots: tuple[Path, Path]) -> None:
    corpus, extra = two_roots
    (extra / "nets.txt").unlink()
    strict = replace(settings, ingest=IngestSettings(max_prune_share=0.1))
    with pytest.raises(PruneRefusedError):
        ingest([corpus, extra], strict, FakeEmbedder(), prune=True)
    assert ingest([corpus, extra], settings, FakeEmbedder(), prune=True).removed == 1


def test_the_cli_refuses_a_large_prune_in_one_line(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    corpus, _ = two_roots
    shutil.rmtree(corpus)
    corpus.mkdir()
    write_articles(corpus, ["kelp"])
    result = run("ingest", "--prune", corpus, "--index", settings.index_dir)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0], result.stderr
    assert len(article_ids(settings)) == 8

    forced = run("ingest", "--prune", "--force", corpus, "--index", settings.index_dir)
    assert forced.exit_code == 0, forced.output
    assert article_ids(settings) == {"kelp"}


# -- roots are recorded, reported and migrated ------------------------------------------------


def test_each_article_records_its_root(settings: Settings, two_roots: tuple[Path, Path]) -> None:
    corpus, extra = two_roots
    roots = article_roots(settings)
    assert {roots[i] for i in CORPUS_IDS} == {str(corpus)}
    assert {roots[i] for i in ("gulls", "tides", "nets")} == {str(extra)}


def test_a_relative_root_is_recorded_as_an_absolute_path(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_articles(tmp_path / "here", ["kelp"])
    monkeypatch.chdir(tmp_path)
    ingest(["here"], settings, FakeEmbedder())
    assert article_roots(settings) == {"kelp": str(tmp_path / "here")}


def test_the_json_report_lists_each_source(
    settings: Settings, two_roots: tuple[Path, Path], tmp_path: Path
) -> None:
    corpus, extra = two_roots
    missing = tmp_path / "missing"
    result = run("ingest", corpus, extra, missing, "--index", settings.index_dir, "--json")
    assert result.exit_code == 2
    sources = json.loads(result.stdout)["sources"]
    assert sources == [
        {
            "root": str(corpus),
            "documents": 4,
            "articles": 5,
            "added": 0,
            "updated": 0,
            "unchanged": 5,
            "removed": 0,
            "skipped": 0,
            "failure": None,
        },
        {
            "root": str(extra),
            "documents": 3,
            "articles": 3,
            "added": 0,
            "updated": 0,
            "unchanged": 3,
            "removed": 0,
            "skipped": 0,
            "failure": None,
        },
        {
            "root": str(missing),
            "documents": 0,
            "articles": 0,
            "added": 0,
            "updated": 0,
            "unchanged": 0,
            "removed": 0,
            "skipped": 1,
            "failure": "no such file or folder",
        },
    ]


def test_an_index_from_before_roots_gets_them_and_stays_safe(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    """Articles of an older index have no root: none is pruned while a root fails, and an
    ingest that finds them records where they are."""
    corpus, extra = two_roots
    manifest = read_manifest(settings.index_dir)
    db = sqlite3.connect(settings.index_dir / manifest.folder / "store.sqlite")
    db.execute("ALTER TABLE articles DROP COLUMN root")
    db.commit()
    db.close()
    shutil.rmtree(extra)

    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert report.removed == 0 and report.unchanged == 5
    roots = article_roots(settings)
    assert {roots[i] for i in CORPUS_IDS} == {str(corpus)}
    assert {roots[i] for i in ("gulls", "tides", "nets")} == {None}

    # With every root read, unknown-root articles not found are pruned as before.
    report = ingest([corpus], settings, FakeEmbedder(), prune=True, force=True)
    assert report.removed == 3


# -- the rules themselves --------------------------------------------------------------------


def indexed(root: str | None, source: str) -> IndexedArticle:
    return IndexedArticle("hash", root, source)


def test_prune_plan_rules() -> None:
    articles = {
        "found": indexed("/a", "found.txt"),
        "deleted": indexed("/a", "deleted.txt"),
        "in-bad-file": indexed("/a", "export.jsonl:3"),
        "of-failed-root": indexed("/b", "x.txt"),
        "reported-gone": indexed("/c", "https://c/1"),
        "not-reported": indexed("/c", "https://c/2"),
        "of-other-root": indexed("/d", "y.txt"),
        "unknown-root": indexed(None, "z.txt"),
    }
    outcomes = {
        "/a": SourceOutcome(kept=frozenset({"export.jsonl"})),
        "/b": SourceOutcome(failure="no such file or folder"),
        "/c": SourceOutcome(complete=False, gone=frozenset({"reported-gone"})),
    }
    assert sorted(prune_plan(articles, {"found"}, outcomes)) == [
        "deleted",
        "of-other-root",
        "reported-gone",
    ]
    outcomes["/b"] = SourceOutcome()
    assert "unknown-root" in prune_plan(articles, {"found"}, outcomes)


def test_source_outcome_keeps_the_articles_of_a_document() -> None:
    outcome = SourceOutcome(kept=frozenset({"digest.txt", "feed.jsonl"}))
    assert outcome.keeps("digest.txt")
    assert outcome.keeps("digest.txt#2")
    assert outcome.keeps("feed.jsonl:14")
    assert not outcome.keeps("digest.txt.bak")
    assert not outcome.keeps("other.txt")


def test_a_custom_source_plugs_into_ingest(settings: Settings) -> None:
    """The seam web sources use: any object with root, read() and outcome."""

    class Listed:
        root = "https://example.invalid/feed"

        def __init__(self, articles: list[Article], gone: frozenset[str] = frozenset()):
            self.articles = articles
            self.gone = gone

        def read(self) -> Iterator[Article | Problem]:
            yield from self.articles
            yield Problem("https://example.invalid/feed/3", "HTTP 500")

        @property
        def outcome(self) -> SourceOutcome:
            return SourceOutcome(complete=False, gone=self.gone, documents=len(self.articles))

    first = [Article(f"post-{n}", f"Post {n}", f"Text of post {n}.", f"post/{n}") for n in (1, 2)]
    report = ingest([Listed(first)], settings, FakeEmbedder())
    assert report.added == 2 and report.skipped[0].reason == "HTTP 500"
    assert article_roots(settings) == {
        "post-1": "https://example.invalid/feed",
        "post-2": "https://example.invalid/feed",
    }
    # Not complete: an article merely not listed stays; one reported gone goes.
    report = ingest(
        [Listed(first[:1], gone=frozenset({"post-2"}))], settings, FakeEmbedder(), prune=True
    )
    assert report.removed == 1
    assert set(article_roots(settings)) == {"post-1"}


def test_a_root_that_is_not_a_file_or_folder_is_never_pruned_from(
    settings: Settings, two_roots: tuple[Path, Path]
) -> None:
    """An unreadable root (here a named pipe where the folder was) keeps its articles."""
    corpus, extra = two_roots
    shutil.rmtree(extra)
    os.mkfifo(extra)
    report = ingest([corpus, extra], settings, FakeEmbedder(), prune=True)
    assert report.removed == 0
    assert report.failed[0].failure == "not a file or folder (a named pipe)"
    assert len(article_ids(settings)) == 8


def test_a_root_given_twice_is_read_once(settings: Settings, two_roots: tuple[Path, Path]) -> None:
    corpus, extra = two_roots
    report = ingest([corpus, extra, corpus], settings, FakeEmbedder())
    assert report.skipped == []
    assert [s.root for s in report.sources] == [str(corpus), str(extra)]
