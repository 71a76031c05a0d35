"""The deployment examples (deploy/): they cannot be built here (no Docker, no systemd),
so what can be checked is: every command they run exists and accepts its options, the
health check asks a route the server has, and the ports agree."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
import yaml

from retrieval.cli import cli

DEPLOY = Path(__file__).parent.parent / "deploy"


def citebot_command(argv: list[str]) -> click.Context:
    """Parse a `citebot ...` command line as the CLI would, without running it."""
    assert Path(argv[0]).name == "citebot", argv
    name, args = argv[1], argv[2:]
    with click.Context(cli) as parent:
        command = cli.get_command(parent, name)
        assert command is not None, f"no command {name!r}"
        return command.make_context(name, list(args), parent=parent)


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_entry_points_for_the_commands_the_examples_run() -> None:
    names = {ep.name for ep in entry_points(group="citebot.commands")}
    assert {"bot", "serve"} <= names


def test_dockerfile_commands_health_check_and_port() -> None:
    text = dockerfile()
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    context = citebot_command(yaml.safe_load(cmd))
    assert context.params["host"] == "0.0.0.0"
    (exposed,) = re.findall(r"^EXPOSE (\d+)$", text, re.M)
    assert context.params["port"] == int(exposed)
    for line in re.findall(r"^RUN (citebot .*?)(?: >|$)", text, re.M):
        citebot_command(shlex.split(line))
    (health,) = re.findall(r"urlopen\('http://127\.0\.0\.1:(\d+)(/\w+)'", text)
    assert int(health[0]) == int(exposed)
    from aiohttp import web

    from server.health import add_routes

    app = web.Application()
    add_routes(app)
    assert health[1] in {r.resource.canonical for r in app.router.routes()}
    assert re.search(r"^USER citebot$", text, re.M)  # not root
    assert "whl/cpu" in text  # the CPU wheel of torch


def test_compose_runs_bot_and_serve_over_one_volume() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"serve", "bot"}
    for service in services.values():
        citebot_command(service["command"])
    volumes = {s["volumes"][0].split(":")[0] for s in services.values()}
    assert volumes == set(compose["volumes"])
    serve = citebot_command(services["serve"]["command"])
    assert services["serve"]["ports"][0].endswith(f":{serve.params['port']}")


@pytest.mark.parametrize("unit", ["citebot-serve.service"])
def test_systemd_unit_runs_a_real_command(unit: str) -> None:
    text = (DEPLOY / unit).read_text(encoding="utf-8")
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, re.M)
    context = citebot_command(shlex.split(exec_start))
    assert context.info_name == "serve"
