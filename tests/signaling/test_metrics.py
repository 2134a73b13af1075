"""/metrics: what Prometheus scrapes of a process, and who may scrape it."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Room
from .media_clients import MediaClient, until

TOKEN = "scrape-" + "x" * 32


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


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
        await until(lambda: viewer.frames(host.participant_id or "", "video") >= 10, 30,
                    "the doctor receives the host's video")
        await asyncio.sleep(1.0)  # a stats round (0.5 s here) after the frames
        now = samples(await (await room.client.get("/metrics")).text())
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
