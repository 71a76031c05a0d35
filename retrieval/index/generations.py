"""The local backend: an index folder of generations, each a SQLite store and a FAISS index.

Layout::

    INDEX/index.json            manifest: format, schema, model, dimension, chunking, generation
    INDEX/gen-000007/store.sqlite
    INDEX/gen-000007/vectors.faiss
    INDEX/gen-000007/embedder.*     the exported model, for indexes built with an ONNX backend

An ordinary write changes the current generation in place, in one SQLite transaction of
its live store (``inplace``; new vectors in a segment, removed ones masked, see
``segments``), so it costs what it changes; a compaction folds the segment into a new main
vector file now and then (``compaction``). A first ingest or a rebuild builds a new
generation in a staging folder and commits by replacing ``index.json`` atomically. A crash
at any point before a commit leaves the previous state; the next writer removes what the
crash left (staging folders, generation folders no manifest named, main vector files the
store does not name). An ingest that changes nothing writes nothing.

Retention: a new generation keeps the one before it, and removes the rest. A reader pins
one committed state of the store (``Store.pin``) and holds its vectors in memory, so it
keeps working after a write, or after its folder is removed; only opening needs the
folder, and an open that loses the race with two quick commits tries again. A reader
follows a write by reopening (``open_index`` with ``reuse``: the main vector file is
shared while the store still names it).

Opening checks, cheaply, that the manifest is well formed and that the live FAISS ids, the
SQLite chunk rows and the keyword index agree (``checks``), and refuses a damaged index
with one line saying how to rebuild it. A writer never builds on a damaged index.

No pickle anywhere: JSON, SQLite and FAISS's own binary format.

(About 600 lines, for a reason: opening, following and the generation protocol of writing
share the folder's layout and its rules of what may be removed when; the write in place,
its checks and compaction have their own modules.)

Crash tests set ``CITEBOT_TEST_KILL_AT`` to one of ``COMMIT_STEPS`` (``steps``) to have
the writing process kill itself (SIGKILL) at that step; see tests/reliability/.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ChunkSettings, VectorSettings
from ..errors import CitebotError, IndexDamagedError, IndexMismatchError, IndexNotFoundError
from ..records import Article, ArticleRef, ArticleSummary, SearchFilter
from .base import ChunkRow, IndexedArticle, SentenceVectors, WebResourceRow
from .checks import (
    Sums,
    check_agreement,
    check_sums,
    kept_id_sums,
    live_sums,
    open_store,
    read_vectors,
    size_on_disk,
    sums_of,
    verify_store,
)
from .inplace import (
    CommittedArticles,
    check_for_writing,
    log_restart_asked,
    settle,
    write_in_place,
)
from .manifest import (
    GENERATION_PREFIX,
    MANIFEST,
    Manifest,
    check_model,
    damaged,
    read_manifest,
)
from .segments import (
    LiveVectors,
    SegmentState,
    read_masked,
    read_segment,
    read_state,
)
from .staging import StagedGeneration, leftover_staging
from .steps import (
    STORE_FILE,
    VECTORS_FILE,
    discard_log,
    now,
    numbered_folders,
    reached,
    remove_vector_files,
)
from .store import Store
from .vectors import VectorIndex
from .writer import GenerationWriter

if TYPE_CHECKING:
    from ..embedding.model_files import OnnxModel

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@dataclass
class OpenIndex:
    """A generation opened for reading (and checked), at one committed state of its store.

    Every read sees that state, whatever is committed meanwhile (``Store.pin``); ``vectors``
    is the main vector file with the segment and masks of that state.
    """

    path: Path
    manifest: Manifest
    store: Store
    vectors: LiveVectors
    # Measured at open: the folder may be removed later while this index is still in use.
    size_bytes: int
    state: SegmentState
    # The main vector file's id sums, from its check at the first open.
    main_sums: Sums
    # When it was opened (time.time_ns(), before its snapshot was pinned): a writer asking
    # readers to let go of the write-ahead log asks those opened before (``restart_log``).
    opened_ns: int = 0

    def close(self) -> None:
        self.store.close()

    @property
    def version(self) -> int:
        """What this reader sees, as ``committed_version`` counts."""
        return _version(self.manifest.generation, self.state.version)

    def is_current(self) -> bool:
        """False once a later write committed something (reopen to see it).

        Reads the manifest (a small JSON file) and one row of the store; raises CitebotError
        if the manifest is missing or damaged.
        """
        if committed_version(self.path) != self.version:
            return False
        folder = self.path / self.manifest.folder
        return not log_restart_asked(folder / STORE_FILE, self.opened_ns)

    def reopened(self, busy: AbstractContextManager[object] | None = None) -> OpenIndex:
        """This index as committed now; the main vector file is shared while the store
        still names it, and so are the keyword counts the changed chunks do not touch
        (``Store.follow_from``): following a write costs what the write changed.
        ``busy``: held while this index is read for them (its users' lock)."""
        newer = open_index(self.path, self.manifest.model, self.manifest.backend, reuse=self)
        if newer.vectors.main is self.vectors.main:
            try:
                added, removed = newer.vectors.changes_since(self.vectors)
                with busy or contextlib.nullcontext():
                    counted = self.store.keyword_counts(removed)
                newer.store.follow_from(counted, added)
            except BaseException:
                newer.close()
                raise
        return newer

    # -- the IndexReader protocol: the vectors' part, then the store's -------------------

    @property
    def location(self) -> str:
        return str(self.path)

    def nearest(
        self, vector: np.ndarray, limit: int, among: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        return self.vectors.search(vector, limit, among)

    def describe_vectors(self) -> str:
        return self.vectors.describe()

    def describe_segments(self) -> tuple[int, int, int, str | None]:
        """Vectors in the main file, chunks in the segment, masked chunks, last compaction."""
        vectors = self.vectors
        return (
            len(vectors.main),
            len(vectors.segment),
            len(vectors.masked),
            self.state.last_compaction,
        )

    @property
    def updated(self) -> str:
        """When the index was last written."""
        return self.state.updated or self.manifest.updated

    def keyword_search(
        self,
        question: str,
        limit: int,
        filters: SearchFilter | None = None,
        budget: int | None = None,
        exact: bool = True,
    ) -> list[tuple[int, float]]:
        return self.store.keyword_search(question, limit, filters, budget, exact)

    def keyword_scores(
        self, question: str, chunk_ids: Iterable[int], budget: int | None
    ) -> dict[int, float]:
        return self.store.keyword_scores(question, chunk_ids, budget)

    def admits_any(self, filters: SearchFilter) -> bool:
        return self.store.admits_any(filters)

    def admitted_chunk_ids(
        self, filters: SearchFilter, among: Sequence[int] | None = None
    ) -> list[int]:
        return self.store.admitted_chunk_ids(filters, among)

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        return self.store.chunks(ids)

    def sentence_vectors(self, chunk_ids: Iterable[int]) -> dict[int, SentenceVectors]:
        return self.store.sentence_vectors(chunk_ids)

    def article_refs(self, ids: Iterable[str]) -> dict[str, ArticleRef]:
        return self.store.article_refs(ids)

    def counts(self) -> tuple[int, int]:
        return self.store.counts()

    def article(self, article_id: str) -> Article | None:
        return self.store.article(article_id)

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        return self.store.articles_by_id(ids)

    def articles_titled(self, title: str) -> list[Article]:
        return self.store.articles_titled(title)

    def search_titles(self, text: str, limit: int) -> list[ArticleRef]:
        return self.store.search_titles(text, limit)

    def summaries(self) -> list[ArticleSummary]:
        return self.store.summaries()

    def suggest_sources(self, prefix: str, limit: int) -> list[str]:
        return self.store.suggest_sources(prefix, limit)

    def suggest_authors(self, text: str, limit: int) -> list[str]:
        return self.store.suggest_authors(text, limit)

    def indexed_articles(self) -> dict[str, IndexedArticle]:
        return self.store.indexed_articles()

    def indexed_article(self, article_id: str) -> IndexedArticle | None:
        return self.store.indexed_article(article_id)

    def web_resources(self) -> dict[str, WebResourceRow]:
        return self.store.web_resources()

    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        return self.store.term_counts(terms)

    def chunk_ids(self, article_id: str) -> list[int]:
        return self.store.chunk_ids(article_id)

    def stories(self, article_ids: Iterable[str]) -> dict[str, str]:
        return self.store.copies.stories(article_ids)

    def story_heads(self, stories: Iterable[str], first: int) -> dict[str, tuple[list[str], int]]:
        return self.store.copies.heads(stories, first)

    def duplicate_groups(self) -> list[list[str]]:
        return self.store.copies.groups()


def _version(generation: int, writes: int) -> int:
    return generation << 32 | writes


def committed_version(index_dir: Path) -> int:
    """A number that grows with every commit to ``index_dir``: the manifest's generation
    (a rebuild, an upgrade) and the store's count of writes since. Cheap: the manifest and
    one row of the store. Raises CitebotError if the manifest is missing or damaged."""
    manifest = read_manifest(index_dir)
    return _version(manifest.generation, _writes(index_dir / manifest.folder / STORE_FILE))


def _writes(path: Path) -> int:
    """The store's count of writes in place (0 for one that cannot be read now: a rebuild
    removing it, say; the open will tell)."""
    try:
        db = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=rw", uri=True)
        try:
            return read_state(db, VECTORS_FILE).version
        finally:
            db.close()
    except sqlite3.Error:
        discard_log(path)
        return 0


def open_index(
    index_dir: Path,
    model: str | None,
    backend: str | None = None,
    manifest: Manifest | None = None,
    reuse: OpenIndex | None = None,
) -> OpenIndex:
    """Open and check the current generation; IndexDamagedError (one line) if it is damaged.

    ``model`` and ``backend``: what its vectors must come from (None checks nothing).
    ``manifest``: the one the caller has just read (else it is read here). ``reuse``: an
    index opened before from the same folder, whose main vector file (read and checked
    then) is shared if the store still names it.
    """
    for attempt in range(3):
        if manifest is None or attempt:
            manifest = read_manifest(index_dir)
        if model is not None:
            check_model(manifest, model, index_dir, backend)
        seen = _version(manifest.generation, _writes(index_dir / manifest.folder / STORE_FILE))
        try:
            return _open_generation(index_dir, manifest, reuse)
        except IndexDamagedError:
            # Two commits between reading the manifest and opening the files remove the
            # generation (or main vector file) it named: then a newer one is named, so try that.
            if attempt == 2 or committed_version(index_dir) == seen:
                raise
    raise AssertionError("unreachable")


def _open_generation(index_dir: Path, manifest: Manifest, reuse: OpenIndex | None) -> OpenIndex:
    folder = index_dir / manifest.folder
    opened_ns = time.time_ns()
    store = open_store(index_dir, manifest)
    try:
        try:
            store.pin()
        except sqlite3.Error as exc:
            store.unreadable = True
            raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None
        state, masked, segment = _read_segment(index_dir, store, manifest)
        shared = (
            reuse is not None
            and reuse.path == index_dir
            and reuse.manifest.generation == manifest.generation
            and reuse.state.vectors_file == state.vectors_file
        )
        kept = kept_id_sums(index_dir, store) if shared else None
        if reuse is not None and shared and kept is not None:
            # Following a write: the main file was read and checked by the first open; the
            # rest agrees by the sums the store's triggers keep (no scan of every chunk).
            main, main_sums = reuse.vectors.main, reuse.main_sums
            live = live_sums(main_sums, sums_of(masked), sums_of(segment.ids()))
            check_sums(index_dir, *kept, live)
            vectors = LiveVectors(main, masked, segment)
        else:
            chunks, keyword = verify_store(index_dir, store)
            if reuse is not None and shared:
                main = reuse.vectors.main
            else:
                main = read_vectors(index_dir, folder / state.vectors_file, manifest)
            vectors = LiveVectors(main, masked, segment)
            main_sums = check_agreement(index_dir, chunks, keyword, vectors)
        size = size_on_disk(index_dir, folder)
    except BaseException:
        store.close()
        raise
    return OpenIndex(index_dir, manifest, store, vectors, size, state, main_sums, opened_ns)


def _read_segment(
    index_dir: Path, store: Store, manifest: Manifest
) -> tuple[SegmentState, np.ndarray, VectorIndex]:
    """The store's state, masked ids and segment (searched exactly), from its snapshot."""
    try:
        db = store.connection
        state = read_state(db, VECTORS_FILE)
        masked = read_masked(db)
        ids, vectors = read_segment(db, manifest.dimension)
    except (sqlite3.Error, ValueError, TypeError) as exc:
        raise damaged(index_dir, f"{STORE_FILE}: the segment cannot be read ({exc})") from None
    segment = VectorIndex.exact(ids, vectors) if len(ids) else VectorIndex.empty(manifest.dimension)
    return state, masked, segment


# -- writing ----------------------------------------------------------------------------


class GenerationLock:
    """The writer lock of an index folder, held, with the index to write to (checked).

    Taken before anything slow (reading files, loading a model), so a second writer is
    refused at once; ``next_generation`` then writes and commits.
    """

    def __init__(
        self,
        index_dir: Path,
        model: str,
        current: int | None,
        manifest: Manifest | None,
        backend: str = "torch",
        *,
        rebuild: bool = False,
    ) -> None:
        self.index_dir = index_dir
        # A rebuild resumes the staged generation a killed rebuild left (``staging``).
        self.rebuild = rebuild
        self.model = model
        self.backend = backend
        # The generation the manifest names (0: none; None: unreadable, when rebuilding).
        self.current = current
        # Its manifest, the index checked; None for a new index or a rebuild.
        self.manifest = manifest
        # Its articles as committed (for ingest and the web sources); None if there are none.
        self.previous = (
            CommittedArticles(index_dir / manifest.folder / STORE_FILE) if manifest else None
        )
        self._used = False

    def close(self) -> None:
        if self.previous is not None:
            self.previous.close()

    @contextlib.contextmanager
    def next_generation(
        self,
        dimension: int,
        chunking: ChunkSettings,
        artifact: OnnxModel | None = None,
        vector_settings: VectorSettings | None = None,
    ) -> Iterator[GenerationWriter]:
        """Write the index; commit if the block succeeds and changed something (a rebuild or
        a new index always commits).

        An existing index is written in place, in one SQLite transaction (``inplace``), and
        compacted after if its segment has grown. A new index, or a rebuild, is built as a
        new generation; ``artifact``, the exported model (ONNX backends), is copied into it,
        so the index always holds the very model its vectors came from, and its vector index
        is written as the kind its size calls for (``VectorIndex.adapted`` with
        ``vector_settings``, the defaults if None).
        """
        if self._used:
            raise RuntimeError("a GenerationLock writes once")
        self._used = True
        settings = vector_settings or VectorSettings()
        manifest = self.manifest
        if manifest is None:
            with self._new_generation(dimension, chunking, artifact, settings) as writer:
                yield writer
            return
        sha256 = artifact.sha256 if artifact else None
        check_model(manifest, self.model, self.index_dir, self.backend, sha256)
        if manifest.dimension != dimension:
            raise IndexMismatchError(
                f"index at {self.index_dir} holds {manifest.dimension}-dimensional vectors"
                f" but the model makes {dimension}: rebuild it with `citebot ingest --rebuild`"
            )
        with write_in_place(self.index_dir, manifest, settings) as live:
            yield live

    @contextlib.contextmanager
    def _new_generation(
        self,
        dimension: int,
        chunking: ChunkSettings,
        artifact: OnnxModel | None,
        vector_settings: VectorSettings,
    ) -> Iterator[GenerationWriter]:
        """Build the next generation in a staging folder, in batches (``staging``): a first
        ingest publishes it at its first batch, a rebuild at its end (resuming the staged
        generation a killed rebuild left, if it was made the same way)."""
        index_dir = self.index_dir
        # Past every folder left over (after a rebuild over an unreadable manifest, too), so
        # no folder a reader may hold is ever reused.
        generation = max([self.current or 0, *_generation_folders(index_dir)]) + 1
        manifest = Manifest(
            model=self.model,
            dimension=dimension,
            chunking=asdict(chunking),
            generation=generation,
            created=now(),
            updated=now(),
            backend=self.backend,
            quantization=artifact.quantization if artifact else None,
            model_sha256=artifact.sha256 if artifact else None,
        )
        staged = None
        if self.rebuild:
            staged = StagedGeneration.resumed(index_dir, manifest, vector_settings, artifact)
        try:
            if staged is not None:
                writer = staged.resume()
            else:
                staged = StagedGeneration(
                    index_dir, manifest, vector_settings, artifact, publish_early=not self.rebuild
                )
                writer = staged.create()
            yield writer
            staged.finish()
        except BaseException:
            if staged is not None:
                staged.abandon()
            raise
        _remove_generations(
            index_dir, keep={staged.manifest.generation, staged.manifest.generation - 1}
        )
        reached("cleaned")


@contextlib.contextmanager
def lock_for_writing(
    index_dir: Path, model: str, *, rebuild: bool = False, backend: str = "torch"
) -> Iterator[GenerationLock]:
    """Take the writer lock of ``index_dir``, check the index to write to (none with
    ``rebuild``), clean up after any earlier crash, and upgrade an index written before
    segments (once).

    Raises CitebotError at once if another writer holds the lock, and IndexDamagedError
    (unless rebuilding) if the index is damaged.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock_file = open(index_dir / LOCK_FILE, "w")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise CitebotError(f"cannot write the index folder {index_dir}: {exc.strerror}") from None
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CitebotError(f"another ingest is writing {index_dir}; try again later") from None
        reached("locked")
        current = _current_generation(index_dir, strict=not rebuild)
        manifest = read_manifest(index_dir) if current and not rebuild else None
        checked = None
        if manifest is not None:
            check_model(manifest, model, index_dir, backend)
            # Checked before healing, so a writer refused for damage changes nothing.
            checked = check_for_writing(index_dir, manifest)
        # A rebuild's staged batches stay for the next rebuild (a first ingest has none).
        keep_staged = rebuild or bool(current)
        _heal(index_dir, current, checked.state if checked else None, keep_staged)
        if manifest is not None and checked is not None:
            manifest = settle(index_dir, manifest, checked)
        reached("healed")
        lock = GenerationLock(index_dir, model, current, manifest, backend, rebuild=rebuild)
        try:
            yield lock
        finally:
            lock.close()


def _current_generation(index_dir: Path, *, strict: bool) -> int | None:
    """The generation the manifest names, 0 if there is no manifest, None if it is unreadable
    (then an error unless ``strict`` is off, as when rebuilding)."""
    try:
        return read_manifest(index_dir).generation
    except IndexNotFoundError:
        return 0
    except CitebotError:
        if strict:
            raise
        return None


def _heal(
    index_dir: Path, current: int | None, state: SegmentState | None, keep_staged: bool
) -> None:
    """Remove what an interrupted writer left: staging folders (with ``keep_staged``, but
    for one a rebuild may resume), a half-written manifest,
    generation folders no manifest named, and main vector files the store does not name (a
    compaction killed before its commit). The current generation and the one before it stay
    (a reader may still be opening it), and the main vector file named and the one before
    it; with an unreadable manifest, every generation stays. An uncommitted write to the
    store needs nothing: SQLite ignores it."""
    leftovers = leftover_staging(index_dir, keep_resumable=keep_staged)
    if current is not None:
        leftovers += [p for n, p in _generation_folders(index_dir).items() if n > current]
    for path in leftovers:
        logger.warning("removing %s, left by an interrupted ingest", path)
        shutil.rmtree(path, ignore_errors=True)
    (index_dir / MANIFEST).with_suffix(".tmp").unlink(missing_ok=True)
    if current is not None:
        _remove_generations(index_dir, keep={current, current - 1})
    if current and state is not None:
        folder = index_dir / f"{GENERATION_PREFIX}{current:06d}"
        remove_vector_files(folder, keep={state.vectors_file, state.previous_vectors_file})


def _generation_folders(index_dir: Path) -> dict[int, Path]:
    return numbered_folders(index_dir, GENERATION_PREFIX)


def _remove_generations(index_dir: Path, keep: set[int]) -> None:
    for number, folder in _generation_folders(index_dir).items():
        if number not in keep:
            logger.debug("removing generation folder %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
