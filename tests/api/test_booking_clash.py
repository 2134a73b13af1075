"""A host expert cannot be booked twice at once: refused with 409 naming the clash, also when
two coordinators book at the same moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.api.dbcheck import audit_events, db_state, error_of
from tests.api.scheduling_helpers import T0, booking, create, iso


async def assert_clash(r, clash: dict) -> dict:
    err = await error_of(r, 409, code="booking_clash")
    assert err["clash"]["id"] == clash["id"] and err["clash"]["title"] == clash["title"]
    assert str(clash["id"]) in err["message"] and clash["title"] in err["message"]
    return err


async def test_an_overlapping_booking_of_the_host_is_refused_naming_the_clash(client, world):
    first = await create(client, world, start=T0, hours=2, title="Hội chẩn sáng")
    before = await db_state(world.settings)
    for offset, hours in [(0, 2), (1, 2), (-1, 1.5), (0.5, 0.5), (-1, 4)]:
        r = await client.post("/api/consultations", json=booking(
            world, T0 + timedelta(hours=offset), hours=hours),
            headers=world.auth("coordinator"))
        await assert_clash(r, first)
    # Neither the consultation nor an event claiming it was created.
    assert await db_state(world.settings) == before


async def test_the_demo_consultation_now_blocks_its_host(client, world):
    # The demo runs from the last quarter hour for two hours: it covers the next 90 minutes.
    soon = datetime.now(UTC) + timedelta(minutes=30)
    r = await client.post("/api/consultations", json=booking(world, soon, hours=1),
                          headers=world.auth("coordinator"))
    demo = await (await client.get(f"/api/consultations/{world.consultation_id}",
                                   headers=world.auth("coordinator"))).json()
    await assert_clash(r, demo)


async def test_adjacent_bookings_are_allowed(client, world):
    await create(client, world, start=T0, hours=1)
    await create(client, world, start=T0 + timedelta(hours=1), hours=1)   # starts at its end
    await create(client, world, start=T0 - timedelta(hours=1), hours=1)   # ends at its start


async def test_a_cancelled_consultation_frees_its_host(client, world):
    first = await create(client, world, start=T0, hours=2)
    await client.post(f"/api/consultations/{first['id']}/cancel",
                      headers=world.auth("coordinator"))
    await create(client, world, start=T0, hours=2)


async def test_being_a_participant_elsewhere_is_no_clash(client, world):
    # Only hosting binds an expert to a room; attending another one does not.
    await create(client, world, start=T0, host="NDI", invitations=[
        {"user_id": world.user("BM").id, "role": "participant"}])
    await create(client, world, start=T0, host="BM")


async def test_rescheduling_into_a_clash_is_refused_and_changes_nothing(client, world):
    first = await create(client, world, start=T0, hours=2, title="Buổi một")
    second = await create(client, world, start=T0 + timedelta(hours=3), title="Buổi hai")
    before = await db_state(world.settings)
    r = await client.patch(f"/api/consultations/{second['id']}", json={
        "start": iso(T0 + timedelta(hours=1)), "end": iso(T0 + timedelta(hours=2))},
        headers=world.auth("coordinator"))
    await assert_clash(r, first)
    assert await db_state(world.settings) == before
    # Moving within its own old window is no clash with itself.
    r = await client.patch(f"/api/consultations/{second['id']}", json={
        "start": iso(T0 + timedelta(hours=2)), "end": iso(T0 + timedelta(hours=3, minutes=30))},
        headers=world.auth("coordinator"))
    assert r.status == 200, await r.text()


async def test_inviting_a_busy_second_host_is_refused(client, world):
    busy = await create(client, world, start=T0, host="NDI", title="NDI đang chủ trì")
    c = await create(client, world, start=T0 + timedelta(minutes=30), invitations=[
        {"user_id": world.user("NDI").id, "role": "participant"}])
    url = f"/api/consultations/{c['id']}/invitations"
    before = await db_state(world.settings)
    # Promoting the invited NDI doctor to host, or inviting a busy expert as host: 409.
    [ndi] = [i for i in c["invitations"] if i["user"] and i["user"]["id"] ==
             world.user("NDI").id]
    await assert_clash(await client.patch(f"{url}/{ndi['id']}", json={"role": "host"},
                                          headers=world.auth("coordinator")), busy)
    await client.delete(f"{url}/{ndi['id']}", headers=world.auth("coordinator"))
    before = await db_state(world.settings)
    await assert_clash(await client.post(url, json={"user_id": world.user("NDI").id,
                                                    "role": "host"},
                                         headers=world.auth("coordinator")), busy)
    assert await db_state(world.settings) == before
    # The same busy doctor may still attend as a participant.
    r = await client.post(url, json={"user_id": world.user("NDI").id, "role": "participant"},
                          headers=world.auth("coordinator"))
    assert r.status == 201


async def test_creating_with_a_busy_co_host_is_refused(client, world):
    busy = await create(client, world, start=T0, host="TBI")
    r = await client.post("/api/consultations", json=booking(world, T0, invitations=[
        {"user_id": world.user("TBI").id, "role": "host"}]), headers=world.auth("coordinator"))
    await assert_clash(r, busy)


async def test_two_coordinators_booking_the_same_expert_at_once_get_one_booking(client,
                                                                               world):
    for round_ in range(3):
        start = T0 + timedelta(days=round_)
        before = len(await audit_events(world.settings, "consultation.create"))
        answers = await asyncio.gather(*[
            client.post("/api/consultations", json=booking(
                world, start + timedelta(minutes=15 * n), title=f"Đặt lịch {round_}.{n}"),
                headers=world.auth("coordinator")) for n in range(2)])
        statuses = sorted(r.status for r in answers)
        assert statuses == [201, 409], [(r.status, await r.text()) for r in answers]
        [won] = [await r.json() for r in answers if r.status == 201]
        [lost] = [r for r in answers if r.status == 409]
        await assert_clash(lost, won)
        assert len(await audit_events(world.settings, "consultation.create")) == before + 1


async def test_concurrent_bookings_that_invite_each_others_hosts_both_succeed(client, world):
    # A hosts BM and invites NDI; B hosts NDI and invites BM, at different times: no clash,
    # so neither may fail however the two transactions interleave.
    for round_ in range(3):
        start = T0 + timedelta(days=round_)
        answers = await asyncio.gather(
            client.post("/api/consultations", json=booking(world, start, host="BM", invitations=[
                {"user_id": world.user("NDI").id, "role": "participant"}]),
                headers=world.auth("coordinator")),
            client.post("/api/consultations", json=booking(
                world, start + timedelta(hours=2), host="NDI", invitations=[
                    {"user_id": world.user("BM").id, "role": "participant"}]),
                headers=world.auth("coordinator")))
        assert [r.status for r in answers] == [201, 201], [await r.text() for r in answers]
