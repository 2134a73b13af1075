"""What the browser tests share besides fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage

# Password of every demo account on the test server (HOICHAN_DEMO_PASSWORD).
DEMO_PASSWORD = "e2e-demo-password-1"


@dataclass
class DemoServer:
    url: str
    data_dir: Path
    log: Path

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
