"""A generator of malformed source folders: a few hundred bad files across every format.

Used by tests/reliability/test_malformed_corpus.py (with the fake embedder) and by
bench/bench_malformed.py (with the real model). Every bad file is written with the
reason ingest must give for it, so a check can tell that each one was named and why.
Some files are odd but valid (a date that is no date, a file name that is not UTF-8, a
link inside the folder, ten thousand paragraphs, a 100 KB URL): they must be ingested.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The good articles and a question that each answers (their ids, from tests/data/corpus).
GOOD_FOLDER = Path(__file__).parent.parent / "data" / "corpus"
GOOD_QUESTIONS = {
    "orchestra": "When does the tram depot orchestra rehearse, and who may join?",
    "ferry": "How many return crossings will the winter ferry make each day?",
    "bakery": "How much does a share in the Harbour Street bakery co-operative cost?",
    "bees-2024": "How do the allotment beekeepers treat their hives against the varroa mite?",
    "skatepark": "Who designed the Westcliff skate park, and why concrete?",
}


@dataclass
class Corpus:
    """What was written: the reason expected for each bad file or record, by name."""

    folder: Path
    bad: dict[str, str] = field(default_factory=dict)
    odd_but_valid: list[str] = field(default_factory=list)


Writer = Callable[[Path, random.Random], None]

_LONG_TITLE = " ".join(["headline"] * 300)
_TEXT = "A sentence about nothing in particular, for padding. " * 5


def _text(content: str | bytes) -> Writer:
    def write(path: Path, rng: random.Random) -> None:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return write


def _truncated_json(path: Path, rng: random.Random) -> None:
    whole = json.dumps([{"title": f"Record {i}", "text": _TEXT} for i in range(5)])
    path.write_text(whole[: rng.randrange(1, len(whole) - 1)], encoding="utf-8")


def _binary(path: Path, rng: random.Random) -> None:
    path.write_bytes(bytes(rng.randrange(256) for _ in range(512)) + b"\x00" * 8)


def _not_cp1252(path: Path, rng: random.Random) -> None:
    # 0x81, 0x8d, 0x8f, 0x90 and 0x9d are undefined in Windows-1252; none of this is UTF-8.
    path.write_bytes(b"Title\n\n" + bytes(rng.choice(b"\x81\x8d\x8f\x90\x9d") for _ in range(64)))


def _fifo(path: Path, rng: random.Random) -> None:
    os.mkfifo(path)


def _socket(path: Path, rng: random.Random) -> None:
    # A socket's path is limited to about 100 bytes: bind from inside its folder.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        server = socket.socket(socket.AF_UNIX)
        server.bind(path.name)
        server.close()
    finally:
        os.chdir(here)


def _link_to(target: str) -> Writer:
    def write(path: Path, rng: random.Random) -> None:
        path.symlink_to(target)

    return write


def _link_outside(path: Path, rng: random.Random) -> None:
    outside = path.parents[2] / "outside"  # beside the source folder, not in it
    outside.mkdir(exist_ok=True)
    secret = outside / f"secret-{rng.randrange(10**9)}.txt"
    secret.write_text("Private\n\nThe password is swordfish.\n", encoding="utf-8")
    path.symlink_to(secret)


def _folder_link_outside(path: Path, rng: random.Random) -> None:
    outside = path.parents[2] / "outside-folder"
    outside.mkdir(exist_ok=True)
    (outside / "hidden.txt").write_text("Hidden\n\nNot for the index.\n", encoding="utf-8")
    path.symlink_to(outside)


def _billion_laughs(path: Path, rng: random.Random) -> None:
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]")
    lines += ["title: *i", "---", "", "Body."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _jsonl(lines: list[str]) -> Writer:
    return _text("\n".join(lines) + "\n")


# name pattern ({n} is the variant) -> (writer, reason fragment). A name ending in ":1" or
# "#1" names a record of the file written without that suffix.
BAD: dict[str, tuple[Writer, str]] = {
    # plain text
    "binary-{n}.txt": (_binary, "not a text file (binary content)"),
    "empty-{n}.txt": (_text(""), "no text"),
    "blank-{n}.txt": (_text("\n \n\t\n"), "no text"),
    "garbled-{n}.txt": (_not_cp1252, "not UTF-8 or Windows-1252 text"),
    "pipe-{n}.txt": (_fifo, "not a regular file (a named pipe); not opened"),
    "zero-{n}.txt": (_link_to("/dev/zero"), "a link to a file outside the source folder"),
    "secret-{n}.txt": (_link_outside, "a link to a file outside the source folder"),
    "dangling-{n}.txt": (_link_to("/nonexistent/nowhere.txt"), "a broken link"),
    "elsewhere-{n}": (_folder_link_outside, "a link to a folder outside the source folder"),
    "word-{n}.txt": (_text("Word\n\n" + "Word" * 1_250_000), "characters long, over the limit"),
    "url-{n}.txt": (
        _text("Link\n\nhttps://example.org/" + "/".join(f"s{i}" for i in range(90_000))),
        "characters long, over the limit",
    ),
    # markdown
    "laughs-{n}.md": (_billion_laughs, "YAML aliases (*name) are not allowed"),
    "bad-yaml-{n}.md": (_text("---\ntitle: [unclosed\n---\nBody.\n"), "bad front matter"),
    "list-yaml-{n}.md": (_text("---\n- a\n- b\n---\nBody.\n"), "not a list of `key: value`"),
    "int-yaml-{n}.md": (_text("---\nn: " + "9" * 5000 + "\n---\nBody.\n"), "bad front matter"),
    "deep-yaml-{n}.md": (_text("---\nt: " + "[" * 3000 + "]" * 3000 + "\n---\nB.\n"), "front"),
    "object-title-{n}.md": (_text("---\ntitle: {a: 1}\n---\nBody.\n"), '"title" is not text'),
    "long-title-{n}.md": (_text(f"# {_LONG_TITLE}\n\n{_TEXT}\n"), "over the limit of 300"),
    "empty-{n}.md": (_text("---\ntitle: Only a Title\n---\n"), "no text"),
    "pipe-{n}.md": (_fifo, "not a regular file (a named pipe); not opened"),
    # html
    "nav-{n}.html": (
        _text(
            '<html><body><nav><a href="/">Home</a><a href="/about">About</a></nav></body></html>'
        ),
        "only links",
    ),
    "blank-{n}.html": (
        _text("<html><head><title>T</title></head><body></body></html>"),
        "no article",
    ),
    "binary-{n}.html": (_binary, "not a text file (binary content)"),
    "long-title-{n}.html": (
        _text(
            f"<html><head><title>{_LONG_TITLE}</title></head><body><article>"
            + f"<p>{_TEXT}</p>" * 6
            + "</article></body></html>"
        ),
        "over the limit of 300",
    ),
    "socket-{n}.html": (_socket, "not a regular file (a socket); not opened"),
    # json
    "truncated-{n}.json": (_truncated_json, "invalid JSON"),
    "nested-{n}.json": (_text("[" * 10_000 + "]" * 10_000), "nested more than 64 levels"),
    "big-int-{n}.json": (_text('{"text": "x", "n": ' + "9" * 5000 + "}"), "Exceeds the limit"),
    "empty-list-{n}.json": (_text("[]"), "no articles in the file"),
    "no-text-{n}.json#1": (_text('[{"title": "No text here"}]'), 'no "text"'),
    "not-object-{n}.json#1": (_text("[1]"), "not a JSON object"),
    "object-title-{n}.json#1": (
        _text(json.dumps({"title": ["a", ["b"]], "text": _TEXT})),
        '"title" is not text',
    ),
    "long-title-{n}.json#1": (
        _text(json.dumps({"title": _LONG_TITLE, "text": _TEXT})),
        "over the limit of 300",
    ),
    # json lines
    "broken-{n}.jsonl:1": (_jsonl(['{"text": "cut off']), "invalid JSON"),
    "nested-{n}.jsonl:1": (_jsonl(["[" * 5000 + "]" * 5000]), "nested more than 64 levels"),
    "big-int-{n}.jsonl:1": (_jsonl(['{"text": "x", "n": ' + "9" * 5000 + "}"]), "Exceeds"),
    "long-title-{n}.jsonl:1": (
        _jsonl([json.dumps({"title": _LONG_TITLE, "text": _TEXT})]),
        "over the limit of 300",
    ),
    "no-text-{n}.jsonl:1": (_jsonl(['{"title": "Nothing"}']), 'no "text"'),
    "pipe-{n}.jsonl": (_fifo, "not a regular file (a named pipe); not opened"),
}

# Odd but valid: each must be ingested (with no problem reported for it).
ODD: dict[str, Writer] = {
    "impossible-date-{n}.md": _text("---\ntitle: Odd Date {n}\ndate: 2024-13-45\n---\nText.\n"),
    "braces-{n}.md": _text('{\n"title": "Braces",\n}\n\nBody in braces.\n'),
    "surrogate-{n}.jsonl": _jsonl(['{"title": "Odd \\ud800 char", "text": "Lone \\udc80 one."}']),
    os.fsdecode(b"latin1-\xe9-{n}.txt"): _text("Latin Name\n\nA file named in Latin-1.\n"),
    "many-paragraphs-{n}.txt": _text("\n\n".join(f"Filler {i}." for i in range(10_000))),
    "long-url-{n}.txt": _text(
        "A Long Link\n\nSee https://example.org/"
        + "/".join(f"segment{i}" for i in range(8_000))
        + " for more."
    ),
}


def write_corpus(
    folder: Path, *, variants: int = 8, seed: int = 0, huge_files: bool = False
) -> Corpus:
    """The good test corpus plus ``variants`` of each bad and odd file in ``folder``.

    With ``huge_files``, also a 50 MB one-line file (over the 32 MB default limit).
    """
    rng = random.Random(seed)
    corpus = Corpus(folder)
    shutil.copytree(GOOD_FOLDER, folder)
    bad_folder = folder / "bad"
    bad_folder.mkdir()
    for pattern, (write, reason) in BAD.items():
        heavy = pattern.startswith(("word-", "url-"))  # one is enough of these
        for n in range(1 if heavy else variants):
            name = pattern.format(n=n)
            file_name = name.split(":")[0].split("#")[0]
            write(bad_folder / file_name, rng)
            corpus.bad[f"bad/{name}"] = reason
    odd_folder = folder / "odd"
    odd_folder.mkdir()
    for pattern, write in ODD.items():
        heavy = pattern.startswith(("many-paragraphs", "long-url"))
        for n in range(1 if heavy else variants):
            name = pattern.format(n=n)
            write(odd_folder / name, rng)
            corpus.odd_but_valid.append(f"odd/{name}")
    (odd_folder / "inside-link.txt").symlink_to(folder / "ferry.txt")
    corpus.odd_but_valid.append("odd/inside-link.txt")
    if huge_files:
        (bad_folder / "huge-line.txt").write_bytes(b"word " * (10 * 1024 * 1024))
        corpus.bad["bad/huge-line.txt"] = "larger than 32 MB"
    return corpus


def unexplained(corpus: Corpus, skipped: dict[str, str]) -> list[str]:
    """What a check of ingest's report finds wrong: bad files not named with their
    reason, and good or odd files named at all. ``skipped`` maps names to reasons."""
    wrong = []
    for name, reason in corpus.bad.items():
        given = skipped.get(name)
        if given is None or reason not in given:
            wrong.append(f"{name}: expected {reason!r}, got {given!r}")
    expected = set(corpus.bad)
    for name, reason in skipped.items():
        if name not in expected and name != str(corpus.folder):
            wrong.append(f"{name}: unexpected problem {reason!r}")
    return wrong
