"""Finding the files of a source root: supported files, walked safely.

``find_files`` walks a root (a file or a folder): hidden entries are skipped, special
files (pipes, sockets, devices) are never opened, links that lead outside the folder are
skipped unless followed on purpose, and a folder that cannot be read is reported
(``Unreadable``) so that what it held stays indexed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import LoadError
from .records import Problem
from .text import printable

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PDF_SUFFIXES = (".pdf",)
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES + PDF_SUFFIXES
)


@dataclass(frozen=True)
class SourceFile:
    """A file to read, and the name it is cited by (relative to the folder it was found in).

    ``confine`` is the real path of the source folder the file must lie in when it is
    opened (None: anywhere), checked on the open file, so a link swapped in after the
    folder was listed cannot lead outside it.
    """

    path: Path
    name: str
    confine: str | None = None


@dataclass(frozen=True)
class Unreadable(Problem):
    """A file or folder that is there but could not be read: what it held stays indexed."""


# -- finding files ----------------------------------------------------------------------


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, for a message: "a named pipe", "a folder"..."""
    kinds = {
        stat.S_ISFIFO: "a named pipe",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISDIR: "a folder",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def find_files(
    given: Path | str, *, follow_symlinks: bool = False
) -> Iterator[SourceFile | Problem]:
    """The supported files under the root ``given`` (recursively, hidden entries skipped),
    files of a folder before its subfolders, each sorted by name.

    Raises LoadError when the root itself cannot be read. Special files (pipes, sockets,
    devices) are reported, never opened. A link that leads outside the root is reported
    and skipped unless ``follow_symlinks``; a link to a folder inside the root is not
    followed (its files are found where they are).
    """
    given = Path(given)
    try:
        info = given.stat()
    except FileNotFoundError:
        raise LoadError("no such file or folder") from None
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISREG(info.st_mode):
        if given.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise LoadError(f"unsupported file type {given.suffix!r}")
        path = Path(os.path.realpath(given)) if given.is_symlink() else given
        yield SourceFile(path, printable(given.name))
        return
    if not stat.S_ISDIR(info.st_mode):
        raise LoadError(f"not a file or folder ({kind_of(info.st_mode)})")
    root = os.path.realpath(given)
    confine = None if follow_symlinks else root
    try:
        entries = _sorted_entries(given)
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    visited = {(info.st_dev, info.st_ino)}
    # Depth first, in order: a folder's files, then each subfolder in turn.
    stack: list[tuple[str, list[os.DirEntry[str]]]] = [("", entries)]
    while stack:
        prefix, entries = stack.pop()
        folders: list[tuple[str, Path]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = prefix + entry.name
            found = _classify(entry, name, root, follow_symlinks)
            if isinstance(found, Path):
                folders.append((name, found))
            elif isinstance(found, SourceFile):
                yield replace(found, confine=confine)
            elif found is not None:
                yield found
        for name, folder in reversed(folders):
            try:
                info = folder.stat()
                if (info.st_dev, info.st_ino) in visited:
                    continue  # a link loop
                visited.add((info.st_dev, info.st_ino))
                stack.append((name + "/", _sorted_entries(folder)))
            except OSError as exc:
                yield Unreadable(
                    printable(name) + "/", f"cannot read the folder: {exc.strerror or exc}"
                )


def _sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as scan:
        return sorted(scan, key=lambda e: e.name)


def _classify(
    entry: os.DirEntry[str], name: str, root: str, follow_symlinks: bool
) -> Path | SourceFile | Problem | None:
    """A folder to walk (its path), a file to read, a problem, or None for an entry passed
    over quietly (an unsupported file, or a link to a folder inside the root)."""
    supported = Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES
    try:
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            try:
                mode = os.stat(target).st_mode
            except OSError:
                return Problem(printable(name), "a broken link") if supported else None
            folder = stat.S_ISDIR(mode)
            if not supported and not folder:
                return None
            if not is_inside(target, root) and not follow_symlinks:
                what = "folder" if folder else "file"
                return Problem(
                    printable(name),
                    f"a link to a {what} outside the source folder (--follow-symlinks reads it)",
                )
            if folder:
                return Path(target) if not is_inside(target, root) else None
            return _regular(Path(target), mode, name)
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError as exc:
        return Unreadable(printable(name), f"cannot read: {exc.strerror or exc}")
    if stat.S_ISDIR(mode):
        return Path(entry.path)
    return _regular(Path(entry.path), mode, name) if supported else None


def _regular(path: Path, mode: int, name: str) -> SourceFile | Problem:
    if stat.S_ISREG(mode):
        return SourceFile(path, printable(name))
    return Problem(printable(name), f"not a regular file ({kind_of(mode)}); not opened")


def discover(
    paths: Sequence[Path | str], *, follow_symlinks: bool = False
) -> tuple[list[SourceFile], list[Problem]]:
    """The supported files under each of ``paths``, and the problems met (a root that
    cannot be read is a problem named by the path as given)."""
    found: list[SourceFile] = []
    problems: list[Problem] = []
    for given in paths:
        try:
            for item in find_files(given, follow_symlinks=follow_symlinks):
                if isinstance(item, Problem):
                    problems.append(item)
                else:
                    found.append(item)
        except LoadError as exc:
            problems.append(Problem(str(given), str(exc)))
    return found, problems
