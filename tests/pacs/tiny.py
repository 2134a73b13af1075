"""Tiny DICOM objects (4x4 pixels) with the attributes QIDO-RS matches on, in UTF-8 so that
Vietnamese names travel as written."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)


@dataclass(frozen=True)
class Study:
    uid: str
    patient_id: str
    patient_name: str
    date: str
    time: str = "091500"
    accession: str = ""
    referring: str = ""
    description: str = ""


def instance(study: Study, series_number: int, number: int, modality: str = "CT") -> bytes:
    """One object of ``study``; its series and SOP Instance UIDs follow from the numbers."""
    series_uid = generate_uid(entropy_srcs=[study.uid, "series", str(series_number)])
    sop_uid = generate_uid(entropy_srcs=[series_uid, "instance", str(number)])
    sop_class = MRImageStorage if modality == "MR" else CTImageStorage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.uid, series_uid
    ds.PatientID, ds.PatientName = study.patient_id, study.patient_name
    ds.PatientBirthDate, ds.PatientSex = "19700101", "F"
    ds.StudyDate, ds.StudyTime = study.date, study.time
    ds.AccessionNumber, ds.StudyID = study.accession, "1"
    ds.ReferringPhysicianName = study.referring
    ds.StudyDescription = study.description
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, series_number, number
    ds.SeriesDescription = f"{modality} series {series_number}"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
