"""Who may do what: bearer keys from the environment, and the rate limit.

Keys are never logged and are compared in constant time (``hmac.compare_digest``, against
every configured key, so the time taken does not tell which one nearly matched).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import ServerError

API_KEYS_VARIABLE = "CITEBOT_API_KEYS"
ADMIN_KEYS_VARIABLE = "CITEBOT_ADMIN_KEYS"


class Access(enum.IntEnum):
    """What a request may do; each level includes those below it."""

    NONE = 0
    READ = 1
    ADMIN = 2


def _split(value: str) -> tuple[bytes, ...]:
    return tuple(key.strip().encode() for key in value.split(",") if key.strip())


@dataclass(frozen=True)
class Keys:
    """The configured keys: read keys search and read, admin keys do everything."""

    read: tuple[bytes, ...] = ()
    admin: tuple[bytes, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never the keys themselves, even in a debug log
        return f"Keys(read={len(self.read)}, admin={len(self.admin)})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Keys:
        environ = os.environ if environ is None else environ
        return cls(
            _split(environ.get(API_KEYS_VARIABLE, "")),
            _split(environ.get(ADMIN_KEYS_VARIABLE, "")),
        )

    @property
    def any(self) -> bool:
        return bool(self.read or self.admin)

    def access(self, key: str | None) -> Access:
        """What ``key`` may do (NONE for no key or an unknown one)."""
        if not key:
            return Access.NONE
        given = key.encode()
        # Every key is compared, whatever matched first.
        admin = any([hmac.compare_digest(given, k) for k in self.admin])
        read = any([hmac.compare_digest(given, k) for k in self.read])
        return Access.ADMIN if admin else Access.READ if read else Access.NONE


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, else None."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def check_binding(host: str, keys: Keys) -> None:
    """ServerError when ``host`` is not loopback and no key is set: a public server
    without keys would answer anyone."""
    if not keys.any and not is_loopback(host):
        raise ServerError(
            f"refusing to listen on {host} without keys: set {API_KEYS_VARIABLE}"
            f" (and {ADMIN_KEYS_VARIABLE} for pushes), or listen on 127.0.0.1"
        )


def key_id(key: str) -> str:
    """A stand-in for a key in the rate limiter's table (the key itself is not kept there)."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, in bursts of as many.

    ``clock`` is injectable for tests. The table forgets full buckets when it grows large,
    so a flood of addresses cannot grow it without bound.
    """

    MAX_CLIENTS = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def retry_after(self, client: str) -> int:
        """0 if ``client`` may make a request now (and counts it), else whole seconds to wait."""
        if self.per_minute <= 0:
            return 0
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, then = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > self.MAX_CLIENTS:
            self._forget_full(now, rate)
        return 0

    def _forget_full(self, now: float, rate: float) -> None:
        self._buckets = {
            c: (t, w)
            for c, (t, w) in self._buckets.items()
            if t + (now - w) * rate < self.per_minute
        }
