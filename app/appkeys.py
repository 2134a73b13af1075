"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.rate_limit import RateLimiter
from app.auth.throttle import LoginThrottle
from app.config import Settings
from app.dicomweb.metadata_cache import MetadataCache
from app.pacs.frame_index import FrameIndexes
from app.read_cache import ReadCache

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
# Sessions that only read: on SQLite they do not queue for the write lock.
READ_SESSIONS = web.AppKey("read_sessions", async_sessionmaker[AsyncSession])
# Tells a consultation's live room of a change made through the REST API (the record saved,
# say): room id, event name, payload. Set by the signaling layer.
RoomNotify = Callable[[int, str, dict[str, Any]], Awaitable[None]]
ROOM_NOTIFY: web.AppKey[RoomNotify] = web.AppKey("room_notify")
# Frame indexes per instance and encoding, built once even under concurrent requests.
FRAME_INDEXES = web.AppKey("frame_indexes", FrameIndexes)
# Accounts and study access of DICOMweb readers, kept a few seconds (app/read_cache.py).
READ_CACHE = web.AppKey("read_cache", ReadCache)
# Instances' WADO-RS metadata as JSON text (app/dicomweb/metadata_cache.py).
METADATA_CACHE = web.AppKey("metadata_cache", MetadataCache)
# Failed logins per account and address (app/auth/throttle.py).
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
# Join-token requests and room connects per user and address (app/auth/rate_limit.py).
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
