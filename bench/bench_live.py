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
from typing import Any

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
options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
if options.get("embed_nice") is not None:  # [ingest] embed_nice, for the stream
    from dataclasses import replace
    settings = replace(settings, ingest=replace(settings.ingest, embed_nice=options["embed_nice"]))
if options.get("nice"):
    import os
    os.nice(options["nice"])
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


def loaded():
    embedder = load_embedder(settings)
    if options.get("embed_workers"):
        embedder.workers = options["embed_workers"]
    return timed(embedder)


embedder = loaded()
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
        embedder = loaded()
        embedder.embed(["warm up"])
    before = disk() if command.get("disk", True) else 0
    spent[0] = 0.0
    started = time.perf_counter()
    if command["op"] == "ingest":
        report = ingest([Path(p) for p in command["paths"]], settings, embedder)
        done = {"added": report.added, "updated": report.updated, "chunks": report.chunks_embedded}
    elif command["op"] == "delete":
        delete(command["id"])
        done = {}
    elif command["op"] == "push":  # as the HTTP API's PUT and DELETE write
        from retrieval.push import pushed_article, write_pushes
        upserts = [pushed_article(a["id"], {"title": a["title"], "text": a["text"]}, settings)
                   for a in command.get("upserts", [])]
        report = write_pushes(settings, embedder, upserts, command.get("removals", []))
        done = {"changes": [c.kind for c in report.changes]}
    elif command["op"] == "compact":
        from retrieval.index import compact
        manifest = read_manifest(index_dir)
        with lock_for_writing(index_dir, manifest.model, backend=manifest.backend) as lock:
            result = compact(index_dir, lock.manifest, settings.vectors, force=True)
        done = {"compaction": result.describe() if result else None}
    seconds = time.perf_counter() - started
    after = disk() if command.get("disk", True) else 0
    print(json.dumps({**done, "seconds": seconds, "embedding": spent[0], "disk_before": before, "disk_after": after}), flush=True)
"""


class Worker:
    def __init__(self, tree: Path, index_dir: Path, **options: object) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index_dir), json.dumps(options)],
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


def new_articles(corpus: Path, count: int, words: int = 800) -> list[tuple[str, str]]:
    """``count`` (title, text) of about ``words`` words, each made of paragraphs of several
    corpus articles (a different mix each): new stories, not copies of an indexed article.
    The BBC articles are in bench_scale's index about 150 times each (``ID~N``), so a
    stream of them would only ever add copies of one story of 150 articles."""
    texts = []
    for path in sorted(corpus.rglob("*.txt")):
        lines = path.read_text(errors="replace").strip().split("\n")
        paragraphs = [p.strip() for p in "\n".join(lines[1:]).split("\n\n") if p.strip()]
        if len(paragraphs) >= 4:
            texts.append((lines[0].strip(), paragraphs))
    rng = np.random.default_rng(20261205)
    made = []
    for number in range(count):
        sources = rng.choice(len(texts), 6, replace=False)
        title = f"{texts[sources[0]][0]} ({number})"
        taken: list[str] = []
        while sum(len(p.split()) for p in taken) < words:
            paragraphs = texts[sources[len(taken) % len(sources)]][1]
            taken.append(paragraphs[(len(taken) // len(sources)) % len(paragraphs)])
        made.append((title, "\n\n".join(taken)))
    return made


def reader(
    index_dir: str, follow: float, jobs: Any, results: Any, number: int, nice: int, ended: Any
) -> None:
    """One reader process of the pool: a Searcher, as a server's worker holds one; answers
    the questions it takes from ``jobs`` and follows the index every ``follow`` seconds."""
    import queue
    import threading

    from retrieval.config import Settings
    from retrieval.models import load_embedder
    from retrieval.search import Searcher

    if nice:
        os.nice(nice)
    settings = Settings(index_dir=Path(index_dir))
    held = [Searcher.open(settings, load_embedder(settings))]
    for question in WARM_UP:
        held[0].search(question)
    stop = threading.Event()
    seen: list[tuple[float, int, float]] = []  # (monotonic time, version, reopen seconds)
    # Searchers followed away from: closed between two questions (none is in use then),
    # as a server closes one when its last request ends, so no snapshot is held longer.
    retired: list[Any] = []

    def follow_index() -> None:
        while not stop.wait(follow):
            try:
                if held[0].is_current():
                    continue
                started = time.monotonic()
                newer = held[0].reopened()
            except Exception as exc:  # the reader keeps its searcher: shown, and tried again
                results.put(("follow-failed", number, f"{type(exc).__name__}: {exc}"))
                continue
            seen.append((time.monotonic(), newer.index.version, time.monotonic() - started))
            retired.append(held[0])
            held[0] = newer

    threading.Thread(target=follow_index, daemon=True).start()
    results.put(("ready", number))
    while True:
        while retired:
            retired.pop().close()
        try:
            job = jobs.get(timeout=0.2)
        except queue.Empty:
            continue
        if job is None:
            break
        n, scheduled, question = job
        if ended.is_set():  # the run is over: what still waits is counted, not answered
            results.put(("unanswered", n, scheduled))
            continue
        started = time.monotonic()
        cpu = time.thread_time()
        error, parts = None, {}
        try:
            parts = held[0].search(question).timings_ms
        except Exception as exc:  # counted and shown: a failed question
            error = f"{type(exc).__name__}: {exc}"
        parts = {**parts, "cpu_ms": (time.thread_time() - cpu) * 1000}
        results.put(("answer", n, scheduled, started, time.monotonic(), error, parts, number))
    stop.set()
    results.put(("done", number, seen))


# Questions each reader asks before it is ready (not measured).
WARM_UP = ["Who won the election?", "What did the company report?", "When was it built?"]


def stream(
    index_dir: Path,
    corpus: Path,
    work: Path,
    writes: int,
    questions_file: Path,
    options: argparse.Namespace,
) -> dict:
    """``writes`` single-article writes (pushes, as the HTTP API writes them: adds, replaces
    and deletes in turn) while questions arrive at a fixed rate (open loop: each question's
    latency runs from its scheduled arrival, so waiting in the queue counts) and are
    answered by a pool of reader processes that follow the index. Phases: the writer idle
    (the baseline), the writes, then a compaction with the questions still coming."""
    import multiprocessing
    import threading

    questions = [
        json.loads(line)["question"]
        for line in questions_file.read_text().splitlines()
        if line.strip()
    ]
    context = multiprocessing.get_context("spawn")
    jobs, results, ended = context.Queue(), context.Queue(), context.Event()
    readers = [
        context.Process(
            target=reader,
            args=(str(index_dir), options.follow, jobs, results, n, options.reader_nice, ended),
            daemon=True,
        )
        for n in range(options.readers)
    ]
    for process in readers:
        process.start()
    for _ in readers:
        kind, _number = results.get(timeout=600)
        assert kind == "ready"
    worker = Worker(
        REPO,
        index_dir,
        nice=options.writer_nice,
        embed_workers=options.writer_threads,
        embed_nice=options.writer_embed_nice,
    )
    articles = new_articles(corpus, min(writes, 3000))
    answers: list[tuple] = []
    done: list[tuple] = []
    follow_failures: list[tuple] = []
    unanswered: list[tuple] = []

    def collect() -> None:
        finished = 0
        while finished < len(readers):
            item = results.get()
            if item[0] == "answer":
                answers.append(item[1:])
            elif item[0] == "unanswered":
                unanswered.append(item[1:])
            elif item[0] == "follow-failed":
                follow_failures.append(item[1:])
            else:
                done.append(item[1:])
                finished += 1

    collector = threading.Thread(target=collect)
    collector.start()
    stop_asking = threading.Event()
    began = time.monotonic() + 0.5

    def ask() -> None:
        n = 0
        while not stop_asking.is_set():
            at = began + n / options.rate
            pause = at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            jobs.put((n, at, questions[n % len(questions)]))
            n += 1

    asker = threading.Thread(target=ask)
    asker.start()
    phases = {"quiet": time.monotonic()}
    writes_done: list[tuple[float, dict]] = []
    try:
        time.sleep(options.quiet)
        phases["writes"] = time.monotonic()
        live: list[int] = []
        deadline = phases["writes"] + options.stream_seconds if options.stream_seconds else None
        for number in range(writes):
            if deadline is not None and time.monotonic() > deadline:
                break
            kind = ("add", "replace", "delete")[number % 3] if live else "add"
            if kind == "add":
                live.append(number)
                slot = number
            elif kind == "replace":
                slot = live[-1]
            else:
                slot = live.pop(0)
            title, text = articles[slot % len(articles)]
            if kind == "replace":
                text += f"\n\nCorrected in revision {number}."
            if kind == "delete":
                command = {"removals": [f"stream-{slot}"]}
            else:
                command = {"upserts": [{"id": f"stream-{slot}", "title": title, "text": text}]}
            result = worker(op="push", disk=False, **command)
            writes_done.append((time.monotonic(), {**result, "kind": kind}))
            if options.progress and len(writes_done) % options.progress == 0:
                recent = [r["seconds"] for _, r in writes_done[-options.progress :]]
                print(
                    f"  {len(writes_done):,} writes, the last {options.progress}: p50"
                    f" {np.percentile(recent, 50) * 1000:.0f} ms, max {max(recent) * 1000:.0f} ms;"
                    f" {len(answers):,} questions answered; load {os.getloadavg()[0]:.1f};"
                    f" write-ahead log {wal_size(index_dir) / 1e6:.0f} MB",
                    flush=True,
                )
        phases["compaction"] = time.monotonic()
        disk_before = disk_of(index_dir)
        compaction = worker(op="compact")
        phases["end"] = time.monotonic()
        time.sleep(1.0)
    finally:
        stop_asking.set()
        ended.set()
        asker.join()
        worker.close()
        for _ in readers:
            jobs.put(None)
        collector.join(timeout=600)
        for process in readers:
            process.join(timeout=60)
    fresh = fresh_build_size(index_dir, work) if options.fresh_size else None
    return {
        "phases": phases,
        "writes": writes_done,
        "answers": answers,
        "readers": done,
        "follow_failures": follow_failures,
        "unanswered": unanswered,
        "rate": options.rate,
        "disk_before_compaction": disk_before,
        "compaction": compaction,
        "disk_after": disk_of(index_dir),
        "fresh_build": fresh,
    }


def wal_size(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.glob("gen-*/store.sqlite-wal"))


def disk_of(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())


def fresh_build_size(index_dir: Path, work: Path) -> int:
    """About what a fresh build of the index's articles takes on disk: its store written
    anew (``VACUUM INTO``: every table and index packed, as a build writes them), plus the
    main vector file just compacted (every live vector, as a build writes them) and the
    model files; no write-ahead log, no previous vector file."""
    import sqlite3

    from retrieval.index import read_manifest
    from retrieval.index.segments import read_state

    manifest = read_manifest(index_dir)
    folder = index_dir / manifest.folder
    packed = work / "fresh-store.sqlite"
    packed.unlink(missing_ok=True)
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        main = read_state(db, "vectors.faiss").vectors_file
        db.execute("VACUUM INTO ?", (str(packed),))
    finally:
        db.close()
    size = packed.stat().st_size
    packed.unlink()
    others = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(("store.sqlite", "vectors"))
    ]
    return size + (folder / main).stat().st_size + sum(p.stat().st_size for p in others)


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
    parser.add_argument(
        "--stream-seconds", type=float, help="stop the stream's writes after this long"
    )
    parser.add_argument("--stream-only", action="store_true", help="no single-write figures")
    parser.add_argument("--rate", type=float, default=50.0, help="questions arriving a second")
    parser.add_argument("--readers", type=int, default=2, help="reader processes")
    parser.add_argument("--quiet", type=float, default=30.0, help="seconds of questions first")
    parser.add_argument("--follow", type=float, default=5.0, help="follow_seconds of the readers")
    parser.add_argument("--writer-nice", type=int, default=0, help="os.nice of the writer")
    parser.add_argument("--reader-nice", type=int, default=0, help="os.nice of the readers")
    parser.add_argument(
        "--writer-threads", type=int, default=0, help="the writer's embedding threads (0: default)"
    )
    parser.add_argument(
        "--writer-embed-nice",
        type=int,
        help="[ingest] embed_nice of the writer (default: config's)",
    )
    parser.add_argument("--progress", type=int, default=500, help="print every N writes")
    parser.add_argument(
        "--no-fresh-size",
        dest="fresh_size",
        action="store_false",
        help="skip packing the final store to estimate a fresh build's size",
    )
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
            if not args.stream_only:
                results[name] = single_writes(tree, copy, args.corpus, args.work, args.rounds)
                print_writes(f"{name} ({tree})", results[name])
            if name == "this tree" and args.stream and args.questions:
                print(f"load average {os.getloadavg()[0]:.1f} before the stream", flush=True)
                live = stream(copy, args.corpus, args.work, args.stream, args.questions, args)
                results["stream"] = live
                print_stream(live)
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def print_stream(live: dict) -> None:
    phases = live["phases"]
    bounds = [
        ("writer idle (baseline)", phases["quiet"], phases["writes"]),
        ("during the writes", phases["writes"], phases["compaction"]),
        ("during the compaction", phases["compaction"], phases["end"]),
    ]
    answers = live["answers"]
    print(f"\nquestions arriving at {live['rate']:g} a second, {len(live['readers'])} readers:")
    for label, start, end in bounds:
        # By scheduled arrival: every question that arrived in the phase, answered late or not.
        inside = [a for a in answers if start <= a[1] < end]
        if not inside:
            print(f"  {label}: none of the questions that arrived was answered")
            continue
        latencies = np.array([(a[3] - a[1]) * 1000 for a in inside])
        service = np.array([(a[3] - a[2]) * 1000 for a in inside])
        failed = [a for a in inside if a[4] is not None]
        waiting = sum(1 for u in live["unanswered"] if start <= u[1] < end)
        answered_in = sum(1 for a in answers if start <= a[3] < end)
        arrived = len(inside) + waiting
        print(
            f"  {label}: {arrived:,} arrived ({arrived / (end - start):.1f}/s),"
            f" {answered_in / (end - start):.1f}/s answered; latency from arrival p50"
            f" {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms,"
            f" max {latencies.max():.0f} ms; answering alone p50"
            f" {np.percentile(service, 50):.1f}, p99 {np.percentile(service, 99):.1f} ms;"
            f" {len(failed)} failed; {waiting} still waiting when the run ended"
        )
        parts: dict[str, list[float]] = {}
        for a in inside:
            for name, ms in a[5].items():
                parts.setdefault(name, []).append(ms)
        print(
            "    parts (p50 / p99 ms): "
            + ", ".join(
                f"{name} {np.percentile(v, 50):.1f} / {np.percentile(v, 99):.1f}"
                for name, v in sorted(parts.items())
            )
        )
        for a in failed[:3]:
            print(f"    failed: {a[4]}")
    writes = [r for _, r in live["writes"]]
    if writes:
        seconds = np.array([r["seconds"] * 1000 for r in writes])
        own = np.array([(r["seconds"] - r.get("embedding", 0.0)) * 1000 for r in writes])
        print(f"\n{len(writes):,} single-article writes (pushes) while questions arrived:")
        print(
            f"  writes: p50 {np.percentile(seconds, 50):.0f} ms, p99"
            f" {np.percentile(seconds, 99):.0f} ms, max {seconds.max():.0f} ms (without the"
            f" model: p50 {np.percentile(own, 50):.0f}, p99 {np.percentile(own, 99):.0f} ms)"
        )
        for kind in ("add", "replace", "delete"):
            some = [r["seconds"] * 1000 for r in writes if r["kind"] == kind]
            if some:
                print(
                    f"    {kind}: {len(some):,}, p50 {np.percentile(some, 50):.0f} ms,"
                    f" p99 {np.percentile(some, 99):.0f} ms"
                )
    for number, error in live["follow_failures"][:3]:
        print(f"  reader {number} could not follow: {error}")
    print(f"  followings that failed: {len(live['follow_failures'])}")
    seen = sorted(s for _, reader_seen in live["readers"] for s in reader_seen)
    if seen:
        reopen = [s[2] * 1000 for s in seen]
        print(
            f"  the readers followed {len(seen)} times; reopening took median"
            f" {np.median(reopen):.0f} ms, p99 {np.percentile(reopen, 99):.0f} ms,"
            f" max {max(reopen):.0f} ms"
        )
        lags = []
        for committed, _ in live["writes"]:
            later = [t for t, _, _ in seen if t >= committed]
            if later:
                lags.append(min(later) - committed)
        if lags:
            print(
                f"  a write reached a reader within {max(lags):.1f} s"
                f" (median {np.median(lags):.1f} s)"
            )
    compaction = live["compaction"]
    print(
        f"  disk: {live['disk_before_compaction'] / 1e9:.3f} GB before compaction,"
        f" {live['disk_after'] / 1e9:.3f} GB after ({compaction['seconds']:.1f} s:"
        f" {compaction.get('compaction')})"
    )
    if live["fresh_build"]:
        print(
            f"  a fresh build of the same articles: about {live['fresh_build'] / 1e9:.3f} GB;"
            f" after the compaction {live['disk_after'] / live['fresh_build']:.2f} x that"
        )


if __name__ == "__main__":
    main()
