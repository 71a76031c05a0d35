"""The read-ahead worker: order kept, bounded, errors raised in place, stops when abandoned."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import pytest

from retrieval.web.prefetch import prefetch


def test_items_come_in_order_and_the_work_runs_ahead_in_another_thread() -> None:
    made: list[tuple[int, float]] = []
    threads: set[str] = set()

    def produce() -> Generator[int, None, None]:
        for n in range(5):
            threads.add(threading.current_thread().name)
            made.append((n, time.monotonic()))
            yield n

    reader = prefetch(produce, ahead=2)
    assert next(reader) == 0
    time.sleep(0.2)
    # While the consumer was busy, the worker made the next items, but no more than allowed.
    assert len(made) in (3, 4)
    assert list(reader) == [1, 2, 3, 4]
    assert threads == {"citebot-prefetch"}


def test_an_error_in_the_worker_is_raised_where_it_happened() -> None:
    def produce() -> Generator[int, None, None]:
        yield 1
        raise ValueError("boom")

    reader = prefetch(produce, ahead=4)
    assert next(reader) == 1
    with pytest.raises(ValueError, match="boom"):
        next(reader)


def test_a_consumer_that_stops_early_stops_the_worker() -> None:
    produced = []

    def produce() -> Generator[int, None, None]:
        for n in range(1000):
            produced.append(n)
            yield n

    reader = prefetch(produce, ahead=2)
    assert next(reader) == 0
    reader.close()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count < 10
