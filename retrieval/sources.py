"""Sources: the roots given to ingest, each read as a stream of articles and problems.

A root is a file or a folder (``FileSource``), or a URL of a page, a feed, a sitemap or a
PDF (``retrieval.web.source.WebSource``); ``retrieval.ingest.open_source`` picks the kind.
Ingest reads every source, then uses each one's ``SourceOutcome`` to decide what pruning
may remove: nothing from a root that failed, only what the source reports gone from a root
it could not read completely, and otherwise every indexed article of the root that was not
found again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .errors import LoadError
from .files import SourceFile, Unreadable, find_files
from .records import Article, Problem
from .text import printable
from .workers import load_files

if TYPE_CHECKING:
    from .config import Settings
    from .index import ArticleReader, IndexWriter


@dataclass(frozen=True)
class SourceOutcome:
    """How reading one source went, as far as pruning is concerned."""

    # Why the root as a whole could not be read (missing, unreadable, no articles):
    # nothing is pruned from it.
    failure: str | None = None
    # True when every document under the root was looked at, so an indexed article of
    # this root that was not found again has been deleted.
    complete: bool = True
    # Article ids the source itself reports deleted (an HTTP 404 or 410, say).
    gone: frozenset[str] = frozenset()
    # Documents (or folders) found but not read fully (a bad file, a bad line in it, an
    # unreadable folder), named as their articles' ``source`` is up to a "#N" or ":LINE"
    # suffix (or a "/..." for a folder): their indexed articles stay.
    kept: frozenset[str] = frozenset()
    # Documents (files, pages) read, for the report.
    documents: int = 0

    def keeps(self, source: str) -> bool:
        """Whether an indexed article cited as ``source`` belongs to a document (or lies in
        a folder) in ``kept``. Looks up the few names it could belong to, so pruning a
        large index costs one set look-up per name, whatever the size of ``kept``."""
        if not self.kept:
            return False
        names = {source, source.rsplit("#", 1)[0], source.rsplit(":", 1)[0]}
        parts = source.split("/")
        names.update("/".join(parts[:end]) for end in range(1, len(parts)))
        return not self.kept.isdisjoint(names)


@runtime_checkable
class Source(Protocol):
    """One root given to ingest: a file or a folder, or a URL."""

    @property
    def root(self) -> str:
        """Recorded with each article read from it: an absolute path, or a URL."""
        ...

    def read(self) -> Iterator[Article | Problem]:
        """Streams the articles; a problem names the file or record and says why."""
        ...

    @property
    def outcome(self) -> SourceOutcome:
        """Valid once ``read()`` is exhausted."""
        ...


@runtime_checkable
class StatefulSource(Protocol):
    """A source that remembers what it read (HTTP validators, listings) in the index itself.

    (Not a ``Source`` subprotocol: ``isinstance`` would then ask for ``outcome``, which a
    source has only once it has been read.)
    """

    def use_committed(self, committed: ArticleReader | None) -> None:
        """What the source remembered is read from ``committed``: the generation the write
        builds on, which ingest holds open (None for a new index or a rebuild: nothing is
        remembered). Called before ``read()``."""
        ...

    def save_state(self, writer: IndexWriter) -> None:
        """Record what was read, in the generation being written, after its articles.

        Called inside the write, so the state commits atomically with the articles it
        describes (and is lost with them if the write fails).
        """
        ...


@runtime_checkable
class CheckingSource(Source, Protocol):
    """A source that cannot list all it once gave (a feed rolls over), but can check articles.

    With ``--prune``, ingest asks it about the indexed articles of its root that the read
    did not find; only those it confirms deleted are removed.
    """

    def confirm_gone(self, article_ids: Sequence[str]) -> tuple[frozenset[str], list[Problem]]:
        """Of ``article_ids``, those deleted at their origin; and what could not be checked."""
        ...


@runtime_checkable
class ReportsProgress(Protocol):
    """A source that can tell how far ``read()`` has got (for the progress bar's time left)."""

    @property
    def progress(self) -> float | None:
        """The share of the source read so far, from 0 to 1; None while it cannot tell."""
        ...


class FileSource:
    """A file or a folder (read recursively, hidden entries skipped).

    Files are parsed in worker processes within the ``[ingest]`` limits; links that lead
    outside the folder are skipped unless ``follow_symlinks``; special files are never
    opened (see ``files.find_files`` and ``workers.load_files``).
    """

    def __init__(self, given: str | os.PathLike[str], settings: Settings) -> None:
        self.path = Path(given)
        self.limits = settings.ingest
        self._root = os.path.abspath(os.fspath(given))
        self._outcome: SourceOutcome | None = None
        # Files listed, and how many have been read (a share of a file whose articles
        # are being handed out).
        self._files = 0
        self._files_read = 0.0

    @property
    def root(self) -> str:
        return self._root

    @property
    def progress(self) -> float | None:
        return self._files_read / self._files if self._files else None

    @property
    def outcome(self) -> SourceOutcome:
        if self._outcome is None:
            raise RuntimeError("read() the source to the end before asking for its outcome")
        return self._outcome

    def read(self) -> Iterator[Article | Problem]:
        if self._root != printable(self._root):
            yield from self._fail("the path is not valid UTF-8 (rename it)")
            return
        try:
            # Absolute: workers may run in another working directory.
            listing = list(find_files(self._root, follow_symlinks=self.limits.follow_symlinks))
        except LoadError as exc:
            yield from self._fail(str(exc))
            return
        files = [item for item in listing if isinstance(item, SourceFile)]
        kept: set[str] = set()
        for item in listing:
            if isinstance(item, Problem):
                if isinstance(item, Unreadable):
                    kept.add(item.where.rstrip("/"))
                yield item
        articles = 0
        self._files = len(files)
        for number, (file, loaded) in enumerate(load_files(files, self.limits)):
            self._files_read = number
            if isinstance(loaded, Problem):
                kept.add(file.name)
                yield loaded
                continue
            if loaded.problems:
                kept.add(file.name)
            yield from loaded.problems
            articles += len(loaded.articles)
            for position, article in enumerate(loaded.articles, start=1):
                self._files_read = number + position / len(loaded.articles)
                yield article
        self._files_read = len(files)
        if not articles:
            reason = f"none of its {len(files):,} files could be read" if files else None
            yield from self._fail(reason or "no articles found", documents=len(files))
            return
        self._outcome = SourceOutcome(kept=frozenset(kept), documents=len(files))

    def _fail(self, reason: str, documents: int = 0) -> Iterator[Problem]:
        self._outcome = SourceOutcome(failure=reason, documents=documents)
        yield Problem(printable(str(self.path)), reason)
