"""WADO-RS: metadata, whole instances and pixel frames from the local store (PS3.18 §10.4).

Pixel data is never gzipped (notes/real-peers.md: compressing frames costs more than it saves
on a LAN); metadata is small JSON and may be.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from aiohttp import web
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.uid import UID
from sqlalchemy import select

from app.appkeys import SESSIONS, SETTINGS
from app.dicomweb import render
from app.dicomweb.access import caller, record_read, require_study
from app.dicomweb.dicomjson import DICOM_JSON
from app.errors import ApiError, not_found
from app.pacs.models import DicomInstance, DicomSeries
from app.pacs.store import store_root

EXPLICIT_LE = "1.2.840.10008.1.2.1"
PIXEL_DATA = "7FE00010"
THUMBNAIL_SIDE = 128


def _metadata(path: Path, frames_url: str) -> dict[str, Any]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    body: dict[str, Any] = ds.to_json_dict(bulk_data_threshold=4096,
                                           bulk_data_element_handler=lambda _: frames_url)
    body["00020010"] = {"vr": "UI", "Value": [str(ds.file_meta.TransferSyntaxUID)]}
    body[PIXEL_DATA] = {"vr": "OW", "BulkDataURI": frames_url}
    return body


def _open(path: Path, numbers: list[int]) -> Dataset:
    """The stored dataset, once the asked frames are known to exist."""
    ds: Dataset = pydicom.dcmread(path)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise ApiError(404, f"frame {bad[0]} out of range 1..{count}", field="frames")
    return ds


def _decoded(path: Path, numbers: list[int]) -> tuple[Dataset, list[np.ndarray]]:
    """The dataset and the asked frames as pydicom's handlers (pylibjpeg, OpenJPEG, RLE)
    decode them for display (colour as RGB), whatever the stored transfer syntax. Only the
    asked frames are decoded: a long cine must not be decoded whole for one frame."""
    ds = _open(path, numbers)
    return ds, [pixel_array(ds, index=n - 1) for n in numbers]


def _stored_layout(pixels: np.ndarray, ds: Dataset) -> bytes:
    """Decoded stored values laid out again as the instance's own Pixel Data would hold
    them in Explicit VR Little Endian (PS3.5 8.1, 8.2), so that they mean what the
    instance's metadata says: bits packed, 4:2:2 chroma shared, planes kept apart."""
    if int(ds.BitsAllocated) == 1:
        # A frame starts on a byte boundary; pixels fill each byte from the low bit up.
        return np.packbits(pixels.ravel(), bitorder="little").tobytes()
    pixels = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
        # Y1 Y2 Cb Cr for each pair of pixels: pydicom repeated Cb and Cr when expanding.
        pairs = pixels.reshape(pixels.shape[0], -1, 2, 3)
        pixels = np.concatenate([pairs[..., 0], pairs[:, :, 0, 1:]], axis=-1)
    elif int(ds.get("SamplesPerPixel", 1)) > 1 and int(ds.get("PlanarConfiguration", 0)) == 1:
        pixels = np.moveaxis(pixels, -1, 0)
    return np.ascontiguousarray(pixels).tobytes()


def _frames(path: Path, numbers: list[int]) -> list[bytes]:
    """The frames as uncompressed little-endian pixel data. An uncompressed instance's
    frames are its stored values, as its metadata describes them (also YBR and planar
    ones); a compressed instance's are what decompression yields, as pydicom's
    decompress() makes them: interleaved samples, YBR decoded to RGB (PS3.5 8.2)."""
    ds = _open(path, numbers)
    if UID(ds.file_meta.TransferSyntaxUID).is_compressed:
        frames = [pixel_array(ds, index=n - 1) for n in numbers]
        return [np.ascontiguousarray(f).astype(f.dtype.newbyteorder("<")).tobytes()
                for f in frames]
    return [_stored_layout(pixel_array(ds, index=n - 1, raw=True), ds) for n in numbers]


def _multipart(parts: list[bytes], content_type: str) -> web.Response:
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    media = content_type.split(";")[0]
    response = web.Response(body=b"".join(chunks))
    response.headers["Content-Type"] = (
        f'multipart/related; type="{media}"; boundary={boundary}')
    return response


async def _instances(request: web.Request, user: Any, study_uid: str,
                     series_uid: str | None = None, sop_uid: str | None = None
                     ) -> list[tuple[DicomInstance, DicomSeries]]:
    async with request.app[SESSIONS]() as session:
        study = await require_study(session, user, study_uid)
        stmt = (select(DicomInstance, DicomSeries)
                .join(DicomSeries, DicomSeries.id == DicomInstance.series_id)
                .where(DicomSeries.study_id == study.id))
        if series_uid is not None:
            stmt = stmt.where(DicomSeries.series_instance_uid == series_uid)
        if sop_uid is not None:
            stmt = stmt.where(DicomInstance.sop_instance_uid == sop_uid)
        rows = [(i, s) for i, s in (await session.execute(
            stmt.order_by(DicomSeries.series_number, DicomInstance.instance_number,
                          DicomInstance.id))).all()]
    if not rows:
        raise not_found("series" if sop_uid is None else "instance")
    return rows


async def metadata(request: web.Request) -> web.Response:
    user = await caller(request)
    study_uid = request.match_info["study"]
    rows = await _instances(request, user, study_uid, request.match_info.get("series"),
                            request.match_info.get("instance"))
    root = store_root(request.app[SETTINGS].data_dir)
    base = f"{request.scheme}://{request.host}/dicomweb/studies/{study_uid}"

    def build() -> list[dict[str, Any]]:
        return [_metadata(root / i.path, f"{base}/series/{s.series_instance_uid}/instances/"
                                         f"{i.sop_instance_uid}/frames/1") for i, s in rows]

    body = await asyncio.to_thread(build)
    await record_read(request, user, "dicomweb.metadata", study_uid,
                      {"instances": len(rows)})
    return web.Response(body=json.dumps(body).encode(), content_type=DICOM_JSON)


def _frame_numbers(request: web.Request) -> list[int]:
    try:
        numbers = [int(n) for n in request.match_info.get("frames", "1").split(",")]
    except ValueError:
        raise ApiError(400, "frames is a comma-separated list of frame numbers",
                       field="frames") from None
    if not numbers or len(numbers) > 1000:
        raise ApiError(400, "ask for 1 to 1000 frames", field="frames")
    return numbers


async def frames(request: web.Request) -> web.Response:
    user = await caller(request)
    study_uid = request.match_info["study"]
    numbers = _frame_numbers(request)
    accept = request.headers.get("Accept", "*/*")
    if not any(t in accept for t in ("*/*", "multipart/related", "application/octet-stream")):
        raise ApiError(406, "frames are served as multipart/related; "
                       "type=application/octet-stream", field="Accept")
    (instance, _), = await _instances(request, user, study_uid, request.match_info["series"],
                                      request.match_info["instance"])
    path = store_root(request.app[SETTINGS].data_dir) / instance.path
    try:
        parts = await asyncio.to_thread(_frames, path, numbers)
    except (ValueError, NotImplementedError, RuntimeError) as exc:
        raise ApiError(406, f"cannot decode this instance's pixel data: {exc}") from None
    await record_read(request, user, "dicomweb.frames", study_uid,
                      {"instance": instance.sop_instance_uid, "frames": numbers[:20]})
    return _multipart(parts, f"application/octet-stream; transfer-syntax={EXPLICIT_LE}")


async def retrieve(request: web.Request) -> web.Response:
    """Whole instances as stored (multipart/related; type=application/dicom)."""
    user = await caller(request)
    study_uid = request.match_info["study"]
    rows = await _instances(request, user, study_uid, request.match_info.get("series"),
                            request.match_info.get("instance"))
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
    media = render.choose_media(request.query.get("accept") or request.headers.get(
        "Accept", "*/*"))
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
        ds, (pixels,) = _decoded(path, [number])
        return render.render(ds, pixels, window, viewport, media, quality)

    try:
        body = await asyncio.to_thread(draw)
    except (ValueError, NotImplementedError, RuntimeError) as exc:
        raise ApiError(406, f"cannot decode this instance's pixel data: {exc}") from None
    await record_read(request, user, "dicomweb.thumbnail" if thumbnail else "dicomweb.rendered",
                      study_uid, {"instance": instance.sop_instance_uid})
    return web.Response(body=body, content_type=media)
