"""One bad file or record costs only itself: it is named with a reason, the rest is ingested.

Each case here aborted a whole ingest (or hung it, or exhausted the machine) before.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import ChunkSettings, Settings
from retrieval.ingest import IngestReport, ingest
from retrieval.records import Problem
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, CORPUS_IDS

LONG_TITLE = " ".join(["headline"] * 300)
GOOD_TEXT = "The lighthouse keeper retired after forty years.\n\nHe still climbs the stairs."


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The good test corpus, to which each test adds bad files."""
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    return folder


def with_limits(settings: Settings, **limits: object) -> Settings:
    return replace(settings, ingest=replace(settings.ingest, **limits))


def run(folder: Path, settings: Settings) -> IngestReport:
    report = ingest([folder], settings, FakeEmbedder())
    # The good articles always make it in, and can be found.
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    try:
        assert {s.article.id for s in searcher.articles()} >= CORPUS_IDS
        top = searcher.search("How many ferry crossings a day this winter?").passages[0]
        assert top.article.id == "ferry"
    finally:
        searcher.close()
    return report


def reasons(report: IngestReport) -> dict[str, str]:
    return {p.where: p.reason for p in report.skipped}


# -- JSON ------------------------------------------------------------------------------------


def test_deeply_nested_json(folder: Path, settings: Settings) -> None:
    (folder / "nested.json").write_text("[" * 10_000 + "]" * 10_000)
    (folder / "nested.jsonl").write_text(
        json.dumps({"text": GOOD_TEXT, "id": "ok-line"}) + "\n" + "[" * 5_000 + "]" * 5_000
    )
    found = reasons(run(folder, settings))
    assert found["nested.json"] == "nested more than 64 levels deep ([ingest] max_nesting_depth)"
    assert found["nested.jsonl:2"].startswith("nested more than 64 levels deep")


def test_nesting_under_the_recursion_limit_is_held_to_the_configured_depth(
    folder: Path, settings: Settings
) -> None:
    record = {"text": GOOD_TEXT, "title": "Deep", "extra": [[[[[[["seven"]]]]]]]}
    (folder / "deep.json").write_text(json.dumps(record))
    found = reasons(run(folder, with_limits(settings, max_nesting_depth=5)))
    assert found["deep.json"].startswith("nested more than 5 levels deep")


def test_an_integer_too_long_to_convert(folder: Path, settings: Settings) -> None:
    (folder / "big.json").write_text('{"text": "x", "id": ' + "9" * 5_000 + "}")
    (folder / "big.jsonl").write_text(
        '{"id": ' + "7" * 5_000 + ', "text": "y"}\n' + json.dumps({"text": GOOD_TEXT}) + "\n"
    )
    report = run(folder, settings)
    found = reasons(report)
    assert found["big.json"].startswith("invalid JSON: Exceeds the limit (4300 digits)")
    assert found["big.jsonl:1"].startswith("invalid JSON: Exceeds the limit")
    assert report.added == len(CORPUS_IDS) + 1  # the good line of big.jsonl


def test_a_field_that_is_not_text(folder: Path, settings: Settings) -> None:
    lines = [
        {"text": GOOD_TEXT, "title": {"nested": "object"}},
        {"text": GOOD_TEXT, "id": "two-authors", "author": ["Ann Lee", "Bo Chan"]},
    ]
    (folder / "fields.jsonl").write_text("\n".join(json.dumps(r) for r in lines))
    report = run(folder, settings)
    assert reasons(report) == {"fields.jsonl:1": '"title" is not text'}
    searcher = Searcher.open(settings, FakeEmbedder())
    assert searcher.article("two-authors").author == "Ann Lee, Bo Chan"
    searcher.close()


# -- markdown front matter -------------------------------------------------------------------


def test_yaml_aliases_are_refused(folder: Path, settings: Settings) -> None:
    """399 bytes of nested aliases ("billion laughs") took 3.9 GB."""
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]")
    lines += ["title: *i", "---", "", "Body."]
    (folder / "laughs.md").write_text("\n".join(lines) + "\n")
    found = reasons(run(folder, settings))
    assert found["laughs.md"] == "bad front matter: YAML aliases (*name) are not allowed"


def test_an_impossible_date_stays_text(folder: Path, settings: Settings) -> None:
    (folder / "date.md").write_text("---\ntitle: Odd Date\ndate: 2024-13-45\n---\n\nText.\n")
    report = run(folder, settings)
    assert report.skipped == []
    searcher = Searcher.open(settings, FakeEmbedder())
    assert searcher.article("date").date == "2024-13-45"
    searcher.close()


def test_json_style_front_matter_is_text(folder: Path, settings: Settings) -> None:
    (folder / "braces.md").write_text('{\n"title": "Braces",\n"broken":\n}\n\nBody of it.\n')
    (folder / "flow.md").write_text('---\n{"title": "Flow Map", "url": [1, [2]]}\n---\nBody.\n')
    report = run(folder, settings)
    assert reasons(report) == {"flow.md": '"url" is not text'}
    searcher = Searcher.open(settings, FakeEmbedder())
    assert searcher.article("braces").paragraphs[-1] == "Body of it."
    searcher.close()


def test_front_matter_that_is_not_a_mapping(folder: Path, settings: Settings) -> None:
    (folder / "list.md").write_text("---\n- one\n- two\n---\nBody.\n")
    (folder / "big-int.md").write_text("---\nid: " + "1" * 5_000 + "\n---\nBody.\n")
    found = reasons(run(folder, settings))
    assert found["list.md"] == "bad front matter: not a list of `key: value` lines"
    assert found["big-int.md"].startswith("bad front matter: Exceeds the limit")


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["long.md", "long.json", "long.jsonl", "long.html"])
def test_a_title_over_the_limit(folder: Path, settings: Settings, name: str) -> None:
    """A 300-word title made the chunker raise a bare ValueError that aborted ingest."""
    content = {
        "long.md": f"# {LONG_TITLE}\n\n{GOOD_TEXT}\n",
        "long.json": json.dumps({"title": LONG_TITLE, "text": GOOD_TEXT}),
        "long.jsonl": json.dumps({"title": LONG_TITLE, "text": GOOD_TEXT}) + "\n",
        "long.html": f"<html><head><title>{LONG_TITLE}</title></head><body><article>"
        + "".join(f"<p>{GOOD_TEXT} Paragraph {i} goes on a while.</p>" for i in range(8))
        + "</article></body></html>",
    }[name]
    (folder / name).write_text(content)
    # Records are named by their number in a JSON list, by their line in JSON Lines.
    where = {"long.json": "long.json#1", "long.jsonl": "long.jsonl:1"}.get(name, name)
    found = reasons(run(folder, settings))
    assert found[where] == (
        f"the title is {len(LONG_TITLE):,} characters long, over the limit of 300"
        " ([ingest] max_title_chars)"
    )


def test_a_title_that_fills_the_chunk_budget_is_reported(folder: Path, settings: Settings) -> None:
    """Within the title limit but too long for small chunks: that article alone is skipped."""
    title = " ".join(["word"] * 60)
    (folder / "wordy.json").write_text(json.dumps({"title": title, "text": GOOD_TEXT}))
    small = replace(settings, chunking=ChunkSettings(max_tokens=64, overlap_tokens=8))
    report = run(folder, small)
    assert reasons(report)["wordy.json#1"].startswith("the title is too long: it leaves no room")


def test_an_article_over_the_limit(folder: Path, settings: Settings) -> None:
    (folder / "huge.txt").write_text("Huge\n\n" + "All work and no play. " * 1_000)
    found = reasons(run(folder, with_limits(settings, max_article_chars=10_000)))
    assert found["huge.txt"].startswith("the article is 21,999 characters long, over the limit")


def test_a_file_over_the_size_limit_is_not_read(folder: Path, settings: Settings) -> None:
    (folder / "big.txt").write_bytes(b"x" * (1024 * 1024 + 1))
    found = reasons(run(folder, with_limits(settings, max_file_mb=1)))
    assert found["big.txt"] == "larger than 1 MB ([ingest] max_file_mb)"


def test_a_slow_file_is_stopped_at_the_time_limit(folder: Path, settings: Settings) -> None:
    """A page that takes the HTML extractor seconds is cut off; the rest is read."""
    page = "<html><body>" + "<div><p>Filler text for the extractor.</p></div>" * 200_000
    (folder / "slow.html").write_text(page + "</body></html>")
    limited = with_limits(settings, max_seconds_per_file=0.5)
    found = reasons(run(folder, limited))
    assert found["slow.html"] == "took longer than 0.5 s to read ([ingest] max_seconds_per_file)"


def test_a_file_that_needs_too_much_memory(folder: Path, settings: Settings) -> None:
    """Two million small objects need far more than 64 MB: the worker's allocation fails."""
    (folder / "objects.json").write_text("[" + ",".join(["{}"] * 2_000_000) + "]")
    found = reasons(run(folder, with_limits(settings, max_parse_memory_mb=64)))
    assert found["objects.json"] in {
        "needs more than 64 MB to read ([ingest] max_parse_memory_mb)",
        # The allocation may fail where no MemoryError can be raised.
        "its reader exited (1) (out of memory, or a crash in a library); not read",
    }


# -- names, special files and links ------------------------------------------------------------


def test_a_file_name_that_is_not_utf8(folder: Path, settings: Settings) -> None:
    name = os.fsdecode(b"caf\xe9-news.txt")  # Latin-1 bytes in the name
    (folder / name).write_text(f"Cafe News\n\n{GOOD_TEXT}\n")
    report = run(folder, settings)
    assert report.skipped == []
    searcher = Searcher.open(settings, FakeEmbedder())
    article = searcher.article("caf\ufffd-news")
    assert article.source == "caf\ufffd-news.txt"
    searcher.close()


def test_a_named_pipe_is_never_opened(folder: Path, settings: Settings) -> None:
    """A .txt FIFO made ingest wait forever for a writer."""
    os.mkfifo(folder / "pipe.txt")
    found = reasons(run(folder, settings))
    assert found["pipe.txt"] == "not a regular file (a named pipe); not opened"


def test_special_files_are_refused_when_opened_too(tmp_path: Path) -> None:
    """Checked on the open file as well, in case one is swapped in after listing."""
    from retrieval.errors import LoadError
    from retrieval.files import SourceFile
    from retrieval.loaders import read_bytes

    os.mkfifo(tmp_path / "pipe.txt")
    for path in (tmp_path / "pipe.txt", Path("/dev/zero")):
        with pytest.raises(LoadError, match="not a regular file"):
            read_bytes(SourceFile(path, path.name))


def test_links_outside_the_folder_are_skipped(
    folder: Path, settings: Settings, tmp_path: Path
) -> None:
    """A link to /etc/hostname was ingested and shown; one to /dev/zero raised MemoryError."""
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text("Secret\n\nThe password is swordfish.\n")
    (folder / "secret.txt").symlink_to(outside / "secret.txt")
    (folder / "zero.txt").symlink_to("/dev/zero")
    (folder / "elsewhere").symlink_to(outside)
    (folder / "inside.txt").symlink_to(folder / "ferry.txt")  # inside: read as before
    report = run(folder, settings)
    found = reasons(report)
    assert found == {
        "secret.txt": "a link to a file outside the source folder (--follow-symlinks reads it)",
        "zero.txt": "a link to a file outside the source folder (--follow-symlinks reads it)",
        "elsewhere": "a link to a folder outside the source folder (--follow-symlinks reads it)",
    }
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    assert "inside" in {s.article.id for s in searcher.articles()}
    assert all("swordfish" not in p.text for p in searcher.search("password swordfish").passages)
    searcher.close()


def test_follow_symlinks_reads_them_but_still_never_a_device(
    folder: Path, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "notes.txt").write_text("Shared Notes\n\nThe shared folder holds notes.\n")
    (folder / "shared").symlink_to(outside)
    (folder / "loop").symlink_to(folder)  # a loop is walked once
    (folder / "zero.txt").symlink_to("/dev/zero")
    report = run(folder, with_limits(settings, follow_symlinks=True))
    assert reasons(report) == {"zero.txt": "not a regular file (a character device); not opened"}
    assert report.added == len(CORPUS_IDS) + 1


def test_a_file_outside_the_folder_is_refused_when_opened(tmp_path: Path) -> None:
    """The open file's real place is checked, so a link swapped in after listing fails."""
    from retrieval.errors import LoadError
    from retrieval.files import SourceFile
    from retrieval.loaders import read_bytes

    (tmp_path / "root").mkdir()
    (tmp_path / "out.txt").write_text("Out\n\nOutside.\n")
    (tmp_path / "root" / "sub").symlink_to(tmp_path)
    sneaky = SourceFile(
        tmp_path / "root" / "sub" / "out.txt", "sub/out.txt", confine=str(tmp_path / "root")
    )
    with pytest.raises(LoadError, match="outside the source folder"):
        read_bytes(sneaky)


# -- HTML ---------------------------------------------------------------------------------------


def test_a_navigation_only_page_is_not_an_article(folder: Path, settings: Settings) -> None:
    """It became an article called "HomeAbout"."""
    (folder / "index.html").write_text(
        '<html><body><nav><a href="/">Home</a><a href="/about">About</a></nav></body></html>'
    )
    (folder / "links.html").write_text(
        '<html><body><p><a href="/a">Home</a> <a href="/b">About</a></p></body></html>'
    )
    found = reasons(run(folder, settings))
    for name in ("index.html", "links.html"):
        assert found[name] == "no article text found in the HTML (only links, such as a menu)"


def test_problems_name_the_file_relative_to_its_folder(folder: Path, settings: Settings) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "bad.json").write_text("{")
    assert run(folder, settings).skipped == [
        Problem(
            "sub/bad.json",
            "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
        )
    ]
