"""A real `citebot serve` application on 127.0.0.1 (aiohttp's test server) over a small
index built with the fake embedder."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from retrieval import metrics
from retrieval.config import ServeSettings, Settings
from server.app import make_app
from server.corpora import Corpora
from server.security import Keys
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index, with_search

READ_KEY = "read-key-0123456789"
ADMIN_KEY = "admin-key-9876543210"
KEYS = Keys((READ_KEY.encode(),), (ADMIN_KEY.encode(),))
NO_KEYS = Keys()

Start = Callable[..., Awaitable[TestClient[Any, Any]]]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def serving(
    corpora: Corpora, serve: ServeSettings, keys: Keys = NO_KEYS
) -> TestClient[Any, Any]:
    """A started client of an app over ``corpora``, once its main corpus is open (the
    caller closes it)."""
    client: TestClient[Any, Any] = TestClient(
        TestServer(make_app(corpora, serve, keys), host="127.0.0.1")
    )
    await client.start_server()
    for _ in range(500):
        if corpora.ready or corpora.problem:
            break
        await asyncio.sleep(0.01)
    assert corpora.ready, corpora.problem
    return client


@pytest.fixture(scope="module")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test corpus, ingested once per module (copied before a test writes to it)."""
    folder = tmp_path_factory.mktemp("serve-index") / "index"
    build_index(folder, [CORPUS])
    return folder


@pytest.fixture
def index_settings(built_index: Path, tmp_path: Path) -> Settings:
    """Settings over a copy of the module's index: a test may push to it."""
    copy = tmp_path / "index"
    shutil.copytree(built_index, copy)
    # The fake model is not calibrated for "not covered": answer everything by default.
    return with_search(Settings(index_dir=copy), min_confidence=0.0)


@pytest.fixture
async def start(index_settings: Settings) -> AsyncIterator[Start]:
    """``await start(keys=..., serve=..., settings=...)``: a client of a running server,
    ready to answer (metrics on, in a fresh registry)."""
    clients: list[TestClient[Any, Any]] = []

    async def started(
        keys: Keys = NO_KEYS,
        serve: ServeSettings | None = None,
        settings: Settings | None = None,
        **serve_changes: Any,
    ) -> TestClient[Any, Any]:
        chosen = settings or index_settings
        serve_settings = replace(serve or chosen.serve, **serve_changes)
        metrics.disable()
        metrics.enable()
        corpora = Corpora({"default": chosen}, lambda s: FakeEmbedder())
        client = await serving(corpora, serve_settings, keys)
        clients.append(client)
        return client

    yield started
    for client in clients:
        await client.close()
    metrics.disable()
