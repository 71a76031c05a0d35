"""/metrics of `citebot serve`, parsed with prometheus-client's own parser; and metrics
that are off (the CLI) or without prometheus-client record nothing."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from retrieval import metrics
from retrieval.config import Settings
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import with_search
from tests.server.conftest import Start

NAMES = {
    "citebot_questions",
    "citebot_search_duration_seconds",
    "citebot_http_requests",
    "citebot_http_request_duration_seconds",
    "citebot_feedback",
    "citebot_index_articles",
    "citebot_index_chunks",
    "citebot_index_last_update_timestamp_seconds",
    "citebot_ingest_articles",
    "citebot_discord_gateway_latency_seconds",
    "citebot_build_info",
}


async def scrape(client: Any) -> dict[str, Any]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(await response.text())}


def samples(family: Any, name: str | None = None) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in family.samples if name is None or s.name == name]


async def test_serve_metrics_count_questions_requests_and_the_index(
    start: Start, index_settings: Settings
) -> None:
    client = await start(settings=with_search(index_settings, min_confidence=0.6))
    secret_question = "How many hives do the allotment beekeepers keep?"
    await client.get("/v1/search", params={"q": secret_question})
    await client.get("/v1/search", params={"q": "What is the price of a ticket to the moon?"})
    await client.get("/v1/search", params={"q": ""})
    await client.get("/", params={"q": secret_question})
    await client.get("/v1/articles/ferry")
    await client.put("/v1/articles/seals", json={"title": "Seals", "text": "Twelve seals."})
    families = await scrape(client)
    assert set(families) >= NAMES

    questions = {
        (labels["surface"], labels["outcome"]): value
        for labels, value in samples(families["citebot_questions"], "citebot_questions_total")
    }
    assert questions[("api", "answered")] == 1
    assert questions[("api", "not_covered")] == 1
    assert questions[("api", "refused")] == 1
    assert questions[("page", "answered")] == 1

    durations = families["citebot_search_duration_seconds"]
    stages = {labels["stage"] for labels, _ in samples(durations)}
    assert stages == {"embed", "vectors", "keywords", "dense_bm25", "passages", "total"}
    buckets = samples(durations, "citebot_search_duration_seconds_bucket")
    bounds = sorted({float(labels["le"]) for labels, _ in buckets if labels["le"] != "+Inf"})
    assert bounds[0] == 0.0025 and bounds[-1] == 2.5
    counts = dict(
        (labels["stage"], value)
        for labels, value in samples(durations, "citebot_search_duration_seconds_count")
    )
    assert counts["total"] == 3  # the refused question was not searched

    routes = {
        (labels["route"], labels["method"], labels["status"])
        for labels, _ in samples(families["citebot_http_requests"])
    }
    assert ("/v1/articles/{id}", "GET", "200") in routes  # the template, never the id
    assert ("/v1/search", "GET", "400") in routes
    assert ("/v1/articles/{id}", "PUT", "201") in routes

    articles = samples(families["citebot_index_articles"])
    assert articles == [({"corpus": "default"}, 6.0)]  # followed the push
    ingested = dict(
        (labels["result"], value)
        for labels, value in samples(
            families["citebot_ingest_articles"], "citebot_ingest_articles_total"
        )
    )
    assert ingested["added"] == 1
    (build,) = samples(families["citebot_build_info"])
    assert build[0]["model"] == "fake-hashing-embedder" and build[1] == 1

    # No label carries a question, an article id or a key.
    text = await (await client.get("/metrics")).text()
    assert "beekeepers" not in text and "ferry" not in text and "seals" not in text


def test_metrics_off_record_nothing(index_settings: Settings) -> None:
    metrics.disable()
    searcher = Searcher.open(index_settings, FakeEmbedder())
    try:
        searcher.search("ferry timetable")
    finally:
        searcher.close()
    assert not metrics.enabled() and metrics.registry() is None
    assert metrics.exposition()[0] == b""


def test_without_prometheus_client_metrics_stay_off(
    monkeypatch: pytest.MonkeyPatch, index_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    metrics.disable()
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    assert metrics.enable() is False
    assert "prometheus-client is not installed" in caplog.text
    searcher = Searcher.open(index_settings, FakeEmbedder())
    try:
        assert searcher.search("ferry timetable").passages  # answers all the same
    finally:
        searcher.close()
    assert not metrics.enabled()
