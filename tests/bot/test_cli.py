"""The token comes from the environment (or a file it names), never from the config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import TokenError, read_token
from retrieval.cli import cli


def test_token_from_env_wins_over_file(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("from-file\n")
    assert read_token({"DISCORD_TOKEN": " abc.def ", "DISCORD_TOKEN_FILE": str(file)}) == "abc.def"
    assert read_token({"DISCORD_TOKEN_FILE": str(file)}) == "from-file"


@pytest.mark.parametrize("environ", [{}, {"DISCORD_TOKEN": "  "}])
def test_missing_token_is_a_clear_error(environ: dict[str, str]) -> None:
    with pytest.raises(TokenError, match="set DISCORD_TOKEN"):
        read_token(environ)


def test_unreadable_or_empty_token_file(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read DISCORD_TOKEN_FILE"):
        read_token({"DISCORD_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TokenError, match="is empty"):
        read_token({"DISCORD_TOKEN_FILE": str(tmp_path / "empty")})


def test_bot_command_without_token_fails_before_loading_anything(monkeypatch) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("DISCORD_TOKEN_FILE", raising=False)
    result = CliRunner().invoke(cli, ["bot"])
    assert result.exit_code == 1
    assert "set DISCORD_TOKEN" in result.output and "Traceback" not in result.output


def test_bot_command_is_listed_in_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Run the Discord bot" in result.output


def test_bot_command_reads_config_given_after_its_name(tmp_path: Path, monkeypatch) -> None:
    from retrieval.cli import Runtime
    from tests.fakes import FakeEmbedder

    monkeypatch.setenv("DISCORD_TOKEN", "not-a-real-token")
    missing = tmp_path / "no-index-here"
    config = tmp_path / "bot.toml"
    config.write_text(f'index_dir = "{missing}"\n')
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    result = CliRunner().invoke(cli, ["bot", "--config", str(config)], obj=runtime)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: no index at {missing}")
    assert "not-a-real-token" not in result.output


def test_bot_command_serves_the_index_given_with_index(tmp_path: Path, monkeypatch) -> None:
    """`citebot bot --index DIR` serves DIR, over $CITEBOT_INDEX and the config's index_dir."""
    from retrieval.cli import Runtime
    from tests.fakes import FakeEmbedder

    monkeypatch.setenv("DISCORD_TOKEN", "not-a-real-token")
    monkeypatch.setenv("CITEBOT_INDEX", str(tmp_path / "from-env"))
    config = tmp_path / "bot.toml"
    config.write_text(f'index_dir = "{tmp_path / "from-config"}"\n')
    runtime = Runtime(make_embedder=lambda settings, **options: FakeEmbedder())
    given = tmp_path / "given"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "bot", "--index", str(given)], obj=runtime
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: no index at {given}")
