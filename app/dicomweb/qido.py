"""QIDO-RS: search studies, series and instances of the local store (PS3.18 §10.6)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, Select, func, select

from app.appkeys import READ_SESSIONS
from app.dicomweb.access import caller, readable_studies, record_read, require_study
from app.dicomweb.dicomjson import attr, dicom_json_response
from app.errors import ApiError
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy

MAX_LIMIT = 1000
DATE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")
# Matching keys by keyword and by tag, per level.
STUDY_KEYS = {
    "PatientID": DicomStudy.patient_id, "00100020": DicomStudy.patient_id,
    "PatientName": DicomStudy.patient_name, "00100010": DicomStudy.patient_name,
    "AccessionNumber": DicomStudy.accession_number, "00080050": DicomStudy.accession_number,
    "StudyInstanceUID": DicomStudy.study_instance_uid,
    "0020000D": DicomStudy.study_instance_uid,
    "StudyDescription": DicomStudy.study_description,
    "00081030": DicomStudy.study_description,
    "StudyID": DicomStudy.study_id, "00200010": DicomStudy.study_id,
}
STUDY_DATE_KEYS = ("StudyDate", "00080020")
MODALITY_KEYS = ("ModalitiesInStudy", "00080061", "Modality", "00080060")
SERIES_KEYS = {
    "SeriesInstanceUID": DicomSeries.series_instance_uid,
    "0020000E": DicomSeries.series_instance_uid,
    "SeriesDescription": DicomSeries.series_description,
    "0008103E": DicomSeries.series_description,
}
INSTANCE_KEYS = {
    "SOPInstanceUID": DicomInstance.sop_instance_uid,
    "00080018": DicomInstance.sop_instance_uid,
    "SOPClassUID": DicomInstance.sop_class_uid, "00080016": DicomInstance.sop_class_uid,
}
CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}


def _match(column: Any, value: str) -> ColumnElement[bool]:
    """DICOM matching: a comma list is a UID list; ``*``/``?`` are wildcards (case-
    insensitive for names); otherwise exact."""
    if "," in value:
        return column.in_([v for v in value.split(",") if v])
    if "*" in value or "?" in value:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = escaped.replace("*", "%").replace("?", "_")
        return func.lower(column).like(pattern.lower(), escape="\\")
    return column == value


def _date_range(value: str) -> tuple[str, str]:
    m = DATE.match(value)
    if not m or not (m.group(1) or m.group(3)) or (m.group(2) is None and m.group(3)):
        raise ApiError(400, f"bad date match {value!r}: use YYYYMMDD or a range "
                       "YYYYMMDD-YYYYMMDD", field="StudyDate")
    for day in (m.group(1), m.group(3)):
        try:
            if day:
                datetime.strptime(day, "%Y%m%d")
        except ValueError:
            raise ApiError(400, f"{day} is not a calendar date", field="StudyDate") from None
    low = m.group(1) or "00000000"
    high = (m.group(3) or "99999999") if m.group(2) else low
    return low, high


def _paging(query: dict[str, str]) -> tuple[int, int]:
    try:
        limit = int(query.get("limit", str(MAX_LIMIT)))
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "limit and offset are integers", field="limit") from None
    if not (0 < limit <= MAX_LIMIT) or offset < 0:
        raise ApiError(400, f"limit is 1 to {MAX_LIMIT}, offset at least 0", field="limit")
    return limit, offset


def _filters(query: dict[str, str], keys: dict[str, Any],
             extra: tuple[str, ...] = ()) -> list[ColumnElement[bool]]:
    clauses = []
    for name, value in query.items():
        if name in CONTROL or name in extra:
            continue
        if name not in keys:
            raise ApiError(400, f"{name} is not a supported matching key here", field=name)
        if value:
            clauses.append(_match(keys[name], value))
    return clauses


def _study_attrs(study: DicomStudy, modalities: str, series: int, instances: int,
                 base: str) -> dict[str, Any]:
    return {
        **attr("00080020", "DA", study.study_date), **attr("00080030", "TM", study.study_time),
        **attr("00080050", "SH", study.accession_number),
        **attr("00080061", "CS", *sorted(set(filter(None, modalities.split(","))))),
        **attr("00080090", "PN", study.referring_physician_name),
        **attr("00081030", "LO", study.study_description),
        **attr("00100010", "PN", study.patient_name), **attr("00100020", "LO", study.patient_id),
        **attr("00100030", "DA", study.patient_birth_date),
        **attr("00100040", "CS", study.patient_sex),
        **attr("0020000D", "UI", study.study_instance_uid),
        **attr("00200010", "SH", study.study_id),
        **attr("00201206", "IS", series), **attr("00201208", "IS", instances),
        **attr("00081190", "UR", f"{base}/studies/{study.study_instance_uid}"),
    }


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/dicomweb"


async def search_studies(request: web.Request) -> web.Response:
    user = await caller(request)
    query = dict(request.query)
    limit, offset = _paging(query)
    study_keys = {**STUDY_KEYS}
    clauses = _filters(query, study_keys, STUDY_DATE_KEYS + MODALITY_KEYS)
    for key in STUDY_DATE_KEYS:
        if query.get(key):
            low, high = _date_range(query[key])
            clauses.append(DicomStudy.study_date.between(low, high))
    stats = (
        select(DicomSeries.study_id,
               func.count(func.distinct(DicomSeries.id)).label("series"),
               func.count(DicomInstance.id).label("instances"))
        .join(DicomInstance, DicomInstance.series_id == DicomSeries.id)
        .group_by(DicomSeries.study_id).subquery())
    stmt: Select[Any] = select(DicomStudy, stats.c.series, stats.c.instances).join(
        stats, stats.c.study_id == DicomStudy.id).where(*clauses)
    for key in MODALITY_KEYS:
        if query.get(key):
            stmt = stmt.where(DicomStudy.id.in_(select(DicomSeries.study_id).where(
                _match(DicomSeries.modality, query[key]))))
    stmt = readable_studies(user, stmt).order_by(DicomStudy.study_date.desc(), DicomStudy.id)
    async with request.app[READ_SESSIONS]() as session:
        rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
        results = []
        for study, n_series, n_instances in rows:
            modalities = ",".join(await session.scalars(
                select(DicomSeries.modality).where(DicomSeries.study_id == study.id)))
            results.append(_study_attrs(study, modalities, n_series, n_instances,
                                        _base(request)))
    for result in results:
        await record_read(request, user, "dicomweb.search_studies",
                          result["0020000D"]["Value"][0])
    return dicom_json_response(results)


async def search_series(request: web.Request) -> web.Response:
    user = await caller(request)
    study_uid = request.match_info["study"]
    query = dict(request.query)
    limit, offset = _paging(query)
    clauses = _filters(query, SERIES_KEYS, ("Modality", "00080060"))
    for key in ("Modality", "00080060"):
        if query.get(key):
            clauses.append(_match(DicomSeries.modality, query[key]))
    async with request.app[READ_SESSIONS]() as session:
        study = await require_study(session, user, study_uid)
        counts = (select(DicomInstance.series_id, func.count().label("n"))
                  .group_by(DicomInstance.series_id).subquery())
        rows = (await session.execute(
            select(DicomSeries, counts.c.n).join(counts, counts.c.series_id == DicomSeries.id)
            .where(DicomSeries.study_id == study.id, *clauses)
            .order_by(DicomSeries.series_number, DicomSeries.id).limit(limit).offset(offset)
        )).all()
    await record_read(request, user, "dicomweb.search_series", study_uid)
    return dicom_json_response([{
        **attr("0020000D", "UI", study_uid), **attr("00080060", "CS", s.modality),
        **attr("0020000E", "UI", s.series_instance_uid),
        **attr("00200011", "IS", s.series_number),
        **attr("0008103E", "LO", s.series_description),
        **attr("00180015", "CS", s.body_part_examined), **attr("00201209", "IS", n),
        **attr("00081190", "UR",
               f"{_base(request)}/studies/{study_uid}/series/{s.series_instance_uid}"),
    } for s, n in rows])


async def search_instances(request: web.Request) -> web.Response:
    user = await caller(request)
    study_uid = request.match_info["study"]
    series_uid = request.match_info.get("series")
    query = dict(request.query)
    limit, offset = _paging(query)
    clauses = _filters(query, INSTANCE_KEYS)
    async with request.app[READ_SESSIONS]() as session:
        study = await require_study(session, user, study_uid)
        stmt = (select(DicomInstance, DicomSeries)
                .join(DicomSeries, DicomSeries.id == DicomInstance.series_id)
                .where(DicomSeries.study_id == study.id, *clauses))
        if series_uid is not None:
            stmt = stmt.where(DicomSeries.series_instance_uid == series_uid)
        rows = (await session.execute(
            stmt.order_by(DicomSeries.series_number, DicomInstance.instance_number,
                          DicomInstance.id).limit(limit).offset(offset))).all()
    await record_read(request, user, "dicomweb.search_instances", study_uid)
    return dicom_json_response([{
        **attr("00080016", "UI", i.sop_class_uid), **attr("00080018", "UI", i.sop_instance_uid),
        **attr("0020000D", "UI", study_uid), **attr("0020000E", "UI", s.series_instance_uid),
        **attr("00080060", "CS", s.modality), **attr("00200013", "IS", i.instance_number),
        **attr("00280010", "US", i.rows), **attr("00280011", "US", i.columns),
        **attr("00280008", "IS", i.number_of_frames or 1),
        **attr("00081190", "UR", f"{_base(request)}/studies/{study_uid}/series/"
               f"{s.series_instance_uid}/instances/{i.sop_instance_uid}"),
    } for i, s in rows])
