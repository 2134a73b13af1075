"""Settings from HOICHAN_* variables, and the hoichan command a hospital IT admin runs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings

HOICHAN = str(Path(sys.executable).parent / "hoichan")


@pytest.fixture
def env(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("HOICHAN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def test_defaults_give_the_embedded_mode(env, tmp_path):
    s = load_settings()
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hoichan.db'}"
    assert (s.host, s.port, s.redis_url) == ("127.0.0.1", 8080, "")
    assert (s.access_token_minutes, s.refresh_token_days, s.join_token_minutes,
            s.lobby_lead_minutes) == (15, 7, 10, 15)
    assert (s.dicom_ae_title, s.dicom_port) == ("HOICHAN", 11112)


def test_jwt_secret_is_generated_once_private_and_kept(env, tmp_path):
    first = load_settings().jwt_secret
    path = tmp_path / "data" / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and load_settings().jwt_secret == first
    env.setenv("HOICHAN_JWT_SECRET", "s" * 40)
    assert load_settings().jwt_secret == "s" * 40


def test_overrides(env):
    env.setenv("HOICHAN_PORT", "9000")
    env.setenv("HOICHAN_HOST", "0.0.0.0")
    env.setenv("HOICHAN_DATABASE_URL", "postgresql+asyncpg://u@db:5432/hoichan")
    env.setenv("HOICHAN_ACCESS_TOKEN_MINUTES", "5")
    env.setenv("HOICHAN_ICE_HOST_ADDRESSES", "203.0.113.7, 127.0.0.1")
    s = load_settings()
    assert (s.port, s.host, s.access_token_minutes) == (9000, "0.0.0.0", 5)
    assert s.database_url.startswith("postgresql+asyncpg://")
    assert s.ice_host_addresses == ("203.0.113.7", "127.0.0.1")


@pytest.mark.parametrize("name,value", [
    ("PORT", "http"), ("ACCESS_TOKEN_MINUTES", "0"), ("DATABASE_URL", "mysql://x"),
    ("DICOM_AE_TITLE", "A" * 17), ("JWT_SECRET", "short"), ("LOBBY_LEAD_MINUTES", "-1"),
])
def test_bad_values_are_named(env, name, value):
    env.setenv(f"HOICHAN_{name}", value)
    with pytest.raises(ConfigError, match=f"HOICHAN_{name}"):
        load_settings()


def run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
    env.update(HOICHAN_DATA_DIR=str(tmp_path / "data"), **extra)
    return subprocess.run([HOICHAN, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_migrate_seed_create_user(tmp_path):
    assert run(tmp_path, "migrate").returncode == 0
    seeded = run(tmp_path, "seed-demo", HOICHAN_DEMO_PASSWORD="a-demo-password")
    assert seeded.returncode == 0 and "13 accounts" in seeded.stdout
    assert "demo CT study stored: 200 slices" in seeded.stdout
    creds = (tmp_path / "data" / "demo-credentials.txt")
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert "a-demo-password" in creds.read_text()
    again = run(tmp_path, "seed-demo")
    assert again.returncode == 0 and "already seeded" in again.stdout
    made = run(tmp_path, "create-user", "new.doctor@example.vn", "--role", "doctor",
               "--hospital", "GTI", "--name", "BS. Mới", HOICHAN_NEW_PASSWORD="long-enough-pw")
    assert made.returncode == 0, made.stderr
    assert "new.doctor@example.vn" in made.stdout
    for args, pw, message in [
        (["x@example.vn", "--role", "doctor", "--hospital", "NOPE"], "long-enough-pw",
         "no hospital with code NOPE"),
        (["not-an-email", "--role", "doctor", "--hospital", "GTI"], "long-enough-pw", "email"),
        (["y@example.vn", "--role", "doctor", "--hospital", "GTI"], "short", "password"),
        (["new.doctor@example.vn", "--role", "doctor", "--hospital", "GTI"], "long-enough-pw",
         "exists"),
    ]:
        bad = run(tmp_path, "create-user", *args, HOICHAN_NEW_PASSWORD=pw)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)


def test_serve_refuses_an_unmigrated_database(tmp_path):
    r = run(tmp_path, "serve")
    assert r.returncode == 1 and "hoichan migrate" in r.stderr


def test_bad_configuration_is_reported_not_raised(tmp_path):
    r = run(tmp_path, "migrate", HOICHAN_PORT="eighty")
    assert r.returncode == 2 and "HOICHAN_PORT" in r.stderr and "Traceback" not in r.stderr


async def test_healthz_reports_versions(client):
    r = await client.get("/healthz")
    assert r.status == 200
    body = await r.json()
    from app import __version__
    from app.db.migrate import head_revision
    assert body == {"status": "ok", "app_version": __version__,
                    "schema_version": head_revision()}


def test_cli_bootstraps_a_production_install_without_the_demo(tmp_path):
    assert run(tmp_path, "migrate").returncode == 0
    r = run(tmp_path, "create-hospital", "BVTW", "Bệnh viện Trung ương", "--tier", "central")
    assert r.returncode == 0, r.stderr
    r = run(tmp_path, "create-hospital", "BVT1", "Bệnh viện tỉnh", "--tier", "provincial",
            "--parent", "BVTW")
    assert r.returncode == 0, r.stderr
    for args, message in [
        (["BVTW", "Again", "--tier", "central"], "already exists"),
        (["BVT2", "X", "--tier", "district", "--parent", "NOPE"], "no hospital with code NOPE"),
        (["bad code!", "X", "--tier", "district"], "code"),
    ]:
        bad = run(tmp_path, "create-hospital", *args)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
    r = run(tmp_path, "create-user", "it@bvtw.vn", "--role", "admin", "--hospital", "BVTW",
            HOICHAN_NEW_PASSWORD="long-enough-pw")
    assert r.returncode == 0, r.stderr
