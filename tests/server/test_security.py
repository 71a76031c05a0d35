"""Keys, refusals, limits, the rate limit, CORS and problem+json: against a real server."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from retrieval.cli import Runtime, cli
from server import api
from server.security import Keys, RateLimiter, bearer_key, check_binding, is_loopback
from tests.fakes import FakeEmbedder
from tests.server.conftest import ADMIN_KEY, KEYS, READ_KEY, Start, bearer

PUSH = {"title": "Pushed", "text": "A pushed article about harbour seals."}


async def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    problem: dict[str, Any] = await response.json()
    assert problem["status"] == status and problem["type"] == "about:blank"
    detail = problem["detail"]
    assert "\n" not in detail and "Traceback" not in detail
    for leak in ("aiohttp", "sqlite", "faiss", "/tmp", "/work", ".py"):
        assert leak not in detail.lower(), detail
    return problem


async def test_without_keys_everything_is_open_on_loopback(start: Start) -> None:
    client = await start()
    assert (await client.get("/v1/search", params={"q": "ferry"})).status == 200
    assert (await client.put("/v1/articles/p1", json=PUSH)).status == 201


async def test_keys_decide_what_a_request_may_do(start: Start) -> None:
    client = await start(keys=KEYS)
    search = ("/v1/search", {"q": "ferry"})
    no_key = await client.get(search[0], params=search[1])
    problem = await assert_problem(no_key, 401)
    assert no_key.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in problem["detail"]
    wrong = await client.get(search[0], params=search[1], headers=bearer("nope"))
    await assert_problem(wrong, 401)
    basic = await client.get(search[0], params=search[1], headers={"Authorization": READ_KEY})
    await assert_problem(basic, 401)  # a key must come as a bearer token
    for key in (READ_KEY, ADMIN_KEY):
        ok = await client.get(search[0], params=search[1], headers=bearer(key))
        assert ok.status == 200
        assert (await client.get("/v1/stats", headers=bearer(key))).status == 200
        assert (await client.get("/metrics", headers=bearer(key))).status == 200
    await assert_problem(await client.get("/metrics"), 401)
    forbidden = await client.put("/v1/articles/p1", json=PUSH, headers=bearer(READ_KEY))
    await assert_problem(forbidden, 403)
    await assert_problem(await client.delete("/v1/articles/ferry", headers=bearer(READ_KEY)), 403)
    await assert_problem(await client.put("/v1/articles/p1", json=PUSH), 401)
    pushed = await client.put("/v1/articles/p1", json=PUSH, headers=bearer(ADMIN_KEY))
    assert pushed.status == 201
    # Probes are open.
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_keys_are_never_logged(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = await start(keys=KEYS)
    await client.get("/v1/search", params={"q": "ferry"}, headers=bearer(READ_KEY))
    await client.put("/v1/articles/p1", json=PUSH, headers=bearer(ADMIN_KEY))
    await client.put("/v1/articles/p2", json=PUSH, headers=bearer(READ_KEY))
    await client.get("/v1/search", params={"q": "ferry"}, headers=bearer(ADMIN_KEY + "x"))
    await client.post("/key", data={"key": READ_KEY, "next": "/"}, allow_redirects=False)
    assert caplog.records  # the server did log
    assert READ_KEY not in caplog.text and ADMIN_KEY not in caplog.text
    assert READ_KEY not in repr(KEYS) and ADMIN_KEY not in repr(KEYS)


def test_every_configured_key_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    keys = Keys.from_environment(
        {"CITEBOT_API_KEYS": " r1, r2 ,,r3", "CITEBOT_ADMIN_KEYS": "a1,a2"}
    )
    assert keys.access("a1") == 2 and keys.access("r2") == 1 and keys.access("x") == 0
    assert len(compared) == 15  # every key, every time, even after a match
    assert keys.access("") == 0 and keys.access(None) == 0


def test_bearer_and_loopback_and_binding() -> None:
    assert bearer_key("Bearer abc") == "abc" and bearer_key("bearer  abc ") == "abc"
    assert bearer_key("Basic abc") is None and bearer_key("Bearer") is None
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("127.8.9.10")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("::")
    check_binding("127.0.0.1", Keys())
    check_binding("0.0.0.0", KEYS)
    with pytest.raises(Exception, match=r"refusing to listen on 0\.0\.0\.0 without keys"):
        check_binding("0.0.0.0", Keys())


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    runtime = Runtime(make_embedder=lambda settings, **_: FakeEmbedder())
    result = CliRunner().invoke(
        cli, ["serve", "--host", "0.0.0.0", "--index", str(tmp_path)], obj=runtime
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0 without keys" in lines[0]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"q": ""}, "Please ask a question"),
        ({"q": "   "}, "Please ask a question"),
        ({}, "give it as q"),
        ({"q": "x" * 1001}, "1,001 characters"),
        ({"q": "ferry", "k": "0"}, "k must be a whole number from 1 to 50"),
        ({"q": "ferry", "k": "many"}, "k must be"),
        ({"q": "ferry", "after": "2024-13-01"}, "YYYY-MM-DD"),
        ({"q": "ferry", "after": "2024-05-01", "before": "2024-01-01"}, "date range is empty"),
        ({"q": "ferry", "colour": "red"}, "Unknown field(s): colour"),
        ({"q": "ferry", "source": "nowhere.txt"}, "nowhere.txt"),
    ],
)
async def test_bad_questions_are_400_problems(
    start: Start, params: dict[str, str], detail: str
) -> None:
    client = await start()
    problem = await assert_problem(await client.get("/v1/search", params=params), 400)
    assert detail in problem["detail"]


async def test_http_refusals_are_problems_too(start: Start) -> None:
    client = await start(max_body_bytes=2000)
    await assert_problem(await client.get("/v1/nothing"), 404)
    wrong_method = await client.patch("/v1/search")
    await assert_problem(wrong_method, 405)
    big = await client.post("/v1/search", json={"q": "x" * 5000})
    await assert_problem(big, 413)
    await assert_problem(await client.post("/v1/search", data="{not json"), 415)
    bad_json = await client.post(
        "/v1/search", data="{not json", headers={"Content-Type": "application/json"}
    )
    await assert_problem(bad_json, 400)
    await assert_problem(await client.post("/v1/search", json=["q"]), 400)


async def test_a_failure_inside_is_a_500_without_details(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("cannot open /srv/secret/index/store.sqlite (sqlite3)")

    monkeypatch.setattr(api, "answer", broken)
    client = await start()
    problem = await assert_problem(await client.get("/v1/search", params={"q": "ferry"}), 500)
    assert problem["detail"] == "Something went wrong on the server."


async def test_a_slow_request_times_out(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(*args: object) -> None:
        await asyncio.sleep(5)

    monkeypatch.setattr(api, "answer", slow)
    client = await start(request_timeout_seconds=0.2)
    problem = await assert_problem(await client.get("/v1/search", params={"q": "ferry"}), 503)
    assert "too long" in problem["detail"]


async def test_rate_limit_per_key_with_retry_after(start: Start) -> None:
    client = await start(keys=KEYS, rate_limit_per_minute=3, rate_limit_loopback=True)
    for _ in range(3):
        ok = await client.get("/v1/stats", headers=bearer(READ_KEY))
        assert ok.status == 200
    limited = await client.get("/v1/stats", headers=bearer(READ_KEY))
    await assert_problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    # Another key has its own allowance; requests without a key count per address.
    assert (await client.get("/v1/stats", headers=bearer(ADMIN_KEY))).status == 200
    for _ in range(3):
        await assert_problem(await client.get("/v1/stats"), 401)
    await assert_problem(await client.get("/v1/stats"), 429)
    # Probes are never limited.
    assert (await client.get("/healthz")).status == 200


async def test_loopback_is_not_rate_limited_by_default(start: Start) -> None:
    client = await start(rate_limit_per_minute=2)
    statuses = [(await client.get("/v1/stats")).status for _ in range(6)]
    assert statuses == [200] * 6


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.retry_after("a") == 0 for _ in range(60))
    assert limiter.retry_after("a") == 1
    now[0] += 1.0
    assert limiter.retry_after("a") == 0 and limiter.retry_after("a") == 1
    assert RateLimiter(0).retry_after("a") == 0


async def test_cors_is_off_unless_the_origin_is_allowed(start: Start) -> None:
    closed = await start()
    plain = await closed.get("/v1/stats", headers={"Origin": "https://cms.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers

    client = await start(cors_origins=("https://cms.example",))
    preflight = {"Origin": "https://cms.example", "Access-Control-Request-Method": "PUT"}
    allowed = await client.options("/v1/articles/a1", headers=preflight)
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://cms.example"
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    other = {**preflight, "Origin": "https://evil.example"}
    await assert_problem(await client.options("/v1/articles/a1", headers=other), 403)
    simple = await client.get("/v1/stats", headers={"Origin": "https://cms.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "https://cms.example"
    evil = await client.get("/v1/stats", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers


async def test_not_ready_is_503_with_retry_after(start: Start) -> None:
    client = await start()
    corpora = client.server.app[api.CORPORA]
    corpora.ready = False
    response = await client.get("/v1/search", params={"q": "ferry"})
    await assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    assert (await client.get("/readyz")).status == 503
    assert json.loads(await (await client.get("/healthz")).text()) == {"status": "up"}
