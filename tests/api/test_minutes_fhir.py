"""The minutes as a FHIR bundle a hospital's EMR takes, read back and validated by
fhir.resources' own R4B models: every reference resolves inside the bundle, the patient
carries the national ID, the encounter its attendees, the report the conclusion."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import text

from app.db.engine import create_engine
from tests.api.dbcheck import audit_events, error_of
from tests.api.minutes_helpers import FILLED, ok, put, room_presence, signed_by_both, url

CCCD = "001061012345"


async def set_national_id(world, value: str) -> None:
    engine = create_engine(world.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE cases SET national_id = :v"), {"v": value})
    finally:
        await engine.dispose()


async def bundle_of(client, world, query: str = "") -> Bundle:
    r = await client.get(url(world, f"/fhir{query}"), headers=world.auth("GTH"))
    assert r.status == 200, await r.text()
    assert r.content_type == "application/fhir+json"
    return Bundle.model_validate_json(await r.text())


def by_type(bundle: Bundle) -> dict[str, list]:
    found: dict[str, list] = {}
    for entry in bundle.entry or []:
        found.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    return found


async def test_signed_minutes_export_as_a_valid_fhir_bundle(client, world):
    await error_of(await client.get(url(world, "/fhir"), headers=world.auth("BM")), 404)
    await set_national_id(world, CCCD)
    await room_presence(world, [("room.join", "BM", "host", -30),
                                ("room.join", "NDI", "presenter", -25),
                                ("room.join", "HYE", "observer", -20),
                                ("room.leave", "HYE", "observer", -2)])
    await ok(await put(client, world, "BM", FILLED))
    draft = by_type(await bundle_of(client, world))
    assert draft["DiagnosticReport"][0].status == "preliminary"

    await signed_by_both(client, world, started=True)
    bundle = await bundle_of(client, world)
    assert bundle.type == "collection"
    urls = {e.fullUrl for e in bundle.entry}
    refs = [r for e in bundle.entry
            for r in _references(e.resource.model_dump(mode="json"))]
    assert refs and all(r in urls for r in refs), set(refs) - urls
    kinds = by_type(bundle)
    [patient] = kinds["Patient"]
    assert {(i.system, i.value) for i in patient.identifier} >= {("urn:vn:cccd", CCCD)}
    assert patient.gender == "male" and str(patient.birthDate) == "1961-03-14"
    [encounter] = kinds["Encounter"]
    assert encounter.class_fhir.code == "VR"
    assert [p.individual.display for p in encounter.participant] == [
        world.user(k).name for k in ("BM", "NDI", "HYE")]
    assert encounter.participant[2].period.end is not None
    [report] = kinds["DiagnosticReport"]
    assert report.status == "final" and FILLED["diagnosis_after"] in report.conclusion
    assert report.code.coding[0].code == "11488-4"
    assert len(report.imagingStudy) == len(kinds["ImagingStudy"]) == 1
    [document] = kinds["DocumentReference"]
    attachment = document.content[0].attachment
    assert attachment.contentType == "application/pdf"
    assert attachment.url.endswith("/minutes/pdf?version=1")
    assert [e.detail["version"] for e in await audit_events(world.settings, "minutes.fhir")] \
        == [1, 1]


def _references(value) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []
