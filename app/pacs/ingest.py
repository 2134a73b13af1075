"""Taking one DICOM object into the store: parse, check, write, index — all or nothing."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pacs import store
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy

log = logging.getLogger(__name__)

UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


class IngestError(Exception):
    """The object was refused; nothing of it was kept."""


@dataclass(frozen=True)
class Ingested:
    sop_instance_uid: str
    study_instance_uid: str
    duplicate: bool


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword, "")
    return str(value if value is not None else "")[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse(data: bytes) -> Dataset:
    """The object's attributes (pixel data is not decoded here), or IngestError."""
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, OSError) as exc:
        raise IngestError(f"not a readable DICOM object: {exc}") from None
    missing = [k for k in REQUIRED_UIDS if not str(ds.get(k, "") or "")]
    if missing:
        raise IngestError(f"missing {', '.join(missing)}")
    for keyword in REQUIRED_UIDS:
        value = str(ds.get(keyword))
        if len(value) > 64 or not UID.match(value):
            raise IngestError(f"{keyword} is not a valid UID: {value[:80]!r}")
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", Dataset()):
        raise IngestError("no file meta information (transfer syntax)")
    return ds


async def _series(session: AsyncSession, ds: Dataset) -> DicomSeries:
    study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    study = await session.scalar(
        select(DicomStudy).where(DicomStudy.study_instance_uid == study_uid))
    if study is None:
        study = DicomStudy(
            study_instance_uid=study_uid, patient_id=_text(ds, "PatientID", 64),
            patient_name=_text(ds, "PatientName", 324),
            patient_birth_date=_text(ds, "PatientBirthDate", 8),
            patient_sex=_text(ds, "PatientSex", 16), study_date=_text(ds, "StudyDate", 8),
            study_time=_text(ds, "StudyTime", 16),
            accession_number=_text(ds, "AccessionNumber", 16),
            study_description=_text(ds, "StudyDescription", 64),
            referring_physician_name=_text(ds, "ReferringPhysicianName", 324),
            study_id=_text(ds, "StudyID", 16))
        session.add(study)
        await session.flush()
    series = await session.scalar(
        select(DicomSeries).where(DicomSeries.series_instance_uid == series_uid))
    if series is None:
        series = DicomSeries(
            series_instance_uid=series_uid, study_id=study.id,
            modality=_text(ds, "Modality", 16), series_number=_int(ds, "SeriesNumber"),
            series_description=_text(ds, "SeriesDescription", 64),
            body_part_examined=_text(ds, "BodyPartExamined", 16))
        session.add(series)
        await session.flush()
    elif series.study_id != study.id:
        raise IngestError(f"series {series_uid} already belongs to another study")
    return series


async def ingest(sessions: async_sessionmaker[AsyncSession], data_dir: Path, data: bytes,
                 received_from: str) -> Ingested:
    """Store ``data`` (a DICOM file: preamble, file meta, dataset, as received) durably.

    The file is on disk (fsynced) and indexed in one committed transaction before this
    returns; a repeated SOP Instance UID is a success that changes nothing. On any failure
    the file is removed and the transaction rolled back.
    """
    ds = parse(data)
    sop_uid = str(ds.SOPInstanceUID)
    root = store.store_root(data_dir)
    relative = store.relative_path(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop_uid)
    async with sessions() as session:
        existing = await session.scalar(
            select(DicomInstance.id).where(DicomInstance.sop_instance_uid == sop_uid))
        if existing is not None:
            return Ingested(sop_uid, str(ds.StudyInstanceUID), duplicate=True)
        written = False
        try:
            series = await _series(session, ds)
            session.add(DicomInstance(
                sop_instance_uid=sop_uid, series_id=series.id,
                sop_class_uid=str(ds.SOPClassUID), instance_number=_int(ds, "InstanceNumber"),
                transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
                rows=_int(ds, "Rows"), columns=_int(ds, "Columns"),
                number_of_frames=_int(ds, "NumberOfFrames"), path=relative,
                size_bytes=len(data), received_from=received_from[:64]))
            await session.flush()
            try:
                store.write_atomically(root, relative, data)
            except OSError as exc:
                raise IngestError(f"cannot write the object: {exc.strerror or exc}") from None
            written = True
            await session.commit()
        except BaseException:
            await session.rollback()
            if written:
                store.remove(root, relative)
            raise
    return Ingested(sop_uid, str(ds.StudyInstanceUID), duplicate=False)
