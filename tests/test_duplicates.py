"""Copies of one story (retrieval.duplicates): fingerprints, grouping, and end to end: found
at ingest, one result per story with the copies named, listed by `citebot articles`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import retrieval.search
from retrieval.answer_text import render_answer
from retrieval.cli import Runtime, cli
from retrieval.duplicates import fingerprint, group_stories, similarity
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index

FERRY = (CORPUS / "ferry.txt").read_text()


def test_copies_differing_in_white_space_and_punctuation_share_a_hash() -> None:
    body = FERRY.split("\n", 1)[1]
    messy = body.replace(". ", ".  ").replace(",", " ,").upper()
    assert fingerprint(body).text_hash == fingerprint(messy).text_hash
    assert fingerprint(body).text_hash != fingerprint(body + " One more sentence.").text_hash


def test_a_corrected_copy_is_near_and_another_article_is_not() -> None:
    body = FERRY.split("\n", 1)[1]
    corrected = body.replace("eight return crossings", "nine return crossings")
    other = (CORPUS / "orchestra.md").read_text()
    assert similarity(fingerprint(body).signature, fingerprint(corrected).signature) >= 0.8
    assert similarity(fingerprint(body).signature, fingerprint(other).signature) < 0.3


def test_stories_are_named_by_their_first_article() -> None:
    body = FERRY.split("\n", 1)[1]
    prints = [
        ("orchestra", fingerprint((CORPUS / "orchestra.md").read_text())),
        ("ferry", fingerprint(body)),
        ("ferry-copy", fingerprint(body)),
        ("ferry-fixed", fingerprint(body.replace("eight return", "nine return"))),
        ("tiny", fingerprint("Photo: AP")),
        ("tiny-2", fingerprint("Photo: Reuters")),
    ]
    stories = group_stories(prints)
    assert stories == {
        "orchestra": "orchestra",
        "ferry": "ferry",
        "ferry-copy": "ferry",
        "ferry-fixed": "ferry",
        "tiny": "tiny",
        "tiny-2": "tiny-2",  # too short for a signature, and not the same text
    }


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test corpus with a byte-for-byte copy of the ferry story and a corrected one."""
    folder = tmp_path_factory.mktemp("copies") / "news"
    shutil.copytree(CORPUS, folder)
    (folder / "ferry-syndicated.txt").write_text(FERRY)
    (folder / "ferry-corrected.txt").write_text(
        FERRY.replace("eight return crossings", "nine return crossings")
    )
    return folder


def test_one_result_per_story_with_the_copies_named(copied: Path, tmp_path: Path) -> None:
    settings = build_index(tmp_path / "index", [copied])
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    answer = searcher.search("How many crossings will the winter ferry make a day?", k=5)
    ferries = [p for p in answer.passages if p.article.id.startswith("ferry")]
    # Before: the three copies took three places with the same passage text.
    texts = [" ".join(p.text.split()) for p in answer.passages]
    assert len(set(texts)) == len(texts)
    story = {"ferry", "ferry-syndicated", "ferry-corrected"}
    (shown,) = {p.article.id for p in ferries}  # whichever copy ranks first
    assert {c.id for c in ferries[0].copies} == story - {shown}
    data = answer.to_dict()["results"][answer.passages.index(ferries[0])]
    assert {c["id"] for c in data["copies"]} == story - {shown}
    others = [r for r in answer.to_dict()["results"] if r["article"]["id"] not in story]
    assert others and all(r["copies"] == [] for r in others)
    # The story is named by the article ingested first (files are read in name order).
    groups = searcher.duplicate_groups()
    assert [[r.id for r in g] for g in groups] == [["ferry-corrected", "ferry-syndicated", "ferry"]]


def test_the_copies_named_are_not_read_in_full(copied: Path, tmp_path: Path) -> None:
    """Naming a copy takes its citation, not its text: a story of the million-chunk
    benchmark has 150 copies, and reading them whole took 1.4-6 ms a story, a question."""
    settings = build_index(tmp_path / "index", [copied])
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    connection = searcher.index.store.connection  # type: ignore[attr-defined]
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    answer = searcher.search("How many crossings will the winter ferry make a day?", k=5)
    connection.set_trace_callback(None)
    ferry = next(p for p in answer.passages if p.article.id.startswith("ferry"))
    named = {c.id for c in ferry.copies}
    assert len(named) == 2
    whole = [s for s in statements if " text" in s and "FROM articles" in s]
    assert whole and not [s for s in whole for i in named if f"'{i}'" in s]
    searcher.close()


def test_a_story_names_its_first_copies_and_counts_the_rest(
    copied: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A story told by 150 articles (the million-chunk benchmark's) cost 12 ms a question
    to name every copy: an answer names the first COPIES_LISTED, in ingest order, and
    says how many there are."""
    monkeypatch.setattr(retrieval.search, "COPIES_LISTED", 1)
    settings = build_index(tmp_path / "index", [copied])
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    answer = searcher.search("How many crossings will the winter ferry make a day?", k=5)
    ferry = next(p for p in answer.passages if p.article.id.startswith("ferry"))
    first = next(i for i in ("ferry-corrected", "ferry-syndicated") if i != ferry.article.id)
    assert [c.id for c in ferry.copies] == [first]  # the first ingested of the others
    assert ferry.copy_count == 2
    data = answer.to_dict()["results"][answer.passages.index(ferry)]
    assert (len(data["copies"]), data["copy_count"]) == (1, 2)
    assert f"also in: {ferry.copies[0].title} (" in render_answer(answer, color=False)
    assert "and 1 more" in render_answer(answer, color=False)
    searcher.close()


def test_copies_are_looked_up_for_the_page_only(copied: Path, tmp_path: Path) -> None:
    """A question ranks four times the page; naming the copies of articles off the page
    cost a look-up each (a story of 150 articles: a millisecond)."""
    settings = build_index(tmp_path / "index", [copied])
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    question = "How many crossings will the winter ferry make a day?"
    answer = searcher.search(question, k=20)
    rank = max(p.rank for p in answer.passages if p.article.id.startswith("ferry"))
    connection = searcher.index.store.connection  # type: ignore[attr-defined]
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    later = searcher.search(question, k=5, offset=rank)  # the page after the story's result
    connection.set_trace_callback(None)
    assert later.passages and not any(p.copies for p in later.passages)
    assert not [s for s in statements if "row_number()" in s]
    searcher.close()


def test_ingest_counts_copies_and_pruning_one_ends_the_group(copied: Path, tmp_path: Path) -> None:
    folder = tmp_path / "news"
    shutil.copytree(copied, folder)
    settings = build_index(tmp_path / "index", [folder])
    (folder / "ferry-syndicated.txt").unlink()
    (folder / "ferry-corrected.txt").unlink()
    report = ingest([folder], settings, FakeEmbedder(), prune=True)
    assert report.removed == 2 and report.copies == 0
    searcher = Searcher.open(settings, FakeEmbedder())
    assert searcher.duplicate_groups() == []


def test_citebot_articles_lists_duplicate_groups(copied: Path, tmp_path: Path) -> None:
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    index = tmp_path / "index"
    ingested = CliRunner().invoke(cli, ["ingest", str(copied), "--index", str(index)], obj=runtime)
    assert ingested.exit_code == 0, ingested.output
    assert "2 articles are copies of another" in ingested.output
    listed = CliRunner().invoke(
        cli, ["articles", "--duplicates", "--index", str(index)], obj=runtime
    )
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("ferry-corrected\t") and len(lines) == 3
    assert [line.split("\t")[0] for line in lines[1:]] == ["  = ferry-syndicated", "  = ferry"]
    as_json = CliRunner().invoke(
        cli, ["articles", "--duplicates", "--json", "--index", str(index)], obj=runtime
    )
    (group,) = json.loads(as_json.stdout)["duplicates"]
    assert [a["id"] for a in group] == ["ferry-corrected", "ferry-syndicated", "ferry"]


def test_one_result_per_story_keeps_the_first_copy_to_rank() -> None:
    from retrieval.duplicates import one_per_story

    ranked = ["b-copy", "other", "b", "b-copy", "c"]
    stories = {"b": "b", "b-copy": "b"}  # "other" and "c" have no copies
    keep, shown = one_per_story(ranked, stories)
    assert keep == [True, True, False, True, True]  # b-copy's second passage stays
    assert shown == {"b": "b-copy"}
