"""A synthetic chest CT: realistic geometry, HU values and window presets, no real patient.

Used for the demo case and for tests and benchmarks that need a full-size series.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pacs.ingest import MAX_BATCH, Ingested, Ingester
from app.pacs.window import Window

SIZE = 512
SLICE_BYTES = SIZE * SIZE * 2 + 4096  # a slice's pixels and attributes
PIXEL_MM = 0.7
SLICE_MM = 1.25
INTERCEPT = -1024


@dataclass(frozen=True)
class Patient:
    patient_id: str = "HC-0001"
    name: str = "NGUYEN^VAN^X"
    birth_date: str = "19610314"
    sex: str = "M"


def _phantom(z: float, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HU of one axial slice at ``z`` in [0, 1] (feet to head) of a chest."""
    hu = np.full(yy.shape, -1000.0, np.float32)  # air
    body = (xx / 0.82) ** 2 + (yy / 0.62) ** 2 < 1
    hu[body] = -90  # subcutaneous fat
    muscle = (xx / 0.76) ** 2 + (yy / 0.56) ** 2 < 1
    hu[muscle] = 45
    lung_r = 0.20 + 0.12 * np.sin(np.pi * min(max(z, 0.0), 1.0))
    for side in (-1, 1):
        lung = ((xx - side * 0.36) / (lung_r * 1.05)) ** 2 + ((yy + 0.02) / 0.42) ** 2 < 1
        hu[lung] = -850
    heart = ((xx + 0.08) / 0.22) ** 2 + ((yy - 0.12) / 0.2) ** 2 < 1
    if z < 0.6:
        hu[heart] = 40
    aorta = ((xx - 0.05) / 0.06) ** 2 + ((yy - 0.18) / 0.06) ** 2 < 1
    hu[aorta] = 180
    spine = (xx / 0.09) ** 2 + ((yy - 0.42) / 0.08) ** 2 < 1
    hu[spine] = 700
    canal = (xx / 0.03) ** 2 + ((yy - 0.44) / 0.03) ** 2 < 1
    hu[canal] = 20
    ribs = np.abs(((xx / 0.74) ** 2 + (yy / 0.54) ** 2) - 1) < 0.03
    hu[ribs & (np.sin(np.arctan2(yy, xx) * 9 + z * 6) > 0.3)] = 600
    # The case's question: a spiculated mass in the right upper lobe (patient's right is
    # image left).
    if 0.62 < z < 0.78:
        r = 0.07 * np.sin(np.pi * (z - 0.62) / 0.16)
        mass = ((xx + 0.36) ** 2 + (yy + 0.12) ** 2) < r ** 2 * (
            1 + 0.25 * np.sin(np.arctan2(yy + 0.12, xx + 0.36) * 7))
        hu[mass] = 35
    hu += rng.normal(0, 12, hu.shape).astype(np.float32)
    return hu


def series(study_uid: str, slices: int = 200, patient: Patient = Patient(),
           study_date: date = date(2026, 11, 20), accession: str = "ACC-0001",
           seed: int = 7) -> Iterator[bytes]:
    """Each slice as a DICOM file (bytes), head last, with consistent UIDs and geometry."""
    rng = np.random.default_rng(seed)
    axis = (np.arange(SIZE, dtype=np.float32) - SIZE / 2 + 0.5) / (SIZE / 2)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    series_uid = generate_uid(entropy_srcs=[study_uid, "series 1"])
    frame_uid = generate_uid(entropy_srcs=[study_uid, "frame of reference"])
    origin = -SIZE * PIXEL_MM / 2
    for i in range(slices):
        z_mm = -slices * SLICE_MM / 2 + i * SLICE_MM
        hu = _phantom(i / max(slices - 1, 1), yy, xx, rng)
        stored = np.clip(np.rint(hu) - INTERCEPT, -2048, 4095).astype(np.int16)
        sop_uid = generate_uid(entropy_srcs=[study_uid, "slice", str(i)])

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientID, ds.PatientName = patient.patient_id, patient.name
        ds.PatientBirthDate, ds.PatientSex = patient.birth_date, patient.sex
        ds.StudyDate = ds.SeriesDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = "091500"
        ds.AccessionNumber, ds.StudyID = accession, "1"
        ds.StudyDescription = "CT CHEST WITH CONTRAST"
        ds.SeriesDescription = "Axial 1.25mm mediastinum"
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.BodyPartExamined = "CT", "CHEST"
        ds.Manufacturer = "Hoichan synthetic"
        ds.SeriesNumber, ds.InstanceNumber = 1, i + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientPosition = "FFS"
        ds.ImagePositionPatient = [origin, origin, z_mm]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = z_mm
        ds.SliceThickness = SLICE_MM
        ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
        ds.KVP, ds.ConvolutionKernel = 120, "STANDARD"
        ds.Rows = ds.Columns = SIZE
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]
        ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
        ds.PixelData = stored.tobytes()
        buffer = io.BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        yield buffer.getvalue()


async def store_series(sessions: async_sessionmaker[AsyncSession], data_dir: Path,
                       study_uid: str, slices: int, patient: Patient = Patient()) -> int:
    """Generate the series into the store through the same ingest as received objects, a
    batch's worth of slices in flight at a time so that they commit together."""
    ingester = Ingester(sessions, data_dir)
    await ingester.start()
    window: Window[Ingested] = Window(MAX_BATCH, MAX_BATCH * SLICE_BYTES)
    try:
        for data in series(study_uid, slices, patient):
            await window.add(ingester.ingest(data, received_from="synth-ct"), len(data))
    finally:
        await window.wait()
        await ingester.close()
    window.raise_first()
    return len(window.tasks)
