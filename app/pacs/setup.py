"""Wiring the imaging store into the application: the ingester (every way objects come in
goes through it) and the SCP start and stop with it."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import select

from app.appkeys import SESSIONS, SETTINGS
from app.pacs.ingest import Ingester
from app.pacs.models import NodeKind, PacsNode
from app.pacs.scp import StoreScp, tls_context
from app.startup import dicom_bind_error

INGESTER = web.AppKey("ingester", Ingester)
SCP = web.AppKey("dicom_scp", StoreScp)


def setup_pacs(app: web.Application) -> None:
    async def start_ingester(app: web.Application) -> None:
        ingester = Ingester(app[SESSIONS], app[SETTINGS].data_dir)
        await ingester.start()
        app[INGESTER] = ingester

    async def stop_ingester(app: web.Application) -> None:
        ingester = app.get(INGESTER)
        if ingester is not None:
            await ingester.close()

    async def start_scp(app: web.Application) -> None:
        settings = app[SETTINGS]
        if settings.dicom_port == 0:
            return  # disabled (tests start their own)
        tls = None
        if settings.dicom_tls_cert and settings.dicom_tls_key:
            tls = tls_context(settings.dicom_tls_cert, settings.dicom_tls_key,
                              settings.dicom_tls_ca)
        scp = StoreScp(
            settings.dicom_ae_title, settings.host, settings.dicom_port,
            settings.dicom_allowed_callers, app[INGESTER].ingest_in_thread, ssl_context=tls)
        try:
            await asyncio.to_thread(scp.start)
        except OSError as exc:
            raise dicom_bind_error(settings.host, settings.dicom_port, exc) from exc
        app[SCP] = scp
        await refresh_callers(app)

    async def stop_scp(app: web.Application) -> None:
        scp = app.get(SCP)
        if scp is not None:
            await asyncio.to_thread(scp.stop)

    app.on_startup.extend([start_ingester, start_scp])
    # The SCP goes first, so that nothing is handed over to an ingester that has stopped;
    # imports stop earlier still, at shutdown (app/pacs/imports.py).
    app.on_cleanup.extend([stop_scp, stop_ingester])


async def refresh_callers(app: web.Application) -> None:
    """Who may push to the SCP, after a change of the PACS nodes: the AE titles of
    HOICHAN_DICOM_ALLOWED_CALLERS, and with HOICHAN_DICOM_CALLERS_FROM_NODES those of the
    DIMSE nodes (then nobody else, even with no node yet)."""
    scp, settings = app.get(SCP), app[SETTINGS]
    if scp is None:
        return
    callers: set[str] | None = set(settings.dicom_allowed_callers) or None
    if settings.dicom_callers_from_nodes:
        async with app[SESSIONS]() as session:
            nodes = set(await session.scalars(
                select(PacsNode.ae_title).where(PacsNode.kind == NodeKind.dimse)))
        callers = (callers or set()) | nodes
    scp.allow_callers(callers)
