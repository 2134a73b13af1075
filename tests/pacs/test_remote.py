"""Searching a hospital PACS and importing a study from it into a case: Orthanc as the PACS,
over DIMSE (C-FIND, C-MOVE to our SCP, C-GET) and over DICOMweb (QIDO-RS, WADO-RS)."""

from __future__ import annotations

import asyncio
import io
import os
import re
from datetime import date, timedelta
from typing import Any

import aiohttp
import pydicom
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent
from app.db.types import utcnow
from app.pacs import imports
from app.pacs.models import DicomInstance, ImportJob, ImportStatus
from app.pacs.synth import Patient, series
from hoichan.server import create_app
from tests.conftest import make_settings
from tests.pacs.orthanc import Orthanc, free_port, start_orthanc
from tests.waiting import poll

STUDY = "1.2.826.0.1.3680043.9.7777.500"
PATIENT = Patient("REMOTE-7", "PHAM^THI^LAN", "19720509", "F")
SLICES = 6


@pytest.fixture
async def pacs(tmp_path) -> Any:
    """Orthanc holding one CT study, knowing us as HOICHAN on the port our SCP will use."""
    scp_port = free_port()
    orthanc = start_orthanc(tmp_path / "orthanc", {"hoichan": ("HOICHAN", scp_port)})
    slices = list(series(STUDY, SLICES, PATIENT, date(2026, 10, 2), "ACC-77"))
    for data in slices:
        await orthanc.upload(data)
    orthanc.scp_port = scp_port  # type: ignore[attr-defined]
    orthanc.slices = slices  # type: ignore[attr-defined]
    try:
        yield orthanc
    finally:
        orthanc.stop()


@pytest.fixture
async def app_client(world, pacs):
    """The app with its SCP listening where Orthanc sends C-MOVE results."""
    settings = make_settings(world.settings.database_url, world.settings.data_dir,
                             dicom_port=pacs.scp_port)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def add_node(client, world, pacs: Orthanc, name: str, **fields: Any) -> int:
    body = {"name": name, **fields}
    r = await client.post("/api/pacs-nodes", json=body, headers=world.auth("admin"))
    assert r.status == 201, await r.text()
    return int((await r.json())["id"])


def dimse(pacs: Orthanc, retrieve: str = "c-move") -> dict[str, Any]:
    return {"kind": "dimse", "ae_title": pacs.aet, "host": "127.0.0.1",
            "port": pacs.dicom_port, "retrieve": retrieve}


def dicomweb(pacs: Orthanc) -> dict[str, Any]:
    return {"kind": "dicomweb", "dicomweb_url": f"{pacs.url}/dicom-web"}


async def new_case(client, world, patient_id: str = PATIENT.patient_id) -> int:
    r = await client.post(f"/api/consultations/{world.consultation_id}/cases",
                          json={"patient_id": patient_id, "patient_name": "PHAM THI LAN"},
                          headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    return int((await r.json())["id"])


async def wait_for(client, world, job_id: int, timeout: float = 60) -> dict[str, Any]:
    seen: list[int] = []
    job: dict[str, Any] = {}

    async def finished() -> bool:
        r = await client.get(f"/api/imports/{job_id}", headers=world.auth("coordinator"))
        assert r.status == 200, await r.text()
        job.update(await r.json())
        seen.append(job["instances_done"])
        return job["status"] in ("done", "failed")

    assert await poll(finished, timeout, interval=0.1), job
    job["seen"] = seen
    return job


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
async def test_coordinator_searches_a_node(app_client, world, pacs, kind):
    node = await add_node(app_client, world, pacs, "Orthanc",
                          **(dimse(pacs) if kind == "dimse" else dicomweb(pacs)))
    coordinator = world.auth("coordinator")
    r = await app_client.post(f"/api/pacs-nodes/{node}/verify", headers=coordinator)
    assert r.status == 200 and (await r.json())["status"] == "ok"

    async def search(**params: str) -> list[dict[str, Any]]:
        r = await app_client.get(f"/api/pacs-nodes/{node}/studies", params=params,
                                 headers=coordinator)
        assert r.status == 200, await r.text()
        return list(await r.json())

    for params in ({"patient_id": "REMOTE-7"}, {"patient_name": "thi"},
                   {"patient_birth_date": "1972-05-09"}, {"accession_number": "ACC-77"},
                   {"study_date_from": "2026-10-01", "study_date_to": "2026-10-03"},
                   {"modality": "CT", "study_date_from": "2026-10-02"}):
        found = await search(**params)
        assert [s["study_instance_uid"] for s in found] == [STUDY], params
        study = found[0]
        assert (study["patient_id"], study["patient_name"], study["accession_number"]) == \
            ("REMOTE-7", "PHAM^THI^LAN", "ACC-77")
        assert study["number_of_instances"] == SLICES and study["modalities"] == ["CT"]
    for params in ({"patient_id": "NOBODY"}, {"study_date_to": "2026-09-30"},
                   {"modality": "MR", "patient_id": "REMOTE-7"}):
        assert await search(**params) == [], params

    r = await app_client.get(f"/api/pacs-nodes/{node}/studies/{STUDY}/series",
                             headers=coordinator)
    assert r.status == 200, await r.text()
    [one] = await r.json()
    assert one["modality"] == "CT" and one["number_of_instances"] == SLICES

    async with session_factory(create_engine(world.settings.database_url))() as session:
        searches = list(await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "pacs.search")))
    assert len(searches) == 10 and {e.actor_id for e in searches} == \
        {world.user("coordinator").id}


async def test_search_refuses_bad_input_and_reports_an_unreachable_node(app_client, world,
                                                                        pacs):
    node = await add_node(app_client, world, pacs, "Orthanc", **dimse(pacs))
    coordinator = world.auth("coordinator")
    for params, field in (({}, None), ({"patient_id": "A\\B"}, "patient_id"),
                          ({"study_date_from": "2026-10-05", "study_date_to": "2026-10-01"},
                           None), ({"modality": "ct;drop"}, "modality"),
                          ({"patient_id": "x", "limit": "0"}, "limit")):
        r = await app_client.get(f"/api/pacs-nodes/{node}/studies", params=params,
                                 headers=coordinator)
        assert r.status == 422, (params, await r.text())
        if field:
            assert (await r.json())["error"]["field"] == field
    r = await app_client.get(f"/api/pacs-nodes/{node}/studies", params={"patient_id": "x"},
                             headers=world.auth("NDI"))
    assert r.status == 403

    closed = await add_node(app_client, world, pacs, "Gone",
                            **{**dimse(pacs), "port": free_port()})
    r = await app_client.get(f"/api/pacs-nodes/{closed}/studies",
                             params={"patient_id": "REMOTE-7"}, headers=coordinator)
    assert r.status == 502 and (await r.json())["error"]["code"] == "pacs_error"
    r = await app_client.post(f"/api/pacs-nodes/{closed}/verify", headers=coordinator)
    assert r.status == 502


async def test_only_admins_configure_nodes_and_nodes_are_complete(app_client, world, pacs):
    r = await app_client.post("/api/pacs-nodes", json={"name": "X", **dimse(pacs)},
                              headers=world.auth("coordinator"))
    assert r.status == 403
    admin = world.auth("admin")
    for body in ({"name": "X", "kind": "dimse", "host": "127.0.0.1", "port": 104},
                 {"name": "X", "kind": "dicomweb"},
                 {"name": "X", "kind": "dicomweb", "dicomweb_url": "ftp://pacs/"},
                 # Brackets around what is no IPv6 address (schemathesis found these).
                 {"name": "X", "kind": "dicomweb",
                  "dicomweb_url": "http://[6a3f9d5:95d1e7:3fb3]/dicom-web"},
                 {"name": "X", **dimse(pacs), "host": "6a3f9d5:95d1e7:3fb3"},
                 {"name": "X", **dimse(pacs), "ae_title": "BAD\\AE"},
                 {"name": "X", **dimse(pacs), "port": 70000}):
        r = await app_client.post("/api/pacs-nodes", json=body, headers=admin)
        assert r.status == 422, (body, await r.text())
    node = await add_node(app_client, world, pacs, "X", **dimse(pacs))
    r = await app_client.post("/api/pacs-nodes", json={"name": "X", **dicomweb(pacs)},
                              headers=admin)
    assert r.status == 409
    r = await app_client.patch(f"/api/pacs-nodes/{node}", json={"retrieve": "c-get"},
                               headers=admin)
    assert r.status == 200 and (await r.json())["retrieve"] == "c-get"
    r = await app_client.get("/api/pacs-nodes", headers=world.auth("coordinator"))
    assert [n["name"] for n in await r.json()] == ["X"]
    r = await app_client.delete(f"/api/pacs-nodes/{node}", headers=admin)
    assert r.status == 204
    r = await app_client.get(f"/api/pacs-nodes/{node}", headers=admin)
    assert r.status == 404


@pytest.mark.parametrize("how", ["c-move", "c-get", "dicomweb"])
async def test_coordinator_imports_a_study_into_a_case(app_client, world, pacs, how):
    fields = dicomweb(pacs) if how == "dicomweb" else dimse(pacs, how)
    node = await add_node(app_client, world, pacs, "Orthanc", **fields)
    case = await new_case(app_client, world)
    url = f"/api/consultations/{world.consultation_id}/cases/{case}/imports"
    r = await app_client.post(url, json={"node_id": node, "study_instance_uid": STUDY},
                              headers=world.auth("coordinator"))
    assert r.status == 202, await r.text()
    started = await r.json()
    assert started["instances_total"] == SLICES
    job = await wait_for(app_client, world, started["id"])
    assert job["status"] == "done", job
    assert job["instances_done"] == SLICES and job["instances_failed"] == 0
    assert job["seen"] == sorted(job["seen"])  # progress only goes up

    # The case now has the study, and a doctor of the consultation reads its pixels.
    r = await app_client.get(f"/api/consultations/{world.consultation_id}",
                             headers=world.auth("NDI"))
    [mine] = [c for c in (await r.json())["cases"] if c["id"] == case]
    assert mine["study_instance_uids"] == [STUDY]
    first = pydicom.dcmread(io.BytesIO(pacs.slices[0]))
    r = await app_client.get(
        f"/dicomweb/studies/{STUDY}/series/{first.SeriesInstanceUID}/instances/"
        f"{first.SOPInstanceUID}/frames/1",
        headers={**world.auth("NDI"),
                 "Accept": 'multipart/related; type="application/octet-stream"'})
    assert r.status == 200
    assert first.PixelData in await r.read()

    r = await app_client.get(f"/api/consultations/{world.consultation_id}/imports",
                             headers=world.auth("coordinator"))
    assert [j["id"] for j in await r.json()] == [started["id"]]
    async with session_factory(create_engine(world.settings.database_url))() as session:
        actions = [e.action for e in await session.scalars(
            select(AuditEvent).where(AuditEvent.object_type == "import"))]
    assert actions == ["pacs.import", "pacs.import.done"]


async def test_import_refuses_a_missing_study_or_another_patient(app_client, world, pacs):
    node = await add_node(app_client, world, pacs, "Orthanc", **dimse(pacs))
    coordinator = world.auth("coordinator")
    case = await new_case(app_client, world, patient_id="SOMEONE-ELSE")
    url = f"/api/consultations/{world.consultation_id}/cases/{case}/imports"
    r = await app_client.post(url, json={"node_id": node, "study_instance_uid": STUDY},
                              headers=coordinator)
    assert r.status == 409 and (await r.json())["error"]["code"] == "patient_mismatch"
    r = await app_client.post(url, json={"node_id": node, "study_instance_uid": "1.2.3.4"},
                              headers=coordinator)
    assert r.status == 422 and (await r.json())["error"]["field"] == "study_instance_uid"
    r = await app_client.post(url, json={"node_id": 999, "study_instance_uid": STUDY},
                              headers=coordinator)
    assert r.status == 422 and (await r.json())["error"]["field"] == "node_id"
    r = await app_client.post(url, json={"node_id": node, "study_instance_uid": "1..2"},
                              headers=coordinator)
    assert r.status == 422
    r = await app_client.post(url, json={"node_id": node, "study_instance_uid": STUDY},
                              headers=world.auth("NDI"))
    assert r.status == 403
    async with session_factory(create_engine(world.settings.database_url))() as session:
        assert list(await session.scalars(select(ImportJob))) == []


async def test_a_failed_import_is_retried(app_client, world, pacs):
    """Orthanc first knows our SCP at a wrong port: the C-MOVE fails, the job says why; once
    Orthanc's admin corrects it, a retry brings the study."""
    async with aiohttp.ClientSession() as http, http.put(f"{pacs.url}/modalities/hoichan",
                        json={"AET": "HOICHAN", "Host": "127.0.0.1",
                              "Port": free_port()}) as r:
        assert r.status == 200
    node = await add_node(app_client, world, pacs, "Orthanc", **dimse(pacs))
    case = await new_case(app_client, world)
    r = await app_client.post(
        f"/api/consultations/{world.consultation_id}/cases/{case}/imports",
        json={"node_id": node, "study_instance_uid": STUDY}, headers=world.auth("coordinator"))
    job = await wait_for(app_client, world, (await r.json())["id"])
    assert job["status"] == "failed" and job["error"], job
    assert job["instances_done"] == 0 and job["attempts"] == 1
    r = await app_client.post(f"/api/imports/{job['id']}/retry", headers=world.auth("NDI"))
    assert r.status == 403

    async with aiohttp.ClientSession() as http, http.put(f"{pacs.url}/modalities/hoichan",
                        json={"AET": "HOICHAN", "Host": "127.0.0.1",
                              "Port": pacs.scp_port}) as r:
        assert r.status == 200
    r = await app_client.post(f"/api/imports/{job['id']}/retry",
                              headers=world.auth("coordinator"))
    assert r.status == 202, await r.text()
    job = await wait_for(app_client, world, job["id"])
    assert job["status"] == "done" and job["attempts"] == 2 and job["error"] == ""
    r = await app_client.post(f"/api/imports/{job['id']}/retry",
                              headers=world.auth("coordinator"))
    assert r.status == 409


async def test_an_import_cut_off_by_a_restart_runs_again(world, pacs):
    """A job the previous process left running (it died) is run again when the app starts."""
    settings = make_settings(world.settings.database_url, world.settings.data_dir,
                             dicom_port=pacs.scp_port)
    async with TestClient(TestServer(create_app(settings))) as client:
        node = await add_node(client, world, pacs, "Orthanc", **dimse(pacs, "c-get"))
        case = await new_case(client, world)
    engine = create_engine(world.settings.database_url)
    async with session_factory(engine).begin() as session:
        session.add(ImportJob(node_id=node, case_id=case, study_instance_uid=STUDY,
                              status=ImportStatus.running, instances_total=SLICES,
                              attempts=1, requested_by_id=world.user("coordinator").id))
    await engine.dispose()
    async with TestClient(TestServer(create_app(settings))) as client:
        r = await client.get(f"/api/consultations/{world.consultation_id}/imports",
                             headers=world.auth("coordinator"))
        [job] = await r.json()
        job = await wait_for(client, world, job["id"])
        assert job["status"] == "done" and job["attempts"] == 2
        assert job["instances_done"] == SLICES


async def test_a_job_held_by_another_node_waits_for_its_lease(world, pacs, monkeypatch):
    """Several nodes share the database: a job another node runs is left alone while that
    node's lease holds, and taken over once it runs out (that node died)."""
    monkeypatch.setattr(imports, "ADOPT_INTERVAL_S", 0.2)
    settings = make_settings(world.settings.database_url, world.settings.data_dir,
                             node_id="b")
    async with TestClient(TestServer(create_app(settings))) as client:
        node = await add_node(client, world, pacs, "Orthanc", **dimse(pacs, "c-get"))
        case = await new_case(client, world)
        engine = create_engine(world.settings.database_url)
        try:
            async with session_factory(engine).begin() as session:
                job = ImportJob(node_id=node, case_id=case, study_instance_uid=STUDY,
                                status=ImportStatus.running, instances_total=SLICES,
                                attempts=1, requested_by_id=world.user("coordinator").id,
                                runner="a", lease_until=utcnow() + timedelta(seconds=2))
                session.add(job)
            # Time must pass: five looks for jobs to take over, none takes this one.
            await asyncio.sleep(1.0)
            async with session_factory(engine)() as session:
                held = await session.get(ImportJob, job.id)
                assert held is not None
                assert (held.attempts, held.runner, held.instances_done) == (1, "a", 0)
        finally:
            await engine.dispose()
        done = await wait_for(client, world, job.id)
        assert done["status"] == "done" and done["attempts"] == 2
        assert done["instances_done"] == SLICES


async def dcmtk(*args: str, check: bool = True) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"})
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0 or not check, text
    return proc.returncode or 0, text


async def test_our_search_finds_what_dcmtk_findscu_finds(app_client, world, pacs):
    """The same keys through dcmtk's findscu and through our API give the same studies."""
    other = Patient("REMOTE-8", "PHAM^VAN^BINH", "19800101", "M")
    for data in series("1.2.826.0.1.3680043.9.7777.501", 2, other, date(2026, 10, 3)):
        await pacs.upload(data)
    node = await add_node(app_client, world, pacs, "Orthanc", **dimse(pacs))
    for keys, params in ((["PatientName=PHAM*"], {"patient_name": "PHAM*"}),
                         (["StudyDate=20261003-"], {"study_date_from": "2026-10-03"}),
                         (["PatientID=REMOTE-7"], {"patient_id": "REMOTE-7"})):
        _, out = await dcmtk("findscu", "-S", "-aet", "HOICHAN", "-aec", pacs.aet,
                          "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                          *[a for k in keys for a in ("-k", k)],
                          "127.0.0.1", str(pacs.dicom_port))
        theirs = set(re.findall(r"\(0020,000d\) UI \[([0-9.]+)\]", out))
        r = await app_client.get(f"/api/pacs-nodes/{node}/studies", params=params,
                                 headers=world.auth("coordinator"))
        ours = {s["study_instance_uid"] for s in await r.json()}
        assert ours == theirs and ours, (keys, ours, theirs)


async def test_dcmtk_movescu_sends_a_study_from_the_pacs_to_our_scp(app_client, world, pacs):
    """A C-MOVE that someone else starts (dcmtk's movescu) lands in our store as well."""
    await dcmtk("movescu", "-S", "-aet", "HOICHAN", "-aec", pacs.aet, "-aem", "HOICHAN",
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY}",
                "127.0.0.1", str(pacs.dicom_port))
    async with session_factory(create_engine(world.settings.database_url))() as session:
        rows = list(await session.scalars(select(DicomInstance)))
    assert len(rows) == SLICES and {r.received_from.split("@")[0] for r in rows} == \
        {"ORTHANC"}


async def test_patching_a_node_with_nulls_clears_or_refuses(app_client, world, pacs):
    admin = world.auth("admin")
    node = await add_node(app_client, world, pacs, "Orthanc", **dimse(pacs))
    for body, field in (({"port": None}, None), ({"ae_title": None}, None),
                        ({"name": None}, "name"), ({"retrieve": None}, "retrieve")):
        r = await app_client.patch(f"/api/pacs-nodes/{node}", json=body, headers=admin)
        assert r.status == 422, (body, await r.text())
        if field:
            assert (await r.json())["error"]["field"] == field
    r = await app_client.patch(f"/api/pacs-nodes/{node}",
                               json={"port": None, "host": None, "ae_title": None,
                                     "kind": "dicomweb"}, headers=admin)
    assert r.status == 422  # the kind is fixed when the node is made
    r = await app_client.get(f"/api/pacs-nodes/{node}", headers=admin)
    assert r.status == 200 and (await r.json())["port"] == pacs.dicom_port


async def test_the_scp_can_admit_only_the_configured_nodes(world, pacs):
    """With HOICHAN_DICOM_CALLERS_FROM_NODES, the AE titles of the DIMSE nodes are the ones
    let in, following the nodes as admins add and remove them."""
    settings = make_settings(world.settings.database_url, world.settings.data_dir,
                             dicom_port=pacs.scp_port, dicom_callers_from_nodes=True)

    async def echo(calling: str) -> bool:
        rc, _ = await dcmtk("echoscu", "-aet", calling, "-aec", "HOICHAN", "127.0.0.1",
                            str(pacs.scp_port), check=False)
        return rc == 0

    async with TestClient(TestServer(create_app(settings))) as client:
        assert not await echo("ORTHANC")  # no node yet: nobody
        node = await add_node(client, world, pacs, "Orthanc", **dimse(pacs))
        assert await echo("ORTHANC") and not await echo("INTRUDER")
        r = await client.post(
            f"/api/consultations/{world.consultation_id}/cases/{await new_case(client, world)}"
            "/imports", json={"node_id": node, "study_instance_uid": STUDY},
            headers=world.auth("coordinator"))
        assert (await wait_for(client, world, (await r.json())["id"]))["status"] == "done"
        r = await client.delete(f"/api/pacs-nodes/{node}", headers=world.auth("admin"))
        assert r.status == 204
        assert not await echo("ORTHANC")
