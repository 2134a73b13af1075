"""`hoichan serve` in a process of its own: for tests that need a real server to kill, stop
or run twice (browser tests, several nodes sharing Redis)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.waiting import poll_blocking

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "hoichan.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def health(url: str) -> dict[str, Any] | None:
    """What ``url``/healthz answers when it answers 200, else None."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
            return dict(json.load(r)) if r.status == 200 else None
    except OSError:
        return None


def stop_process(proc: subprocess.Popen[bytes], seconds: float = 10) -> int | None:
    """SIGTERM, then SIGKILL after ``seconds``; the exit status, None if it was killed."""
    proc.terminate()
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


class AppProcess:
    """On a free 127.0.0.1 port with its own data dir and no DICOM port, configured by
    ``env`` (HOICHAN_* of the caller's environment are not inherited)."""

    def __init__(self, root: Path, **env: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / "var"
        self.log = root / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
        self.env.update(HOICHAN_DATA_DIR=str(self.data_dir), HOICHAN_HOST="127.0.0.1",
                        HOICHAN_PORT=str(self.port), HOICHAN_DICOM_PORT="0", **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> None:
        done = subprocess.run([*CLI, *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode:
            raise RuntimeError(f"hoichan {args[0]} failed:\n{done.stdout}\n{done.stderr}")

    def start(self, seconds: float = 30) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([*CLI, "serve"], cwd=REPO, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        proc = self.proc
        if poll_blocking(lambda: proc.poll() is None and health(self.url), seconds, 0.2):
            return
        self.stop()
        raise RuntimeError(f"hoichan serve did not come up:\n{self.log_tail()}")

    def kill(self) -> None:
        """As a crash or a pulled plug would: no goodbye to anyone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self, seconds: float = 15) -> int | None:
        """SIGTERM, as systemd stops it; its exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        code = stop_process(self.proc, seconds)
        self.proc = None
        return code

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
