"""A crash lab: kill -9 an ingest at a named commit step or at a random moment, then check
what it left. Used by test_crash.py and by bench/bench_crash.py (which runs 50 moments).

The ingest runs in a subprocess with the fake embedder. A named step is reached through
the index's test hook (``CITEBOT_TEST_KILL_AT``: the process kills itself there); a
random moment is a SIGKILL from this process after a random delay.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from retrieval.config import Settings, VectorSettings
from retrieval.errors import IndexNotFoundError
from retrieval.index import KILL_AT_ENV, MANIFEST, VectorIndex, open_index, read_manifest
from retrieval.index.keywords import quoted
from retrieval.index.store import BODY_WEIGHT, TITLE_WEIGHT, Store
from retrieval.ingest import ingest
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[2]

# Prints "ready" once imported, so that random moments fall within the ingest itself.
WORKER = """
import sys
from dataclasses import replace
from pathlib import Path
from retrieval.config import IngestSettings, Settings, VectorSettings
from retrieval.ingest import ingest
from tests.fakes import FakeEmbedder

index_dir, source, mode, approximate_from, commit_every = sys.argv[1:6]
if mode == "compact":  # every write that changes something compacts after its commit
    import retrieval.index.segments
    retrieval.index.segments.COMPACT_MIN = retrieval.index.segments.COMPACT_SHARE = 0
print("ready", flush=True)
settings = Settings(index_dir=Path(index_dir))
if approximate_from:
    settings = replace(settings, vectors=VectorSettings(approximate_from=int(approximate_from)))
if commit_every:  # commits in batches of that many articles
    settings = replace(settings, ingest=IngestSettings(commit_every_articles=int(commit_every)))
ingest([Path(source)], settings, FakeEmbedder(), prune=True, rebuild=mode == "rebuild")
"""

WORDS = (
    "harbour council ferry library orchestra bakery market river bridge school winter"
    " summer volunteers tickets timetable crossing museum garden festival budget vote"
    " mayor station rain storm repair opening closing members schedule evening morning"
).split()


def write_corpus(folder: Path, version: str, articles: int = 200) -> Path:
    """JSON Lines articles. Version "b" rewrites every other article of version "a",
    drops two and adds two, so an ingest from one to the other adds, updates and prunes."""
    folder.mkdir(parents=True)
    ids = list(range(articles)) if version == "a" else list(range(2, articles + 2))
    lines = []
    for number in ids:
        rng = random.Random(f"{number}-{version if number % 2 else 'a'}")
        paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 60))).capitalize() + "."
            for _ in range(rng.randint(3, 6))
        ]
        title = f"Article {number} " + " ".join(rng.choice(WORDS) for _ in range(3))
        record = {"id": f"a{number}", "title": title, "text": "\n\n".join(paragraphs)}
        lines.append(json.dumps(record))
    for start in range(0, len(lines), 25):
        (folder / f"part-{start // 25:02d}.jsonl").write_text("\n".join(lines[start : start + 25]))
    return folder


def articles_of(index_dir: Path) -> dict[str, str] | None:
    """Article id -> text of the committed generation; None if there is no index."""
    try:
        folder = index_dir / read_manifest(index_dir).folder
    except IndexNotFoundError:
        return None
    db = sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT id, text FROM articles").fetchall())
    finally:
        db.close()


def _state(db: sqlite3.Connection) -> dict[str, str]:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    if "index_state" not in tables:
        return {}  # an index written before segments
    return dict(db.execute("SELECT key, value FROM index_state").fetchall())


def check_consistent(index_dir: Path) -> None:
    """The index opens (with its own checks), and, compared in full here, the live FAISS
    ids (the main file's, less the masked, with the segment's), the SQLite chunk ids and
    the FTS rows are one set with no duplicates."""
    try:
        open_index(index_dir, FakeEmbedder.name).close()
    except IndexNotFoundError:
        return  # nothing was ever committed: an empty folder is a consistent "no index"
    folder = index_dir / read_manifest(index_dir).folder
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        chunks = [r[0] for r in db.execute("SELECT id FROM chunks")]
        keyword = [r[0] for r in db.execute("SELECT rowid FROM chunks_fts")]
        state = _state(db)
        segment, masked = [], set()
        if state:
            segment = [r[0] for r in db.execute("SELECT chunk_id FROM segment_vectors")]
            masked = {r[0] for r in db.execute("SELECT chunk_id FROM masked_chunks")}
    finally:
        db.close()
    main = VectorIndex.read(folder / state.get("vectors_file", "vectors.faiss")).ids().tolist()
    assert len(main) == len(set(main)), "duplicate FAISS ids"
    assert masked <= set(main), "a masked id that the main vector file does not hold"
    vectors = [i for i in main if i not in masked] + segment
    assert len(vectors) == len(set(vectors)), "a segment id that the main file holds too"
    assert set(vectors) == set(chunks) == set(keyword), "FAISS, SQLite and FTS differ"
    assert chunks, "an index from these corpora has chunks"
    check_keyword_statistics(folder / "store.sqlite")


def check_keyword_statistics(path: Path) -> None:
    """BM25 from the index's term statistics (retrieval.index.bm25, as a budgeted keyword
    search ranks) equals FTS5's bm25() over every chunk, for a question of common words."""
    store = Store(path, read_only=True)
    try:
        terms = list(WORDS[:8])
        match = " OR ".join(quoted(t) for t in terms)
        expected = dict(
            store.connection.execute(
                "SELECT rowid, -bm25(chunks_fts, ?, ?) FROM chunks_fts WHERE chunks_fts MATCH ?",
                (TITLE_WEIGHT, BODY_WEIGHT, match),
            ).fetchall()
        )
        ids = [r[0] for r in store.connection.execute("SELECT id FROM chunks")]
        found = store.keyword_scores(" ".join(terms), ids, budget=0)
        assert found.keys() == expected.keys(), "BM25 statistics: other chunks match"
        assert all(
            abs(found[i] - expected[i]) <= 1e-9 * max(1.0, abs(expected[i])) for i in found
        ), "BM25 from the index's statistics differs from FTS5's bm25()"
    finally:
        store.close()


def as_written_before_segments(index_dir: Path) -> None:
    """Turn an index with an empty segment into today's format before segments (schema
    version 1): no segment tables, state or id-sum triggers, a rollback journal; the same
    files otherwise."""
    manifest = json.loads((index_dir / MANIFEST).read_text())
    folder = index_dir / f"gen-{manifest['generation']:06d}"
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        state = _state(db)
        assert state.get("vectors_file", "vectors.faiss") == "vectors.faiss"
        assert not db.execute("SELECT count(*) FROM segment_vectors").fetchone()[0]
        assert not db.execute("SELECT count(*) FROM masked_chunks").fetchone()[0]
        triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        for (trigger,) in triggers.fetchall():
            db.execute(f"DROP TRIGGER {trigger}")
        for table in ("segment_vectors", "masked_chunks", "index_state", "id_sums"):
            db.execute(f"DROP TABLE {table}")
        db.commit()
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("VACUUM")
    finally:
        db.close()
    (index_dir / MANIFEST).write_text(json.dumps({**manifest, "schema_version": 1}, indent=2))


def leftovers(index_dir: Path) -> list[str]:
    """What the next writer must clean: staging folders, a temporary manifest, and
    generation folders other than the manifest's and the one before it."""
    found = [p.name for p in index_dir.glob(".staging-*")]
    found += [p.name for p in index_dir.glob("index.tmp")]
    try:
        current = read_manifest(index_dir).generation
    except IndexNotFoundError:
        current = 0
    kept = {f"gen-{current:06d}", f"gen-{current - 1:06d}"}
    found += [p.name for p in index_dir.glob("gen-*") if p.name not in kept]
    if current:
        folder = index_dir / f"gen-{current:06d}"
        db = sqlite3.connect(folder / "store.sqlite")
        try:
            state = _state(db)
        finally:
            db.close()
        named = {state.get("vectors_file", "vectors.faiss"), state.get("previous_vectors_file")}
        found += [p.name for p in folder.glob("vectors*.faiss") if p.name not in named]
    return sorted(found)


@dataclass(frozen=True)
class Outcome:
    killed: bool  # died by SIGKILL (a random moment may come after the ingest finished)
    # Which articles the index holds afterwards: "before", "after", "none", or "partial"
    # (some batches of a write committed in batches).
    state: str
    leftovers: tuple[str, ...]  # what the crash left for the next writer to clean
    seconds: float  # from the worker's "ready" to its end


class CrashLab:
    """Two versions of a corpus, what an index of each holds, and a ready index of "a".

    With ``approximate_from``, every ingest writes the approximate vector index from that
    many chunks on (VectorSettings), so that its writes are crash-tested too.
    """

    def __init__(
        self, folder: Path, articles: int = 200, approximate_from: int | None = None
    ) -> None:
        self.folder = folder
        self.approximate_from = approximate_from
        self.settings = Settings()
        if approximate_from:
            self.settings = replace(
                self.settings, vectors=VectorSettings(approximate_from=approximate_from)
            )
        self.corpora = {v: write_corpus(folder / f"corpus-{v}", v, articles) for v in "ab"}
        self.expected: dict[str, dict[str, str]] = {}
        for version, corpus in self.corpora.items():
            index_dir = folder / f"reference-{version}"
            ingest([corpus], self.settings.with_index(index_dir), FakeEmbedder())
            self.expected[version] = articles_of(index_dir) or {}
        assert self.expected["a"] != self.expected["b"]

    def index_of(self, version: str, index_dir: Path, *, before_segments: bool = False) -> Path:
        """A fresh copy of an index holding ``version`` (in today's format before segments
        with ``before_segments``)."""
        shutil.copytree(self.folder / f"reference-{version}", index_dir)
        if before_segments:
            as_written_before_segments(index_dir)
        return index_dir

    def state(self, index_dir: Path, before: str | None, after: str) -> str:
        held = articles_of(index_dir)
        if held is None:
            return "none"
        if held == self.expected[after]:
            return "after"
        if before and held == self.expected[before]:
            return "before"
        if self.is_partial(held, before, after):
            return "partial"
        raise AssertionError("the index holds neither the old nor the new articles")

    def is_partial(self, held: dict[str, str], before: str | None, after: str) -> bool:
        """What a write committed in batches may leave: every old article still there
        (removals come only at the end), each article as it was or as it is now (a first
        ingest: some of the new articles)."""
        old, new = self.expected[before] if before else {}, self.expected[after]
        return set(old) <= set(held) and all(
            text in (old.get(article_id), new.get(article_id)) for article_id, text in held.items()
        )

    def crash(
        self,
        index_dir: Path,
        before: str | None,
        after: str,
        *,
        kill_at: str | None = None,
        kill_after: float | None = None,
        rebuild: bool = False,
        compact: bool = False,
        commit_every: int | None = None,
    ) -> Outcome:
        """Ingest version ``after`` into ``index_dir`` (holding ``before``), killed at the
        named step or after ``kill_after`` seconds; then check the index is consistent.
        With ``compact``, the write compacts the index after its commit; with
        ``commit_every``, it commits in batches of that many articles."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if kill_at:
            env[KILL_AT_ENV] = kill_at
        mode = "rebuild" if rebuild else "compact" if compact else "update"
        source = str(self.corpora[after])
        command = [
            *(sys.executable, "-c", WORKER, str(index_dir), source, mode),
            str(self.approximate_from or ""),
            str(commit_every or ""),
        ]
        with subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
            started = time.perf_counter()
            if kill_after is not None:
                try:
                    process.wait(timeout=kill_after)
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
            process.wait(timeout=120)
            seconds = time.perf_counter() - started
            errors = process.stderr.read()
        killed = process.returncode == -signal.SIGKILL
        assert killed or process.returncode == 0, errors
        found = tuple(leftovers(index_dir))
        check_consistent(index_dir)
        return Outcome(killed, self.state(index_dir, before, after), found, seconds)

    def recover(self, index_dir: Path, version: str, *, rebuild: bool = False) -> None:
        """The next ingest (a rebuild: one that resumes or removes what a killed rebuild
        staged) succeeds, holds ``version``, and leaves nothing behind."""
        settings = self.settings.with_index(index_dir)
        ingest([self.corpora[version]], settings, FakeEmbedder(), prune=True, rebuild=rebuild)
        check_consistent(index_dir)
        assert self.state(index_dir, None, version) == "after"
        assert leftovers(index_dir) == []
        assert (index_dir / MANIFEST).is_file()
