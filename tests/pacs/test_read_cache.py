"""DICOMweb reads skip the database for the caller's account and study access, and still
stop at once when an admin disables the account or the invitation is withdrawn, and on other
nodes within the cache's bound."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.db.models import Invitation
from app.demo import DEMO_STUDY_UID
from app.pacs.synth import store_series
from app.read_cache import TTL_SECONDS, ReadCache

STUDY = f"/dicomweb/studies/{DEMO_STUDY_UID}/series"


@pytest.fixture
async def ct(world):
    engine = create_engine(world.settings.database_url)
    await store_series(session_factory(engine), world.settings.data_dir, DEMO_STUDY_UID, 1)
    await engine.dispose()


async def test_a_disabled_account_reads_nothing_more(client, world, ct):
    doctor = world.auth("NDI")
    assert (await client.get(STUDY, headers=doctor)).status == 200
    r = await client.patch(f"/api/users/{world.user('NDI').id}", json={"active": False},
                           headers=world.auth("admin"))
    assert r.status == 200, await r.text()
    r = await client.get(STUDY, headers=doctor)
    assert r.status == 401 and "disabled" in (await r.json())["error"]["message"]


async def test_a_withdrawn_invitation_ends_reading_the_study(client, world, ct):
    doctor = world.auth("KBA")
    assert (await client.get(STUDY, headers=doctor)).status == 200
    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            user = world.user("KBA")
            for invitation in await session.scalars(select(Invitation).where(
                    (Invitation.user_id == user.id)
                    | (Invitation.hospital_id == user.hospital_id))):
                await session.delete(invitation)
    finally:
        await engine.dispose()
    assert (await client.get(STUDY, headers=doctor)).status == 404


async def test_entries_last_the_stated_bound_and_no_longer():
    now = [0.0]
    cache = ReadCache(clock=lambda: now[0])
    loads = []

    async def load() -> int:
        loads.append(now[0])
        return len(loads)

    try:
        assert await cache.get(("k",), load) == 1
        now[0] = TTL_SECONDS - 0.01
        assert await cache.get(("k",), load) == 1  # what another node's change waits for
        now[0] = TTL_SECONDS
        assert await cache.get(("k",), load) == 2
    finally:
        cache.close()
