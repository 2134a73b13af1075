"""Every storable image among pydicom's test files, pushed by storescu in its own transfer
syntax, comes back through WADO-RS frames as the pixels pydicom decodes from the file: in
uncompressed form, in each lossless syntax the server encodes (decoded here by pylibjpeg's
OpenJPEG and libjpeg, not by the imagecodecs that encoded them), and as stored with
``transfer-syntax=*``."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AllStoragePresentationContexts
from sqlalchemy import select

from app.pacs.models import DicomInstance
from tests.conftest import fresh_database
from tests.pacs.frames import IMAGE_PIXEL, decode_served
from tests.pacs.scp_helpers import open_scp, run, storescu

# The storescu option that proposes each transfer syntax (the compressed ones together with
# the uncompressed, each in a context of its own: storescu sends a file as it is when its
# syntax is accepted, which the test checks in the index).
PROPOSE = {
    "1.2.840.10008.1.2": "-xi",  # implicit VR little endian only
    "1.2.840.10008.1.2.1": "-xe",
    "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
}

# Storable files whose pixel data pydicom itself cannot decode here: there is nothing to
# compare with. The test checks that they still fail, so the list cannot go stale.
UNDECODABLE = {
    "JPEG-lossy.dcm": "libjpeg: a misplaced marker segment in the JPEG Extended stream",
    "JPEG2000-embedded-sequence-delimiter.dcm": "OpenJPEG cannot read the J2K header",
    "MR_truncated.dcm": "pixel data shorter than Rows x Columns (truncated on purpose)",
    "badVR.dcm": "NumberOfFrames is '1A' (a bad IS value on purpose)",
}

# Files storescu refuses to send: dcmtk cannot parse them ("missing SOP class").
UNSENDABLE = {
    "explicit_VR-UN.dcm": "every element has VR UN: dcmtk finds no SOP Class UID in it",
    # Our ingest refuses it too (unknown VR), as it would over any other channel.
    "SC_rgb_jpeg.dcm": "(0008,0008) has a non-standard VR (bytes 18 00): dcmtk reads on "
                       "past the end of the file",
}

# Files we refuse on purpose: nothing of them may be kept.
REFUSED = {
    "bad_sequence.dcm": "its Study/Series/SOP Instance UIDs are hex digests, not DICOM UIDs",
}

STORAGE_CLASSES = {c.abstract_syntax for c in AllStoragePresentationContexts}
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"'
# Each encoding asked alone: the part must come back in exactly that syntax.
ENCODED_ACCEPTS = {
    "1.2.840.10008.1.2.4.201": 'multipart/related; type="image/jphc"',
    "1.2.840.10008.1.2.4.202":
        'multipart/related; type="image/jphc"; transfer-syntax=1.2.840.10008.1.2.4.202',
    "1.2.840.10008.1.2.4.80": 'multipart/related; type="image/jls"',
    "1.2.840.10008.1.2.4.90": 'multipart/related; type="image/jp2"',
}
AS_STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
# What no lossless JPEG syntax holds: the server refuses (406) rather than send another.
NOT_ENCODABLE = {
    "liver.dcm": "1-bit segmentation", "liver_1frame.dcm": "1-bit",
    "liver_expb.dcm": "1-bit", "liver_expb_1frame.dcm": "1-bit",
    "SC_rgb_32bit.dcm": "32-bit", "SC_rgb_32bit_2frame.dcm": "32-bit",
    "rtdose.dcm": "32-bit", "rtdose_1frame.dcm": "32-bit", "rtdose_rle.dcm": "32-bit",
    "rtdose_rle_1frame.dcm": "32-bit", "rtdose_expb_1frame.dcm": "32-bit",
    "rtdose_expb.dcm": "32-bit", "SC_rgb_rle_32bit.dcm": "32-bit",
    "SC_rgb_rle_32bit_2frame.dcm": "32-bit", "SC_rgb_expb_32bit.dcm": "32-bit",
    "SC_rgb_expb_32bit_2frame.dcm": "32-bit",
}


@dataclass(frozen=True)
class PushedFile:
    path: str
    transfer_syntax: UID
    study: str
    series: str
    sop: str
    frames: int

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def _storable(path: str) -> PushedFile | None:
    """The file, if it is an image a modality could push: file meta with a transfer syntax,
    a storage SOP class, the three instance UIDs and pixel data."""
    if os.path.isdir(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=False)
    except InvalidDicomError:  # not DICOM, or no file meta: nothing storescu would send
        return None
    syntax = ds.file_meta.get("TransferSyntaxUID")
    uids = [str(ds.get(k) or "") for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                             "SOPInstanceUID")]
    if not syntax or "PixelData" not in ds or not all(uids) or \
            ds.get("SOPClassUID") not in STORAGE_CLASSES:
        return None
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except ValueError:
        frames = 0  # badVR.dcm: listed as undecodable
    return PushedFile(path, UID(syntax), *uids, frames)


@cache
def storable_files() -> list[PushedFile]:
    found = [f for f in map(_storable, sorted(get_testdata_files())) if f is not None]
    assert len(found) > 100, "pydicom's test files (and pydicom-data) are not installed"
    return found


def _by_name() -> dict[str, PushedFile]:
    return {f.name: f for f in storable_files()}


def test_the_undecodable_list_is_true():
    files = _by_name()
    for name in UNDECODABLE:
        with pytest.raises((RuntimeError, ValueError)):
            pixel_array(files[name].path)


async def test_the_unsendable_list_is_true():
    files = _by_name()
    for name in UNSENDABLE:
        # storescu checks its input files before it connects: no port is needed.
        _, out = await run("storescu", "-R", "127.0.0.1", "1", files[name].path)
        assert f"missing SOP class (or instance) in file: {files[name].path}" in out, out


def _as_pushed(file: PushedFile, folder: Path, seen: set[str]) -> PushedFile:
    """The file itself, or, when an earlier file has its SOP Instance UID (many variants of
    one image share it, and a repeated UID is an idempotent no-op), a copy under a new UID."""
    if file.sop not in seen:
        seen.add(file.sop)
        return file
    ds = pydicom.dcmread(file.path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    copy = folder / f"{len(seen)}-{file.name}"
    ds.save_as(copy, enforce_file_format=True)
    seen.add(ds.SOPInstanceUID)
    return PushedFile(str(copy), file.transfer_syntax, file.study, file.series,
                      ds.SOPInstanceUID, file.frames)


def _parts(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a multipart/related response (the email parser is too slow for the
    110 MB of a 120-frame colour cine)."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    chunks = body.split(b"--" + boundary)
    assert chunks[-1].strip() == b"--", "the closing delimiter is missing"
    return [chunk.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for chunk in chunks[1:-1]]


def _meta_value(meta: dict[str, Any], keyword: str) -> Any:
    element = meta.get(f"{tag_for_keyword(keyword):08X}", {})
    return element.get("Value", [None])[0]


def _served_as_pydicom_reads_it(frame: bytes, meta: dict[str, Any],
                                decoded: dict[str, Any] | None) -> np.ndarray:
    """The frame as any reader makes of it: uncompressed little endian pixel data described
    by the instance's metadata. For a compressed instance, photometric interpretation and
    planar configuration are what decompression yields (``decoded``: e.g. lossy JPEG
    YBR_FULL_422 becomes RGB, PS3.5 8.2.1), as pydicom's decompress() reports them."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in IMAGE_PIXEL:
        value = _meta_value(meta, keyword)
        if value is not None:
            setattr(ds, keyword, value)
    if decoded is not None:
        ds.PhotometricInterpretation = decoded["photometric_interpretation"]
        if ds.SamplesPerPixel > 1:
            ds.PlanarConfiguration = decoded["planar_configuration"]
    ds.NumberOfFrames = 1
    ds.PixelData = frame
    return pixel_array(ds)


async def _served(client: Any, auth: dict[str, str], file: PushedFile, accept: str
                  ) -> tuple[str, dict[str, Any], list[bytes]] | str:
    """The metadata, the part type and the frames served for ``accept``, or what failed."""
    instance = (f"/dicomweb/studies/{file.study}/series/{file.series}/instances/{file.sop}")
    r = await client.get(instance + "/metadata", headers=auth)
    if r.status != 200:
        return f"metadata {r.status}: {await r.text()}"
    (meta,) = await r.json()
    numbers = ",".join(str(n) for n in range(1, file.frames + 1))
    r = await client.get(f"{instance}/frames/{numbers}", headers={**auth, "Accept": accept})
    if r.status != 200:
        return f"frames {r.status}: {await r.text()}"
    body = await r.read()
    types = {line.split(b":", 1)[1].strip().decode() for line in body.split(b"\r\n")
             if line.lower().startswith(b"content-type:")}
    if len(types) != 1:
        return f"parts of several types: {types}"
    served = _parts(body, r.headers["Content-Type"])
    if len(served) != file.frames:
        return f"{len(served)} frames served of {file.frames}"
    return types.pop(), meta, served


@lru_cache(maxsize=1)
def _raw_frames(path: str, syntax: UID) -> tuple[np.ndarray, ...]:
    """pydicom's decoding of each frame as stored (no colour conversion). One file at a time
    is kept: its encodings are checked one after another."""
    source = pydicom.dcmread(path)
    decoder = get_decoder(syntax)
    return tuple(decoder.as_array(source, index=index, raw=True)[0]
                 for index in range(int(source.get("NumberOfFrames") or 1)))


async def _check_encoded(client: Any, auth: dict[str, str], file: PushedFile,
                         original: PushedFile, syntax: str) -> str | None:
    """What is wrong with the frames of ``file`` served in ``syntax``, or None."""
    got = await _served(client, auth, file, ENCODED_ACCEPTS[syntax])
    if isinstance(got, str):
        return got
    part_type, meta, served = got
    if not part_type.endswith(f"; transfer-syntax={syntax}"):
        return f"asked {syntax}, the part says {part_type}"
    attributes = {k: _meta_value(meta, k) for k in IMAGE_PIXEL}
    for index, expected in enumerate(_raw_frames(original.path, original.transfer_syntax)):
        if not np.array_equal(decode_served(attributes, syntax, served[index]), expected):
            return f"frame {index + 1} in {syntax} differs from pydicom's decoding"
    return None


async def _check_as_stored(client: Any, auth: dict[str, str], file: PushedFile,
                           original: PushedFile) -> str | None:
    """A compressed file's frames with ``transfer-syntax=*``: its own bytes, labelled."""
    got = await _served(client, auth, file, AS_STORED)
    if isinstance(got, str):
        return got
    part_type, _, served = got
    if part_type != f"application/octet-stream; transfer-syntax={original.transfer_syntax}":
        return f"as stored, the part says {part_type}"
    source = pydicom.dcmread(original.path)
    own = list(generate_frames(source.PixelData, number_of_frames=file.frames))
    if served != own:
        return "the stored frames were not served as they lie"
    return None


async def _check(client: Any, auth: dict[str, str], file: PushedFile, original: PushedFile
                 ) -> str | None:
    """What is wrong with the served frames of ``file``, or None."""
    got = await _served(client, auth, file, FRAMES_ACCEPT)
    if isinstance(got, str):
        return got
    _, meta, served = got
    source = pydicom.dcmread(original.path)
    decoder = get_decoder(original.transfer_syntax)
    for index, frame in enumerate(served):
        expected, properties = decoder.as_array(source, index=index)
        try:
            got = _served_as_pydicom_reads_it(
                frame, meta, properties if original.transfer_syntax.is_compressed else None)
        except ValueError as exc:  # pydicom: the bytes do not fit the described layout
            return f"frame {index + 1} does not fit its metadata: {exc}"
        if not np.array_equal(got, expected):
            return f"frame {index + 1} differs from pydicom's decoding"
    return None


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # SQLite only: what is checked here is the pixel path; the index and the store are
    # checked on both databases by test_scp.py and test_dicomweb.py.
    return fresh_database(request, tmp_path, "sqlite")


async def test_every_storable_test_file_round_trips_through_wado_frames(
        client, world, settings, tmp_path):
    skipped = UNDECODABLE | UNSENDABLE | REFUSED
    files = [f for f in storable_files() if f.name not in skipped]
    missing = {f.name: str(f.transfer_syntax) for f in files if f.transfer_syntax not in PROPOSE}
    assert not missing, f"no storescu option known for {missing}"
    seen: set[str] = set()
    pushed = [(_as_pushed(f, tmp_path, seen), f) for f in files]
    refused = [_by_name()[name] for name in REFUSED]
    async with open_scp(settings.database_url, settings.data_dir) as scp:
        # One association per transfer syntax: -R proposes only the contexts the files need.
        for option in sorted({PROPOSE[f.transfer_syntax] for f in files}):
            group = [p.path for p, f in pushed if PROPOSE[f.transfer_syntax] == option]
            await storescu(scp, group, "-R", "-nh", option)
        for file in refused:
            await storescu(scp, file.path, "-R", PROPOSE[file.transfer_syntax])
        async with scp.sessions() as session:
            held = set((await session.execute(select(
                DicomInstance.sop_instance_uid, DicomInstance.transfer_syntax_uid))).all())
    assert held == {(file.sop, str(file.transfer_syntax)) for file, _ in pushed}
    auth = world.auth("admin")
    problems = {original.name: problem for file, original in pushed
                if (problem := await _check(client, auth, file, original))}
    assert {f.name for _, f in pushed} >= set(NOT_ENCODABLE), "a refused file is not pushed"
    for file, original in pushed:
        if original.transfer_syntax.is_compressed:
            problem = await _check_as_stored(client, auth, file, original)
            if problem:
                problems[f"{original.name} as stored"] = problem
        for syntax in ENCODED_ACCEPTS:
            if original.name in NOT_ENCODABLE:
                got = await _served(client, auth, file, ENCODED_ACCEPTS[syntax])
                if not (isinstance(got, str) and got.startswith("frames 406")):
                    problems[f"{original.name} in {syntax}"] = "not refused with 406"
            elif problem := await _check_encoded(client, auth, file, original, syntax):
                problems[f"{original.name} in {syntax}"] = problem
    assert not problems, "\n".join(f"{name}: {why}" for name, why in problems.items())
