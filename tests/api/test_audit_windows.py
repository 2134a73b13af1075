"""The batching writer of read audit windows, on a real database: reads add up per key,
each window is appended once, a trail that cannot be written keeps every read and retries,
and reads are refused once it has been unwritable too long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import select

from app.audit_windows import AuditUnavailable, AuditWindows, WindowKey
from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent
from app.demo import DEMO_STUDY_UID
from tests.api.audit_faults import drop_audit_failure, refuse_audit_inserts_of
from tests.waiting import poll, wait_for


@pytest.fixture
async def sessions(world) -> AsyncIterator:
    engine = create_engine(world.settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


def key(world, who: str = "BM", action: str = "dicomweb.frames", **kw) -> WindowKey:
    user = world.user(who)
    return WindowKey(action=action, actor_id=user.id, actor_email=user.email,
                     client_addr="10.0.0.7", object_type="study", object_id=DEMO_STUDY_UID,
                     **kw)


async def reads(sessions) -> list[AuditEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(
            AuditEvent.action.like("dicomweb.%")).order_by(AuditEvent.id)))


async def test_reads_add_up_per_key_into_one_event_each(world, sessions):
    writer = AuditWindows(sessions)
    frames, meta = key(world), key(world, action="dicomweb.metadata")
    other = key(world, "NDI")
    for n in range(5):
        await writer.record(frames, {"instance": f"1.2.3.{n % 2}", "frames": [1, 2],
                                     "transfer_syntax": "1.2.840.10008.1.2.1"})
    await writer.record(meta, {"instances": 3})
    await writer.record(meta, {"instances": 3})
    await writer.record(other, {"instance": "1.2.3.9", "frames": [1]})
    await writer.flush()
    await writer.flush()  # nothing left: nothing written twice
    events = await reads(sessions)
    assert [(e.action, e.actor_id, e.client_addr, e.object_id, e.outcome) for e in events] == [
        ("dicomweb.frames", world.user("BM").id, "10.0.0.7", DEMO_STUDY_UID, "success"),
        ("dicomweb.metadata", world.user("BM").id, "10.0.0.7", DEMO_STUDY_UID, "success"),
        ("dicomweb.frames", world.user("NDI").id, "10.0.0.7", DEMO_STUDY_UID, "success")]
    bm = events[0].detail
    assert {k: bm[k] for k in ("requests", "frames", "instances", "instance_uids",
                               "transfer_syntax")} == {
        "requests": 5, "frames": 10, "instances": 2, "instance_uids": ["1.2.3.0", "1.2.3.1"],
        "transfer_syntax": ["1.2.840.10008.1.2.1"]}
    first, last = (datetime.fromisoformat(bm["window"][k]) for k in ("first", "last"))
    assert events[0].at == first < last
    assert (events[1].detail["requests"], events[1].detail["instances"]) == (2, 6)
    assert events[2].detail["frames"] == 1


async def test_a_window_is_in_the_trail_within_the_interval(world, sessions):
    writer = AuditWindows(sessions)
    writer.start()
    try:
        await writer.record(key(world), {"instance": "1.2.3", "frames": [1]})
        await wait_for(lambda: reads(sessions), 1.0, "the window in the trail within a second",
                       interval=0.02)
        # Reads keep coming: each later one is in a later window, none is lost.
        for _ in range(3):
            await writer.record(key(world), {"instance": "1.2.3", "frames": [1]})
            await asyncio.sleep(0.3)  # time passes between reads: they span windows

        async def all_four() -> list[AuditEvent]:
            events = await reads(sessions)
            return events if sum(e.detail["requests"] for e in events) == 4 else []

        events = await poll(all_four, 3.0)
        assert sum(e.detail["requests"] for e in events) == 4 and 2 <= len(events) <= 4
    finally:
        await writer.close()


async def test_an_unwritable_trail_keeps_every_read_and_then_refuses_new_ones(world, sessions):
    writer = AuditWindows(sessions, interval=0.1, stall=0.6)
    writer.start()
    await refuse_audit_inserts_of(world, "dicomweb.frames")
    try:
        await writer.record(key(world), {"frames": [1]})
        await writer.record(key(world, "NDI", action="dicomweb.metadata"), {"instances": 3})
        # A window of three flushes that fail, as one transaction: nothing is written.
        await asyncio.sleep(0.3)
        assert await reads(sessions) == []
        await writer.record(key(world), {"frames": [2]})  # not stalled yet: accepted
        await wait_for(lambda: writer.stalled, 3.0, "the writer stalls")
        with pytest.raises(AuditUnavailable):
            await writer.record(key(world), {"frames": [3]})
        # A refusal is kept even now: the trail must show it.
        await writer.record(key(world, outcome="failure", status=503, reason="stalled"), {},
                            refuse_if_stalled=False)
    finally:
        await drop_audit_failure(world)

    async def three() -> bool:
        return len(await reads(sessions)) >= 3

    await poll(three, 3.0)
    await writer.close()
    events = await reads(sessions)
    assert {(e.action, e.outcome, e.detail["requests"], e.detail.get("frames"),
             e.detail.get("instances")) for e in events} == {
        ("dicomweb.frames", "success", 2, 2, None),  # both accepted reads, merged
        ("dicomweb.metadata", "success", 1, None, 3),
        ("dicomweb.frames", "failure", 1, None, None)}
    assert not writer.stalled


async def test_a_busy_process_is_not_taken_for_an_unwritable_trail(world, sessions):
    writer = AuditWindows(sessions, interval=0.1, stall=0.3)
    writer.start()
    try:
        await writer.record(key(world), {"frames": [1]})
        # The loop is held (a long decode in the same process): the writer cannot run, but
        # nothing has failed to be written, so the next read is answered.
        time.sleep(0.6)
        assert not writer.stalled
        await writer.record(key(world), {"frames": [2]})

        async def both() -> list[AuditEvent]:
            events = await reads(sessions)
            return events if sum(e.detail["requests"] for e in events) == 2 else []

        assert sum(e.detail["frames"] for e in await poll(both, 3.0)) == 2
    finally:
        await writer.close()


async def test_close_writes_what_is_pending_and_later_reads_at_once(world, sessions):
    writer = AuditWindows(sessions, interval=60)
    writer.start()
    await writer.record(key(world), {"frames": [1]})
    await writer.close()
    assert [e.detail["requests"] for e in await reads(sessions)] == [1]
    await writer.record(key(world, "NDI"), {"frames": [1]})
    assert [e.actor_id for e in await reads(sessions)] == [world.user("BM").id,
                                                           world.user("NDI").id]
