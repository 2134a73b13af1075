"""What the browser tests share besides fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "app.cli"]
# Password of every demo account on the test server (HOICHAN_DEMO_PASSWORD).
DEMO_PASSWORD = "e2e-demo-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoServer:
    """`hoichan serve` as `make run` starts it (migrate, seed-demo, serve), on a free
    127.0.0.1 port with its own data dir and no DICOM port; it can be killed, as a crash or a
    lost link would, and started again."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / "var"
        self.log = root / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
        self.env.update(HOICHAN_DATA_DIR=str(self.data_dir), HOICHAN_HOST="127.0.0.1",
                        HOICHAN_PORT=str(self.port), HOICHAN_DICOM_PORT="0",
                        HOICHAN_DEMO_PASSWORD=DEMO_PASSWORD)
        self.proc: subprocess.Popen[bytes] | None = None
        for step in ("migrate", "seed-demo"):
            done = subprocess.run([*CLI, step], cwd=REPO, env=self.env, capture_output=True,
                                  text=True, timeout=300, check=False)
            if done.returncode:
                raise RuntimeError(f"hoichan {step} failed:\n{done.stdout}\n{done.stderr}")

    def start(self, seconds: float = 30) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([*CLI, "serve"], cwd=REPO, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"hoichan serve did not come up:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class PageLog:
    """What the page said: console errors and uncaught exceptions."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def problems(self) -> list[str]:
        return self.errors + [m for m in self.console if m.startswith("error:")]


def enter_room(page: Page, ready: str, host: Page | None = None, seconds: float = 60) -> None:
    """Past the device preview without camera and microphone and, if the page waits in the
    lobby, admitted by `host`; until `ready` (a selector) shows."""
    deadline = time.monotonic() + seconds
    admitted = False
    while time.monotonic() < deadline:
        page.wait_for_selector(
            f"{ready}, [data-testid=lobby], [data-testid=join-without-media]",
            timeout=seconds * 1000)
        if page.locator(ready).count():
            return
        skip = page.get_by_test_id("join-without-media")
        if skip.count() and skip.is_visible():
            skip.click()
        elif host is not None and not admitted and page.get_by_test_id("lobby").count():
            admit = host.get_by_test_id("lobby-list").get_by_test_id("admit")
            if admit.count():
                admit.first.click()
                admitted = True
        page.wait_for_timeout(100)
    page.wait_for_selector(ready, timeout=1)
