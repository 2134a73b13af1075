"""Alembic migrations go up and down on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from app.db import migrate
from app.db.engine import create_engine
from app.db.models import Base
from tests.conftest import _pg_admin, pg_url


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _functions(url: str) -> set[str]:
    """PostgreSQL functions of the public schema (none on SQLite)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name != "postgresql":
                return set()
            return set((await conn.execute(text(
                "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"))).scalars())
    finally:
        await engine.dispose()


async def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    name = f"hoichan_migrations_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_up_down_up(empty_database: str) -> None:
    url = empty_database
    # The migrations build exactly the tables the models declare, no more, no fewer.
    model_tables = {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    migrate.upgrade(url)
    assert asyncio.run(_revision(url)) == migrate.head_revision()
    assert asyncio.run(_tables(url)) == model_tables
    if url.startswith("postgresql"):
        assert "audit_events_append_only" in asyncio.run(_functions(url))
    migrate.downgrade(url, "base")
    assert asyncio.run(_tables(url)) <= {"alembic_version"}
    assert asyncio.run(_revision(url)) is None
    # The audit trail's append-only trigger function goes with its table.
    assert "audit_events_append_only" not in asyncio.run(_functions(url))
    migrate.upgrade(url)
    assert asyncio.run(_tables(url)) == model_tables


def test_every_revision_steps_down_and_up(empty_database: str) -> None:
    """Each migration's downgrade undoes exactly its upgrade, one step at a time."""
    url = empty_database
    migrate.upgrade(url)
    seen: list[set[str]] = []
    while asyncio.run(_revision(url)) is not None:
        seen.append(asyncio.run(_tables(url)))
        migrate.downgrade(url, "-1")
    for expected in reversed(seen):
        migrate.upgrade(url, "+1")
        assert asyncio.run(_tables(url)) == expected


async def _execute(url: str, *statements: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            rows: list[tuple] = []
            for statement in statements:
                result = await conn.execute(text(statement))
                rows = [tuple(r) for r in result] if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


def test_0007_fills_the_name_keys_of_studies_already_held(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url, "0006")
    columns = ("study_instance_uid, patient_id, patient_name, patient_birth_date, "
               "patient_sex, study_date, study_time, accession_number, study_description, "
               "referring_physician_name, study_id, created_at")
    asyncio.run(_execute(
        url,
        f"INSERT INTO dicom_studies ({columns}) VALUES "
        "('1.2.3.1', 'P1', 'Nguyễn^Thị Ánh', '', '', '', '', '', '', 'Đỗ^Văn Đạt', '', "
        "'2026-01-01 00:00:00'), "
        "('1.2.3.2', 'P2', '', '', '', '', '', '', '', '', '', '2026-01-01 00:00:00')",
        "INSERT INTO dicom_series (series_instance_uid, study_id, modality, "
        "series_description, body_part_examined) VALUES ('1.2.3.1.1', 1, 'CT', '', '')"))
    migrate.upgrade(url)
    assert asyncio.run(_execute(
        url, "SELECT study_instance_uid, patient_name_search, referring_physician_search "
             "FROM dicom_studies ORDER BY id")) == [
        ("1.2.3.1", "nguyen thi anh", "do van dat"), ("1.2.3.2", "", "")]
    # Down again with the studies (and a series pointing at one) still there.
    migrate.downgrade(url, "0006")
    assert asyncio.run(_execute(url, "SELECT patient_name FROM dicom_studies ORDER BY id")) == [
        ("Nguyễn^Thị Ánh",), ("",)]
    migrate.upgrade(url)


def test_0008_fills_the_name_keys_of_users_and_hospitals_already_held(
        empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url, "0007")
    asyncio.run(_execute(
        url,
        "INSERT INTO hospitals (code, name, tier, created_at) VALUES "
        "('BM', 'Bệnh viện Bạch Mai', 'central', '2026-01-01 00:00:00')",
        "INSERT INTO users (email, name, hospital_id, roles, password_hash, active, created_at) "
        "VALUES ('a@x.vn', 'Đặng Thị Ánh', 1, '[\"doctor\"]', 'x', true, "
        "'2026-01-01 00:00:00')"))
    migrate.upgrade(url)
    assert asyncio.run(_execute(url, "SELECT name_search FROM hospitals")) == [
        ("benh vien bach mai",)]
    assert asyncio.run(_execute(url, "SELECT name_search, language FROM users")) == [
        ("dang thi anh", None)]
    migrate.downgrade(url, "0007")
    assert asyncio.run(_execute(url, "SELECT name FROM users")) == [("Đặng Thị Ánh",)]
    migrate.upgrade(url)
