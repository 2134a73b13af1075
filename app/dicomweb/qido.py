"""QIDO-RS: search the local store at every level PS3.18 names (10.6): studies, series and
instances at the root, a study's series and instances, a series' instances. A caller finds
only the studies it may read (app/dicomweb/access.py), at every level alike.

Matching (PS3.4 C.2.2.2, PS3.18 8.3.4): a value matches exactly; ``*`` and ``?`` are
wildcards; ``\\`` separates values any of which may match, and so does ``,`` for UIDs,
codes and numbers (a description may hold a comma); dates and times also match ranges
(``A-B``, ``A-``, ``-B``). Person names match without case or diacritics, through the
indexed keys of app/text_search.py; with ``fuzzymatching=true`` each word of the query
matches the start of any word of the name, in any order ("anh nguyen" finds
"Nguyễn^Thị Ánh").
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from multidict import MultiMapping
from pydicom.datadict import tag_for_keyword
from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.appkeys import READ_SESSIONS
from app.db.models import User
from app.dicomweb.access import (
    AnySelect,
    caller,
    masked_studies,
    readable_studies,
    record_read,
    require_study,
)
from app.dicomweb.deidentify import mask_where
from app.dicomweb.dicomjson import attr, dicom_json_response
from app.errors import ApiError
from app.pacs.ingest import INT32, UID
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy
from app.text_search import person_name

MAX_LIMIT = 1000
DATE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")
TIME = re.compile(r"^(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(-)?"
                  r"(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?$")
TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}

Kind = Literal["text", "code", "uid", "int", "name", "date", "time", "modalities"]


@dataclass(frozen=True)
class Key:
    """A matching key: its keyword and tag, the indexed column it matches, and how."""

    keyword: str
    tag: str
    column: InstrumentedAttribute[Any]
    kind: Kind


STUDY_KEYS = (
    Key("PatientID", "00100020", DicomStudy.patient_id, "text"),
    Key("PatientName", "00100010", DicomStudy.patient_name_search, "name"),
    Key("PatientBirthDate", "00100030", DicomStudy.patient_birth_date, "date"),
    Key("PatientSex", "00100040", DicomStudy.patient_sex, "code"),
    Key("StudyDate", "00080020", DicomStudy.study_date, "date"),
    Key("StudyTime", "00080030", DicomStudy.study_time, "time"),
    Key("AccessionNumber", "00080050", DicomStudy.accession_number, "text"),
    Key("StudyDescription", "00081030", DicomStudy.study_description, "text"),
    Key("ReferringPhysicianName", "00080090", DicomStudy.referring_physician_search, "name"),
    Key("StudyID", "00200010", DicomStudy.study_id, "text"),
    Key("StudyInstanceUID", "0020000D", DicomStudy.study_instance_uid, "uid"),
    Key("ModalitiesInStudy", "00080061", DicomSeries.modality, "modalities"),
)
SERIES_KEYS = (
    Key("Modality", "00080060", DicomSeries.modality, "code"),
    Key("SeriesInstanceUID", "0020000E", DicomSeries.series_instance_uid, "uid"),
    Key("SeriesNumber", "00200011", DicomSeries.series_number, "int"),
    Key("SeriesDescription", "0008103E", DicomSeries.series_description, "text"),
    Key("BodyPartExamined", "00180015", DicomSeries.body_part_examined, "text"),
)
INSTANCE_KEYS = (
    Key("SOPInstanceUID", "00080018", DicomInstance.sop_instance_uid, "uid"),
    Key("SOPClassUID", "00080016", DicomInstance.sop_class_uid, "uid"),
    Key("InstanceNumber", "00200013", DicomInstance.instance_number, "int"),
)


def _by_name(*keys: Key) -> dict[str, Key]:
    return {name: key for key in keys for name in (key.keyword, key.tag)}


# Each level matches its own attributes and those of the levels above it. At study level
# Modality stands for ModalitiesInStudy, as clients written against older PACS send it.
STUDY_LEVEL = _by_name(*STUDY_KEYS, Key("Modality", "00080060", DicomSeries.modality,
                                        "modalities"))
SERIES_LEVEL = _by_name(*STUDY_KEYS, *SERIES_KEYS)
INSTANCE_LEVEL = _by_name(*STUDY_KEYS, *SERIES_KEYS, *INSTANCE_KEYS)


# --- Matching -------------------------------------------------------------------------------

def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, message, field=name)


def _like(pattern: str) -> str:
    """A DICOM wildcard pattern as a LIKE pattern (escape character ``\\``)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _prefix_range(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix``, as a range an ordinary index serves."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if ord(prefix[-1]) < 0x10FFFF else None
    return column >= prefix if upper is None else and_(column >= prefix, column < upper)


def _name_match(column: InstrumentedAttribute[Any], value: str,
                fuzzy: bool) -> ColumnElement[bool] | None:
    key = person_name(value)
    if not key.replace("*", "").strip():
        return None  # nothing but wildcards: every name matches
    if fuzzy:
        # Each query word starts some word of the name: " nguyen thi anh" LIKE "% anh%".
        spaced = literal(" ") + column
        return and_(*(spaced.like(f"% {_like(word)}%", escape="\\") for word in key.split()))
    if "*" not in key and "?" not in key:
        return column == key
    prefix = re.split(r"[*?]", key, maxsplit=1)[0]
    pattern = column.like(_like(key), escape="\\")
    return and_(_prefix_range(column, prefix), pattern) if prefix else pattern


def _values(key: Key, name: str, value: str) -> list[str]:
    separators = r"[\\,]" if key.kind in ("uid", "code", "int", "modalities") else r"\\"
    values = [v for v in re.split(separators, value) if v]
    if key.kind == "uid":
        bad = [v for v in values if len(v) > 64 or not UID.match(v)]
        if bad:
            raise _bad(name, f"{name} takes UIDs, separated by commas: {bad[0][:80]!r} is "
                       "not one")
    if key.kind == "int" and not all(re.fullmatch(r"-?[0-9]{1,10}", v)
                                     and INT32[0] <= int(v) <= INT32[1] for v in values):
        raise _bad(name, f"{name} takes integers, separated by commas")
    return values


def _text_match(column: InstrumentedAttribute[Any], value: str) -> ColumnElement[bool]:
    if "*" in value or "?" in value:
        return func.lower(column).like(_like(value).lower(), escape="\\")
    return column == value


def _range(key: Key, name: str, value: str) -> ColumnElement[bool]:
    pattern = DATE if key.kind == "date" else TIME
    m = pattern.match(value)
    if not m or not (m.group(1) or m.group(3)) or (m.group(2) is None and m.group(3)):
        form = "YYYYMMDD" if key.kind == "date" else "HHMMSS"
        raise _bad(name, f"bad {name} match {value!r}: use {form} or a range {form}-{form}")
    if key.kind == "date":
        for day in (m.group(1), m.group(3)):
            try:
                if day:
                    datetime.strptime(day, "%Y%m%d")
            except ValueError:
                raise _bad(name, f"{day} is not a calendar date") from None
    low, dash, high = m.group(1), m.group(2), m.group(3)
    if not dash:
        return key.column == low
    if low and high and low > high:
        raise _bad(name, f"the {name} range {value!r} ends before it starts")
    bounds = []
    if low:
        bounds.append(key.column >= low)
    if high:
        bounds.append(key.column <= high)
    # An empty value is "unknown": it matches no range.
    return and_(key.column != "", *bounds)


def _clause(key: Key, name: str, value: str, fuzzy: bool) -> ColumnElement[bool] | None:
    if value in ("", "*"):
        return None  # universal matching
    if key.kind in ("date", "time"):
        return _range(key, name, value)
    values = _values(key, name, value)
    if not values:
        return None
    if key.kind in ("uid", "int"):
        return key.column.in_([int(v) for v in values] if key.kind == "int" else values)
    if key.kind == "name":
        names = [_name_match(key.column, v, fuzzy) for v in values]
        if any(m is None for m in names):
            return None
        return or_(*(m for m in names if m is not None))
    matches = [_text_match(key.column, v) for v in values]
    clause = or_(*matches)
    if key.kind == "modalities":
        return DicomStudy.id.in_(select(DicomSeries.study_id).where(clause))
    return clause


# --- Query parameters -----------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    clauses: list[ColumnElement[bool]]
    limit: int
    offset: int
    query: str  # as the client sent it, for the audit trail


def _one(query: MultiMapping[str], name: str, default: str) -> str:
    values = query.getall(name, [default])
    if len(values) > 1:
        raise _bad(name, f"give {name} once")
    return values[0]


def _integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = _one(query, name, str(default))
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise _bad(name, f"{name} is an integer from {low} to {high}")
    return int(raw)


def _check_includefield(query: MultiMapping[str]) -> None:
    """``includefield`` names attributes (keyword or tag) or ``all``. Every attribute the
    index holds is returned anyway, so a valid list changes nothing; a bad one is a 400."""
    for value in query.getall("includefield", []):
        for item in filter(None, value.split(",")):
            if item != "all" and not TAG.match(item) and tag_for_keyword(item) is None:
                raise _bad("includefield", f"{item!r} is no DICOM attribute keyword or tag")


def _search(request: web.Request, keys: dict[str, Key]) -> Search:
    query = request.query
    fuzzy = _one(query, "fuzzymatching", "false").lower()
    if fuzzy not in ("true", "false"):
        raise _bad("fuzzymatching", "fuzzymatching is true or false")
    _check_includefield(query)
    clauses = []
    for name in dict.fromkeys(query.keys()):
        if name in CONTROL:
            continue
        key = keys.get(name) or (keys.get(name.upper()) if TAG.match(name) else None)
        if key is None:
            raise _bad(name, f"{name} is not a supported matching key here")
        clause = _clause(key, name, _one(query, name, ""), fuzzy == "true")
        if clause is not None:
            clauses.append(clause)
    return Search(clauses, _integer(query, "limit", MAX_LIMIT, 1, MAX_LIMIT),
                  _integer(query, "offset", 0, 0, 2**31 - 1), request.query_string[:500])


# --- Results --------------------------------------------------------------------------------

def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/dicomweb"


def _study_attrs(study: DicomStudy) -> dict[str, Any]:
    return {
        **attr("00080020", "DA", study.study_date), **attr("00080030", "TM", study.study_time),
        **attr("00080050", "SH", study.accession_number),
        **attr("00080090", "PN", study.referring_physician_name),
        **attr("00081030", "LO", study.study_description),
        **attr("00100010", "PN", study.patient_name), **attr("00100020", "LO", study.patient_id),
        **attr("00100030", "DA", study.patient_birth_date),
        **attr("00100040", "CS", study.patient_sex),
        **attr("0020000D", "UI", study.study_instance_uid),
        **attr("00200010", "SH", study.study_id),
    }


def _series_attrs(series: DicomSeries, study_uid: str) -> dict[str, Any]:
    return {
        **attr("0020000D", "UI", study_uid), **attr("00080060", "CS", series.modality),
        **attr("0020000E", "UI", series.series_instance_uid),
        **attr("00200011", "IS", series.series_number),
        **attr("0008103E", "LO", series.series_description),
        **attr("00180015", "CS", series.body_part_examined),
    }


async def _audit(request: web.Request, user: User, action: str, search: Search,
                 study_uids: list[str]) -> None:
    detail = {"query": search.query} if search.query else {}
    for study_uid in dict.fromkeys(study_uids):
        await record_read(request, user, action, study_uid, detail)


async def _study_stats(session: AsyncSession, ids: list[int]
                       ) -> tuple[dict[int, set[str]], dict[int, int], dict[int, int]]:
    """Modalities, series and instances of each of these studies, in two queries."""
    modalities: dict[int, set[str]] = defaultdict(set)
    series: dict[int, int] = defaultdict(int)
    for study_id, modality, n in await session.execute(
            select(DicomSeries.study_id, DicomSeries.modality, func.count())
            .where(DicomSeries.study_id.in_(ids))
            .group_by(DicomSeries.study_id, DicomSeries.modality)):
        series[study_id] += n
        if modality:
            modalities[study_id].add(modality)
    instances = dict((await session.execute(
        select(DicomSeries.study_id, func.count(DicomInstance.id))
        .join(DicomInstance, DicomInstance.series_id == DicomSeries.id)
        .where(DicomSeries.study_id.in_(ids)).group_by(DicomSeries.study_id))).all())
    return modalities, series, instances


async def _instance_counts(session: AsyncSession, series_ids: list[int]) -> dict[int, int]:
    return dict((await session.execute(
        select(DicomInstance.series_id, func.count()).where(
            DicomInstance.series_id.in_(series_ids))
        .group_by(DicomInstance.series_id))).all())


def _page(stmt: AnySelect, search: Search) -> AnySelect:
    return stmt.limit(search.limit).offset(search.offset)


# --- Handlers -------------------------------------------------------------------------------

async def search_studies(request: web.Request) -> web.Response:
    user = await caller(request)
    search = _search(request, STUDY_LEVEL)
    stmt = readable_studies(user, select(DicomStudy).where(*search.clauses)).order_by(
        DicomStudy.study_date.desc(), DicomStudy.id)
    async with request.app[READ_SESSIONS]() as session:
        studies = list(await session.scalars(_page(stmt, search)))
        modalities, series, instances = await _study_stats(session, [s.id for s in studies])
    base = _base(request)
    results = [{
        **_study_attrs(s), **attr("00080061", "CS", *sorted(modalities[s.id])),
        **attr("00201206", "IS", series[s.id]), **attr("00201208", "IS", instances.get(s.id, 0)),
        **attr("00081190", "UR", f"{base}/studies/{s.study_instance_uid}"),
    } for s in studies]
    await _audit(request, user, "dicomweb.search_studies", search,
                 [s.study_instance_uid for s in studies])
    return dicom_json_response(mask_where(results, await masked_studies(request, user)))


async def search_series(request: web.Request) -> web.Response:
    """``/series`` (every readable study) or ``/studies/{study}/series``."""
    user = await caller(request)
    study_uid = request.match_info.get("study")
    search = _search(request, SERIES_LEVEL)
    stmt = (select(DicomSeries, DicomStudy)
            .join(DicomStudy, DicomStudy.id == DicomSeries.study_id).where(*search.clauses))
    order = (DicomSeries.series_number.nulls_last(), DicomSeries.id)
    async with request.app[READ_SESSIONS]() as session:
        if study_uid is None:
            stmt = readable_studies(user, stmt).order_by(
                DicomStudy.study_date.desc(), DicomStudy.id, *order)
        else:
            study = await require_study(request, session, user, study_uid)
            stmt = stmt.where(DicomSeries.study_id == study.id).order_by(*order)
        rows = (await session.execute(_page(stmt, search))).all()
        counts = await _instance_counts(session, [s.id for s, _ in rows])
    base = _base(request)
    results = [{
        **(_study_attrs(st) if study_uid is None else {}),
        **_series_attrs(s, st.study_instance_uid),
        **attr("00201209", "IS", counts.get(s.id, 0)),
        **attr("00081190", "UR",
               f"{base}/studies/{st.study_instance_uid}/series/{s.series_instance_uid}"),
    } for s, st in rows]
    await _audit(request, user, "dicomweb.search_series", search,
                 [study_uid] if study_uid else [st.study_instance_uid for _, st in rows])
    return dicom_json_response(mask_where(results, await masked_studies(request, user)))


async def search_instances(request: web.Request) -> web.Response:
    """``/instances``, ``/studies/{study}/instances`` or
    ``/studies/{study}/series/{series}/instances``."""
    user = await caller(request)
    study_uid = request.match_info.get("study")
    series_uid = request.match_info.get("series")
    search = _search(request, INSTANCE_LEVEL)
    stmt = (select(DicomInstance, DicomSeries, DicomStudy)
            .join(DicomSeries, DicomSeries.id == DicomInstance.series_id)
            .join(DicomStudy, DicomStudy.id == DicomSeries.study_id).where(*search.clauses))
    order = (DicomSeries.series_number.nulls_last(), DicomSeries.id,
             DicomInstance.instance_number.nulls_last(), DicomInstance.id)
    async with request.app[READ_SESSIONS]() as session:
        if study_uid is None:
            stmt = readable_studies(user, stmt).order_by(
                DicomStudy.study_date.desc(), DicomStudy.id, *order)
        else:
            study = await require_study(request, session, user, study_uid)
            stmt = stmt.where(DicomSeries.study_id == study.id).order_by(*order)
            if series_uid is not None:
                stmt = stmt.where(DicomSeries.series_instance_uid == series_uid)
        rows = (await session.execute(_page(stmt, search))).all()
    base = _base(request)
    results = [{
        **(_study_attrs(st) if study_uid is None else {}),
        **(_series_attrs(s, st.study_instance_uid) if series_uid is None else {}),
        **attr("0020000D", "UI", st.study_instance_uid),
        **attr("0020000E", "UI", s.series_instance_uid),
        **attr("00080016", "UI", i.sop_class_uid), **attr("00080018", "UI", i.sop_instance_uid),
        **attr("00200013", "IS", i.instance_number),
        **attr("00280010", "US", i.rows), **attr("00280011", "US", i.columns),
        **attr("00280008", "IS", i.number_of_frames or 1),
        **attr("00081190", "UR", f"{base}/studies/{st.study_instance_uid}/series/"
               f"{s.series_instance_uid}/instances/{i.sop_instance_uid}"),
    } for i, s, st in rows]
    await _audit(request, user, "dicomweb.search_instances", search,
                 [study_uid] if study_uid else [st.study_instance_uid for _, _, st in rows])
    return dicom_json_response(mask_where(results, await masked_studies(request, user)))
