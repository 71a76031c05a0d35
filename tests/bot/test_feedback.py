"""Feedback you can use: the report over the votes, in the CLI (without discord.py) and /feedback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import discord
import pytest
from click.testing import CliRunner

from bot.feedback import feedback_report, render_text
from bot.store import BotStore, Vote, feedback_path
from retrieval.cli import Runtime, cli
from retrieval.config import Settings
from retrieval.records import Answer, ArticleRef, Passage

TOOLS = ArticleRef("tools", "How tool libraries lend tools", "tools.md")
BEES = ArticleRef("bees", "Urban beekeeping basics", "bees.md")


def passage(rank: int, ref: ArticleRef, chunk: int) -> Passage:
    return Passage(rank, 1.0, "text", "text", 0, 4, ref, (rank, rank), 0, 4, (chunk,))


def shown(store: BotStore, question: str, *refs: ArticleRef, user: int = 1):
    answer = Answer(question, True, tuple(passage(i, r, 10 * i) for i, r in enumerate(refs, 1)))
    return store.add_answer(
        answer, asked=question, k=None, user_id=user, private=False, guild_id=5, channel_id=6
    )


def vote(store: BotStore, answer, user: int, value: int, message: int | None = None) -> None:
    store.record(
        Vote(
            message_id=message or 1000 + answer.id,
            user_id=user,
            question=answer.question,
            vote=value,
            chunk_ids=answer.chunk_ids,
            guild_id=5,
            channel_id=6,
            answer_id=answer.id,
        )
    )


@pytest.fixture
def voted(tmp_path: Path) -> Path:
    """Votes on three answers: tools twice voted down, bees liked, one old vote without answer."""
    path = tmp_path / "feedback.sqlite"
    store = BotStore(path)
    tools = shown(store, "How do libraries lend tools?", TOOLS, BEES)
    again = shown(store, "how do  LIBRARIES lend tools?", TOOLS)
    bees = shown(store, "When is honey harvested?", BEES)
    vote(store, tools, user=1, value=-1)
    vote(store, tools, user=2, value=-1)
    vote(store, again, user=3, value=-1)
    vote(store, again, user=4, value=1)
    vote(store, bees, user=1, value=1)
    store.record(Vote(99, 7, "An old question?", -1, (3,), None, None))  # before answers were kept
    store.close()
    return path


def test_report_totals_questions_and_articles(voted: Path) -> None:
    store = BotStore(voted, read_only=True)
    report = feedback_report(store)
    store.close()
    assert (report.votes, report.up, report.down, report.voters, report.answers) == (6, 2, 4, 5, 4)
    first, second = report.questions
    # The same question asked with other spacing and case counts as one.
    assert (first.question, first.down, first.up) == ("How do libraries lend tools?", 3, 1)
    # It got these passages in its most down-voted answer.
    assert [(p.article_id, p.paragraphs) for p in first.passages] == [
        ("tools", (1, 1)),
        ("bees", (2, 2)),
    ]
    assert (second.question, second.down, second.passages) == ("An old question?", 1, ())
    assert [(a.article_id, a.down, a.up) for a in report.articles] == [
        ("tools", 3, 1),
        ("bees", 2, 1),
    ]
    text = render_text(report)
    assert text.startswith("6 votes from 5 people on 4 answers: 2 up, 4 down")
    assert "  3 down, 1 up   How do libraries lend tools?" in text
    assert "      [1] How tool libraries lend tools (tools) ¶1" in text
    assert "(the passages shown were not recorded)" in text


def test_cli_feedback_without_loading_discord(voted: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[bot]\nfeedback_db = "{voted}"\n')
    program = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from retrieval.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['feedback', '--config', {str(config)!r}, '--json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(json.dumps({'out': json.loads(result.stdout), 'discord': 'discord' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    data = json.loads(done.stdout)
    assert data["discord"] is False
    report = data["out"]
    assert report["down"] == 4 and report["questions"][0]["passages"][0]["article_id"] == "tools"
    assert report["articles"][0] == {
        "article_id": "tools",
        "title": TOOLS.title,
        "down": 3,
        "up": 1,
    }


def test_cli_feedback_text_and_missing_database(voted: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[bot]\nfeedback_db = "{voted}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "feedback", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "How do libraries lend tools?" in result.stdout
    assert "An old question?" not in result.stdout  # --limit 1
    missing = tmp_path / "none.sqlite"
    config.write_text(f'[bot]\nfeedback_db = "{missing}"\n')
    result = CliRunner().invoke(cli, ["feedback", "--config", str(config)], obj=Runtime())
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: no feedback database at {missing} yet"
    assert not missing.exists()  # a report never creates the database


def test_cli_feedback_reads_the_database_beside_the_index_given(
    voted: Path, tmp_path: Path
) -> None:
    """With no [bot] feedback_db, the bot keeps its votes in the index folder: `citebot
    feedback --index DIR` reads the votes of `citebot bot --index DIR`."""
    assert voted == tmp_path / "feedback.sqlite"
    result = CliRunner().invoke(cli, ["feedback", "--index", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["down"] == 4
    elsewhere = tmp_path / "other-index"
    result = CliRunner().invoke(cli, ["feedback", "--index", str(elsewhere)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: no feedback database at {elsewhere / 'feedback.sqlite'} yet"
    )


@pytest.mark.usefixtures("simcord_bot")
async def test_slash_feedback_for_admins(simcord_env, settings: Settings) -> None:
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("general")
    managers = guild.create_role("Managers", permissions=discord.Permissions(manage_guild=True))
    admin = guild.add_member(simcord_env.create_user("admin"), roles=[managers])
    user = guild.add_member(simcord_env.create_user("user"))
    assert "feedback" not in user.available_commands(channel)

    answer = await user.slash(channel, "ask", question="How do libraries lend tools?")
    await user.click(answer.response, label="👎")
    result = await admin.slash(channel, "feedback")
    assert result.ephemeral
    embed = result.response.embeds[0]
    assert embed.title == "Feedback"
    assert embed.description.startswith("1 vote from 1 person on 1 answer: 0 up, 1 down")
    assert "👎 1 · 👍 0 — How do libraries lend tools?" in embed.description
    assert "How tool libraries lend tools" in embed.description
    assert feedback_path(settings).exists()


def test_a_database_from_before_answers_were_kept_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "feedback.sqlite"
    with sqlite3.connect(path) as db:  # the schema of the first release
        db.execute(
            "CREATE TABLE feedback (message_id INTEGER NOT NULL, user_id INTEGER NOT NULL,"
            " question TEXT NOT NULL, vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),"
            " chunk_ids TEXT NOT NULL, guild_id INTEGER, channel_id INTEGER,"
            " created TEXT NOT NULL, PRIMARY KEY (message_id, user_id))"
        )
        db.execute(
            "INSERT INTO feedback VALUES (1, 2, 'Old?', -1, '[3, 4]', 5, 6, '2024-01-01T00:00:00')"
        )
    db.close()
    store = BotStore(path)
    (old,) = store.votes()
    assert (old.question, old.chunk_ids, old.answer_id) == ("Old?", (3, 4), None)
    answer = shown(store, "New?", TOOLS)
    vote(store, answer, user=2, value=1)
    assert [v.answer_id for v in store.votes()] == [None, answer.id]
    store.close()
