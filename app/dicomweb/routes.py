"""The /dicomweb routes (DICOM PS3.18 paths)."""

from __future__ import annotations

from aiohttp import web

from app.appkeys import FRAME_INDEXES, METADATA_CACHE, READ_CACHE, SESSIONS, SETTINGS
from app.dicomweb import qido, stow, wado
from app.dicomweb.metadata_cache import MetadataCache
from app.dicomweb.refusals import audit_refusals
from app.pacs.frame_index import FrameIndexes
from app.pacs.store import store_root
from app.read_cache import ReadCache

STUDY = "/dicomweb/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{instance}"


def setup_dicomweb(app: web.Application) -> None:
    app[FRAME_INDEXES] = FrameIndexes(app[SESSIONS], store_root(app[SETTINGS].data_dir))
    app[READ_CACHE] = ReadCache()
    app[METADATA_CACHE] = MetadataCache()

    async def close_cache(_: web.Application) -> None:
        app[READ_CACHE].close()

    app.on_cleanup.append(close_cache)
    # Inside the error middleware, so it sees each refusal as raised.
    app.middlewares.append(audit_refusals)
    app.router.add_get("/dicomweb/studies", qido.search_studies)
    app.router.add_get("/dicomweb/series", qido.search_series)
    app.router.add_get("/dicomweb/instances", qido.search_instances)
    app.router.add_post("/dicomweb/studies", stow.store)
    app.router.add_post(STUDY, stow.store)
    app.router.add_get(STUDY + "/series", qido.search_series)
    app.router.add_get(STUDY + "/instances", qido.search_instances)
    app.router.add_get(SERIES + "/instances", qido.search_instances)
    app.router.add_get(STUDY, wado.retrieve)
    app.router.add_get(SERIES, wado.retrieve)
    app.router.add_get(INSTANCE, wado.retrieve)
    app.router.add_get(STUDY + "/metadata", wado.metadata)
    app.router.add_get(SERIES + "/metadata", wado.metadata)
    app.router.add_get(INSTANCE + "/metadata", wado.metadata)
    app.router.add_get(INSTANCE + "/frames/{frames}", wado.frames)
    app.router.add_get(INSTANCE + "/bulkdata/{path:.+}", wado.bulkdata)
    app.router.add_get(INSTANCE + "/frames/{frames}/rendered", wado.rendered)
    app.router.add_get(INSTANCE + "/rendered", wado.rendered)
    for level in (STUDY, SERIES, INSTANCE):
        app.router.add_get(level + "/thumbnail", wado.rendered)
