"""Benchmark: one bot, many corpora, with the real bundled model against the local fake Discord.

Three parts, each in a fresh process (so one's memory does not count in another's):

isolation   Two servers, each with half of the same BBC topics (so their corpora share
            topics); every article's headline is asked with /ask in both servers. Counts
            results citing the other server's articles. Baseline, same run: the bot as
            before corpora (one index of both halves answering both servers).
library     /library add of a 50-entry RSS feed served on 127.0.0.1: time to the
            acknowledgement and until a question in that server is answered from the
            feed. Baseline, same run: ingesting the same feed directly (what
            `citebot ingest URL` does), without Discord.
many        200 server corpora of 20 articles each, questions spread over them: the
            process's RSS, the first question to a closed corpus (open + answer), warm
            questions to open corpora (p50), and RSS after the idle ones are closed.
            Baseline, same run: the same bot with one corpus (RSS, warm p50).

    .venv/bin/python bench/bench_corpora.py [--part isolation|library|many] [--bbc DIR]

Needs ../shared/corpus/bbc-news (benchmarks only; the tests do not).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import BotConfig, CitebotClient  # noqa: E402
from bot.cooldown import Cooldown  # noqa: E402
from bot.hub import BotCorpora, server_corpus_name  # noqa: E402
from bot.serverdata import ServerData  # noqa: E402
from bot.store import BotStore, feedback_path  # noqa: E402
from retrieval.config import (  # noqa: E402
    BotSettings,
    CorpusSettings,
    RouteSettings,
    Settings,
    WebSettings,
)
from retrieval.corpora import SharedEmbedders  # noqa: E402
from retrieval.ingest import ingest  # noqa: E402
from retrieval.models import load_embedder  # noqa: E402
from tests.bot.fake_discord import FakeDiscord, Guild  # noqa: E402

# ../shared beside the checkout (a worktree's is two levels up).
BBC = next(
    (
        folder / "shared" / "corpus" / "bbc-news"
        for folder in (ROOT.parent, ROOT.parent.parent)
        if (folder / "shared" / "corpus" / "bbc-news").is_dir()
    ),
    ROOT.parent / "shared" / "corpus" / "bbc-news",
)
GUILD_A, GUILD_B, GUILD_C = 810000000000000001, 820000000000000001, 830000000000000001
CHANNEL_A, CHANNEL_B, CHANNEL_C = 810000000000000011, 820000000000000011, 830000000000000011
GUILDS = (Guild(GUILD_A, (CHANNEL_A,)), Guild(GUILD_B, (CHANNEL_B,)), Guild(GUILD_C, (CHANNEL_C,)))
ADMIN = 800000000000000101


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def client_for(settings: Settings, embedders: SharedEmbedders | None = None) -> CitebotClient:
    store = BotStore(feedback_path(settings))
    shared = embedders or SharedEmbedders(load_embedder)
    corpora = BotCorpora(settings, ServerData(store.path), shared, load_embedder)
    return CitebotClient(
        BotConfig.from_settings(settings),
        corpora,
        store,
        cooldown=Cooldown(0.0),
        guild_ready_timeout=0.05,
    )


class Session:
    """A running client against a fresh fake Discord."""

    def __init__(self, client: CitebotClient) -> None:
        self.client = client

    async def __aenter__(self) -> FakeDiscord:
        self.fake = FakeDiscord(guilds=GUILDS)
        await self.fake.start()
        self.old = self.fake.point_discord_py_here()
        self.runner = asyncio.create_task(self.client.start("bench-token"))
        await asyncio.wait_for(self.client.wait_until_ready(), 30)
        return self.fake

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        await asyncio.wait_for(self.runner, 10)
        await self.client.corpora.close()
        self.client.store.close()
        FakeDiscord.restore(self.old)
        await self.fake.stop()


# -- isolation -------------------------------------------------------------------------------


def split_bbc(root: Path, per_topic: int) -> tuple[Path, Path, dict[str, str]]:
    """Each topic's first 2 x per_topic articles, alternately to server a and b; headlines."""
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    headlines: dict[str, str] = {}
    for topic in sorted(p.name for p in BBC.iterdir() if p.is_dir()):
        files = sorted((BBC / topic).glob("*.txt"))[: 2 * per_topic]
        for n, path in enumerate(files):
            side = "a" if n % 2 == 0 else "b"
            stem = f"{side}-{topic}-{path.stem}"
            text = path.read_text(encoding="latin-1")
            (root / side / f"{stem}.txt").write_text(text, encoding="utf-8")
            headlines[stem] = text.splitlines()[0].strip()
    return a, b, headlines


async def ask_all(fake: FakeDiscord, asks: list[tuple[int, int, str]]) -> None:
    for start in range(0, len(asks), 8):
        ids = [
            await fake.send_interaction(
                "ask", {"question": q}, guild_id=g, channel_id=c, user_id=ADMIN + i
            )
            for i, (g, c, q) in enumerate(asks[start : start + 8])
        ]
        await fake.wait_for(lambda ids=ids: all(i in fake.answered for i in ids), timeout=120)


def cross_results(client: CitebotClient) -> tuple[int, int, int]:
    """(answers, passages, passages citing the other server's articles)."""
    answers = client.store.answers()
    own = {GUILD_A: "a-", GUILD_B: "b-"}
    passages = [(a.guild_id, p.article_id) for a in answers for p in a.passages]
    cross = sum(1 for guild, article in passages if not article.startswith(own[guild]))
    return len(answers), len(passages), cross


async def isolation(tmp: Path, per_topic: int) -> dict[str, Any]:
    a, b, headlines = split_bbc(tmp / "bbc", per_topic)
    base = Settings(bot=BotSettings(cooldown_seconds=0.0, follow_seconds=0.0))
    routed = replace(
        base,
        corpora=(
            CorpusSettings("a", tmp / "a-index", (str(a),)),
            CorpusSettings("b", tmp / "b-index", (str(b),)),
        ),
        bot=replace(
            base.bot,
            routes=(RouteSettings(GUILD_A, "a"), RouteSettings(GUILD_B, "b")),
            feedback_db=str(tmp / "routed.sqlite"),
        ),
    )
    merged = replace(
        base,
        corpora=(CorpusSettings("both", tmp / "both-index", (str(a), str(b))),),
        bot=replace(base.bot, default_corpus="both", feedback_db=str(tmp / "merged.sqlite")),
    )
    started = time.perf_counter()
    for settings in (routed, merged):
        for corpus in settings.corpora:
            one = settings.for_corpus(corpus.name)
            ingest(list(one.sources), one, load_embedder(one), prune=True)
    built = time.perf_counter() - started
    asks = [
        (guild, channel, question)
        for question in headlines.values()
        for guild, channel in ((GUILD_A, CHANNEL_A), (GUILD_B, CHANNEL_B))
    ]
    results = {}
    for name, settings in (("routed", routed), ("one index (baseline)", merged)):
        client = client_for(settings)
        async with Session(client) as fake:
            started = time.perf_counter()
            await ask_all(fake, asks)
            seconds = time.perf_counter() - started
            results[name] = (*cross_results(client), seconds)
    return {
        "articles": len(headlines),
        "questions": len(asks),
        "built_s": built,
        "results": results,
    }


# -- library ---------------------------------------------------------------------------------


async def library(tmp: Path, entries: int) -> dict[str, Any]:
    from tests.web.samples import Entry, article_text, page, rss
    from tests.web.server import LocalSite, Route

    settings = Settings(
        bot=BotSettings(
            cooldown_seconds=0.0,
            follow_seconds=0.0,
            server_corpora=True,
            data_dir=str(tmp / "bot"),
        ),
        corpora=(CorpusSettings("unused", tmp / "unused-index"),),
        web=WebSettings(delay_seconds=0.0, allow_addresses=("127.0.0.1/32",)),
    )
    topics = [
        f"{w} {n}" for n, w in enumerate(["kayak", "glacier", "orchard", "violin", "comet"] * 10)
    ]
    with LocalSite() as site:
        listed = []
        for n, topic in enumerate(topics[:entries]):
            path = f"/news/{n}.html"
            site.routes[path] = Route(page(f"Club news {topic}", article_text(topic, 8)).encode())
            listed.append(Entry(f"Club news {topic}", site.url(path)))
        site.routes["/feed.xml"] = Route(rss(listed), "application/rss+xml")
        feed = site.url("/feed.xml")

        # Baseline: the same feed read straight into an index, no Discord.
        direct = replace(settings, index_dir=tmp / "direct-index")
        started = time.perf_counter()
        report = ingest([feed], direct, load_embedder(direct), prune=True)
        direct_s = time.perf_counter() - started

        client = client_for(settings)
        async with Session(client) as fake:
            sent = time.perf_counter()
            iid = await fake.send_interaction(
                "library",
                {"url": feed},
                subcommand="add",
                guild_id=GUILD_C,
                channel_id=CHANNEL_C,
                admin=True,
                user_id=ADMIN,
            )
            await fake.wait_for(lambda: iid in fake.acked_at, timeout=30)
            ack_s = fake.acked_at[iid] - fake.interaction_sent_at[iid]
            await fake.wait_for(
                lambda: "added" in (fake.answered.get(iid) or {}).get("content", ""), timeout=300
            )
            done = fake.answered[iid]["content"]
            ask = await fake.send_interaction(
                "ask",
                {"question": "news about the glacier 1"},
                guild_id=GUILD_C,
                channel_id=CHANNEL_C,
                user_id=ADMIN,
            )
            await fake.wait_for(lambda: ask in fake.answered, timeout=60)
            answerable_s = time.perf_counter() - sent
            answer = json.dumps(fake.answered[ask])
    return {
        "entries": entries,
        "ack_s": ack_s,
        "answerable_s": answerable_s,
        "reported": done,
        "answered_from_feed": "Club news" in answer,
        "direct_ingest_s": direct_s,
        "direct_articles": report.articles,
    }


# -- many corpora ----------------------------------------------------------------------------


def link_or_copy(source: str, target: str) -> None:
    """The model files (large, never changed) hard-linked, as ingest does; the rest copied."""
    if os.path.getsize(source) > 1_000_000 and not source.endswith((".sqlite", ".faiss")):
        os.link(source, target)
    else:
        shutil.copy2(source, target)


async def many(tmp: Path, corpora_count: int, per_corpus: int, distinct: int) -> dict[str, Any]:
    files = sorted(BBC.glob("*/*.txt"))
    data_dir = tmp / "bot"
    base = Settings(
        bot=BotSettings(
            cooldown_seconds=0.0, follow_seconds=0.0, server_corpora=True, data_dir=str(data_dir)
        ),
        corpora=(CorpusSettings("unused", tmp / "unused-index"),),
    )
    # `distinct` different corpora, each copied to make corpora_count server corpora.
    started = time.perf_counter()
    built = []
    for n in range(distinct):
        folder = tmp / "src" / str(n)
        folder.mkdir(parents=True)
        for path in files[n * per_corpus : (n + 1) * per_corpus]:
            text = path.read_text(encoding="latin-1")
            (folder / f"{path.parent.name}-{path.name}").write_text(text, encoding="utf-8")
        one = replace(base, index_dir=tmp / "built" / str(n))
        ingest([str(folder)], one, load_embedder(one), prune=True)
        built.append(one.index_dir)
    data = ServerData(feedback_path(base))
    guilds = [900000000000000000 + n for n in range(corpora_count)]
    for n, guild in enumerate(guilds):
        target = data_dir / "servers" / str(guild) / "index"
        shutil.copytree(built[n % distinct], target, copy_function=link_or_copy)
        data.make_server_corpus(guild)
    data.close()
    build_s = time.perf_counter() - started
    questions = [path.read_text(encoding="latin-1").splitlines()[0] for path in files[:50]]

    embedders = SharedEmbedders(load_embedder)
    corpora = BotCorpora(base, ServerData(feedback_path(base)), embedders, load_embedder)
    names = [server_corpus_name(g) for g in guilds]
    embedders.for_settings(corpora.settings_for(names[0])).embed(["warm up"])
    rss_model = rss_mb()

    async def timed(name: str, question: str) -> float:
        started = time.perf_counter()
        async with corpora.use(name) as holder:
            await holder.search(question)
        return (time.perf_counter() - started) * 1000

    # Baseline: one corpus, open, warm.
    await timed(names[0], questions[0])
    one_warm = [await timed(names[0], questions[i % len(questions)]) for i in range(100)]
    rss_one = rss_mb()
    # First questions to closed corpora, then warm questions spread over all of them.
    first = [await timed(name, questions[i % len(questions)]) for i, name in enumerate(names[1:])]
    warm = [
        await timed(names[i % len(names)], questions[(i * 7) % len(questions)]) for i in range(1000)
    ]
    rss_all_open = rss_mb()
    # Idle close: every corpus unused for idle_close_minutes is closed.
    corpora.registry.idle_seconds = 1e-9
    closed = await corpora.registry.close_idle()
    import gc

    gc.collect()
    rss_after_close = rss_mb()
    reopened = [
        await timed(name, questions[i % len(questions)]) for i, name in enumerate(names[:20])
    ]
    await corpora.close()
    return {
        "corpora": corpora_count,
        "articles_each": per_corpus,
        "distinct_contents": distinct,
        "build_s": build_s,
        "models_loaded": len(embedders),
        "rss_model_mb": rss_model,
        "rss_one_corpus_mb": rss_one,
        "one_corpus_warm_p50_ms": statistics.median(one_warm),
        "first_question_closed_p50_ms": statistics.median(first),
        "first_question_closed_p95_ms": pct(first, 0.95),
        "first_question_closed_max_ms": max(first),
        "warm_p50_ms": statistics.median(warm),
        "warm_p95_ms": pct(warm, 0.95),
        "rss_all_open_mb": rss_all_open,
        "closed_idle": len(closed),
        "rss_after_idle_close_mb": rss_after_close,
        "reopen_p50_ms": statistics.median(reopened),
    }


PARTS = ("isolation", "library", "many")


async def run_part(part: str, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"citebot-bench-corpora-{part}-"))
    try:
        if part == "isolation":
            return await isolation(tmp, args.per_topic)
        if part == "library":
            return await library(tmp, args.entries)
        return await many(tmp, args.corpora, args.articles, args.distinct)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS)
    parser.add_argument(
        "--per-topic", type=int, default=24, help="isolation: articles per topic and server"
    )
    parser.add_argument("--entries", type=int, default=50, help="library: feed entries")
    parser.add_argument("--corpora", type=int, default=200)
    parser.add_argument("--articles", type=int, default=20, help="many: articles per corpus")
    parser.add_argument("--distinct", type=int, default=20, help="many: different corpus contents")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.part:
        print(json.dumps(asyncio.run(run_part(args.part, args))))
        return 0
    if not BBC.is_dir():
        print(f"needs the BBC corpus at {BBC}", file=sys.stderr)
        return 2
    results = {}
    for part in PARTS:
        given = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "part"]
        out = subprocess.run(
            [sys.executable, __file__, "--part", part, *given],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        results[part] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{part}: {json.dumps(results[part])}", flush=True)
    iso = results["isolation"]["results"]
    lib = results["library"]
    many_ = results["many"]
    routed = iso["routed"]
    print()
    print(
        f"isolation: {results['isolation']['questions']} questions over {results['isolation']['articles']} articles"
    )
    for name, (answers, passages, cross, seconds) in iso.items():
        print(
            f"  {name:<22} {answers} answers, {passages} passages, {cross} from the other server ({seconds:.0f} s)"
        )
    print(
        f"library add, {lib['entries']}-entry feed: ack {lib['ack_s'] * 1000:.0f} ms, answerable {lib['answerable_s']:.1f} s"
        f" ({lib['reported']!r}); baseline direct ingest {lib['direct_ingest_s']:.1f} s"
    )
    print(
        f"{many_['corpora']} corpora x {many_['articles_each']} articles, {many_['models_loaded']} model(s) loaded:"
    )
    print(
        f"  RSS: model only {many_['rss_model_mb']:.0f} MB, one corpus {many_['rss_one_corpus_mb']:.0f} MB,"
        f" all open {many_['rss_all_open_mb']:.0f} MB, after idle close {many_['rss_after_idle_close_mb']:.0f} MB"
    )
    print(
        f"  warm p50 {many_['warm_p50_ms']:.1f} ms (one corpus, baseline: {many_['one_corpus_warm_p50_ms']:.1f} ms);"
        f" first question to a closed corpus p50 {many_['first_question_closed_p50_ms']:.0f} ms,"
        f" p95 {many_['first_question_closed_p95_ms']:.0f} ms, max {many_['first_question_closed_max_ms']:.0f} ms"
    )
    ok = (
        routed[2] == 0
        and results["isolation"]["questions"] >= 200
        and lib["ack_s"] <= 1
        and lib["answerable_s"] <= 60
        and lib["answered_from_feed"]
        and many_["rss_all_open_mb"] <= 600
        and many_["warm_p50_ms"] <= 10
        and many_["first_question_closed_p50_ms"] <= 300
    )
    print(f"targets: {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
