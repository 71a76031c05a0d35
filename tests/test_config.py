"""Settings from a TOML file: defaults, overrides, validation and path resolution."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import ChunkSettings, Settings, load_settings
from retrieval.errors import ConfigError


def write_config(folder: Path, text: str, name: str = "citebot.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.model.name == "all-MiniLM-L6-v2"
    assert settings.search.per_article == 2
    assert settings.sources == ()
    # The index goes to the user's data folder (XDG_DATA_HOME is a tmp folder here).
    assert settings.index_dir == tmp_path / "xdg-data" / "citebot" / "index"


def test_citebot_index_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITEBOT_INDEX", str(tmp_path / "elsewhere"))
    assert load_settings().index_dir == tmp_path / "elsewhere"


def test_the_index_folder_is_the_flag_then_the_environment_then_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--index DIR`, else $CITEBOT_INDEX, else the config's index_dir, else the data folder:
    an environment variable overrides a config file, as the docs say."""
    config = write_config(tmp_path, 'index_dir = "from-config"\n')
    assert load_settings(config).index_dir == tmp_path / "from-config"
    monkeypatch.setenv("CITEBOT_INDEX", str(tmp_path / "from-env"))
    assert load_settings(config).index_dir == tmp_path / "from-env"
    flagged = load_settings(config).with_index(tmp_path / "from-flag")
    assert flagged.index_dir == tmp_path / "from-flag"
    # An empty variable is not set.
    monkeypatch.setenv("CITEBOT_INDEX", "")
    assert load_settings(config).index_dir == tmp_path / "from-config"


def test_a_bad_index_dir_is_refused_even_when_the_environment_names_the_index(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CITEBOT_INDEX", str(tmp_path / "from-env"))
    with pytest.raises(ConfigError, match="index_dir must be a string"):
        load_settings(write_config(tmp_path, "index_dir = 5\n"))


def test_a_file_overrides_some_values(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
index_dir = "/srv/citebot/index"

[model]
batch_size = 8

[chunking]
max_tokens = 128
title_prefix = false

[search]
k = 3
fusion = "rrf"
dense_weight = 1   # an integer where a float is expected is fine

[bot]
channels = [123, 456]
admin_role = 789
""",
    )
    settings = load_settings(path)
    assert settings.index_dir == Path("/srv/citebot/index")
    assert settings.model.batch_size == 8
    assert settings.model.name == "all-MiniLM-L6-v2"  # untouched
    assert settings.chunking.max_tokens == 128
    assert settings.chunking.title_prefix is False
    assert settings.chunking.overlap_tokens == ChunkSettings().overlap_tokens
    assert settings.search.k == 3
    assert settings.search.fusion == "rrf"
    assert settings.search.dense_weight == 1.0
    assert isinstance(settings.search.dense_weight, float)
    assert settings.bot.channels == (123, 456)
    assert settings.bot.admin_role == 789


def test_relative_paths_are_resolved_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write_config(folder, 'index_dir = "data/index"\nsources = ["articles", "/abs/feed"]\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(path)
    assert settings.index_dir == folder / "data" / "index"
    assert settings.sources == (str(folder / "articles"), "/abs/feed")


def test_citebot_config_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "[search]\nk = 9\n")
    monkeypatch.setenv("CITEBOT_CONFIG", str(path))
    assert load_settings().search.k == 9
    # An explicit path wins over the environment.
    other = write_config(tmp_path, "[search]\nk = 2\n", name="other.toml")
    assert load_settings(other).search.k == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'blue'\n", r"unknown setting\(s\) in .*citebot.toml: colour"),
        ("[search]\nkay = 3\n", r"unknown setting\(s\) in \[search\]: kay"),
        ("[model]\nname = 'x'\ndevise = 'cpu'\n", "devise"),
        ("[search]\nk = 'five'\n", r"\[search\] k must be a whole number"),
        ("[search]\ndense_weight = 'half'\n", "dense_weight"),
        ("[chunking]\ntitle_prefix = 'yes'\n", "true or false"),
        ("[bot]\nchannels = 123\n", "must be a list"),
        ("[search]\nfusion = 'magic'\n", "fusion must be one of"),
        ("[search]\ndense_weight = 1.5\n", "between 0 and 1"),
        ("[search]\nk = 0\n", "at least 1"),
        ("[search\nk = 3\n", "cannot read config"),
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(path)


@pytest.mark.parametrize(
    "text", ['sources = "articles"\n', "index_dir = 5\n", "search = 5\n"], ids=str.strip
)
def test_wrong_types_at_the_top_level_raise_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(write_config(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        "[search]\nk = true\n",
        '[bot]\nadmin_role = "moderators"\n',
        '[bot]\nchannels = ["general"]\n',
    ],
    ids=["k-bool", "admin_role-string", "channels-strings"],
)
def test_wrong_value_types_raise_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(write_config(tmp_path, text))


def test_with_index(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.with_index(None) is settings
    assert settings.with_index(str(tmp_path)).index_dir == tmp_path


def test_the_example_config_documents_the_defaults() -> None:
    """config.example.toml shows every default: loading it changes nothing."""
    example = Path(__file__).parent.parent / "config.example.toml"
    loaded, defaults = load_settings(example), Settings()
    # Every setting but the index folder, whose default depends on the environment.
    assert replace(loaded, index_dir=defaults.index_dir) == defaults


def test_the_example_config_names_every_setting() -> None:
    from dataclasses import fields, is_dataclass

    text = (Path(__file__).parent.parent / "config.example.toml").read_text(encoding="utf-8")
    settings = Settings()
    names = []
    for field in fields(Settings):
        value = getattr(settings, field.name)
        if is_dataclass(value):
            assert f"[{field.name}]" in text
            names += [f.name for f in fields(value)]
        else:
            names.append(field.name)
    missing = [name for name in names if f"{name} =" not in text]
    assert not missing
