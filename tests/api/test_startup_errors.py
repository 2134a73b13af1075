"""`hoichan serve` that cannot start says why in one line on stderr, naming the setting (or
the command) that changes it, exits non-zero, shows no traceback unless `hoichan --debug`,
and leaves nothing running. Each case is a real `hoichan serve` process."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from app.startup import code_revisions
from tests.app_process import free_port, health
from tests.conftest import PG_HOST, PG_USER
from tests.waiting import poll_blocking

HOICHAN = str(Path(sys.executable).parent / "hoichan")
REDIS_URL = "redis://127.0.0.1:6379/0"
NEWER_REVISION = "9999_from_a_newer_hoichan"
# The browser app's build is shared by everyone working in this checkout: the missing build
# is the same process with the module's idea of where the build lies pointed elsewhere.
WITHOUT_BUILD = ("import sys, pathlib, app.web; app.web.DEFAULT_DIST = pathlib.Path(sys.argv[1]);"
                 " from hoichan.cli import main; sys.exit(main(['serve']))")


def environment(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
    env.update({"HOICHAN_DATA_DIR": str(data), "HOICHAN_HOST": "127.0.0.1",
                "HOICHAN_PORT": str(free_port()), "HOICHAN_DICOM_PORT": "0", **extra})
    return env


def hoichan(data: Path, *args: str, argv: list[str] | None = None,
            preexec_fn: Callable[[], None] | None = None,
            **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv or [HOICHAN, *(args or ("serve",))], env=environment(data, **extra),
                          capture_output=True, text=True, timeout=90, preexec_fn=preexec_fn)


def one_line(ran: subprocess.CompletedProcess[str], *named: str, status: int = 1) -> str:
    """The one line of stderr, after checking the status, that it names ``named``, and that
    nothing else (a traceback, a log line) was said."""
    assert ran.returncode == status, (ran.returncode, ran.stdout, ran.stderr)
    assert "Traceback" not in ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    for name in named:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("startup") / "var"
    ran = hoichan(data, "migrate")
    assert ran.returncode == 0, ran.stderr
    return data


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        yield other.getsockname()[1]


def test_an_http_port_in_use_is_one_line_naming_the_port_and_host_settings(migrated, taken_port):
    line = one_line(hoichan(migrated, HOICHAN_PORT=str(taken_port)), "HOICHAN_PORT",
                    "HOICHAN_HOST")
    assert line.startswith(f"cannot listen for HTTP on 127.0.0.1:{taken_port}: the port is in "
                           "use"), line


def test_a_dicom_port_in_use_is_one_line_naming_the_dicom_port_and_host_settings(migrated,
                                                                                 taken_port):
    line = one_line(hoichan(migrated, HOICHAN_DICOM_PORT=str(taken_port)),
                    "HOICHAN_DICOM_PORT", "HOICHAN_HOST")
    assert line.startswith(f"cannot listen for DICOM on 127.0.0.1:{taken_port}: the port is "
                           "in use"), line


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker``, other than this one."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue  # gone, or not ours to read
    return found


def test_a_start_failing_after_workers_and_signaling_started_leaves_nothing_running(
        migrated, taken_port):
    # The SCP binds its port after the signaling node joined Redis and the SFU workers were
    # spawned (app/server.py): their undoing is what this is about.
    prefix, node = f"startup-{os.getpid()}", f"failing-{taken_port}"
    started = time.monotonic()
    ran = hoichan(migrated, HOICHAN_DICOM_PORT=str(taken_port), HOICHAN_REDIS_URL=REDIS_URL,
                  HOICHAN_REDIS_PREFIX=prefix, HOICHAN_NODE_ID=node, HOICHAN_MEDIA_WORKERS="2")
    one_line(ran, "HOICHAN_DICOM_PORT", "HOICHAN_HOST")
    assert time.monotonic() - started < 30  # no hang on the way out
    assert _processes_with(f"HOICHAN_NODE_ID={node}/w") == []  # the workers' ids
    with Redis.from_url(REDIS_URL, decode_responses=True) as redis:
        assert node not in redis.smembers(f"{prefix}:nodes")
        assert redis.get(f"{prefix}:node:{node}") is None


def test_debug_shows_the_traceback_as_well(migrated, taken_port):
    ran = subprocess.run([HOICHAN, "--debug", "serve"],
                         env=environment(migrated, HOICHAN_DICOM_PORT=str(taken_port)),
                         capture_output=True, text=True, timeout=90)
    assert ran.returncode == 1
    assert "Traceback" in ran.stderr and "Address already in use" in ran.stderr
    assert ran.stderr.strip().splitlines()[-1].startswith(
        "app.startup.StartupError: cannot listen for DICOM")


def _obeying_file_modes() -> Callable[[], None] | None:
    """root reads and writes whatever a file's mode says; a process it starts without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in its bounding set obeys the modes."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2

    def drop() -> None:
        for cap in (cap_dac_override, cap_dac_read_search):
            if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")
    return drop


@pytest.mark.parametrize("mode,says", [(0o555, "cannot write to"), (0o333, "cannot read")])
def test_a_data_dir_that_cannot_be_written_or_read_is_one_line_naming_it(tmp_path, mode, says):
    data = tmp_path / "var"
    data.mkdir(mode=mode)
    data.chmod(mode)  # whatever the umask made of it
    try:
        ran = hoichan(data, preexec_fn=_obeying_file_modes())
    finally:
        data.chmod(0o755)
    line = one_line(ran, "HOICHAN_DATA_DIR", str(data), status=2)
    assert f"{says} {data}: Permission denied" in line


def test_a_kept_jwt_secret_another_user_wrote_is_one_line_naming_it(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    secret = data / "jwt-secret"
    secret.write_text("s" * 48)
    secret.chmod(0)  # as root's `make run` would leave it for the service's user
    line = one_line(hoichan(data, preexec_fn=_obeying_file_modes()), "HOICHAN_JWT_SECRET",
                    status=2)
    assert f"cannot read {secret}: Permission denied" in line


def test_a_data_dir_that_is_a_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "var").write_text("not a directory")
    one_line(hoichan(tmp_path / "var"), "HOICHAN_DATA_DIR", "is a file, not a directory",
             status=2)


def test_a_missing_browser_app_build_says_how_to_build_it(migrated, tmp_path):
    line = one_line(hoichan(migrated, argv=[sys.executable, "-c", WITHOUT_BUILD,
                                            str(tmp_path / "dist")]),
                    str(tmp_path / "dist" / "index.html"))
    assert "`make run`" in line and "`cd frontend && npm ci && npm run build`" in line


def _newer_database(data: Path) -> Path:
    ran = hoichan(data, "migrate")
    assert ran.returncode == 0, ran.stderr
    db = data / "hoichan.db"
    with sqlite3.connect(db) as conn:  # as a later Hoichan's migration would have left it
        conn.execute("UPDATE alembic_version SET version_num = ?", (NEWER_REVISION,))
    return db


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_database_newer_than_the_code_is_said_so_and_left_alone(tmp_path, command):
    assert NEWER_REVISION not in code_revisions()
    db = _newer_database(tmp_path / "var")
    line = one_line(hoichan(tmp_path / "var", command), NEWER_REVISION,
                    "the code is older than the database", "HOICHAN_DATABASE_URL")
    assert str(db) in line
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (NEWER_REVISION,)]


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_database_that_cannot_be_reached_is_one_line_naming_the_setting(tmp_path, command):
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{free_port()}/hoichan"  # nobody listens
    line = one_line(hoichan(tmp_path / "var", command, HOICHAN_DATABASE_URL=url),
                    "cannot reach the database", "HOICHAN_DATABASE_URL")
    assert url in line


def test_a_database_server_that_never_answers_does_not_hold_the_start(tmp_path, taken_port):
    # The port listens and never speaks, as a server behind a firewall dropping its replies
    # would look to the driver; the wait is cut short to keep the test quick.
    url = f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{taken_port}/hoichan"
    shortened = ("import sys, app.startup; app.startup.DATABASE_ANSWER_S = 2;"
                 " from hoichan.cli import main; sys.exit(main(['serve']))")
    started = time.monotonic()
    line = one_line(hoichan(tmp_path / "var", argv=[sys.executable, "-c", shortened],
                            HOICHAN_DATABASE_URL=url), "no answer within 2 s",
                    "HOICHAN_DATABASE_URL")
    assert url in line and time.monotonic() - started < 30


def test_a_started_server_stops_on_sigterm_and_frees_its_ports(migrated, tmp_path):
    env = environment(migrated, HOICHAN_DICOM_PORT=str(free_port()))
    port, dicom_port = int(env["HOICHAN_PORT"]), int(env["HOICHAN_DICOM_PORT"])
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([HOICHAN, "serve"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        def up() -> dict[str, Any] | None:
            assert server.poll() is None, log.read_text()
            return health(f"http://127.0.0.1:{port}")

        answer = poll_blocking(up, 30, 0.1)
        assert answer is not None, log.read_text()
        assert answer["status"] == "ok"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert f"Hoichan serving on http://127.0.0.1:{port}" in log.read_text()
    for free in (port, dicom_port):  # both listeners were closed
        socket.create_server(("127.0.0.1", free)).close()
