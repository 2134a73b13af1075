"""/metrics: what Prometheus scrapes of a process, and who may scrape it."""

from __future__ import annotations

import pytest

from tests.waiting import wait_for

from .conftest import Room
from .media_clients import MediaClient
from .scrape import samples, scraped

TOKEN = "scrape-" + "x" * 32


async def test_metrics_count_rooms_and_members(room: Room) -> None:
    r = await room.client.get("/metrics")
    assert r.status == 200 and r.content_type == "text/plain"
    before = samples(await r.text())
    assert before[("hoichan_rooms", ())] == 0
    assert before[("hoichan_dicom_instances", ())] == 0
    assert before[("process_cpu_seconds_total", ())] > 0

    host = await room.joined("BM")
    await room.admitted(host, "TBI")
    await room.joined("NDI")  # waits in the lobby: the host has not admitted it
    now = samples(await (await room.client.get("/metrics")).text())
    assert now[("hoichan_rooms", ())] == 1
    member = "hoichan_room_members"
    assert now[(member, (("place", "admitted"), ("role", "host"),
                         ("status", "connected")))] == 1
    assert now[(member, (("place", "admitted"), ("role", "participant"),
                         ("status", "connected")))] == 1
    assert now[(member, (("place", "lobby"), ("role", "presenter"),
                         ("status", "connected")))] == 1
    assert "patient" not in (await (await room.client.get("/metrics")).text()).lower()


async def test_metrics_count_the_streams_the_sfu_forwards(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    publisher, viewer = MediaClient(host), MediaClient(doctor)
    try:
        assert "error" not in await publisher.publish()
        await viewer.subscribe()
        await wait_for(lambda: viewer.frames(host.participant_id or "", "video") >= 10, 30,
                       "the doctor receives the host's video")

        async def metrics() -> str:
            return await (await room.client.get("/metrics")).text()

        # A stats round (0.5 s here) after the frames: the SFU has measured its rates.
        now = await scraped(metrics,
                            lambda m: m.get(("hoichan_forwarded_bitrate_bps", ()), 0) > 0)
    finally:
        await publisher.close()
        await viewer.close()
    assert now[("hoichan_received_streams", ())] == 2  # the host's camera and microphone
    assert now[("hoichan_forwarded_streams", ())] == 2  # both to the doctor
    assert now[("hoichan_received_packets", ())] > 0
    assert now[("hoichan_forwarded_packets", ())] > 0
    assert now[("hoichan_forwarded_bitrate_bps", ())] > 0


@pytest.mark.room_settings(metrics_token=TOKEN)
async def test_with_a_token_metrics_need_it(room: Room) -> None:
    assert (await room.client.get("/metrics")).status == 401
    r = await room.client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status == 401
    r = await room.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200 and "hoichan_rooms" in await r.text()
