"""The bot's metrics: questions asked in Discord and 👍/👎 votes, scraped from the
``[bot] metrics_port`` endpoint on 127.0.0.1 and parsed with prometheus-client's parser."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from retrieval import metrics


@pytest.fixture
def metrics_port() -> Iterator[int]:
    metrics.disable()
    assert metrics.enable()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = metrics.serve_http(port)
    yield port
    server.shutdown()
    metrics.disable()


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Each sample's labels and value, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    return channel, alice


async def test_discord_questions_and_votes_are_scraped(
    simcord_env, simcord_bot, world, metrics_port: int
) -> None:
    channel, alice = world
    answer = await alice.slash(channel, "ask", question="How do libraries lend tools?")
    await alice.click(answer.response, label="👍")
    samples = scrape(metrics_port)
    questions = samples["citebot_questions_total"]
    assert any(
        labels["surface"] == "discord" and labels["outcome"] in ("answered", "not_covered")
        for labels, value in questions
        if value >= 1
    )
    assert ({"vote": "up"}, 1.0) in samples["citebot_feedback_total"]
    totals = [v for labels, v in samples["citebot_search_duration_seconds_count"]]
    assert totals and min(totals) >= 1
