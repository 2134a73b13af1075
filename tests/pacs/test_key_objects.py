"""The minutes' key images and measurements written to the study and its PACS: a study
imported from Orthanc, key images marked in the draft (bad marks refused), the minutes
signed, then the Key Object Selection document and the TID 1500 SR kept here (QIDO lists
them), held by Orthanc, and drawn in the PDF; a PACS that is down is reported, not
silently passed over."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pydicom
import pytest
from pydicom.dataset import Dataset
from pypdf import PdfReader

from tests.api.dbcheck import audit_events, error_of
from tests.api.minutes_helpers import FILLED, ok, put, url
from tests.pacs import test_remote
from tests.pacs.test_remote import STUDY, add_node, dicomweb, dimse, new_case, wait_for

# The remote tests' Orthanc holding a CT study, and the app whose SCP it knows.
pacs = test_remote.pacs
app_client = test_remote.app_client

KOS = "1.2.840.10008.5.1.4.1.1.88.59"
SR = "1.2.840.10008.5.1.4.1.1.88.34"
LENGTH_MM = 41.25


def _numbers(items: Any) -> list[float]:
    """The NUM values anywhere in an SR content tree."""
    found: list[float] = []
    for item in items:
        if item.get("ValueType") == "NUM":
            found += [float(v.NumericValue) for v in item.MeasuredValueSequence]
        if "ContentSequence" in item:
            found += _numbers(item.ContentSequence)
    return found


async def _orthanc_file(pacs, sop_uid: str) -> Dataset:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{pacs.url}/tools/lookup", data=sop_uid) as r:
            [found] = await r.json()
        async with http.get(f"{pacs.url}/instances/{found['ID']}/file") as r:
            return pydicom.dcmread(io.BytesIO(await r.read()))


async def _orthanc_classes(pacs) -> set[str]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{pacs.url}/dicom-web/studies/{STUDY}/instances") as r:
        assert r.status == 200, await r.text()
        return {i["00080016"]["Value"][0] for i in await r.json()}


@pytest.mark.parametrize("how", ["c-get", "dicomweb"])
async def test_signed_key_images_reach_the_study_and_its_pacs(app_client, world, pacs, how):
    fields = dicomweb(pacs) if how == "dicomweb" else dimse(pacs, "c-get")
    node = await add_node(app_client, world, pacs, "Orthanc", **fields)
    case = await new_case(app_client, world)
    r = await app_client.post(
        f"/api/consultations/{world.consultation_id}/cases/{case}/imports",
        json={"node_id": node, "study_instance_uid": STUDY}, headers=world.auth("coordinator"))
    assert r.status == 202, await r.text()
    assert (await wait_for(app_client, world, (await r.json())["id"]))["status"] == "done"

    first = pydicom.dcmread(io.BytesIO(pacs.slices[2]))
    mark = {"study_instance_uid": STUDY, "series_instance_uid": first.SeriesInstanceUID,
            "sop_instance_uid": first.SOPInstanceUID, "caption": "Khối mờ thùy trên phải",
            "measurements": [{"points": [[120.5, 140], [180, 200.25]],
                              "length_mm": LENGTH_MM, "label": "đường kính"}]}
    await ok(await put(app_client, world, "BM", FILLED))

    # Marks that name no image held here, or badly, are refused; the draft stays.
    for bad, status, code in [
            ({"sop_instance_uid": "1.2.3.4"}, 422, "unknown_image"),
            ({"series_instance_uid": "1.2.3.4"}, 422, "unknown_image"),
            ({"frame": 2}, 422, "frame_out_of_range"),
            ({"sop_instance_uid": "1.2.abc"}, 422, None),
            ({"sop_instance_uid": "1." + "2" * 70}, 422, None),
            ({"measurements": [{"points": [[1, 2]], "length_mm": 3.0}]}, 422, None)]:
        r = await put(app_client, world, "BM", {**FILLED, "key_images": [mark | bad]},
                      revision=1)
        await error_of(r, status, code)
    m = await ok(await app_client.get(url(world), headers=world.auth("BM")))
    assert (m["revision"], m["content"]["key_images"]) == (1, [])

    m = await ok(await put(app_client, world, "BM", {**FILLED, "key_images": [mark]},
                           revision=1))
    assert m["content"]["key_images"][0]["frame"] == 1
    send = url(world, "/key-objects")
    await error_of(await app_client.post(send, headers=world.auth("BM")), 409, "not_signed")
    await error_of(await app_client.post(send, headers=world.auth("HYE")), 403)
    await ok(await app_client.put(url(world, "/secretary"), json={
        "user_id": world.user("NDI").id, "revision": 2}, headers=world.auth("BM")))
    await ok(await app_client.post(url(world, "/sign"), json={"revision": 3},
                                   headers=world.auth("BM")))
    m = await ok(await app_client.post(url(world, "/sign"), json={"revision": 4},
                                       headers=world.auth("NDI")))
    assert m["status"] == "signed"

    sent = await ok(await app_client.post(send, headers=world.auth("NDI")))
    [study] = sent["studies"]
    assert (study["status"], study["node"], study["error"]) == ("sent", "Orthanc", "")

    # Orthanc holds both in the study; the SR's measurement reads back.
    assert {KOS, SR} <= await _orthanc_classes(pacs)
    report = await _orthanc_file(pacs, study["sr_sop_instance_uid"])
    assert (report.StudyInstanceUID, report.Manufacturer) == (STUDY, "Hoichan")
    assert _numbers(report.ContentSequence) == [LENGTH_MM]
    kos = await _orthanc_file(pacs, study["kos_sop_instance_uid"])
    [evidence] = kos.CurrentRequestedProcedureEvidenceSequence
    assert (evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
            .ReferencedSOPInstanceUID == first.SOPInstanceUID)

    # Kept here too: the study lists them when it is opened again.
    r = await app_client.get(f"/dicomweb/studies/{STUDY}/instances",
                             headers={**world.auth("NDI"), "Accept": "application/dicom+json"})
    assert r.status == 200, await r.text()
    assert {KOS, SR} <= {i["00080016"]["Value"][0] for i in await r.json()}

    # The PDF draws the marked frame.
    r = await app_client.get(url(world, "/pdf"), headers=world.auth("NDI"))
    assert r.status == 200, await r.text()
    pages = PdfReader(io.BytesIO(await r.read())).pages
    assert sum(len(p.images) for p in pages) == 1

    # With the PACS gone, the answer says so; the objects are the same, kept once.
    pacs.stop()
    again = await ok(await app_client.post(send, headers=world.auth("BM")))
    [failed] = again["studies"]
    assert failed["status"] == "failed" and failed["error"]
    assert failed["sr_sop_instance_uid"] == study["sr_sop_instance_uid"]
    outcomes = [(e.outcome, e.detail.get("node"))
                for e in await audit_events(world.settings, "minutes.key_objects.send")]
    assert outcomes == [("success", "Orthanc"), ("failure", "Orthanc")]
    written = [(e.outcome, e.detail.get("code"))
               for e in await audit_events(world.settings, "minutes.key_objects")]
    assert written == [("denied", "not_signed"), ("denied", "forbidden"), ("success", None),
                       ("success", None)]
