"""What a member's media request costs when its socket is on another node than the room's
media: one request and its reply over Redis pub/sub (signaling/cluster/node_rpc.py), against the
same call made in process.

Two NodeRpc endpoints in one process talk through the local Redis, as two nodes would (the
network hop between machines comes on top). Prints round-trip p50/p95/p99 for sequential
requests, and the rate with 16 requests in flight (a room's members trickling candidates).

    .venv/bin/python bench/node_rpc.py [--requests 3000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from signaling.cluster.node_rpc import NodeRpc

# An ICE candidate request as the SFU node receives it.
ARGS: list[Any] = [1, "p-0123456789ab", "publish", {
    "candidate": "candidate:1 1 udp 2130706431 10.0.0.5 51234 typ host",
    "sdpMid": "0", "sdpMLineIndex": 0}]


async def serve(method: str, args: list[Any]) -> dict[str, Any]:
    return {"ok": True}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(requests: int, url: str) -> None:
    prefix = f"bench-{secrets.token_hex(4)}"
    redis_a, redis_b = Redis.from_url(url), Redis.from_url(url)
    a = NodeRpc(redis_a, prefix, "a", serve)
    b = NodeRpc(redis_b, prefix, "b", serve)
    await a.start()
    await b.start()
    try:
        await asyncio.sleep(0.2)  # subscriptions in place
        for _ in range(200):  # warm up connections
            await a.call("b", "ice", ARGS)

        local = []
        for _ in range(requests):
            t = time.perf_counter()
            await serve("ice", ARGS)
            local.append(time.perf_counter() - t)
        remote = []
        cpu = time.process_time()
        for _ in range(requests):
            t = time.perf_counter()
            await a.call("b", "ice", ARGS)
            remote.append(time.perf_counter() - t)
        cpu_per_call = (time.process_time() - cpu) / requests

        sem = asyncio.Semaphore(16)

        async def one() -> None:
            async with sem:
                await a.call("b", "ice", ARGS)
        t = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        rate = requests / (time.perf_counter() - t)
    finally:
        await a.stop()
        await b.stop()
        await redis_a.aclose()
        await redis_b.aclose()

    def ms(v: float) -> str:
        return f"{v * 1000:.3f} ms"
    print(f"{requests} requests, Redis {url}")
    print(f"in process:      p50 {statistics.median(local) * 1e6:.1f} µs")
    print(f"over Redis:      p50 {ms(quantile(remote, 0.5))}  p95 {ms(quantile(remote, 0.95))}"
          f"  p99 {ms(quantile(remote, 0.99))}")
    print(f"CPU per request (both ends, this process): {ms(cpu_per_call)}")
    print(f"16 in flight:    {rate:,.0f} requests/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ns = parser.parse_args()
    asyncio.run(main(ns.requests, ns.redis))
