"""Rate limits of room entry: join-token requests and Socket.IO connects, per user and per
client address, in fixed windows counted in Redis when configured (every node sees the same
counts) or in this process.

Unlike failed logins (app/auth/throttle.py) every attempt counts here, good or bad: the
limits are set well above what a doctor does by hand, or a page reconnecting after a dropped
link, and below what a script flooding the room or the database does. An address has a
larger budget than a user, as a hospital's doctors share one NAT address. A fixed window lets
at most twice its budget through around a window's edge, which is bound enough here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis


@dataclass(frozen=True)
class Limit:
    """At most ``per_window`` attempts in each ``window_s``."""

    name: str
    per_window: int
    window_s: int = 60


# A page retries its join token and its connection with backoff (frontend/src/room/): ten a
# minute is more than a reconnecting page asks; a district hospital's ten doctors
# reconnecting together after a link drop stay inside their address's budget.
JOIN_TOKEN_USER = Limit("join-token:user", per_window=20)
JOIN_TOKEN_ADDRESS = Limit("join-token:address", per_window=300)
CONNECT_USER = Limit("connect:user", per_window=30)
CONNECT_ADDRESS = Limit("connect:address", per_window=300)


class Windows(Protocol):
    async def hit(self, key: str, window: int, ttl_s: int) -> int: ...
    async def close(self) -> None: ...


class MemoryWindows:
    """This process's counts (a single node)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], tuple[int, float]] = {}
        self._next_sweep = 0.0

    async def hit(self, key: str, window: int, ttl_s: int) -> int:
        now = time.time()
        if now >= self._next_sweep:
            # Windows of every limit, each gone after its own time to live.
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._next_sweep = now + 10
        count = self._counts.get((key, window), (0, 0.0))[0] + 1
        self._counts[(key, window)] = (count, now + ttl_s)
        return count

    async def close(self) -> None:
        return None


class RedisWindows:
    """Counts every node sees: one counter per key and window, gone after the window."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = redis.from_url(url)
        self._prefix = f"{prefix}:rate:"

    async def hit(self, key: str, window: int, ttl_s: int) -> int:
        name = f"{self._prefix}{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, ttl_s)
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int
    #: The first attempt over its budget in this window: the one worth an audit event (a
    #: flood's every refusal would be a database write each).
    first: bool


class RateLimiter:
    def __init__(self, windows: Windows) -> None:
        self.windows = windows

    async def hit(self, *checks: tuple[Limit, str | int]) -> Refusal | None:
        """Counts one attempt against each (limit, who); why to wait when a limit is spent."""
        now = time.time()
        refusals = []
        for limit, who in checks:
            window = int(now // limit.window_s)
            count = await self.windows.hit(f"{limit.name}:{who}", window, limit.window_s * 2)
            if count > limit.per_window:
                wait = max(1, math.ceil((window + 1) * limit.window_s - now))
                refusals.append(Refusal(wait, count == limit.per_window + 1))
        if not refusals:
            return None
        return Refusal(max(r.retry_after_s for r in refusals), any(r.first for r in refusals))
