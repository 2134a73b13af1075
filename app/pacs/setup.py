"""Wiring the imaging store into the application: the SCP starts and stops with it."""

from __future__ import annotations

import asyncio
from functools import partial

from aiohttp import web

from app.appkeys import SESSIONS, SETTINGS
from app.pacs.ingest import ingest
from app.pacs.scp import StoreScp

SCP = web.AppKey("dicom_scp", StoreScp)


def setup_pacs(app: web.Application) -> None:
    async def start_scp(app: web.Application) -> None:
        settings = app[SETTINGS]
        if settings.dicom_port == 0:
            return  # disabled (tests start their own)
        scp = StoreScp(
            settings.dicom_ae_title, settings.host, settings.dicom_port,
            settings.dicom_allowed_callers,
            partial(ingest, app[SESSIONS], settings.data_dir), asyncio.get_running_loop())
        await asyncio.to_thread(scp.start)
        app[SCP] = scp

    async def stop_scp(app: web.Application) -> None:
        scp = app.get(SCP)
        if scp is not None:
            await asyncio.to_thread(scp.stop)

    app.on_startup.append(start_scp)
    app.on_cleanup.append(stop_scp)
