"""Fixtures for the web tests: a local site on 127.0.0.1 and settings that do not wait."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from retrieval.config import WebSettings
from tests.web.server import LocalSite


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


@pytest.fixture
def web_settings() -> WebSettings:
    """No politeness delay (the tests that check it set one), a short timeout."""
    return WebSettings(delay_seconds=0.0, timeout_seconds=2.0, user_agent="citebot-tests/1.0")
