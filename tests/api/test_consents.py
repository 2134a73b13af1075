"""The patient's consents on a case: recorded by the consultation's doctors and coordinators,
never changed (a withdrawal is a new record), shown in full only to those who may record,
printable as a form, exported to FHIR, and every step audited."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader
from sqlalchemy import text

from app import audit
from app.db.engine import create_engine
from tests.api.dbcheck import audit_events, error_of
from tests.api.minutes_helpers import FILLED, ok, put
from tests.api.minutes_helpers import url as minutes_url

SIGNED_BY_PATIENT = {"scope": "teleconsultation", "decision": "granted", "given_by": "patient",
                     "giver_name": "Nguyễn Văn X", "method": "signed_form"}
VERBAL_BY_SON = {"scope": "recording", "decision": "granted", "given_by": "representative",
                 "giver_name": "Nguyễn Văn Y", "relation": "con trai", "method": "verbal",
                 "note": "Đồng ý qua điện thoại, có người làm chứng"}


async def case_id(client, world) -> int:
    r = await client.get(f"/api/consultations/{world.consultation_id}", headers=world.auth("BM"))
    return (await ok(r))["cases"][0]["id"]


def consents_url(world, case: int, tail: str = "/consents") -> str:
    return f"/api/consultations/{world.consultation_id}/cases/{case}{tail}"


async def record(client, world, who: str, body: dict[str, Any], case: int) -> Any:
    return await client.post(consents_url(world, case), json=body, headers=world.auth(who))


async def consent_rows(world) -> list[tuple[Any, ...]]:
    engine = create_engine(world.settings.database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(
                "SELECT id, scope, decision, giver_name, relation, method FROM consents "
                "ORDER BY id"))]
    finally:
        await engine.dispose()


async def test_consents_are_recorded_withdrawn_and_kept(client, world):
    case = await case_id(client, world)
    empty = await ok(await client.get(consents_url(world, case), headers=world.auth("NDI")))
    assert empty["teleconsultation"] == {"status": "none", "latest": None}
    assert empty["recording"]["status"] == "none" and empty["can_record"] is True

    given = await ok(await record(client, world, "NDI", SIGNED_BY_PATIENT, case), 201)
    assert given["teleconsultation"]["status"] == "granted"
    assert given["teleconsultation"]["latest"]["recorded_by"]["id"] == world.user("NDI").id
    assert given["recording"]["status"] == "none"

    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    verbal = await ok(await record(client, world, "BM", {**VERBAL_BY_SON,
                                                          "given_at": an_hour_ago}, case), 201)
    latest = verbal["recording"]["latest"]
    assert verbal["recording"]["status"] == "granted"
    assert (latest["given_by"], latest["relation"], latest["method"]) == (
        "representative", "con trai", "verbal")
    assert datetime.fromisoformat(latest["given_at"]) == datetime.fromisoformat(an_hour_ago)

    withdrawn = await ok(await record(client, world, "BM", {
        **VERBAL_BY_SON, "decision": "withdrawn", "note": ""}, case), 201)
    assert withdrawn["recording"]["status"] == "withdrawn"
    assert withdrawn["teleconsultation"]["status"] == "granted"
    assert [(h["scope"], h["decision"]) for h in withdrawn["history"]] == [
        ("teleconsultation", "granted"), ("recording", "granted"), ("recording", "withdrawn")]
    # The consent the withdrawal ended is kept as it was given.
    assert withdrawn["history"][1] == verbal["recording"]["latest"]

    read = await ok(await client.get(consents_url(world, case), headers=world.auth("BM")))
    assert read == {**withdrawn, "can_record": True}
    events = await audit_events(world.settings, "consent.record")
    assert [(e.detail["scope"], e.detail["decision"], e.outcome) for e in events] == [
        ("teleconsultation", "granted", audit.SUCCESS), ("recording", "granted", audit.SUCCESS),
        ("recording", "withdrawn", audit.SUCCESS)]


async def test_observers_and_admins_see_the_states_only_and_record_nothing(client, world):
    case = await case_id(client, world)
    await ok(await record(client, world, "coordinator", SIGNED_BY_PATIENT, case), 201)
    for who in ("HYE", "admin"):
        seen = await ok(await client.get(consents_url(world, case), headers=world.auth(who)))
        assert seen["teleconsultation"] == {"status": "granted", "latest": None}, who
        assert seen["history"] == [] and seen["can_record"] is False, who
        await error_of(await record(client, world, who, VERBAL_BY_SON, case), 403)
    assert len(await consent_rows(world)) == 1
    refused = [e for e in await audit_events(world.settings, "consent.record")
               if e.outcome == audit.DENIED]
    assert [e.actor_id for e in refused] == [world.user("HYE").id, world.user("admin").id]


@pytest.mark.parametrize(("change", "status", "code", "field"), [
    ({"given_by": "representative"}, 422, None, None),  # no relation named
    ({"relation": "vợ"}, 422, None, None),  # a relation for the patient themself
    ({"giver_name": "  "}, 422, None, "giver_name"),
    ({"scope": "everything"}, 422, None, "scope"),
    ({"method": "email"}, 422, None, "method"),
    ({"given_at": "2026-01-01T10:00:00"}, 422, None, "given_at"),  # no offset
    ({"given_at": "2999-01-01T10:00:00+07:00"}, 422, None, "given_at"),
    ({"signature": "x"}, 422, None, "signature"),
    ({"decision": "withdrawn"}, 409, "not_granted", None),  # nothing granted to withdraw
])
async def test_bad_consents_are_refused_and_leave_nothing(client, world, change, status, code,
                                                          field):
    case = await case_id(client, world)
    r = await record(client, world, "NDI", {**SIGNED_BY_PATIENT, **change}, case)
    await error_of(r, status, code=code, field=field)
    assert await consent_rows(world) == []


async def test_another_consultations_case_is_not_found(client, world):
    case = await case_id(client, world)
    other = await ok(await client.post("/api/consultations", headers=world.auth("coordinator"),
                                       json=_consultation(world)), 201)
    await error_of(await client.get(consents_url(world, other["cases"][0]["id"]),
                                    headers=world.auth("NDI")), 404)
    await error_of(await client.get(consents_url(world, case + 1000),
                                    headers=world.auth("NDI")), 404)


def _consultation(world) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=3)
    return {"title": "Khác", "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(), "timezone": "Asia/Ho_Chi_Minh",
            "host_hospital_id": world.user("BM").hospital_id,
            "host_user_id": world.user("BM").id,
            "cases": [{"patient_id": "P-OTHER", "patient_name": "TRAN^THI^B"}]}


async def test_consent_records_never_change_and_keep_their_case(client, world):
    case = await case_id(client, world)
    await ok(await record(client, world, "NDI", SIGNED_BY_PATIENT, case), 201)
    engine = create_engine(world.settings.database_url)
    try:
        for statement in ("UPDATE consents SET decision = 'refused'", "DELETE FROM consents"):
            with pytest.raises(Exception, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
    assert [row[2] for row in await consent_rows(world)] == ["granted"]
    await error_of(await client.delete(consents_url(world, case, ""),
                                       headers=world.auth("coordinator")), 409,
                   code="case_has_consents")


async def test_the_printable_form_names_the_patient_in_vietnamese_and_english(client, world):
    case = await case_id(client, world)
    texts = {}
    for language in ("vi", "en"):
        r = await client.get(consents_url(world, case, "/consent-form"),
                             params={"language": language}, headers=world.auth("NDI"))
        assert r.status == 200 and r.content_type == "application/pdf"
        assert r.headers["Cache-Control"] == "no-store"
        reader = PdfReader(io.BytesIO(await r.read()))
        texts[language] = "\n".join(p.extract_text() for p in reader.pages)
        fonts = {str(f["/BaseFont"]) for page in reader.pages
                 for f in page["/Resources"]["/Font"].values()}
        assert all("BeVietnamPro" in f for f in fonts), fonts
    assert "GIẤY ĐỒNG Ý THAM GIA HỘI CHẨN TỪ XA" in texts["vi"]
    assert "Nghị định 13/2023/NĐ-CP" in texts["vi"] and "10 năm" in texts["vi"]
    assert "CONSENT TO TELE-CONSULTATION" in texts["en"]
    patient = world_patient_name(await ok(await client.get(
        f"/api/consultations/{world.consultation_id}", headers=world.auth("BM"))))
    assert patient in texts["vi"] and patient in texts["en"]
    assert len(await audit_events(world.settings, "consent.form")) == 2


def world_patient_name(consultation: dict[str, Any]) -> str:
    return consultation["cases"][0]["patient_name"].replace("^", " ").strip()


async def test_the_fhir_bundle_carries_each_scopes_latest_consent(client, world):
    case = await case_id(client, world)
    await ok(await put(client, world, "BM", FILLED))
    await ok(await record(client, world, "NDI", SIGNED_BY_PATIENT, case), 201)
    await ok(await record(client, world, "NDI", VERBAL_BY_SON, case), 201)
    await ok(await record(client, world, "NDI", {**VERBAL_BY_SON, "decision": "withdrawn"},
                          case), 201)
    r = await client.get(minutes_url(world, "/fhir"), headers=world.auth("BM"))
    bundle = Bundle.model_validate_json(await ok_text(r))
    [patient_url] = [e.fullUrl for e in bundle.entry
                     if e.resource.get_resource_type() == "Patient"]
    consents = [e.resource for e in bundle.entry
                if e.resource.get_resource_type() == "Consent"]
    assert [(c.scope.coding[0].code, c.status, c.provision.type) for c in consents] == [
        ("treatment", "active", "permit"), ("patient-privacy", "inactive", "deny")]
    assert all(c.patient.reference == patient_url for c in consents)
    assert consents[1].performer[0].display == "Nguyễn Văn Y (con trai)"


async def ok_text(r) -> str:
    assert r.status == 200, await r.text()
    return await r.text()
