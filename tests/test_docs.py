"""The README and docs/: every link resolves, the CLI reference is the commands' own --help,
and every flag the docs name exists (and every flag a command has is in the README)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from retrieval import cli_docs

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
CLI_REFERENCE = DOCS / "cli.md"
# Every command's flags, from the commands themselves (plugins included).
COMMANDS = {doc.name: doc for doc in cli_docs.command_docs()}
ROOT_COMMAND = cli_docs.PROG
ALL_FLAGS = frozenset().union(*(doc.flags for doc in COMMANDS.values()))

# -- reading markdown ---------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_and_code(text: str) -> tuple[list[str], list[str]]:
    """The lines outside fenced blocks, and every piece of code: each command of a fenced
    block (a line, with the lines a trailing backslash continues it on) and each inline
    code span."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    continued = ""
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            if line.endswith("\\"):
                continued += line[:-1] + " "
                continue
            code.append(continued + line)
            continued = ""
        else:
            code.extend(INLINE_CODE.findall(line))
            prose.append(line)
    return prose, code


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading)  # inline formatting is not part of it
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose, _ = prose_and_code(page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for line in prose:
        if match := HEADING.match(line):
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    prose, _ = prose_and_code(page.read_text(encoding="utf-8"))
    # Brackets inside inline code are not links.
    return [target for line in prose for target in LINK.findall(INLINE_CODE.sub("code", line))]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


def test_the_link_reader_sees_links_and_headings(tmp_path: Path) -> None:
    text = "# Speed: ingest, cold start (int8)\n## `citebot ask`\n## Speed: ingest, cold start (int8)\n"
    page = tmp_path / "probe.md"
    assert slug("Speed: ingest, cold start, memory (int8 ONNX)") == (
        "speed-ingest-cold-start-memory-int8-onnx"
    )
    assert slug("Intents, and why") == "intents-and-why"
    assert LINK.findall("see [Pruning](docs/sources.md#pruning) and [x](#a-b)") == [
        "docs/sources.md#pruning",
        "#a-b",
    ]
    # A heading in a fenced block (a TOML comment) is not a heading; duplicates get -1.
    prose, code = prose_and_code(text + "```toml\n# not a heading\n```\n")
    assert "# not a heading" in code and "# not a heading" not in prose
    _, code = prose_and_code("```sh\ncitebot ask \\\n    --all\nnext\n```\n")
    assert code == ["citebot ask      --all", "next"]
    page.write_text(text, encoding="utf-8")
    assert anchors(page) == {
        "speed-ingest-cold-start-int8",
        "citebot-ask",
        "speed-ingest-cold-start-int8-1",
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Some part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#some-part) [ok](#page) [web](https://example.org/#x)\n"
        "[gone](missing.md) [no anchor](other.md#nope) [self](#nope)\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nope: no heading #nope in other.md",
        "#nope: no heading #nope in page.md",
    ]


def test_the_readme_links_every_docs_page() -> None:
    assert len(links(README)) > 10, "the link reader finds the README's links"
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has pages"
    assert [p.name for p in pages if p.resolve() not in linked] == []


def test_the_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


# -- the CLI reference --------------------------------------------------------------------------


def test_the_cli_reference_is_the_commands_own_help() -> None:
    """If this fails: .venv/bin/python -m retrieval.cli_docs docs/cli.md"""
    assert CLI_REFERENCE.read_text(encoding="utf-8") == cli_docs.render()


def test_the_cli_reference_covers_every_command_and_option() -> None:
    reference = CLI_REFERENCE.read_text(encoding="utf-8")
    names = set(COMMANDS)
    assert {"citebot", "citebot ingest", "citebot ask", "citebot bot", "citebot feedback"} <= names
    # "Every command takes --index DIR", as the README and docs/configuration.md say.
    assert [name for name, doc in COMMANDS.items() if "--index" not in doc.flags] == ["citebot"]
    for doc in COMMANDS.values():
        assert f"## `{doc.name}`" in reference
        for flag in doc.flags:
            assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", reference), (doc.name, flag)


def test_the_cli_reference_check_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text("old\n", encoding="utf-8")
    assert cli_docs.main([str(stale), "--check"]) == 1
    assert cli_docs.main([str(stale)]) == 0
    assert cli_docs.main([str(stale), "--check"]) == 0


# -- flags named in the docs --------------------------------------------------------------------

FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
SEPARATORS = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")


def citebot_invocations(code: str) -> list[tuple[str, list[str], str]]:
    """In one piece of code, each shell command: (the program, the flags before the
    subcommand, the subcommand or ""). The program is ``citebot`` (also as a path),
    ``flags`` for a piece that starts with a flag (`--prune`), or ``other``."""
    found = []
    for command in SEPARATORS.split(code.strip()):
        words = [w.strip("[]()\"',.") for w in command.split()]
        while words and (re.fullmatch(r"[A-Z_]+=\S*", words[0]) or words[0] in ("sudo", "$")):
            words = words[1:]
        if not words:
            continue
        program = words[0]
        if program.startswith("-"):
            found.append(("flags", FLAG.findall(command), ""))
        elif program == "citebot" or program.endswith("/citebot"):
            rest = words[1:]
            subcommand = next((w for w in rest if f"citebot {w}" in COMMANDS), "")
            before = rest[: rest.index(subcommand)] if subcommand else rest
            after = rest[rest.index(subcommand) + 1 :] if subcommand else []
            found.append(("citebot", [w for w in before if FLAG.fullmatch(w)], ""))
            if subcommand:
                found.append(("citebot", [w for w in after if FLAG.fullmatch(w)], subcommand))
        else:
            found.append(("other", [], ""))
    return found


def unknown_flags(text: str) -> list[str]:
    unknown = []
    _, code = prose_and_code(text)
    for piece in code:
        for program, flags, subcommand in citebot_invocations(piece):
            if program == "other":
                continue
            if program == "flags":
                known = ALL_FLAGS
            else:
                known = COMMANDS[f"citebot {subcommand}".strip()].flags
            unknown += [f"{piece}: {flag}" for flag in flags if flag not in known]
    return unknown


def test_the_flag_reader_reads_invocations() -> None:
    assert citebot_invocations('.venv/bin/citebot --config c.toml ask "Q" [-k N] [--all]') == [
        ("citebot", ["--config"], ""),
        ("citebot", ["-k", "--all"], "ask"),
    ]
    assert citebot_invocations("DISCORD_TOKEN=x citebot bot --sync") == [
        ("citebot", [], ""),
        ("citebot", ["--sync"], "bot"),
    ]
    assert citebot_invocations("--prune [--force]") == [("flags", ["--prune", "--force"], "")]
    assert citebot_invocations("sudo systemctl enable --now citebot") == [("other", [], "")]
    assert unknown_flags("Use `citebot ask --everything` or `--nope`.") == [
        "citebot ask --everything: --everything",
        "--nope: --nope",
    ]
    # A flag of another command is not one of this command's.
    assert unknown_flags("`citebot feedback --sync`") == ["citebot feedback --sync: --sync"]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if p != CLI_REFERENCE],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_every_flag_the_docs_name_exists(page: Path) -> None:
    assert unknown_flags(page.read_text(encoding="utf-8")) == []


def documented_flags(text: str) -> dict[str, set[str]]:
    """For each command, the flags that the text's `citebot ...` invocations show it with."""
    shown: dict[str, set[str]] = {name: set() for name in COMMANDS}
    _, code = prose_and_code(text)
    for piece in code:
        for program, flags, subcommand in citebot_invocations(piece):
            if program == "citebot":
                shown[f"citebot {subcommand}".strip()].update(flags)
    return shown


def test_every_flag_of_every_command_is_in_the_readme() -> None:
    """The README's command table shows each command with all its options (--help and the
    --config that every command takes are said once, above the table)."""
    shown = documented_flags(README.read_text(encoding="utf-8"))
    missing = {}
    for name, doc in COMMANDS.items():
        ignored = {"--help"} | ({"--config"} if name != ROOT_COMMAND else set())
        absent = [opts for opts in doc.options if not set(opts) & (shown[name] | ignored)]
        if absent:
            missing[name] = absent
    assert missing == {}


# -- the Python API page's example --------------------------------------------------------------


@pytest.mark.model
def test_the_python_api_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example in docs/python-api.md, as written, over the bundled sample articles."""
    text = (DOCS / "python-api.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert example is not None
    shutil.copytree(ROOT / "retrieval" / "samples", tmp_path / "articles")
    monkeypatch.chdir(tmp_path)
    exec(compile(example.group(1), "python-api.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "5 added, 0 updated, 0 removed, 0 failed, 0 unchanged"
    assert "Borrow a Drill, Not a Debt" in printed[1]
    assert (tmp_path / "my-index" / "index.json").is_file()


# -- claims the docs make -----------------------------------------------------------------------

CONFIG_EXAMPLE = ROOT / "config.example.toml"


def test_the_docs_cite_a_pdf_paragraph_as_the_cli_prints_it() -> None:
    from retrieval.answer_text import citation
    from retrieval.records import ArticleRef, Passage

    shown = re.findall(r"`(pp?\. [^`]*¶[^`]*)`", (DOCS / "sources.md").read_text(encoding="utf-8"))
    assert shown == ["p. 4, ¶12"]
    passage = Passage(
        rank=1,
        score=1.0,
        text="Text.",
        highlight="Text.",
        highlight_start=0,
        highlight_end=5,
        article=ArticleRef("r", "Report", "r.pdf"),
        paragraphs=(12, 12),
        char_start=0,
        char_end=5,
        chunk_ids=(1,),
        pages=(4, 4),
    )
    assert citation(passage) == "Report · r.pdf · " + shown[0]
    # Nowhere else do the docs spell a paragraph number the other way.
    for page in [p for p in PAGES if p != CLI_REFERENCE]:
        assert not re.search(r"¶ \d", page.read_text(encoding="utf-8")), page.name


def test_the_int8_speed_up_claimed_is_the_one_measured() -> None:
    """The benchmark's int8 / fp32 ingest ratios (two runs, wall and CPU time) are what
    the configuration page and config.example.toml claim: 2.7–2.9×."""
    speed = (DOCS / "benchmarks.md").read_text(encoding="utf-8").split("## Speed")[1]
    table = speed.split("\n\n| measure | figure")[0]
    ratios = [float(r) for r in re.findall(r"(\d\.\d+)×", table)]
    assert len(ratios) == 4 and round(min(ratios), 1) == 2.7 and round(max(ratios), 1) == 2.9
    for page in (DOCS / "configuration.md", CONFIG_EXAMPLE):
        text = " ".join(page.read_text(encoding="utf-8").split()).replace("# ", "")
        assert "2.7–2.9×" in text, page.name
    for page in [*PAGES, CONFIG_EXAMPLE]:
        assert not re.search(r"about \d(\.\d)? ?[x×]", page.read_text(encoding="utf-8")), page.name


def test_the_readme_sets_up_as_ci_does_and_says_how_to_get_the_cpu_torch() -> None:
    """The test command is .ci/run's, verbatim; the demo command pins torch as CI does; the
    CPU wheel command takes the same pin from PyTorch's CPU index, and the wheel it gets
    (a +cpu local version) satisfies the plain pin, so the commands after it keep it."""
    from packaging.specifiers import SpecifierSet

    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ci_command = next(line for line in ci if line.startswith("python3 -m venv"))
    pin = re.search(r"torch==[\d.]+", ci_command)
    assert pin is not None
    _, code = prose_and_code(README.read_text(encoding="utf-8"))
    assert ci_command in code
    demo = next(piece for piece in code if piece.endswith("citebot demo"))
    assert f"pip install {pin.group()} &&" in demo
    cpu = [piece for piece in code if "download.pytorch.org" in piece]
    assert cpu == [
        "python3 -m venv .venv && .venv/bin/pip install"
        f" {pin.group()} --index-url https://download.pytorch.org/whl/cpu"
    ]
    version = pin.group().removeprefix("torch==")
    assert SpecifierSet(f"=={version}").contains(f"{version}+cpu")
