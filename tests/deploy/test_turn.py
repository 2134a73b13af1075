"""TURN credentials handed out with the join token: coturn (use-auth-secret) accepts them
for an allocation that relays, and refuses them once expired, extended by the client, or made
with another secret. The start refuses TURN URIs without their secret."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aioice import stun

from app.auth.turn import issue_turn_credential, turn_password
from app.config import ConfigError, Settings, load_settings
from hoichan import cli
from tests.conftest import make_settings
from tests.deploy.coturn import Coturn, allocate, relay_round_trip

# ---- the credential and the settings -------------------------------------------------------

def test_the_credential_is_expiry_colon_user_and_base64_hmac_sha1():
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    c = issue_turn_credential("north-star-secret", 42, timedelta(hours=1), now)
    assert c.username == "1700003600:42"
    assert c.expires_at == now + timedelta(hours=1)
    # printf '1700003600:42' | openssl dgst -sha1 -hmac north-star-secret -binary | base64
    assert c.credential == "KVi5GhJAFPbAaxZklBfKLlBpyOc="
    assert turn_password("north-star-secret", c.username) == c.credential


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("HOICHAN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def test_turn_is_off_by_default_and_read_from_the_environment(env):
    s = load_settings()
    assert (s.turn_urls, s.turn_secret, s.turn_ttl_seconds) == ((), "", 3600)
    env.setenv("HOICHAN_TURN_URLS", "turn:turn.example:3478, turns:turn.example:5349?transport=tcp")
    env.setenv("HOICHAN_TURN_SECRET", "t" * 40)
    env.setenv("HOICHAN_TURN_TTL_SECONDS", "900")
    s = load_settings()
    assert s.turn_urls == ("turn:turn.example:3478", "turns:turn.example:5349?transport=tcp")
    assert (s.turn_secret, s.turn_ttl_seconds) == ("t" * 40, 900)


@pytest.mark.parametrize("variables,named", [
    ({"TURN_URLS": "turn:turn.example:3478"}, "HOICHAN_TURN_SECRET"),
    ({"TURN_URLS": "turn:turn.example:3478", "TURN_SECRET": "short"}, "HOICHAN_TURN_SECRET"),
    ({"TURN_URLS": "stun:stun.example:3478", "TURN_SECRET": "t" * 40}, "HOICHAN_TURN_URLS"),
    ({"TURN_URLS": "turn.example:3478", "TURN_SECRET": "t" * 40}, "HOICHAN_TURN_URLS"),
    ({"TURN_TTL_SECONDS": "10"}, "HOICHAN_TURN_TTL_SECONDS"),
    ({"TURN_TTL_SECONDS": str(10**9)}, "HOICHAN_TURN_TTL_SECONDS"),
])
def test_unusable_turn_settings_stop_the_start(env, capsys, variables, named):
    for name, value in variables.items():
        env.setenv("HOICHAN_" + name, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()
    assert cli.main(["serve"]) == 2
    assert named in capsys.readouterr().err


# ---- against coturn --------------------------------------------------------------------------

@pytest.fixture
def settings(database_url: str, tmp_path: Path, coturn: Coturn) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    host, port = coturn.address
    return make_settings(database_url, data_dir, turn_secret=coturn.secret,
                         turn_urls=(f"turn:{host}:{port}", f"turn:{host}:{port}?transport=tcp"),
                         turn_ttl_seconds=600)


async def refused(url: str, username: str, password: str) -> int:
    with pytest.raises(stun.TransactionFailed) as failed:
        await allocate(url, username, password)
    code = failed.value.response.error_code
    assert code is not None
    return code


async def ice_servers(client: Any, world: Any, who: str) -> list[dict[str, Any]]:
    r = await client.post(f"/api/consultations/{world.consultation_id}/join-token",
                          headers=world.auth(who))
    assert r.status == 200, await r.text()
    return list((await r.json())["ice_servers"])


async def test_the_join_token_brings_turn_credentials_coturn_relays_with(client, world, coturn):
    [server] = await ice_servers(client, world, "NDI")
    assert set(server) == {"urls", "username", "credential"}
    expiry, user_id = server["username"].split(":")
    assert user_id == str(world.user("NDI").id)
    assert 595 <= int(expiry) - time.time() <= 600
    for url in server["urls"]:
        await relay_round_trip(url, server["username"], server["credential"])


async def test_coturn_refuses_expired_extended_and_foreign_credentials(client, world, coturn):
    [server] = await ice_servers(client, world, "BM")
    url = server["urls"][0]
    expiry, user_id = server["username"].split(":")
    past = f"{int(time.time()) - 60}:{user_id}"
    later = f"{int(expiry) + 3600}:{user_id}"
    # Signed with the right secret but expired; the client's own credential with a later
    # expiry; and a credential from a secret coturn does not share.
    assert await refused(url, past, turn_password(coturn.secret, past)) == 401
    assert await refused(url, later, server["credential"]) == 401
    assert await refused(url, server["username"],
                         turn_password("another-secret-" + "z" * 30, server["username"])) == 401
