"""The consultation minutes (biên bản hội chẩn): drafted by the chair (the host) and the
secretary the chair names, signed by both, then never changed; an amendment is the next
version, with its reason. Every step, refused ones included, is audited; the room hears of
each saved change (``minutes:updated``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pydicom
from aiohttp import web
from pydantic import StringConstraints
from pyhanko.sign.signers import Signer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api.break_glass import require_patient_data
from app.api.consents import case_consents
from app.api.consultations import UserBrief, load_consultation
from app.api.routing import ANY_USER, Api, Body, Ctx, File, Out, Query
from app.api.schemas import Id
from app.appkeys import ROOM_NOTIFY
from app.config import Settings
from app.db.models import (
    Consultation,
    ConsultationStatus,
    Minutes,
    MinutesSignoff,
    MinutesStatus,
    User,
)
from app.db.types import utcnow
from app.errors import ApiError, forbidden, not_found
from app.minutes import key_objects
from app.minutes.assemble import minutes_document
from app.minutes.attendance import attendance
from app.minutes.content import KeyImageMark, MinutesContent, digest, missing_for_signing
from app.minutes.document import KeyImage
from app.minutes.fhir import minutes_bundle
from app.minutes.pdf import render_pdf
from app.minutes.signing import load_signer, sign_pdf
from app.pacs import dicomweb_client, dimse_client, imports
from app.pacs.models import (
    DicomInstance,
    DicomSeries,
    DicomStudy,
    ImportJob,
    ImportStatus,
    NodeKind,
    PacsNode,
)
from app.pacs.query import RemoteError
from app.pacs.setup import INGESTER
from app.pacs.store import store_root
from app.roles import RoomRole
from app.scheduling import access

api = Api()

CHAIR = "chair"
SECRETARY = "secretary"
SIGNER_ROLES = (CHAIR, SECRETARY)
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


# ---- requests and responses ---------------------------------------------------------------

class MinutesIn(Body):
    content: MinutesContent
    #: The revision the edit was made on; omitted only when the minutes are first written.
    revision: int | None = None


class SecretaryIn(Body):
    user_id: Id
    revision: int | None = None


class SignIn(Body):
    revision: int


class AmendIn(Body):
    reason: Reason


class AttendeeOut(Out):
    user_id: int
    name: str
    hospital: str
    tier: str
    role: str
    attended_from: datetime
    attended_to: datetime | None


class SignoffOut(Out):
    role: str
    user: UserBrief
    signed_at: datetime
    content_sha256: str


class MinutesOut(Out):
    consultation_id: int
    version: int
    status: MinutesStatus
    revision: int
    content: MinutesContent
    secretary: UserBrief | None
    attendees: list[AttendeeOut]
    signoffs: list[SignoffOut]
    missing: list[str]
    amendment_reason: str
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    versions: list[int]


# ---- reading ------------------------------------------------------------------------------

async def _versions(session: AsyncSession, consultation_id: int) -> list[Minutes]:
    return list((await session.scalars(
        select(Minutes).where(Minutes.consultation_id == consultation_id)
        .order_by(Minutes.version))).all())


async def _out(session: AsyncSession, m: Minutes, versions: list[int]) -> MinutesOut:
    content = MinutesContent.model_validate(m.content)
    if m.attendees is not None:
        attendees = [AttendeeOut.model_validate(a) for a in m.attendees]
    else:
        attendees = [AttendeeOut.model_validate(a.as_json())
                     for a in await attendance(session, m.consultation_id)]
    return MinutesOut(
        consultation_id=m.consultation_id, version=m.version, status=m.status,
        revision=m.revision, content=content,
        secretary=UserBrief.model_validate(m.secretary) if m.secretary else None,
        attendees=attendees, signoffs=[SignoffOut.model_validate(s) for s in m.signoffs],
        missing=missing_for_signing(content, m.secretary_id) if m.status is
        MinutesStatus.draft else [],
        amendment_reason=m.amendment_reason, created_at=m.created_at, updated_at=m.updated_at,
        signed_at=m.signed_at, versions=versions)


async def _reloaded(session: AsyncSession, m: Minutes) -> MinutesOut:
    await session.flush()
    await session.refresh(m, ["secretary", "signoffs"])
    versions = [v.version for v in await _versions(session, m.consultation_id)]
    return await _out(session, m, versions)


@api.route("GET", "/api/consultations/{consultation_id}/minutes", summary="The latest "
           "version of the minutes", tag="minutes", roles=ANY_USER, response=MinutesOut,
           errors=(403,))
async def read_minutes(ctx: Ctx) -> MinutesOut:
    """Drafts list the attendees as the room's presence has them now; a signed version, as
    they were when it was signed."""
    await require_patient_data(ctx, "minutes.read", "the minutes")
    async with ctx.sessions() as session:
        c = await load_consultation(ctx, session)
        versions = await _versions(session, c.id)
        if not versions:
            raise not_found("minutes")
        return await _out(session, versions[-1], [v.version for v in versions])


@api.route("GET", "/api/consultations/{consultation_id}/minutes/versions/{version}",
           summary="One version of the minutes", tag="minutes", roles=ANY_USER,
           response=MinutesOut, errors=(403,))
async def read_minutes_version(ctx: Ctx) -> MinutesOut:
    number = ctx.path_id("version")
    await require_patient_data(ctx, "minutes.read", "the minutes")
    async with ctx.sessions() as session:
        c = await load_consultation(ctx, session)
        versions = await _versions(session, c.id)
        found = next((v for v in versions if v.version == number), None)
        if found is None:
            raise not_found("version")
        return await _out(session, found, [v.version for v in versions])


# ---- writing ------------------------------------------------------------------------------

def _is_chair(c: Consultation, user: User) -> bool:
    return access.room_role(c, user) is RoomRole.host


def _signer_role(c: Consultation, m: Minutes, user: User) -> str | None:
    if _is_chair(c, user):
        return CHAIR
    return SECRETARY if m.secretary_id == user.id else None


def _editable(c: Consultation, m: Minutes | None, user: User,
              revision: int | None) -> ApiError | None:
    """Why this user may not change the draft now, if they may not."""
    if c.status is ConsultationStatus.cancelled:
        return ApiError(409, "consultation is cancelled", code="wrong_status")
    if m is None:
        return None if _is_chair(c, user) else forbidden(
            "only the chair (the host) starts the minutes")
    if _signer_role(c, m, user) is None:
        return forbidden("only the chair and the secretary write the minutes")
    if m.status is MinutesStatus.signed:
        return ApiError(409, f"version {m.version} is signed and never changes; amend it "
                        "to write a new version", code="minutes_signed")
    if m.signoffs:
        return ApiError(409, f"version {m.version} is being signed (by the "
                        f"{m.signoffs[0].role}); it can no longer be edited",
                        code="signing_started")
    if revision != m.revision:
        return ApiError(409, f"the minutes changed since (revision {m.revision}, yours "
                        f"{revision}); reload them and edit again", code="stale_revision",
                        extra={"revision": m.revision})
    return None


def _refused(session: AsyncSession, ctx: Ctx, c: Consultation, action: str,
             error: ApiError) -> ApiError:
    audit.record(session, action, actor=ctx.me, outcome=audit.DENIED, object_type="minutes",
                 object_id=c.id, consultation_id=c.id, client_addr=ctx.client_addr,
                 detail={"reason": error.message, "code": error.code})
    return error


async def _announce(ctx: Ctx, out: MinutesOut) -> None:
    # After the commit: the room hears of what is saved, not of what might roll back.
    notify = ctx.request.app.get(ROOM_NOTIFY)
    if notify is not None:
        await notify(out.consultation_id, "minutes:updated", out.model_dump(mode="json"))


def _audit(session: AsyncSession, ctx: Ctx, action: str, m: Minutes,
           detail: dict[str, Any]) -> None:
    audit.record(session, action, actor=ctx.me, object_type="minutes", object_id=m.id,
                 consultation_id=m.consultation_id, client_addr=ctx.client_addr,
                 detail={"version": m.version, **detail})


async def _new_version(session: AsyncSession, ctx: Ctx, c: Consultation, *, version: int,
                       content: dict[str, Any], secretary_id: int | None = None,
                       reason: str = "") -> Minutes:
    now = utcnow()
    m = Minutes(consultation_id=c.id, version=version, content=content, revision=1,
                secretary_id=secretary_id, amendment_reason=reason, created_by_id=ctx.me.id,
                updated_by_id=ctx.me.id, created_at=now, updated_at=now)
    session.add(m)
    await session.flush()
    return m


async def _first_version(session: AsyncSession, ctx: Ctx, c: Consultation,
                         content: dict[str, Any]) -> Minutes:
    m = await _new_version(session, ctx, c, version=1, content=content)
    _audit(session, ctx, "minutes.create", m, {"revision": 1})
    return m


async def _answered(ctx: Ctx, error: ApiError | None, out: MinutesOut | None) -> MinutesOut:
    """After the commit: a refusal (audited in it) is raised; a change is told to the room."""
    if error is not None:
        raise error
    assert out is not None
    await _announce(ctx, out)
    return out


def _touch(m: Minutes, ctx: Ctx) -> None:
    """A change of the draft: a new revision, by this user, now."""
    m.revision += 1
    m.updated_by_id = ctx.me.id
    m.updated_at = utcnow()


@api.route("PUT", "/api/consultations/{consultation_id}/minutes", summary="Write the draft "
           "of the minutes", tag="minutes", roles=ANY_USER, body=MinutesIn,
           response=MinutesOut, errors=(403, 409, 422))
async def write_minutes(ctx: Ctx, body: MinutesIn) -> MinutesOut:
    """The chair starts the minutes (version 1); then the chair or the secretary saves the
    draft, naming the revision they edited. Refused once signing has begun. Each key image
    must be a frame of a study of the consultation's cases held here (422
    ``unknown_image``, ``frame_out_of_range``)."""
    error: ApiError | None = None
    out: MinutesOut | None = None
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        versions = await _versions(session, c.id)
        m = versions[-1] if versions else None
        error = _editable(c, m, ctx.me, body.revision)
        if error is None:
            marks = body.content.key_images
            error = _mark_error(c, marks, await _stored(session, marks))
        if error is not None:
            _refused(session, ctx, c, "minutes.write", error)
        else:
            content = body.content.model_dump()
            if m is None:
                m = await _first_version(session, ctx, c, content)
            else:
                changed = sorted(k for k, v in content.items() if m.content.get(k) != v)
                m.content = content
                _touch(m, ctx)
                _audit(session, ctx, "minutes.write", m,
                       {"revision": m.revision, "changed": changed})
            out = await _reloaded(session, m)
    return await _answered(ctx, error, out)


@api.route("PUT", "/api/consultations/{consultation_id}/minutes/secretary", summary="Name "
           "the secretary of the minutes", tag="minutes", roles=ANY_USER, body=SecretaryIn,
           response=MinutesOut, errors=(403, 404, 409, 422))
async def name_secretary(ctx: Ctx, body: SecretaryIn) -> MinutesOut:
    """The chair names a participant of the consultation (not an observer, not the chair)
    as secretary, who then writes and signs the minutes with the chair."""
    error: ApiError | None = None
    out: MinutesOut | None = None
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        versions = await _versions(session, c.id)
        m = versions[-1] if versions else None
        error = _editable(c, m, ctx.me, body.revision)
        if error is None and not _is_chair(c, ctx.me):
            error = forbidden("only the chair names the secretary")
        secretary = await session.get(User, body.user_id)
        if error is None:
            role = access.room_role(c, secretary) if secretary is not None else None
            if secretary is None or role is None:
                error = ApiError(422, "the secretary must be invited to this consultation",
                                 code="not_invited", field="user_id")
            elif role is RoomRole.host:
                error = ApiError(422, "the chair cannot also be the secretary",
                                 code="chair_as_secretary", field="user_id")
            elif role is RoomRole.observer:
                error = ApiError(422, "an observer cannot be the secretary",
                                 code="observer_as_secretary", field="user_id")
        if error is not None:
            _refused(session, ctx, c, "minutes.secretary", error)
        else:
            if m is None:
                m = await _first_version(session, ctx, c, MinutesContent().model_dump())
            m.secretary_id = body.user_id
            _touch(m, ctx)
            _audit(session, ctx, "minutes.secretary", m,
                   {"revision": m.revision, "secretary_id": body.user_id})
            out = await _reloaded(session, m)
    return await _answered(ctx, error, out)


@api.route("POST", "/api/consultations/{consultation_id}/minutes/sign", summary="Sign the "
           "minutes as chair or secretary", tag="minutes", roles=ANY_USER, body=SignIn,
           response=MinutesOut, errors=(403, 404, 409, 422))
async def sign_minutes(ctx: Ctx, body: SignIn) -> MinutesOut:
    """The chair and the secretary each sign the revision they read, once; the required
    fields must be written. When both have signed the version is signed: its text and its
    attendees (as the room's presence has them then) never change again."""
    error: ApiError | None = None
    out: MinutesOut | None = None
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        versions = await _versions(session, c.id)
        if not versions:
            raise not_found("minutes")
        m = versions[-1]
        role = _signer_role(c, m, ctx.me)
        content = MinutesContent.model_validate(m.content)
        missing = missing_for_signing(content, m.secretary_id)
        if role is None:
            error = forbidden("only the chair and the secretary sign the minutes")
        elif m.status is MinutesStatus.signed:
            error = ApiError(409, f"version {m.version} is already signed",
                             code="minutes_signed")
        elif any(s.role == role for s in m.signoffs):
            error = ApiError(409, f"you signed version {m.version} as {role} already",
                             code="already_signed")
        elif body.revision != m.revision:
            error = ApiError(409, f"the minutes changed since (revision {m.revision}, yours "
                             f"{body.revision}); read them again before signing",
                             code="stale_revision", extra={"revision": m.revision})
        elif missing:
            error = ApiError(422, "the minutes cannot be signed with these left empty: "
                             + ", ".join(missing), code="incomplete", extra={"missing": missing})
        if error is not None:
            _refused(session, ctx, c, "minutes.sign", error)
        else:
            assert role is not None
            now = utcnow()
            sha = digest(m.content, version=m.version, secretary_id=m.secretary_id)
            session.add(MinutesSignoff(minutes_id=m.id, role=role, user_id=ctx.me.id,
                                       signed_at=now, content_sha256=sha))
            _touch(m, ctx)
            _audit(session, ctx, "minutes.sign", m, {"role": role, "content_sha256": sha})
            await session.flush()
            await session.refresh(m, ["signoffs"])
            if {s.role for s in m.signoffs} == set(SIGNER_ROLES):
                # Read before the status changes: the query's autoflush would otherwise
                # write the signed row first, and the guard refuses any later change to it.
                attendees = [a.as_json() for a in await attendance(session, c.id)]
                m.attendees = attendees
                m.status = MinutesStatus.signed
                m.signed_at = now
                _audit(session, ctx, "minutes.signed", m, {"content_sha256": sha})
            out = await _reloaded(session, m)
    return await _answered(ctx, error, out)


@api.route("POST", "/api/consultations/{consultation_id}/minutes/amend", summary="Start "
           "an amendment of the signed minutes", tag="minutes", roles=ANY_USER, body=AmendIn,
           response=MinutesOut, status=201, errors=(403, 404, 409))
async def amend_minutes(ctx: Ctx, body: AmendIn) -> MinutesOut:
    """The chair opens the next version as a draft holding the signed text, with the reason
    for the amendment; the signed version stays as it was and is listed beside it."""
    error: ApiError | None = None
    out: MinutesOut | None = None
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        versions = await _versions(session, c.id)
        if not versions:
            raise not_found("minutes")
        last = versions[-1]
        if not _is_chair(c, ctx.me):
            error = forbidden("only the chair amends the minutes")
        elif last.status is not MinutesStatus.signed:
            error = ApiError(409, f"version {last.version} is a draft: edit it instead",
                             code="not_signed")
        if error is not None:
            _refused(session, ctx, c, "minutes.amend", error)
        else:
            m = await _new_version(session, ctx, c, version=last.version + 1,
                                   content=dict(last.content), secretary_id=last.secretary_id,
                                   reason=body.reason)
            _audit(session, ctx, "minutes.amend", m, {"amends": last.version,
                                                       "reason": body.reason})
            out = await _reloaded(session, m)
    return await _answered(ctx, error, out)


# ---- key images ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Held:
    """A marked instance as the store holds it."""

    instance: DicomInstance
    series_instance_uid: str
    study_instance_uid: str


async def _stored(session: AsyncSession, marks: list[KeyImageMark]) -> dict[str, _Held]:
    uids = {m.sop_instance_uid for m in marks}
    if not uids:
        return {}
    rows = await session.execute(
        select(DicomInstance, DicomSeries.series_instance_uid, DicomStudy.study_instance_uid)
        .join(DicomSeries, DicomSeries.id == DicomInstance.series_id)
        .join(DicomStudy, DicomStudy.id == DicomSeries.study_id)
        .where(DicomInstance.sop_instance_uid.in_(uids)))
    return {i.sop_instance_uid: _Held(i, series, study) for i, series, study in rows.all()}


def _mark_error(c: Consultation, marks: list[KeyImageMark],
                held: dict[str, _Held]) -> ApiError | None:
    """Why a mark does not name a frame of the consultation's studies held here, if so."""
    studies = {s.study_instance_uid for case in c.cases for s in case.studies}
    for n, mark in enumerate(marks):
        found = held.get(mark.sop_instance_uid)
        field = f"content.key_images[{n}]"
        if (found is None or mark.study_instance_uid not in studies
                or (found.study_instance_uid, found.series_instance_uid)
                != (mark.study_instance_uid, mark.series_instance_uid)):
            return ApiError(422, f"key image {n + 1} is not an image of this consultation's "
                            "studies held here", code="unknown_image", field=field)
        count = found.instance.number_of_frames or 1
        if mark.frame > count:
            return ApiError(422, f"key image {n + 1}: frame {mark.frame} is out of range "
                            f"1..{count}", code="frame_out_of_range", field=field)
    return None


class SentOut(Out):
    study_instance_uid: str
    kos_sop_instance_uid: str
    #: None when no key image of the study carries a measurement.
    sr_sop_instance_uid: str | None
    #: The PACS node the study was imported from; None when it was not imported from one.
    node: str | None
    #: ``sent`` to the node, ``failed`` (see ``error``), or ``no_source_node``.
    status: Literal["sent", "failed", "no_source_node"]
    error: str


class KeyObjectsOut(Out):
    version: int
    studies: list[SentOut]


async def _source_nodes(session: AsyncSession, c: Consultation,
                        studies: set[str]) -> dict[str, PacsNode]:
    """The node each study was last imported from into one of the consultation's cases."""
    jobs = await session.scalars(
        select(ImportJob).where(ImportJob.case_id.in_([case.id for case in c.cases]),
                                ImportJob.study_instance_uid.in_(studies),
                                ImportJob.status == ImportStatus.done,
                                ImportJob.node_id.is_not(None))
        .order_by(ImportJob.id))
    return {j.study_instance_uid: j.node for j in jobs if j.node is not None}


async def _send(settings: Settings, node: PacsNode, objects: list[bytes]) -> None:
    if node.kind is NodeKind.dicomweb:
        await dicomweb_client.store(node.dicomweb_url, objects)
    else:
        await asyncio.to_thread(dimse_client.store,
                                imports.peer(node, settings.dicom_ae_title), objects)


@api.route("POST", "/api/consultations/{consultation_id}/minutes/key-objects",
           summary="Write the signed minutes' key images to their studies and PACS",
           tag="minutes", roles=ANY_USER, response=KeyObjectsOut, errors=(403, 404, 409, 422))
async def send_key_objects(ctx: Ctx) -> KeyObjectsOut:
    """The chair or the secretary writes the latest signed version's key images into each
    marked study: a Key Object Selection document ("Of Interest") and, for the measurements,
    a Comprehensive 3D SR (TID 1500), kept in the store (so the study shows them when it
    is opened again) and sent to the PACS node the study was imported from (C-STORE or
    STOW-RS). A send that fails is answered per study as ``failed`` with its error and can
    be retried: the objects are the same each time. Every step is audited."""
    error: ApiError | None = None
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session)
        versions = await _versions(session, c.id)
        if not versions:
            raise not_found("minutes")
        m = next((v for v in reversed(versions) if v.status is MinutesStatus.signed), None)
        marks = MinutesContent.model_validate(m.content).key_images if m else []
        held = await _stored(session, marks)
        if not (_is_chair(c, ctx.me) or versions[-1].secretary_id == ctx.me.id):
            error = forbidden("only the chair and the secretary send the key images")
        elif m is None:
            error = ApiError(409, "the minutes are not signed yet; their key images go to "
                             "the study once they are", code="not_signed")
        elif not marks:
            error = ApiError(422, f"version {m.version} marks no key images",
                             code="no_key_images")
        else:
            # An image removed from the store since the signing cannot be referenced.
            error = _mark_error(c, marks, held)
        if error is not None:
            _refused(session, ctx, c, "minutes.key_objects", error)
        else:
            assert m is not None
            nodes = await _source_nodes(session, c, {k.study_instance_uid for k in marks})
            observer = next(s.user.name for s in m.signoffs if s.role == CHAIR)
            minutes_id, version = m.id, m.version
            description = f"Biên bản hội chẩn {c.id}, phiên bản {version}"
    if error is not None:
        raise error
    root = store_root(ctx.settings.data_dir)

    def made() -> list[key_objects.KeyObjects]:
        images = {uid: pydicom.dcmread(root / h.instance.path, stop_before_pixels=True)
                  for uid, h in held.items()}
        return key_objects.build(marks, images, minutes_id=minutes_id, version=version,
                                 observer=observer, description=description)

    built = await asyncio.to_thread(made)
    ingester = ctx.request.app[INGESTER]
    try:
        for k in built:
            for data in [k.kos] + ([k.sr] if k.sr else []):
                await ingester.ingest(data, received_from="minutes")
    except Exception as exc:
        # The store failed (a full disk): audited in a transaction of its own, as the
        # request's answer is the server error.
        async with ctx.sessions.begin() as session:
            audit.record(session, "minutes.key_objects", actor=ctx.me, outcome=audit.FAILURE,
                         object_type="minutes", object_id=minutes_id, consultation_id=c.id,
                         client_addr=ctx.client_addr,
                         detail={"version": version, "error": str(exc) or type(exc).__name__})
        raise
    sent: list[SentOut] = []
    async with ctx.sessions.begin() as session:
        for k in built:
            objects = [k.kos] + ([k.sr] if k.sr else [])
            uids = {"kos": k.kos_sop_instance_uid, "sr": k.sr_sop_instance_uid}
            audit.record(session, "minutes.key_objects", actor=ctx.me, object_type="minutes",
                         object_id=minutes_id, consultation_id=c.id,
                         client_addr=ctx.client_addr,
                         detail={"version": version, "study": k.study_instance_uid, **uids})
            node = nodes.get(k.study_instance_uid)
            status: Literal["sent", "failed", "no_source_node"] = "no_source_node"
            problem = ""
            if node is not None:
                try:
                    await _send(ctx.settings, node, objects)
                    status = "sent"
                except RemoteError as exc:
                    status, problem = "failed", str(exc)
                audit.record(session, "minutes.key_objects.send", actor=ctx.me,
                             outcome=audit.SUCCESS if status == "sent" else audit.FAILURE,
                             object_type="minutes", object_id=minutes_id,
                             consultation_id=c.id, client_addr=ctx.client_addr,
                             detail={"version": version, "study": k.study_instance_uid,
                                     "node": node.name, **uids,
                                     **({"error": problem} if problem else {})})
            sent.append(SentOut(study_instance_uid=k.study_instance_uid,
                                kos_sop_instance_uid=k.kos_sop_instance_uid,
                                sr_sop_instance_uid=k.sr_sop_instance_uid,
                                node=node.name if node else None, status=status,
                                error=problem))
    return KeyObjectsOut(version=version, studies=sent)


# ---- the PDF ------------------------------------------------------------------------------

async def _exported(ctx: Ctx, session: AsyncSession, version: int | None
                    ) -> tuple[Consultation, Minutes, list[dict[str, Any]]]:
    """The version asked for (the latest by default), with its attendees as JSON."""
    c = await load_consultation(ctx, session)
    versions = await _versions(session, c.id)
    wanted = version or (versions[-1].version if versions else 0)
    m = next((v for v in versions if v.version == wanted), None)
    if m is None:
        raise not_found("minutes" if not versions else "version")
    out = await _out(session, m, [v.version for v in versions])
    return c, m, [a.model_dump(mode="json") for a in out.attendees]


class PdfQuery(Query):
    version: Id | None = None
    language: Literal["vi", "en"] = "vi"


@cache
def _signer(path: Path, password: str, _mtime_ns: int) -> Signer:
    # Keyed by the file's mtime: a certificate renewed in place is read again.
    return load_signer(path, password)


def _signed(settings: Settings, pdf: bytes, c: Consultation, m: Minutes) -> bytes:
    assert settings.signing_p12 is not None
    signer = _signer(settings.signing_p12, settings.signing_p12_password,
                     settings.signing_p12.stat().st_mtime_ns)
    names = {s.role: s.user.name for s in m.signoffs}
    reason = (f"Biên bản hội chẩn {c.id}, phiên bản {m.version}: chủ trì {names[CHAIR]}, "
              f"thư ký {names[SECRETARY]}")
    return sign_pdf(pdf, signer, reason=reason, location=c.host_hospital.name)


@api.route("GET", "/api/consultations/{consultation_id}/minutes/pdf", summary="The minutes "
           "as a PDF", tag="minutes", roles=ANY_USER, query=PdfQuery,
           response=File("application/pdf"), errors=(403, 404))
async def minutes_pdf(ctx: Ctx, query: PdfQuery) -> web.Response:
    """The latest version, or the one asked for, laid out as the Appendix I minutes of
    Circular 49/2017/TT-BYT. A signed version carries the hospital's digital signature
    (PAdES) when HOICHAN_SIGNING_P12 is configured; a draft is marked unsigned. Each
    download is audited."""
    await require_patient_data(ctx, "minutes.pdf", "the minutes",
                               identifying=True)
    root = store_root(ctx.settings.data_dir)
    async with ctx.sessions.begin() as session:
        c, m, attendees = await _exported(ctx, session, query.version)
        marks = MinutesContent.model_validate(m.content).key_images
        held = await _stored(session, marks)
        # A mark whose image left the store since is listed in the text of the minutes
        # only; the frames still held are drawn.
        shown = [(mark, root / held[mark.sop_instance_uid].instance.path) for mark in marks
                 if mark.sop_instance_uid in held]
        pictures = await asyncio.to_thread(lambda: tuple(
            KeyImage(key_objects.frame_png(path, mark.frame), mark.caption)
            for mark, path in shown))
        document = minutes_document(c, m, attendees, key_images=pictures,
                                    language=query.language)
        digitally = m.status is MinutesStatus.signed and ctx.settings.signing_p12 is not None
        _audit(session, ctx, "minutes.pdf", m, {"signed": digitally})

    def build() -> bytes:
        pdf = render_pdf(document)
        return _signed(ctx.settings, pdf, c, m) if digitally else pdf

    # ReportLab and pyHanko are CPU-bound, and pyHanko runs its own event loop.
    body = await asyncio.to_thread(build)
    name = f"bien-ban-hoi-chan-{c.id}-v{m.version}.pdf"
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})


class FhirQuery(Query):
    version: Id | None = None


@api.route("GET", "/api/consultations/{consultation_id}/minutes/fhir", summary="The minutes "
           "as a FHIR bundle", tag="minutes", roles=ANY_USER, query=FhirQuery,
           response=File("application/fhir+json"), errors=(403, 404))
async def minutes_fhir(ctx: Ctx, query: FhirQuery) -> web.Response:
    """The latest version, or the one asked for, as a FHIR R4 (4.3, R4B) collection bundle
    for the hospitals' records: Patient (with the national ID when the case has one),
    Organization, Practitioner per attendee, the consultation as a virtual Encounter, the
    ImagingStudy of each study, a DiagnosticReport with the conclusion, a
    DocumentReference to the PDF and the patient's Consent to the consultation and to its
    recording as last recorded. Each export is audited."""
    await require_patient_data(ctx, "minutes.fhir", "the minutes",
                               identifying=True)
    async with ctx.sessions.begin() as session:
        c, m, attendees = await _exported(ctx, session, query.version)
        pdf_url = str(ctx.request.url.with_path(
            f"/api/consultations/{c.id}/minutes/pdf").with_query(version=m.version))
        consents = await case_consents(session, c.cases[0].id) if c.cases else []
        bundle = minutes_bundle(c, m, attendees, pdf_url, consents)
        _audit(session, ctx, "minutes.fhir", m, {})
    return web.Response(text=bundle.model_dump_json(exclude_none=True),
                        content_type="application/fhir+json",
                        headers={"Cache-Control": "no-store"})
