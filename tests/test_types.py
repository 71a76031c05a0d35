"""The type checker, as part of the test run (so CI's one test command runs it): mypy over
``retrieval/`` and ``server/`` (strict) and ``bot/`` (basic), configured in pyproject.toml, finds nothing.

mypy runs in a child process: in-process it raises the interpreter's recursion limit for
the rest of the session, which made a later test's outcome depend on the order of tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_mypy_finds_no_errors() -> None:
    # The packages and settings come from [tool.mypy] in pyproject.toml, read from ROOT.
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", os.fspath(ROOT / ".mypy_cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("Success: no issues found")
