"""Readers and writers at once: a second writer is refused at once, and readers opening
and using the index while commits go on never fail."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from retrieval.config import Settings
from retrieval.ingest import ingest
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS

REPO = Path(__file__).parent.parent.parent

# The real command, reporting whether the model's library was ever imported.
CLI = """
import sys
from retrieval.cli import main
try:
    main()
finally:
    print("model library imported:", "sentence_transformers" in sys.modules, file=sys.stderr)
"""


def test_a_second_ingest_command_fails_before_loading_the_model(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    with open(index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another ingest is running
        result = subprocess.run(
            [sys.executable, "-c", CLI, "ingest", str(CORPUS), "--index", str(index_dir)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
    assert result.returncode == 1
    first, second = result.stderr.strip().splitlines()
    assert first.startswith("Error: another ingest is writing")
    assert second == "model library imported: False"


def test_readers_never_fail_while_commits_go_on(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    corpus = tmp_path / "articles"
    corpus.mkdir()
    ferry = corpus / "ferry.txt"
    ferry.write_text((CORPUS / "ferry.txt").read_text(), encoding="utf-8")
    ingest([corpus], settings, FakeEmbedder())
    done = threading.Event()
    failures: list[BaseException] = []
    opened: list[int] = []

    def read() -> None:
        held: list[Searcher] = []
        while not done.is_set():
            try:
                searcher = Searcher.open(settings, FakeEmbedder())
                opened.append(searcher.index.version)
                held.append(searcher)
                # Searchers opened earlier, whose folders later commits remove, keep working.
                for old in held[-5:]:
                    old.search("ferry crossings")
                    old.stats()
                if len(held) > 5:
                    held.pop(0).close()
            except BaseException as exc:  # any failure is the finding
                failures.append(exc)
                return
        for searcher in held:
            searcher.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(12):
            ferry.write_text(ferry.read_text() + f"\nRound {round_}.\n", encoding="utf-8")
            ingest([corpus], settings, FakeEmbedder())
    finally:
        done.set()
        reader.join()
    assert not failures, failures
    assert len(set(opened)) > 3, "the reader saw several versions"
