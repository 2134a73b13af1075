"""Shared fixtures: a migrated database on SQLite and on the real PostgreSQL, the app under
an aiohttp test server, and the demo world (1-4-4-2 network, users, a consultation now)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from app import demo
from app.auth.tokens import issue_access
from app.config import Settings
from app.db import migrate
from app.db.engine import create_engine, session_factory
from app.db.models import Base, User
from hoichan.server import create_app

PG_HOST = os.environ.get("HOICHAN_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("HOICHAN_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("HOICHAN_TEST_PG_DB", "test")
JWT_SECRET = "test-secret-" + "x" * 40
DEMO_PASSWORD = "demo-password-123"
BACKENDS = ("sqlite", "postgresql")


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, user=PG_USER, database=PG_ADMIN_DB)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:5432/{name}"


@pytest.fixture(scope="session")
def pg_empty_database() -> Iterator[str]:
    """A PostgreSQL database created for this run and dropped after it."""
    name = f"hoichan_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_migrated(pg_empty_database: str) -> str:
    url = pg_url(pg_empty_database)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        # TRUNCATE fires no row triggers, so the append-only guard on audit_events stays.
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


def fresh_database(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> str:
    """An empty, migrated database: a fresh SQLite file, or the run's PostgreSQL database
    emptied."""
    if backend == "sqlite":
        path = tmp_path / "hoichan.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("pg_migrated")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request, tmp_path, request.param)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=data_dir, database_url=database_url, redis_url="", host="127.0.0.1", port=0,
        jwt_secret=JWT_SECRET, access_token_minutes=15, refresh_token_days=7,
        join_token_minutes=10, lobby_lead_minutes=15, dicom_ae_title="HOICHAN", dicom_port=0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return make_settings(database_url, data_dir)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


@dataclass
class World:
    """The demo world, with a way to act as any of its users."""

    settings: Settings
    users: dict[str, User]
    consultation_id: int

    def user(self, key: str) -> User:
        return self.users[key]

    def token(self, key: str, minutes: int = 15) -> str:
        u = self.users[key]
        return issue_access(u.id, u.roles, self.settings.jwt_secret, timedelta(minutes=minutes))

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(key)}"}


@pytest.fixture
async def world(settings: Settings) -> World:
    """Keys: ``admin``, ``coordinator``, and the hospital code of each doctor (``BM`` is the
    central expert hosting the demo consultation; ``NDI`` presents; ``HYE`` and ``THA``, from
    outside the 1-4-4-2 network, observe; the rest participate)."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            logins = await demo.seed(session, DEMO_PASSWORD)
            assert logins is not None
        async with session_factory(engine)() as session:
            users = {u.email: u for u in await session.scalars(select(User))}
            consultation_id = await session.scalar(text("SELECT min(id) FROM consultations"))
    finally:
        await engine.dispose()
    by_key: dict[str, User] = {}
    for login in logins:
        key = login.role if login.role != "doctor" else login.hospital
        by_key[key] = users[login.email]
    return World(settings, by_key, int(consultation_id))
