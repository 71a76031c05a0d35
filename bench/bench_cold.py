"""Cold-start benchmark: `citebot ask` from process start to printed answer, its peak memory,
and the bot's memory once started, over an existing index (the BBC index for the README).

    .venv/bin/python bench/bench_cold.py --index /tmp/bbc-index [--torch-index /tmp/bbc-fp32]

Each `citebot ask` runs in a fresh process (the page cache is warm after the first run, as it
is for a user asking twice); the figures are the median and max over --runs runs, peak RSS
from the kernel's accounting of the child. Baselines measured in the same run:
  - the floor: `python -c pass`, and importing what the light path needs (numpy, faiss,
    onnxruntime, tokenizers, click) plus one int8 question;
  - what the torch path pays before it can embed a question: importing
    sentence-transformers and loading the model, and one question;
  - with --torch-index (an index built with backend "torch"), `citebot ask` and the bot on it.
The bot is started against the local fake Discord (tests/bot/fake_discord.py): config, index,
model, connected; then its RSS is read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CITEBOT = str(Path(sys.executable).with_name("citebot"))
QUESTION = "What did the government say about the budget deficit?"


def run_child(
    argv: list[str], env: dict[str, str] | None = None, **options
) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB), CPU seconds and stdout of one child process (its own
    children included: the parsing workers)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"} | (
        env or {}
    )
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env, **options)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read().decode() if child.stderr else ""
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:3])} failed:\n{stderr}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out.read().decode()


def repeat(argv: list[str], runs: int, **options) -> dict[str, float]:
    results = [run_child(argv, **options) for _ in range(runs)]
    walls = [r[0] for r in results]
    return {
        "median_s": statistics.median(walls),
        "max_s": max(walls),
        "cpu_s": statistics.median(r[2] for r in results),
        "rss_mb": max(r[1] for r in results),
    }


LIGHT_FLOOR = """
import numpy, faiss, onnxruntime, tokenizers, click, sys
from retrieval.embedding import OnnxEmbedder
from retrieval.index import read_manifest
from pathlib import Path
index = Path(sys.argv[1])
OnnxEmbedder.from_folder(index / read_manifest(index).folder).embed([sys.argv[2]])
"""

TORCH_FLOOR = """
import sys
from retrieval.embedding import SentenceTransformerEmbedder
SentenceTransformerEmbedder().embed([sys.argv[1]])
"""

BOT_RSS = """
import asyncio, json, sys, time
from pathlib import Path
from retrieval.config import BotSettings, Settings
from tests.bot.fake_discord import FakeDiscord

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

async def main():
    fake = FakeDiscord()
    await fake.start()
    old = fake.point_discord_py_here()
    started = time.perf_counter()
    from bot.cli import build_client
    settings = Settings(index_dir=Path(sys.argv[1]), bot=BotSettings(feedback_db=sys.argv[2]))
    client = build_client(settings)
    runner = asyncio.create_task(client.start("bench-token"))
    await asyncio.wait_for(client.wait_until_ready(), 60)
    ready = time.perf_counter() - started
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "sentence_transformers"})
    print(json.dumps({"rss_mb": rss_mb(), "ready_s": ready, "heavy": heavy}))
    await client.close()
    await asyncio.wait_for(runner, 10)
    FakeDiscord.restore(old)
    await fake.stop()

asyncio.run(main())
"""


def bot_after_start(index: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="citebot-bench-bot-") as scratch:
        feedback = str(Path(scratch) / "feedback.sqlite")
        _, _, _, out = run_child([PYTHON, "-c", BOT_RSS, str(index), feedback], cwd=ROOT)
    return json.loads(out.strip().splitlines()[-1])


def ask(index: Path, runs: int, question: str) -> dict[str, float]:
    return repeat([CITEBOT, "ask", "--index", str(index), question], runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True, help="an index built with ONNX")
    parser.add_argument("--torch-index", type=Path, help="the same articles, backend torch")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args()

    manifest = json.loads((args.index / "index.json").read_text())
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores,"
        f" Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"index: {args.index} ({manifest['model']}, backend {manifest.get('backend', 'torch')})")
    ask(args.index, 1, args.question)  # warm the page cache, as a second question would
    rows = [
        ("python -c pass (floor)", repeat([PYTHON, "-c", "pass"], args.runs)),
        (
            "light imports + 1 question (floor)",
            repeat([PYTHON, "-c", LIGHT_FLOOR, str(args.index), args.question], args.runs),
        ),
        ("citebot ask (ONNX index)", ask(args.index, args.runs, args.question)),
        (
            "baseline: torch import+load+1 question",
            repeat([PYTHON, "-c", TORCH_FLOOR, args.question], max(3, args.runs // 2)),
        ),
    ]
    if args.torch_index:
        rows.append(
            ("baseline: citebot ask (torch index)", ask(args.torch_index, 3, args.question))
        )
    print(
        f"\n{'process start -> answer':40s} {'median':>8s} {'max':>8s} {'CPU':>8s} {'peak RSS':>9s}"
    )
    for name, r in rows:
        print(
            f"{name:40s} {r['median_s']:7.2f}s {r['max_s']:7.2f}s {r['cpu_s']:7.2f}s"
            f" {r['rss_mb']:7.0f}MB"
        )
    target = rows[2][1]
    print(
        f"targets: median <= 1.0 s: {'OK' if target['median_s'] <= 1.0 else 'MISSED'};"
        f" peak RSS <= 300 MB: {'OK' if target['rss_mb'] <= 300 else 'MISSED'}"
    )

    bot = bot_after_start(args.index)
    print(
        f"\nbot after start (ONNX index): RSS {bot['rss_mb']:.0f} MB, ready in {bot['ready_s']:.2f} s,"
        f" heavy modules loaded: {bot['heavy'] or 'none'}"
        f"   target <= 400 MB: {'OK' if bot['rss_mb'] <= 400 else 'MISSED'}"
    )
    if args.torch_index:
        base = bot_after_start(args.torch_index)
        print(
            f"baseline: bot after start (torch index): RSS {base['rss_mb']:.0f} MB,"
            f" ready in {base['ready_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
