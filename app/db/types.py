"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores an aware datetime as naive UTC; always returns an aware UTC datetime.

    SQLite keeps no offset, so without this the same model would hand back naive
    datetimes on one database and aware ones on the other.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def search_key(length: int) -> String:
    """A column holding a search key (app/text_search.py). Byte order ("C") on PostgreSQL, so
    that a prefix match is a range an ordinary index serves whatever the server's locale."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")
