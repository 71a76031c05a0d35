"""Damaged index folders: each is refused at open with one line saying how to rebuild,
from the library and from every CLI command; no writer builds on one; --rebuild repairs it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from retrieval.config import Settings
from retrieval.errors import CitebotError, IndexDamagedError
from retrieval.index import MANIFEST, open_index, read_manifest
from retrieval.ingest import ingest
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index
from tests.test_cli import MODEL, assert_one_line_error, run

REPO = Path(__file__).parent.parent.parent

Damage = Callable[[Path], None]


def _manifest_text(text: str | bytes) -> Damage:
    def damage(index_dir: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (index_dir / MANIFEST).write_bytes(data)

    return damage


def _manifest_change(change: Callable[[dict[str, object]], None]) -> Damage:
    def damage(index_dir: Path) -> None:
        path = index_dir / MANIFEST
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return damage


def _generation_file(name: str, change: Callable[[Path], None]) -> Damage:
    def damage(index_dir: Path) -> None:
        change(index_dir / read_manifest(index_dir).folder / name)

    return damage


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(path.stat().st_size))


def _sql(statement: str) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        db = sqlite3.connect(path)
        db.execute(statement)
        db.commit()
        db.close()

    return change


def _vectors(change: Callable[[object], None]) -> Callable[[Path], None]:
    def rewrite(path: Path) -> None:
        import faiss

        index = faiss.read_index(str(path))
        change(index)
        faiss.write_index(index, str(path))

    return rewrite


def _other_dimension(path: Path) -> None:
    import faiss

    old = faiss.read_index(str(path))
    ids = faiss.vector_to_array(old.id_map)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    index.add_with_ids(np.eye(len(ids), 32, dtype=np.float32), ids)
    faiss.write_index(index, str(path))


def _same_fingerprint_with_duplicates(index: object) -> None:
    """Ids {.., a, a+1, a+2, ..} become {.., a+1, a+1, a+1, ..}: same count, extremes, sum."""
    import faiss

    ids = np.sort(faiss.vector_to_array(index.id_map))  # type: ignore[attr-defined]
    a = int(ids[1])
    vector = index.reconstruct(a + 1)  # type: ignore[attr-defined]
    index.remove_ids(np.array([a, a + 2], dtype=np.int64))  # type: ignore[attr-defined]
    index.add_with_ids(np.vstack([vector, vector]), np.array([a + 1, a + 1]))  # type: ignore[attr-defined]


DAMAGES: dict[str, Damage] = {
    "manifest is []": _manifest_text("[]"),
    "manifest is a string": _manifest_text('"citebot-index"'),
    "manifest is a number": _manifest_text("42"),
    "manifest is null": _manifest_text("null"),
    "manifest is empty": _manifest_text(""),
    "manifest is cut short": _manifest_text('{"format": "citebot-index", "gener'),
    "manifest is not UTF-8": _manifest_text(b'{"format": "citebot-index\xff\xfe"}'),
    "manifest is nested deep": _manifest_text("[" * 100_000 + "]" * 100_000),
    "manifest lacks generation": _manifest_change(lambda d: d.pop("generation")),
    "manifest lacks model": _manifest_change(lambda d: d.pop("model")),
    "manifest has an extra key": _manifest_change(lambda d: d.update(colour="blue")),
    "generation is a string": _manifest_change(lambda d: d.update(generation="1")),
    "generation is true": _manifest_change(lambda d: d.update(generation=True)),
    "generation is 0": _manifest_change(lambda d: d.update(generation=0)),
    "generation is 1.0": _manifest_change(lambda d: d.update(generation=1.0)),
    "generation folder is missing": _manifest_change(lambda d: d.update(generation=7)),
    "dimension is a string": _manifest_change(lambda d: d.update(dimension="64")),
    "model is null": _manifest_change(lambda d: d.update(model=None)),
    "chunking is a list": _manifest_change(lambda d: d.update(chunking=[])),
    "store is 0 bytes": _generation_file("store.sqlite", lambda p: p.write_bytes(b"")),
    "store is truncated": _generation_file("store.sqlite", _truncate),
    "store is garbage": _generation_file("store.sqlite", _garbage),
    "store header is garbage": _generation_file(
        "store.sqlite", lambda p: p.write_bytes(b"\0" * 100 + p.read_bytes()[100:])
    ),
    "store is missing": _generation_file("store.sqlite", Path.unlink),
    "store lacks the FTS table": _generation_file("store.sqlite", _sql("DROP TABLE chunks_fts")),
    "store lacks the chunks table": _generation_file("store.sqlite", _sql("DROP TABLE chunks")),
    "store lost a chunk row": _generation_file(
        "store.sqlite", _sql("DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks)")
    ),
    "store lost a keyword row": _generation_file(
        "store.sqlite",
        _sql("DELETE FROM chunks_fts WHERE rowid = (SELECT max(rowid) FROM chunks_fts)"),
    ),
    "store chunk ids moved": _generation_file(
        "store.sqlite",
        _sql("UPDATE chunks SET id = id + 1000 WHERE id = (SELECT min(id) FROM chunks)"),
    ),
    "vectors are 0 bytes": _generation_file("vectors.faiss", lambda p: p.write_bytes(b"")),
    "vectors are truncated": _generation_file("vectors.faiss", _truncate),
    "vectors are garbage": _generation_file("vectors.faiss", _garbage),
    "vectors are missing": _generation_file("vectors.faiss", Path.unlink),
    "vectors have another dimension": _generation_file("vectors.faiss", _other_dimension),
    "vectors lost one": _generation_file(
        "vectors.faiss",
        _vectors(lambda i: i.remove_ids(np.array([i.id_map.at(0)], dtype=np.int64))),  # type: ignore[attr-defined]
    ),
    "vectors hold duplicate ids": _generation_file(
        "vectors.faiss", _vectors(_same_fingerprint_with_duplicates)
    ),
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test corpus, ingested once (copied by each test)."""
    return build_index(tmp_path_factory.mktemp("healthy") / "index", [CORPUS]).index_dir


def damaged_copy(healthy: Path, tmp_path: Path, case: str) -> Settings:
    settings = Settings(index_dir=tmp_path / "index")
    shutil.copytree(healthy, settings.index_dir)
    DAMAGES[case](settings.index_dir)
    return settings


@pytest.fixture(params=list(DAMAGES))
def damaged(request: pytest.FixtureRequest, healthy: Path, tmp_path: Path) -> Settings:
    return damaged_copy(healthy, tmp_path, request.param)


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_open_refuses_with_one_line_naming_the_rebuild(damaged: Settings) -> None:
    with pytest.raises(CitebotError) as caught:
        open_index(damaged.index_dir, FakeEmbedder.name)
    message = str(caught.value)
    assert "\n" not in message
    assert "--rebuild" in message
    assert "Error in" not in message and "faiss/" not in message  # no library internals


@pytest.fixture
def fake_model_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI's model is the fake one, so an index built by it is opened, never a real model."""

    class NoEmbedding(FakeEmbedder):
        def embed(self, texts):  # type: ignore[override]
            raise AssertionError("a damaged index must be refused before anything is embedded")

    monkeypatch.setitem(MODEL, "embedder", NoEmbedding())
    config = tmp_path / "fake-model.toml"
    config.write_text(f'[model]\nname = "{FakeEmbedder.name}"\n')
    monkeypatch.setenv("CITEBOT_CONFIG", str(config))


COMMANDS = [
    ["stats"],
    ["articles"],
    ["article", "ferry"],
    ["ask", "How many ferry crossings?"],
    ["ingest", str(CORPUS)],
]


@pytest.mark.usefixtures("fake_model_config")
def test_every_command_gives_one_line_and_exit_1(damaged: Settings) -> None:
    before = folder_contents(damaged.index_dir)
    for command in COMMANDS:
        line = assert_one_line_error(run(*command, "--index", damaged.index_dir))
        assert line.startswith("Error: ") and "--rebuild" in line, command
    assert folder_contents(damaged.index_dir) == before


def test_a_writer_refuses_to_build_on_it_and_rebuild_repairs_it(damaged: Settings) -> None:
    before = folder_contents(damaged.index_dir)
    with pytest.raises(CitebotError, match="--rebuild"):
        ingest([CORPUS / "ferry.txt"], damaged, FakeEmbedder())
    assert folder_contents(damaged.index_dir) == before, "a refused ingest changes nothing"

    report = ingest([CORPUS], damaged, FakeEmbedder(), rebuild=True)
    assert report.added == 5
    index = open_index(damaged.index_dir, FakeEmbedder.name)
    try:
        assert index.store.counts()[1] == len(index.vectors) > 0
        assert index.vectors.search(FakeEmbedder().embed(["ferry"])[0], 3)
    finally:
        index.close()


@pytest.mark.parametrize("case", ["manifest is []", "store is 0 bytes", "vectors are garbage"])
def test_the_real_command_prints_one_line_to_stderr(
    healthy: Path, tmp_path: Path, case: str
) -> None:
    settings = damaged_copy(healthy, tmp_path, case)
    result = subprocess.run(
        [sys.executable, "-c", "from retrieval.cli import main; main()", "stats"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "CITEBOT_INDEX": str(settings.index_dir)},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: index at "), result.stderr
    assert "--rebuild" in lines[0]


def test_damage_is_an_index_damaged_error_with_the_reason(healthy: Path, tmp_path: Path) -> None:
    settings = damaged_copy(healthy, tmp_path, "store is 0 bytes")
    with pytest.raises(IndexDamagedError, match=r"store\.sqlite is empty"):
        open_index(settings.index_dir, FakeEmbedder.name)
