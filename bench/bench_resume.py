"""Resume benchmark: a first ingest and a rebuild killed (SIGKILL) part-way, then run again.

    nice .venv/bin/python bench/bench_resume.py ../shared/corpus/bbc-news --files 2000

Takes the first FILES files of the corpus (sorted by path, copied into a scratch folder)
and, each `citebot ingest --json` in a process of its own, with the default settings
(batches of `[ingest] commit_every_articles` = 500):

1. a first ingest from scratch (the baseline), then a first ingest into a new folder
   killed at --kill-at (0.6) of the baseline's wall time; what the index holds then; the
   run that completes it (time, chunks embedded);
2. `--rebuild` of the full index from scratch (the baseline), then a rebuild killed at the
   same share of its time: what readers see (the old index, whole?) and what was staged;
   the rebuild that resumes it (time, chunks embedded).

With --before CHECKOUT (e.g. `git archive main`), also the two baselines of that checkout
(its `retrieval` package first on PYTHONPATH), first, in the same run. Prints the load
(`os.getloadavg`) beside each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CITEBOT = str(Path(sys.executable).with_name("citebot"))


def load() -> str:
    return "load " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def run(
    folder: Path,
    index: Path,
    *,
    rebuild: bool = False,
    kill_after: float | None = None,
    code: Path | None = None,
) -> tuple[float, dict[str, object] | None]:
    """Wall seconds of one `citebot ingest`, and its report (None if it was killed)."""
    argv = [CITEBOT, "ingest", str(folder), "--index", str(index), "--json"]
    if rebuild:
        argv.append("--rebuild")
    env = {**os.environ, "PYTHONPATH": str(code.resolve())} if code else None
    started = time.perf_counter()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=code
    ) as process:
        try:
            out, err = process.communicate(timeout=kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.communicate()
            return time.perf_counter() - started, None
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 2):  # 2: some files were skipped (reported)
        raise SystemExit(f"citebot ingest failed ({process.returncode}): {err[-2000:]}")
    return seconds, json.loads(out)


def counts(store: Path) -> tuple[int, int]:
    """Articles and chunks in a store."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(articles), int(chunks)
    finally:
        db.close()


def index_counts(index: Path) -> tuple[int, int] | None:
    """Articles and chunks the index's readers see (None: no index)."""
    manifest = index / "index.json"
    if not manifest.is_file():
        return None
    generation = json.loads(manifest.read_text())["generation"]
    return counts(index / f"gen-{generation:06d}" / "store.sqlite")


def staged_counts(index: Path) -> tuple[int, int] | None:
    folders = sorted(index.glob(".staging-*"))
    return counts(folders[-1] / "store.sqlite") if folders else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kill-at", type=float, default=0.6, help="share of the baseline")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores,"
        f" Python {platform.python_version()}; {load()}"
    )
    files = sorted(p for p in args.corpus.rglob("*") if p.is_file())[: args.files]
    with tempfile.TemporaryDirectory(prefix="citebot-resume-") as scratch:
        folder = Path(scratch) / "corpus"
        for path in files:
            target = folder / path.relative_to(args.corpus)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)  # (ingest does not follow links)
        print(f"corpus: {len(files)} files of {args.corpus}")

        def line(
            name: str, seconds: float, report: dict[str, object] | None, more: str = ""
        ) -> None:
            done = (
                f"added {report['added']}, unchanged {report['unchanged']},"
                f" chunks embedded {report['chunks_embedded']}, batches {report['batches']}"
                if report
                else "killed"
            )
            print(f"{name:38} {seconds:7.1f} s  {done}{more}  [{load()}]", flush=True)

        if args.before:
            old = Path(scratch) / "before"
            seconds, report = run(folder, old, code=args.before)
            line(f"before ({args.before}): first ingest", seconds, report)
            seconds, report = run(folder, old, rebuild=True, code=args.before)
            line(f"before ({args.before}): rebuild", seconds, report)

        full = Path(scratch) / "full"
        first_seconds, report = run(folder, full)
        line("first ingest, from scratch", first_seconds, report)
        whole = index_counts(full)

        killed = Path(scratch) / "killed"
        seconds, report = run(folder, killed, kill_after=args.kill_at * first_seconds)
        held = index_counts(killed)
        line(
            f"first ingest, killed at {args.kill_at:.0%}",
            seconds,
            report,
            f"; the index holds {held} (articles, chunks) of {whole}" if report is None else "",
        )
        seconds, report = run(folder, killed)
        line("first ingest, the run after the kill", seconds, report)
        assert index_counts(killed) == whole, (index_counts(killed), whole)

        rebuild_seconds, report = run(folder, full, rebuild=True)
        line("rebuild, from scratch", rebuild_seconds, report)
        seconds, report = run(folder, full, rebuild=True, kill_after=args.kill_at * rebuild_seconds)
        line(
            f"rebuild, killed at {args.kill_at:.0%}",
            seconds,
            report,
            f"; readers see {index_counts(full)}, staged {staged_counts(full)}"
            if report is None
            else "",
        )
        seconds, report = run(folder, full, rebuild=True)
        line("rebuild, the rebuild after the kill", seconds, report)
        assert index_counts(full) == whole, (index_counts(full), whole)
        assert staged_counts(full) is None


if __name__ == "__main__":
    main()
