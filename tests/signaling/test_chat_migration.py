"""Migration 0002 (chat_messages) goes down and up again on both databases."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from app.db import migrate
from app.db.engine import create_engine

from .conftest import BOTH_DATABASES


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_chat_migration_down_and_up(database_url: str) -> None:
    assert "chat_messages" in await _tables(database_url)
    await asyncio.to_thread(migrate.downgrade, database_url, "0001")
    assert "chat_messages" not in await _tables(database_url)
    await asyncio.to_thread(migrate.upgrade, database_url, "head")
    assert "chat_messages" in await _tables(database_url)
