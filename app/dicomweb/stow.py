"""STOW-RS: store instances sent over HTTP (PS3.18 §10.5), through the same ingest as
C-STORE, so a stored object is on disk and indexed before it is reported."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from sqlalchemy.exc import SQLAlchemyError

from app.appkeys import SESSIONS, SETTINGS
from app.db.models import PlatformRole
from app.dicomweb.access import caller, record_read
from app.dicomweb.dicomjson import DICOM_JSON, attr
from app.errors import ApiError, forbidden
from app.pacs.ingest import IngestError, ingest, parse

log = logging.getLogger(__name__)

MAX_PART_BYTES = 512 * 1024 * 1024
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
    settings = request.app[SETTINGS]
    base = f"{request.scheme}://{request.host}/dicomweb"
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    studies: set[str] = set()
    reader = await request.multipart()
    while (part := await _next_part(reader)) is not None:
        if not isinstance(part, BodyPartReader):
            raise ApiError(400, "nested multipart is not supported")
        data = await _read_part(part)
        sop_class = sop_uid = ""
        try:
            ds = parse(data)
            sop_class, sop_uid = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
            if target_study and str(ds.StudyInstanceUID) != target_study:
                failed.append(_failure(sop_class, sop_uid, STUDY_MISMATCH))
                continue
            result = await ingest(request.app[SESSIONS], settings.data_dir, data,
                                  f"STOW-RS {user.email}")
        except IngestError:
            failed.append(_failure(sop_class, sop_uid, CANNOT_UNDERSTAND))
            continue
        except (OSError, SQLAlchemyError):
            # Could not be kept (disk, database): ingest left nothing of it; the client
            # may send it again.
            log.exception("STOW-RS of %s could not be stored", sop_uid)
            failed.append(_failure(sop_class, sop_uid, PROCESSING_FAILURE))
            continue
        studies.add(result.study_instance_uid)
        stored.append({**attr("00081150", "UI", sop_class), **attr("00081155", "UI", sop_uid),
                       **attr("00081190", "UR", f"{base}/studies/{result.study_instance_uid}"
                              f"/series/{ds.SeriesInstanceUID}/instances/{sop_uid}")})
    for study_uid in sorted(studies):
        await record_read(request, user, "dicomweb.store", study_uid,
                          {"stored": len(stored), "failed": len(failed)})
    body: dict[str, Any] = {"00081199": {"vr": "SQ", "Value": stored}}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    status = 200 if not failed else (202 if stored else 409)
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=DICOM_JSON)


async def _chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(1024 * 1024)
    except ValueError as exc:
        raise ApiError(400, f"malformed multipart body: {exc}") from None


def _failure(sop_class: str, sop_uid: str, reason: int) -> dict[str, Any]:
    return {**attr("00081150", "UI", sop_class), **attr("00081155", "UI", sop_uid),
            **attr("00081197", "US", reason)}
