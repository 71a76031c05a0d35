"""The installed `citebot serve`, a real process with the real bundled model, on 127.0.0.1:
ready, the same JSON as `citebot ask --json`, pushes one after another (each a new
generation), and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CORPUS

pytestmark = pytest.mark.model

CITEBOT = Path(sys.executable).with_name("citebot")
ADMIN = "admin-key-for-the-process-test"


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEBOT_")}
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra})
    return env


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve-process") / "index"
    result = subprocess.run(
        [CITEBOT, "ingest", CORPUS, "--index", folder],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture
def served(index: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [CITEBOT, "serve", "--index", index, "--port", str(port)],
        env=environment(CITEBOT_ADMIN_KEYS=ADMIN),
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        time.sleep(0.05)
    else:
        pytest.fail("serve was not ready within 120 s")
    yield base, process
    if process.poll() is None:
        process.terminate()
        process.wait(30)
    log.close()
    text = (tmp_path / "serve.log").read_text()
    assert ADMIN not in text  # the key is never logged
    assert "zanzibarquestion" not in text  # nor a question asked


def test_the_access_log_names_the_path_not_the_question(
    served: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base, process = served
    query = urllib.parse.urlencode({"q": "What did zanzibarquestion say?"})
    status, _ = call(base, "GET", f"/v1/search?{query}")
    assert status == 200
    process.terminate()
    process.wait(30)
    text = (tmp_path / "serve.log").read_text()
    assert '"GET /v1/search" 200' in text
    assert "zanzibarquestion" not in text


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {ADMIN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_search_equals_ask_json_with_the_real_model(
    served: tuple[str, subprocess.Popen[bytes]], index: Path
) -> None:
    base, _ = served
    question = "How often will boats sail to the island once winter begins?"
    status, answer = call(base, "GET", "/v1/search?" + urllib.parse.urlencode({"q": question}))
    assert status == 200
    cli = subprocess.run(
        [CITEBOT, "ask", question, "--index", index, "--json"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=300,
        check=True,
    )
    assert answer == json.loads(cli.stdout)
    assert answer["results"][0]["article"]["id"] == "ferry"


def test_pushes_one_after_another_are_each_searchable(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """Each push writes a new generation; the server's model was loaded from the first,
    which later writes delete (its model files are found in the current one)."""
    base, _ = served
    generations = []
    for n in range(4):
        marker = f"quorvex{n}"
        body = {"title": f"Pushed {n}", "text": f"The {marker} festival opens on Friday."}
        status, result = call(base, "PUT", f"/v1/articles/pushed-{n}", body)
        assert status == 201, result
        generations.append(result["generation"])
        query = urllib.parse.urlencode({"q": f"When does the {marker} festival open?"})
        _, answer = call(base, "GET", f"/v1/search?{query}")
        assert answer["results"][0]["article"]["id"] == f"pushed-{n}"
    assert generations == sorted(set(generations))
    status, result = call(base, "DELETE", "/v1/articles/pushed-0")
    assert status == 200 and result["result"] == "removed"


def test_sigterm_lets_requests_in_flight_finish(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, process = served
    import aiohttp

    async def ask_many() -> list[int]:
        # SIGTERM once every request has reached the server (its headers were sent): a
        # request still connecting would rightly be refused, not "in flight".
        sent = asyncio.Event()
        count = 0

        async def headers_sent(*_: Any) -> None:
            nonlocal count
            count += 1
            if count == 10:
                sent.set()

        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(headers_sent)
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with aiohttp.ClientSession(headers=headers, trace_configs=[trace]) as s:

            async def ask(n: int) -> int:
                async with s.get(base + "/v1/search", params={"q": f"ferry crossings {n}"}) as r:
                    await r.read()
                    return r.status

            tasks = [asyncio.create_task(ask(n)) for n in range(10)]
            await asyncio.wait_for(sent.wait(), 60)
            await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            return list(await asyncio.gather(*tasks))

    assert asyncio.run(ask_many()) == [200] * 10
    assert process.wait(60) == 0
