"""A real PACS (Orthanc) pushes studies to our SCP."""

from __future__ import annotations

import io

import pydicom
from pydicom.data import get_testdata_file
from sqlalchemy import select

from app.pacs.models import DicomInstance
from app.pacs.synth import series
from tests.pacs.orthanc import start_orthanc


async def test_orthanc_pushes_a_study_to_our_scp(scp, tmp_path):  # noqa: F811
    orthanc = start_orthanc(tmp_path / "orthanc", {"hoichan": ("HOICHAN", scp.port)})
    try:
        slices = list(series("1.2.826.0.1.3680043.9.7777.42", slices=4))
        ids = [await orthanc.upload(data) for data in slices]
        with open(get_testdata_file("MR_small_jp2klossless.dcm"), "rb") as f:
            mr = f.read()
        ids.append(await orthanc.upload(mr))
        for resource in ids:
            result = await orthanc.push("hoichan", resource)
            assert result["status"] == 200, result
        async with scp.sessions() as s:
            rows = list(await s.scalars(select(DicomInstance)))
        assert len(rows) == 5
        by_uid = {r.sop_instance_uid: r for r in rows}
        for data in slices[:1] + [mr]:
            original = pydicom.dcmread(io.BytesIO(data))
            row = by_uid[str(original.SOPInstanceUID)]
            assert row.received_from.startswith("ORTHANC@")
            stored = pydicom.dcmread(scp.root / row.path)
            assert (stored.pixel_array == original.pixel_array).all()
    finally:
        orthanc.stop()
