"""The whole server: the application of ``app`` with the rooms of ``signaling`` attached."""

from __future__ import annotations

from aiohttp import web

from app.config import Settings
from app.server import create_app as create_core_app
from signaling.metrics import setup_room_metrics
from signaling.server import setup_signaling


def create_app(settings: Settings) -> web.Application:
    return create_core_app(settings, extensions=(setup_signaling, setup_room_metrics))
