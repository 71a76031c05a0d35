"""Benchmark: the bot against the local fake Discord, with the real bundled model.

Builds a small index in a temp dir from the test articles, starts the bot (config,
index, model, connect) and times it; then fires 50 concurrent /ask interactions and
measures acknowledgement latency, event-loop stalls and whether all were answered.
The baseline is the same 50 asks with retrieval run ON the event loop.

    .venv/bin/python bench/bench_bot.py [--asks 50]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.cli import build_client  # noqa: E402
from bot.cooldown import Cooldown  # noqa: E402
from retrieval.config import BotSettings, Settings  # noqa: E402
from retrieval.live import IndexHolder  # noqa: E402
from tests.bot.fake_discord import USER_ID, FakeDiscord  # noqa: E402

T = TypeVar("T")
ARTICLES = ROOT / "tests" / "bot" / "articles"
QUESTIONS = [
    "How do libraries lend tools?",
    "How often do beekeepers inspect a hive?",
    "How do I feed a sourdough starter?",
    "When is honey harvested?",
    "Who repairs the tools between loans?",
]


class OnLoopHolder(IndexHolder):
    """The baseline: calls the searcher directly on the event loop."""

    async def run(self, work: Callable[[Any], T]) -> T:
        return work(self.current)


async def ticker(stop: asyncio.Event, lags: list[float], period: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(period)
        lags.append(loop.time() - before - period)


async def fire(fake: FakeDiscord, count: int) -> dict[str, float]:
    lags: list[float] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stop, lags))
    started = time.perf_counter()
    ids = await asyncio.gather(
        *(
            fake.send_interaction(
                "ask", {"question": QUESTIONS[i % len(QUESTIONS)]}, user_id=USER_ID + 1 + i
            )
            for i in range(count)
        )
    )
    await fake.wait_for(lambda: all(i in fake.answered for i in ids), timeout=120)
    total = time.perf_counter() - started
    stop.set()
    await tick
    acks = sorted(fake.acked_at[i] - fake.interaction_sent_at[i] for i in ids if i in fake.acked_at)
    answered = sum(1 for i in ids if "embeds" in (fake.answered.get(i) or {}))
    return {
        "acked": len(acks),
        "answered": answered,
        "ack_max_ms": acks[-1] * 1000,
        "ack_p50_ms": statistics.median(acks) * 1000,
        "ack_p99_ms": acks[min(len(acks) - 1, int(len(acks) * 0.99))] * 1000,
        "stall_max_ms": max(lags) * 1000,
        "all_answered_s": total,
    }


async def main(asks: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="citebot-bench-"))
    try:
        sources = tmp / "articles"
        sources.mkdir()
        for name in ("tool-libraries.md", "bees.md", "bread.md"):
            shutil.copy(ARTICLES / name, sources / name)
        settings = Settings(
            index_dir=tmp / "index",
            sources=(str(sources),),
            bot=BotSettings(cooldown_seconds=0.0, feedback_db=str(tmp / "feedback.sqlite")),
        )
        # Built in another process, so this one starts cold (torch and the model not yet loaded).
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from retrieval.cli import main; main()",
                "ingest",
                str(sources),
                "--index",
                str(settings.index_dir),
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )

        fake = FakeDiscord()
        await fake.start()
        old = fake.point_discord_py_here()
        t0 = time.perf_counter()
        client = build_client(settings)
        loaded = time.perf_counter() - t0
        client.cooldown = Cooldown(0.0)
        runner = asyncio.create_task(client.start("bench-token"))
        await asyncio.wait_for(client.wait_until_ready(), 30)
        start_s = time.perf_counter() - t0
        try:
            off = await fire(fake, asks)
            # The default corpus, opened by the first question, swapped for the baseline.
            registry = client.corpora.registry
            opened = registry.holder("default")
            assert opened is not None
            registry.adopt("default", OnLoopHolder(opened.source))
            on = await fire(fake, asks)
        finally:
            await client.close()
            await asyncio.wait_for(runner, 10)
            FakeDiscord.restore(old)
            await fake.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"bot start (config, index, model, connected to fake): {start_s:.2f} s "
        f"(index+model {loaded:.2f} s)   target <= 10 s: {'OK' if start_s <= 10 else 'MISSED'}"
    )
    print(f"{asks} concurrent /ask        retrieval off-loop   baseline on-loop")
    for key, label in [
        ("acked", "acknowledged"),
        ("answered", "answered"),
        ("ack_max_ms", "ack max (ms)"),
        ("ack_p50_ms", "ack p50 (ms)"),
        ("ack_p99_ms", "ack p99 (ms)"),
        ("stall_max_ms", "loop stall max (ms)"),
        ("all_answered_s", "all answered (s)"),
    ]:
        print(f"  {label:<22} {off[key]:>18.1f} {on[key]:>18.1f}")
    ok = (
        off["acked"] == asks
        and off["answered"] == asks
        and off["ack_max_ms"] < 1000
        and off["stall_max_ms"] < 100
    )
    print(f"targets (every ack < 1 s, stalls < 100 ms, all answered): {'OK' if ok else 'MISSED'}")
    return 0 if ok and start_s <= 10 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=50)
    sys.exit(asyncio.run(main(parser.parse_args().asks)))
