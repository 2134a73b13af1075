"""Where members' subscribe connections go in a room spread over a node's SFU workers, on
the real Redis: home first, then the sibling worker with the fewest of the room's, never a
worker of another node or a draining one; a dead worker's members are taken over once."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from signaling.cluster.nodes import NodeRegistry
from signaling.cluster.subscriber_nodes import HOME, SubscriberNodes

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"test-{secrets.token_hex(4)}"
    yield client, prefix
    keys = [k async for k in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def beat(redis: Redis, prefix: str, node_id: str, load: int = 0, *,
               draining: bool = False, media: bool = True) -> NodeRegistry:
    nodes = NodeRegistry(redis, prefix, node_id, 30, media=media)
    nodes.draining = draining
    await nodes.heartbeat(load)
    return nodes


async def test_home_first_then_the_sibling_with_the_fewest(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    nodes = await beat(client, prefix, "a/w0", load=9)
    await beat(client, prefix, "a/w1", load=2)
    await beat(client, prefix, "a/w2", load=1)
    await beat(client, prefix, "a/w3", load=0, draining=True)  # leaving: never chosen
    await beat(client, prefix, "b/w0", load=0)  # another node's worker: no relay to it
    await beat(client, prefix, "a", media=False)  # the app node itself carries no media
    subs = SubscriberNodes(client, prefix, nodes, home_subscribers=2)
    placed = [await subs.place(1, f"p{i}", "a/w0") for i in range(8)]
    # Two at home; then the fewest of this room's, the least loaded worker first on a tie.
    assert placed == ["a/w0", "a/w0", "a/w2", "a/w1", "a/w2", "a/w1", "a/w2", "a/w1"]
    recorded = await subs.all(1)
    assert recorded["p0"] == HOME and recorded["p2"] == "a/w2"
    assert await subs.of(1, "p0", "a/w0") == "a/w0"
    assert await subs.of(1, "p0", "a/w5") == "a/w5"  # the room moved: home goes with it
    assert await subs.of(1, "nobody", "a/w0") == "a/w0"
    assert set((await subs.away(1)).values()) == {"a/w1", "a/w2"}
    # Placing a member again does not count its own old place (else a/w0 would be chosen).
    assert await subs.place(1, "p7", "a/w0") == "a/w1"


async def test_an_app_node_carrying_media_keeps_every_subscriber(
        redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    nodes = await beat(client, prefix, "a")
    await beat(client, prefix, "b")
    subs = SubscriberNodes(client, prefix, nodes, home_subscribers=0)
    assert {await subs.place(1, f"p{i}", "a") for i in range(4)} == {"a"}
    assert await subs.away(1) == {}


async def test_a_dead_workers_member_is_taken_over_once(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    nodes = await beat(client, prefix, "a/w0", load=5)
    await beat(client, prefix, "a/w1")
    subs = SubscriberNodes(client, prefix, nodes, home_subscribers=0)
    assert await subs.place(1, "p", "a/w0") == "a/w1"
    # Two nodes see a/w1 die at once: one of them rebuilds the member's media.
    assert [await subs.take_over(1, "p", "a/w1") for _ in range(2)] == [True, False]
    assert await subs.all(1) == {"p": HOME}
    await subs.drop(1, "p")
    assert await subs.all(1) == {}
