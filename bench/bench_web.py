"""Web ingest benchmark: pages served over HTTP against the same pages as local HTML files.

    .venv/bin/python bench/bench_web.py ../shared/corpus/bbc-news [--articles 1000]

Writes N BBC articles as HTML pages (with navigation and a footer, like a site) into a
scratch folder, serves that folder with `python -m http.server` on 127.0.0.1 in another
process, and measures in the same run, with the real model:

  - local: `ingest FOLDER` of the HTML files (the baseline);
  - web: `ingest SITEMAP_URL` of the same pages over HTTP (politeness delay 0 for the
    local server; fetching runs ahead of embedding in a worker thread);
  - re-sync of the sitemap: chunks embedded and requests made (lastmod unchanged);
  - a feed of `--feed-entries` teaser entries linking to pages: first sync, then a second
    sync: chunks embedded and the requests the server saw.
"""

from __future__ import annotations

import argparse
import html
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from retrieval.config import Settings, WebSettings
from retrieval.embedding import Embedder, SentenceTransformerEmbedder
from retrieval.ingest import IngestReport, ingest

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/sport/">Sport</a></nav>
<article><h1>{title}</h1>{body}</article>
<footer>Example News. All rights reserved.</footer></body></html>
"""


def bbc_articles(folder: Path, count: int) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) of the first ``count`` BBC files, in a stable order."""
    found = []
    for path in sorted(folder.rglob("*.txt"))[:count]:
        lines = [x.strip() for x in path.read_text(encoding="latin-1").split("\n") if x.strip()]
        found.append((lines[0], lines[1:]))
    return found


def write_site(root: Path, articles: list[tuple[str, list[str]]]) -> None:
    pages = root / "pages"
    pages.mkdir(parents=True)
    for number, (title, paragraphs) in enumerate(articles, start=1):
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        page = PAGE.format(title=html.escape(title), body=body)
        (pages / f"{number:04d}.html").write_text(page, encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")


def sitemap(base: str, count: int) -> str:
    urls = "".join(
        f"<url><loc>{base}/pages/{n:04d}.html</loc><lastmod>2024-01-01</lastmod></url>"
        for n in range(1, count + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )


def feed(base: str, articles: list[tuple[str, list[str]]]) -> str:
    items = "".join(
        f"<item><title>{html.escape(title)}</title><link>{base}/pages/{n:04d}.html</link>"
        f"<guid>{base}/pages/{n:04d}.html</guid>"
        f"<pubDate>Mon, 01 Jan 2024 09:{n % 60:02d}:00 GMT</pubDate>"
        f"<description>{html.escape(paragraphs[0][:200])}</description></item>"
        for n, (title, paragraphs) in enumerate(articles, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed</title><link>{base}/</link><description>x</description>"
        f"{items}</channel></rss>"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`python -m http.server` in its own process; its request log read from stderr."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder.parent / "server.log"
        self._log_file = open(self.log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[tuple[str, int]]:
        """(path, status) of every request so far."""
        self._log_file.flush()
        lines = self.log.read_text().splitlines()
        found = [re.search(r'"GET (\S+) HTTP/[\d.]+" (\d{3})', line) for line in lines]
        return [(m.group(1), int(m.group(2))) for m in found if m]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._log_file.close()


def timed_ingest(
    sources: list[str], settings: Settings, embedder: Embedder
) -> tuple[float, IngestReport]:
    started = time.perf_counter()
    report = ingest(sources, settings, embedder)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path, help="folder of BBC .txt files")
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--feed-entries", type=int, default=50)
    args = parser.parse_args()

    articles = bbc_articles(args.corpus, args.articles)
    with tempfile.TemporaryDirectory(prefix="citebot-bench-web-") as scratch:
        root = Path(scratch) / "site"
        write_site(root, articles)
        server = Server(root)
        try:
            (root / "sitemap.xml").write_text(sitemap(server.base, len(articles)))
            (root / "feed.xml").write_text(feed(server.base, articles[: args.feed_entries]))
            base = Settings(web=WebSettings(delay_seconds=0.0))
            embedder = SentenceTransformerEmbedder(base.model)
            embedder.embed(["warm up the model outside the timings"])

            local = replace(base, index_dir=Path(scratch) / "local")
            local_seconds, local_report = timed_ingest([str(root / "pages")], local, embedder)
            web = replace(base, index_dir=Path(scratch) / "web")
            before = len(server.requests())
            web_seconds, web_report = timed_ingest([f"{server.base}/sitemap.xml"], web, embedder)
            first_requests = len(server.requests()) - before
            before = len(server.requests())
            resync_seconds, resync = timed_ingest([f"{server.base}/sitemap.xml"], web, embedder)
            resync_requests = server.requests()[before:]

            feeds = replace(base, index_dir=Path(scratch) / "feed")
            _, feed_first = timed_ingest([f"{server.base}/feed.xml"], feeds, embedder)
            before = len(server.requests())
            feed_seconds, feed_again = timed_ingest([f"{server.base}/feed.xml"], feeds, embedder)
            feed_requests = server.requests()[before:]
        finally:
            server.stop()

    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, Python {platform.python_version()}"
    )
    print(f"{len(articles)} BBC articles as HTML pages")
    print(
        f"local HTML files : {local_seconds:7.1f} s  {local_report.articles} articles,"
        f" {local_report.chunks_embedded} chunks"
    )
    print(
        f"web (sitemap)    : {web_seconds:7.1f} s  {web_report.articles} articles,"
        f" {web_report.chunks_embedded} chunks, {first_requests} requests"
    )
    print(f"web / local      : {web_seconds / local_seconds:.2f}x")
    print(
        f"sitemap re-sync  : {resync_seconds:7.1f} s  {resync.chunks_embedded} chunks embedded,"
        f" {len(resync_requests)} requests: {resync_requests}"
    )
    print(
        f"feed of {args.feed_entries}: first sync {feed_first.chunks_embedded} chunks;"
        f" second sync {feed_seconds:.2f} s, {feed_again.chunks_embedded} chunks embedded,"
        f" {feed_again.unchanged} unchanged, requests: {feed_requests}"
    )


if __name__ == "__main__":
    main()
