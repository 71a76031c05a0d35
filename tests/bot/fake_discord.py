"""A tiny fake Discord (REST + gateway) on 127.0.0.1, for protocol-level tests and the benchmark.

Only what the bot uses is served: login, application info, command sync, interaction
callbacks and followups, channel messages; the gateway says HELLO, takes IDENTIFY,
sends READY and one GUILD_CREATE, acknowledges heartbeats and relays test dispatches.
Unknown routes answer 404 and are recorded, so a test sees them.

Over 600 lines on purpose: it is one protocol (the gateway and REST halves share the
servers, channels, threads and interactions they describe), read as one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import discord
import yarl
from aiohttp import WSMsgType, web

APP_ID = 700000000000000001
BOT_ID = APP_ID
GUILD_ID = 700000000000000002
CHANNEL_ID = 700000000000000003
USER_ID = 700000000000000004
DM_CHANNEL_ID = 700000000000000005
GROUP_DM_CHANNEL_ID = 700000000000000006
ADMIN_PERMISSIONS = str(discord.Permissions.all().value)
USER_PERMISSIONS = str(discord.Permissions(view_channel=True, send_messages=True).value)
MESSAGE_CONTENT_INTENT = 1 << 15


@dataclass(frozen=True)
class Guild:
    """A server of the fake: its text channels and forum channels (ids)."""

    id: int
    channels: tuple[int, ...]
    forums: tuple[int, ...] = ()
    name: str = "Fake Guild"
    roles: tuple[int, ...] = ()


@dataclass(frozen=True)
class Option:
    """A slash command option that is a channel (type 7) or a role (type 8)."""

    kind: int
    id: int
    channel_type: int = 0


def channel_option(channel_id: int, *, forum: bool = False) -> Option:
    return Option(7, channel_id, 15 if forum else 0)


def role_option(role_id: int) -> Option:
    return Option(8, role_id)


def user(uid: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(uid),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    at: float


@dataclass
class FakeDiscord:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    identify_payload: dict[str, Any] | None = None
    interaction_sent_at: dict[str, float] = field(default_factory=dict)
    acked_at: dict[str, float] = field(default_factory=dict)
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    answered_at: dict[str, float] = field(default_factory=dict)
    channel_messages: list[dict[str, Any]] = field(default_factory=list)
    # Messages the bot posted, by channel id, as (message id, body).
    posted: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    # Interaction id -> id of the message its (last) followup created.
    answered_message: dict[str, str] = field(default_factory=dict)
    threads: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    # The servers the bot is in (default: one, with one channel).
    guilds: tuple[Guild, ...] = (Guild(GUILD_ID, (CHANNEL_ID,)),)
    # Refuse an IDENTIFY asking for the Message Content intent (close code 4014), as
    # Discord does for a bot not granted it.
    refuse_message_content: bool = False
    # Every IDENTIFY's intents, in order.
    identified_intents: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(800000000000000000)
        self._seq = itertools.count(1)
        self._ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self._token_to_interaction: dict[str, str] = {}
        self.message_created = asyncio.Condition()

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)  # loopback only
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def point_discord_py_here(self) -> tuple[str, yarl.URL]:
        """Set discord.py's REST base and gateway to this fake; returns the old values."""
        old = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = f"http://{self.host}:{self.port}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            f"ws://{self.host}:{self.port}/ws"
        )
        return old

    @staticmethod
    def restore(old: tuple[str, yarl.URL]) -> None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old

    # -- gateway --------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        )
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            if payload["op"] == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif payload["op"] == 2:
                self.identify_payload = payload["d"]
                intents = int(payload["d"].get("intents", 0))
                self.identified_intents.append(intents)
                if self.refuse_message_content and intents & MESSAGE_CONTENT_INTENT:
                    await ws.close(code=4014, message=b"Disallowed intent(s).")
                    break
                await self.dispatch("READY", self._ready())
                for guild in self.guilds:
                    await self.dispatch("GUILD_CREATE", self._guild(guild))
                self.identified.set()
        return ws

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._ws is not None, "the bot has not connected"
        await self._ws.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": user(BOT_ID, "citebot", bot=True),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self.guilds],
            "session_id": "fake-session",
            "resume_gateway_url": f"ws://{self.host}:{self.port}/ws",
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
        }

    def _guild(self, guild: Guild) -> dict[str, Any]:
        return {
            "id": str(guild.id),
            "name": guild.name,
            "owner_id": str(USER_ID),
            "unavailable": False,
            "member_count": 2,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "roles": [
                {
                    "id": str(guild.id),
                    "name": "@everyone",
                    "permissions": USER_PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                },
                *(_role(r, f"role-{r}") for r in guild.roles),
            ],
            "channels": [
                {
                    "id": str(channel),
                    "type": 15 if channel in guild.forums else 0,
                    "name": f"channel-{channel}",
                    "position": 0,
                    "permission_overwrites": [],
                    "guild_id": str(guild.id),
                }
                for channel in (*guild.channels, *guild.forums)
            ],
            "members": [
                {
                    "user": user(BOT_ID, "citebot", bot=True),
                    "roles": [],
                    "joined_at": "2024-01-01T00:00:00+00:00",
                    "flags": 0,
                    "deaf": False,
                    "mute": False,
                }
            ],
        }

    # -- scenario helpers -------------------------------------------------------------

    async def send_interaction(
        self,
        name: str,
        options: dict[str, Any],
        *,
        user_id: int = USER_ID,
        target: dict[str, Any] | None = None,
        where: str = "guild",
        guild_id: int = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        admin: bool = False,
        roles: tuple[int, ...] = (),
        subcommand: str | None = None,
    ) -> str:
        """An application command: a slash command, or a message command when ``target``
        (a message payload) is given. ``where``: "guild", "dm" (the bot's DM) or
        "group_dm" (a group DM, reachable only through a user install). In a guild: which
        one and which channel, and whether the member has every permission (``admin``).
        ``subcommand``: the command of a group (``name``), e.g. "add" of "library"."""
        types = {str: 3, int: 4, bool: 5}
        if target is not None:
            data: dict[str, Any] = {
                "id": "2",
                "name": name,
                "type": 3,
                "target_id": target["id"],
                "resolved": {"messages": {target["id"]: target}},
            }
        else:
            resolved: dict[str, Any] = {}
            listed = []
            for k, v in options.items():
                if isinstance(v, Option):
                    listed.append({"name": k, "type": v.kind, "value": str(v.id)})
                    if v.kind == 7:
                        resolved.setdefault("channels", {})[str(v.id)] = {
                            "id": str(v.id),
                            "type": v.channel_type,
                            "name": f"channel-{v.id}",
                            "permissions": ADMIN_PERMISSIONS,
                            "guild_id": str(guild_id),
                        }
                    else:
                        resolved.setdefault("roles", {})[str(v.id)] = _role(v.id, "role")
                else:
                    listed.append({"name": k, "type": types[type(v)], "value": v})
            if subcommand is not None:
                listed = [{"name": subcommand, "type": 1, "options": listed}]
            data = {"id": "1", "name": name, "type": 1, "options": listed}
            if resolved:
                data["resolved"] = resolved
        return await self._interaction(
            2,
            data,
            user_id=user_id,
            where=where,
            guild_id=guild_id,
            channel_id=channel_id,
            admin=admin,
            roles=roles,
        )

    async def autocomplete(
        self,
        name: str,
        option: str,
        typed: str,
        *,
        guild_id: int = GUILD_ID,
        channel_id: int = CHANNEL_ID,
    ) -> str:
        """Typing ``typed`` into ``option`` of slash command ``name``: the bot answers with
        choices (callback type 8)."""
        data = {
            "id": "1",
            "name": name,
            "type": 1,
            "options": [{"name": option, "type": 3, "value": typed, "focused": True}],
        }
        return await self._interaction(
            4, data, user_id=USER_ID, guild_id=guild_id, channel_id=channel_id
        )

    async def click(
        self,
        message_id: str,
        body: dict[str, Any],
        custom_id: str,
        *,
        user_id: int = USER_ID,
        guild_id: int = GUILD_ID,
        channel_id: int = CHANNEL_ID,
    ) -> str:
        """A button press on a message the bot posted (``body`` as it was sent)."""
        message = self._message(message_id, user(BOT_ID, "citebot", bot=True), "", body)
        message["channel_id"], message["guild_id"] = str(channel_id), str(guild_id)
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interaction(
            3, data, user_id=user_id, message=message, guild_id=guild_id, channel_id=channel_id
        )

    async def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: int,
        where: str = "guild",
        message: dict[str, Any] | None = None,
        guild_id: int = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        admin: bool = False,
        roles: tuple[int, ...] = (),
    ) -> str:
        iid = str(next(self._ids))
        token = f"itoken-{iid}"
        self._token_to_interaction[token] = iid
        who = user(user_id, f"user{user_id}")
        payload: dict[str, Any] = {
            "id": iid,
            "application_id": str(APP_ID),
            "type": kind,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "data": data,
        }
        if where == "guild":
            permissions = ADMIN_PERMISSIONS if admin else USER_PERMISSIONS
            thread = next((t for t in self.threads if int(t["id"]) == channel_id), None)
            channel_payload: dict[str, Any] = thread or {
                "id": str(channel_id),
                "type": 0,
                "name": "general",
                "guild_id": str(guild_id),
            }
            payload.update(
                {
                    "guild_id": str(guild_id),
                    "channel_id": str(channel_id),
                    "channel": {**channel_payload, "permissions": permissions},
                    "member": {
                        "user": who,
                        "roles": [str(r) for r in roles],
                        "joined_at": "2024-01-01T00:00:00+00:00",
                        "flags": 0,
                        "deaf": False,
                        "mute": False,
                        "permissions": permissions,
                    },
                    "app_permissions": ADMIN_PERMISSIONS,
                    "guild_locale": "en-US",
                    "authorizing_integration_owners": {"0": str(guild_id)},
                    "context": 0,
                }
            )
        else:
            dm = where == "dm"
            channel_id = DM_CHANNEL_ID if dm else GROUP_DM_CHANNEL_ID
            channel: dict[str, Any] = {"id": str(channel_id), "type": 1 if dm else 3}
            if dm:
                channel["recipients"] = [who]
            else:
                channel.update({"name": "friends", "recipients": [who], "owner_id": str(user_id)})
            payload.update(
                {
                    "channel_id": str(channel_id),
                    "channel": channel,
                    "user": who,
                    "app_permissions": "0",
                    # A group DM is reached through the user's install of the app.
                    "authorizing_integration_owners": (
                        {"0": str(GUILD_ID)} if dm else {"1": str(user_id)}
                    ),
                    "context": 1 if dm else 2,
                }
            )
        if message is not None:
            payload["message"] = message
        self.interaction_sent_at[iid] = time.perf_counter()
        await self.dispatch("INTERACTION_CREATE", payload)
        return iid

    async def send_message(
        self,
        content: str,
        *,
        mentions: list[int] = (),
        user_id: int = USER_ID,
        channel_id: int | str = CHANNEL_ID,
        dm: bool = False,
        guild_id: int = GUILD_ID,
        roles: tuple[int, ...] = (),
        message_id: str | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> str:
        """A user's message in a guild channel, a thread of it, or the bot's DM; with
        ``reply_to`` (a message payload), a reply to it."""
        mid = message_id or str(next(self._ids))
        data = self._message(mid, user(user_id, f"user{user_id}"), content)
        data["guild_id"] = str(guild_id)
        if reply_to is not None:
            data["message_reference"] = {
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
            }
            data["referenced_message"] = reply_to
            data["type"] = 19
        data["mentions"] = [
            user(m, "citebot" if m == BOT_ID else f"user{m}", bot=m == BOT_ID) for m in mentions
        ]
        if dm:
            data["channel_id"] = str(DM_CHANNEL_ID)
            del data["guild_id"]
        else:
            data["channel_id"] = str(channel_id)
            data["member"] = {
                "roles": [str(r) for r in roles],
                "joined_at": "2024-01-01T00:00:00+00:00",
                "flags": 0,
                "deaf": False,
                "mute": False,
            }
        await self.dispatch("MESSAGE_CREATE", data)
        return mid

    async def forum_post(
        self, guild_id: int, forum_id: int, title: str, content: str, *, user_id: int = USER_ID
    ) -> str:
        """A new post in a forum channel: its thread, then its first message (same id)."""
        tid = str(next(self._ids))
        thread = {
            **self._thread(str(forum_id), tid, title),
            "guild_id": str(guild_id),
            "owner_id": str(user_id),
        }
        self.threads.append(thread)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return await self.send_message(
            content, channel_id=tid, guild_id=guild_id, message_id=tid, user_id=user_id
        )

    async def remove_guild(self, guild_id: int) -> None:
        """The bot was removed from a server."""
        await self.dispatch("GUILD_DELETE", {"id": str(guild_id)})

    def user_message(self, mid: str, content: str, *, user_id: int = USER_ID) -> dict[str, Any]:
        """A user's message payload, as a message command's target."""
        return self._message(mid, user(user_id, f"user{user_id}"), content)

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = time.perf_counter() + timeout
        async with self.message_created:
            while not predicate():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError("the fake Discord did not see the expected messages")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.message_created.wait(), remaining)

    def _message(
        self, mid: str, author: dict[str, Any], content: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = body or {}
        return {
            "id": mid,
            "channel_id": str(CHANNEL_ID),
            "guild_id": str(GUILD_ID),
            "author": author,
            "content": body.get("content") or content,
            "timestamp": "2024-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds", []),
            "components": body.get("components", []),
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0),
        }

    def _thread(self, channel_id: str, message_id: str, name: str) -> dict[str, Any]:
        """A public thread the bot opens on a message (its id is the message's, as on Discord)."""
        return {
            "id": message_id,
            "type": 11,
            "guild_id": str(self._guild_of(int(channel_id))),
            "parent_id": channel_id,
            "owner_id": str(BOT_ID),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": "2024-01-01T00:00:00+00:00",
                "locked": False,
            },
        }

    def _guild_of(self, channel_id: int) -> int:
        for guild in self.guilds:
            if channel_id in (*guild.channels, *guild.forums):
                return guild.id
        for thread in self.threads:
            if int(thread["id"]) == channel_id:
                return int(thread["guild_id"])
        return GUILD_ID

    # -- REST ---------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json" and raw:
                body = json.loads(raw)
            elif raw and request.content_type.startswith("multipart/"):
                body = {"multipart": True}
        async with self.message_created:  # wake wait_for: a test may wait for any request
            self.requests.append(
                Request(request.method, path, dict(request.query), body, time.perf_counter())
            )
            self.message_created.notify_all()
        parts = path.strip("/").split("/")
        bot = user(BOT_ID, "citebot", bot=True)
        if request.method == "GET" and path == "/users/@me":
            return _json(bot)
        if request.method == "GET" and path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(APP_ID),
                    "name": "citebot",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": user(USER_ID, "owner"),
                    "verify_key": "00",
                    "flags": 0,
                }
            )
        if request.method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return _json(
                [
                    {
                        "description": "",
                        **c,
                        "id": str(next(self._ids)),
                        "application_id": str(APP_ID),
                        "version": "1",
                    }
                    for c in body
                ]
            )
        if request.method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            iid = parts[1]
            self.acked_at.setdefault(iid, time.perf_counter())
            mid = str(next(self._ids))
            data = body.get("data") or {}
            message = self._message(mid, bot, "", data)
            return _json(
                {
                    "interaction": {
                        "id": iid,
                        "type": 2,
                        "response_message_id": mid,
                        "response_message_loading": body["type"] == 5,
                        "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
                    },
                    "resource": {"type": body["type"], "message": message},
                }
            )
        if parts[0] == "webhooks" and request.method in ("POST", "PATCH"):
            token = parts[2]
            iid = self._token_to_interaction.get(token, token)
            mid = str(next(self._ids))
            async with self.message_created:
                self.answered[iid] = body
                self.answered_message[iid] = mid
                self.answered_at[iid] = time.perf_counter()
                self.message_created.notify_all()
            return _json(self._message(mid, bot, "", body))
        if (
            request.method == "POST"
            and parts[0] == "channels"
            and parts[2:3] == ["messages"]
            and parts[-1] == "threads"
        ):
            thread = self._thread(parts[1], parts[3], body["name"])
            self.threads.append(thread)
            await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
            return _json(thread)
        if request.method == "POST" and parts[0] == "channels" and parts[-1] == "messages":
            mid = str(next(self._ids))
            async with self.message_created:
                self.channel_messages.append(body)
                self.posted.setdefault(parts[1], []).append((mid, body))
                self.message_created.notify_all()
            message = self._message(mid, bot, "", body)
            message["channel_id"] = parts[1]
            message["guild_id"] = str(self._guild_of(int(parts[1])))
            if int(parts[1]) == DM_CHANNEL_ID:
                del message["guild_id"]
            return _json(message)
        self.unknown.append(f"{request.method} {path}")
        return _json({"message": "Unknown route in the fake", "code": 0}, status=404)


def _role(role_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "permissions": "0",
        "position": 1,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
    }


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json.
    # (aiohttp's content_type= would append "; charset=utf-8", so set the header itself.)
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )
