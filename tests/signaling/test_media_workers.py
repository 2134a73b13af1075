"""An app node whose SFU runs in worker processes (HOICHAN_MEDIA_WORKERS), on the real
PostgreSQL and Redis: rooms' media lives in the workers, and a worker killed mid-session is
started again while its room moves to the other worker, the members back within 10 s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_process import AppProcess
from tests.conftest import JWT_SECRET, World

from .conftest import Room
from .test_metrics import samples
from .test_multinode import (
    MEDIA_S,
    RECOVERY_S,
    REDIS_URL,
    Nodes,
    http_get,
    on_air,
    receiving,
)

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class Machine(Nodes):
    """One app node, ``a``, with two SFU workers ``a/w0`` and ``a/w1``."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        super().__init__(tmp_path, database_url)
        self.nodes = {"a": AppProcess(
            tmp_path / "a", HOICHAN_DATABASE_URL=database_url, HOICHAN_JWT_SECRET=JWT_SECRET,
            HOICHAN_REDIS_URL=REDIS_URL, HOICHAN_MEDIA_WORKERS="2",
            HOICHAN_REDIS_PREFIX=self.prefix, HOICHAN_NODE_ID="a",
            HOICHAN_NODE_TTL_SECONDS="2", HOICHAN_ICE_HOST_ADDRESSES="127.0.0.1",
            HOICHAN_RECONNECT_GRACE_SECONDS="20", HOICHAN_ROOM_STATS_INTERVAL_SECONDS="1")}

    async def heartbeats(self) -> dict[str, dict[str, Any]]:
        beats = {}
        async with self.redis() as redis:
            for node in await redis.smembers(f"{self.prefix}:nodes"):
                raw = await redis.get(f"{self.prefix}:node:{node}")
                if raw is not None:
                    beats[str(node)] = json.loads(raw)
        return beats


@pytest.fixture
def machine(tmp_path: Path, database_url: str, world: World) -> Iterator[Machine]:
    m = Machine(tmp_path, database_url)
    try:
        m["a"].start()
        yield m
    finally:
        m["a"].kill()


@pytest.fixture
async def room(machine: Machine, world: World) -> AsyncIterator[Room]:
    r = Room(machine["a"].url, world)
    r.media_clients = []  # type: ignore[attr-defined]
    yield r
    for client in r.media_clients:  # type: ignore[attr-defined]
        await client.close()
    for peer in r.peers:
        await peer.close()
    await machine.clean()


async def beats_until(machine: Machine, ok: Callable[[dict[str, dict[str, Any]]], bool],
                      what: str) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        beats = await machine.heartbeats()
        if ok(beats):
            return beats
        assert time.monotonic() < deadline, f"{what}: {beats}"
        await asyncio.sleep(0.2)


async def test_media_runs_in_workers_and_a_killed_one_comes_back(machine: Machine,
                                                                 room: Room) -> None:
    beats = await beats_until(machine, lambda b: {"a", "a/w0", "a/w1"} <= set(b),
                              "the node and its two workers heartbeat")
    assert beats["a"]["media"] is False  # the app node forwards no packet itself
    assert beats["a/w0"]["media"] is True and beats["a/w1"]["media"] is True

    host = await room.joined("BM")
    doctor = await room.admitted(host, "NDI")
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    await receiving(doctor_media, host)
    await receiving(host_media, doctor)
    worker = await machine.owner(room.consultation_id)
    assert worker in {"a/w0", "a/w1"}
    # The node's /metrics speaks for its workers: their room, streams, CPU and memory.
    await asyncio.sleep(1.5)  # a stats round (1 s here)
    metrics = samples(await asyncio.to_thread(http_get, machine["a"].url + "/metrics"))
    assert metrics[("hoichan_rooms", ())] == 1
    assert metrics[("hoichan_forwarded_streams", ())] == 4  # camera and mic, both ways
    assert metrics[("hoichan_forwarded_packets", ())] > 0
    for name in ("a/w0", "a/w1"):
        assert metrics[("hoichan_worker_up", (("worker", name),))] == 1
        assert metrics[("hoichan_worker_cpu_seconds_total", (("worker", name),))] > 0
        assert metrics[("hoichan_worker_resident_memory_bytes", (("worker", name),))] > 1e6
    other = "a/w1" if worker == "a/w0" else "a/w0"

    killed_pid = beats[worker]["pid"]
    os.kill(killed_pid, signal.SIGKILL)
    # The other worker adopts the room when the dead one's heartbeat runs out; or the dead
    # one, started again within a second under its name, takes it back first.
    for peer in (host, doctor):
        reset = await peer.wait("media:reset", timeout=RECOVERY_S)
        assert reset["reason"] in {"media_moved", "node_restarted"}
    assert await machine.owner(room.consultation_id) in {worker, other}
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    await receiving(doctor_media, host, frames=5, timeout=MEDIA_S)
    await receiving(host_media, doctor, frames=5, timeout=MEDIA_S)
    # The app node started the killed worker again, under the same name.
    await beats_until(machine, lambda b: worker in b and b[worker]["pid"] != killed_pid,
                      "the killed worker is started again")
    assert machine["a"].proc is not None and machine["a"].proc.poll() is None
