"""Remote PACS nodes (admins configure them), searching them and importing studies from them
into a consultation's case (coordinators)."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from app import audit
from app.api.routing import ADMIN, STAFF, Api, Body, Ctx, Out, Query
from app.api.schemas import Id
from app.db.models import Case, Consultation, ConsultationStatus, Hospital
from app.errors import ApiError, not_found
from app.pacs import dicomweb_client, dimse_client
from app.pacs.imports import IMPORTER, find_studies, find_study, peer
from app.pacs.ingest import UID
from app.pacs.models import ImportJob, ImportStatus, NodeKind, PacsNode, Retrieve
from app.pacs.query import RemoteError, RemoteSeries, RemoteStudy, StudyQuery
from app.pacs.setup import refresh_callers

api = Api()

# PS3.5 AE: 1-16 characters, no backslash or control characters, not only spaces.
AeTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16,
                                           pattern=r"^[\x20-\x5b\x5d-\x7e]+$")]


def _ipv6_if_colons(host: str) -> str:
    # A colon is only ever part of an IPv6 address here; anything else is refused at once
    # rather than when the node is first called.
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("not a host name nor an IP address") from None
    return host


def _parses_as_url(value: str) -> str:
    # The pattern admits bracketed text that is no IPv6 address ("http://[0]"), which yarl
    # also lets through until a request is built from it.
    try:
        host = URL(value).raw_host or ""
        if value.split("//", 1)[1].startswith("["):
            ipaddress.IPv6Address(host)
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    return value


Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255,
                                        pattern=r"^[A-Za-z0-9._:-]+$"),
                 AfterValidator(_ipv6_if_colons)]
Port = Annotated[int, Field(ge=1, le=65535)]
# An http(s) base URL with an ASCII host name or address; no query nor fragment.
Url = Annotated[str, StringConstraints(
    strip_whitespace=True, max_length=500,
    pattern=r'^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!"$->@-~]*)?$'),
    AfterValidator(_parses_as_url)]
NodeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=64)]
Uid = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=UID.pattern)]
# What a PACS matches on: no backslash (a DICOM value separator) nor control characters.
Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                       pattern=r"^[^\\\x00-\x1f]+$")]
Modality = Annotated[str, StringConstraints(min_length=1, max_length=16,
                                            pattern=r"^[A-Z0-9_]+$")]
SEARCH_LIMIT = 200
TEXT_FIELDS = frozenset({"ae_title", "host", "dicomweb_url"})


class PacsNodeOut(Out):
    id: int
    name: str
    kind: NodeKind
    ae_title: str
    host: str
    port: int | None
    retrieve: Retrieve
    dicomweb_url: str
    hospital_id: int | None
    created_at: datetime


class PacsNodeIn(Body):
    """A DIMSE node needs ``ae_title``, ``host`` and ``port``; a DICOMweb node its base URL
    (the one its ``/studies`` hangs under)."""

    name: NodeName
    kind: NodeKind
    ae_title: AeTitle | None = None
    host: Host | None = None
    port: Port | None = None
    retrieve: Retrieve = Retrieve.c_move
    dicomweb_url: Url | None = None
    hospital_id: Id | None = None

    @model_validator(mode="after")
    def _complete(self) -> PacsNodeIn:
        _check_complete(self.kind, self.ae_title, self.host, self.port, self.dicomweb_url)
        return self


class PacsNodePatch(Body):
    name: NodeName | None = None
    ae_title: AeTitle | None = None
    host: Host | None = None
    port: Port | None = None
    retrieve: Retrieve | None = None
    dicomweb_url: Url | None = None
    hospital_id: Id | None = None


def _check_complete(kind: NodeKind, ae_title: str | None, host: str | None, port: int | None,
                    url: str | None) -> None:
    if kind is NodeKind.dimse and not (ae_title and host and port):
        raise ValueError("a DIMSE node needs ae_title, host and port")
    if kind is NodeKind.dicomweb and not url:
        raise ValueError("a DICOMweb node needs dicomweb_url")


class Verified(Out):
    status: str
    message: str


class StudySearch(Query):
    patient_id: Key | None = None
    patient_name: Key | None = None
    patient_birth_date: date | None = None
    study_date_from: date | None = None
    study_date_to: date | None = None
    modality: Modality | None = None
    accession_number: Key | None = None
    limit: Annotated[int, Field(ge=1, le=SEARCH_LIMIT)] = 50

    @model_validator(mode="after")
    def _some_criterion(self) -> StudySearch:
        if not any(v is not None for k, v in self.model_dump().items() if k != "limit"):
            raise ValueError("give at least one search criterion")
        if (self.study_date_from and self.study_date_to
                and self.study_date_from > self.study_date_to):
            raise ValueError("study_date_from is after study_date_to")
        return self


class ImportIn(Body):
    node_id: Id
    study_instance_uid: Uid


class ImportOut(Out):
    id: int
    node_id: int | None
    case_id: int
    study_instance_uid: str
    status: ImportStatus
    instances_total: int | None
    instances_done: int
    instances_failed: int
    error: str
    attempts: int
    created_at: datetime
    updated_at: datetime


def _remote_failure(exc: RemoteError) -> ApiError:
    return ApiError(502, f"the PACS node failed: {exc}", code="pacs_error")


async def _node(session: AsyncSession, node_id: int, *, field: str | None = None) -> PacsNode:
    node = await session.get(PacsNode, node_id)
    if node is None:
        if field:
            raise ApiError(422, "no such PACS node", field=field)
        raise not_found("PACS node")
    return node


async def _check_hospital(session: AsyncSession, hospital_id: int | None) -> None:
    if hospital_id is not None and await session.get(Hospital, hospital_id) is None:
        raise ApiError(422, "no such hospital", field="hospital_id")


async def _unique_name(session: AsyncSession, name: str, node_id: int | None) -> None:
    other = await session.scalar(select(PacsNode.id).where(PacsNode.name == name))
    if other is not None and other != node_id:
        raise ApiError(409, f"a PACS node named {name} exists", field="name")


@api.route("GET", "/api/pacs-nodes", summary="The configured PACS nodes", tag="pacs",
           roles=STAFF, response=list[PacsNodeOut])
async def list_nodes(ctx: Ctx) -> list[PacsNode]:
    async with ctx.sessions() as session:
        return list(await session.scalars(select(PacsNode).order_by(PacsNode.name)))


@api.route("POST", "/api/pacs-nodes", summary="Configure a PACS node", tag="pacs",
           roles=ADMIN, body=PacsNodeIn, response=PacsNodeOut, status=201, errors=(409,))
async def create_node(ctx: Ctx, body: PacsNodeIn) -> PacsNode:
    async with ctx.sessions.begin() as session:
        await _unique_name(session, body.name, None)
        await _check_hospital(session, body.hospital_id)
        fields = body.model_dump()
        node = PacsNode(**{k: "" if v is None and k in TEXT_FIELDS else v
                           for k, v in fields.items()})
        session.add(node)
        try:
            await session.flush()
        except IntegrityError:
            raise ApiError(409, f"a PACS node named {body.name} exists", field="name") from None
        audit.record(session, "pacs_node.create", actor=ctx.me, object_type="pacs_node",
                     object_id=node.id, client_addr=ctx.client_addr,
                     detail=body.model_dump(mode="json"))
    await refresh_callers(ctx.request.app)
    return node


@api.route("GET", "/api/pacs-nodes/{node_id}", summary="One PACS node", tag="pacs",
           roles=STAFF, response=PacsNodeOut)
async def get_node(ctx: Ctx) -> PacsNode:
    async with ctx.sessions() as session:
        return await _node(session, ctx.path_id("node_id"))


@api.route("PATCH", "/api/pacs-nodes/{node_id}", summary="Change a PACS node", tag="pacs",
           roles=ADMIN, body=PacsNodePatch, response=PacsNodeOut, errors=(409,))
async def patch_node(ctx: Ctx, body: PacsNodePatch) -> PacsNode:
    async with ctx.sessions.begin() as session:
        node = await _node(session, ctx.path_id("node_id"))
        changes = body.model_dump(exclude_unset=True)
        if body.name is not None:
            await _unique_name(session, body.name, node.id)
        await _check_hospital(session, body.hospital_id)
        for key, value in changes.items():
            if value is None and key in ("name", "retrieve"):
                raise ApiError(422, f"{key} may not be null", field=key)
            # null clears a field: text columns hold "" for "none", the others NULL.
            setattr(node, key, "" if value is None and key in TEXT_FIELDS else value)
        try:
            _check_complete(node.kind, node.ae_title, node.host, node.port, node.dicomweb_url)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        audit.record(session, "pacs_node.update", actor=ctx.me, object_type="pacs_node",
                     object_id=node.id, client_addr=ctx.client_addr,
                     detail=body.model_dump(mode="json", exclude_unset=True))
    await refresh_callers(ctx.request.app)
    return node


@api.route("DELETE", "/api/pacs-nodes/{node_id}", summary="Remove a PACS node", tag="pacs",
           roles=ADMIN, status=204, errors=(409,))
async def delete_node(ctx: Ctx) -> None:
    """Refused while an import from it is queued or running; past imports keep their record
    without the node."""
    async with ctx.sessions.begin() as session:
        node = await _node(session, ctx.path_id("node_id"))
        if await session.scalar(select(ImportJob.id).where(
                ImportJob.node_id == node.id,
                ImportJob.status.in_((ImportStatus.queued, ImportStatus.running)))):
            raise ApiError(409, "an import from this node is in progress", code="busy")
        await session.delete(node)
        audit.record(session, "pacs_node.delete", actor=ctx.me, object_type="pacs_node",
                     object_id=node.id, client_addr=ctx.client_addr,
                     detail={"name": node.name})
    await refresh_callers(ctx.request.app)


@api.route("POST", "/api/pacs-nodes/{node_id}/verify", summary="Check that a PACS node "
           "answers (C-ECHO, or a QIDO-RS query)", tag="pacs", roles=STAFF, response=Verified,
           errors=(502,))
async def verify_node(ctx: Ctx) -> Verified:
    async with ctx.sessions() as session:
        node = await _node(session, ctx.path_id("node_id"))
    try:
        if node.kind is NodeKind.dimse:
            await asyncio.to_thread(dimse_client.echo, peer(node, ctx.settings.dicom_ae_title))
            return Verified(status="ok", message=f"C-ECHO to {node.ae_title} succeeded")
        await dicomweb_client.find_studies(node.dicomweb_url, StudyQuery(), 1)
        return Verified(status="ok", message="QIDO-RS answered")
    except RemoteError as exc:
        raise _remote_failure(exc) from None


@api.route("GET", "/api/pacs-nodes/{node_id}/studies", summary="Search a PACS node's "
           "studies", tag="pacs", roles=STAFF, query=StudySearch,
           response=list[RemoteStudy], errors=(502,))
async def search_studies(ctx: Ctx, query: StudySearch) -> list[RemoteStudy]:
    """Patient name matches any part of the name (``*`` and ``?`` are DICOM wildcards);
    the other keys match exactly. Every search is an audit event (it reads patient data)."""
    criteria = query.model_dump(exclude={"limit"}, exclude_none=True)
    async with ctx.sessions() as session:
        node = await _node(session, ctx.path_id("node_id"))
    try:
        found = await find_studies(node, ctx.settings.dicom_ae_title,
                                   StudyQuery(**criteria), query.limit)
    except RemoteError as exc:
        raise _remote_failure(exc) from None
    async with ctx.sessions.begin() as session:
        audit.record(session, "pacs.search", actor=ctx.me, object_type="pacs_node",
                     object_id=node.id, client_addr=ctx.client_addr,
                     detail={"criteria": {k: str(v) for k, v in criteria.items()},
                             "found": len(found)})
    return found


@api.route("GET", "/api/pacs-nodes/{node_id}/studies/{study_instance_uid}/series",
           summary="The series of a study on a PACS node", tag="pacs", roles=STAFF,
           response=list[RemoteSeries], errors=(502,))
async def search_series(ctx: Ctx) -> list[RemoteSeries]:
    study_uid = _path_uid(ctx)
    async with ctx.sessions() as session:
        node = await _node(session, ctx.path_id("node_id"))
    try:
        if node.kind is NodeKind.dicomweb:
            found = await dicomweb_client.find_series(node.dicomweb_url, study_uid,
                                                      SEARCH_LIMIT)
        else:
            found = await asyncio.to_thread(
                dimse_client.find_series, peer(node, ctx.settings.dicom_ae_title), study_uid,
                SEARCH_LIMIT)
    except RemoteError as exc:
        raise _remote_failure(exc) from None
    async with ctx.sessions.begin() as session:
        audit.record(session, "pacs.search", actor=ctx.me, object_type="pacs_node",
                     object_id=node.id, client_addr=ctx.client_addr,
                     detail={"study": study_uid, "found": len(found)})
    return found


def _path_uid(ctx: Ctx) -> str:
    raw = ctx.request.match_info["study_instance_uid"]
    if len(raw) > 64 or not UID.fullmatch(raw):
        raise not_found("study")
    return raw


async def _case(ctx: Ctx, session: AsyncSession) -> Case:
    stmt = (select(Case).join(Consultation, Consultation.id == Case.consultation_id)
            .where(Consultation.id == ctx.path_id("consultation_id"),
                   Case.id == ctx.path_id("case_id")))
    case = await session.scalar(stmt)
    if case is None:
        raise not_found("case")
    return case


@api.route("POST", "/api/consultations/{consultation_id}/cases/{case_id}/imports",
           summary="Import a study from a PACS node into a case", tag="pacs", roles=STAFF,
           body=ImportIn, response=ImportOut, status=202, errors=(409, 502))
async def start_import(ctx: Ctx, body: ImportIn) -> ImportJob:
    """The node is asked for the study first: it must have it, for the case's patient. The
    import then runs in the background (poll ``GET /api/imports/{import_id}``); when every
    instance is here the study is attached to the case."""
    async with ctx.sessions() as session:
        case = await _case(ctx, session)
        consultation = await session.get(Consultation, case.consultation_id)
        assert consultation is not None
        node = await _node(session, body.node_id, field="node_id")
    if consultation.status in (ConsultationStatus.ended, ConsultationStatus.cancelled):
        raise ApiError(409, f"consultation is {consultation.status.value}",
                       code="wrong_status")
    try:
        study = await find_study(node, ctx.settings.dicom_ae_title, body.study_instance_uid)
    except RemoteError as exc:
        raise _remote_failure(exc) from None
    if study is None:
        raise ApiError(422, "the node has no such study", field="study_instance_uid")
    if case.patient_id and study.patient_id and study.patient_id != case.patient_id:
        raise ApiError(409, f"the study is of patient {study.patient_id}, the case of "
                       f"{case.patient_id}", code="patient_mismatch")
    async with ctx.sessions.begin() as session:
        if await session.scalar(select(ImportJob.id).where(
                ImportJob.case_id == case.id,
                ImportJob.study_instance_uid == body.study_instance_uid,
                ImportJob.status.in_((ImportStatus.queued, ImportStatus.running)))):
            raise ApiError(409, "this study is being imported into this case",
                           code="import_running")
        job = ImportJob(node_id=node.id, case_id=case.id,
                        study_instance_uid=body.study_instance_uid,
                        instances_total=study.number_of_instances, requested_by_id=ctx.me.id)
        session.add(job)
        await session.flush()
        audit.record(session, "pacs.import", actor=ctx.me, object_type="import",
                     object_id=job.id, consultation_id=case.consultation_id,
                     client_addr=ctx.client_addr,
                     detail={"node": node.name, "study": body.study_instance_uid,
                             "patient_id": study.patient_id, "case_id": case.id})
    ctx.request.app[IMPORTER].submit(job.id)
    return job


@api.route("GET", "/api/consultations/{consultation_id}/imports", summary="The imports "
           "into a consultation's cases", tag="pacs", roles=STAFF, response=list[ImportOut])
async def list_imports(ctx: Ctx) -> list[ImportJob]:
    async with ctx.sessions() as session:
        if await session.get(Consultation, ctx.path_id("consultation_id")) is None:
            raise not_found("consultation")
        return list(await session.scalars(
            select(ImportJob).join(Case, Case.id == ImportJob.case_id)
            .where(Case.consultation_id == ctx.path_id("consultation_id"))
            .order_by(ImportJob.id)))


@api.route("GET", "/api/imports/{import_id}", summary="An import's progress", tag="pacs",
           roles=STAFF, response=ImportOut)
async def get_import(ctx: Ctx) -> ImportJob:
    async with ctx.sessions() as session:
        job = await session.get(ImportJob, ctx.path_id("import_id"))
    if job is None:
        raise not_found("import")
    return job


@api.route("POST", "/api/imports/{import_id}/retry", summary="Run a failed import again",
           tag="pacs", roles=STAFF, response=ImportOut, status=202, errors=(409,))
async def retry_import(ctx: Ctx) -> ImportJob:
    async with ctx.sessions.begin() as session:
        job = await session.scalar(select(ImportJob).where(
            ImportJob.id == ctx.path_id("import_id")).with_for_update(of=ImportJob))
        if job is None:
            raise not_found("import")
        if job.status is not ImportStatus.failed:
            raise ApiError(409, f"import is {job.status.value}; only a failed one is retried",
                           code="wrong_status")
        if job.node_id is None:
            raise ApiError(409, "the PACS node of this import was removed", code="no_node")
        job.status, job.error = ImportStatus.queued, ""
        audit.record(session, "pacs.import.retry", actor=ctx.me, object_type="import",
                     object_id=job.id, consultation_id=job.case.consultation_id,
                     client_addr=ctx.client_addr, detail={"attempts": job.attempts})
    ctx.request.app[IMPORTER].submit(job.id)
    return job
