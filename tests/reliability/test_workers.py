"""The parsing workers: results in order, a fresh worker after a kill, and a fallback."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from retrieval.config import IngestSettings
from retrieval.files import SourceFile
from retrieval.loaders import Loaded
from retrieval.records import Problem
from retrieval.workers import load_files
from tests.helpers import CORPUS


def corpus_files() -> list[SourceFile]:
    return [SourceFile(p, p.name) for p in sorted(CORPUS.iterdir())]


def test_results_come_back_in_the_order_of_the_files() -> None:
    files = corpus_files() * 5
    results = list(load_files(files, IngestSettings(workers=2)))
    assert [f for f, _ in results] == files
    assert all(isinstance(r, Loaded) for _, r in results)
    in_process = [r for _, r in load_files(files, IngestSettings(workers=0))]
    assert [r for _, r in results] == in_process


def test_after_a_file_times_out_the_next_files_are_still_read(tmp_path: Path) -> None:
    slow = tmp_path / "slow.html"
    slow.write_text("<html><body>" + "<div><p>Filler text.</p></div>" * 200_000 + "</body></html>")
    files = [SourceFile(slow, "slow.html"), *corpus_files()]
    # A memory limit of its own gives this test a pool of its own.
    limits = IngestSettings(workers=1, max_seconds_per_file=0.5, max_parse_memory_mb=999)
    results = dict(load_files(files, limits))
    assert results[files[0]] == Problem(
        "slow.html", "took longer than 0.5 s to read ([ingest] max_seconds_per_file)"
    )
    assert all(isinstance(results[f], Loaded) for f in files[1:])


def test_when_no_worker_can_start_files_are_read_in_this_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every worker exits at once
    limits = IngestSettings(workers=2, max_parse_memory_mb=998)
    with caplog.at_level(logging.WARNING, logger="retrieval.workers"):
        results = list(load_files(corpus_files(), limits))
    assert all(isinstance(r, Loaded) for _, r in results)
    assert "reading files in this process, without the time and memory limits" in caplog.text
