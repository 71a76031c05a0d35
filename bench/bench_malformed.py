"""Malformed-corpus benchmark: ~300 bad files and 5 good ones, one `citebot ingest`.

    .venv/bin/python bench/bench_malformed.py

Writes the corpus of tests/reliability/malformed.py (every format, the issue's
pathological inputs included: billion laughs, a FIFO, links to /dev/zero and outside,
a 540 KB URL and a 5 MB word (over the article limit), a 50 MB one-line file (over the
file limit), and, ingested, 10,000 paragraphs and a 100 KB URL) and runs `citebot
ingest` on it with the real model, as a user would. Reports, beside the same
commands on the 5 good files alone (the baseline, same run):
  - wall time, CPU time and exit status of the ingest (the load average is printed:
    other work on the machine stretches the wall time more than the CPU time);
  - bad files named with their reason, and tracebacks printed (target: all, and 0);
  - the good articles' questions answered at rank 1 (`citebot ask --batch`);
  - peak memory: the largest process, and the whole process tree (sampled every 50 ms).
Targets (issue 7): <= 120 s, exit 2, every bad file named, 0 tracebacks, 5/5 at rank 1,
peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package

from tests.reliability.malformed import GOOD_FOLDER, GOOD_QUESTIONS, unexplained, write_corpus

CITEBOT = str(Path(sys.executable).with_name("citebot"))


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system, of the command and its workers
    status: int
    stdout: str
    stderr: str
    peak_process_mb: float
    peak_tree_mb: float


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(*args: str) -> Run:
    started, cpu_before = time.perf_counter(), _cpu_of_children()
    process = subprocess.Popen(
        [CITEBOT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peaks = {"process": 0, "tree": 0}

    def sample() -> None:
        while process.poll() is None:
            sizes = [_rss_kb(pid) for pid in _tree(process.pid)]
            peaks["process"] = max(peaks["process"], max(sizes, default=0))
            peaks["tree"] = max(peaks["tree"], sum(sizes))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    return Run(
        time.perf_counter() - started,
        _cpu_of_children() - cpu_before,
        process.returncode,
        stdout,
        stderr,
        peaks["process"] / 1024,
        peaks["tree"] / 1024,
    )


def rank_one(index: Path, scratch: Path) -> int:
    batch = scratch / "questions.jsonl"
    batch.write_text("\n".join(json.dumps({"question": q}) for q in GOOD_QUESTIONS.values()))
    asked = run("ask", "--batch", str(batch), "--index", str(index), "--json")
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    firsts = [(a.get("results") or [{}])[0].get("article", {}).get("id") for a in answers]
    return sum(f == want for f, want in zip(firsts, GOOD_QUESTIONS, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", type=int, default=8, help="copies of each bad file kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory(prefix="citebot-malformed-") as name:
        scratch = Path(name)
        corpus = write_corpus(
            scratch / "articles", variants=args.variants, seed=args.seed, huge_files=True
        )
        good = scratch / "good"
        shutil.copytree(GOOD_FOLDER, good)
        files = sum(1 for _ in corpus.folder.rglob("*"))
        print(
            f"corpus: {len(corpus.bad)} bad files or records, {len(corpus.odd_but_valid)} odd"
            f" but valid, 5 good articles ({files} entries)"
        )

        baseline = run("ingest", str(good), "--index", str(scratch / "good-index"))
        baseline_rank = rank_one(scratch / "good-index", scratch)
        ingest = run("ingest", str(corpus.folder), "--index", str(scratch / "index"))
        malformed_rank = rank_one(scratch / "index", scratch)

    skipped = dict(
        line.removeprefix("skipped ").split(": ", 1)
        for line in ingest.stderr.splitlines()
        if line.startswith("skipped ")
    )
    wrong = unexplained(corpus, skipped)
    tracebacks = (ingest.stdout + ingest.stderr).count("Traceback")
    named = len(corpus.bad) - sum(1 for w in wrong if "expected" in w)
    print()
    print("| measure | malformed corpus | baseline: 5 good files | target |")
    print("| --- | --- | --- | --- |")
    print(f"| ingest wall time | {ingest.seconds:.1f} s | {baseline.seconds:.1f} s | <= 120 s |")
    print(
        f"| ingest CPU time (user + system) | {ingest.cpu_seconds:.1f} s |"
        f" {baseline.cpu_seconds:.1f} s | |"
    )
    print(f"| exit status | {ingest.status} | {baseline.status} | 2 |")
    print(f"| bad files named with their reason | {named}/{len(corpus.bad)} | - | all |")
    print(f"| tracebacks printed | {tracebacks} | - | 0 |")
    print(f"| good articles answered at rank 1 | {malformed_rank}/5 | {baseline_rank}/5 | 5/5 |")
    print(
        f"| peak RSS, largest process | {ingest.peak_process_mb:,.0f} MB |"
        f" {baseline.peak_process_mb:,.0f} MB | <= 1,536 MB |"
    )
    print(
        f"| peak RSS, process tree | {ingest.peak_tree_mb:,.0f} MB |"
        f" {baseline.peak_tree_mb:,.0f} MB | |"
    )
    if wrong:
        print("\nnot as expected:")
        for line in wrong[:20]:
            print(f"  {line}")
    summary = [line for line in ingest.stdout.splitlines() if "articles from" in line]
    print(f"\n{summary[-1] if summary else ingest.stdout[-300:]}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
