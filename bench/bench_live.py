"""Live-update benchmark: single-article writes into a big index, against a baseline release
in the same run, and questions asked while writes go on.

    .venv/bin/python bench/bench_live.py --index bench/results/scale/index \\
        --corpus ../shared/corpus/bbc-news --baseline-tree /tmp/citebot-baseline \\
        --questions ../shared/eval/xquad-en/questions-dev.jsonl

--index is an index of any size (bench_scale's million chunks, say), in today's format or
the one before segments. Each code tree (this checkout, and --baseline-tree: a checkout of
the release to compare, e.g. ``git archive <commit> | tar -x -C DIR``) writes to its own
copy of it, in a worker process of its own that holds the index's model, as a server
(the bot, the planned push API) would. Timed, each write end to end through the library
(ingest, embedding included), with the bytes the index folder grew by (the store, its
write-ahead log, the vector files):

  - the first write (for this tree: the upgrade of an index written before segments);
  - an unchanged sync of a 50-file folder (already indexed);
  - adding one ~800-word BBC article as a new file; replacing it (its text changed);
  - deleting one article (through the writer: ingest deletes only by pruning a root).

Then, with --stream N, this tree only: N single-article writes in a row (adds, replaces and
deletes in turn) while another process asks --rate questions a second and follows the
index as the bot does (is_current every --follow seconds, reopening with the main vector
file shared); question and write latency percentiles, failed questions, how long each
write took to reach the reader, and the disk before and after a compaction against the
index's own size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# Questions asked before the stream of writes starts: their latency is its baseline.
QUIET_SECONDS = 30

# Runs in the tree under test (PYTHONPATH): reads one JSON command a line, answers one.
WORKER = r"""
import json, sys, time
from pathlib import Path
from retrieval.config import Settings
try:
    from retrieval.models import load_embedder
except ImportError:  # the release before the storage seam
    from retrieval.embedding import load_embedder
from retrieval.index import lock_for_writing, read_manifest
from retrieval.ingest import ingest

index_dir = Path(sys.argv[1])
settings = Settings(index_dir=index_dir)
spent = [0.0]  # seconds in the model, so a write's own cost shows beside the embedding's


def timed(embedder):
    for name in ("embed", "embed_with_spans"):
        method = getattr(embedder, name, None)
        if method is not None:
            def wrapper(*args, _method=method, **kwargs):
                started = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - started
            setattr(embedder, name, wrapper)
    return embedder


embedder = timed(load_embedder(settings))
embedder.embed(["warm up"])


def disk():
    return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())


def delete(article_id):
    manifest = read_manifest(index_dir)
    with lock_for_writing(index_dir, manifest.model, backend=manifest.backend) as lock:
        write = getattr(lock, "transaction", None) or lock.next_generation
        with write(manifest.dimension, settings.chunking, embedder.artifact, settings.vectors) as w:
            if hasattr(w, "delete_article"):
                w.delete_article(article_id)
            else:  # the release before the storage seam
                w.vectors.remove(w.store.delete_article(article_id))


print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    artifact = getattr(embedder, "artifact", None)
    if artifact is not None and not artifact.folder.exists():
        # The release before segments removes the generation folder the model was loaded
        # from two writes later, and then cannot copy it: load it again (not timed).
        embedder = timed(load_embedder(settings))
        embedder.embed(["warm up"])
    before = disk()
    spent[0] = 0.0
    started = time.perf_counter()
    if command["op"] == "ingest":
        report = ingest([Path(p) for p in command["paths"]], settings, embedder)
        done = {"added": report.added, "updated": report.updated, "chunks": report.chunks_embedded}
    elif command["op"] == "delete":
        delete(command["id"])
        done = {}
    elif command["op"] == "compact":
        from retrieval.index import compact
        manifest = read_manifest(index_dir)
        with lock_for_writing(index_dir, manifest.model, backend=manifest.backend) as lock:
            result = compact(index_dir, lock.manifest, settings.vectors, force=True)
        done = {"compaction": result.describe() if result else None}
    seconds = time.perf_counter() - started
    print(json.dumps({**done, "seconds": seconds, "embedding": spent[0], "disk_before": before, "disk_after": disk()}), flush=True)
"""

# Asks questions at a steady rate while following the index; prints a JSON summary at the end.
READER = r"""
import json, sys, threading, time
from pathlib import Path
from retrieval.config import Settings
from retrieval.models import load_embedder
from retrieval.search import Searcher

index_dir, questions_file, rate, follow, seconds_file = sys.argv[1:6]
rate, follow = float(rate), float(follow)
questions = [json.loads(l)["question"] for l in Path(questions_file).read_text().splitlines() if l.strip()]
settings = Settings(index_dir=Path(index_dir))
embedder = load_embedder(settings)
searcher = Searcher.open(settings, embedder)
for q in questions[:10]:
    searcher.search(q)
stop = threading.Event()
seen = []  # (time the reader switched, version)
reopen_seconds = []


def follow_index():
    global searcher
    while not stop.wait(follow):
        if not searcher.is_current():
            t = time.perf_counter()
            newer = searcher.reopened()
            reopen_seconds.append(time.perf_counter() - t)
            old, searcher = searcher, newer
            seen.append((time.time(), newer.index.version))
            threading.Timer(5.0, old.close).start()


threading.Thread(target=follow_index, daemon=True).start()
print("ready", flush=True)
latencies, asked_at, failures = [], [], 0
number = 0
next_at = time.perf_counter()
while not Path(seconds_file).exists():
    next_at += 1.0 / rate
    pause = next_at - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    t = time.perf_counter()
    try:
        searcher.search(questions[number % len(questions)])
    except Exception as exc:
        failures += 1
        print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    latencies.append((time.perf_counter() - t) * 1000)
    asked_at.append(time.time())
    number += 1
stop.set()
print(json.dumps({"latencies": latencies, "asked_at": asked_at, "failures": failures, "seen": seen,
                  "reopen_seconds": reopen_seconds}), flush=True)
"""


class Worker:
    def __init__(self, tree: Path, index_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index_dir)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin and self.process.stdout
        assert json.loads(self.process.stdout.readline())["ready"]

    def __call__(self, **command: object) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the worker died")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=60)


def article_files(corpus: Path, words: tuple[int, int], count: int) -> list[Path]:
    """BBC articles of about ``words`` words."""
    found = []
    for path in sorted(corpus.rglob("*.txt")):
        if words[0] <= len(path.read_text(errors="replace").split()) <= words[1]:
            found.append(path)
        if len(found) == count:
            break
    return found


def copy_article(source: Path, folder: Path, name: str, change: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_text(source.read_text(errors="replace") + change)
    return target


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def single_writes(tree: Path, index_dir: Path, corpus: Path, work: Path, rounds: int) -> dict:
    """The single-article write figures of one code tree, on its own copy of the index."""
    worker = Worker(tree, index_dir)
    try:
        folder50 = work / "folder50"
        if not folder50.exists():
            for number, path in enumerate(article_files(corpus, (200, 2000), 50)):
                copy_article(path, folder50, f"f{number:02d}.txt")
        first = worker(op="ingest", paths=[str(folder50)])
        unchanged = [worker(op="ingest", paths=[str(folder50)]) for _ in range(rounds)]
        sources = article_files(corpus, (750, 850), rounds)
        adds, replaces, deletes = [], [], []
        for number, source in enumerate(sources):
            single = work / f"single-{number}"
            shutil.rmtree(single, ignore_errors=True)
            path = copy_article(source, single, "article.txt")
            size = len(path.read_bytes())
            adds.append({**worker(op="ingest", paths=[str(path)]), "size": size})
            copy_article(source, single, "article.txt", "\n\nThis article was corrected.\n")
            replaces.append({**worker(op="ingest", paths=[str(path)]), "size": size})
            deletes.append(worker(op="delete", id="article.txt"))
        return {
            "first": first,
            "unchanged": unchanged,
            "adds": adds,
            "replaces": replaces,
            "deletes": deletes,
        }
    finally:
        worker.close()


def print_writes(name: str, figures: dict) -> None:
    def row(label: str, runs: list[dict], size: bool = False) -> None:
        seconds = [r["seconds"] for r in runs]
        own = [r["seconds"] - r.get("embedding", 0.0) for r in runs]
        grown = [r["disk_after"] - r["disk_before"] for r in runs]
        extra = ""
        if size:
            extra = f"  (article {median([r['size'] for r in runs]) / 1e3:.1f} kB)"
        print(
            f"  {label:34s} median {median(seconds):7.3f} s  max {max(seconds):7.3f} s"
            f"  (without the model: median {median(own):7.3f} s)"
            f"  disk +{median(grown) / 1e6:8.3f} MB median, +{max(grown) / 1e6:8.3f} MB max{extra}"
        )

    print(f"\n{name}:")
    row("first write (50 new files)", [figures["first"]])
    row("unchanged sync, 50 files", figures["unchanged"])
    row("add one ~800-word article", figures["adds"], size=True)
    row("replace it", figures["replaces"], size=True)
    row("delete one article", figures["deletes"])


def stream(
    index_dir: Path,
    corpus: Path,
    work: Path,
    writes: int,
    questions: Path,
    rate: float,
    follow: float,
) -> dict:
    """``writes`` single-article writes while a reader asks questions and follows."""
    stop_file = work / "stop-reader"
    stop_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, *map(str, (index_dir, questions, rate, follow, stop_file))],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    worker = Worker(REPO, index_dir)
    sources = article_files(corpus, (300, 2000), 50)
    # The baseline: the same questions, in the same processes, while the writer is idle.
    time.sleep(QUIET_SECONDS)
    writes_from = time.time()
    done: list[tuple[float, dict]] = []
    try:
        live: list[int] = []
        for number in range(writes):
            kind = ("add", "replace", "delete")[number % 3] if live else "add"
            if kind == "add":
                slot = number
                path = copy_article(sources[slot % len(sources)], work / "stream", f"s{slot}.txt")
                result = worker(op="ingest", paths=[str(path)])
                live.append(slot)
            elif kind == "replace":
                slot = live[-1]
                path = copy_article(
                    sources[slot % len(sources)],
                    work / "stream",
                    f"s{slot}.txt",
                    f"\n\nRev {number}.",
                )
                result = worker(op="ingest", paths=[str(path)])
            else:
                slot = live.pop(0)
                result = worker(op="delete", id=f"s{slot}.txt")
            done.append((time.time(), {**result, "kind": kind}))
        before_compaction = done[-1][1]["disk_after"]
        compaction = worker(op="compact")
    finally:
        worker.close()
        stop_file.touch()
    summary = json.loads(reader.stdout.readline())
    reader.wait(timeout=60)
    return {
        "writes_from": writes_from,
        "writes": done,
        "reader": summary,
        "disk_before_compaction": before_compaction,
        "compaction": compaction,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--baseline-tree", type=Path)
    parser.add_argument("--questions", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="of each single-article write")
    parser.add_argument("--stream", type=int, default=0, help="writes while questions are asked")
    parser.add_argument("--rate", type=float, default=50.0, help="questions a second")
    parser.add_argument("--follow", type=float, default=5.0, help="follow_seconds of the reader")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "results" / "live-work")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # The workers run in their own trees: every path they are given is absolute.
    for name in ("index", "corpus", "baseline_tree", "questions", "work"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start"
    )
    args.work.mkdir(parents=True, exist_ok=True)
    trees = {"this tree": REPO}
    if args.baseline_tree:
        trees = {"baseline": args.baseline_tree, **trees}
    results = {}
    for name, tree in trees.items():
        copy = Path(tempfile.mkdtemp(dir=args.work, prefix="index-"))
        shutil.rmtree(copy)
        started = time.perf_counter()
        shutil.copytree(args.index, copy)
        print(f"{name}: copied the index in {time.perf_counter() - started:.0f} s")
        try:
            results[name] = single_writes(tree, copy, args.corpus, args.work, args.rounds)
            print_writes(f"{name} ({tree})", results[name])
            if name == "this tree" and args.stream and args.questions:
                live = stream(
                    copy,
                    args.corpus,
                    args.work,
                    args.stream,
                    args.questions,
                    args.rate,
                    args.follow,
                )
                results["stream"] = live
                print_stream(live, copy)
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def print_stream(live: dict, index_dir: Path) -> None:
    writes = [r for _, r in live["writes"]]
    seconds = [r["seconds"] * 1000 for r in writes]
    reader = live["reader"]
    during = [
        ms
        for ms, t in zip(reader["latencies"], reader["asked_at"], strict=True)
        if t >= live["writes_from"]
    ]
    quiet = [
        ms
        for ms, t in zip(reader["latencies"], reader["asked_at"], strict=True)
        if t < live["writes_from"]
    ]
    seconds_writing = live["writes"][-1][0] - live["writes_from"]
    print(
        f"  baseline, no writes ({QUIET_SECONDS} s first): {len(quiet)} asked; p50"
        f" {np.percentile(quiet, 50):.1f} ms, p99 {np.percentile(quiet, 99):.1f} ms"
    )
    print(f"  questions asked during the writes: {len(during) / seconds_writing:.1f} a second")
    latencies = during
    print(f"\n{len(writes)} single-article writes while questions were asked:")
    print(
        f"  writes: p50 {np.percentile(seconds, 50):.0f} ms, p99 {np.percentile(seconds, 99):.0f} ms,"
        f" max {max(seconds):.0f} ms"
    )
    print(
        f"  questions: {len(latencies)} asked, {reader['failures']} failed; p50"
        f" {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms"
    )
    reopen = reader["reopen_seconds"]
    if reopen:
        print(
            f"  the reader followed {len(reopen)} times; reopening took median"
            f" {np.median(reopen) * 1000:.0f} ms, max {max(reopen) * 1000:.0f} ms"
        )
    lags = []
    for committed, _ in live["writes"]:
        later = [t for t, _ in reader["seen"] if t >= committed]
        if later:
            lags.append(min(later) - committed)
    if lags:
        print(
            f"  a write reached the reader within {max(lags):.1f} s (median {np.median(lags):.1f} s)"
        )
    compaction = live["compaction"]
    print(
        f"  disk: {live['disk_before_compaction'] / 1e9:.3f} GB before compaction,"
        f" {compaction['disk_after'] / 1e9:.3f} GB after ({compaction['seconds']:.1f} s:"
        f" {compaction.get('compaction')})"
    )


if __name__ == "__main__":
    main()
