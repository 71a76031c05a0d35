"""Benchmark: `citebot serve` on a real index, each figure beside a same-run baseline.

    .venv/bin/python bench/bench_serve.py --index /tmp/bbc-index [--seconds 30 --clients 50]

The index is copied to a scratch folder first (pushes write to it). Questions are the
titles of the index's first --questions articles (sorted by id), asked as they are.

  1. The real server (`citebot serve` as a subprocess on 127.0.0.1, keys set): time from
     start to /readyz answering 200, and its RSS when ready, after the load and at peak.
  3. Throughput: `Searcher.search` in this process on as many threads as the server's
     default executor (the baseline), against --clients concurrent clients (aiohttp, one
     connection each, in a process of their own) asking GET /v1/search: requests/s,
     p50/p99, errors. The load generator runs at the server's priority and at nice 10 (on
     two shared cores it takes CPU from the server under test); the three alternate in
     rounds of 5 s for --seconds each, so a change in the machine's other load hits all.
  4. Idle overhead: one question at a time over HTTP, p50, against `Searcher.search` one
     at a time in this process on the same questions.
  5. Metrics cost: the in-process p50 with metrics off against on (interleaved rounds).
  6. Push: PUT /v1/articles/{id} of an 800-word article, time until the response (which
     comes once it is searchable) and until GET /v1/search finds it; against the time of
     an unchanged PUT of the same article (the write's fixed part).
  7. Graceful shutdown: SIGTERM while 20 requests are in flight; how many finished.
  8. With --seed-index: start -> /readyz 200 on that small index, three times.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval import metrics  # noqa: E402
from retrieval.config import Settings  # noqa: E402
from retrieval.search import Searcher  # noqa: E402

ADMIN_KEY = "bench-admin-key"
ROUND_SECONDS = 5.0
READ_KEY = "bench-read-key"
WORDS = (
    "council harbour budget station river minister school museum festival railway "
    "library election hospital market bridge theatre factory orchestra garden stadium"
).split()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def questions_of(settings: Settings, count: int) -> list[str]:
    searcher = Searcher.open(settings)
    try:
        summaries = sorted(searcher.articles(), key=lambda s: s.article.id)
    finally:
        searcher.close()
    return [s.article.title for s in summaries[:count]]


# -- in process ------------------------------------------------------------------------------


def in_process_throughput(
    searcher: Searcher, questions: list[str], seconds: float
) -> tuple[int, float]:
    """Questions answered in ``seconds`` and the time taken."""
    workers = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
    done = [0] * workers
    stop = time.perf_counter() + seconds

    def work(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            searcher.search(questions[i % len(questions)])
            done[n] += 1
            i += workers

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    return sum(done), time.perf_counter() - started


def sequential_ms(searcher: Searcher, questions: list[str]) -> list[float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        searcher.search(question)
        times.append((time.perf_counter() - started) * 1000)
    return times


# -- over HTTP -------------------------------------------------------------------------------


async def load(base: str, questions: list[str], clients: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {READ_KEY}"}

    async def client(n: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:
            i = n
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    async with session.get(
                        "/v1/search", params={"q": questions[i % len(questions)]}
                    ) as response:
                        await response.read()
                        if response.status != 200:
                            errors[str(response.status)] = errors.get(str(response.status), 0) + 1
                            continue
                except aiohttp.ClientError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                i += clients

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return {"latencies": latencies, "seconds": time.perf_counter() - started, "errors": errors}


def generate(base: str, questions: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """``load`` in a process of its own (started at a chosen niceness: the load generator
    shares the two cores with the server, and at a lower priority takes less from it)."""
    return asyncio.run(load(base, questions, clients, seconds))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle(
    base: str,
    questions: list[str],
    searcher: Searcher | None = None,
    cpu: list[float] | None = None,
) -> tuple[list[float], list[float]]:
    """Each question over HTTP, one at a time; with ``searcher``, each also asked in this
    process right after it (pairs, so the machine's other load hits both alike). ``cpu``
    gathers this process's CPU seconds for the in-process questions."""
    import aiohttp

    over_http, in_process = [], []
    headers = {"Authorization": f"Bearer {READ_KEY}"}
    async with aiohttp.ClientSession(base, headers=headers) as session:
        for question in questions:
            started = time.perf_counter()
            async with session.get("/v1/search", params={"q": question}) as response:
                await response.read()
                assert response.status == 200, response.status
            over_http.append((time.perf_counter() - started) * 1000)
            if searcher is not None:
                started, used = time.perf_counter(), time.process_time()
                searcher.search(question)
                in_process.append((time.perf_counter() - started) * 1000)
                if cpu is not None:
                    cpu.append(time.process_time() - used)
    return over_http, in_process


def article_of(words: int, marker: str, rng: random.Random) -> dict[str, str]:
    sentences = []
    while sum(len(s.split()) for s in sentences) < words:
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(11)).capitalize() + ".")
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    paragraphs.insert(2, f"The {marker} was confirmed by the harbour council on Tuesday.")
    return {"title": f"Bench article {marker}", "text": "\n\n".join(paragraphs)}


async def pushes(base: str, count: int) -> dict[str, list[float]]:
    import aiohttp

    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    answered, visible, unchanged = [], [], []
    async with aiohttp.ClientSession(base, headers=headers) as session:
        for n in range(count):
            marker = f"zorblax{n}quint"
            article = article_of(800, marker, rng)
            started = time.perf_counter()
            async with session.put(f"/v1/articles/bench-{n}", json=article) as response:
                result = await response.json()
                assert response.status == 201, result
            answered.append(time.perf_counter() - started)
            while True:
                async with session.get("/v1/search", params={"q": f"{marker} confirmed"}) as r:
                    found = await r.json()
                if found["results"] and found["results"][0]["article"]["id"] == f"bench-{n}":
                    break
            visible.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with session.put(f"/v1/articles/bench-{n}", json=article) as response:
                assert (await response.json())["result"] == "unchanged"
            unchanged.append(time.perf_counter() - started)
    return {"answered": answered, "visible": visible, "unchanged": unchanged}


async def shutdown_in_flight(base: str, process: subprocess.Popen[bytes], question: str) -> int:
    import aiohttp

    headers = {"Authorization": f"Bearer {READ_KEY}"}
    async with aiohttp.ClientSession(base, headers=headers) as session:

        async def ask(n: int) -> int:
            async with session.get("/v1/search", params={"q": f"{question} {n}"}) as response:
                await response.read()
                return response.status

        tasks = [asyncio.create_task(ask(n)) for n in range(20)]
        await asyncio.sleep(0.05)  # in flight
        process.send_signal(signal.SIGTERM)
        statuses = await asyncio.gather(*tasks, return_exceptions=True)
    return sum(1 for s in statuses if s == 200)


# -- the run ---------------------------------------------------------------------------------


def start_server(
    index: Path, port: int, log: Path, config: Path | None = None
) -> tuple[subprocess.Popen[bytes], float, float]:
    """The server, the seconds until it answered /healthz (up: imports done, listening),
    and until /readyz answered 200 (index open, model loaded)."""
    env = {**os.environ, "CITEBOT_API_KEYS": READ_KEY, "CITEBOT_ADMIN_KEYS": ADMIN_KEY}
    env.pop("CITEBOT_CONFIG", None)
    if config is not None:
        env["CITEBOT_CONFIG"] = str(config)
    command = [str(Path(sys.executable).parent / "citebot"), "serve", "--index", str(index)]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    import urllib.error
    import urllib.request

    up = None
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - started
                        return process, ready if up is None else up, ready
            except urllib.error.HTTPError:  # 503: listening, not ready yet
                up = up or time.perf_counter() - started
            except OSError:  # not listening yet, or too busy to answer within the second
                pass
            if process.poll() is not None:
                raise SystemExit("the server exited before it was ready")
            time.sleep(0.01)
    except BaseException:  # never leave the server running
        process.terminate()
        process.wait(60)
        raise


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument(
        "--seed-index", type=Path, help="also time start -> ready on this (small) index"
    )
    args = parser.parse_args()

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, load {os.getloadavg()[0]:.1f} at start"
    )
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        index = Path(scratch) / "index"
        shutil.copytree(args.index, index)
        settings = Settings(index_dir=index)
        questions = questions_of(settings, args.questions)
        searcher = Searcher.open(settings)
        searcher.search(questions[0])
        stats = searcher.stats()
        print(
            f"index: {stats.articles} articles, {stats.chunks} chunks, {len(questions)} questions"
        )

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(scratch) / "serve.log"
        process, up, ready = start_server(index, port, log)
        ready_rss = rss_mb(process.pid)
        print(
            f"\n1-2. serve up (listening) after {up:.2f} s, ready (/readyz 200) after"
            f" {ready:.2f} s; RSS {ready_rss:.0f} MB"
        )
        try:
            asyncio.run(idle(base, questions[:5]))  # warm
            rounds = max(1, round(args.seconds / ROUND_SECONDS))
            print(
                f"\n3. throughput: in-process threads, then {args.clients} HTTP clients with the"
                f" load generator at nice 0 and at nice 10, in {rounds} alternating rounds of"
                f" {ROUND_SECONDS:.0f} s each (so the machine's other load hits all alike) ...",
                flush=True,
            )
            context = multiprocessing.get_context("spawn")
            generators = {
                niceness: ProcessPoolExecutor(
                    1, mp_context=context, initializer=os.nice, initargs=(niceness,)
                )
                for niceness in (0, 10)
            }
            answered, seconds = 0, 0.0
            http: dict[int, dict[str, Any]] = {
                n: {"latencies": [], "seconds": 0.0, "errors": {}} for n in generators
            }
            try:
                for pool in generators.values():  # start the processes before timing
                    pool.submit(generate, base, questions[:1], 1, 0.1).result()
                for _ in range(rounds):
                    count, took = in_process_throughput(searcher, questions, ROUND_SECONDS)
                    answered, seconds = answered + count, seconds + took
                    for niceness, pool in generators.items():
                        result = pool.submit(
                            generate, base, questions, args.clients, ROUND_SECONDS
                        ).result()
                        http[niceness]["latencies"] += result["latencies"]
                        http[niceness]["seconds"] += result["seconds"]
                        for error, times in result["errors"].items():
                            errors = http[niceness]["errors"]
                            errors[error] = errors.get(error, 0) + times
            finally:
                for pool in generators.values():
                    pool.shutdown()
            baseline_rps = answered / seconds
            print(f"   in-process Searcher: {baseline_rps:.1f} questions/s")
            for niceness, totals in http.items():
                latencies = totals["latencies"]
                rps = len(latencies) / totals["seconds"]
                print(
                    f"   HTTP, load generator at nice {niceness}: {rps:.1f} requests/s"
                    f" ({rps / baseline_rps:.2f} x in-process), p50"
                    f" {percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f}"
                    f" ms, {len(latencies)} answered, errors {totals['errors'] or 0}",
                    flush=True,
                )
            loaded_rss, peak_rss = rss_mb(process.pid), rss_mb(process.pid, "VmHWM")
            print(f"   RSS after load {loaded_rss:.0f} MB, peak {peak_rss:.0f} MB")

            print("\n4. idle, one question at a time ...", flush=True)
            over_http, in_process, local_cpu = [], [], []
            server_cpu = cpu_seconds(process.pid)
            for _ in range(3):
                http_ms, local_ms = asyncio.run(idle(base, questions, searcher, local_cpu))
                over_http += http_ms
                in_process += local_ms
            server_cpu = cpu_seconds(process.pid) - server_cpu
            p50_http, p50_local = statistics.median(over_http), statistics.median(in_process)
            print(
                f"   over HTTP p50 {p50_http:.2f} ms, in-process p50 {p50_local:.2f} ms:"
                f" overhead {p50_http - p50_local:+.2f} ms"
                f" (p99 {percentile(over_http, 0.99):.1f} vs {percentile(in_process, 0.99):.1f} ms)"
            )
            print(
                f"   CPU a question (immune to waiting for a core): the server"
                f" {server_cpu / len(over_http) * 1000:.2f} ms a request, in-process"
                f" {sum(local_cpu) / len(local_cpu) * 1000:.2f} ms"
            )

            print("\n5. metrics off vs on, in-process ...", flush=True)
            off, on = [], []
            for _ in range(3):
                metrics.disable()
                off += sequential_ms(searcher, questions)
                metrics.enable()
                on += sequential_ms(searcher, questions)
            metrics.disable()
            print(
                f"   p50 off {statistics.median(off):.2f} ms, on {statistics.median(on):.2f} ms"
                f" ({statistics.median(on) - statistics.median(off):+.2f} ms)"
            )
            answer = searcher.search(questions[0])
            for state in ("off", "on"):
                metrics.enable() if state == "on" else metrics.disable()
                calls = 100_000
                started = time.perf_counter()
                for _ in range(calls):
                    metrics.question(answer, 0.01)
                each = (time.perf_counter() - started) / calls * 1e9
                print(f"   recording one question, metrics {state}: {each:,.0f} ns")
            metrics.disable()

            print(f"\n6. push of an 800-word article, {args.pushes} times ...", flush=True)
            pushed = asyncio.run(pushes(base, args.pushes))
            for name, values in pushed.items():
                print(
                    f"   {name:<10} median {statistics.median(values):.2f} s,"
                    f" max {max(values):.2f} s"
                )
            searchable_rss = rss_mb(process.pid, "VmHWM")
            print(f"   peak RSS after the pushes {searchable_rss:.0f} MB")

            print("\n7. SIGTERM with 20 requests in flight ...", flush=True)
            finished = asyncio.run(shutdown_in_flight(base, process, questions[0]))
            code = process.wait(60)
            print(f"   {finished}/20 answered 200; exit status {code}")
            if args.seed_index:
                ups, times = [], []
                for _ in range(5):
                    seed, up, seconds = start_server(args.seed_index, free_port(), log)
                    ups.append(up)
                    times.append(seconds)
                    seed.terminate()
                    seed.wait(30)
                print(
                    f"\n8. on the seed index ({args.seed_index.name}), 5 starts: up after"
                    f" {statistics.median(ups):.2f} s, ready after"
                    f" {statistics.median(times):.2f} s (medians; ready:"
                    f" {', '.join(f'{t:.2f}' for t in times)})"
                )
        except BaseException:
            print("the server's log ends:\n" + "\n".join(log.read_text().splitlines()[-15:]))
            raise
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
            searcher.close()


if __name__ == "__main__":
    main()
