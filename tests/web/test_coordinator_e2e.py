"""The coordinator's pages in headless Chromium against the real server: the demo coordinator
schedules a consultation for tomorrow (Bạch Mai's expert as host, two doctors and a whole
hospital invited), finds it in the week list, adds a case and attaches a study found on a
PACS (Debian's Orthanc over DICOMweb) with the import's progress shown until done; and
cancels a consultation from the list after confirming in place."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from app.pacs.synth import Patient, series
from tests.pacs.orthanc import Orthanc, start_orthanc
from tests.web.helpers import DEMO_PASSWORD, DemoServer, PageLog, api, token

COORDINATOR = "coordinator@demo.hoichan.vn"
ADMIN = "admin@demo.hoichan.vn"
ZONE = "Asia/Ho_Chi_Minh"
STUDY = "1.2.826.0.1.3680043.9.7777.851"
PRIOR = "1.2.826.0.1.3680043.9.7777.852"  # the same patient's earlier study
PATIENT = Patient("E2E-0042", "TRAN^VAN^BINH", "19580704", "M")
SLICES = 3


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    """Orthanc holding two 3-slice CTs of the case's patient, knowing us as HOICHAN for
    C-FIND and C-GET (the demo server's SCP is off, so C-MOVE cannot work)."""
    # Our AE title as a known peer; the port only matters for C-MOVE, which is not used.
    pacs = start_orthanc(tmp_path / "orthanc", {"hoichan": ("HOICHAN", 104)})
    try:
        # Plain HTTP: Playwright's sync API holds this thread's event loop.
        studies = [*series(STUDY, SLICES, PATIENT, date(2026, 11, 2), "ACC-E2E"),
                   *series(PRIOR, SLICES, PATIENT, date(2025, 5, 20), "ACC-E2E-0")]
        for data in studies:
            req = urllib.request.Request(f"{pacs.url}/instances", data=data, method="POST")
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
        yield pacs
    finally:
        pacs.stop()


def sign_in(page: Page, server: DemoServer, email: str) -> None:
    page.goto(server.url + "/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_coordinator_schedules_and_attaches_a_pacs_study(
        page: Page, page_log: PageLog, demo_server: DemoServer, orthanc: Orthanc) -> None:
    admin = token(demo_server, ADMIN)
    status, node = api(demo_server, "POST", "/api/pacs-nodes", admin, {
        "name": "Orthanc e2e", "kind": "dicomweb", "dicomweb_url": f"{orthanc.url}/dicom-web"})
    assert status == 201, node
    status, dimse = api(demo_server, "POST", "/api/pacs-nodes", admin, {
        "name": "Orthanc DIMSE e2e", "kind": "dimse", "ae_title": orthanc.aet,
        "host": "127.0.0.1", "port": orthanc.dicom_port, "retrieve": "c-move"})
    assert status == 201, dimse

    tomorrow = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=1)).date().isoformat()
    title = "Hội chẩn e2e: nốt phổi trái"

    # A coordinator's home is the schedule.
    sign_in(page, demo_server, COORDINATOR)
    expect(page).to_have_url(re.compile(r"/coordinator\?|/coordinator$"))
    expect(page.get_by_test_id("schedule")).to_have_attribute("aria-busy", "false")

    # Create: title, window in Asia/Ho_Chi_Minh, Bạch Mai's expert as host.
    page.get_by_test_id("new-consultation").click()
    page.get_by_test_id("title").fill(title)
    page.get_by_test_id("timezone").fill(ZONE)
    page.get_by_test_id("start").fill(f"{tomorrow}T14:00")
    page.get_by_test_id("end").fill(f"{tomorrow}T15:30")
    hospital = page.get_by_test_id("host-hospital")
    expect(hospital.locator("option", has_text="Bạch Mai")).to_have_count(1)
    hospital.select_option(label=hospital.locator("option", has_text="Bạch Mai").inner_text())
    expert = page.get_by_test_id("host-expert")
    expect(expert.locator("option", has_text="Nguyễn Văn An")).to_have_count(1)
    expert.select_option(label="GS. Nguyễn Văn An")

    # Two provincial doctors (one as presenter), and a district hospital as observers.
    page.get_by_test_id("tier-filter").select_option("provincial")
    results = page.get_by_test_id("doctor-results")
    # The 1-4-4-2 network's four and the demo's observing provincial hospital's.
    expect(results.get_by_test_id("doctor")).to_have_count(5)
    expect(results.get_by_test_id("doctor").filter(has_text="Nguyễn Văn An")).to_have_count(0)
    page.get_by_test_id("new-invitee-role").select_option("presenter")
    results.get_by_test_id("doctor").filter(has_text="Trần Thị Bình").get_by_test_id(
        "invite-doctor").click()
    page.get_by_test_id("new-invitee-role").select_option("participant")
    page.get_by_test_id("doctor-search").fill("Cường")
    expect(results.get_by_test_id("doctor")).to_have_count(1)
    results.get_by_test_id("invite-doctor").click()
    page.get_by_test_id("tier-filter").select_option("district")
    filt = page.get_by_test_id("hospital-filter")
    expect(filt.locator("option", has_text="Giao Thủy")).to_have_count(1)
    filt.select_option(label=filt.locator("option", has_text="Giao Thủy").inner_text())
    expect(page.get_by_test_id("hospital-role")).to_have_value("observer")
    page.get_by_test_id("invite-hospital").click()
    invitees = page.get_by_test_id("invitees").get_by_test_id("invitee")
    expect(invitees).to_have_count(3)
    page.get_by_test_id("save").click()

    expect(page).to_have_url(re.compile(r"/coordinator/consultations/\d+\?created=1$"))
    cid = int(re.search(r"/consultations/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    coordinator = token(demo_server, COORDINATOR)
    status, saved = api(demo_server, "GET", f"/api/consultations/{cid}", coordinator)
    assert status == 200 and saved["timezone"] == ZONE and saved["status"] == "scheduled"
    assert saved["host_hospital"]["code"] == "BM"
    start = datetime.fromisoformat(saved["start"]).astimezone(ZoneInfo(ZONE))
    assert (start.date().isoformat(), start.hour, start.minute) == (tomorrow, 14, 0)
    roles = sorted((i["user"]["name"] if i["user"] else i["hospital"]["code"], i["role"])
                   for i in saved["invitations"])
    assert roles == [("BS. Lê Văn Cường", "participant"), ("BS. Trần Thị Bình", "presenter"),
                     ("GS. Nguyễn Văn An", "host"), ("GTH", "observer")], roles
    expect(page.get_by_test_id("invitees").get_by_test_id("invitee")).to_have_count(4)

    # In the week list, with its status, host hospital and times in its zone.
    page.get_by_test_id("back-to-schedule").click()
    item = page.locator(f"[data-testid=schedule-item][data-consultation-id='{cid}']")
    expect(item).to_contain_text(title)
    expect(item.get_by_test_id("status")).to_have_text("Scheduled")
    expect(item).to_contain_text("Bạch Mai")
    expect(item).to_contain_text(f"({ZONE})")
    expect(item).to_contain_text("GS. Nguyễn Văn An")
    expect(page.locator(f"[data-testid=schedule-day][data-date='{tomorrow}']")).to_contain_text(
        title)

    # Edit: a longer window, saved in place.
    item.get_by_test_id("edit-link").click()
    expect(page.get_by_test_id("start")).to_have_value(f"{tomorrow}T14:00")
    page.get_by_test_id("end").fill(f"{tomorrow}T16:00")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("saved")).to_be_visible()
    _, saved = api(demo_server, "GET", f"/api/consultations/{cid}", coordinator)
    end = datetime.fromisoformat(saved["end"]).astimezone(ZoneInfo(ZONE))
    assert (end.hour, end.minute) == (16, 0)

    # A case for the study's patient.
    page.get_by_test_id("case-patient-id").fill(PATIENT.patient_id)
    page.get_by_test_id("case-patient-name").fill("TRAN VAN BINH")
    page.get_by_test_id("case-birth-date").fill("1958-07-04")
    page.get_by_test_id("case-sex").select_option("M")
    page.get_by_test_id("case-question").fill("Nốt mờ thùy dưới phổi trái, xin ý kiến.")
    page.get_by_test_id("add-case").click()
    case = page.get_by_test_id("case")
    expect(case).to_have_count(1)
    expect(case).to_contain_text(PATIENT.patient_id)

    # Search the PACS (DICOMweb), import the study, watch it to done.
    case.get_by_test_id("attach-study").click()
    expect(case.get_by_test_id("pacs-node").locator("option")).to_have_count(2)
    case.get_by_test_id("pacs-node").select_option(label="Orthanc e2e")
    expect(case.get_by_test_id("pacs-patient-id")).to_have_value(PATIENT.patient_id)
    case.get_by_test_id("pacs-search").click()
    study = case.locator(f"[data-testid=study][data-study-uid='{STUDY}']")
    expect(study).to_contain_text("2026-11-02")
    expect(study).to_contain_text("CT")
    study.get_by_test_id("import-study").click()
    job = case.get_by_test_id("import")
    expect(job).to_have_count(1)
    expect(job.get_by_test_id("import-status")).to_have_text("Done", timeout=30_000)
    expect(job.get_by_test_id("import-count")).to_have_text(f"{SLICES} of {SLICES} images")
    expect(case.get_by_test_id("case-study")).to_have_text(STUDY)

    # Over DIMSE with C-MOVE the import fails (no SCP here) and says why; the admin switches
    # the node to C-GET and Retry brings the prior study in.
    case.get_by_test_id("pacs-node").select_option(label="Orthanc DIMSE e2e")
    case.get_by_test_id("pacs-search").click()
    prior = case.locator(f"[data-testid=study][data-study-uid='{PRIOR}']")
    expect(prior).to_contain_text("2025-05-20")
    prior.get_by_test_id("import-study").click()
    failed = case.locator("[data-testid=import][data-status=failed]")
    expect(failed.get_by_test_id("import-error")).to_contain_text("C-MOVE needs our DICOM SCP")
    expect(failed.get_by_test_id("import-status")).to_have_text("Failed")
    status, _ = api(demo_server, "PATCH", f"/api/pacs-nodes/{dimse['id']}", admin,
                    {"retrieve": "c-get"})
    assert status == 200
    failed.get_by_test_id("retry-import").click()
    retried = case.get_by_test_id("import").nth(1)
    expect(retried.get_by_test_id("import-status")).to_have_text("Done", timeout=30_000)
    expect(retried.get_by_test_id("import-count")).to_have_text(f"{SLICES} of {SLICES} images")
    expect(retried.get_by_test_id("retry-import")).to_have_count(0)
    expect(case.get_by_test_id("case-study")).to_have_count(2)
    status, saved = api(demo_server, "GET", f"/api/consultations/{cid}", coordinator)
    assert sorted(saved["cases"][0]["study_instance_uids"]) == [STUDY, PRIOR]
    assert not page_log.problems(), page_log.problems()


def test_coordinator_cancels_after_confirming_in_place(
        page: Page, page_log: PageLog, demo_server: DemoServer) -> None:
    coordinator = token(demo_server, COORDINATOR)
    _, people = api(demo_server, "GET", "/api/users?role=doctor&q=Khoa", coordinator)
    host = people["items"][0]
    day = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=2)).date()
    status, c = api(demo_server, "POST", "/api/consultations", coordinator, {
        "title": "Hội chẩn e2e: sẽ hủy", "start": f"{day}T08:00:00+07:00",
        "end": f"{day}T09:00:00+07:00", "timezone": ZONE,
        "host_hospital_id": host["hospital"]["id"], "host_user_id": host["id"]})
    assert status == 201, c
    sign_in(page, demo_server, COORDINATOR)
    expect(page).to_have_url(re.compile(r"/coordinator"))
    page.goto(f"{demo_server.url}/coordinator?view=day&date={day}&zone={ZONE}")
    item = page.locator(f"[data-testid=schedule-item][data-consultation-id='{c['id']}']")
    item.get_by_test_id("cancel").click()
    expect(item.get_by_test_id("cancel-confirm")).to_contain_text("Cancel “Hội chẩn e2e: sẽ hủy”?")
    item.get_by_test_id("keep").click()
    expect(item.get_by_test_id("cancel-confirm")).to_have_count(0)
    item.get_by_test_id("cancel").click()
    item.get_by_test_id("confirm-cancel").click()
    item = page.locator(f"[data-testid=schedule-item][data-consultation-id='{c['id']}']")
    expect(item.get_by_test_id("status")).to_have_text("Cancelled")
    expect(item.get_by_test_id("cancel")).to_have_count(0)
    _, after = api(demo_server, "GET", f"/api/consultations/{c['id']}", coordinator)
    assert after["status"] == "cancelled"

    # The API's 422 is shown next to its field: a window already over.
    past = (datetime.now(ZoneInfo(ZONE)) - timedelta(days=2)).date()
    new_consultation(page, demo_server, host, "Hội chẩn e2e: quá khứ", f"{past}T08:00",
                     f"{past}T09:00")
    expect(page.locator(".field-error[data-field=end]")).to_contain_text("over already")

    # A clash is shown next to the field: the same expert, the same hour, a new consultation.
    status, c2 = api(demo_server, "POST", "/api/consultations", coordinator, {
        "title": "Hội chẩn e2e: giờ bận", "start": f"{day}T10:00:00+07:00",
        "end": f"{day}T11:00:00+07:00", "timezone": ZONE,
        "host_hospital_id": host["hospital"]["id"], "host_user_id": host["id"]})
    assert status == 201, c2
    new_consultation(page, demo_server, host, "Hội chẩn e2e: trùng giờ", f"{day}T10:30",
                     f"{day}T11:30")
    clash = page.locator(".field-error[data-field=host_user_id]")
    expect(clash).to_contain_text("already booked")
    expect(clash).to_contain_text("giờ bận")
    assert "/coordinator/new" in page.url
    # The browser logs the refused POSTs itself; nothing else may be wrong.
    problems = [p for p in page_log.problems()
                if "status of 409" not in p and "status of 422" not in p]
    assert not problems, problems


def new_consultation(page: Page, server: DemoServer, host: dict[str, Any], title: str,
                     start: str, end: str) -> None:
    """The new-consultation form filled in (the host's hospital picks the host) and saved."""
    page.goto(f"{server.url}/coordinator/new")
    page.get_by_test_id("title").fill(title)
    page.get_by_test_id("timezone").fill(ZONE)
    page.get_by_test_id("start").fill(start)
    page.get_by_test_id("end").fill(end)
    hospital = page.get_by_test_id("host-hospital")
    expect(hospital.locator("option", has_text=host["hospital"]["name"])).to_have_count(1)
    hospital.select_option(str(host["hospital"]["id"]))
    expect(page.get_by_test_id("host-expert")).to_have_value(str(host["id"]))
    page.get_by_test_id("save").click()
