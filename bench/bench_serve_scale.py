"""Benchmark: a push to `citebot serve` over an index of a million chunks.

    .venv/bin/python bench/bench_serve_scale.py --seed /tmp/bbc-index --work /tmp/serve-scale

Builds the big index as bench_scale.py does (its seed's articles copied until --chunks,
later copies' vectors perturbed; written through the library's writer, the vector index
approximate as ingest would make it) from --seed, here any citebot index built with the
bundled model (the BBC one, say), kept in --work for the next run. Then starts the real
server on it and PUTs an 800-word article --pushes times: the time until the response
(searchable) and until GET /v1/search finds it, against an unchanged PUT of the same
article (the fixed part of a write); and the server's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_scale import build, nearest_neighbour_cosine, read_seed  # noqa: E402
from bench_serve import free_port, pushes, rss_mb, start_server  # noqa: E402

from retrieval.config import Settings  # noqa: E402
from retrieval.index import open_index  # noqa: E402
from retrieval.models import load_embedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--pushes", type=int, default=3)
    args = parser.parse_args()

    index_dir = args.work / "index"
    if not (index_dir / "index.json").exists():
        settings = Settings(index_dir=args.seed)
        embedder = load_embedder(settings)
        seed = open_index(args.seed, embedder.name)
        rows = read_seed(seed)
        cosine = nearest_neighbour_cosine(seed.vectors.vectors()[1])
        started = time.perf_counter()
        built = build(index_dir, seed, embedder, rows, set(), args.chunks, cosine)
        print(f"built {built['chunks']:,} chunks in {time.perf_counter() - started:.0f} s")
    # A write at this size takes longer than the default request timeout.
    config = args.work / "serve.toml"
    config.write_text("[serve]\nrequest_timeout_seconds = 900.0\n", encoding="utf-8")
    port = free_port()
    log = args.work / "serve.log"
    process, up, ready = start_server(index_dir, port, log, config=config)
    try:
        print(
            f"serve up after {up:.2f} s, ready after {ready:.2f} s, RSS {rss_mb(process.pid):.0f} MB"
        )
        base = f"http://127.0.0.1:{port}"
        timed = asyncio.run(pushes(base, args.pushes))
        for name, values in timed.items():
            print(
                f"  {name:<10} median {statistics.median(values):.1f} s,"
                f" max {max(values):.1f} s ({', '.join(f'{v:.1f}' for v in values)})"
            )
        print(f"peak RSS {rss_mb(process.pid, 'VmHWM'):.0f} MB, now {rss_mb(process.pid):.0f} MB")
    finally:
        process.terminate()
        process.wait(120)


if __name__ == "__main__":
    main()
