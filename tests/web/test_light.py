"""The query path stays light: `citebot ask` imports nothing of the web layer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import CORPUS, build_index

# Run in a fresh interpreter: `citebot ask` with the fake model, then list what was imported.
SCRIPT = """
import json, sys
from retrieval.cli import Runtime, cli
from tests.fakes import FakeEmbedder
runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
try:
    cli.main(
        ["ask", "--index", sys.argv[1], "Where does the ferry go?"],
        standalone_mode=False,
        obj=runtime,
    )
finally:
    heavy = ("httpx", "feedparser", "protego", "pypdf", "retrieval.web.fetch",
             "retrieval.web.source", "retrieval.web.feeds", "retrieval.pdf")
    print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))
"""


def test_ask_imports_no_web_module(tmp_path: Path) -> None:
    settings = build_index(tmp_path / "index", [CORPUS])
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(settings.index_dir)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent.parent,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []
