"""Run a generator in a worker thread, a bounded number of items ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

T = TypeVar("T")


class _Done:
    """The end of the items."""


_DONE = _Done()
# How often a blocked worker checks whether the consumer has gone away.
_POLL_SECONDS = 0.1


def prefetch(produce: Callable[[], Generator[T, None, None]], ahead: int) -> Iterator[T]:
    """The items of ``produce()``, made in a worker thread at most ``ahead`` items early.

    An exception in the worker is raised here, at the point it happened in the sequence.
    When the consumer stops early (closes this generator), the worker stops at its next item.
    """
    items: queue.Queue[T | _Failure | _Done] = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def put(item: T | _Failure | _Done) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        made = produce()
        try:
            for item in made:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
            return
        finally:
            made.close()  # runs its cleanup (finally blocks) in this thread
        put(_DONE)

    worker = threading.Thread(target=work, name="citebot-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _Done):
                break
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
