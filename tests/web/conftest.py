"""Fixtures for the web tests: a local site on 127.0.0.1 (bare, or serving the news site) and
settings that do not wait."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import Settings, WebSettings
from tests.web import newsroom
from tests.web.server import LocalSite


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


@pytest.fixture
def web_settings() -> WebSettings:
    """No politeness delay (the tests that check it set one), a short timeout."""
    return WebSettings(delay_seconds=0.0, timeout_seconds=2.0, user_agent="citebot-tests/1.0")


@pytest.fixture
def settings(tmp_path: Path, web_settings: WebSettings) -> Settings:
    """An index in a fresh folder; requests time out after half a second."""
    return Settings(index_dir=tmp_path / "index", web=replace(web_settings, timeout_seconds=0.5))


@pytest.fixture
def news(site: LocalSite) -> LocalSite:
    """The local site serving the sample news site (tests.web.newsroom)."""
    newsroom.serve(site)
    return site
