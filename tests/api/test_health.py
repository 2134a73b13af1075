"""GET /healthz: what a load balancer or an operator asks first."""

from __future__ import annotations

import os
import secrets

from aiohttp.test_utils import TestClient, TestServer

from app import __version__
from app.db import migrate
from hoichan.server import create_app
from tests.api.dbcheck import error_of
from tests.conftest import _pg_admin, make_settings, pg_url


async def test_healthz_reports_versions_without_login(client):
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok", "app_version": __version__,
                              "schema_version": migrate.head_revision()}


async def test_healthz_is_503_json_when_the_database_goes_away(tmp_path):
    name = f"hoichan_health_{os.getpid()}_{secrets.token_hex(3)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        await migrate.upgrade_async(pg_url(name))
        settings = make_settings(pg_url(name), tmp_path)
        async with TestClient(TestServer(create_app(settings))) as client:
            assert (await client.get("/healthz")).status == 200
            # The database server drops the database (and our connections) under us.
            await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
            err = await error_of(await client.get("/healthz"), 503, code="unavailable")
            assert "database" in err["message"]
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
