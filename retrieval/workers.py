"""Parse files in worker processes, each within a time and a memory limit.

Whatever one file does to its parser (loops, balloons, crashes, raises anything at all)
costs only that file: it comes back as a Problem naming the file and the reason, and
the next file is read by a fresh worker. Workers start from a fork server launched
before anything else runs in it (never forked from a process whose model threads are
running), with the parsing modules preloaded, so a new worker costs milliseconds.

Results come back in the order of the files, as an iterator, a few files ahead of the
consumer, so reading overlaps with whatever the consumer does with the articles.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from .config import IngestSettings
from .errors import LoadError
from .loaders import Loaded, SourceFile, load_file
from .records import Problem

logger = logging.getLogger(__name__)

# Modules every worker needs, imported once in the fork server.
_PRELOAD = ["retrieval.loaders", "yaml", "trafilatura"]
# Files handed to the workers ahead of the one being returned, per worker.
_AHEAD_PER_WORKER = 4


def load_files(
    files: Iterable[SourceFile], limits: IngestSettings
) -> Iterator[tuple[SourceFile, Loaded | Problem]]:
    """Each file with its articles, or with the problem that stopped it, in order."""
    if limits.workers == 0:
        for file in files:
            yield file, load_safely(file, limits)
        return
    with _pool(limits) as pool:
        yield from pool.read(files, limits)


# Workers are kept for the life of the process: starting one costs a fork and the
# imports of the main module (a fraction of a second), so a second ingest (the bot's
# /reindex, a test suite) starts reading at once.
_pools: dict[int, _Pool] = {}
_pools_lock = threading.Lock()


@contextlib.contextmanager
def _pool(limits: IngestSettings) -> Iterator[_Pool]:
    """The process's pool for this memory limit, or, while another thread reads with it,
    a pool of this thread's own."""
    key = limits.max_parse_memory_mb
    with _pools_lock:
        pool = _pools.setdefault(key, _Pool(limits.max_parse_memory_mb))
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


def load_safely(file: SourceFile, limits: IngestSettings) -> Loaded | Problem:
    """``load_file``, with any exception at all turned into a Problem for the file."""
    try:
        return load_file(file, limits)
    except LoadError as exc:
        return Problem(file.name, str(exc))
    except MemoryError:
        return Problem(file.name, _memory_message(limits))
    except RecursionError:
        return Problem(file.name, "nested too deeply to read")
    except Exception as exc:  # any bug or library error is this file's problem only
        logger.debug("reading %s failed", file.name, exc_info=True)
        return Problem(file.name, f"cannot be read: {type(exc).__name__}: {_one_line(exc)}")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _memory_message(limits: IngestSettings) -> str:
    return (
        f"needs more than {limits.max_parse_memory_mb:,} MB to read ([ingest] max_parse_memory_mb)"
    )


class _Worker:
    """One parsing process and the pipe to it; it reads one file at a time."""

    def __init__(self, context: multiprocessing.context.BaseContext, memory_mb: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, memory_mb), name="citebot-reader", daemon=True
        )
        self.process.start()
        child.close()
        # The file being read: its position in the order, and when its time is up.
        self.task: tuple[int, SourceFile] | None = None
        self.deadline = 0.0

    def give(self, number: int, file: SourceFile, limits: IngestSettings) -> None:
        self.conn.send((file, limits))
        self.task = (number, file)
        self.deadline = time.monotonic() + limits.max_seconds_per_file

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def close(self) -> None:
        """Ask an idle worker to finish; kill one that does not (or is busy)."""
        if self.task is None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _serve(conn: Connection, memory_mb: int) -> None:
    """A worker's loop: read each file it is given, send back articles or a problem."""
    _limit_memory(memory_mb)
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


class _Pool:
    """Parsing workers, started as needed and replaced when one is killed."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()  # one reader at a time

    def read(
        self, files: Iterable[SourceFile], limits: IngestSettings
    ) -> Iterator[tuple[SourceFile, Loaded | Problem]]:
        """Files handed out to up to ``limits.workers`` workers, a few ahead of the
        caller; results given back in the files' order."""
        ahead = limits.workers * _AHEAD_PER_WORKER
        remaining = iter(files)
        waiting: deque[tuple[int, SourceFile]] = deque()  # taken, not yet handed out
        done: dict[int, tuple[SourceFile, Loaded | Problem]] = {}
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
                while waiting and (worker := self._idle_worker(limits.workers)):
                    worker.give(*waiting.popleft(), limits)
                for worker, result in _wait_for_results(self.workers, limits):
                    assert worker.task is not None
                    number, file = worker.task
                    worker.task = None
                    if isinstance(result, _Lost):
                        self.workers.remove(worker)  # killed: a fresh one reads the next file
                        result = result.problem
                    done[number] = (file, result)
        finally:
            # A reader that stopped early leaves no file half read for the next one.
            for worker in [w for w in self.workers if w.task is not None]:
                worker.kill()
                self.workers.remove(worker)

    def _idle_worker(self, most: int) -> _Worker | None:
        idle = next((w for w in self.workers if w.task is None), None)
        if idle is None and len(self.workers) < most:
            idle = _Worker(_context(), self.memory_mb)
            self.workers.append(idle)
        return idle

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers.clear()


@dataclass(frozen=True)
class _Lost:
    """A worker that had to be killed, or died, while reading a file."""

    problem: Problem


def _wait_for_results(
    workers: list[_Worker], limits: IngestSettings
) -> list[tuple[_Worker, Loaded | Problem | _Lost]]:
    """Wait until a busy worker sends its result, dies, or runs out of time."""
    busy = [w for w in workers if w.task is not None]
    if not busy:
        return []
    timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
    ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
    finished: list[tuple[_Worker, Loaded | Problem | _Lost]] = []
    now = time.monotonic()
    for worker in busy:
        assert worker.task is not None
        name = worker.task[1].name
        if worker.conn in ready:
            try:
                finished.append((worker, worker.conn.recv()))
                continue
            except (EOFError, OSError):
                pass  # it died: told below
        if worker.conn in ready or worker.process.sentinel in ready:
            worker.kill()
            code = worker.process.exitcode
            how = f"was killed by signal {-code}" if code and code < 0 else f"exited ({code})"
            reason = f"its reader {how} (out of memory, or a crash in a library); not read"
            finished.append((worker, _Lost(Problem(name, reason))))
        elif now >= worker.deadline:
            worker.kill()
            reason = (
                f"took longer than {limits.max_seconds_per_file:g} s to read"
                " ([ingest] max_seconds_per_file)"
            )
            finished.append((worker, _Lost(Problem(name, reason))))
    return finished


def _context() -> multiprocessing.context.BaseContext:
    """A fork server (or, where there is none, spawn): never a plain fork of this process,
    which may have model threads running."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Applies when the fork server starts (once a process): workers inherit the imports.
    context.set_forkserver_preload(_PRELOAD)
    return context


def _limit_memory(megabytes: int) -> None:
    """Let this worker grow by at most ``megabytes`` of address space: past that an
    allocation fails (MemoryError) instead of the machine running out of memory."""
    import resource

    try:
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + megabytes * 1024 * 1024
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError) as exc:  # no /proc: run without the cap, but say so
        logger.warning("cannot cap the memory of a parsing worker: %s", exc)
