"""The synthetic CT used by the demo: a consistent, realistic series in the store."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy
from app.pacs.store import store_root
from app.pacs.synth import series, store_series


def test_slices_are_consistent_and_in_hounsfield_units():
    slices = [pydicom.dcmread(io.BytesIO(b)) for b in series("1.2.3.4", slices=8)]
    assert len({s.SOPInstanceUID for s in slices}) == 8
    assert len({(s.StudyInstanceUID, s.SeriesInstanceUID, s.FrameOfReferenceUID)
                for s in slices}) == 1
    z = [float(s.ImagePositionPatient[2]) for s in slices]
    assert np.allclose(np.diff(z), float(slices[0].SliceThickness))
    middle = slices[4]
    assert (middle.Rows, middle.Columns, middle.Modality) == (512, 512, "CT")
    hu = middle.pixel_array.astype(np.float32) * middle.RescaleSlope + middle.RescaleIntercept
    assert hu[0, 0] < -900  # air outside the body
    assert -950 < hu[256, 256 - 92] < -700  # lung
    assert hu[256 + 95, 256] > 500  # vertebral body
    assert list(middle.WindowCenterWidthExplanation) == ["MEDIASTINUM", "LUNG"]
    # The same study UID gives the same series: the demo is reproducible.
    again = pydicom.dcmread(io.BytesIO(next(series("1.2.3.4", slices=8))))
    assert again.SOPInstanceUID == slices[0].SOPInstanceUID


async def test_store_series_goes_through_ingest(database_url, tmp_path):
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        assert await store_series(sessions, tmp_path, "1.2.3.99", 4) == 4
        async with sessions() as s:
            study = await s.scalar(select(DicomStudy))
            rows = list(await s.scalars(select(DicomInstance)))
            modality = await s.scalar(select(DicomSeries.modality))
        assert study is not None and study.study_instance_uid == "1.2.3.99"
        assert modality == "CT" and len(rows) == 4
        assert all((store_root(tmp_path) / r.path).stat().st_size == r.size_bytes for r in rows)
    finally:
        await engine.dispose()
