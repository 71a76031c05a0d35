"""One bot, several servers, over real HTTP and websocket against the fake Discord.

Two routed servers (politics, tech) whose corpora share topics, a third without a route
(a corpus of its own on demand), each with an admin and a member: every surface answers
from the corpus of the place it is used in, never another's.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.cli import run
from bot.replies import GONE, REFUSED
from retrieval.config import Settings
from tests.fakes import FakeEmbedder
from tests.web.samples import Entry, article_text, page, rss
from tests.web.server import LocalSite, Route
from tests.web.test_addresses import REFUSED as SSRF_REFUSED
from tests.web.test_addresses import RESOLVER
from tests.web.test_addresses import connections as connection_guard  # noqa: F401 (a fixture)

from .corpora_setup import (
    ADMIN,
    ANSWER_A,
    ANSWER_B,
    ASKER_ROLE,
    CHANNEL_A,
    CHANNEL_B,
    CHANNEL_C,
    FORUM_A,
    GUILD_A,
    GUILD_B,
    GUILD_C,
    GUILDS,
    MEMBER,
    POLITICS_PREFIX,
    TECH_PREFIX,
    TOKEN,
    TOPICS,
    build_corpora,
    corpora_settings,
    make_client,
    running,
)
from .fake_discord import BOT_ID, FakeDiscord, channel_option, role_option

NO_ARTICLES_START = "This server has no articles yet."


@pytest.fixture
async def fake():
    fake = FakeDiscord(guilds=GUILDS)
    await fake.start()
    old = fake.point_discord_py_here()
    yield fake
    FakeDiscord.restore(old)
    await fake.stop()


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path: Path, embedder: FakeEmbedder) -> Settings:
    settings = corpora_settings(tmp_path)
    build_corpora(settings, embedder)
    return settings


# -- reading what the bot said ------------------------------------------------------------


def text_of(body: dict[str, Any]) -> str:
    parts = [body.get("content") or ""]
    for embed in body.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


def responded(fake: FakeDiscord, iid: str) -> dict[str, Any] | None:
    """The interaction's message: an immediate response, else its (last) followup."""
    if iid in fake.answered:
        return fake.answered[iid]
    for request in fake.requests:
        if request.path.startswith(f"/interactions/{iid}/") and request.json["type"] == 4:
            return request.json["data"]
    return None


async def said(fake: FakeDiscord, iid: str, contains: str = "") -> str:
    await fake.wait_for(
        lambda: (body := responded(fake, iid)) is not None and contains in text_of(body)
    )
    body = responded(fake, iid)
    assert body is not None
    return text_of(body)


async def ask(fake: FakeDiscord, guild: int, channel: int, question: str, **kw: Any) -> str:
    iid = await fake.send_interaction(
        "ask", {"question": question}, guild_id=guild, channel_id=channel, **kw
    )
    return await said(fake, iid)


def cited_prefixes(text: str) -> set[str]:
    return {p for p in (POLITICS_PREFIX, TECH_PREFIX) if f"{p} " in text}


def button(body: dict[str, Any], label: str) -> str:
    return next(
        c["custom_id"]
        for row in body["components"]
        for c in row["components"]
        if c["label"] == label
    )


async def library(fake: FakeDiscord, sub: str, guild: int, channel: int, **kw: Any) -> str:
    admin = kw.pop("admin", True)
    contains = kw.pop("contains", "")
    iid = await fake.send_interaction(
        "library",
        kw,
        subcommand=sub,
        guild_id=guild,
        channel_id=channel,
        admin=admin,
        user_id=ADMIN if admin else MEMBER,
    )
    return await said(fake, iid, contains)


# -- routing and isolation ------------------------------------------------------------------


async def test_each_server_answers_from_its_own_corpus_on_every_surface(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    async with running(make_client(settings, embedder)):
        for topic in TOPICS:
            question = f"what about {topic}?"
            assert cited_prefixes(await ask(fake, GUILD_A, CHANNEL_A, question)) == {
                POLITICS_PREFIX
            }
            assert cited_prefixes(await ask(fake, GUILD_B, CHANNEL_B, question)) == {TECH_PREFIX}

        # A mention in each server.
        await fake.send_message(
            f"<@{BOT_ID}> tell me about chips",
            mentions=[BOT_ID],
            guild_id=GUILD_B,
            channel_id=CHANNEL_B,
        )
        await fake.wait_for(lambda: fake.posted.get(str(CHANNEL_B)))
        assert cited_prefixes(text_of(fake.posted[str(CHANNEL_B)][0][1])) == {TECH_PREFIX}

        # "Find sources" on a message in server A.
        claim = fake.user_message("900000000000000077", "bike lanes and cycling budget")
        iid = await fake.send_interaction(
            "Find sources", {}, target=claim, guild_id=GUILD_A, channel_id=CHANNEL_A
        )
        assert cited_prefixes(await said(fake, iid)) == {POLITICS_PREFIX}

        # /sources and /stats: the place's corpus only.
        iid = await fake.send_interaction("sources", {}, guild_id=GUILD_B, channel_id=CHANNEL_B)
        assert cited_prefixes(await said(fake, iid)) == {TECH_PREFIX}
        iid = await fake.send_interaction("stats", {}, guild_id=GUILD_A, channel_id=CHANNEL_A)
        stats = await said(fake, iid)
        assert "Corpus: politics" in stats and "Message Content intent: on" in stats

        # A DM and a server without a route or a library of its own: one friendly line.
        iid = await fake.send_interaction("ask", {"question": "chips?"}, where="dm")
        assert (await said(fake, iid)).startswith(NO_ARTICLES_START)
        assert (await ask(fake, GUILD_C, CHANNEL_C, "chips?")).startswith(NO_ARTICLES_START)
        assert fake.unknown == []


async def test_buttons_and_articles_never_cross_servers_even_after_a_restart(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    async with running(make_client(settings, embedder)):
        iid = await fake.send_interaction(
            "ask",
            {"question": "energy subsidies and a carbon tax"},
            guild_id=GUILD_A,
            channel_id=CHANNEL_A,
        )
        await said(fake, iid)
        answer = fake.answered[iid]
        message_id = fake.answered_message[iid]
    async with running(make_client(settings, embedder)):  # a restart: nothing in memory
        article = button(answer, "📄 1")
        # Clicked in server A, where it was asked: the politics article.
        click = await fake.click(
            message_id, answer, article, guild_id=GUILD_A, channel_id=CHANNEL_A
        )
        assert cited_prefixes(await said(fake, click)) == {POLITICS_PREFIX}
        more = await fake.click(
            message_id,
            answer,
            button(answer, "More results"),
            guild_id=GUILD_A,
            channel_id=CHANNEL_A,
        )
        assert TECH_PREFIX not in await said(fake, more)
        # The same buttons clicked in server B (a forwarded message, a forged id): refused.
        click = await fake.click(
            message_id, answer, article, guild_id=GUILD_B, channel_id=CHANNEL_B
        )
        assert await said(fake, click) == "That article is no longer available."
        more = await fake.click(
            message_id,
            answer,
            button(answer, "More results"),
            guild_id=GUILD_B,
            channel_id=CHANNEL_B,
        )
        assert await said(fake, more) == GONE
        vote = await fake.click(
            message_id, answer, button(answer, "👍"), guild_id=GUILD_B, channel_id=CHANNEL_B
        )
        assert await said(fake, vote) == GONE


async def test_article_and_its_autocomplete_use_the_corpus_of_the_place(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    async with running(make_client(settings, embedder)):
        choices = {}
        for guild, channel in ((GUILD_A, CHANNEL_A), (GUILD_B, CHANNEL_B)):
            iid = await fake.autocomplete(
                "article", "title", "chips", guild_id=guild, channel_id=channel
            )
            await fake.wait_for(lambda iid=iid: responded_choices(fake, iid) is not None)
            choices[guild] = responded_choices(fake, iid)
        assert choices[GUILD_A] and {c["name"].split()[0] for c in choices[GUILD_A]} == {
            POLITICS_PREFIX
        }
        assert choices[GUILD_B] and {c["name"].split()[0] for c in choices[GUILD_B]} == {
            TECH_PREFIX
        }
        politics_id = choices[GUILD_A][0]["value"]
        iid = await fake.send_interaction(
            "article", {"title": politics_id}, guild_id=GUILD_A, channel_id=CHANNEL_A
        )
        assert cited_prefixes(await said(fake, iid)) == {POLITICS_PREFIX}
        # The politics article's id typed in the tech server: not found there.
        iid = await fake.send_interaction(
            "article", {"title": politics_id}, guild_id=GUILD_B, channel_id=CHANNEL_B
        )
        assert POLITICS_PREFIX not in await said(fake, iid)


def responded_choices(fake: FakeDiscord, iid: str) -> list[dict[str, Any]] | None:
    for request in fake.requests:
        if request.path.startswith(f"/interactions/{iid}/") and request.json["type"] == 8:
            return request.json["data"]["choices"]
    return None


async def test_channel_route_beats_server_route_and_threads_follow_their_parent(
    fake: FakeDiscord, tmp_path: Path, embedder: FakeEmbedder
) -> None:
    from dataclasses import replace

    from retrieval.config import RouteSettings

    settings = corpora_settings(tmp_path)
    routes = (*settings.bot.routes, RouteSettings(GUILD_A, "tech", (ANSWER_A,)))
    settings = replace(settings, bot=replace(settings.bot, routes=routes, threads=True))
    build_corpora(settings, embedder)
    async with running(make_client(settings, embedder)):
        assert cited_prefixes(await ask(fake, GUILD_A, ANSWER_A, "chips")) == {TECH_PREFIX}
        assert cited_prefixes(await ask(fake, GUILD_A, CHANNEL_A, "chips")) == {POLITICS_PREFIX}
        # A mention in the tech channel opens a thread; a follow-up there is answered from
        # the thread's parent's corpus.
        await fake.send_message(
            f"<@{BOT_ID}> solar panels", mentions=[BOT_ID], guild_id=GUILD_A, channel_id=ANSWER_A
        )
        await fake.wait_for(lambda: fake.threads)
        thread = fake.threads[0]["id"]
        await fake.wait_for(lambda: fake.posted.get(thread))
        await fake.send_message("and grid batteries?", guild_id=GUILD_A, channel_id=thread)
        await fake.wait_for(lambda: len(fake.posted.get(thread, [])) == 2)
        for _, body in fake.posted[thread]:
            assert cited_prefixes(text_of(body)) == {TECH_PREFIX}


# -- /library --------------------------------------------------------------------------------


def feed_site(site: LocalSite, count: int, topic: str = "kayaks") -> str:
    entries = []
    for n in range(count):
        path = f"/club/{topic}-{n}.html"
        site.routes[path] = Route(page(f"Club {topic} {n}", article_text(f"{topic} {n}")).encode())
        entries.append(Entry(f"Club {topic} {n}", site.url(path)))
    site.routes["/feed.xml"] = Route(rss(entries), "application/rss+xml")
    return site.url("/feed.xml")


async def test_library_add_sync_list_remove_only_in_that_server(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    with LocalSite() as site:
        feed = feed_site(site, 5)
        async with running(make_client(settings, embedder)) as client:
            # A member may not; an admin may.
            assert await library(fake, "add", GUILD_C, CHANNEL_C, url=feed, admin=False) == REFUSED
            assert site.hits == []
            done = await library(fake, "add", GUILD_C, CHANNEL_C, url=feed, contains="added")
            assert done.startswith("5 articles added"), done
            answer = await ask(fake, GUILD_C, CHANNEL_C, "kayaks 3")
            assert "Club kayaks" in answer and not cited_prefixes(answer)
            # Only there.
            assert "Club kayaks" not in await ask(fake, GUILD_A, CHANNEL_A, "kayaks 3")
            assert "Club kayaks" not in await ask(fake, GUILD_B, CHANNEL_B, "kayaks 3")
            listing = await library(fake, "list", GUILD_C, CHANNEL_C)
            assert feed in listing and "5 articles" in listing and "ok" in listing
            assert client.corpora.registry.holder(f"server-{GUILD_C}") is not None

        # After a restart the source is still there and joins the sync.
        async with running(make_client(settings, embedder)):
            assert feed in await library(fake, "list", GUILD_C, CHANNEL_C)
            done = await library(fake, "remove", GUILD_C, CHANNEL_C, url=feed)
            assert "5 articles removed" in done, done
            assert "Club kayaks" not in await ask(fake, GUILD_C, CHANNEL_C, "kayaks 3")
            assert "No sources yet" in await library(fake, "list", GUILD_C, CHANNEL_C)


async def test_library_refusals(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    async with running(make_client(settings, embedder)):
        source = settings.for_corpus("politics").sources[0]
        # A source from the config: listed as such, not removable from Discord.
        listing = await library(fake, "list", GUILD_A, CHANNEL_A)
        assert "from the config" in listing and str(Path(source).parent) not in listing
        refused = await library(fake, "remove", GUILD_A, CHANNEL_A, url=source)
        assert "only its operator can remove it" in refused
        for sub in ("list", "sync"):
            assert await library(fake, sub, GUILD_A, CHANNEL_A, admin=False) == REFUSED
        with LocalSite() as site:
            feed = feed_site(site, 1)
            host = feed.removeprefix("http://").split("/")[0]
            for url, why in [
                ("file:///etc/passwd", "only http and https URLs"),
                (str(Path(source)), "only http and https URLs"),
                (f"ftp://{host}/feed.xml", "only http and https URLs"),
                (f"http://user:secret@{host}/feed.xml", "user name or password"),
                (f"http://user@{host}/feed.xml", "user name or password"),
            ]:
                answer = await library(fake, "add", GUILD_C, CHANNEL_C, url=url)
                assert answer.startswith("Not added:") and why in answer, (url, answer)
            assert site.hits == []  # refused before any connection


async def test_library_refuses_non_public_addresses_without_connecting(
    fake: FakeDiscord, tmp_path: Path, embedder: FakeEmbedder
) -> None:
    from dataclasses import replace

    from retrieval.config import WebSettings

    settings = corpora_settings(tmp_path)
    settings = replace(settings, web=WebSettings(delay_seconds=0.0))  # no allow_addresses
    build_corpora(settings, embedder)
    with LocalSite() as site:
        feed = feed_site(site, 2)
        async with running(make_client(settings, embedder)):
            answer = await library(fake, "add", GUILD_C, CHANNEL_C, url=feed)
            assert answer == "Not added: the host is not a public address.", answer
        assert site.hits == []


# -- /settings --------------------------------------------------------------------------------


async def settings_command(
    fake: FakeDiscord, sub: str, guild: int, *, admin: bool = True, **options: Any
) -> str:
    channel = {GUILD_A: CHANNEL_A, GUILD_B: CHANNEL_B, GUILD_C: CHANNEL_C}[guild]
    iid = await fake.send_interaction(
        "settings",
        options,
        subcommand=sub,
        guild_id=guild,
        channel_id=channel,
        admin=admin,
        user_id=ADMIN if admin else MEMBER,
    )
    return await said(fake, iid)


async def test_settings_persist_across_a_restart_and_stay_in_their_server(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    async with running(make_client(settings, embedder)):
        refused = await settings_command(
            fake, "answer-channel", GUILD_B, admin=False, channel=channel_option(ANSWER_B), on=True
        )
        assert refused == REFUSED
        # No answer channel yet: a plain message is not answered.
        await fake.send_message("solar panels?", guild_id=GUILD_B, channel_id=ANSWER_B)
        shown = await settings_command(
            fake, "answer-channel", GUILD_B, channel=channel_option(ANSWER_B), on=True
        )
        assert f"<#{ANSWER_B}>" in shown
    assert fake.posted.get(str(ANSWER_B)) is None
    async with running(make_client(settings, embedder)):  # a restart
        await fake.send_message("solar panels?", guild_id=GUILD_B, channel_id=ANSWER_B)
        await fake.wait_for(lambda: fake.posted.get(str(ANSWER_B)))
        assert cited_prefixes(text_of(fake.posted[str(ANSWER_B)][0][1])) == {TECH_PREFIX}
        # Server A has no answer channel: its channel with the same role stays quiet.
        await fake.send_message("solar panels?", guild_id=GUILD_A, channel_id=ANSWER_A)
        # Only a role may ask in server A once one is set.
        await settings_command(fake, "ask-role", GUILD_A, role=role_option(ASKER_ROLE), on=True)
        iid = await fake.send_interaction(
            "ask", {"question": "chips"}, guild_id=GUILD_A, channel_id=CHANNEL_A, user_id=MEMBER
        )
        assert "only some roles" in await said(fake, iid)
        iid = await fake.send_interaction(
            "ask",
            {"question": "chips"},
            guild_id=GUILD_A,
            channel_id=CHANNEL_A,
            user_id=MEMBER,
            roles=(ASKER_ROLE,),
        )
        assert cited_prefixes(await said(fake, iid)) == {POLITICS_PREFIX}
    assert fake.posted.get(str(ANSWER_A)) is None


async def test_forum_posts_are_answered_in_their_thread(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    async with running(make_client(settings, embedder)):
        await settings_command(
            fake, "forum-channel", GUILD_A, channel=channel_option(FORUM_A, forum=True), on=True
        )
        post = await fake.forum_post(GUILD_A, FORUM_A, "Water referendum", "who votes on it?")
        await fake.wait_for(lambda: fake.posted.get(post))
        assert cited_prefixes(text_of(fake.posted[post][0][1])) == {POLITICS_PREFIX}


# -- without the Message Content intent -------------------------------------------------------


async def test_refused_message_content_intent_reconnects_without_it(
    fake: FakeDiscord, tmp_path: Path, embedder: FakeEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    caplog.set_level(logging.INFO)
    settings = corpora_settings(tmp_path)
    settings = replace(settings, bot=replace(settings.bot, channels=(ANSWER_B,)))
    build_corpora(settings, embedder)
    fake.refuse_message_content = True
    clients = []

    def make(message_content: bool | None) -> Any:
        clients.append(make_client(settings, embedder, message_content=message_content))
        return clients[-1]

    runner = asyncio.create_task(run(make, TOKEN))
    try:
        await fake.wait_for(lambda: len(clients) == 2, timeout=15)
        await asyncio.wait_for(clients[1].wait_until_ready(), 10)
        first, second = fake.identified_intents[:2]
        assert first & (1 << 15) and not second & (1 << 15)
        assert "refused the Message Content intent" in caplog.text
        iid = await fake.send_interaction("stats", {}, guild_id=GUILD_B, channel_id=CHANNEL_B)
        assert "Message Content intent: off (Discord refused it)" in await said(fake, iid)
        # The answer channel is off; a mention still works.
        await fake.send_message("solar panels?", guild_id=GUILD_B, channel_id=ANSWER_B)
        await fake.send_message(
            f"<@{BOT_ID}> solar panels", mentions=[BOT_ID], guild_id=GUILD_B, channel_id=CHANNEL_B
        )
        await fake.wait_for(lambda: fake.posted.get(str(CHANNEL_B)))
        assert fake.posted.get(str(ANSWER_B)) is None
    finally:
        await clients[-1].close()
        await asyncio.wait_for(runner, 10)


# -- servers the bot leaves ------------------------------------------------------------------


async def test_a_left_server_keeps_its_corpus_for_keep_removed_days_then_only_it_goes(
    fake: FakeDiscord, settings: Settings, embedder: FakeEmbedder
) -> None:
    from datetime import UTC, datetime, timedelta

    with LocalSite() as site:
        feed = feed_site(site, 2)
        async with running(make_client(settings, embedder)) as client:
            assert "added" in await library(
                fake, "add", GUILD_C, CHANNEL_C, url=feed, contains="added"
            )
            folder = Path(client.corpora.settings_for(f"server-{GUILD_C}").index_dir)
            assert folder.is_dir()
            await fake.remove_guild(GUILD_C)
            for _ in range(200):  # the gateway event reaches the bot
                if client.corpora.data.server_corpora()[GUILD_C] is not None:
                    break
                await asyncio.sleep(0.02)
            corpora = client.corpora
            assert await corpora.delete_expired() == []  # kept for now
            assert folder.is_dir()
            later = datetime.now(UTC) + timedelta(days=settings.bot.keep_removed_days, seconds=1)
            assert await corpora.delete_expired(later) == [GUILD_C]
            assert not folder.parent.exists()
            assert corpora.data.sources(f"server-{GUILD_C}") == []
            # Nothing else was touched.
            for name in ("politics", "tech"):
                assert corpora.has_index(name)


async def test_library_leaves_a_corpus_shared_with_other_servers_to_the_operator(
    fake: FakeDiscord, tmp_path: Path, embedder: FakeEmbedder
) -> None:
    from dataclasses import replace

    from retrieval.config import RouteSettings

    settings = corpora_settings(tmp_path)
    routes = (*settings.bot.routes, RouteSettings(GUILD_C, "politics"))
    settings = replace(settings, bot=replace(settings.bot, routes=routes))
    build_corpora(settings, embedder)
    async with running(make_client(settings, embedder)):
        answer = await library(fake, "add", GUILD_C, CHANNEL_C, url="https://example.org/feed")
        assert answer.startswith("This server has no library the bot can manage")
        # The tech server alone reads tech: its admins manage it.
        assert "from the config" in await library(fake, "list", GUILD_B, CHANNEL_B)


async def test_every_ssrf_class_is_refused_from_discord_without_a_connection(
    fake: FakeDiscord,
    tmp_path: Path,
    embedder: FakeEmbedder,
    connection_guard: list[str],  # noqa: F811
) -> None:
    """Each class of tests/web/test_addresses.py's REFUSED, typed into /library add: one line
    saying why, no source recorded, and no connection attempted (names resolve through a
    stub resolver; the guard refuses and records any connection)."""
    from dataclasses import replace

    from retrieval.config import WebSettings

    settings = corpora_settings(tmp_path)
    settings = replace(settings, web=WebSettings(delay_seconds=0.0))  # no allow_addresses
    build_corpora(settings, embedder)
    async with running(make_client(settings, embedder)) as client:
        cog = client.get_cog("LibraryAdmin")
        assert cog is not None
        cog.resolver = RESOLVER  # type: ignore[attr-defined]
        for url, why in SSRF_REFUSED:
            answer = await library(fake, "add", GUILD_C, CHANNEL_C, url=url)
            assert answer == f"Not added: {why}.", (url, answer)
        assert client.corpora.data.sources(f"server-{GUILD_C}") == []
    assert connection_guard == []
