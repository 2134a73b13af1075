"""Least privilege: an admin reads a consultation's images and minutes only under a
break-the-glass grant (a reason, a time limit, an audit event flagged for review), a study
no case holds only under a grant over the store; observers see the patient de-identified
until the host shows them who it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app import audit
from app.db.engine import create_engine, session_factory
from app.db.models import BreakGlassGrant
from app.db.types import utcnow
from app.demo import DEMO_STUDY_UID
from app.pacs.synth import Patient, store_series
from tests.api.dbcheck import audit_events, error_of
from tests.api.minutes_helpers import FILLED, ok, put, url

OTHER_STUDY = "1.2.826.0.1.3680043.9.7777.2"
REASON = {"reason": "Khiếu nại của người bệnh số 12/2026, kiểm tra hồ sơ"}


async def store_studies(world) -> None:
    engine = create_engine(world.settings.database_url)
    try:
        sessions = session_factory(engine)
        await store_series(sessions, world.settings.data_dir, DEMO_STUDY_UID, 2)
        await store_series(sessions, world.settings.data_dir, OTHER_STUDY, 1,
                           Patient("OTHER-2", "TRAN^OTHER", "19800101", "F"))
    finally:
        await engine.dispose()


async def studies(client, world, who: str) -> list[str]:
    body = await ok(await client.get("/dicomweb/studies", headers=world.auth(who)))
    return sorted(s["0020000D"]["Value"][0] for s in body)


async def metadata_status(client, world, who: str, uid: str) -> int:
    r = await client.get(f"/dicomweb/studies/{uid}/metadata", headers=world.auth(who))
    return r.status


DICOM = 'multipart/related; type="application/dicom"'


async def patient_in_dicom(client, world, who: str, study: str) -> list[tuple[str, str, bool]]:
    """(name, ID, birth date present) as the study's QIDO answer and its two instances'
    metadata give them."""
    found = []
    qido = await ok(await client.get("/dicomweb/studies", params={
        "StudyInstanceUID": DEMO_STUDY_UID}, headers=world.auth(who)))
    metadata = await ok(await client.get(f"{study}/metadata", headers=world.auth(who)))
    for item in [*qido, *metadata]:
        found.append((item["00100010"]["Value"][0]["Alphabetic"],
                      item["00100020"]["Value"][0], "00100030" in item))
    return found


async def test_an_admin_reads_patient_data_only_under_a_grant(client, world):
    await store_studies(world)
    await ok(await put(client, world, "BM", FILLED))
    assert await studies(client, world, "coordinator") == [DEMO_STUDY_UID]
    assert await studies(client, world, "admin") == []
    assert await metadata_status(client, world, "admin", DEMO_STUDY_UID) == 404
    await error_of(await client.get(url(world), headers=world.auth("admin")), 403,
                   code="break_glass_required")
    await error_of(await client.get(url(world, "/pdf"), headers=world.auth("admin")), 403,
                   code="break_glass_required")
    denied = await audit_events(world.settings, "minutes.read")
    assert [(e.actor_id, e.outcome) for e in denied] == [(world.user("admin").id,
                                                          audit.DENIED)]

    glass = f"/api/consultations/{world.consultation_id}/break-glass"
    await error_of(await client.post(glass, json={"reason": "xem"},
                                     headers=world.auth("admin")), 422, field="reason")
    await error_of(await client.post(glass, json=REASON, headers=world.auth("coordinator")),
                   403)
    grant = await ok(await client.post(glass, json={**REASON, "minutes": 30},
                                       headers=world.auth("admin")), 201)
    expires = datetime.fromisoformat(grant["expires_at"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)
    [event] = await audit_events(world.settings, "access.break_glass")
    assert event.detail["review"] is True and event.detail["reason"] == REASON["reason"]
    assert event.consultation_id == world.consultation_id

    assert (await ok(await client.get(url(world), headers=world.auth("admin"))))["version"] == 1
    assert await studies(client, world, "admin") == [DEMO_STUDY_UID]
    assert await metadata_status(client, world, "admin", DEMO_STUDY_UID) == 200
    assert await metadata_status(client, world, "admin", OTHER_STUDY) == 404

    # A study no case holds: a grant over the store.
    await ok(await client.post("/api/break-glass", json=REASON, headers=world.auth("admin")),
             201)
    assert await studies(client, world, "admin") == sorted([DEMO_STUDY_UID, OTHER_STUDY])

    # Expired grants give nothing.
    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            await session.execute(update(BreakGlassGrant).values(
                expires_at=utcnow() - timedelta(minutes=1)))
    finally:
        await engine.dispose()
    await error_of(await client.get(url(world), headers=world.auth("admin")), 403,
                   code="break_glass_required")
    assert await studies(client, world, "admin") == []


async def test_observers_see_the_patient_deidentified_until_the_host_shows_them(client,
                                                                               world):
    cid = world.consultation_id
    path = f"/api/consultations/{cid}"
    full = (await ok(await client.get(path, headers=world.auth("NDI"))))["cases"][0]
    assert full["identified"] is True and full["patient_name"] == "NGUYEN^VAN^X"
    masked = (await ok(await client.get(path, headers=world.auth("HYE"))))["cases"][0]
    assert masked["identified"] is False
    assert (masked["patient_name"], masked["patient_id"], masked["patient_birth_date"],
            masked["national_id"]) == ("N.^V.^X.", "***", None, "")
    assert (masked["patient_sex"], masked["patient_age"]) == (full["patient_sex"],
                                                              full["patient_age"])
    assert 60 <= masked["patient_age"] <= 70
    listed = await ok(await client.get("/api/me/consultations", headers=world.auth("HYE")))
    assert listed[0]["cases"][0]["patient_name"] == "N.^V.^X."

    await store_studies(world)
    study = f"/dicomweb/studies/{DEMO_STUDY_UID}"
    assert await patient_in_dicom(client, world, "NDI", study) == [
        ("NGUYEN^VAN^X", "HC-0001", True)] * 3
    assert await patient_in_dicom(client, world, "HYE", study) == [("N.^V.^X.", "***",
                                                                    False)] * 3
    r = await client.get(study, headers={**world.auth("HYE"), "Accept": DICOM})
    await error_of(r, 403, code="patient_deidentified")
    assert (await client.get(study, headers={**world.auth("NDI"), "Accept": DICOM})).status \
        == 200

    await ok(await put(client, world, "BM", FILLED))
    case = full["id"]
    for tail in (url(world, "/pdf"), url(world, "/fhir"),
                 f"{path}/cases/{case}/consent-form"):
        await error_of(await client.get(tail, headers=world.auth("HYE")), 403,
                       code="patient_deidentified")
    assert len([e for e in await audit_events(world.settings) if e.outcome == audit.DENIED
                and e.detail.get("code") == "patient_deidentified"]) == 3

    show = f"{path}/observer-identity"
    await error_of(await client.put(show, json={"identified": True},
                                    headers=world.auth("NDI")), 403)
    shown = await ok(await client.put(show, json={"identified": True},
                                      headers=world.auth("BM")))
    assert shown["observers_identified"] is True
    seen = (await ok(await client.get(path, headers=world.auth("HYE"))))["cases"][0]
    assert seen == full
    assert await patient_in_dicom(client, world, "HYE", study) == [
        ("NGUYEN^VAN^X", "HC-0001", True)] * 3
    r = await client.get(url(world, "/pdf"), headers=world.auth("HYE"))
    assert r.status == 200
    [event] = await audit_events(world.settings, "consultation.observer_identity")
    assert event.detail == {"identified": True}
