"""Reading the database behind the API, to show what a request did or did not change."""

from __future__ import annotations

from sqlalchemy import func, select

from app.config import Settings
from app.db.engine import create_engine, session_factory
from app.db.models import Base


async def row_counts(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s:
            return {t.name: int(await s.scalar(select(func.count()).select_from(t)) or 0)
                    for t in Base.metadata.sorted_tables}
    finally:
        await engine.dispose()
