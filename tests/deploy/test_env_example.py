"""deploy/hoichan.env.example stays the whole configuration: it names every variable of
README's table, each value it sets is one the app accepts, and its secret placeholders are
refused rather than run with."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "hoichan.env.example"


def readme_variables() -> set[str]:
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(HOICHAN_[A-Z0-9_]+)` \|", table, flags=re.MULTILINE))


def example_settings() -> dict[str, str]:
    """What systemd's EnvironmentFile= reads: NAME=value lines, comments skipped."""
    pairs = (line.split("=", 1) for line in EXAMPLE.read_text().splitlines()
             if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("HOICHAN_"):
            monkeypatch.delenv(key)
    for name, value in example_settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def test_the_example_names_every_variable_of_the_readme():
    named = set(re.findall(r"^#? ?(HOICHAN_[A-Z0-9_]+)=", EXAMPLE.read_text(),
                           flags=re.MULTILINE))
    assert readme_variables() - named == set()
    assert named - readme_variables() == set()


def test_its_values_are_accepted_once_the_secrets_are_filled_in(env):
    for name in ("JWT_SECRET", "TURN_SECRET"):
        env.setenv(f"HOICHAN_{name}", secrets.token_urlsafe(48))
    s = load_settings()
    assert s.redis_url and s.turn_urls and s.ice_host_addresses
    assert s.database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("placeholder", ["HOICHAN_JWT_SECRET", "HOICHAN_TURN_SECRET"])
def test_a_secret_left_as_its_placeholder_stops_the_start(env, placeholder):
    for name in {"HOICHAN_JWT_SECRET", "HOICHAN_TURN_SECRET"} - {placeholder}:
        env.setenv(name, secrets.token_urlsafe(48))
    with pytest.raises(ConfigError, match=placeholder):
        load_settings()
