"""WADO-RS: metadata, bulk data, whole instances and pixel frames from the local store
(PS3.18 10.4).

Frames go in the encoding the Accept header picks (app/dicomweb/negotiation.py): the stored
one as it lies, or a lossless one (HTJ2K, JPEG-LS, JPEG 2000) encoded once and kept, or
uncompressed. Pixel data is never gzipped (notes/real-peers.md: a general-purpose
compressor costs more than it saves); metadata is JSON and may be.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from aiohttp import web
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.pixels.utils import pixel_array
from sqlalchemy import select

from app.appkeys import FRAME_INDEXES, METADATA_CACHE, READ_CACHE, READ_SESSIONS, SETTINGS
from app.dicomweb import negotiation, render
from app.dicomweb.access import caller, masked_studies, record_read, require_study
from app.dicomweb.deidentify import mask
from app.dicomweb.dicomjson import DICOM_JSON
from app.dicomweb.metadata_cache import absolute
from app.errors import ApiError, not_found
from app.pacs import frame_index
from app.pacs.frame_codec import CannotEncode
from app.pacs.models import DicomInstance, DicomSeries, FrameIndex
from app.pacs.store import store_root

PIXEL_DATA = "7FE00010"
BULK_BYTES = 4096  # binary values above this go by BulkDataURI, not inline
BULK_PATH = re.compile(r"[0-9A-F]{8}(/[0-9]+/[0-9A-F]{8})*")
THUMBNAIL_SIDE = 128


def _bulk_paths(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, DataElement]]:
    """Every element with its bulk data path (``TAG`` or ``SEQTAG/ITEM/TAG``, PS3.18
    10.4.1.1.5), nested sequences included."""
    for element in ds:
        path = f"{prefix}{element.tag:08X}"
        if element.VR == "SQ":
            for number, item in enumerate(element.value):
                yield from _bulk_paths(item, f"{path}/{number}/")
        else:
            yield path, element


def _metadata(path: Path, instance_url: str) -> dict[str, Any]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    paths = {id(element): p for p, element in _bulk_paths(ds)}
    body: dict[str, Any] = ds.to_json_dict(
        bulk_data_threshold=BULK_BYTES,
        bulk_data_element_handler=lambda e: f"{instance_url}/bulkdata/{paths[id(e)]}")
    body["00020010"] = {"vr": "UI", "Value": [str(ds.file_meta.TransferSyntaxUID)]}
    body[PIXEL_DATA] = {"vr": "OW", "BulkDataURI": f"{instance_url}/frames/1"}
    return body


def _bulk_value(path: Path, bulk_path: str) -> bytes:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for found, element in _bulk_paths(ds):
        if found == bulk_path:
            value = element.value
            if isinstance(value, bytes):
                return value
            raise ApiError(404, f"{bulk_path} is not bulk data", field="path")
    raise not_found("bulk data element")


async def bulkdata(request: web.Request) -> web.Response:
    """One large binary element that metadata named by its BulkDataURI (PS3.18 10.4)."""
    user = await caller(request)
    study_uid = request.match_info["study"]
    bulk_path = request.match_info["path"].upper()
    if not BULK_PATH.fullmatch(bulk_path):
        raise ApiError(400, "the path is TAG or SEQUENCETAG/ITEM/TAG, tags in 8 hex digits",
                       field="path")
    if bulk_path.startswith(PIXEL_DATA):
        raise ApiError(404, "pixel data is served by its frames", field="path")
    (instance, _), = await _instances(request, user, study_uid, request.match_info["series"],
                                      request.match_info["instance"])
    path = store_root(request.app[SETTINGS].data_dir) / instance.path
    value = await asyncio.to_thread(_bulk_value, path, bulk_path)
    await record_read(request, user, "dicomweb.bulkdata", study_uid,
                      {"instance": instance.sop_instance_uid, "element": bulk_path})
    return _multipart([value], "application/octet-stream")


def _decoded(path: Path, number: int) -> tuple[Dataset, np.ndarray]:
    """The dataset and one frame as pydicom's handlers (pylibjpeg, OpenJPEG, RLE) decode
    it for display (colour as RGB), whatever the stored transfer syntax. Only that frame
    is decoded: a long cine must not be decoded whole for one frame."""
    ds: Dataset = pydicom.dcmread(path)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= number <= count:
        raise ApiError(404, f"frame {number} out of range 1..{count}", field="frames")
    return ds, pixel_array(ds, index=number - 1)


def _multipart(parts: list[bytes], content_type: str) -> web.Response:
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    media = content_type.split(";")[0]
    response = web.Response(body=b"".join(chunks), headers={
        "Content-Type": f'multipart/related; type="{media}"; boundary={boundary}'})
    return response


async def _instances(request: web.Request, user: Any, study_uid: str,
                     series_uid: str | None = None, sop_uid: str | None = None
                     ) -> list[tuple[DicomInstance, DicomSeries]]:
    async with request.app[READ_SESSIONS]() as session:
        study = await require_study(request, session, user, study_uid)

        async def load() -> list[tuple[DicomInstance, DicomSeries]]:
            stmt = (select(DicomInstance, DicomSeries)
                    .join(DicomSeries, DicomSeries.id == DicomInstance.series_id)
                    .where(DicomSeries.study_id == study.id))
            if series_uid is not None:
                stmt = stmt.where(DicomSeries.series_instance_uid == series_uid)
            if sop_uid is not None:
                stmt = stmt.where(DicomInstance.sop_instance_uid == sop_uid)
            return [(i, s) for i, s in (await session.execute(
                stmt.order_by(DicomSeries.series_number, DicomInstance.instance_number,
                              DicomInstance.id))).all()]

        if sop_uid is None:  # a series grows while it arrives: always read
            rows = await load()
        else:  # a stored instance never changes: one frame after another costs no query
            rows = await request.app[READ_CACHE].get(
                ("instance", study.id, series_uid, sop_uid), load, keep=bool)
    if not rows:
        raise not_found("series" if sop_uid is None else "instance")
    return rows


async def metadata(request: web.Request) -> web.Response:
    user = await caller(request)
    study_uid = request.match_info["study"]
    rows = await _instances(request, user, study_uid, request.match_info.get("series"),
                            request.match_info.get("instance"))
    root = store_root(request.app[SETTINGS].data_dir)
    cache = request.app[METADATA_CACHE]
    base = f"/dicomweb/studies/{study_uid}"

    def one(instance: DicomInstance, series: DicomSeries) -> str:
        path = root / instance.path
        url = f"{base}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}"
        return cache.text(path, lambda: _metadata(path, url))

    def build() -> list[str]:
        return [one(i, s) for i, s in rows]

    body = absolute(await asyncio.to_thread(build), f"{request.scheme}://{request.host}")
    if study_uid in await masked_studies(request, user):
        body = json.dumps([mask(item) for item in json.loads(body)]).encode()
    await record_read(request, user, "dicomweb.metadata", study_uid,
                      {"instances": len(rows)})
    return web.Response(body=body, content_type=DICOM_JSON)


def _frame_numbers(request: web.Request) -> list[int]:
    try:
        numbers = [int(n) for n in request.match_info.get("frames", "1").split(",")]
    except ValueError:
        raise ApiError(400, "frames is a comma-separated list of frame numbers",
                       field="frames") from None
    if not numbers or len(numbers) > 1000:
        raise ApiError(400, "ask for 1 to 1000 frames", field="frames")
    return numbers


async def _frame_index(request: web.Request, instance: DicomInstance
                       ) -> tuple[negotiation.Choice, FrameIndex]:
    """The best accepted encoding this instance can be served in, and where its frames are;
    406 naming each accepted syntax and why it cannot be had, never another syntax."""
    choices = negotiation.candidates(request.headers.get("Accept", "*/*"),
                                     instance.transfer_syntax_uid)
    refusals: list[str] = []
    for choice in choices:
        try:
            return choice, await request.app[FRAME_INDEXES].get(instance, choice.encoding)
        except CannotEncode as exc:
            refusals.append(f"{choice.syntax}: {exc}")
        except (ValueError, NotImplementedError, RuntimeError) as exc:
            raise ApiError(406, f"cannot decode this instance's pixel data: {exc}") from None
    raise ApiError(406, "no accepted transfer syntax can be produced for this instance: "
                   + "; ".join(refusals), field="Accept")


async def frames(request: web.Request) -> web.Response:
    user = await caller(request)
    study_uid = request.match_info["study"]
    numbers = _frame_numbers(request)
    (instance, _), = await _instances(request, user, study_uid, request.match_info["series"],
                                      request.match_info["instance"])
    _check_range(numbers, instance.number_of_frames or 1)
    choice, index = await _frame_index(request, instance)
    _check_range(numbers, len(index.frames))
    root = store_root(request.app[SETTINGS].data_dir)
    parts = await asyncio.to_thread(frame_index.read, root, index, numbers)
    await record_read(request, user, "dicomweb.frames", study_uid,
                      {"instance": instance.sop_instance_uid, "frames": len(numbers),
                       "transfer_syntax": choice.syntax})
    return _multipart(parts, f"{choice.media}; transfer-syntax={choice.syntax}")


def _check_range(numbers: list[int], count: int) -> None:
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise ApiError(404, f"frame {bad[0]} out of range 1..{count}", field="frames")


async def retrieve(request: web.Request) -> web.Response:
    """Whole instances as stored (multipart/related; type=application/dicom)."""
    user = await caller(request)
    study_uid = request.match_info["study"]
    rows = await _instances(request, user, study_uid, request.match_info.get("series"),
                            request.match_info.get("instance"))
    if study_uid in await masked_studies(request, user):
        # A stored instance carries the patient's name and IDs in its header.
        raise ApiError(403, "observers are shown the images and the de-identified metadata, "
                       "not whole instances, unless the host shows them who the patient is",
                       code="patient_deidentified")
    root = store_root(request.app[SETTINGS].data_dir)
    if len(rows) > 2000:
        raise ApiError(413, "retrieve a series or an instance: this study is too large for "
                       "one response")
    parts = await asyncio.to_thread(lambda: [(root / i.path).read_bytes() for i, _ in rows])
    await record_read(request, user, "dicomweb.retrieve", study_uid, {"instances": len(rows)})
    return _multipart(parts, "application/dicom")


async def rendered(request: web.Request) -> web.Response:
    """A rendered frame (``.../frames/{n}/rendered``, or frame 1 of ``.../rendered``), or a
    thumbnail of an instance, a series (its middle instance) or a study (its first
    series) with ``thumbnail`` in the path."""
    user = await caller(request)
    study_uid = request.match_info["study"]
    thumbnail = request.path.endswith("/thumbnail")
    media = render.choose_media(request.query.get("accept") or request.headers.get("Accept")
                                or "*/*")
    window = render.parse_window(request.query.get("window"))
    viewport = render.parse_viewport(request.query.get("viewport")) or (
        (THUMBNAIL_SIDE, THUMBNAIL_SIDE) if thumbnail else None)
    try:
        quality = int(request.query.get("quality", "90"))
    except ValueError:
        raise ApiError(400, "quality is 1 to 100", field="quality") from None
    if not 1 <= quality <= 100:
        raise ApiError(400, "quality is 1 to 100", field="quality")
    number = _frame_numbers(request)[0] if "frames" in request.match_info else 1
    rows = await _instances(request, user, study_uid, request.match_info.get("series"),
                            request.match_info.get("instance"))
    if "series" not in request.match_info:
        first_series = rows[0][1].id
        rows = [r for r in rows if r[1].id == first_series]
    instance = rows[len(rows) // 2][0]
    path = store_root(request.app[SETTINGS].data_dir) / instance.path

    def draw() -> bytes:
        ds, pixels = _decoded(path, number)
        return render.render(ds, pixels, window, viewport, media, quality)

    try:
        body = await asyncio.to_thread(draw)
    except (ValueError, NotImplementedError, RuntimeError) as exc:
        raise ApiError(406, f"cannot decode this instance's pixel data: {exc}") from None
    await record_read(request, user, "dicomweb.thumbnail" if thumbnail else "dicomweb.rendered",
                      study_uid, {"instance": instance.sop_instance_uid})
    return web.Response(body=body, content_type=media)
