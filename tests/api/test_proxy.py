"""Behind nginx: the client's address comes from X-Forwarded-For, but only when the request
comes from a proxy the configuration trusts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.config import ConfigError, load_settings
from hoichan.server import create_app
from tests.api.dbcheck import audit_events
from tests.conftest import DEMO_PASSWORD, World, make_settings

CLIENT = "203.0.113.7"  # the doctor's address, as nginx saw it
LOGIN = {"email": "doctor.bm@demo.hoichan.vn", "password": DEMO_PASSWORD}


@pytest.fixture(params=["127.0.0.1", "10.9.9.9/32"], ids=["trusted", "untrusted"])
async def proxied(request: pytest.FixtureRequest, world: World,
                  tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], bool]]:
    """The app trusting either our loopback test client (as a local nginx) or another
    address only."""
    settings = make_settings(world.settings.database_url, world.settings.data_dir,
                             trusted_proxies=(ip_network(request.param),))
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client, request.param == "127.0.0.1"


async def test_audit_and_metrics_see_the_client_not_the_proxy(proxied, world) -> None:
    client, trusted = proxied
    headers = {"X-Forwarded-For": f"{CLIENT}", "X-Forwarded-Proto": "https"}
    r = await client.post("/api/auth/login", json=LOGIN, headers=headers)
    assert r.status == 200
    [login] = [e for e in await audit_events(world.settings) if e.action == "auth.login"]
    # From an untrusted sender the header is the client's own claim: ignored.
    assert login.client_addr == (CLIENT if trusted else "127.0.0.1")
    # /metrics answers loopback callers only: a client proxied from outside is not one.
    r = await client.get("/metrics", headers=headers)
    assert r.status == (403 if trusted else 200)
    assert (await client.get("/metrics")).status == 200


@pytest.mark.parametrize("value", ["nginx.local", "10.0.0.0/33", "127.0.0.1,,x"])
def test_a_bad_proxy_list_stops_the_start(monkeypatch, tmp_path, value) -> None:
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOICHAN_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError, match="HOICHAN_TRUSTED_PROXIES"):
        load_settings()


def test_a_proxy_list_is_read(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOICHAN_TRUSTED_PROXIES", "127.0.0.1, 10.1.0.0/16")
    assert load_settings().trusted_proxies == (ip_network("127.0.0.1/32"),
                                               ip_network("10.1.0.0/16"))
