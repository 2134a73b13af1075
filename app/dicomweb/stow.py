"""STOW-RS: store instances sent over HTTP (PS3.18 §10.5), through the same ingest as
C-STORE, so a stored object is on disk and indexed before it is reported. Parts are read
on while earlier ones are being kept, so that one request's parts commit together."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

from app.dicomweb.access import caller, record_read
from app.dicomweb.dicomjson import DICOM_JSON, attr
from app.errors import ApiError, forbidden
from app.pacs.checking import Checked
from app.pacs.ingest import Ingester, IngestError
from app.pacs.setup import INGESTER
from app.pacs.window import Window
from app.roles import PlatformRole

log = logging.getLogger(__name__)

MAX_PART_BYTES = 512 * 1024 * 1024
# Parts read ahead of their commit: a few batches' worth, and bounded in memory.
PARTS_IN_FLIGHT = 64
BYTES_IN_FLIGHT = 512 * 1024 * 1024
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC000
STUDY_MISMATCH = 0xA900


async def _next_part(reader: MultipartReader) -> BodyPartReader | MultipartReader | None:
    try:
        return await reader.next()
    except ValueError as exc:  # how aiohttp reports a broken body
        raise ApiError(400, f"malformed multipart body: {exc}") from None


async def _read_part(part: BodyPartReader) -> bytes:
    chunks, size = [], 0
    while chunk := await _chunk(part):
        size += len(chunk)
        if size > MAX_PART_BYTES:
            raise ApiError(413, f"an instance is larger than {MAX_PART_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def store(request: web.Request) -> web.Response:
    user = await caller(request)
    if not user.has_role(PlatformRole.admin, PlatformRole.coordinator):
        raise forbidden("storing studies is for coordinators and admins")
    if not request.content_type.startswith("multipart/related"):
        raise ApiError(415, 'send multipart/related; type="application/dicom"')
    target_study = request.match_info.get("study")
    ingester = request.app[INGESTER]
    base = f"{request.scheme}://{request.host}/dicomweb"
    source = f"STOW-RS {user.email}"
    # Each part's response entry: (stored?, the Referenced or Failed SOP item, its study).
    window: Window[tuple[bool, dict[str, Any], str]] = Window(PARTS_IN_FLIGHT,
                                                              BYTES_IN_FLIGHT)
    reader = await request.multipart()
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "nested multipart is not supported")
            data = await _read_part(part)
            await window.add(_keep(ingester, data, target_study, source, base), len(data))
    finally:
        # Parts handed over are kept whatever becomes of the request.
        await window.wait()
    entries = [task.result() for task in window.tasks]
    stored = [entry for ok, entry, _ in entries if ok]
    failed = [entry for ok, entry, _ in entries if not ok]
    for study_uid in sorted({study for ok, _, study in entries if ok}):
        await record_read(request, user, "dicomweb.store", study_uid,
                          {"stored": len(stored), "failed": len(failed)})
    body: dict[str, Any] = {"00081199": {"vr": "SQ", "Value": stored}}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    status = 200 if not failed else (202 if stored else 409)
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=DICOM_JSON)


async def _keep(ingester: Ingester, data: bytes, target_study: str | None, source: str,
                base: str) -> tuple[bool, dict[str, Any], str]:
    """One part through ingest: whether it was stored, its response item, its study."""
    checked: Checked | None = None
    try:
        checked = await ingester.check(data)
        if target_study and checked.study_uid != target_study:
            return False, _failure(checked, STUDY_MISMATCH), ""
        await ingester.store(checked, source)
    except IngestError:
        return False, _failure(checked, CANNOT_UNDERSTAND), ""
    except Exception:
        # Could not be kept (disk, database): ingest left nothing of it; the client may
        # send it again.
        log.exception("STOW-RS of %s could not be stored", checked and checked.sop_uid)
        return False, _failure(checked, PROCESSING_FAILURE), ""
    return True, {**attr("00081150", "UI", checked.sop_class_uid),
                  **attr("00081155", "UI", checked.sop_uid),
                  **attr("00081190", "UR", f"{base}/studies/{checked.study_uid}/series/"
                         f"{checked.series_uid}/instances/{checked.sop_uid}")}, \
        checked.study_uid


async def _chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(1024 * 1024)
    except ValueError as exc:
        raise ApiError(400, f"malformed multipart body: {exc}") from None


def _failure(checked: Checked | None, reason: int) -> dict[str, Any]:
    """A Failed SOP Sequence item; its UIDs empty when the part was unreadable."""
    sop_class, sop_uid = (checked.sop_class_uid, checked.sop_uid) if checked else ("", "")
    return {**attr("00081150", "UI", sop_class), **attr("00081155", "UI", sop_uid),
            **attr("00081197", "US", reason)}
