"""The async engine and session factory for SQLite (embedded) or PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        _create_private(make_url(url).database)
        # One writer at a time is SQLite's nature; a busy timeout makes concurrent requests
        # queue instead of failing with "database is locked".
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _create_private(database: str | None) -> None:
    """Create a missing SQLite file readable by the server's user alone (0600): it holds the
    patients. SQLite gives its -wal and -shm files the database file's permissions."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is turned off so that _sqlite_begin decides.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # A deferred transaction that reads and then writes fails with SQLITE_BUSY when another
    # writer got in between; taking the write lock up front makes a check-then-insert (a
    # booking clash check, say) safe and lets the busy timeout queue writers instead.
    # Sessions that only read say so, and run beside each other (WAL) and beside a writer.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "hoichan_read_only"


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """For sessions that never write (on SQLite, a write in one fails with "database is
    locked" when another writer is active)."""
    return async_sessionmaker(engine.execution_options(**{READ_ONLY: True}),
                              expire_on_commit=False)
