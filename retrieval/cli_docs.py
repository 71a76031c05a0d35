"""The CLI reference (docs/cli.md), generated from every command's ``--help``.

The reference is written from the commands themselves, so it cannot drift from them; a
test fails when the committed file differs from what this module makes. Plugin commands
(`citebot bot`, `citebot feedback`) are found through their entry point, as the `citebot`
command finds them. Regenerate with::

    .venv/bin/python -m retrieval.cli_docs docs/cli.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from .cli import cli

PROG = "citebot"
# Fixed, so the text does not depend on the terminal it was made on.
WIDTH = 88

HEADER = """\
# The CLI reference

<!-- Generated from every command's --help by `python -m retrieval.cli_docs docs/cli.md`;
     do not edit by hand (a test fails when this file differs from the commands). -->

Every `citebot` command with its options, as `--help` prints them. Global options come
before the command; `--config FILE` may also follow it. What the commands do, with
examples, is in [the README](../README.md#commands).
"""


@dataclass(frozen=True)
class CommandDoc:
    """One command: its name as typed (``citebot ask``), its help text and its options."""

    name: str
    help: str
    # Each option's spellings (``("-v", "--verbose")``), hidden ones left out, ``--help`` in.
    options: tuple[tuple[str, ...], ...]

    @property
    def flags(self) -> frozenset[str]:
        """Every spelling of every option."""
        return frozenset(flag for spellings in self.options for flag in spellings)


def command_docs() -> list[CommandDoc]:
    """The `citebot` group itself, then each command in name order."""
    root = click.Context(cli, info_name=PROG, terminal_width=WIDTH, max_content_width=WIDTH)
    docs = [_doc(root)]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        if command is None or command.hidden:
            continue
        ctx = click.Context(
            command, info_name=name, parent=root, terminal_width=WIDTH, max_content_width=WIDTH
        )
        docs.append(_doc(ctx))
    return docs


def _doc(ctx: click.Context) -> CommandDoc:
    options = tuple(
        (*param.opts, *param.secondary_opts)
        for param in ctx.command.get_params(ctx)
        if isinstance(param, click.Option) and not param.hidden
    )
    return CommandDoc(ctx.command_path, ctx.command.get_help(ctx), options)


def render() -> str:
    """The text of docs/cli.md."""
    parts = [HEADER]
    for doc in command_docs():
        parts.append(f"## `{doc.name}`\n\n```\n{doc.help.rstrip()}\n```\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Write the reference to the file given (stdout without one); ``--check`` compares."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    text = render()
    if not paths:
        sys.stdout.write(text)
        return 0
    path = Path(paths[0])
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            sys.stderr.write(f"{path} is out of date: run python -m retrieval.cli_docs {path}\n")
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
