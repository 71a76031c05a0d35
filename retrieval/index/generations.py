"""The local backend: an index folder of generations, each a SQLite store and a FAISS index.

Layout::

    INDEX/index.json            manifest: format, schema, model, dimension, chunking, generation
    INDEX/gen-000007/store.sqlite
    INDEX/gen-000007/vectors.faiss
    INDEX/gen-000007/embedder.*     the exported model, for indexes built with an ONNX backend

A write builds the next generation in a staging folder (copying the current one), and
commits by replacing ``index.json`` atomically. A crash at any point before that leaves
the manifest naming the previous, untouched generation; the next writer removes what the
crash left (staging folders, generation folders no manifest named). An ingest that
changes nothing writes no generation.

Retention: a commit keeps the new generation and the one before it, and removes the
rest. A reader holds its SQLite file open and its vectors in memory, so it keeps
working after its folder is removed; only opening needs the folder, and an open that
loses the race with two quick commits reads the manifest again.

Opening checks, cheaply, that the manifest is well formed and that the FAISS ids, the
SQLite chunk rows and the keyword index agree (counts and an id fingerprint), and
refuses a damaged index with one line saying how to rebuild it. A writer never builds
on a damaged generation.

No pickle anywhere: JSON, SQLite and FAISS's own binary format.

Crash tests set ``CITEBOT_TEST_KILL_AT`` to one of ``COMMIT_STEPS`` to have the writing
process kill itself (SIGKILL) at that step; see tests/reliability/.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ChunkSettings, VectorSettings
from ..errors import CitebotError, IndexDamagedError, IndexMismatchError, IndexNotFoundError
from ..records import Article, ArticleRef, ArticleSummary, Chunk, SearchFilter
from .base import ChunkRow, IndexedArticle, SentenceVectors, WebResourceRow
from .manifest import GENERATION_PREFIX, MANIFEST, Manifest, damaged, read_manifest
from .store import ID_HASH_FACTOR, ID_HASH_MODULUS, IdSummary, Store
from .vectors import VectorIndex

if TYPE_CHECKING:
    from ..embedding.model_files import OnnxModel

logger = logging.getLogger(__name__)

STORE_FILE = "store.sqlite"
VECTORS_FILE = "vectors.faiss"
LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"

# The named steps of a write, in order; the crash tests kill the writer at each one.
COMMIT_STEPS = (
    "locked",  # the writer lock is held
    "healed",  # leftovers of an earlier crash are removed
    "staged",  # the staging folder holds a copy of the current generation
    "store-written",  # the new store is committed and closed
    "vectors-written",  # the new vectors are written
    "synced",  # the staging folder's files are on disk
    "renamed",  # the staging folder is renamed to its generation folder
    "manifest-staged",  # the new manifest is written beside the old one
    "committed",  # the new manifest replaced the old one
    "cleaned",  # generations no longer kept are removed
)
KILL_AT_ENV = "CITEBOT_TEST_KILL_AT"


def _reached(step: str) -> None:
    """Crash-test hook: kill -9 this process at ``step`` if the environment asks for it."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_model(
    manifest: Manifest,
    model: str,
    index_dir: Path,
    backend: str | None = None,
    model_sha256: str | None = None,
) -> None:
    """Vectors of one model and backend only: refuse another (None checks nothing)."""
    if manifest.model != model:
        raise IndexMismatchError(
            f"index at {index_dir} was built with model {manifest.model!r}, but the config names"
            f" {model!r}: use that model, or rebuild with `citebot ingest --rebuild`"
        )
    if backend is not None and manifest.backend != backend:
        raise IndexMismatchError(
            f"index at {index_dir} was built with the {manifest.backend} backend, not {backend}:"
            f' set [model] backend = "{manifest.backend}" (or "auto"), or rebuild with'
            " `citebot ingest --rebuild`"
        )
    if model_sha256 and manifest.model_sha256 and manifest.model_sha256 != model_sha256:
        raise IndexMismatchError(
            f"index at {index_dir} was built with another export of {model} ({backend}):"
            " rebuild with `citebot ingest --rebuild`"
        )


@dataclass
class OpenIndex:
    """A generation opened for reading (and checked)."""

    path: Path
    manifest: Manifest
    store: Store
    vectors: VectorIndex
    # Measured at open: the folder may be removed later while this index is still in use.
    size_bytes: int

    def close(self) -> None:
        self.store.close()

    def is_current(self) -> bool:
        """False once a later ingest committed a newer generation (reopen to see it).

        Reads the manifest (a small JSON file); raises CitebotError if it is missing or damaged.
        """
        return read_manifest(self.path).generation == self.manifest.generation

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

    def keyword_search(
        self,
        question: str,
        limit: int,
        filters: SearchFilter | None = None,
        budget: int | None = None,
    ) -> list[tuple[int, float]]:
        return self.store.keyword_search(question, limit, filters, budget)

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

    def web_resources(self) -> dict[str, WebResourceRow]:
        return self.store.web_resources()

    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        return self.store.term_counts(terms)

    def chunk_ids(self, article_id: str) -> list[int]:
        return self.store.chunk_ids(article_id)

    def stories(self, article_ids: Iterable[str]) -> dict[str, str]:
        return self.store.copies.stories(article_ids)

    def story_members(self, stories: Iterable[str]) -> dict[str, list[str]]:
        return self.store.copies.members(stories)

    def duplicate_groups(self) -> list[list[str]]:
        return self.store.copies.groups()


def open_index(
    index_dir: Path,
    model: str | None,
    backend: str | None = None,
    manifest: Manifest | None = None,
) -> OpenIndex:
    """Open and check the current generation; IndexDamagedError (one line) if it is damaged.

    ``model`` and ``backend``: what its vectors must come from (None checks nothing).
    ``manifest``: the one the caller has just read (else it is read here).
    """
    for attempt in range(3):
        if manifest is None or attempt:
            manifest = read_manifest(index_dir)
        if model is not None:
            check_model(manifest, model, index_dir, backend)
        try:
            return _open_generation(index_dir, manifest)
        except IndexDamagedError:
            # Two commits between reading the manifest and opening the files remove the
            # generation it named: then the manifest names a newer one, so try that.
            if attempt == 2 or read_manifest(index_dir).generation == manifest.generation:
                raise
    raise AssertionError("unreachable")


def _open_generation(index_dir: Path, manifest: Manifest) -> OpenIndex:
    folder = index_dir / manifest.folder
    if not folder.is_dir():
        raise damaged(index_dir, f"its generation folder {manifest.folder} is missing")
    if not (folder / STORE_FILE).is_file():
        raise damaged(index_dir, f"{STORE_FILE} is missing")
    try:
        store = Store(folder / STORE_FILE, read_only=True)
    except sqlite3.Error as exc:
        raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None
    try:
        chunks, keyword = _verify_store(index_dir, store)
        vectors = _read_vectors(index_dir, folder, manifest)
        _check_agreement(index_dir, chunks, keyword, vectors)
        size = _size_on_disk(index_dir, folder)
    except BaseException:
        store.close()
        raise
    return OpenIndex(index_dir, manifest, store, vectors, size)


def _verify_store(index_dir: Path, store: Store) -> tuple[IdSummary, IdSummary]:
    try:
        return store.verify()
    except IndexDamagedError as exc:
        raise damaged(index_dir, str(exc)) from None
    except sqlite3.Error as exc:
        raise damaged(index_dir, f"{STORE_FILE}: {exc}") from None


def _read_vectors(index_dir: Path, folder: Path, manifest: Manifest) -> VectorIndex:
    path = folder / VECTORS_FILE
    if not path.is_file():
        raise damaged(index_dir, f"{VECTORS_FILE} is missing")
    try:
        vectors = VectorIndex.read(path)
    except RuntimeError as exc:  # FAISS's message is a C++ assertion: for the log only
        logger.debug("cannot read %s: %s", path, exc)
        raise damaged(index_dir, f"{VECTORS_FILE} cannot be read") from None
    except ValueError:  # a FAISS index of a kind citebot does not write
        raise damaged(index_dir, f"{VECTORS_FILE} holds no chunk ids") from None
    if vectors.dimension != manifest.dimension:
        raise damaged(
            index_dir,
            f"{VECTORS_FILE} holds vectors of {vectors.dimension} dimensions, the manifest"
            f" says {manifest.dimension}",
        )
    return vectors


def _check_agreement(
    index_dir: Path, chunks: IdSummary, keyword: IdSummary, vectors: VectorIndex
) -> None:
    """FAISS ids, SQLite chunk rows and keyword index rows: the same set (by fingerprint)."""
    ids = vectors.ids()
    if len(ids) != chunks.count:
        raise damaged(
            index_dir, f"{VECTORS_FILE} holds {len(ids)} vectors for {chunks.count} chunks"
        )
    if len(ids) and (_id_summary(ids) != chunks or _has_duplicates(ids)):
        raise damaged(index_dir, f"the chunk ids of {VECTORS_FILE} and {STORE_FILE} differ")
    if keyword.count != chunks.count:
        raise damaged(
            index_dir, f"the keyword index holds {keyword.count} rows for {chunks.count} chunks"
        )
    if keyword != chunks:
        raise damaged(index_dir, "the keyword index's rows differ from the chunks")


def _id_summary(ids: np.ndarray) -> IdSummary:
    hashed = ids * ID_HASH_FACTOR % ID_HASH_MODULUS
    return IdSummary(len(ids), int(ids.min()), int(ids.max()), int(ids.sum()), int(hashed.sum()))


def _has_duplicates(ids: np.ndarray) -> bool:
    ordered = np.sort(ids)  # several times faster than np.unique here
    return bool((ordered[1:] == ordered[:-1]).any())


def _size_on_disk(index_dir: Path, folder: Path) -> int:
    try:
        files = sum(p.stat().st_size for p in folder.iterdir())
        return files + (index_dir / MANIFEST).stat().st_size
    except OSError as exc:  # a writer removed the folder meanwhile
        raise damaged(index_dir, f"cannot read {folder.name}: {exc.strerror}") from None


# -- writing ----------------------------------------------------------------------------


@dataclass
class GenerationWriter:
    """The next generation being built (an ``IndexWriter``); committed when the
    ``next_generation`` block ends.

    ``vectors`` may be replaced within the block (by ``vectors.adapted(...)``, say); what it
    holds at the end is written, as the kind its size calls for.
    """

    store: Store
    vectors: VectorIndex

    def add_article(
        self, article: Article, content_hash: str, chunks: Sequence[Chunk], root: str | None
    ) -> list[int]:
        return self.store.add_article(article, content_hash, chunks, root)

    def delete_article(self, article_id: str) -> None:
        self.vectors.remove(self.store.delete_article(article_id))

    def set_root(self, article_ids: Iterable[str], root: str) -> None:
        self.store.set_root(article_ids, root)

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        self.vectors.add(list(ids), vectors)

    def add_sentence_vectors(
        self, chunk_id: int, spans: Sequence[tuple[int, int]], vectors: np.ndarray
    ) -> None:
        self.store.add_sentence_vectors(chunk_id, spans, vectors)

    def save_web_resources(self, rows: Iterable[WebResourceRow]) -> None:
        self.store.save_web_resources(rows)

    def forget_web_resources(self, urls: Iterable[str]) -> None:
        self.store.forget_web_resources(urls)

    def group_copies(self) -> int:
        return self.store.copies.update()

    def article(self, article_id: str) -> Article | None:
        return self.store.article(article_id)

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        return self.store.articles_by_id(ids)

    def indexed_articles(self) -> dict[str, IndexedArticle]:
        return self.store.indexed_articles()

    def web_resources(self) -> dict[str, WebResourceRow]:
        return self.store.web_resources()


class GenerationLock:
    """The writer lock of an index folder, held, with the generation to build on (checked).

    Taken before anything slow (reading files, loading a model), so a second writer is
    refused at once; ``next_generation`` then builds and commits the new generation.
    """

    def __init__(
        self,
        index_dir: Path,
        model: str,
        current: int | None,
        previous: OpenIndex | None,
        backend: str = "torch",
    ) -> None:
        self.index_dir = index_dir
        self.model = model
        self.backend = backend
        # The generation the manifest names (0: none; None: unreadable, when rebuilding).
        self.current = current
        # That generation, opened and checked; None for a new index or a rebuild.
        self.previous = previous
        self._used = False

    @contextlib.contextmanager
    def next_generation(
        self,
        dimension: int,
        chunking: ChunkSettings,
        artifact: OnnxModel | None = None,
        vector_settings: VectorSettings | None = None,
    ) -> Iterator[GenerationWriter]:
        """Build the next generation from a copy of the current one; commit it if the block
        succeeds and changed something (a rebuild or a new index always commits).

        ``artifact``: the exported model (ONNX backends), copied into the generation, so the
        index always holds the very model its vectors came from.

        The vector index is written as the kind its new size calls for (``VectorIndex.adapted``
        with ``vector_settings``, the defaults if None).
        """
        if self._used:
            raise RuntimeError("a GenerationLock builds one generation")
        self._used = True
        index_dir, previous = self.index_dir, self.previous
        sha256 = artifact.sha256 if artifact else None
        if previous:
            check_model(previous.manifest, self.model, index_dir, self.backend, sha256)
        if previous and previous.manifest.dimension != dimension:
            raise IndexMismatchError(
                f"index at {index_dir} holds {previous.manifest.dimension}-dimensional vectors"
                f" but the model makes {dimension}: rebuild it with `citebot ingest --rebuild`"
            )
        # Past every folder left over (after a rebuild over an unreadable manifest, too), so
        # no folder a reader may hold is ever reused.
        generation = max([self.current or 0, *_generation_folders(index_dir)]) + 1
        staging = index_dir / f"{STAGING_PREFIX}{generation:06d}"
        final = index_dir / f"{GENERATION_PREFIX}{generation:06d}"
        staging.mkdir()
        store: Store | None = None
        committed = False
        try:
            if previous:
                previous.store.backup_to(staging / STORE_FILE)
                vectors = previous.vectors  # read into memory at open: changing it is private
            else:
                vectors = VectorIndex.empty(dimension)
            store = Store(staging / STORE_FILE)
            _reached("staged")
            writer = GenerationWriter(store, vectors)
            yield writer
            if previous and not store.changed:
                logger.info("nothing changed: %s stays at %s", index_dir, previous.manifest.folder)
                store.close()
                shutil.rmtree(staging)
                return
            store.commit()
            store.close()
            _reached("store-written")
            vectors = writer.vectors.adapted(vector_settings or VectorSettings())
            vectors.write(staging / VECTORS_FILE)
            _reached("vectors-written")
            if artifact is not None:
                artifact.copy_to(staging)
            _fsync_folder(staging)
            _reached("synced")
            manifest = Manifest(
                model=self.model,
                dimension=dimension,
                chunking=asdict(chunking),
                generation=generation,
                created=previous.manifest.created if previous else _now(),
                updated=_now(),
                backend=self.backend,
                quantization=artifact.quantization if artifact else None,
                model_sha256=sha256,
            )
            os.replace(staging, final)
            _reached("renamed")
            _write_atomically(index_dir / MANIFEST, json.dumps(asdict(manifest), indent=2) + "\n")
            committed = True
            _reached("committed")
        except BaseException:
            if store is not None:
                store.close()
            shutil.rmtree(staging, ignore_errors=True)
            if not committed:
                shutil.rmtree(final, ignore_errors=True)
            raise
        _remove_generations(index_dir, keep={generation, generation - 1})
        _reached("cleaned")


@contextlib.contextmanager
def lock_for_writing(
    index_dir: Path, model: str, *, rebuild: bool = False, backend: str = "torch"
) -> Iterator[GenerationLock]:
    """Take the writer lock of ``index_dir``, open and check the current generation to build
    on (none with ``rebuild``), and clean up after any earlier crash.

    Raises CitebotError at once if another writer holds the lock, and IndexDamagedError
    (unless rebuilding) if the current generation is damaged.
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
        _reached("locked")
        current = _current_generation(index_dir, strict=not rebuild)
        # Checked before healing, so a writer refused for damage changes nothing.
        previous = open_index(index_dir, model, backend) if current and not rebuild else None
        try:
            _heal(index_dir, current)
            _reached("healed")
            yield GenerationLock(index_dir, model, current, previous, backend)
        finally:
            if previous:
                previous.close()


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


def _heal(index_dir: Path, current: int | None) -> None:
    """Remove what an interrupted writer left: staging folders, a half-written manifest, and
    generation folders no manifest named. The current generation and the one before it stay
    (a reader may still be opening it); with an unreadable manifest, every generation stays."""
    leftovers = list(index_dir.glob(f"{STAGING_PREFIX}*"))
    if current is not None:
        leftovers += [p for n, p in _generation_folders(index_dir).items() if n > current]
    for path in leftovers:
        logger.warning("removing %s, left by an interrupted ingest", path)
        shutil.rmtree(path, ignore_errors=True)
    (index_dir / MANIFEST).with_suffix(".tmp").unlink(missing_ok=True)
    if current is not None:
        _remove_generations(index_dir, keep={current, current - 1})


def _generation_folders(index_dir: Path) -> dict[int, Path]:
    found = {}
    for path in index_dir.glob(f"{GENERATION_PREFIX}*"):
        number = path.name[len(GENERATION_PREFIX) :]
        if number.isdigit():
            found[int(number)] = path
    return found


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    _reached("manifest-staged")
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_generations(index_dir: Path, keep: set[int]) -> None:
    for number, folder in _generation_folders(index_dir).items():
        if number not in keep:
            logger.debug("removing generation folder %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
