"""Ingest keeps its promise under failure: a full disk, a database that refuses, parallel
associations colliding on a new study, and bytes mangled in every way (a server killed:
``test_ingest_kill.py``)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import delete, select

from app.db.engine import create_engine, session_factory
from app.pacs.ingest import IngestError, ingest
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy
from app.pacs.store import store_root
from tests.pacs.ingest_helpers import REFUSING, ct, execute_sql, files_under, held, send_all
from tests.pacs.scp_helpers import count, nothing_is_stored, open_scp, run, storescu

# --- A full disk -------------------------------------------------------------------------

@contextmanager
def small_filesystem(folder: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` mounted on ``folder`` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs",
                    str(folder)], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


async def test_a_full_disk_refuses_with_out_of_resources_and_keeps_what_it_had(settings):
    root = store_root(settings.data_dir)
    with small_filesystem(root, 1024) as disk:
        # Ballast leaves room for about two 39 KB objects; removing it frees the disk.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (free - 100 * 1024))
        async with open_scp(settings.database_url, settings.data_dir) as scp:
            sent = [ct() for _ in range(6)]
            statuses = await asyncio.to_thread(send_all, scp.port, sent)
            stored = statuses.index(0xA700)
            assert stored >= 1 and statuses[:stored] == [0] * stored, statuses
            index = await held(scp)
            # Exactly the acknowledged objects: each indexed, whole on disk; no temp file.
            assert set(index) == {str(ds.SOPInstanceUID) for ds in sent[:stored]}
            assert files_under(root) == set(index.values()) | {ballast}
            for ds in sent[:stored]:
                kept = pydicom.dcmread(index[str(ds.SOPInstanceUID)])
                assert np.array_equal(kept.pixel_array, ds.pixel_array)
            code, out = await run("echoscu", "-aec", "HOICHAN", "127.0.0.1", str(scp.port))
            assert code == 0, out
            ballast.unlink()
            refused = sent[stored]
            assert await asyncio.to_thread(send_all, scp.port, [refused]) == [0]
            assert str(refused.SOPInstanceUID) in await held(scp)


# --- A database that refuses ---------------------------------------------------------------

@pytest.mark.parametrize("when", ["insert", "commit"])
async def test_a_database_that_refuses_leaves_no_file(settings, tmp_path, when):
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    install, remove = REFUSING[(backend, when)]
    await execute_sql(settings.database_url, install)
    try:
        async with open_scp(settings.database_url, tmp_path) as scp:
            refused = ct()
            assert await asyncio.to_thread(send_all, scp.port, [refused]) == [0xA700]
            assert await count(scp, DicomStudy) == 0 and await count(scp, DicomSeries) == 0
            assert await held(scp) == {}
            nothing_is_stored(scp)
            await execute_sql(settings.database_url, remove)
            remove = []
            assert await asyncio.to_thread(send_all, scp.port, [refused]) == [0]
            assert set(await held(scp)) == {str(refused.SOPInstanceUID)}
    finally:
        await execute_sql(settings.database_url, remove)  # the PostgreSQL database is shared


# --- Parallel associations ---------------------------------------------------------------

async def test_parallel_associations_of_one_new_study_are_all_stored(settings, tmp_path):
    # A modality or PACS pushing one new study over several associations at once: each
    # transaction finds no study yet and inserts it; all but the first collide on it.
    study, series = generate_uid(), generate_uid()
    paths = []
    for _ in range(6):
        ds = ct()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        paths.append(tmp_path / f"{ds.SOPInstanceUID}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    async with open_scp(settings.database_url, settings.data_dir) as scp:
        await asyncio.gather(*(storescu(scp, str(path)) for path in paths))
        index = await held(scp)
        assert set(index) == {pydicom.dcmread(p).SOPInstanceUID for p in paths}
        assert files_under(scp.root) == set(index.values())
        assert await count(scp, DicomStudy) == 1 and await count(scp, DicomSeries) == 1


# --- No Part 10 preamble ---------------------------------------------------------------------

CT_BYTES = Path(get_testdata_file("CT_small.dcm")).read_bytes()


@pytest.mark.parametrize("data", [
    CT_BYTES[128:],  # no preamble: starts with DICM
    CT_BYTES[132:],  # neither preamble nor DICM: file meta first
    b"\xff" * 128 + b"DICX" + CT_BYTES[132:],  # a wrong prefix
    CT_BYTES[:128] + b"DICM",  # a preamble and nothing else
], ids=["no preamble", "no preamble nor prefix", "wrong prefix", "preamble only"])
async def test_what_is_no_part10_file_is_refused(ingest_into, data):
    sessions, data_dir = ingest_into
    with pytest.raises(IngestError, match="no preamble and DICM prefix|no file meta"):
        await ingest(sessions, data_dir, data, "test")
    assert files_under(store_root(data_dir)) == set()
    async with sessions() as s:
        assert await s.scalar(select(DicomInstance.id)) is None


# --- Mangled bytes straight into ingest ------------------------------------------------------

# Small files in each encoding ingest must take apart: explicit and implicit VR, big endian,
# deflated, encapsulated (JPEG 2000) pixel data, nested sequences (the RT dose).
FUZZ_BASES = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
              "image_dfl.dcm", "JPEG2000.dcm", "rtdose_1frame.dcm"]


def _length_fields(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, size, byte order) of the value length field of each top-level element, as
    pydicom found them (the file meta's too)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    implicit, little = ds.original_encoding
    datasets = [(ds.file_meta, False, "little")]
    if not ds.file_meta.TransferSyntaxUID.is_deflated:  # offsets would be in the inflated
        datasets.append((ds, bool(implicit), "little" if little else "big"))
    fields = []
    for dataset, implicit_vr, order in datasets:
        for tag in dataset.keys():  # noqa: SIM118 (iterating a Dataset converts)
            raw = dataset.get_item(tag)
            tell = getattr(raw, "value_tell", None)
            if tell is None:
                continue
            long_vr = implicit_vr or raw.VR in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                                 "SV", "UC", "UN", "UR", "UT", "UV")
            fields.append((tell - 4, 4, order) if long_vr else (tell - 2, 2, order))
    return fields


BASES = {name: Path(get_testdata_file(name)).read_bytes() for name in FUZZ_BASES}
LENGTHS = {name: _length_fields(data) for name, data in BASES.items()}


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(FUZZ_BASES))
    data = bytearray(BASES[name])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "length"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "length":
            offset, size, order = draw(st.sampled_from(LENGTHS[name]))
            value = draw(st.sampled_from([0, 1, 3, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFF0])
                         | st.integers(0, 256 ** size - 1)) % 256 ** size
            data[offset:offset + size] = value.to_bytes(size, order)  # type: ignore[arg-type]
    return bytes(data)


@pytest.fixture
async def ingest_into(settings: Any) -> AsyncIterator[tuple[Any, Path]]:
    engine = create_engine(settings.database_url)
    try:
        yield session_factory(engine), settings.data_dir
    finally:
        await engine.dispose()


@hypothesis_settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mangled())
async def test_mangled_objects_are_stored_whole_or_refused(ingest_into, data):
    sessions, data_dir = ingest_into
    root = store_root(data_dir)
    # Empty first, so that this example's object is new, not a duplicate of an earlier one.
    async with sessions.begin() as s:
        for model in (DicomInstance, DicomSeries, DicomStudy):
            await s.execute(delete(model))
    shutil.rmtree(root, ignore_errors=True)
    try:
        result = await ingest(sessions, data_dir, data, "fuzz")
    except IngestError:
        result = None  # any other exception fails the test
    event("refused" if result is None else "stored")
    async with sessions() as s:
        paths = set(await s.scalars(select(DicomInstance.path)))
    # Never a file without its row, nor a row without its file.
    assert files_under(root) == {root / p for p in paths}
    if result is not None:
        (path,) = paths
        assert (root / path).read_bytes() == data  # as received
        stored = pydicom.dcmread(root / path)
        assert str(stored.SOPInstanceUID) == result.sop_instance_uid
        for _ in stored.iterall():  # every element readable, not just those we index
            pass
    else:
        assert not paths
