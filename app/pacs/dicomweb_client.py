"""Our side of DICOMweb towards a hospital PACS: QIDO-RS to search, WADO-RS to retrieve,
STOW-RS to store the objects we make (the minutes' key objects)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from pydicom.dataset import Dataset

from app.pacs.query import (
    SERIES_RETURN_KEYS,
    STUDY_RETURN_KEYS,
    RemoteError,
    RemoteSeries,
    RemoteStudy,
    StudyQuery,
    series_from,
    study_from,
)

DICOM_JSON = "application/dicom+json"
# "transfer-syntax=*": the objects as the PACS stores them, not transcoded (PS3.18 8.7.3.5).
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
MAX_OBJECT_BYTES = 512 * 1024 * 1024
QUERY_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
# A study may take long to come whole; what must not stall is each read.
RETRIEVE_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)

StoreFn = Callable[[bytes], Awaitable[None]]


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


async def store(base: str, objects: Sequence[bytes]) -> None:
    """STOW-RS of ``objects`` (DICOM files) in one request; RemoteError unless the node
    answers that it stored them all (200; 202 means some were refused, PS3.18 10.5.3)."""
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                    + data + b"\r\n" for data in objects) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; '
                               f"boundary={boundary}", "Accept": DICOM_JSON}
    try:
        async with aiohttp.ClientSession(timeout=QUERY_TIMEOUT) as http, http.post(
                _url(base, "/studies"), data=body, headers=headers) as resp:
            if resp.status != 200:
                raise RemoteError(f"STOW-RS answered HTTP {resp.status}: "
                                  f"{(await resp.text())[:200]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RemoteError(f"STOW-RS to {base} failed: {exc or type(exc).__name__}") from None


async def _qido(base: str, path: str, params: dict[str, str]) -> list[Dataset]:
    try:
        async with aiohttp.ClientSession(timeout=QUERY_TIMEOUT) as http, http.get(
                _url(base, path), params=params, headers={"Accept": DICOM_JSON}) as resp:
            if resp.status == 204:
                return []
            if resp.status != 200:
                raise RemoteError(f"QIDO-RS answered HTTP {resp.status}: "
                                  f"{(await resp.text())[:200]}")
            payload: Any = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RemoteError(f"QIDO-RS to {base} failed: {exc or type(exc).__name__}") from None
    if not isinstance(payload, list):
        raise RemoteError("QIDO-RS answer is not a DICOM JSON array")
    try:
        return [Dataset.from_json(item) for item in payload]
    except (ValueError, TypeError, KeyError) as exc:
        raise RemoteError(f"QIDO-RS answer is not valid DICOM JSON: {exc}") from None


def _params(keys: dict[str, str], return_keys: tuple[str, ...], limit: int) -> dict[str, str]:
    params = dict(keys)
    params["includefield"] = ",".join(k for k in return_keys if k not in keys)
    params["limit"] = str(limit)
    return params


async def find_studies(base: str, query: StudyQuery, limit: int) -> list[RemoteStudy]:
    found = await _qido(base, "/studies",
                        _params(query.matching_keys(), STUDY_RETURN_KEYS, limit))
    studies = (study_from(ds) for ds in found[:limit])
    return [s for s in studies if s is not None]


async def find_series(base: str, study_instance_uid: str, limit: int) -> list[RemoteSeries]:
    found = await _qido(base, f"/studies/{study_instance_uid}/series",
                        _params({}, SERIES_RETURN_KEYS, limit))
    series = (series_from(ds) for ds in found[:limit])
    return [s for s in series if s is not None]


async def retrieve_study(base: str, study_instance_uid: str, store: StoreFn) -> int:
    """Each object of the study, as it arrives, goes to ``store``; returns how many came."""
    count = 0
    try:
        async with aiohttp.ClientSession(timeout=RETRIEVE_TIMEOUT) as http, http.get(
                _url(base, f"/studies/{study_instance_uid}"),
                headers={"Accept": MULTIPART_DICOM}) as resp:
            if resp.status != 200:
                raise RemoteError(f"WADO-RS answered HTTP {resp.status}: "
                                  f"{(await resp.text())[:200]}")
            reader = aiohttp.MultipartReader.from_response(resp)
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader):
                    raise RemoteError("WADO-RS answer has a nested multipart")
                await store(await _read_part(part))
                count += 1
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise RemoteError(f"WADO-RS from {base} failed: {exc or type(exc).__name__}") from None
    return count


async def _read_part(part: aiohttp.BodyPartReader) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(1024 * 1024):
        size += len(chunk)
        if size > MAX_OBJECT_BYTES:
            raise RemoteError(f"an object is larger than {MAX_OBJECT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
