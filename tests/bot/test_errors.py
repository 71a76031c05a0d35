"""Discord messages never show server paths or library internals; the details go to the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import simcord

from bot.app import BotConfig, CitebotClient
from bot.cooldown import Cooldown
from bot.errors import GENERIC_ERROR, Redactor, public_message, source_name
from retrieval.errors import (
    ArticleNotFoundError,
    BadQuestionError,
    CitebotError,
    IndexMismatchError,
    IndexNotFoundError,
)
from retrieval.live import IndexHolder

from .conftest import Failing, FakeSource

INDEX = "/var/lib/citebot/index"
SOURCES = ("/srv/articles", "/home/ann/notes/")


@pytest.fixture
def redact() -> Redactor:
    return Redactor.for_folders(INDEX, SOURCES)


def test_known_folders_become_names_and_other_paths_their_last_part(redact: Redactor) -> None:
    assert redact(f"another ingest is writing {INDEX}; try again later") == (
        "another ingest is writing the index folder; try again later"
    )
    assert (
        redact("cannot read /srv/articles/2024/a.md: bad") == "cannot read articles/2024/a.md: bad"
    )
    assert redact("see '/home/ann/notes/x.txt'") == "see 'notes/x.txt'"
    assert redact("[Errno 13] Permission denied: '/etc/citebot/token'") == (
        "[Errno 13] Permission denied: 'token'"
    )
    # URLs and relative names are not paths on this server.
    text = "read https://example.org/a/b and notes/c.md"
    assert redact(text) == text


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (BadQuestionError("Please ask a question: the text was empty."), "Please ask a question"),
        (ArticleNotFoundError("no article with id or title 'x'"), "no article with id or title"),
        (
            IndexNotFoundError(f"no index at {INDEX} (run `citebot ingest`)"),
            "There is no index yet",
        ),
        (
            IndexMismatchError(
                f"index at {INDEX} is damaged: Error in faiss::read_index at impl/io.cpp:68"
            ),
            "The index cannot be read right now",
        ),
        (CitebotError(f"another ingest is writing {INDEX}"), "another ingest is writing the index"),
        (FileNotFoundError(2, "No such file", f"{INDEX}/gen-000001"), GENERIC_ERROR),
        (RuntimeError("faiss internal"), GENERIC_ERROR),
    ],
)
def test_public_message(redact: Redactor, error: BaseException, shown: str) -> None:
    message = public_message(error, redact)
    assert message.startswith(shown)
    assert "/" not in message.replace("`", "") or "citebot ingest" in message
    assert "faiss" not in message and "gen-000001" not in message


def test_skipped_files_are_named_under_their_source() -> None:
    assert source_name("/srv/articles/2024/bad.json", SOURCES) == "articles/2024/bad.json"
    assert source_name("/home/ann/notes/x.md", SOURCES) == "notes/x.md"
    assert source_name("/srv/articles", SOURCES) == "articles"
    assert source_name("/elsewhere/secret.md", SOURCES) == "secret.md"
    assert source_name("2024/bad.json", SOURCES) == "2024/bad.json"  # already relative


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            IndexMismatchError("index at /tmp/x/index is damaged: Error in faiss::read_index"),
            "The index cannot be read right now; the details are in the bot's log.",
        ),
        (
            CitebotError("another ingest is writing /tmp/x/index; try again later"),
            "another ingest is writing index; try again later",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "/tmp/x/index/gen-000001"),
            GENERIC_ERROR,
        ),
    ],
)
async def test_errors_in_discord_never_show_paths(
    settings, store, error: BaseException, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    holder = IndexHolder(FakeSource(Failing(error)))
    client = CitebotClient(BotConfig.from_settings(settings), holder, store, cooldown=Cooldown(0))
    async with simcord.run(client) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        alice = guild.add_member(env.create_user("alice"))
        asked = await alice.slash(channel, "ask", question="How do libraries lend tools?")
        stats = await alice.slash(channel, "stats")
        await alice.send(channel, f"<@{client.user.id}> how do libraries lend tools?")
        shown = [
            asked.response.content,
            stats.response.content,
            channel.last_message.content,
        ]
        assert len(env.errors) == 2  # acknowledged: the /ask and /stats errors
    assert shown == [expected] * 3
    assert str(Path("/tmp/x/index")) in caplog.text  # the details are in the log
