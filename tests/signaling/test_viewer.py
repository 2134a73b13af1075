"""The synchronized viewer: the controller's view reaches everyone, late joiners open at it,
control is requested and granted, the laser pointer follows, the saved record is announced."""

from __future__ import annotations

from .conftest import Room
from .views import SOP, view


async def test_the_controller_drives_every_viewer_and_late_joiners_open_there(room: Room):
    host = await room.joined("BM")
    presenter = await room.admitted(host, "NDI")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")

    # Nobody holds control: the presenter drives, not the host beside it.
    assert (await host.call("viewer:state", view(2)))["error"]["code"] == "forbidden"
    ack = await presenter.call("viewer:state", view(57, -600, 1500))
    assert ack == {"ok": True, "seq": 1}
    for peer in (host, doctor, observer):
        got = await peer.wait("viewer:state")
        assert got["seq"] == 1 and got["by"] == presenter.participant_id
        vp = got["state"]["viewports"][0]
        assert (vp["image_index"], vp["window_center"], vp["window_width"]) == (57, -600, 1500)
        assert (vp["sop_uid"], vp["frame"]) == (SOP, 2)
        assert vp["zoom"] == 1.5 and vp["pan"] == [10.0, -4.5] and vp["flip_h"] is True
        assert got["state"]["measurements"][0]["label"] == "17 mm"
    assert not presenter.seen("viewer:state")  # the sender already shows it

    # A follower may not drive; an observer may not even ask.
    for peer in (doctor, observer):
        assert (await peer.call("viewer:state", view(3)))["error"]["code"] == "forbidden"
        assert (await peer.call("viewer:pointer", {"x": 0.5, "y": 0.5}))["error"]["code"] \
            == "forbidden"
    assert (await observer.call("control:request"))["error"]["code"] == "forbidden"

    # The doctor asks, the host grants: now the doctor drives and the presenter follows.
    assert await doctor.call("control:request") == {"ok": True}
    asked = await host.wait("control:requested")
    assert asked["participant_id"] == doctor.participant_id and asked["name"]
    await host.call("host:give_control", {"participant_id": doctor.participant_id})
    await presenter.wait("control:changed", lambda d: d["holder"] == doctor.participant_id)
    assert (await doctor.call("viewer:state", view(120, 300, 1800)))["seq"] == 2
    assert (await presenter.call("viewer:state", view(5)))["error"]["code"] == "forbidden"
    got = await presenter.wait("viewer:state")
    assert got["state"]["viewports"][0]["image_index"] == 120

    assert await doctor.call("viewer:pointer", {"x": 0.25, "y": 0.75}) == {"ok": True}
    assert await host.wait("viewer:pointer") == {"by": doctor.participant_id, "viewport": 0,
                                                 "x": 0.25, "y": 0.75}
    await doctor.call("viewer:pointer", {})
    assert (await observer.wait("viewer:pointer", lambda d: d["x"] is None))["y"] is None

    # A late joiner (and a reloaded page) opens at the current view.
    late = await room.admitted(host, "HLY")
    assert late.join_ack is not None
    snap = late.join_ack["snapshot"] or (late.seen("room:admitted")[0]["snapshot"])
    assert snap["viewer"]["seq"] == 2 and snap["viewer"]["by"] == doctor.participant_id
    assert snap["viewer"]["state"]["viewports"][0]["image_index"] == 120
    assert snap["control_holder"] == snap["driver"] == doctor.participant_id


async def test_viewer_state_is_validated(room: Room):
    host = await room.joined("BM")
    for bad in ({"viewports": []}, {"viewports": [{"image_index": -1}]},
                {"viewports": [{"window_width": 0}]}, {"viewports": [{"zoom": "2"}]},
                {"viewports": [{"pan": [1]}]}, {"viewports": [{}], "extra": 1},
                {"viewports": [{"study_uid": "1.2.x"}]}, {"viewports": [{"sop_uid": "1.2.x"}]},
                {"viewports": [{"frame": 0}]},
                {"viewports": [{}], "measurements": [{"id": "a", "tool": "scribble",
                                                      "points": [[0, 0, 0]]}]}):
        ack = await host.call("viewer:state", bad)
        assert ack["error"]["code"] == "invalid_payload", bad
    for bad in ({"x": 1.5, "y": 0}, {"x": 0.1, "y": 0.2, "viewport": 2}):
        assert (await host.call("viewer:pointer", bad))["error"]["code"] == "invalid_payload"
    assert await host.call("viewer:state", {"viewports": [{}]}) == {"ok": True, "seq": 1}


async def test_saving_the_record_is_announced_to_the_room(room: Room):
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    r = await room.client.put(
        f"/api/consultations/{room.consultation_id}/record",
        json={"conclusion": "Adenocarcinoma RUL, T2N1", "treatment_plan": "Lobectomy"},
        headers=room.world.auth("BM"))
    assert r.status == 200, await r.text()
    for peer in (host, doctor):
        saved = await peer.wait("record:saved")
        assert saved["conclusion"] == "Adenocarcinoma RUL, T2N1"
        assert saved["treatment_plan"] == "Lobectomy" and saved["author"]["name"]


async def test_the_host_drives_without_a_presenter_and_answers_requests(room: Room):
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    assert (await host.call("viewer:state", view(9)))["seq"] == 1
    await doctor.call("control:request")
    await host.wait("control:requested")
    await doctor.call("control:cancel")
    assert await host.wait("control:request_cancelled") == \
        {"participant_id": doctor.participant_id, "by": doctor.participant_id}
    await doctor.call("control:request")
    assert await host.call("control:deny", {"participant_id": doctor.participant_id}) == \
        {"ok": True}
    assert await doctor.wait("control:denied") == {"by": host.participant_id}
    assert (await doctor.call("control:deny", {"participant_id": host.participant_id}))[
        "error"]["code"] == "forbidden"
    # The pointer streams: it costs a quarter of an ordinary event of the rate limit.
    acks = [await host.call("viewer:pointer", {"x": i / 200, "y": 0.5}) for i in range(150)]
    assert all(a == {"ok": True} for a in acks)
