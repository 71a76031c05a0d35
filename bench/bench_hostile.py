"""Hostile-server benchmark (issue 15): one `citebot ingest` over servers that drip, bomb,
break parsers, nest sitemaps 2,000 deep and list more than they may; and a 50,000-item feed.

    .venv/bin/python bench/bench_hostile.py --baseline /work/main

A local server on 127.0.0.1 serves, for the combined run:
  - /good.html       a good article page (its question must be answerable afterwards);
  - /drip.html       headers sent at 1 byte a second (about 150 s of them);
  - /bomb.html       `Content-Encoding: gzip, gzip`: 1 GB of zeros in about 2 KB;
  - /surrogate.xml   the 146-byte feed with `&#55296;` that breaks feedparser;
  - /ports.xml       a sitemap whose <loc> has port 99999;
  - /chain/0.xml     a chain of 2,000 nested sitemap indexes;
  - /full.rss        300 full-text entries (max_urls = 20 in the config);
and, for the second run, /big.rss: a 50,000-item feed of teasers (delay_seconds = 0, so
the 20 pages it may read are not spaced a second apart).

Each run is `citebot ingest ... --json` in a child process of the checkout under test
(its own .venv), the real bundled model, every other setting at its default. Reported,
beside the same run of the baseline checkout (killed after --baseline-limit seconds):
wall time, exit status, peak RSS (the largest process of the run, from wait4), articles
added, bad URLs named, tracebacks printed, and whether the good page answers its question.
Targets: combined <= 150 s, exit 2, every bad URL named, 0 tracebacks, peak RSS <= 700 MB,
the good page answerable, <= 21 articles; 50,000 items: <= 15 s, <= 400 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
QUESTION = "Why did the lighthouse keepers of Skerryvore go on strike?"
GOOD_TEXT = [
    "The lighthouse keepers of Skerryvore went on strike on Monday over unpaid winter"
    " allowances, leaving the rock tower to be run by a relief crew from Oban.",
    "The keepers said the allowances had been promised for three winters and never paid,"
    " and that the storms this year had kept them on the rock for six weeks at a time.",
    "The lighthouse board said it would meet the keepers' union next week and that the"
    " light itself had never been at risk during the dispute.",
]
BAD_PATHS = ["/drip.html", "/bomb.html", "/surrogate.xml", "/ports.xml", "/chain/0.xml"]
BAD_PORT_URL = "http://127.0.0.1:99999/x"
SURROGATE = (
    b"<rss version='2.0'><channel><title>t</title><item><title>&#55296;</title>"
    b"<link>http://127.0.0.1:8765/a</link></item></channel></rss>"
)
DRIP_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Pad: " + b"p" * 100 + b"\r\n\r\n"


def page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><title>{escape(title)}</title></head><body>"
        f"<nav><a href='/'>Home</a></nav><article><h1>{escape(title)}</h1>{body}</article>"
        "</body></html>"
    ).encode()


def stacked_bomb(gigabytes: float) -> bytes:
    """gzip(gzip(zeros)), built a megabyte at a time."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * 1_000_000
    parts = [inner.compress(zeros) for _ in range(int(gigabytes * 1000))]
    parts.append(inner.flush())
    outer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return outer.compress(b"".join(parts)) + outer.flush()


def full_text_feed(base: str, entries: int) -> bytes:
    words = " ".join(f"Paragraph {n} about the harbour plan and the new quay." for n in range(30))
    items = "".join(
        f"<item><title>Harbour story {n}</title><link>{base}/story/{n}</link>"
        f"<guid>{base}/story/{n}</guid><content:encoded><![CDATA[<p>{words}</p>"
        f"<p>Story {n}.</p>]]></content:encoded></item>"
        for n in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Full text</title>{items}</channel></rss>"
    ).encode()


def teaser_feed(base: str, entries: int) -> bytes:
    items = "".join(
        f"<item><title>Item {n}</title><link>{base}/news/{n}</link><guid>g{n}</guid>"
        f"<description>Teaser {n}.</description></item>"
        for n in range(entries)
    )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Big</title>"
        f"{items}</channel></rss>"
    ).encode()


def sitemap(locs: list[str], index: bool = False) -> bytes:
    tag = "sitemap" if index else "url"
    root = "sitemapindex" if index else "urlset"
    items = "".join(f"<{tag}><loc>{escape(loc)}</loc></{tag}>" for loc in locs)
    return (
        f'<?xml version="1.0"?><{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{items}</{root}>"
    ).encode()


class HostileSite:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, dict[str, str]]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with contextlib.suppress(OSError):  # a client that gave up
                    site.answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        if path == "/drip.html":
            for byte in DRIP_HEAD:
                if self.stop.wait(1.0):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            return
        if path.startswith("/chain/"):
            number = int(path.removeprefix("/chain/").removesuffix(".xml"))
            body, headers = sitemap([f"{self.base}/chain/{number + 1}.xml"], index=True), {}
        elif path.startswith("/news/"):
            body, headers = page(f"News {path}", GOOD_TEXT[1:] * 2), {}
        elif path in self.routes:
            body, headers = self.routes[path]
        else:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()


@dataclass
class Outcome:
    label: str
    seconds: float
    status: int | str
    peak_rss_mb: float
    added: int | str
    named: list[str]
    problems: list[tuple[str, str]]
    tracebacks: int
    answerable: bool | str

    def line(self) -> str:
        return (
            f"  {self.label:<10} {self.seconds:7.1f} s  exit {self.status!s:<8}"
            f" peak RSS {self.peak_rss_mb:7.0f} MB  added {self.added!s:<5}"
            f" bad URLs named {len(self.named)}  tracebacks {self.tracebacks}"
            f"  good page answerable: {self.answerable}"
        )


class RssSampler:
    """The largest RSS of any process of a session, sampled every 0.2 s (for a run that is
    killed before GNU time can report)."""

    def __init__(self, session: int) -> None:
        self.session = session
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    if int(stat.rpartition(")")[2].split()[3]) != self.session:
                        continue
                    status = Path(f"/proc/{entry}/status").read_text()
                    rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
                    self.peak_kb = max(self.peak_kb, int(rss.split()[1]))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_ingest(
    checkout: Path, label: str, urls: list[str], config: str, limit: float, question: str | None
) -> Outcome:
    citebot = str(checkout / ".venv" / "bin" / "citebot")
    with tempfile.TemporaryDirectory(prefix="citebot-hostile-") as folder:
        config_path = Path(folder) / "citebot.toml"
        index = Path(folder) / "index"
        config_path.write_text(f'index_dir = "{index}"\n{config}')
        env = {**os.environ, "CITEBOT_CONFIG": str(config_path)}
        rss_file = Path(folder) / "rss"
        started = time.perf_counter()
        # GNU time reports the largest RSS of the run (wait4: citebot, or a worker it
        # waited for); its own session, so the limit kills the whole tree.
        child = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), citebot, "ingest", *urls, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=folder,
            start_new_session=True,
        )
        timer = threading.Timer(limit, lambda: os.killpg(child.pid, signal.SIGKILL))
        timer.start()
        sampled = RssSampler(child.pid)
        out, err = child.communicate()
        timer.cancel()
        sampled.stop()
        seconds = time.perf_counter() - started
        killed = child.returncode < 0 or seconds >= limit
        code: int | str = f"killed@{limit:g}s" if killed else child.returncode
        try:
            peak_kb = int(rss_file.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            peak_kb = sampled.peak_kb  # killed: GNU time died with it; sampled instead
        text = err.decode(errors="replace")
        try:
            report = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
            added: int | str = report["added"]
            problems = [(s["where"], s["reason"]) for s in report["skipped"]]
        except (ValueError, IndexError, KeyError):
            added, problems = "none", []
        named = [where for where, _ in problems]
        answerable: bool | str = "n/a"
        if question is not None:
            answerable = False
            if index.exists():
                asked = subprocess.run(
                    [citebot, "ask", question, "--json"],
                    capture_output=True,
                    env=env,
                    cwd=folder,
                    check=False,
                )
                answerable = "good.html" in asked.stdout.decode(errors="replace")
        return Outcome(
            label,
            seconds,
            code,
            peak_kb / 1024,
            added,
            named,
            problems,
            text.count("Traceback"),
            answerable,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="another checkout (with .venv) to compare")
    parser.add_argument("--baseline-limit", type=float, default=300.0, help="seconds")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds, this checkout")
    parser.add_argument("--bomb-gb", type=float, default=1.0)
    parser.add_argument("--only", choices=["combined", "big"], default=None)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    site = HostileSite()
    base = site.base
    site.routes["/good.html"] = (page("Skerryvore keepers strike", GOOD_TEXT * 2), {})
    site.routes["/bomb.html"] = (
        stacked_bomb(args.bomb_gb),
        {"Content-Type": "text/html", "Content-Encoding": "gzip, gzip"},
    )
    site.routes["/surrogate.xml"] = (SURROGATE, {"Content-Type": "application/rss+xml"})
    site.routes["/ports.xml"] = (
        sitemap([BAD_PORT_URL]),
        {"Content-Type": "application/xml"},
    )
    site.routes["/full.rss"] = (full_text_feed(base, 300), {"Content-Type": "application/rss+xml"})
    site.routes["/big.rss"] = (teaser_feed(base, 50_000), {"Content-Type": "application/rss+xml"})
    print(
        f"bomb: {len(site.routes['/bomb.html'][0]):,} bytes for {args.bomb_gb:g} GB;"
        f" big feed: {len(site.routes['/big.rss'][0]):,} bytes"
    )
    checkouts = [(HERE, "this", args.limit)]
    if args.baseline:
        checkouts.insert(0, (args.baseline.resolve(), "baseline", args.baseline_limit))
    try:
        if args.only in (None, "combined"):
            urls = [base + p for p in ["/good.html", *BAD_PATHS, "/full.rss"]]
            print("combined run (good page, drip, bomb, surrogate, port, chain, 300 entries):")
            for checkout, label, limit in checkouts:
                outcome = run_ingest(
                    checkout, label, urls, "[web]\nmax_urls = 20\n", limit, QUESTION
                )
                print(outcome.line(), flush=True)
                # The port sitemap is fine: the bad URL is the one it lists.
                bad = [base + p for p in BAD_PATHS if p != "/ports.xml"] + [BAD_PORT_URL]
                missing = [url for url in bad if url not in outcome.named]
                print(f"             bad URLs not named: {missing or 'none'}")
                for where, reason in outcome.problems:
                    print(f"             {where[:70]}: {reason[:110]}")
        if args.only in (None, "big"):
            print("50,000-item feed, max_urls = 20, delay_seconds = 0:")
            config = "[web]\nmax_urls = 20\ndelay_seconds = 0.0\n"
            for checkout, label, limit in checkouts:
                outcome = run_ingest(checkout, label, [base + "/big.rss"], config, limit, None)
                print(outcome.line(), flush=True)
    finally:
        site.close()


if __name__ == "__main__":
    main()
