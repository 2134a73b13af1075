"""Settings come from HOICHAN_* variables with documented defaults; a bad value stops the start
with a ConfigError naming the variable; the JWT secret is never in the code. And the
`hoichan` command as a hospital IT admin runs it, on its own data dir."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app import __version__, demo
from app.auth.passwords import verify_password
from app.config import JWT_SECRET_FILE, ConfigError, load_settings
from app.db.migrate import head_revision
from hoichan import cli
from tests.app_process import health as health_of
from tests.conftest import PG_HOST, PG_USER
from tests.waiting import poll_blocking

HOICHAN = str(Path(sys.executable).parent / "hoichan")
DEMO_PASSWORD = "demo-password-for-cli"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean HOICHAN_* environment, run from an empty directory."""
    for key in list(os.environ):
        if key.startswith("HOICHAN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults_are_the_embedded_single_machine_mode(env, tmp_path):
    s = load_settings()
    assert s.data_dir == tmp_path / "var"
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'hoichan.db'}"
    assert s.is_sqlite
    assert (s.redis_url, s.host, s.port) == ("", "127.0.0.1", 8080)
    assert (s.access_token_minutes, s.refresh_token_days, s.join_token_minutes,
            s.lobby_lead_minutes) == (15, 7, 10, 15)
    assert (s.dicom_ae_title, s.dicom_port) == ("HOICHAN", 11112)
    assert s.media_workers == 0  # media in the one process


def test_several_nodes_start_one_sfu_worker_per_core_unless_told(env):
    env.setenv("HOICHAN_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().media_workers == (os.cpu_count() or 1)
    env.setenv("HOICHAN_MEDIA_WORKERS", "0")
    assert load_settings().media_workers == 0
    env.delenv("HOICHAN_REDIS_URL")
    env.setenv("HOICHAN_MEDIA_WORKERS", "2")
    with pytest.raises(ConfigError, match="HOICHAN_MEDIA_WORKERS needs HOICHAN_REDIS_URL"):
        load_settings()


def test_every_setting_can_be_overridden_from_the_environment(env, tmp_path):
    values = {
        "DATA_DIR": str(tmp_path / "state"),
        "DATABASE_URL": "postgresql+asyncpg://hoichan@db.example:5432/hoichan",
        "REDIS_URL": "redis://cache.example:6379/0",
        "HOST": "0.0.0.0", "PORT": "9443",
        "JWT_SECRET": "k" * 48,
        "ACCESS_TOKEN_MINUTES": "5", "REFRESH_TOKEN_DAYS": "30",
        "JOIN_TOKEN_MINUTES": "3", "LOBBY_LEAD_MINUTES": "0",
        "DICOM_AE_TITLE": "BACHMAI_PACS", "DICOM_PORT": "4242",
        "ICE_HOST_ADDRESSES": "203.0.113.7, 127.0.0.1",
        "DICOM_ALLOWED_CALLERS": "CT1, ORTHANC", "DICOM_CALLERS_FROM_NODES": "yes",
    }
    for name, value in values.items():
        env.setenv("HOICHAN_" + name, value)
    s = load_settings()
    assert s.data_dir == tmp_path / "state"
    assert s.database_url == values["DATABASE_URL"] and not s.is_sqlite
    assert (s.redis_url, s.host, s.port) == (values["REDIS_URL"], "0.0.0.0", 9443)
    assert s.jwt_secret == "k" * 48
    assert (s.access_token_minutes, s.refresh_token_days, s.join_token_minutes,
            s.lobby_lead_minutes) == (5, 30, 3, 0)
    assert (s.dicom_ae_title, s.dicom_port) == ("BACHMAI_PACS", 4242)
    assert s.ice_host_addresses == ("203.0.113.7", "127.0.0.1")
    assert s.dicom_allowed_callers == ("CT1", "ORTHANC") and s.dicom_callers_from_nodes
    # With the secret configured nothing is written to the data dir.
    assert not (tmp_path / "state" / JWT_SECRET_FILE).exists()


@pytest.mark.parametrize("name,value", [
    ("PORT", "http"), ("PORT", "-1"), ("PORT", "65536"), ("PORT", "8080.5"),
    ("DICOM_PORT", "99999"),
    ("ACCESS_TOKEN_MINUTES", "0"), ("ACCESS_TOKEN_MINUTES", "ten"),
    # A lifetime so long that expiry dates overflow would break every login.
    ("ACCESS_TOKEN_MINUTES", str(10**10)), ("REFRESH_TOKEN_DAYS", str(10**7)),
    ("JOIN_TOKEN_MINUTES", "0"), ("LOBBY_LEAD_MINUTES", "-1"),
    ("LOBBY_LEAD_MINUTES", str(10**10)),
    ("DATABASE_URL", "mysql://u@db/x"), ("DATABASE_URL", "sqlite:///x.db"),
    ("DICOM_AE_TITLE", "A" * 17), ("DICOM_AE_TITLE", ""), ("DICOM_AE_TITLE", "BỆNHVIỆN"),
    ("DICOM_AE_TITLE", "A\\B"), ("DICOM_CALLERS_FROM_NODES", "maybe"),
    ("JWT_SECRET", "too-short"), ("MEDIA_WORKERS", "-1"), ("MEDIA_WORKERS", "many"),
    ("AUDIT_SYSLOG", "collector.bv.vn"), ("AUDIT_SYSLOG", "collector.bv.vn:99999"),
    ("AUDIT_SYSLOG", ":6514"), ("AUDIT_SYSLOG_CA", "/no/such/ca.pem"),
])
def test_bad_values_stop_the_start_naming_the_variable(env, name, value):
    env.setenv("HOICHAN_" + name, value)
    with pytest.raises(ConfigError, match=f"HOICHAN_{name}"):
        load_settings()


def test_jwt_secret_is_generated_on_first_start_private_and_reused(env, tmp_path):
    env.setenv("HOICHAN_DATA_DIR", str(tmp_path / "fresh" / "data"))  # not there yet
    first = load_settings().jwt_secret
    path = tmp_path / "fresh" / "data" / JWT_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert path.read_text().strip() == first
    # A restart keeps the secret, so tokens issued before it stay valid.
    assert load_settings().jwt_secret == first
    # Another data dir is another installation with its own secret.
    env.setenv("HOICHAN_DATA_DIR", str(tmp_path / "other"))
    assert load_settings().jwt_secret != first


def test_configured_jwt_secret_wins_over_the_kept_one(env, tmp_path):
    env.setenv("HOICHAN_DATA_DIR", str(tmp_path / "data"))
    kept = load_settings().jwt_secret
    env.setenv("HOICHAN_JWT_SECRET", "from-the-environment-" + "z" * 20)
    assert load_settings().jwt_secret == "from-the-environment-" + "z" * 20 != kept


def test_an_unusable_kept_secret_is_refused_not_used(env, tmp_path):
    # A secret file cut short (a crash between creating and writing it, or a bad restore)
    # must not make the server sign tokens with an empty or guessable key.
    data = tmp_path / "data"
    data.mkdir()
    (data / JWT_SECRET_FILE).write_text("\n")
    env.setenv("HOICHAN_DATA_DIR", str(data))
    with pytest.raises(ConfigError, match=JWT_SECRET_FILE):
        load_settings()


# ---- the hoichan command ---------------------------------------------------------------


def run(data: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The installed `hoichan` script in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
    env.update(HOICHAN_DATA_DIR=str(data), HOICHAN_DICOM_PORT="0", **extra)
    return subprocess.run([HOICHAN, *args], env=env, capture_output=True, text=True,
                          timeout=120)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


Hoichan = Callable[..., Ran]


@pytest.fixture
def hoichan(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Hoichan:
    """The same command line through `hoichan`'s main() in this process: a process start per
    call would make each check seconds slower. `serve` must never get as far as listening."""
    def refuse_to_serve(*_: object, **__: object) -> None:
        raise AssertionError("serve went on to listen")

    monkeypatch.setattr(cli.startup, "listen_http", refuse_to_serve)

    def call(data: Path, *args: str, **extra: str) -> Ran:
        with monkeypatch.context() as m:
            for key in list(os.environ):
                if key.startswith("HOICHAN_"):
                    m.delenv(key)
            for key, value in {"HOICHAN_DATA_DIR": str(data), "HOICHAN_DICOM_PORT": "0",
                               **extra}.items():
                m.setenv(key, value)
            capsys.readouterr()
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse refusing the command line
                code = exc.code
            out = capsys.readouterr()
        return Ran(int(code or 0), out.out, out.err)
    return call


def rows(data: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data / "hoichan.db") as db:
        return db.execute(sql).fetchall()


def counts(data: Path) -> dict[str, int]:
    tables = [t for (t,) in rows(data, "SELECT name FROM sqlite_master WHERE type='table'")]
    return {t: rows(data, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A data dir migrated and seeded by `hoichan migrate` and `hoichan seed-demo`, with
    seed-demo's output. (Seeding also stores the demo CT, a few seconds: done once for the
    module.)"""
    data = tmp_path_factory.mktemp("cli") / "data"
    with pytest.MonkeyPatch.context() as m:
        for key in list(os.environ):
            if key.startswith("HOICHAN_"):
                m.delenv(key)
        m.setenv("HOICHAN_DATA_DIR", str(data))
        m.setenv("HOICHAN_DEMO_PASSWORD", DEMO_PASSWORD)
        assert cli.main(["migrate"]) == 0
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(["seed-demo"]) == 0
    yield data, out.getvalue()


def test_migrate_brings_a_new_data_dir_to_the_head_revision(hoichan, tmp_path):
    data = tmp_path / "new" / "data"
    r = hoichan(data, "migrate")
    assert r.returncode == 0, r.stderr
    assert rows(data, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    assert {"hospitals", "users", "consultations", "invitations", "cases", "case_studies",
            "consultation_records", "audit_events", "refresh_tokens"} <= set(counts(data))
    # Running it again on an up-to-date database changes nothing and succeeds.
    assert hoichan(data, "migrate").returncode == 0
    assert rows(data, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    # And it takes the schema down again when asked.
    down = hoichan(data, "migrate", "base", "--down")
    assert down.returncode == 0, down.stderr
    assert set(counts(data)) == {"alembic_version"}
    assert hoichan(data, "migrate").returncode == 0
    assert rows(data, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_seed_demo_builds_the_1_4_4_2_network_with_a_consultation_now(seeded):
    data, out = seeded
    assert "15 accounts" in out and DEMO_PASSWORD in out
    assert f"demo CT study stored: {cli.DEMO_SLICES} slices" in out
    tiers = dict(rows(data, "SELECT tier, count(*) FROM hospitals GROUP BY tier"))
    # The 1-4-4-2 network, and a provincial hospital and a district centre beyond it.
    assert tiers == {"central": 1, "provincial": 5, "district": 5, "commune": 2}
    # Every hospital but the central one is supported by a hospital one tier up.
    rank = {"central": 0, "provincial": 1, "district": 2, "commune": 3}
    for tier, parent_tier in rows(data, "SELECT h.tier, p.tier FROM hospitals h "
                                        "LEFT JOIN hospitals p ON p.id = h.parent_id"):
        assert (parent_tier is None) == (tier == "central")
        if parent_tier is not None:
            assert rank[parent_tier] == rank[tier] - 1
    roles = [json.loads(r) for (r,) in rows(data, "SELECT roles FROM users")]
    assert sorted(map(tuple, roles)).count(("doctor",)) == 13
    assert ["admin"] in roles and ["coordinator"] in roles
    doctors_per_hospital = rows(data, "SELECT count(*) FROM users u JOIN hospitals h "
                                      "ON h.id = u.hospital_id WHERE u.roles LIKE '%doctor%' "
                                      "GROUP BY h.id")
    assert doctors_per_hospital == [(1,)] * 13
    # The demo password logs in every account (argon2 hashes, never the password itself).
    for (pw_hash,) in rows(data, "SELECT password_hash FROM users"):
        assert pw_hash.startswith("$argon2") and verify_password(pw_hash, DEMO_PASSWORD)
    [(start, end, status)] = rows(data, "SELECT scheduled_start, scheduled_end, status "
                                        "FROM consultations")
    now = datetime.now(UTC).replace(tzinfo=None)
    assert datetime.fromisoformat(start) <= now < datetime.fromisoformat(end)
    assert status == "scheduled"
    assert rows(data, "SELECT count(*) FROM cases") == [(1,)]
    assert rows(data, "SELECT count(*) FROM case_studies") == [(1,)]
    creds = data / "demo-credentials.txt"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert DEMO_PASSWORD in creds.read_text()


def test_the_demo_consultation_has_every_room_role_and_observers_from_beyond(seeded):
    data, _ = seeded
    invited = rows(data, "SELECT h.code, i.role FROM invitations i JOIN users u "
                         "ON u.id = i.user_id JOIN hospitals h ON h.id = u.hospital_id")
    roles = sorted(role for _, role in invited)
    assert roles == sorted(["host", "presenter"] + ["participant"] * 9 + ["observer"] * 2)
    by_role: dict[str, set[str]] = {}
    for code, role in invited:
        by_role.setdefault(role, set()).add(code)
    assert (by_role["host"], by_role["presenter"]) == ({"BM"}, {"NDI"})
    # The observers are the doctors of the two hospitals outside the 1-4-4-2 network: a
    # provincial hospital and a district centre, each under a hospital one tier up.
    network = {code for code, *_ in demo.NETWORK}
    assert by_role["host"] | by_role["presenter"] | by_role["participant"] == network
    assert by_role["observer"].isdisjoint(network)
    assert sorted(rows(data, "SELECT h.tier FROM hospitals h WHERE h.code IN "
                             f"{tuple(by_role['observer'])}")) == [("district",),
                                                                   ("provincial",)]
    # Their logins are in the credentials file, saying what they are in the consultation.
    creds = (data / "demo-credentials.txt").read_text()
    for code in by_role["observer"]:
        [line] = [line for line in creds.splitlines() if demo.doctor_email(code) in line]
        assert line.endswith("observer in the demo consultation"), line
    for role in ("host", "presenter", "participant"):
        assert f" {role} in the demo consultation" in creds


def test_seed_demo_a_second_time_changes_nothing(seeded, hoichan):
    data, _ = seeded
    before = counts(data)
    again = hoichan(data, "seed-demo", HOICHAN_DEMO_PASSWORD="another-password")
    assert again.returncode == 0, again.stderr
    assert "already seeded" in again.stdout
    assert counts(data) == before
    assert "another-password" not in (data / "demo-credentials.txt").read_text()


def test_create_user_adds_an_account_that_can_log_in(seeded, hoichan):
    data, _ = seeded
    r = hoichan(data, "create-user", "Bs.Moi@Example.VN", "--role", "doctor", "--role",
                "coordinator", "--hospital", "GTI", "--name", "BS. Mới",
                HOICHAN_NEW_PASSWORD="a-long-enough-password")
    assert r.returncode == 0, r.stderr
    assert "bs.moi@example.vn" in r.stdout
    [(name, roles, active, pw_hash, code)] = rows(
        data, "SELECT u.name, u.roles, u.active, u.password_hash, h.code FROM users u "
              "JOIN hospitals h ON h.id = u.hospital_id WHERE u.email = 'bs.moi@example.vn'")
    assert (name, sorted(json.loads(roles)), active, code) == (
        "BS. Mới", ["coordinator", "doctor"], 1, "GTI")
    assert verify_password(pw_hash, "a-long-enough-password")
    assert rows(data, "SELECT outcome FROM audit_events WHERE action = 'user.create' AND "
                      "detail LIKE '%bs.moi@example.vn%'") == [("success",)]


@pytest.mark.parametrize("args,password,says", [
    (["x@example.vn", "--role", "doctor", "--hospital", "NOPE"], "a-long-enough-password",
     "no hospital with code NOPE"),
    (["not-an-email", "--role", "doctor", "--hospital", "GTI"], "a-long-enough-password",
     "email"),
    (["y@example.vn", "--role", "doctor", "--hospital", "GTI"], "short", "password"),
    (["doctor.bm@demo.hoichan.vn", "--role", "doctor", "--hospital", "BM"],
     "a-long-enough-password", "exists"),
    (["z@example.vn", "--role", "surgeon", "--hospital", "GTI"], "a-long-enough-password",
     "role"),
])
def test_create_user_refuses_bad_input_with_exit_2_and_creates_nothing(seeded, hoichan, args,
                                                                        password, says):
    data, _ = seeded
    before = counts(data)
    r = hoichan(data, "create-user", *args, HOICHAN_NEW_PASSWORD=password)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert says in r.stderr
    assert counts(data) == before


def test_cli_bootstraps_a_production_install_without_the_demo(hoichan, tmp_path):
    data = tmp_path / "data"
    assert hoichan(data, "migrate").returncode == 0
    r = hoichan(data, "create-hospital", "BVTW", "Bệnh viện Trung ương", "--tier", "central")
    assert r.returncode == 0, r.stderr
    r = hoichan(data, "create-hospital", "BVT1", "Bệnh viện tỉnh", "--tier", "provincial",
                "--parent", "BVTW")
    assert r.returncode == 0, r.stderr
    assert rows(data, "SELECT h.code, p.code FROM hospitals h LEFT JOIN hospitals p "
                      "ON p.id = h.parent_id ORDER BY h.id") == [("BVTW", None),
                                                                 ("BVT1", "BVTW")]
    for args, message in [
        (["BVTW", "Again", "--tier", "central"], "already exists"),
        (["BVT2", "X", "--tier", "district", "--parent", "NOPE"], "no hospital with code NOPE"),
        (["bad code!", "X", "--tier", "district"], "code"),
    ]:
        bad = hoichan(data, "create-hospital", *args)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
    r = hoichan(data, "create-user", "it@bvtw.vn", "--role", "admin", "--hospital", "BVTW",
                HOICHAN_NEW_PASSWORD="long-enough-pw")
    assert r.returncode == 0, r.stderr
    [(email, roles)] = rows(data, "SELECT email, roles FROM users")
    assert (email, json.loads(roles)) == ("it@bvtw.vn", ["admin"])


def test_bad_configuration_is_a_message_and_exit_2(hoichan, tmp_path):
    r = hoichan(tmp_path / "data", "migrate", HOICHAN_PORT="eighty")
    assert r.returncode == 2
    assert "HOICHAN_PORT" in r.stderr and "eighty" in r.stderr


def test_serve_refuses_an_unmigrated_database(hoichan, tmp_path):
    r = hoichan(tmp_path / "data", "serve")
    assert r.returncode == 1
    assert "hoichan migrate" in r.stderr


def test_serve_refuses_a_database_behind_the_code(hoichan, tmp_path):
    data = tmp_path / "data"
    assert hoichan(data, "migrate", "0001").returncode == 0
    r = hoichan(data, "serve")
    assert r.returncode == 1
    assert "0001" in r.stderr and head_revision() in r.stderr and "hoichan migrate" in r.stderr


def test_serve_says_clearly_when_the_database_cannot_be_reached(hoichan, tmp_path):
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:5432/hoichan_no_such_database"
    r = hoichan(tmp_path / "data", "serve", HOICHAN_DATABASE_URL=url)
    assert r.returncode == 1
    # One line naming the database, why, and the setting; not a driver traceback.
    [line] = r.stderr.strip().splitlines()
    assert "hoichan_no_such_database" in line and "does not exist" in line
    assert "HOICHAN_DATABASE_URL" in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_healthz_with_app_and_schema_versions(seeded):
    data, _ = seeded
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
    env.update(HOICHAN_DATA_DIR=str(data), HOICHAN_DICOM_PORT="0", HOICHAN_PORT=str(port))
    # The log lies beside the data dir: what is inside it is the server's own.
    log_path = data.parent / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen([HOICHAN, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> dict[str, Any] | None:
            assert server.poll() is None, log_path.read_text()
            return health_of(f"http://127.0.0.1:{port}")

        health = poll_blocking(up, 30, 0.1)
        assert health is not None, "server did not come up"
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    assert health == {"status": "ok", "app_version": __version__,
                      "schema_version": head_revision()}


def test_the_data_dir_is_the_server_users_alone(seeded):
    # The database, the DICOM store and the secrets hold patients and keys: nothing of the
    # data dir may be readable by another local account, whatever the umask.
    data, _ = seeded
    found = {p: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    assert any(p.suffix == ".dcm" or "dicom" in str(p) for p in found), sorted(found)
    loose = {str(p.relative_to(data)): oct(mode) for p, mode in found.items()
             if mode != (0o700 if p.is_dir() else 0o600)}
    assert not loose, loose
