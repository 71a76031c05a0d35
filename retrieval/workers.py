"""Parse files in worker processes, each file within a time and a memory limit.

A "file" here is a ``SourceFile`` on disk or any ``Document``: a page, PDF or feed
entry fetched from the web (``retrieval.web.documents``), so both get the same limits.

Whatever one file does to its parser (loops, balloons, crashes, raises anything at all)
costs only that file: it comes back as a Problem naming the file and the reason, and
the next file is read by a fresh worker. A worker is a new interpreter
(``python -m retrieval.workers``), never a fork of this process (whose model threads may
be running, and whose main module may not even be importable); it talks to this process
over a socket, and its own output goes nowhere near ours.

Workers are kept for the life of the process, so a second ingest (the bot's /reindex,
a test suite) starts reading at once. Results come back in the order of the files, as
an iterator, a few files ahead of the consumer, so reading overlaps with whatever the
consumer does with the articles.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Protocol, TypeVar

from .config import IngestSettings
from .errors import LoadError, unreadable
from .files import SourceFile
from .loaders import Loaded, load_file
from .records import Problem

logger = logging.getLogger(__name__)

# Files handed to the workers ahead of the one being returned, per worker.
_AHEAD_PER_WORKER = 4
# A worker that has not said it is ready by then is taken as unable to start.
_START_SECONDS = 60.0
_READY = "ready"


class Document(Protocol):
    """Something to parse in a worker: picklable, named as its problems are."""

    @property
    def name(self) -> str: ...

    def load(self, limits: IngestSettings) -> Loaded:
        """Its articles; LoadError when none can be had."""
        ...


D = TypeVar("D", bound=Document | SourceFile)


def load_files(files: Iterable[D], limits: IngestSettings) -> Iterator[tuple[D, Loaded | Problem]]:
    """Each file with its articles, or with the problem that stopped it, in order."""
    if limits.workers == 0:
        for file in files:
            yield file, load_safely(file, limits)
        return
    with _pool(limits) as pool:
        yield from pool.read(files, limits)


@contextlib.contextmanager
def parsing(limits: IngestSettings) -> Iterator[Callable[[Document], Loaded | Problem]]:
    """A function that parses one document at a time in the pool (held for the block),
    for callers that find documents one by one (a web crawl)."""
    if limits.workers == 0:
        yield lambda document: load_safely(document, limits)
        return
    with _pool(limits) as pool:

        def parse(document: Document) -> Loaded | Problem:
            results = pool.read([document], limits)
            try:
                return next(results)[1]
            finally:
                results.close()

        yield parse


def load_safely(file: Document | SourceFile, limits: IngestSettings) -> Loaded | Problem:
    """Its articles (``load_file`` for a file on disk, else ``file.load``), with any
    exception at all turned into a Problem for the file."""
    try:
        return load_file(file, limits) if isinstance(file, SourceFile) else file.load(limits)
    except LoadError as exc:
        return Problem(file.name, str(exc))
    except MemoryError:
        return Problem(file.name, _memory_message(limits))
    except RecursionError:
        return Problem(file.name, "nested too deeply to read")
    except Exception as exc:  # any bug or library error is this file's problem only
        logger.debug("reading %s failed", file.name, exc_info=True)
        return Problem(file.name, unreadable(exc))


def _memory_message(limits: IngestSettings) -> str:
    return (
        f"needs more than {limits.max_parse_memory_mb:,} MB to read ([ingest] max_parse_memory_mb)"
    )


# -- the pool ------------------------------------------------------------------------------

_pools: dict[int, _Pool] = {}
_pools_lock = threading.Lock()


@atexit.register
def _close_pools() -> None:
    """Workers end with the process (and are waited for, not left to be reaped by init)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


@contextlib.contextmanager
def _pool(limits: IngestSettings) -> Iterator[_Pool]:
    """The process's pool for this memory limit, or, while another thread reads with it,
    a pool of this thread's own."""
    with _pools_lock:
        pool = _pools.setdefault(limits.max_parse_memory_mb, _Pool(limits.max_parse_memory_mb))
        shared = pool.lock.acquire(blocking=False)
    if not shared:
        pool = _Pool(limits.max_parse_memory_mb)
    try:
        yield pool
    finally:
        if shared:
            pool.lock.release()
        else:
            pool.close()


class _Worker:
    """One parsing process and the socket to it; it reads one file at a time."""

    def __init__(self, memory_mb: int) -> None:
        ours, theirs = socket.socketpair()
        # The worker imports this very copy of the package, wherever the caller found it.
        package_parent = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "retrieval.workers", str(theirs.fileno()), str(memory_mb)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
            )
        self.conn = Connection(ours.detach())
        self.ready = False
        self.started = time.monotonic()
        # The file being read: its position in the order, and when its time is up.
        self.task: tuple[int, Document | SourceFile] | None = None
        self.deadline = 0.0

    def give(self, number: int, file: Document | SourceFile, limits: IngestSettings) -> None:
        self.conn.send((file, limits))
        self.task = (number, file)
        self.deadline = time.monotonic() + limits.max_seconds_per_file

    def how_it_ended(self) -> str:
        code = self.process.poll()
        if code is not None and code < 0:
            return f"was killed by signal {-code}"
        return f"exited ({code})"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.conn.close()

    def close(self) -> None:
        """Ask an idle worker to finish; kill one that does not (or is busy)."""
        if self.task is None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.conn.close()


@dataclass(frozen=True)
class _Lost:
    """A worker that had to be killed, or died, while reading a file."""

    problem: Problem


class _Pool:
    """Parsing workers, started as needed and replaced when one is killed."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()  # one reader at a time
        # Why workers cannot start here (then files are read in this process).
        self.broken: str | None = None

    def read(
        self, files: Iterable[D], limits: IngestSettings
    ) -> Generator[tuple[D, Loaded | Problem], None, None]:
        """Files handed out to up to ``limits.workers`` workers, a few ahead of the
        caller; results given back in the files' order."""
        ahead = limits.workers * _AHEAD_PER_WORKER
        remaining = iter(files)
        waiting: deque[tuple[int, D]] = deque()  # taken, not yet handed out
        done: dict[int, tuple[D, Loaded | Problem]] = {}
        handed: dict[int, D] = {}  # with a worker
        taken = returned = 0
        exhausted = False
        try:
            while True:
                while not exhausted and taken - returned < ahead:
                    file = next(remaining, None)
                    if file is None:
                        exhausted = True
                    else:
                        waiting.append((taken, file))
                        taken += 1
                if returned in done:
                    yield done.pop(returned)
                    returned += 1
                    continue
                if exhausted and returned == taken:
                    return
                if self.broken and waiting:
                    number, file = waiting.popleft()
                    done[number] = (file, load_safely(file, limits))
                    continue
                while waiting and (worker := self._free_worker(limits.workers)):
                    try:
                        worker.give(*waiting[0], limits)
                    except OSError:  # it died before taking the file: try another
                        self._drop(worker)
                        continue
                    number, file = waiting.popleft()
                    handed[number] = file
                for worker, result in self._wait(limits):
                    assert worker.task is not None
                    number = worker.task[0]
                    file = handed.pop(number)
                    worker.task = None
                    if isinstance(result, _Lost):
                        self._drop(worker)  # a fresh worker reads the next file
                        result = result.problem
                    done[number] = (file, result)
        finally:
            # A reader that stopped early leaves no file half read for the next one.
            for worker in [w for w in self.workers if w.task is not None]:
                self._drop(worker)

    def _free_worker(self, most: int) -> _Worker | None:
        """A ready worker with nothing to do; else start one, if there may be more."""
        free = next((w for w in self.workers if w.ready and w.task is None), None)
        if free is None and len(self.workers) < most and not self.broken:
            try:
                self.workers.append(_Worker(self.memory_mb))
            except OSError as exc:
                self._give_up(f"cannot start a parsing worker: {exc}")
        return free

    def _wait(self, limits: IngestSettings) -> list[tuple[_Worker, Loaded | Problem | _Lost]]:
        """Wait until a worker is ready, sends a result, dies, or runs out of time."""
        if not self.workers:
            return []
        now = time.monotonic()
        deadlines = [w.deadline if w.task else w.started + _START_SECONDS for w in self.workers]
        ready = set(wait([w.conn for w in self.workers], max(0.0, min(deadlines) - now)))
        finished: list[tuple[_Worker, Loaded | Problem | _Lost]] = []
        now = time.monotonic()
        for worker in list(self.workers):
            message: object = None
            if worker.conn in ready:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    message = None  # it died
            if not worker.ready:
                if message == _READY:
                    worker.ready = True
                elif worker.conn in ready or now >= worker.started + _START_SECONDS:
                    self._drop(worker)
                    self._give_up(f"a parsing worker {worker.how_it_ended()} while starting")
                continue
            if worker.task is None:
                if worker.conn in ready:  # an idle worker died
                    self._drop(worker)
                continue
            name = worker.task[1].name
            if isinstance(message, Loaded | Problem):
                finished.append((worker, message))
            elif worker.conn in ready:
                worker.kill()
                reason = (
                    f"its reader {worker.how_it_ended()} (out of memory, or a crash in a"
                    " library); not read"
                )
                finished.append((worker, _Lost(Problem(name, reason))))
            elif now >= worker.deadline:
                worker.kill()
                reason = (
                    f"took longer than {limits.max_seconds_per_file:g} s to read"
                    " ([ingest] max_seconds_per_file)"
                )
                finished.append((worker, _Lost(Problem(name, reason))))
        return finished

    def _drop(self, worker: _Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.process.poll() is None:
            worker.kill()
        else:
            worker.conn.close()

    def _give_up(self, reason: str) -> None:
        if not self.broken:
            logger.warning(
                "%s; reading files in this process, without the time and memory limits", reason
            )
        self.broken = reason

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers.clear()


# -- the worker's side ---------------------------------------------------------------------


def _limit_memory(megabytes: int) -> None:
    """Let this worker grow by at most ``megabytes`` of address space: past that an
    allocation fails (MemoryError) instead of the machine running out of memory."""
    import resource

    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _serve(fd: int, memory_mb: int) -> None:
    """A worker's life: say it is ready, then read each file it is given and send back
    its articles or a problem, until told to stop."""
    conn = Connection(fd)
    # Imported before the memory cap, so they do not count against a file's share.
    import trafilatura  # noqa: F401
    import yaml  # noqa: F401

    with contextlib.suppress(OSError, ValueError):  # no /proc: no cap
        _limit_memory(memory_mb)
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        file, limits = task
        result = load_safely(file, limits)
        try:
            conn.send(result)
        except Exception as exc:  # a result that cannot be sent (too large for memory, say)
            conn.send(Problem(file.name, f"cannot be read: {type(exc).__name__}"))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
