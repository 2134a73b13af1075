"""Throttling of password guesses, per account and per client address.

Each failed login adds one to the account's count and to the address's. Past a few free
failures the next attempt must wait a delay that doubles with each failure (answered 429
with Retry-After, whatever the password, so guessing goes no faster), and at LOCK_AT the
wait is the whole lockout. An address has a larger budget than an account: a district
hospital's doctors share one NAT address, and one doctor's typos must not lock the others
out. Counts fade FORGET_S after their last failure; a successful login clears its
account's count (not its address's); an admin can clear an account's at once.

Unknown accounts are counted like known ones, so the answers say nothing of which e-mail
addresses have accounts. With Redis configured the counts are shared by every node (one hash
per key, its expiry renewed by each failure), else kept in this process.

Checking and counting are two steps: attempts sent at the same instant may all pass the same
check, so a burst gains at most its own size once per delay, never a way around it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

FORGET_S = 3600


@dataclass(frozen=True)
class Budget:
    """How many failures pass freely, and at how many the lockout starts."""

    free: int
    lock_at: int
    first_delay_s: float = 1.0
    lockout_s: float = 900.0

    def wait(self, failures: int) -> float:
        """How long after the last failure the next attempt is let through."""
        if failures < self.free:
            return 0.0
        if failures >= self.lock_at:
            return self.lockout_s
        return min(self.first_delay_s * 2.0 ** (failures - self.free), self.lockout_s)


ACCOUNT = Budget(free=3, lock_at=10)
ADDRESS = Budget(free=30, lock_at=100)


@dataclass(frozen=True)
class Failures:
    count: int
    last: float  # wall-clock seconds of the last failure


class Counts(Protocol):
    async def get(self, key: str) -> Failures: ...
    async def add(self, key: str, now: float) -> int: ...
    async def clear(self, key: str) -> None: ...
    async def close(self) -> None: ...


class MemoryCounts:
    """This process's counts (a single node)."""

    def __init__(self) -> None:
        self._counts: dict[str, Failures] = {}

    async def get(self, key: str) -> Failures:
        kept = self._counts.get(key)
        if kept is None or time.time() - kept.last > FORGET_S:
            self._counts.pop(key, None)
            return Failures(0, 0.0)
        return kept

    async def add(self, key: str, now: float) -> int:
        count = (await self.get(key)).count + 1
        self._counts[key] = Failures(count, now)
        if len(self._counts) > 100_000:  # a flood of made-up accounts must not grow memory
            self._forget_old(now)
        return count

    def _forget_old(self, now: float) -> None:
        for key in [k for k, f in self._counts.items() if now - f.last > FORGET_S]:
            del self._counts[key]

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)

    async def close(self) -> None:
        return None


class RedisCounts:
    """Counts every node sees."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = redis.from_url(url)
        self._prefix = f"{prefix}:login-failures:"

    async def get(self, key: str) -> Failures:
        count, last = await self._redis.hmget(self._prefix + key, ["count", "last"])
        return Failures(int(count or 0), float(last or 0.0))

    async def add(self, key: str, now: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._prefix + key, "count", 1)
            pipe.hset(self._prefix + key, "last", repr(now))
            pipe.expire(self._prefix + key, FORGET_S)
            count, _, _ = await pipe.execute()
        return int(count)

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int
    locked: bool


class LoginThrottle:
    def __init__(self, counts: Counts, account: Budget = ACCOUNT,
                 address: Budget = ADDRESS) -> None:
        self.counts, self.account, self.address = counts, account, address

    @staticmethod
    def _keys(email: str, addr: str) -> tuple[str, str]:
        return f"account:{email.strip().lower()}", f"address:{addr}"

    async def check(self, email: str, addr: str) -> Refusal | None:
        """Why this attempt must wait, before its password is looked at; None to go on."""
        now = time.time()
        refusals = []
        for key, budget in zip(self._keys(email, addr), (self.account, self.address), strict=True):
            failures = await self.counts.get(key)
            left = failures.last + budget.wait(failures.count) - now
            if left > 0:
                refusals.append(Refusal(math.ceil(left), failures.count >= budget.lock_at))
        return max(refusals, key=lambda r: r.retry_after_s) if refusals else None

    async def failed(self, email: str, addr: str) -> bool:
        """Count a failure; True when it is the one that locks the account."""
        account, address = self._keys(email, addr)
        now = time.time()
        await self.counts.add(address, now)
        return await self.counts.add(account, now) == self.account.lock_at

    async def succeeded(self, email: str) -> None:
        await self.counts.clear(self._keys(email, "")[0])

    async def is_locked(self, email: str) -> bool:
        failures = await self.counts.get(self._keys(email, "")[0])
        return failures.count >= self.account.lock_at

    async def unlock(self, email: str) -> None:
        await self.counts.clear(self._keys(email, "")[0])
