"""An app node whose SFU runs in worker processes (HOICHAN_MEDIA_WORKERS), on the real
PostgreSQL and Redis: rooms' media lives in the workers, and a worker killed mid-session is
started again while its room moves to the other worker, the members back within 10 s. A
room spread over both workers (its publishers in one, subscribers in both) loses either
worker and its members are back within 10 s as well. Two such nodes carry one room whose
members' sockets are on both, spread over one node's workers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signaling.cluster.subscriber_nodes import HOME
from tests.app_process import AppProcess
from tests.conftest import JWT_SECRET, World
from tests.waiting import poll

from .cluster import MEDIA_S, RECOVERY_S, REDIS_URL, Nodes, http_get, on_air, receiving
from .conftest import Peer, Room
from .media_clients import MediaClient
from .scrape import scraped

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class Machine(Nodes):
    """App nodes (by default one, ``a``) with two SFU workers each (``a/w0``, ``a/w1``)."""

    def __init__(self, tmp_path: Path, database_url: str, names: tuple[str, ...] = ("a",),
                 **env: str) -> None:
        super().__init__(tmp_path, database_url)
        self.nodes = {name: AppProcess(
            tmp_path / name, HOICHAN_DATABASE_URL=database_url, HOICHAN_JWT_SECRET=JWT_SECRET,
            HOICHAN_REDIS_URL=REDIS_URL, HOICHAN_MEDIA_WORKERS="2",
            HOICHAN_REDIS_PREFIX=self.prefix, HOICHAN_NODE_ID=name,
            HOICHAN_NODE_TTL_SECONDS="2", HOICHAN_ICE_HOST_ADDRESSES="127.0.0.1",
            HOICHAN_RECONNECT_GRACE_SECONDS="20", HOICHAN_ROOM_STATS_INTERVAL_SECONDS="1",
            **env) for name in names}


@pytest.fixture
def machine(tmp_path: Path, database_url: str, world: World,
            request: pytest.FixtureRequest) -> Iterator[Machine]:
    m = Machine(tmp_path, database_url, **getattr(request, "param", {}))
    try:
        for node in m.nodes.values():
            node.start()
        yield m
    finally:
        for node in m.nodes.values():
            node.kill()


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
    beats: dict[str, dict[str, Any]] = {}

    async def check() -> bool:
        beats.clear()
        beats.update(await machine.heartbeats())
        return ok(beats)

    assert await poll(check, 30, interval=0.2), f"{what}: {beats}"
    return beats


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
    # A stats round (1 s here) brings the workers' figures.
    metrics = await scraped(lambda: asyncio.to_thread(http_get, machine["a"].url + "/metrics"),
                            lambda m: m.get(("hoichan_forwarded_streams", ()), 0) == 4
                            and m.get(("hoichan_forwarded_packets", ()), 0) > 0)
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


async def subscribe_workers(machine: Machine, room_id: int) -> dict[str, str]:
    """Participant id → the worker carrying its subscribe connection."""
    home = await machine.owner(room_id)
    async with machine.redis() as redis:
        placed = await redis.hgetall(f"{machine.prefix}:room-subscribers:{room_id}")
    return {str(k): home if v == HOME else str(v) for k, v in placed.items()}


def subscriber(room: Room, peer: Peer) -> MediaClient:
    client = MediaClient(peer)
    room.media_clients.append(client)  # type: ignore[attr-defined]
    return client


# One subscribe connection stays with the publishers; the others spread.
@pytest.mark.parametrize("machine", [{"HOICHAN_ROOM_HOME_SUBSCRIBERS": "1"}], indirect=True)
async def test_one_room_spreads_over_the_workers_and_survives_losing_either(
        machine: Machine, room: Room) -> None:
    await beats_until(machine, lambda b: {"a/w0", "a/w1"} <= set(b), "two workers")
    host = await room.joined("BM")
    doctor = await room.admitted(host, "NDI")
    observer = await room.admitted(host, "GTI", role="observer")
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    watching = subscriber(room, observer)
    await watching.subscribe()
    home = await machine.owner(room.consultation_id)
    assert home in {"a/w0", "a/w1"}
    edge = "a/w1" if home == "a/w0" else "a/w0"
    placed = await subscribe_workers(machine, room.consultation_id)
    # Both publishers publish to the home worker; the subscribe connections are on both.
    assert set(placed) == {host.participant_id, doctor.participant_id,
                           observer.participant_id}
    assert set(placed.values()) == {home, edge}
    for client, publisher in ((host_media, doctor), (doctor_media, host),
                              (watching, host), (watching, doctor)):
        await receiving(client, publisher)
    # The node's /metrics counts the room once and every forwarded stream, wherever it is.
    # A stats round on each worker, then the home's, brings their figures.
    metrics = await scraped(
        lambda: asyncio.to_thread(http_get, machine["a"].url + "/metrics"),
        lambda m: m.get(("hoichan_forwarded_streams", ()), 0) == 8
        and m.get(("hoichan_worker_relay_mirrors", (("worker", home),)), 0) == 1)
    assert metrics[("hoichan_rooms", ())] == 1
    assert metrics[("hoichan_forwarded_streams", ())] == 8  # 2 to each publisher, 4 to GTI
    # The home feeds one mirror, which lags behind in nothing.
    assert metrics[("hoichan_worker_relay_mirrors", (("worker", home),))] == 1
    assert metrics[("hoichan_worker_relay_mirrors", (("worker", edge),))] == 0
    assert metrics[("hoichan_worker_relay_frames_dropped_total", (("worker", home),))] == 0

    # The worker carrying only subscribe connections dies: exactly their members rebuild.
    beats = await machine.heartbeats()
    on_edge = {pid for pid, node in placed.items() if node == edge}
    peers = {p.participant_id: p for p in (host, doctor, observer)}
    os.kill(beats[edge]["pid"], signal.SIGKILL)
    killed = time.monotonic()
    for pid in on_edge:
        reset = await peers[pid].wait("media:reset", timeout=RECOVERY_S)
        assert reset["reason"] in {"media_moved", "node_restarted"}
    clients = {host.participant_id: host_media, doctor.participant_id: doctor_media,
               observer.participant_id: watching}
    for pid in on_edge:
        clients[pid] = await (on_air(room, peers[pid]) if pid != observer.participant_id
                              else _watch(room, observer))
    for pid, client in clients.items():
        for publisher in (host, doctor):
            if publisher.participant_id != pid:
                await receiving(client, publisher, frames=5, timeout=RECOVERY_S)
    assert time.monotonic() - killed < 2 * RECOVERY_S
    for pid in set(peers) - on_edge:
        assert peers[pid].seen("media:reset") == [], f"{pid} kept its media"
    assert await machine.owner(room.consultation_id) == home

    # The home worker dies: the room moves (or comes back with the restarted worker), and
    # every member rebuilds.
    beats = await beats_until(machine, lambda b: edge in b, "the killed worker is back")
    os.kill(beats[home]["pid"], signal.SIGKILL)
    for peer in peers.values():
        await peer.wait("media:reset", where=lambda r: True, timeout=RECOVERY_S)
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    watching = await _watch(room, observer)
    for client, publisher in ((host_media, doctor), (doctor_media, host),
                              (watching, host), (watching, doctor)):
        await receiving(client, publisher, frames=5, timeout=MEDIA_S)


async def _watch(room: Room, observer: Peer) -> MediaClient:
    client = subscriber(room, observer)
    await client.subscribe()
    return client


@pytest.mark.parametrize("machine", [{"HOICHAN_ROOM_HOME_SUBSCRIBERS": "1"}], indirect=True)
async def test_a_draining_worker_hands_its_subscribers_to_the_rooms_other_worker(
        machine: Machine, room: Room) -> None:
    await beats_until(machine, lambda b: {"a/w0", "a/w1"} <= set(b), "two workers")
    host = await room.joined("BM")
    observer = await room.admitted(host, "GTI", role="observer")
    await on_air(room, host)
    watching = await _watch(room, observer)
    await receiving(watching, host)
    home = await machine.owner(room.consultation_id)
    placed = await subscribe_workers(machine, room.consultation_id)
    edge = placed[observer.participant_id]
    assert edge != home and placed[host.participant_id] == home
    beats = await machine.heartbeats()
    os.kill(beats[edge]["pid"], signal.SIGTERM)  # what systemctl stop sends, one worker
    reset = await observer.wait("media:reset", timeout=RECOVERY_S)
    assert reset == {"reason": "node_draining", "can_publish": False}
    assert (await subscribe_workers(machine, room.consultation_id))[
        observer.participant_id] == home
    watching = await _watch(room, observer)
    await receiving(watching, host, frames=5, timeout=RECOVERY_S)
    assert host.seen("media:reset") == []


@pytest.mark.parametrize("machine", [{"names": ("a", "b"), "HOICHAN_ROOM_HOME_SUBSCRIBERS": "1"}],
                         indirect=True)
async def test_two_nodes_with_workers_carry_one_room_spread_over_one_nodes_workers(
        machine: Machine, room: Room) -> None:
    workers = {"a/w0", "a/w1", "b/w0", "b/w1"}
    beats = await beats_until(machine, lambda b: workers <= set(b), "two nodes, four workers")
    assert beats["a"]["media"] is False and beats["b"]["media"] is False
    # Members on both app nodes' sockets, in one room.
    host = await room.joined("BM", url=machine["a"].url)
    doctor = await room.admitted(host, "NDI", url=machine["b"].url)
    observer = await room.admitted(host, "GTI", role="observer", url=machine["b"].url)
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    watching = await _watch(room, observer)
    for client, publisher in ((host_media, doctor), (doctor_media, host),
                              (watching, host), (watching, doctor)):
        await receiving(client, publisher)
    # Its media is on one node's workers: the relay stays on one machine.
    home = await machine.owner(room.consultation_id)
    assert home in workers
    node = home.split("/")[0]
    assert set((await subscribe_workers(machine, room.consultation_id)).values()) == {
        f"{node}/w0", f"{node}/w1"}

