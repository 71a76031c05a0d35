"""The bot's cooldown: at most one question per user every so many seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Cooldown:
    """At most one question per user every ``seconds``; ``clock`` is injectable for tests."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    _last: dict[int, float] = field(default_factory=dict)
    _warned: dict[int, float] = field(default_factory=dict)

    def retry_after(self, user_id: int) -> float:
        """0 and records the question if the user may ask now; else the seconds left."""
        if self.seconds <= 0:
            return 0.0
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            return self.seconds - (now - last)
        self._last[user_id] = now
        if len(self._last) > 10_000:  # forget users who asked long ago
            self._last = {u: t for u, t in self._last.items() if now - t < self.seconds}
            self._warned = {u: t for u, t in self._warned.items() if u in self._last}
        return 0.0

    def first_refusal(self, user_id: int) -> bool:
        """Whether this is the first refusal in the user's current wait (to notify once)."""
        last = self._last.get(user_id)
        if last is None or self._warned.get(user_id) == last:
            return False
        self._warned[user_id] = last
        return True
