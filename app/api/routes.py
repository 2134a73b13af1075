"""Every REST route of the app, the health check and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import text

import app
from app.api import audit_log, auth, break_glass, consents, consultations, minutes, pacs, people
from app.api.openapi import build_document
from app.api.routing import PUBLIC, Api, Ctx, Endpoint, Out
from app.appkeys import ENGINE
from app.db.migrate import current_revision
from app.errors import ApiError

api = Api()
MODULES = [api, auth.api, people.api, consultations.api, minutes.api, consents.api, pacs.api,
           audit_log.api, break_glass.api]


def endpoints() -> list[Endpoint]:
    return [ep for module in MODULES for ep in module.endpoints]


class Health(Out):
    status: str
    app_version: str
    schema_version: str | None


@api.route("GET", "/healthz", summary="Liveness, versions of app and schema", tag="system",
           roles=PUBLIC, response=Health, errors=(503,))
async def healthz(ctx: Ctx) -> Health:
    engine = ctx.request.app[ENGINE]
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        revision = await current_revision(engine)
    except Exception as exc:  # any database failure means "not healthy", not a crash
        raise ApiError(503, f"database unavailable: {type(exc).__name__}") from None
    return Health(status="ok", app_version=app.__version__, schema_version=revision)


@api.route("GET", "/api/openapi.json", summary="This API's OpenAPI 3.1 document",
           tag="system", roles=PUBLIC, response=dict[str, Any])
async def openapi(ctx: Ctx) -> web.Response:
    return web.json_response(build_document(endpoints()))


def install(application: web.Application) -> None:
    for module in MODULES:
        module.install(application)
