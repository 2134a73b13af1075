"""Two `hoichan serve` processes sharing the real PostgreSQL and Redis: one room across both,
its media on one of them, and what happens when that one is killed or drains."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import World
from tests.waiting import wait_for

from .cluster import (
    MEDIA_S,
    RECOVERY_S,
    Nodes,
    http_get,
    on_air,
    receiving,
)
from .conftest import Room
from .media_clients import MediaClient
from .views import view

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def nodes(tmp_path: Path, database_url: str, world: World) -> Iterator[Nodes]:
    ns = Nodes(tmp_path, database_url)
    try:
        for node in ns.nodes.values():
            node.start()
        yield ns
    finally:
        for node in ns.nodes.values():
            node.kill()
        asyncio.run(ns.clean())


@pytest.fixture
async def room(nodes: Nodes, world: World) -> AsyncIterator[Room]:
    r = Room(nodes["a"].url, world)
    clients: list[MediaClient] = []
    r.media_clients = clients  # type: ignore[attr-defined]
    yield r
    for client in clients:
        await client.close()
    for peer in r.peers:
        await peer.close()


async def test_members_on_two_nodes_are_in_one_room(nodes: Nodes, room: Room) -> None:
    host = await room.joined("BM", url=nodes["a"].url)
    doctor = await room.admitted(host, "NDI", url=nodes["b"].url)
    # Fan-out and room state cross the nodes both ways.
    joined = await host.wait("presence:join")
    assert joined["member"]["participant_id"] == doctor.participant_id
    snapshot = doctor.seen("room:admitted")[0]["snapshot"]
    assert [m["participant_id"] for m in snapshot["members"]] == [
        host.participant_id,
        doctor.participant_id,
    ]
    assert await doctor.call("chat:send", {"text": "CT loaded?"}) != {}
    said = await host.wait("chat:message")
    assert said["text"] == "CT loaded?"
    # The presenter (on b) drives the viewer; the host (on a) follows.
    ack = await doctor.call("viewer:state", view(42))
    assert ack == {"ok": True, "seq": 1}
    seen = await host.wait("viewer:state")
    assert seen["seq"] == 1 and seen["state"]["viewports"][0]["image_index"] == 42

    # Media: the room is on one node; the member on the other reaches it all the same.
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    assert await nodes.owner(room.consultation_id) in {"a", "b"}
    await receiving(host_media, doctor)
    await receiving(doctor_media, host)


async def test_killed_media_node_room_recovers_on_the_other(nodes: Nodes, room: Room) -> None:
    host = await room.joined("BM", url=nodes["a"].url)
    doctor = await room.admitted(host, "NDI", url=nodes["b"].url)
    await on_air(room, host)
    doctor_media = await on_air(room, doctor)
    await receiving(doctor_media, host)
    assert await nodes.owner(room.consultation_id) == "a"  # the first member placed it

    nodes["a"].kill()
    # The host's socket died with node a: the room sees it reconnecting, not gone ...
    away = await doctor.wait(
        "presence:update",
        lambda d: d["member"]["participant_id"] == host.participant_id,
        timeout=RECOVERY_S,
    )
    assert away["member"]["status"] == "reconnecting"
    # ... and the doctor, whose socket is on b, is told to rebuild its media there.
    reset = await doctor.wait("media:reset", timeout=RECOVERY_S)
    assert reset["reason"] == "media_moved"
    assert await nodes.owner(room.consultation_id) == "b"
    back = await room.joined("BM", url=nodes["b"].url)
    assert back.join_ack is not None and back.join_ack["resumed"] is True
    assert back.participant_id == host.participant_id
    # It missed the reset while away: it hears of it on resuming.
    assert (await back.wait("media:reset"))["reason"] == "media_moved"
    back_media = await on_air(room, back)
    doctor_media = await on_air(room, doctor)
    await receiving(doctor_media, back, frames=5, timeout=MEDIA_S)
    await receiving(back_media, doctor, frames=5, timeout=MEDIA_S)


async def test_draining_node_hands_its_rooms_over(nodes: Nodes, room: Room) -> None:
    host = await room.joined("BM", url=nodes["a"].url)
    await on_air(room, host)
    assert await nodes.owner(room.consultation_id) == "a"
    # Both members' sockets on b: only the media lives on a.
    await host.close()
    host = await room.joined("BM", url=nodes["b"].url)
    assert (await host.call("media:restart"))["ok"] is True
    doctor = await room.admitted(host, "NDI", url=nodes["b"].url)
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    await receiving(doctor_media, host)

    code = await asyncio.to_thread(nodes["a"].stop)
    assert code == 0, nodes["a"].log_tail()
    for peer in (host, doctor):
        reset = await peer.wait("media:reset", timeout=RECOVERY_S)
        assert reset["reason"] == "node_draining"
    assert await nodes.owner(room.consultation_id) == "b"
    host_media, doctor_media = await on_air(room, host), await on_air(room, doctor)
    await receiving(doctor_media, host, frames=5, timeout=MEDIA_S)
    await receiving(host_media, doctor, frames=5, timeout=MEDIA_S)


async def test_a_room_is_placed_on_the_least_loaded_node(
    nodes: Nodes, room: Room, world: World
) -> None:
    host = await room.joined("BM", url=nodes["a"].url)
    await on_air(room, host)
    assert await nodes.owner(room.consultation_id) == "a"

    async def a_carries_the_room() -> bool:
        return int((await nodes.heartbeats()).get("a", {}).get("load", 0)) > 0

    await wait_for(a_carries_the_room, 10, "a's heartbeat carries its load", interval=0.2)
    # Another consultation opened on node a goes to b, which carries nothing.
    other = await _second_consultation(world)
    expert = Room(nodes["a"].url, world)
    expert.consultation_id = other
    try:
        await expert.joined("BM")
        assert await nodes.owner(other) == "b"
    finally:
        for peer in expert.peers:
            await peer.close()


async def _second_consultation(world: World) -> int:
    from datetime import timedelta

    from app.db.engine import create_engine, session_factory
    from app.db.models import Consultation
    from app.db.types import utcnow

    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            first = await session.get(Consultation, world.consultation_id)
            assert first is not None
            now = utcnow()
            c = Consultation(
                title="Second room",
                host_hospital_id=first.host_hospital_id,
                scheduled_start=now - timedelta(minutes=5),
                scheduled_end=now + timedelta(hours=1),
                status=first.status,
                created_by_id=first.created_by_id,
            )
            session.add(c)
            await session.flush()
            return int(c.id)
    finally:
        await engine.dispose()


async def test_node_restarting_under_its_old_name_takes_its_rooms_back(
    nodes: Nodes, room: Room
) -> None:
    host = await room.joined("BM", url=nodes["a"].url)
    doctor = await room.admitted(host, "NDI", url=nodes["b"].url)
    await on_air(room, host)
    doctor_media = await on_air(room, doctor)
    await receiving(doctor_media, host)
    assert await nodes.owner(room.consultation_id) == "a"

    # A crash and an immediate restart (systemd's Restart=always), the same node id: its
    # old SFU state is gone whether or not the others noticed the gap.
    nodes["a"].kill()
    await asyncio.to_thread(nodes["a"].start)
    reset = await doctor.wait("media:reset", timeout=RECOVERY_S)
    assert reset["reason"] in {"node_restarted", "media_moved"}
    away = await doctor.wait(
        "presence:update",
        lambda d: d["member"]["participant_id"] == host.participant_id,
        timeout=RECOVERY_S,
    )
    assert away["member"]["status"] == "reconnecting"
    back = await room.joined("BM", url=nodes["a"].url)
    assert back.participant_id == host.participant_id
    assert (await back.wait("media:reset"))["reason"] == reset["reason"]
    back_media, doctor_media = await on_air(room, back), await on_air(room, doctor)
    await receiving(doctor_media, back, frames=5, timeout=MEDIA_S)
    await receiving(back_media, doctor, frames=5, timeout=MEDIA_S)


async def test_a_stalled_node_taken_for_dead_gives_up_what_moved(nodes: Nodes, room: Room) -> None:
    """A node that stalls past its heartbeat's life (SIGSTOP) is taken for dead; when it
    runs again it closes the room that moved away and the sockets the room no longer ties
    to it, whose clients then come back for real."""
    host = await room.joined("BM", url=nodes["a"].url)
    doctor = await room.admitted(host, "NDI", url=nodes["b"].url)
    await on_air(room, host)
    doctor_media = await on_air(room, doctor)
    await receiving(doctor_media, host)
    stalled = nodes["a"].proc
    assert stalled is not None
    stalled.send_signal(signal.SIGSTOP)
    try:
        assert (await doctor.wait("media:reset", timeout=RECOVERY_S))["reason"] == "media_moved"
        assert await nodes.owner(room.consultation_id) == "b"
    finally:
        stalled.send_signal(signal.SIGCONT)
    # Node a lets go of the host's socket: the host's client sees it close.
    await wait_for(lambda: not host.sio.connected, RECOVERY_S, "node a closes the host's socket")
    back = await room.joined("BM", url=nodes["b"].url)
    assert back.participant_id == host.participant_id
    assert (await back.wait("media:reset"))["reason"] == "media_moved"
    back_media, doctor_media = await on_air(room, back), await on_air(room, doctor)
    await receiving(doctor_media, back, frames=5, timeout=MEDIA_S)
    await receiving(back_media, doctor, frames=5, timeout=MEDIA_S)
    metrics = await asyncio.to_thread(http_get, nodes["a"].url + "/metrics")
    assert "hoichan_rooms 0.0" in metrics
