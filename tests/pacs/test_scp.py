"""Hospital PACS push to our C-STORE SCP: dcmtk's storescu and echoscu as the real peers."""

from __future__ import annotations

import asyncio
import io
import socket
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import select

from app.pacs.models import DicomInstance, DicomSeries, DicomStudy
from tests.pacs.scp_helpers import count, fresh_copy, nothing_is_stored, open_scp, run, storescu

# pydicom's bundled files, with the storescu option that proposes their transfer syntax.
FILES = {
    "CT_small.dcm": [],
    "MR_small_RLE.dcm": ["-xr"],
    "MR_small_jp2klossless.dcm": ["-xv"],
    "JPEG2000.dcm": ["-xw"],
    "MR_small_jpeg_ls_lossless.dcm": ["-xt"],
    "JPGExtended.dcm": ["-xx"],
    "SC_rgb_jpeg_gdcm.dcm": ["-xs"],
    "image_dfl.dcm": ["-xd"],
}


async def test_echo(scp):
    code, out = await run("echoscu", "-aet", "PACS", "-aec", "HOICHAN", "127.0.0.1",
                          str(scp.port))
    assert code == 0, out


async def test_every_transfer_syntax_is_stored_as_received(scp, tmp_path):
    for name, options in FILES.items():
        path = fresh_copy(name, tmp_path)
        await storescu(scp, path, *options)
        original = pydicom.dcmread(path)
        async with scp.sessions() as s:
            row = await s.scalar(select(DicomInstance).where(
                DicomInstance.sop_instance_uid == str(original.SOPInstanceUID)))
        assert row is not None, name
        assert row.transfer_syntax_uid == str(original.file_meta.TransferSyntaxUID), name
        stored = pydicom.dcmread(scp.root / row.path)
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert np.array_equal(stored.pixel_array, original.pixel_array), name
    assert await count(scp, DicomInstance) == len(FILES)


async def test_index_holds_what_queries_need(scp):
    path = get_testdata_file("CT_small.dcm")
    await storescu(scp, path)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    async with scp.sessions() as s:
        study = await s.scalar(select(DicomStudy))
        series = await s.scalar(select(DicomSeries))
    assert study is not None and series is not None
    assert (study.study_instance_uid, study.patient_id, study.patient_name) == (
        ds.StudyInstanceUID, ds.PatientID, str(ds.PatientName))
    assert study.study_date == ds.StudyDate
    assert (series.series_instance_uid, series.modality) == (ds.SeriesInstanceUID, "CT")


async def test_duplicate_is_idempotent(scp):
    path = get_testdata_file("CT_small.dcm")
    await storescu(scp, path)
    files = sorted(p for p in scp.root.rglob("*") if p.is_file())
    stamp = files[0].stat().st_mtime_ns
    await storescu(scp, path)
    assert await count(scp, DicomInstance) == 1
    assert sorted(p for p in scp.root.rglob("*") if p.is_file()) == files
    assert files[0].stat().st_mtime_ns == stamp


def _send(port: int, ds: pydicom.Dataset | Path) -> int:
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="HOICHAN")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def _ct(**changes: object) -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    return ds


@pytest.mark.parametrize("changes,reason", [
    ({"StudyInstanceUID": None}, "missing StudyInstanceUID"),
    ({"SeriesInstanceUID": "1.2.abc"}, "not a valid UID"),
    ({"StudyInstanceUID": "1." + "2" * 70}, "not a valid UID"),
])
async def test_malformed_objects_are_refused_and_nothing_is_kept(scp, caplog, changes, reason):
    status = await asyncio.to_thread(_send, scp.port, _ct(**changes))
    assert status == 0xC000
    assert reason in caplog.text
    assert await count(scp, DicomInstance) == 0 and await count(scp, DicomStudy) == 0
    assert not scp.root.exists() or not [p for p in scp.root.rglob("*") if p.is_file()]
    assert await asyncio.to_thread(_send, scp.port, _ct()) == 0  # the SCP goes on


async def test_only_configured_callers_may_store(settings, tmp_path):
    async with open_scp(settings.database_url, tmp_path, ("ORTHANC",)) as server:
        path = get_testdata_file("CT_small.dcm")
        out = await storescu(server, path, calling="STRANGER")
        assert "Association Rejected" in out and "Calling AE Title Not Recognized" in out
        assert await count(server, DicomInstance) == 0
        nothing_is_stored(server)
        await storescu(server, path, calling="ORTHANC")
        async with server.sessions() as s:
            rows = list(await s.scalars(select(DicomInstance)))
        assert [r.received_from.split("@")[0] for r in rows] == ["ORTHANC"]


def _ct_file() -> tuple[bytes, int]:
    """CT_small under a new SOP Instance UID, as a Part 10 file, and where its dataset
    starts (after the file meta group, whose length pydicom always writes)."""
    buffer = io.BytesIO()
    _ct().save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    assert data[132:136] == b"\x02\x00\x00\x00"  # (0002,0000) File Meta Group Length
    return data, 144 + struct.unpack_from("<I", data, 140)[0]


def _patch(data: bytes, at: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with ``value`` written ``offset`` bytes into the element starting with
    ``at`` (a little-endian tag)."""
    where = data.index(at) + offset
    return data[:where] + value + data[where + len(value):]


PIXEL_DATA, PATIENT_NAME = b"\xe0\x7f\x10\x00", b"\x10\x00\x10\x00"
BAD_DATASETS = {
    # name: (dataset bytes from the whole file and the dataset's offset, logged reason)
    "cut inside the pixel data": (lambda d, o: d[o:-1000], "declares 32768 bytes"),
    "cut inside an element header": (lambda d, o: d[o:o + 1000], "header cut short"),
    "huge element length": (lambda d, o: _patch(d, PIXEL_DATA, 8, b"\xf0\xff\xff\xff")[o:],
                            "declares 4294967280 bytes"),
    "bad VR": (lambda d, o: _patch(d, PATIENT_NAME, 4, b"ZZ")[o:], "unknown VR 'ZZ'"),
    # A sender that puts the whole file, preamble and all, where the dataset goes.
    "preamble and file meta inside the dataset": (lambda d, o: d, "unknown VR"),
}


def _send_raw(port: int, path: Path) -> int:
    """C-STORE of the file's bytes after its file meta, sent as they are (undecoded)."""
    pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True
    try:
        return _send(port, path)
    finally:
        pynetdicom_config.STORE_SEND_CHUNKED_DATASET = False


async def push_succeeds(scp) -> None:
    """A normal storescu push after the bad input is stored."""
    path = get_testdata_file("CT_small.dcm")
    await storescu(scp, path)
    async with scp.sessions() as s:
        assert await s.scalar(select(DicomInstance.sop_instance_uid)) == \
            pydicom.dcmread(path).SOPInstanceUID


@pytest.mark.parametrize("name", BAD_DATASETS)
async def test_malformed_bytes_at_the_dicom_port_are_refused(scp, caplog, tmp_path, name):
    mangle, reason = BAD_DATASETS[name]
    data, offset = _ct_file()
    path = tmp_path / "bad.dcm"
    path.write_bytes(data[:offset] + mangle(data, offset))
    assert await asyncio.to_thread(_send_raw, scp.port, path) == 0xC000
    assert reason in caplog.text
    assert await count(scp, DicomInstance) == 0 and await count(scp, DicomStudy) == 0
    nothing_is_stored(scp)
    await push_succeeds(scp)


def _propose(port: int, transfer_syntax: str) -> list[int]:
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CTImageStorage, transfer_syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="HOICHAN")
    # pynetdicom aborts an association in which no context was accepted.
    assert not assoc.is_established
    return [int(c.result) for c in assoc.rejected_contexts]


async def test_a_transfer_syntax_we_do_not_accept_is_rejected(scp):
    private_syntax = "1.2.826.0.1.3680043.9.7777.99.1"
    results = await asyncio.to_thread(_propose, scp.port, private_syntax)
    assert results == [0x04]  # PS3.8 9.3.3.2: transfer syntaxes not supported
    nothing_is_stored(scp)
    await push_succeeds(scp)


def _raw_exchange(port: int, payload: bytes) -> bytes:
    """What the SCP answers to ``payload`` on a bare TCP connection, until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        answer = b""
        while chunk := s.recv(1024):
            answer += chunk
        return answer


@pytest.mark.parametrize("payload,reason", [
    (b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n" + bytes(range(256)) * 8, 1),  # unrecognized
    (b"\x04\x00\x00\x00\x00\x10" + b"\x00" * 16, 2),  # a P-DATA before any association
    (b"\x01\x00\xff\xff\xff\xf0" + bytes(range(256)), 6),  # a 4 GB association request
])
async def test_garbage_on_the_dicom_port_is_aborted(scp, payload, reason):
    answer = await asyncio.to_thread(_raw_exchange, scp.port, payload)
    # A-ABORT (PS3.8 9.3.8) from the service provider, then the connection is closed.
    assert answer == bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, reason])
    nothing_is_stored(scp)
    await push_succeeds(scp)
