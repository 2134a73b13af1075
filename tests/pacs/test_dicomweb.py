"""DICOMweb over our store: QIDO-RS and WADO-RS, access by consultation, every read and
every refusal audited."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta

import cv2
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.demo import DEMO_STUDY_UID
from app.dicomweb.refusals import route_action
from app.pacs.ingest import ingest
from app.pacs.models import DicomInstance
from app.pacs.store import store_root
from app.pacs.synth import Patient, series, store_series
from tests.pacs.multipart import parts
from tests.pacs.trail import dicomweb_events, total

OTHER_STUDY = "1.2.826.0.1.3680043.9.7777.1"


@pytest.fixture
async def stored(world):
    """The demo case's CT (3 slices), a study in no case, and a JPEG 2000 MR."""
    engine = create_engine(world.settings.database_url)
    sessions = session_factory(engine)
    await store_series(sessions, world.settings.data_dir, DEMO_STUDY_UID, 3)
    await store_series(sessions, world.settings.data_dir, OTHER_STUDY, 2,
                       Patient("OTHER-1", "TRAN^OTHER", "19800101", "F"))
    mr = get_testdata_file("MR_small_jp2klossless.dcm")
    with open(mr, "rb") as f:
        await ingest(sessions, world.settings.data_dir, f.read(), "test")
    yield sessions
    await engine.dispose()


async def qido(client, world, who: str, path: str = "/dicomweb/studies", **params):
    r = await client.get(path, params=params, headers=world.auth(who))
    assert r.status == 200, await r.text()
    assert r.content_type == "application/dicom+json"
    return await r.json()


async def test_search_is_limited_to_what_the_caller_may_read(client, world, stored):
    admin = {s["0020000D"]["Value"][0] for s in await qido(client, world, "admin")}
    assert {DEMO_STUDY_UID, OTHER_STUDY} <= admin and len(admin) == 3
    doctor = await qido(client, world, "NDI")
    assert [s["0020000D"]["Value"][0] for s in doctor] == [DEMO_STUDY_UID]
    study = doctor[0]
    assert study["00100020"]["Value"] == ["HC-0001"]
    assert study["00080061"]["Value"] == ["CT"]
    assert study["00201208"]["Value"] == [3] and study["00201206"]["Value"] == [1]


async def test_matching_keys(client, world, stored):
    def uids(result):
        return [s["0020000D"]["Value"][0] for s in result]
    assert uids(await qido(client, world, "admin", PatientID="OTHER-1")) == [OTHER_STUDY]
    assert uids(await qido(client, world, "admin", PatientName="tran*")) == [OTHER_STUDY]
    assert OTHER_STUDY in uids(await qido(client, world, "admin", StudyDate="20261101-"))
    assert uids(await qido(client, world, "admin", StudyDate="19900101-19901231")) == []
    assert len(await qido(client, world, "admin", ModalitiesInStudy="MR")) == 1
    assert len(await qido(client, world, "admin", limit="1")) == 1
    r = await client.get("/dicomweb/studies", params={"Nonsense": "1"},
                         headers=world.auth("admin"))
    assert r.status == 400 and (await r.json())["error"]["field"] == "Nonsense"


async def test_series_instances_and_metadata(client, world, stored):
    base = f"/dicomweb/studies/{DEMO_STUDY_UID}"
    (series,) = await qido(client, world, "BM", base + "/series")
    series_uid = series["0020000E"]["Value"][0]
    instances = await qido(client, world, "BM", f"{base}/series/{series_uid}/instances")
    assert [i["00200013"]["Value"][0] for i in instances] == [1, 2, 3]
    meta = await qido(client, world, "BM", base + "/metadata")
    assert len(meta) == 3
    assert meta[0]["00280030"]["Value"] == [0.7, 0.7]  # pixel spacing, for measurements
    assert "BulkDataURI" in meta[0]["7FE00010"]


async def test_frames_equal_pydicoms_own_decoding(client, world, stored):
    async with stored() as session:
        rows = list(await session.scalars(select(DicomInstance)))
    for row in rows:
        path = world.settings.data_dir / "dicom" / row.path
        ds = pydicom.dcmread(path)
        series_uid, study_uid = ds.SeriesInstanceUID, ds.StudyInstanceUID
        r = await client.get(
            f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/"
            f"{row.sop_instance_uid}/frames/1", headers=world.auth("admin"))
        assert r.status == 200, await r.text()
        assert "gzip" not in r.headers.get("Content-Encoding", "")
        (frame,) = parts(await r.read(), r.headers["Content-Type"])
        expected = ds.pixel_array if int(ds.get("NumberOfFrames", 1) or 1) == 1 \
            else ds.pixel_array[0]
        got = np.frombuffer(frame, dtype=expected.dtype.newbyteorder("<")).reshape(
            expected.shape)
        assert np.array_equal(got, expected), row.transfer_syntax_uid


async def test_refusals(client, world, stored):
    r = await client.get("/dicomweb/studies")
    assert r.status == 401 and "error" in await r.json()
    r = await client.get(f"/dicomweb/studies/{OTHER_STUDY}/metadata", headers=world.auth("NDI"))
    assert r.status == 404  # not in any of the doctor's cases: not revealed
    r = await client.get(f"/dicomweb/studies/{DEMO_STUDY_UID}/series/1.2.3/instances/4.5/"
                         "frames/1", headers=world.auth("BM"))
    assert r.status == 404
    meta = await qido(client, world, "BM", f"/dicomweb/studies/{DEMO_STUDY_UID}/metadata")
    sop = meta[0]["00080018"]["Value"][0]
    series_uid = meta[0]["0020000E"]["Value"][0]
    url = f"/dicomweb/studies/{DEMO_STUDY_UID}/series/{series_uid}/instances/{sop}/frames/"
    for bad, status in [("2", 404), ("x", 400), ("0", 404)]:
        r = await client.get(url + bad, headers=world.auth("BM"))
        assert r.status == status, bad


async def test_reads_are_audited_per_reader_study_and_window(client, world, stored):
    await qido(client, world, "BM")
    meta = await qido(client, world, "BM", f"/dicomweb/studies/{DEMO_STUDY_UID}/metadata")
    urls = [f"/dicomweb/studies/{DEMO_STUDY_UID}/series/{m['0020000E']['Value'][0]}/"
            f"instances/{m['00080018']['Value'][0]}/frames/1" for m in meta]
    for _ in range(10):  # a viewer scrolling the three slices back and forth
        for url in urls:
            r = await client.get(url, headers=world.auth("BM"))
            assert r.status == 200
    events = await dicomweb_events(stored, lambda es: total(
        [e for e in es if e.action == "dicomweb.frames"], "requests") == 30)
    bm = world.user("BM")
    assert {(e.action, e.object_id, e.actor_id, e.actor_email, e.client_addr, e.outcome)
            for e in events} == {
        (action, DEMO_STUDY_UID, bm.id, bm.email, "127.0.0.1", "success")
        for action in ("dicomweb.search_studies", "dicomweb.metadata", "dicomweb.frames")}
    frames = [e for e in events if e.action == "dicomweb.frames"]
    # 30 frames served: a handful of windows, not a row each, which add up to every read.
    assert len(frames) < 10
    assert total(frames, "requests") == total(frames, "frames") == 30
    assert set().union(*(e.detail["instance_uids"] for e in frames)) == {
        m["00080018"]["Value"][0] for m in meta}
    for e in frames:
        assert e.detail["instances"] == len(e.detail["instance_uids"])
        first, last = (datetime.fromisoformat(e.detail["window"][k]) for k in ("first", "last"))
        assert e.at == first <= last <= first + timedelta(seconds=1)
    [metadata] = [e for e in events if e.action == "dicomweb.metadata"]
    assert (metadata.detail["requests"], metadata.detail["instances"]) == (1, 3)


async def test_refused_and_failed_reads_are_audited(client, world, stored):
    series_uid = (await qido(client, world, "BM", f"/dicomweb/studies/{DEMO_STUDY_UID}/series"
                             ))[0]["0020000E"]["Value"][0]
    asked = [
        ("GET", "/dicomweb/studies", None, 401),
        ("GET", f"/dicomweb/studies/{OTHER_STUDY}/metadata", "NDI", 404),  # not permitted
        ("GET", f"/dicomweb/studies/{OTHER_STUDY}/metadata", "NDI", 404),  # twice
        ("GET", "/dicomweb/studies/1.2.3.4/series", "NDI", 404),  # unknown
        ("GET", f"/dicomweb/studies/{DEMO_STUDY_UID}/series/{series_uid}/instances/4.5/"
                "frames/1,2", "BM", 404),
        ("GET", f"/dicomweb/studies/{OTHER_STUDY}/series/{series_uid}/instances/4.5/"
                "rendered", "NDI", 404),
        ("GET", "/dicomweb/series?StudyDate=2026", "BM", 400),
        ("POST", "/dicomweb/studies", "NDI", 403),
    ]
    for method, path, who, status in asked:
        r = await client.request(method, path, headers=world.auth(who) if who else {})
        assert r.status == status, (path, await r.text())
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\nnot dicom\r\n--b--\r\n"
    r = await client.post(f"/dicomweb/studies/{DEMO_STUDY_UID}", data=body, headers={
        **world.auth("coordinator"),
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
    assert r.status == 409

    events = await dicomweb_events(stored, lambda es: total(
        [e for e in es if e.outcome != "success"], "requests") == 9)
    refused = {(e.action, e.actor_email, e.object_id, e.outcome, e.detail["status"],
                e.detail["reason"], e.detail["requests"])
               for e in events if e.outcome != "success"}
    ndi, bm = world.user("NDI").email, world.user("BM").email
    assert refused == {
        ("dicomweb.search_studies", "", "", "denied", 401, "missing bearer token", 1),
        ("dicomweb.metadata", ndi, OTHER_STUDY, "denied", 404,
         "not permitted: answered as an unknown study", 2),
        ("dicomweb.search_series", ndi, "1.2.3.4", "failure", 404, "study not found", 1),
        ("dicomweb.frames", bm, DEMO_STUDY_UID, "failure", 404, "instance not found", 1),
        ("dicomweb.rendered", ndi, OTHER_STUDY, "denied", 404,
         "not permitted: answered as an unknown study", 1),
        ("dicomweb.search_series", bm, "", "failure", 400,
         "bad StudyDate match '2026': use YYYYMMDD or a range YYYYMMDD-YYYYMMDD", 1),
        ("dicomweb.store", ndi, "", "denied", 403,
         "storing studies is for coordinators and admins", 1),
        ("dicomweb.store", world.user("coordinator").email, DEMO_STUDY_UID, "failure", 409,
         "0xC000 cannot understand", 1),
    }
    by_action = {e.action: e for e in events if e.outcome != "success"}
    frames = by_action["dicomweb.frames"]
    assert (frames.detail["asked_series"], frames.detail["asked_instance"],
            frames.detail["asked_frames"]) == ([series_uid], ["4.5"], ["1,2"])
    [bad_search] = [e for e in events if e.detail.get("status") == 400]
    assert bad_search.detail["query"] == ["StudyDate=2026"]
    assert all(e.client_addr == "127.0.0.1" for e in events)
    # Nothing of the refused studies was read: no success event names them.
    assert not [e for e in events if e.outcome == "success" and e.object_id != DEMO_STUDY_UID]


async def test_dicomweb_client_package_reads_our_server(client, world, stored):
    url = str(client.make_url("/dicomweb"))
    token = world.token("BM")

    def use() -> tuple[list, list, list]:
        dw = DICOMwebClient(url, headers={"Authorization": f"Bearer {token}"})
        studies = dw.search_for_studies()
        meta = dw.retrieve_study_metadata(DEMO_STUDY_UID)
        first = meta[0]
        frames = dw.retrieve_instance_frames(
            DEMO_STUDY_UID, first["0020000E"]["Value"][0], first["00080018"]["Value"][0],
            frame_numbers=[1], media_types=(("application/octet-stream", "*"),))
        return studies, meta, frames

    studies, meta, frames = await asyncio.to_thread(use)
    assert [s["0020000D"]["Value"][0] for s in studies] == [DEMO_STUDY_UID]
    assert len(meta) == 3 and len(frames[0]) == 512 * 512 * 2


async def test_rendered_frames_and_thumbnails(client, world, stored):
    meta = await qido(client, world, "BM", f"/dicomweb/studies/{DEMO_STUDY_UID}/metadata")
    series_uid = meta[0]["0020000E"]["Value"][0]
    sop = meta[1]["00080018"]["Value"][0]
    instance = f"/dicomweb/studies/{DEMO_STUDY_UID}/series/{series_uid}/instances/{sop}"
    ds = pydicom.dcmread(next((world.settings.data_dir / "dicom").rglob(f"{sop}.dcm")))
    hu = ds.pixel_array * 1.0 + ds.RescaleIntercept
    for accept, window, magic in [("image/png", "40,400", b"\x89PNG"),
                                  ("image/jpeg", "-600,1500,linear", b"\xff\xd8")]:
        r = await client.get(instance + "/frames/1/rendered", params={"window": window},
                             headers={**world.auth("BM"), "Accept": accept})
        assert r.status == 200 and r.content_type == accept, await r.text()
        body = await r.read()
        assert body.startswith(magic)
        if accept == "image/png":
            image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_GRAYSCALE)
            expected = np.clip((hu - (40 - 200)) / 400 * 255, 0, 255).astype(np.uint8)
            assert image.shape == (512, 512)
            assert np.abs(image.astype(int) - expected).max() <= 1
    r = await client.get(f"/dicomweb/studies/{DEMO_STUDY_UID}/series/{series_uid}/thumbnail",
                         headers=world.auth("BM"))
    assert r.status == 200 and r.content_type == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert max(image.shape) == 128
    for params, status in [({"window": "40"}, 400), ({"window": "40,-1"}, 400),
                           ({"viewport": "0,10"}, 400), ({"quality": "500"}, 400)]:
        r = await client.get(instance + "/rendered", params=params, headers=world.auth("BM"))
        assert r.status == status, params
    r = await client.get(instance + "/rendered", headers={**world.auth("BM"),
                                                         "Accept": "image/gif"})
    assert r.status == 406


async def test_stow_rs_stores_through_the_same_ingest(client, world, stored):
    good = next(series("1.2.826.0.1.3680043.9.7777.55", slices=1))
    with open(get_testdata_file("CT_small.dcm"), "rb") as f:
        ct = f.read()
    url = str(client.make_url("/dicomweb"))
    coordinator, doctor = world.token("coordinator"), world.token("NDI")

    def send(token: str, datasets: list[bytes]) -> object:
        dw = DICOMwebClient(url, headers={"Authorization": f"Bearer {token}"})
        return dw.store_instances([pydicom.dcmread(io.BytesIO(d)) for d in datasets])

    response = await asyncio.to_thread(send, coordinator, [good, ct])
    stored_uids = [item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence]
    assert len(stored_uids) == 2
    # An empty FailedSOPSequence must not be taken for a failure (notes/real-peers.md).
    assert not response.get("FailedSOPSequence")
    async with stored() as session:
        assert {r.sop_instance_uid for r in await session.scalars(select(DicomInstance))} >= \
            set(stored_uids)
    with pytest.raises(Exception, match="403"):
        await asyncio.to_thread(send, doctor, [good])
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode() + \
        b"not dicom at all" + f"\r\n--{boundary}--\r\n".encode()
    r = await client.post("/dicomweb/studies", data=body, headers={
        **world.auth("coordinator"),
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert r.status == 409
    failure = (await r.json())["00081198"]["Value"][0]
    assert failure["00081197"]["Value"] == [0xC000]


@pytest.mark.parametrize("params,field", [
    ({"limit": "x"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "100000"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"StudyDate": "2026-11-20"}, None),
    ({"StudyDate": "20261120-20261301"}, None), ({"NoSuchKey": "1"}, "NoSuchKey"),
    ({"SOPInstanceUID": "1.2"}, "SOPInstanceUID"),
])
async def test_bad_query_parameters_get_a_clear_400(client, world, stored, params, field):
    r = await client.get("/dicomweb/studies", params=params, headers=world.auth("admin"))
    assert r.status == 400, (params, await r.text())
    error = (await r.json())["error"]
    assert error["message"] and (field is None or error.get("field") == field)


async def test_bad_stow_bodies_are_refused_and_store_nothing(client, world, stored):
    async with stored() as session:
        before = len(list(await session.scalars(select(DicomInstance))))
    good = next(series("1.2.826.0.1.3680043.9.7777.56", slices=1))
    auth = world.auth("coordinator")
    related = 'multipart/related; type="application/dicom"; boundary=b'
    for body, content_type, status in [
        (good, "application/dicom", 415),  # not multipart
        (b"--b\r\nContent-Type: application/dicom\r\n\r\n" + good[:5000], related, 400),
        (b"garbage without any boundary", related, 400),
        (b"--b\r\nContent-Type: multipart/related; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--"
         b"\r\n--b--\r\n", related, 400),
    ]:
        r = await client.post("/dicomweb/studies", data=body,
                              headers={**auth, "Content-Type": content_type})
        assert r.status == status, (body[:40], await r.text())
        assert "error" in await r.json()
    # A part cut short is a refused object, not a stored one.
    cut = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + good[:-1000] + b"\r\n--b--\r\n"
    r = await client.post("/dicomweb/studies", data=cut,
                          headers={**auth, "Content-Type": related})
    assert r.status == 409
    async with stored() as session:
        assert len(list(await session.scalars(select(DicomInstance)))) == before
    r = await client.get("/dicomweb/studies", headers=world.auth("admin"))
    assert r.status == 200  # and the server serves on


async def test_stow_reports_an_object_the_database_refused_as_a_failure(client, world, stored):
    """0x0110 (processing failure) for that instance, the others stored, no file left."""
    from tests.pacs.ingest_helpers import REFUSING, execute_sql
    backend = "sqlite" if world.settings.is_sqlite else "postgresql"
    install, remove = REFUSING[(backend, "insert")]
    good = next(series("1.2.826.0.1.3680043.9.7777.57", slices=1))
    body = (b"--b\r\nContent-Type: application/dicom\r\n\r\n" + good + b"\r\n--b--\r\n")
    await execute_sql(world.settings.database_url, install)
    try:
        r = await client.post("/dicomweb/studies", data=body, headers={
            **world.auth("coordinator"),
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
    finally:
        await execute_sql(world.settings.database_url, remove)
    assert r.status == 409, await r.text()
    assert (await r.json())["00081198"]["Value"][0]["00081197"]["Value"] == [0x0110]
    study_dir = store_root(world.settings.data_dir) / "1.2.826.0.1.3680043.9.7777.57"
    assert not study_dir.exists() or not [p for p in study_dir.rglob("*") if p.is_file()]


async def test_a_refusal_is_audited_under_the_action_its_route_reads_as(client):
    """What the refusal middleware names each route is what that route's reads are
    audited as, so the trail shows a route's refusals and reads under one action."""
    named = {(route.method, route.resource.canonical): route_action(
        route.method, route.resource.canonical) for route in client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/dicomweb")}
    study = "/dicomweb/studies/{study}"
    instance = study + "/series/{series}/instances/{instance}"
    assert {key: named[key] for key in [
        ("GET", "/dicomweb/studies"), ("GET", "/dicomweb/series"),
        ("GET", "/dicomweb/instances"), ("GET", study + "/series"),
        ("GET", study + "/series/{series}/instances"), ("GET", study), ("GET", instance),
        ("GET", study + "/metadata"), ("GET", instance + "/frames/{frames}"),
        ("GET", instance + "/frames/{frames}/rendered"), ("GET", study + "/thumbnail"),
        ("POST", study)]} == {
        ("GET", "/dicomweb/studies"): "dicomweb.search_studies",
        ("GET", "/dicomweb/series"): "dicomweb.search_series",
        ("GET", "/dicomweb/instances"): "dicomweb.search_instances",
        ("GET", study + "/series"): "dicomweb.search_series",
        ("GET", study + "/series/{series}/instances"): "dicomweb.search_instances",
        ("GET", study): "dicomweb.retrieve", ("GET", instance): "dicomweb.retrieve",
        ("GET", study + "/metadata"): "dicomweb.metadata",
        ("GET", instance + "/frames/{frames}"): "dicomweb.frames",
        ("GET", instance + "/frames/{frames}/rendered"): "dicomweb.rendered",
        ("GET", study + "/thumbnail"): "dicomweb.thumbnail",
        ("POST", study): "dicomweb.store"}
