"""Several corpora: the `[corpora.NAME]` config, `--corpus` on the CLI, and the registry
that opens corpora on first use, closes idle ones and shares one model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.config import DEFAULT_CORPUS, CorpusSettings, Settings, load_settings
from retrieval.corpora import CorpusRegistry, Schedule, SharedEmbedders
from retrieval.errors import ConfigError
from tests.fakes import FakeEmbedder
from tests.test_cli import MODEL, run
from tests.test_config import write_config

TWO = """
[corpora.politics]
index_dir = "politics-index"
sources = ["https://news.example.org/opinion/feed.xml"]

[corpora.tech]
index_dir = "tech-index"
sources = ["articles/tech"]
"""


def test_an_existing_config_is_one_corpus_named_default(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'index_dir = "idx"\nsources = ["a", "https://x.org/feed"]\n')
    settings = load_settings(path)
    assert settings.corpora == ()
    assert settings.corpus_list() == (
        CorpusSettings(
            DEFAULT_CORPUS, tmp_path / "idx", (str(tmp_path / "a"), "https://x.org/feed")
        ),
    )
    assert settings.main_corpus() == DEFAULT_CORPUS
    assert settings.for_corpus(DEFAULT_CORPUS) == settings
    # No file at all: one default corpus in the user's data folder.
    assert Settings().corpus_names() == (DEFAULT_CORPUS,)


def test_named_corpora_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, TWO))
    assert settings.corpus_names() == ("politics", "tech")
    tech = settings.for_corpus("tech")
    assert tech.index_dir == tmp_path / "tech-index"
    assert tech.sources == (str(tmp_path / "articles" / "tech"),)
    assert settings.for_corpus("politics").sources == ("https://news.example.org/opinion/feed.xml",)
    with pytest.raises(ConfigError, match=r"no corpus named 'sports'.*politics, tech"):
        settings.for_corpus("sports")
    with pytest.raises(ConfigError, match="choose one with --corpus"):
        settings.main_corpus()


def test_top_level_index_beside_named_corpora_is_default(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, 'index_dir = "main"\n' + TWO))
    assert settings.corpus_names() == (DEFAULT_CORPUS, "politics", "tech")
    assert settings.main_corpus() == DEFAULT_CORPUS
    assert settings.for_corpus(DEFAULT_CORPUS).index_dir == tmp_path / "main"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[corpora.a]\nsources = []\n", r"\[corpora.a\] needs index_dir"),
        (
            '[corpora.a]\nindex_dir = "x"\nextra = 1\n',
            r"unknown setting\(s\) in \[corpora.a\]: extra",
        ),
        ('[corpora."a b"]\nindex_dir = "x"\n', "corpus name 'a b'"),
        ('index_dir = "y"\n[corpora.default]\nindex_dir = "x"\n', "same corpus"),
        (
            TWO + '[[bot.routes]]\nguild = 1\ncorpus = "sports"\n',
            r"\[\[bot.routes\]\] guild 1: no corpus named 'sports'",
        ),
        ("[[bot.routes]]\nguild = 1\n", r"\[\[bot.routes\]\] needs corpus"),
        (TWO + '[bot]\ndefault_corpus = "x"\n', r"\[bot\] default_corpus: no corpus named 'x'"),
        ('[bot]\nmessage_content = "sometimes"\n', "message_content must be"),
        ("[bot]\nserver_corpora = true\n", "needs \\[bot\\] data_dir"),
    ],
)
def test_bad_corpus_config_is_one_clear_error(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_settings(write_config(tmp_path, text))


def test_routes_and_bot_corpus_settings(tmp_path: Path) -> None:
    text = (
        TWO
        + """
[bot]
default_corpus = "tech"
message_content = false

[[bot.routes]]
guild = 11
corpus = "politics"

[[bot.routes]]
guild = 11
channels = [21, 22]
corpus = "tech"
"""
    )
    bot = load_settings(write_config(tmp_path, text)).bot
    assert [(r.guild, r.channels, r.corpus) for r in bot.routes] == [
        (11, (), "politics"),
        (11, (21, 22), "tech"),
    ]
    assert bot.default_corpus == "tech" and bot.message_content is False


# -- the CLI -----------------------------------------------------------------------------


@pytest.fixture
def cli_model(monkeypatch: pytest.MonkeyPatch) -> FakeEmbedder:
    """Every CLI command that asks for a model gets the fake one."""
    embedder = FakeEmbedder()
    monkeypatch.setitem(MODEL, "embedder", embedder)
    return embedder


def corpus_folders(tmp_path: Path) -> Path:
    """Two corpora of one markdown article each, on different topics."""
    for name, text in {
        "bees": "---\ntitle: Urban bees\n---\nBees forage on city rooftops in spring.\n",
        "chips": "---\ntitle: Chip fabs\n---\nA chip fab etches silicon wafers with light.\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.md").write_text(text, encoding="utf-8")
    return write_config(
        tmp_path,
        """
[search]
min_confidence = 0.0

[corpora.nature]
index_dir = "nature-index"
sources = ["bees"]

[corpora.tech]
index_dir = "tech-index"
sources = ["chips"]
""",
    )


def test_sync_without_corpus_syncs_every_corpus_and_corpus_picks_one(
    tmp_path: Path, cli_model: FakeEmbedder
) -> None:
    config = corpus_folders(tmp_path)
    result = run("--config", config, "sync")
    assert result.exit_code == 0, result.output
    assert "corpus nature:" in result.output and "corpus tech:" in result.output
    assert (tmp_path / "nature-index" / "index.json").is_file()
    assert (tmp_path / "tech-index" / "index.json").is_file()

    listed = run("--config", config, "articles", "--corpus", "tech", "--json")
    assert [a["title"] for a in json.loads(listed.output)["articles"]] == ["Chip fabs"]
    asked = run("--config", config, "ask", "--corpus", "nature", "--json", "bees rooftops")
    assert {p["article"]["title"] for p in json.loads(asked.output)["results"]} == {"Urban bees"}
    # --index still names a folder directly.
    stats = run("--config", config, "stats", "--index", tmp_path / "tech-index", "--json")
    assert json.loads(stats.output)["articles"] == 1

    ambiguous = run("--config", config, "articles")
    assert ambiguous.exit_code == 2 and "choose one with --corpus" in ambiguous.output
    unknown = run("--config", config, "stats", "--corpus", "sports")
    assert unknown.exit_code == 2 and "no corpus named 'sports'" in unknown.output


def test_sync_one_corpus_only(tmp_path: Path, cli_model: FakeEmbedder) -> None:
    config = corpus_folders(tmp_path)
    result = run("--config", config, "sync", "--corpus", "tech")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tech-index" / "index.json").is_file()
    assert not (tmp_path / "nature-index").exists()


# -- the registry --------------------------------------------------------------------------


class Holder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self.closed = False

    async def refresh(self) -> bool:
        self.log.append(f"refresh {self.name}")
        if self.name == "broken":
            raise RuntimeError("disk on fire")
        return False

    async def reindex(self) -> str:
        self.log.append(f"sync {self.name}")
        if self.name == "broken":
            raise RuntimeError("disk on fire")
        return "ok"

    async def close(self) -> None:
        self.closed = True
        self.log.append(f"close {self.name}")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_registry_opens_on_first_use_and_closes_when_idle() -> None:
    log: list[str] = []
    clock = Clock()
    opened: list[str] = []

    def open_corpus(name: str) -> Holder:
        opened.append(name)
        return Holder(name, log)

    registry = CorpusRegistry(open_corpus, idle_seconds=60, clock=clock)
    async with registry.use("a") as a:
        async with registry.use("a") as again:
            assert again is a
        clock.now = 1000
        assert await registry.close_idle() == []  # in use: never closed
    clock.now = 1030
    async with registry.use("b"):
        pass
    assert opened == ["a", "b"] and registry.open_names() == ["a", "b"]
    clock.now = 1059
    assert await registry.close_idle() == []
    clock.now = 1060
    assert await registry.close_idle() == ["a"]
    assert a.closed and registry.open_names() == ["b"]
    async with registry.use("a") as reopened:
        assert reopened is not a
    assert opened == ["a", "b", "a"]
    await registry.close_all()
    assert registry.open_names() == []


async def test_schedule_isolates_a_failing_corpus() -> None:
    log: list[str] = []
    clock = Clock()
    registry = CorpusRegistry(lambda name: Holder(name, log), clock=clock)
    for name in ("broken", "fine"):
        async with registry.use(name):
            pass
    schedule = Schedule(registry, lambda: ["broken", "fine"], sync_seconds=600, clock=clock)
    await schedule.follow_once()
    assert log == ["refresh broken", "refresh fine"]
    assert await schedule.sync_due() == []  # each corpus's first turn is a period away
    clock.now = 600
    assert await schedule.sync_due() == ["fine"]
    assert "sync broken" in log and "sync fine" in log


def test_one_embedder_per_model_and_backend(tmp_path: Path) -> None:
    made: list[FakeEmbedder] = []

    def make(settings: Settings) -> FakeEmbedder:
        made.append(FakeEmbedder())
        return made[-1]

    shared = SharedEmbedders(make)
    first = shared.for_settings(Settings(index_dir=tmp_path / "a"))
    second = shared.for_settings(Settings(index_dir=tmp_path / "b"))
    assert first is second and len(shared) == 1
