"""Reading the database behind the API, to show what a request did or did not change, and
checking the API's JSON error shape."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from sqlalchemy import func, select

from app.appkeys import ENGINE
from app.config import Settings
from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent, Base


async def row_counts(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s:
            return {t.name: int(await s.scalar(select(func.count()).select_from(t)) or 0)
                    for t in Base.metadata.sorted_tables}
    finally:
        await engine.dispose()


async def db_state(source: Settings | Any) -> dict[str, list[str]]:
    """Every row of every table, so "unchanged" also covers updates, not just counts.
    ``source`` is the settings, or a test client whose app's own engine is then used."""
    app = getattr(source, "app", None)
    engine = app[ENGINE] if app is not None else create_engine(source.database_url)
    try:
        async with session_factory(engine)() as s:
            return {t.name: sorted(repr(tuple(row)) for row in await s.execute(select(t)))
                    for t in Base.metadata.sorted_tables}
    finally:
        if app is None:
            await engine.dispose()


async def audit_events(settings: Settings, action: str | None = None) -> list[AuditEvent]:
    """Audit events in the order written, read straight from the database."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s:
            stmt = select(AuditEvent).order_by(AuditEvent.id)
            if action is not None:
                stmt = stmt.where(AuditEvent.action == action)
            return list(await s.scalars(stmt))
    finally:
        await engine.dispose()


async def error_of(r: ClientResponse, status: int, code: str | None = None,
                   field: str | None = None) -> dict[str, Any]:
    """The response is the API's JSON error with this status (and code, field if given)."""
    text = await r.text()
    assert r.status == status, (r.method, str(r.url), r.status, text)
    assert r.content_type == "application/json", text
    body = await r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], body
    assert isinstance(err.get("message"), str) and err["message"], body
    if code is not None:
        assert err["code"] == code, body
    if field is not None:
        assert err.get("field") == field, body
    return err
