"""Who drives the shared viewer, one transition at a time: the presenter by default, the
host taking control (and taking it back), a request granted, a release, the holder dropping,
coming back and leaving, a new presenter, and observers refused. Every change reaches the
room as ``control:changed`` with the holder and the driver."""

from __future__ import annotations

from typing import Any

from .conftest import Peer, Room

VIEW: dict[str, Any] = {"viewports": [{}]}


def snap(peer: Peer) -> dict[str, Any]:
    assert peer.join_ack is not None
    return peer.join_ack["snapshot"] or peer.seen("room:admitted")[-1]["snapshot"]


async def drives(peer: Peer) -> bool:
    ack = await peer.call("viewer:state", VIEW)
    assert "seq" in ack or ack["error"]["code"] == "forbidden", ack
    return "seq" in ack


async def changed(peer: Peer, reason: str) -> dict[str, Any]:
    return await peer.wait("control:changed", lambda d: d["reason"] == reason)


async def three(room: Room) -> tuple[Peer, Peer, Peer]:
    """The host, the presenter and a doctor (participant)."""
    host = await room.joined("BM")
    presenter = await room.admitted(host, "NDI")
    doctor = await room.admitted(host, "TBI")
    return host, presenter, doctor


async def test_the_presenter_drives_by_default_before_anyone_takes(room: Room) -> None:
    host = await room.joined("BM")
    assert (snap(host)["control_holder"], snap(host)["driver"]) == (None, host.participant_id)
    assert await drives(host)  # alone, the host drives

    presenter = await room.admitted(host, "NDI")
    # The presenter's arrival moves the default driver; the presenter reads it in its
    # snapshot, the others in the event.
    assert await changed(host, "joined") == {"holder": None, "driver": presenter.participant_id,
                                             "by": None, "reason": "joined"}
    assert not presenter.seen("control:changed")
    assert snap(presenter)["driver"] == presenter.participant_id
    doctor = await room.admitted(host, "TBI")
    assert (snap(doctor)["control_holder"], snap(doctor)["driver"]) == \
        (None, presenter.participant_id)
    assert await drives(presenter)
    assert not await drives(host) and not await drives(doctor)
    assert (await host.call("viewer:pointer", {"x": 0.5, "y": 0.5}))["error"]["code"] == \
        "forbidden"


async def test_the_host_takes_control_in_one_step_and_keeps_it(room: Room) -> None:
    host, presenter, doctor = await three(room)
    assert await host.call("control:take") == {"ok": True}
    want = {"holder": host.participant_id, "driver": host.participant_id,
            "by": host.participant_id, "reason": "taken"}
    for peer in (host, presenter, doctor):
        assert await changed(peer, "taken") == want
    assert await drives(host) and not await drives(presenter)

    # Holding it explicitly: a new presenter does not move it, taking again changes nothing.
    await host.call("host:set_role", {"participant_id": doctor.participant_id,
                                      "role": "presenter"})
    await doctor.wait("role:changed")
    assert await drives(host) and not await drives(doctor)
    assert await host.call("control:take") == {"ok": True}
    late = await room.admitted(host, "HLY")
    assert (snap(late)["control_holder"], snap(late)["driver"]) == \
        (host.participant_id, host.participant_id)
    assert [d["reason"] for d in doctor.seen("control:changed")] == ["taken"]


async def test_the_host_takes_control_back_from_a_doctor(room: Room) -> None:
    host, presenter, doctor = await three(room)
    assert await host.call("host:give_control",
                           {"participant_id": doctor.participant_id}) == {"ok": True}
    assert await changed(presenter, "given") == {
        "holder": doctor.participant_id, "driver": doctor.participant_id,
        "by": host.participant_id, "reason": "given"}
    assert await drives(doctor) and not await drives(host)

    # Taking back gives control to the host, not back to the default driver.
    assert await host.call("control:take") == {"ok": True}
    assert await changed(doctor, "taken") == {
        "holder": host.participant_id, "driver": host.participant_id,
        "by": host.participant_id, "reason": "taken"}
    assert await drives(host) and not await drives(doctor) and not await drives(presenter)

    # The older form, host:give_control with null, is the same "take back".
    await host.call("host:give_control", {"participant_id": doctor.participant_id})
    await changed(presenter, "given")
    assert await host.call("host:give_control", {"participant_id": None}) == {"ok": True}
    back = await changed(presenter, "taken")
    assert (back["holder"], back["driver"]) == (host.participant_id, host.participant_id)


async def test_a_doctor_requests_everyone_sees_it_and_the_host_grants(room: Room) -> None:
    host, presenter, doctor = await three(room)
    assert await doctor.call("control:request") == {"ok": True}
    for peer in (host, presenter, doctor):
        assert await peer.wait("control:requested") == {
            "participant_id": doctor.participant_id, "name": room.world.user("TBI").name}
    assert await host.call("host:give_control",
                           {"participant_id": doctor.participant_id}) == {"ok": True}
    got = await changed(presenter, "given")
    assert (got["holder"], got["driver"]) == (doctor.participant_id, doctor.participant_id)
    assert await drives(doctor)
    assert (await doctor.call("control:request"))["error"]["code"] == "conflict"

    # A withdrawn and a declined request leave everyone's list, saying who withdrew it.
    assert await presenter.call("control:request") == {"ok": True}
    await host.wait("control:requested", lambda d: d["participant_id"] ==
                    presenter.participant_id)
    assert await presenter.call("control:cancel") == {"ok": True}
    assert await doctor.wait("control:request_cancelled") == {
        "participant_id": presenter.participant_id, "by": presenter.participant_id}
    await presenter.call("control:request")
    assert await host.call("control:deny", {"participant_id": presenter.participant_id}) == \
        {"ok": True}
    assert await presenter.wait("control:denied") == {"by": host.participant_id}
    assert await doctor.wait("control:request_cancelled") == {
        "participant_id": presenter.participant_id, "by": host.participant_id}
    # The host does not ask: it takes.
    assert (await host.call("control:request"))["error"]["code"] == "conflict"


async def test_the_holder_releases_to_the_default_driver(room: Room) -> None:
    host, presenter, doctor = await three(room)
    await host.call("host:give_control", {"participant_id": doctor.participant_id})
    await changed(host, "given")
    assert (await presenter.call("control:release"))["error"]["code"] == "conflict"
    assert await doctor.call("control:release") == {"ok": True}
    assert await changed(host, "released") == {
        "holder": None, "driver": presenter.participant_id, "by": doctor.participant_id,
        "reason": "released"}
    assert await drives(presenter) and not await drives(doctor)

    # The host, holding, releases too: the presenter drives again.
    await host.call("control:take")
    await changed(presenter, "taken")
    assert await host.call("control:release") == {"ok": True}
    got = await changed(presenter, "released")
    assert (got["holder"], got["driver"]) == (None, presenter.participant_id)


async def test_the_holder_drops_comes_back_and_leaves(room: Room) -> None:
    host, presenter, doctor = await three(room)
    await host.call("host:give_control", {"participant_id": doctor.participant_id})
    await changed(presenter, "given")

    # Dropped: the place (and control) is kept, but the room follows the next in line.
    await doctor.sio.disconnect()
    assert await changed(host, "reconnecting") == {
        "holder": doctor.participant_id, "driver": presenter.participant_id, "by": None,
        "reason": "reconnecting"}
    assert await drives(presenter)

    # Back within the grace period: the holder drives again.
    again = await room.connect("TBI")
    ack = await again.join()
    assert ack["resumed"] is True
    assert (ack["snapshot"]["control_holder"], ack["snapshot"]["driver"]) == \
        (doctor.participant_id, doctor.participant_id)
    assert await changed(host, "resumed") == {
        "holder": doctor.participant_id, "driver": doctor.participant_id, "by": None,
        "reason": "resumed"}
    assert await drives(again) and not await drives(presenter)

    # Leaving gives control back to the default.
    assert await again.call("room:leave") == {"ok": True}
    assert await changed(host, "left") == {
        "holder": None, "driver": presenter.participant_id, "by": None, "reason": "left"}


async def test_a_holder_who_does_not_come_back_loses_control(room: Room) -> None:
    host, presenter, doctor = await three(room)
    await host.call("host:give_control", {"participant_id": doctor.participant_id})
    await changed(presenter, "given")
    await doctor.sio.disconnect()
    await changed(host, "reconnecting")
    left = await host.wait("control:changed", lambda d: d["reason"] == "left",
                           timeout=room.world.settings.reconnect_grace_seconds + 2)
    assert (left["holder"], left["driver"]) == (None, presenter.participant_id)

    # A dropped presenter (the default driver) hands over to the host meanwhile.
    await presenter.sio.disconnect()
    got = await changed(host, "reconnecting")
    assert (got["holder"], got["driver"]) == (None, host.participant_id)
    assert await drives(host)


async def test_a_new_presenter_moves_the_default_driver(room: Room) -> None:
    host, presenter, doctor = await three(room)
    await host.call("host:set_role", {"participant_id": doctor.participant_id,
                                      "role": "presenter"})
    assert await changed(presenter, "role_changed") == {
        "holder": None, "driver": doctor.participant_id, "by": host.participant_id,
        "reason": "role_changed"}
    assert await drives(doctor) and not await drives(presenter)
    # No presenter left: the host.
    await host.call("host:set_role", {"participant_id": doctor.participant_id,
                                      "role": "participant"})
    got = await changed(presenter, "role_changed")
    assert got["driver"] == host.participant_id


async def test_observers_are_refused(room: Room) -> None:
    host, presenter, _ = await three(room)
    observer = await room.admitted(host, "GTI", role="observer")
    assert (await observer.call("control:request"))["error"]["code"] == "forbidden"
    assert (await observer.call("control:take"))["error"]["code"] == "forbidden"
    assert (await observer.call("control:release"))["error"]["code"] == "conflict"
    assert not await drives(observer)
    assert (await presenter.call("control:take"))["error"]["code"] == "forbidden"
    assert not host.seen("control:requested")
