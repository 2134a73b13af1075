"""What a coordinator asks a remote PACS, and what it answers, independent of the protocol.

A query becomes DICOM matching keys (PS3.4 C.2.2.2) once, here; the DIMSE and DICOMweb
clients send those keys their own way and read the answer back through ``study_from`` and
``series_from``, which take a pydicom Dataset whether it came from C-FIND or from QIDO-RS
DICOM JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

# Return keys asked for at each level; the query's own keys are added to them.
STUDY_RETURN_KEYS = (
    "StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
SERIES_RETURN_KEYS = (
    "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)


@dataclass(frozen=True)
class StudyQuery:
    """Every field optional; an empty query is refused by the API, not here."""

    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: date | None = None
    study_date_from: date | None = None
    study_date_to: date | None = None
    modality: str | None = None
    accession_number: str | None = None
    study_instance_uid: str | None = None

    def matching_keys(self) -> dict[str, str]:
        """The DICOM attribute keywords and values to match on, as a PACS reads them."""
        keys: dict[str, str] = {}
        if self.patient_id:
            keys["PatientID"] = self.patient_id
        if self.patient_name:
            # Coordinators type part of a name; DICOM matches a whole PN unless wildcarded.
            name = self.patient_name
            keys["PatientName"] = name if "*" in name or "?" in name else f"*{name}*"
        if self.patient_birth_date:
            keys["PatientBirthDate"] = _da(self.patient_birth_date)
        if self.study_date_from or self.study_date_to:
            keys["StudyDate"] = (f"{_da(self.study_date_from)}-{_da(self.study_date_to)}"
                                 if self.study_date_from != self.study_date_to
                                 else _da(self.study_date_from))
        if self.modality:
            keys["ModalitiesInStudy"] = self.modality
        if self.accession_number:
            keys["AccessionNumber"] = self.accession_number
        if self.study_instance_uid:
            keys["StudyInstanceUID"] = self.study_instance_uid
        return keys


def _da(day: date | None) -> str:
    return day.strftime("%Y%m%d") if day else ""


@dataclass(frozen=True)
class RemoteStudy:
    study_instance_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_description: str
    modalities: list[str]
    number_of_series: int | None
    number_of_instances: int | None


@dataclass(frozen=True)
class RemoteSeries:
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    number_of_instances: int | None


def _str(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def values(ds: Dataset, keyword: str) -> list[str]:
    """A multi-valued attribute as a list, whether it holds one value or several."""
    value = ds.get(keyword)
    if value is None:
        return []
    values = list(value) if isinstance(value, MultiValue) else [value]
    return [str(v) for v in values if str(v)]


def study_from(ds: Dataset) -> RemoteStudy | None:
    """None for an answer without a Study Instance UID (it could not be imported)."""
    uid = _str(ds, "StudyInstanceUID")
    if not uid:
        return None
    return RemoteStudy(
        study_instance_uid=uid, patient_id=_str(ds, "PatientID"),
        patient_name=_str(ds, "PatientName"), patient_birth_date=_str(ds, "PatientBirthDate"),
        patient_sex=_str(ds, "PatientSex"), study_date=_str(ds, "StudyDate"),
        study_time=_str(ds, "StudyTime"), accession_number=_str(ds, "AccessionNumber"),
        study_description=_str(ds, "StudyDescription"),
        modalities=values(ds, "ModalitiesInStudy"),
        number_of_series=_int(ds, "NumberOfStudyRelatedSeries"),
        number_of_instances=_int(ds, "NumberOfStudyRelatedInstances"))


def series_from(ds: Dataset) -> RemoteSeries | None:
    uid = _str(ds, "SeriesInstanceUID")
    if not uid:
        return None
    return RemoteSeries(
        series_instance_uid=uid, modality=_str(ds, "Modality"),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_str(ds, "SeriesDescription"),
        number_of_instances=_int(ds, "NumberOfSeriesRelatedInstances"))


class RemoteError(Exception):
    """The node could not be reached or refused; the message says which, for the user."""
