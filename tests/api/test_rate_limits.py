"""Entering rooms cannot be flooded: join-token requests and Socket.IO connects are counted
per user and per address in fixed windows (in Redis when configured, so every node counts
alike); past the budget the answer is 429 with Retry-After, audited once per window."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from app.auth.rate_limit import (
    CONNECT_ADDRESS,
    CONNECT_USER,
    JOIN_TOKEN_ADDRESS,
    JOIN_TOKEN_USER,
    Limit,
    MemoryWindows,
    RateLimiter,
    RedisWindows,
)
from tests.api.dbcheck import audit_events, error_of


async def test_budgets_leave_room_for_reconnecting_pages_and_a_shared_nat():
    for user, address in [(JOIN_TOKEN_USER, JOIN_TOKEN_ADDRESS), (CONNECT_USER, CONNECT_ADDRESS)]:
        assert user.per_window >= 20 and user.window_s == 60
        assert address.per_window >= 10 * user.per_window


async def test_join_tokens_past_the_budget_wait_and_the_refusal_is_audited_once(
        client, world, settings):
    cid = world.consultation_id
    url = f"/api/consultations/{cid}/join-token"
    for _ in range(JOIN_TOKEN_USER.per_window):
        r = await client.post(url, headers=world.auth("NDI"))
        assert r.status == 200, await r.text()
    for _ in range(2):
        r = await client.post(url, headers=world.auth("NDI"))
        error = await error_of(r, 429, code="rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.headers["Retry-After"] in error["message"]
    # Another doctor (same address, far from its budget) is not held up.
    assert (await client.post(url, headers=world.auth("BM"))).status == 200
    events = await audit_events(settings, "room.join_token")
    refused = [e for e in events if (e.detail or {}).get("reason") == "rate_limited"]
    assert len(refused) == 1
    assert refused[0].actor_id == world.user("NDI").id and refused[0].outcome == "denied"
    assert sum(e.outcome == "success" for e in events) == JOIN_TOKEN_USER.per_window + 1


BACKENDS = {
    "memory": MemoryWindows,
    "redis": lambda: RedisWindows("redis://127.0.0.1:6379/0",
                                  f"hoichan-test-{secrets.token_hex(4)}"),
}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_limit_counts_each_who_apart_and_a_new_window_starts_afresh(backend):
    windows = BACKENDS[backend]()
    limiter = RateLimiter(windows)
    limit = Limit("test", per_window=3, window_s=1)
    try:
        # Start just after a window's edge, so the four attempts fall in one window.
        await asyncio.sleep(1 - time.time() % 1 + 0.01)
        assert [await limiter.hit((limit, "a")) for _ in range(3)] == [None] * 3
        first, second = await limiter.hit((limit, "a")), await limiter.hit((limit, "a"))
        assert first is not None and first.first and first.retry_after_s == 1
        assert second is not None and not second.first
        assert await limiter.hit((limit, "b")) is None
        # The strictest of several limits decides.
        assert await limiter.hit((limit, "b"), (limit, "a")) is not None
        await asyncio.sleep(1.05)
        assert await limiter.hit((limit, "a")) is None
    finally:
        await windows.close()


async def test_every_node_sees_the_same_counts_through_redis():
    prefix = f"hoichan-test-{secrets.token_hex(4)}"
    nodes = [RateLimiter(RedisWindows("redis://127.0.0.1:6379/0", prefix)) for _ in range(2)]
    limit = Limit("test", per_window=4, window_s=60)
    try:
        for i in range(4):
            assert await nodes[i % 2].hit((limit, 7)) is None
        assert await nodes[0].hit((limit, 7)) is not None
        assert await nodes[1].hit((limit, 7)) is not None
    finally:
        for node in nodes:
            await node.windows.close()
