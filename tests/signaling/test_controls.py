"""Host controls and role enforcement; every role change is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent

from .conftest import BOTH_DATABASES, Room


async def _audit(room: Room, action: str) -> list[AuditEvent]:
    engine = create_engine(room.world.settings.database_url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(AuditEvent).where(
                AuditEvent.action == action).order_by(AuditEvent.id)))
    finally:
        await engine.dispose()


async def test_only_the_host_moderates(room: Room) -> None:
    host = await room.joined("BM")
    presenter = await room.admitted(host, "NDI")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")
    target = {"participant_id": doctor.participant_id}
    for peer in (presenter, doctor, observer):
        for event, data in [("host:mute", target), ("host:remove", target),
                            ("host:set_role", {**target, "role": "presenter"}),
                            ("host:give_control", target), ("lobby:admit_all", None),
                            ("lobby:auto_admit", {"on": True}), ("room:end", None)]:
            ack = await peer.call(event, data)
            assert ack["error"]["code"] == "forbidden", (peer.label, event, ack)
    assert doctor.sio.connected and not doctor.seen("role:changed")
    # Nobody can lower someone else's hand but the host.
    await doctor.call("hand:raise")
    ack = await observer.call("hand:lower", {"participant_id": doctor.participant_id})
    assert ack["error"]["code"] == "forbidden"
    assert await host.call("hand:lower", {"participant_id": doctor.participant_id}) == \
        {"ok": True}
    await doctor.wait("hands:update", lambda d: d["hands"] == [])


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_roles_control_mute_and_removal(room: Room) -> None:
    host = await room.joined("BM")
    presenter = await room.admitted(host, "NDI")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")

    assert await host.call("host:mute", {"participant_id": doctor.participant_id,
                                         "video": True}) == {"ok": True}
    assert await doctor.wait("mute:requested") == {"by": host.participant_id, "audio": True,
                                                   "video": True}

    # Promote the observer: it may publish now and must rebuild its connections.
    ack = await host.call("host:set_role", {"participant_id": observer.participant_id,
                                            "role": "participant"})
    assert ack == {"ok": True, "changed": [observer.participant_id]}
    change = await doctor.wait("role:changed")
    assert change == {"participant_id": observer.participant_id, "role": "participant",
                      "previous": "observer", "by": host.participant_id}
    assert (await observer.wait("media:reset")) == {"reason": "role_changed",
                                                    "can_publish": True}
    assert (await observer.call("media:state", {"mic": True})) == {"ok": True}

    # Hand the presenter role over: the old presenter becomes a participant.
    ack = await host.call("host:set_role", {"participant_id": doctor.participant_id,
                                            "role": "presenter"})
    assert ack["changed"] == [doctor.participant_id, presenter.participant_id]
    await presenter.wait("role:changed", lambda d: d["participant_id"] ==
                         presenter.participant_id and d["role"] == "participant")
    assert not presenter.seen("media:reset")  # still a publisher: media untouched
    ack = await host.call("host:set_role", {"participant_id": host.participant_id,
                                            "role": "observer"})
    assert ack["error"]["code"] == "conflict"

    # Viewer control to anyone, observer included; only the holder releases it.
    demoted = await host.call("host:set_role", {"participant_id": observer.participant_id,
                                                "role": "observer"})
    assert demoted["changed"] == [observer.participant_id]
    assert await host.call("host:give_control", {"participant_id": observer.participant_id}) \
        == {"ok": True}
    assert (await doctor.wait("control:changed", lambda d: d["reason"] == "given")) == {
        "holder": observer.participant_id, "driver": observer.participant_id,
        "by": host.participant_id, "reason": "given"}
    assert (await doctor.call("control:release"))["error"]["code"] == "conflict"
    assert await observer.call("control:release") == {"ok": True}
    await doctor.wait("control:changed", lambda d: d["holder"] is None)

    # Removal: told, disconnected, gone from everyone's list, and cannot come back.
    assert await host.call("host:remove", {"participant_id": doctor.participant_id,
                                           "reason": "wrong room"}) == {"ok": True}
    assert (await doctor.wait("room:removed"))["reason"] == "wrong room"
    left = await presenter.wait("presence:leave")
    assert left == {"participant_id": doctor.participant_id, "reason": "removed"}
    back = await room.connect("TBI")
    assert (await back.call("room:join"))["error"]["code"] == "removed"

    changes = await _audit(room, "room.role_change")
    assert [(e.detail["from"], e.detail["to"]) for e in changes] == [
        ("observer", "participant"), ("participant", "presenter"),
        ("presenter", "participant"), ("participant", "observer")]
    assert all(e.actor_id == room.world.user("BM").id for e in changes)
    assert len(await _audit(room, "room.control_handover")) == 2
    assert len(await _audit(room, "room.remove")) == 1
    assert len(await _audit(room, "room.mute_request")) == 1
