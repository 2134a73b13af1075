"""Hospital PACS push to our C-STORE SCP: dcmtk's storescu and echoscu as the real peers."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import func, select

from app.db.engine import create_engine, session_factory
from app.pacs.ingest import ingest
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy
from app.pacs.scp import StoreScp
from app.pacs.store import store_root

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


@pytest.fixture
async def scp(settings, tmp_path):
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    server = StoreScp("HOICHAN", "127.0.0.1", 0, (), partial(ingest, sessions, tmp_path),
                      asyncio.get_running_loop())
    server.start()
    server.sessions = sessions  # type: ignore[attr-defined]
    server.root = store_root(tmp_path)  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
        await engine.dispose()


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


async def storescu(scp, path: str, *options: str, calling: str = "PACS") -> str:
    # storescu exits 0 even when the store failed: callers check what we hold.
    _, out = await run("storescu", "-aet", calling, "-aec", "HOICHAN", *options, "127.0.0.1",
                       str(scp.port), path)
    return out


async def count(scp, model) -> int:
    async with scp.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_echo(scp):
    code, out = await run("echoscu", "-aet", "PACS", "-aec", "HOICHAN", "127.0.0.1",
                          str(scp.port))
    assert code == 0, out


def fresh_copy(name: str, folder: Path) -> str:
    """The test file under a new SOP Instance UID (several share one), pixels untouched."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return str(path)


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


def _send(port: int, ds: pydicom.Dataset) -> int:
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
    engine = create_engine(settings.database_url)
    server = StoreScp("HOICHAN", "127.0.0.1", 0, ("ORTHANC",),
                      partial(ingest, session_factory(engine), tmp_path),
                      asyncio.get_running_loop())
    server.start()
    try:
        path = get_testdata_file("CT_small.dcm")
        out = await storescu(server, path, calling="STRANGER")
        assert "Association Rejected" in out
        await storescu(server, path, calling="ORTHANC")
        async with session_factory(engine)() as s:
            rows = list(await s.scalars(select(DicomInstance)))
        assert [r.received_from.split("@")[0] for r in rows] == ["ORTHANC"]
    finally:
        server.stop()
        await engine.dispose()
