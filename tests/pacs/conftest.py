"""The ``scp`` fixture: our SCP on a free port, for the tests that push to it; the admin's
grant over the store for the tests that read as the admin."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.db.engine import create_engine, session_factory
from app.db.models import BreakGlassGrant
from app.db.types import utcnow
from tests.pacs.scp_helpers import open_scp


@pytest.fixture
async def scp(settings, tmp_path):
    async with open_scp(settings.database_url, tmp_path) as server:
        yield server


@pytest.fixture(autouse=True)
def admin_breaks_the_glass(request: pytest.FixtureRequest) -> None:
    """The DICOMweb tests read as the demo world's admin, as an IT admin looking into the
    store would: under a grant over the whole store (app/api/break_glass.py; what an admin
    reads without one is tested in tests/api/test_break_glass.py). Sync, so that it may
    ask for the world only when the test uses it."""
    if "world" in request.fixturenames:
        world = request.getfixturevalue("world")
        asyncio.run(_grant(world.settings.database_url, world.user("admin").id))


async def _grant(database_url: str, admin_id: int) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            session.add(BreakGlassGrant(user_id=admin_id, consultation_id=None,
                                        reason="DICOMweb tests",
                                        expires_at=utcnow() + timedelta(hours=4)))
    finally:
        await engine.dispose()
