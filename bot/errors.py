"""What a Discord user may read about an error, decided in this one place.

Discord messages never show server paths or library internals: the details go to the
log. Library errors (``CitebotError``) carry messages written for people, so they are
shown with every path replaced by a neutral name; errors whose text would describe the
server's index or configuration get a fixed sentence; anything else is a bug and gets
the generic message.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path

from retrieval.errors import (
    CitebotError,
    ConfigError,
    IndexMismatchError,
    IndexNotFoundError,
    LoadError,
)

GENERIC_ERROR = "Sorry, something went wrong while handling that. The error was logged."

_FIXED: dict[type[CitebotError], str] = {
    IndexNotFoundError: "There is no index yet: an admin needs to ingest the articles first.",
    IndexMismatchError: "The index cannot be read right now; the details are in the bot's log.",
    ConfigError: "The bot's configuration has a problem; the details are in the bot's log.",
    LoadError: "An article file could not be read; the details are in the bot's log.",
}

# An absolute POSIX path not inside a URL: "/srv/a b" stops at the space, and the path of
# "https://host/x" is left alone because it follows a host name, not a boundary.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"`,;()\[\]{}<>]+")


class Redactor:
    """Replaces known folders by a label and any other absolute path by its last part."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        # Longest first, so a source inside the index folder gets its own label.
        self._labels = sorted((labels or {}).items(), key=lambda item: -len(item[0]))

    @classmethod
    def for_folders(cls, index_dir: Path | str | None, sources: Iterable[Path | str]) -> Redactor:
        labels: dict[str, str] = {}
        for source in sources:
            for form in _forms(source):
                labels[form] = Path(source).name or "source"
        for form in _forms(index_dir) if index_dir else ():
            labels[form] = "the index folder"
        return cls(labels)

    def __call__(self, text: str) -> str:
        for path, label in self._labels:
            text = text.replace(path, label)
        return _ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name or "…", text)


def _forms(path: Path | str) -> set[str]:
    """The ways a folder may be spelled in a message: as configured and resolved."""
    forms = {str(path).rstrip("/")}
    with contextlib.suppress(OSError, RuntimeError):
        forms.add(str(Path(path).expanduser().resolve()))
    return {f for f in forms if len(f) > 1}


def public_message(error: BaseException, redact: Redactor) -> str:
    """The one line a Discord user sees for ``error``."""
    for kind, text in _FIXED.items():
        if isinstance(error, kind):
            return text
    if isinstance(error, CitebotError):
        return redact(str(error))
    return GENERIC_ERROR


def source_name(where: str, sources: Iterable[Path | str]) -> str:
    """A skipped file's name relative to the configured source it was found under.

    A file outside every source (it cannot be, but a message must not show a path
    anyway) is named by its last part.
    """
    path = Path(where)
    for source in sources:
        root = Path(source)
        for base in {root, root.expanduser().resolve()}:
            try:
                relative = path.relative_to(base)
            except ValueError:
                continue
            return str(Path(root.name) / relative) if str(relative) != "." else root.name
    return path.name if path.is_absolute() else where
