"""The type checker, as part of the test run (so CI's one test command runs it): mypy over
``retrieval/`` (strict) and ``bot/`` (basic), configured in pyproject.toml, finds nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).parent.parent


def test_mypy_finds_no_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # The packages and settings come from [tool.mypy] in pyproject.toml, read from here.
    monkeypatch.chdir(ROOT)
    report, errors, status = api.run(["--cache-dir", os.fspath(ROOT / ".mypy_cache")])
    assert status == 0, report + errors
    assert report.startswith("Success: no issues found")
