"""The ``scp`` fixture: our SCP on a free port, for the tests that push to it."""

from __future__ import annotations

import pytest

from tests.pacs.scp_helpers import open_scp


@pytest.fixture
async def scp(settings, tmp_path):
    async with open_scp(settings.database_url, tmp_path) as server:
        yield server
