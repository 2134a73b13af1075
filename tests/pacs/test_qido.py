"""QIDO-RS at every level PS3.18 names, root-level searches by dicomweb-client included:
the same access rules at each level, the usual matching, names without case or
diacritics through an index, and a clear 400 for what is not a search."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from sqlalchemy import select, text

from app.db.engine import create_engine, session_factory
from app.demo import DEMO_STUDY_UID
from app.dicomweb.qido import INSTANCE_LEVEL, _clause
from app.pacs.ingest import ingest
from app.pacs.models import DicomStudy
from tests.api.scheduling_helpers import T0, create
from tests.pacs.scp_helpers import open_scp, storescu
from tests.pacs.tiny import Study, instance

# A: the demo case's study (every demo doctor is invited); B: a study of another
# consultation, where only GTH (and TBI, its host) are invited; C: a study in no case.
A = Study(DEMO_STUDY_UID, "HC-0001", "Nguyễn^Thị Ánh", "20261120", "091500", "ACC-A1",
          "Trần^Văn Đức", "CT ngực có cản quang")
B = Study("1.2.826.0.1.3680043.9.7777.201", "HC-0002", "Đặng^Văn Đông", "20250105", "143000",
          "ACC-B1", "", "MR sọ não")
C = Study("1.2.826.0.1.3680043.9.7777.202", "HC-0003", "NGUYEN^VAN^MINH", "20240301",
          "080000", "XYZ-9", "", "CT, bụng")


@pytest.fixture
async def studies(world, client) -> dict[str, Any]:
    """A: a CT series of two instances and an MR series of one; B: one MR; C: one CT."""
    engine = create_engine(world.settings.database_url)
    sessions = session_factory(engine)
    for data in [instance(A, 1, 1), instance(A, 1, 2), instance(A, 2, 1, "MR"),
                 instance(B, 1, 1, "MR"), instance(C, 1, 1)]:
        await ingest(sessions, world.settings.data_dir, data, "test")
    await engine.dispose()
    await create(client, world, start=T0 + timedelta(days=1), host="TBI", invitations=[
        {"user_id": world.user("GTH").id, "role": "participant"}],
        cases=[{"patient_id": B.patient_id, "patient_name": "DANG^VAN^DONG",
                "study_instance_uids": [B.uid]}])
    return {"url": str(client.make_url("/dicomweb"))}


def dw(studies: dict[str, Any], world, who: str) -> DICOMwebClient:
    return DICOMwebClient(studies["url"], headers={"Authorization": f"Bearer {world.token(who)}"})


def uids(results: list[dict[str, Any]], tag: str = "0020000D") -> list[str]:
    return [r[tag]["Value"][0] for r in results]


async def get(client, world, who: str, path: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/dicomweb" + path, params=params, headers=world.auth(who))
    assert r.status == 200, (path, params, await r.text())
    return await r.json()


async def test_root_level_searches_by_dicomweb_client_see_only_readable_studies(
        world, studies):
    def search(who: str, **kw: Any) -> tuple[list, list, list]:
        client = dw(studies, world, who)
        return (client.search_for_studies(**kw), client.search_for_series(**kw),
                client.search_for_instances(**kw))

    # BM is invited to A's consultation only: B (another consultation's) and C (no case)
    # never appear, at any level.
    found, series, instances = await asyncio.to_thread(search, "BM")
    assert uids(found) == [A.uid]
    assert set(uids(series)) == {A.uid} and len(series) == 2
    assert set(uids(instances)) == {A.uid} and len(instances) == 3
    # Root-level results carry the study's attributes, and instances their series'.
    ct = next(s for s in series if s["00080060"]["Value"] == ["CT"])
    assert ct["00100010"]["Value"] == [{"Alphabetic": "Nguyễn^Thị Ánh"}]
    assert ct["00201209"]["Value"] == [2] and ct["00200011"]["Value"] == [1]
    assert all("00100020" in i and "0020000E" in i and "00080060" in i for i in instances)
    assert instances[0]["00081190"]["Value"][0].endswith(
        f"/studies/{A.uid}/series/{instances[0]['0020000E']['Value'][0]}/instances/"
        f"{instances[0]['00080018']['Value'][0]}")

    # GTH is invited to both consultations; the coordinator sees every consultation's
    # studies; the admin every study.
    for who, expected in [("GTH", {A.uid, B.uid}), ("coordinator", {A.uid, B.uid}),
                          ("admin", {A.uid, B.uid, C.uid})]:
        found, series, instances = await asyncio.to_thread(search, who)
        assert set(uids(found)) == set(uids(series)) == set(uids(instances)) == expected, who

    # Filters at the root go through the same rule: asking for B by UID finds nothing.
    def filtered() -> list[list]:
        client = dw(studies, world, "BM")
        return [client.search_for_series(search_filters={"StudyInstanceUID": B.uid}),
                client.search_for_instances(search_filters={"PatientName": "dang*"}),
                client.search_for_series(search_filters={"Modality": "MR"})]
    by_uid, by_name, mr = await asyncio.to_thread(filtered)
    assert by_uid == [] and by_name == [] and uids(mr) == [A.uid]

    def gth_filtered() -> list[list]:
        client = dw(studies, world, "GTH")
        return [client.search_for_series(search_filters={"Modality": "MR"}),
                client.search_for_instances(search_filters={"PatientName": "dang*"}),
                client.search_for_instances(study_instance_uid=A.uid,
                                            search_filters={"Modality": "CT"})]
    mr, by_name, a_ct = await asyncio.to_thread(gth_filtered)
    assert sorted(uids(mr)) == sorted([A.uid, B.uid])
    assert uids(by_name) == [B.uid]
    assert len(a_ct) == 2 and "00100010" not in a_ct[0]  # in the URL: no study attributes

    # Within a study, the study must be readable: 404 as for an unknown one.
    def scoped() -> None:
        dw(studies, world, "BM").search_for_series(study_instance_uid=B.uid)
    with pytest.raises(requests.HTTPError, match="404"):
        await asyncio.to_thread(scoped)


async def test_every_level_of_a_study(client, world, studies):
    series = await get(client, world, "BM", f"/studies/{A.uid}/series")
    assert [s["00080060"]["Value"][0] for s in series] == ["CT", "MR"]
    ct_uid = series[0]["0020000E"]["Value"][0]
    in_study = await get(client, world, "BM", f"/studies/{A.uid}/instances")
    assert [(i["00080060"]["Value"][0], i["00200013"]["Value"][0]) for i in in_study] == [
        ("CT", 1), ("CT", 2), ("MR", 1)]
    in_series = await get(client, world, "BM", f"/studies/{A.uid}/series/{ct_uid}/instances")
    assert [i["00200013"]["Value"][0] for i in in_series] == [1, 2]
    assert "00080060" not in in_series[0]  # the series is in the URL
    for path in (f"/studies/{B.uid}/series", f"/studies/{B.uid}/instances",
                 f"/studies/{B.uid}/series/{ct_uid}/instances"):
        r = await client.get("/dicomweb" + path, headers=world.auth("BM"))
        assert r.status == 404, path


@pytest.mark.parametrize("value,expected", [
    ("Nguyen Thi Anh", {A.uid}), ("nguyen*", {A.uid, C.uid}), ("NGUYỄN*", {A.uid, C.uid}),
    ("nguyễn^thị ánh", {A.uid}), ("Nguyen^Thi^Anh", {A.uid}), ("*anh", {A.uid}),
    ("dang van dong", {B.uid}), ("Đặng*", {B.uid}), ("đ?ng*", {B.uid}), ("D?NG*", {B.uid}),
    ("nguyen van", set()), ("anh nguyen", set()), ("*", {A.uid, B.uid, C.uid}),
    ("nguyen thi anh\\dang van dong", {A.uid, B.uid}), ("nguy_n*", set()),
])
async def test_names_match_without_case_or_diacritics(client, world, studies, value, expected):
    for path in ("/studies", "/series", "/instances"):
        found = await get(client, world, "admin", path, PatientName=value)
        assert set(uids(found)) == expected, (path, value)


@pytest.mark.parametrize("value,expected", [
    ("anh nguyen", {A.uid}), ("anh", {A.uid}), ("van", {B.uid, C.uid}),
    ("ng th", {A.uid}), ("đông", {B.uid}), ("minh van", {C.uid}), ("thi minh", set()),
])
async def test_fuzzy_matching_finds_each_word_anywhere_in_the_name(
        client, world, studies, value, expected):
    for path in ("/studies", "/series", "/instances"):
        found = await get(client, world, "admin", path, PatientName=value,
                          fuzzymatching="true")
        assert set(uids(found)) == expected, (path, value)


async def test_matching_keys_at_each_level(client, world, studies):
    async def studies_where(path: str = "/studies", **params: Any) -> set[str]:
        return set(uids(await get(client, world, "admin", path, **params)))

    assert await studies_where(ReferringPhysicianName="tran van duc") == {A.uid}
    assert await studies_where(StudyDate="20250101-20251231") == {B.uid}
    assert await studies_where(StudyDate="-20250105") == {B.uid, C.uid}
    assert await studies_where(StudyDate="20261120") == {A.uid}
    assert await studies_where(StudyTime="0800-1000") == {A.uid, C.uid}
    assert await studies_where(StudyTime="1400-") == {B.uid}
    assert await studies_where(StudyInstanceUID=f"{A.uid},{C.uid}") == {A.uid, C.uid}
    assert await studies_where(**{"0020000D": f"{B.uid}\\{C.uid}"}) == {B.uid, C.uid}
    assert await studies_where(**{"0020000d": B.uid}) == {B.uid}  # a tag in any case
    assert await studies_where(AccessionNumber="ACC-*") == {A.uid, B.uid}
    assert await studies_where(PatientID="HC-0003") == {C.uid}
    # A description may hold a comma: it is no list separator there.
    assert await studies_where(StudyDescription="CT, bụng") == {C.uid}
    assert await studies_where(ModalitiesInStudy="MR") == {A.uid, B.uid}
    assert await studies_where(Modality="CT,MR") == {A.uid, B.uid, C.uid}
    assert await studies_where("/series", Modality="MR") == {A.uid, B.uid}
    assert await studies_where("/series", SeriesNumber="2") == {A.uid}
    assert await studies_where("/series", PatientName="nguyen*", Modality="CT") == {
        A.uid, C.uid}
    assert await studies_where("/instances", InstanceNumber="2") == {A.uid}
    mr = (await get(client, world, "admin", "/instances", Modality="MR"))
    assert {i["00080016"]["Value"][0] for i in mr} == {"1.2.840.10008.5.1.4.1.1.4"}
    assert await studies_where("/instances", SOPClassUID="1.2.840.10008.5.1.4.1.1.4",
                               StudyDate="20250105") == {B.uid}
    # includefield names attributes (or all): accepted; every indexed one is returned.
    for include in ("all", "PatientAge", "00101010,StudyDescription"):
        found = await get(client, world, "admin", "/studies", includefield=include)
        assert len(found) == 3 and all("00081030" in s for s in found)


async def test_paging_is_stable_at_every_level(client, world, studies):
    for path, total in [("/studies", 3), ("/series", 4), ("/instances", 5)]:
        everything = await get(client, world, "admin", path)
        assert len(everything) == total
        pages = []
        for offset in range(0, total, 2):
            pages += await get(client, world, "admin", path, limit="2", offset=str(offset))
        assert pages == everything, path
        assert await get(client, world, "admin", path, offset=str(total)) == []


@pytest.mark.parametrize("path", ["/studies", "/series", "/instances"])
@pytest.mark.parametrize("params,field", [
    ({"Nonsense": "1"}, "Nonsense"), ({"limit": "x"}, "limit"), ({"limit": "0"}, "limit"),
    ({"limit": "100000"}, "limit"), ({"offset": "-1"}, "offset"),
    ({"StudyDate": "2026-11-20"}, "StudyDate"), ({"StudyDate": "20261301"}, "StudyDate"),
    ({"StudyDate": "20261120-20250101"}, "StudyDate"), ({"StudyTime": "9am"}, "StudyTime"),
    ({"StudyInstanceUID": "1.2.*"}, "StudyInstanceUID"),
    ({"StudyInstanceUID": "not-a-uid"}, "StudyInstanceUID"),
    ({"fuzzymatching": "maybe"}, "fuzzymatching"),
    ({"includefield": "NoSuchAttribute"}, "includefield"),
])
async def test_bad_searches_get_a_clear_400(client, world, studies, path, params, field):
    r = await client.get("/dicomweb" + path, params=params, headers=world.auth("admin"))
    assert r.status == 400, (path, params, await r.text())
    error = (await r.json())["error"]
    assert error["message"] and error["field"] == field


@pytest.mark.parametrize("path,params,field", [
    ("/studies", {"SOPInstanceUID": "1.2.3"}, "SOPInstanceUID"),  # not a study attribute
    ("/studies", {"SeriesNumber": "1"}, "SeriesNumber"),
    ("/series", {"InstanceNumber": "1"}, "InstanceNumber"),
    ("/series", {"SeriesNumber": "one"}, "SeriesNumber"),
    ("/instances", {"InstanceNumber": "99999999999"}, "InstanceNumber"),
    ("/instances", {"PatientID": ["a", "b"]}, "PatientID"),  # given twice
])
async def test_keys_of_another_level_or_malformed_are_refused(client, world, studies, path,
                                                              params, field):
    query = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
    r = await client.get("/dicomweb" + path, params=query, headers=world.auth("admin"))
    assert r.status == 400, (path, params, await r.text())
    assert (await r.json())["error"]["field"] == field


async def test_names_are_matched_through_the_index(world, studies):
    """The name key's index serves an exact and a prefix match, on both databases."""
    engine = create_engine(world.settings.database_url)
    try:
        async with engine.connect() as conn:
            for value in ("nguyen thi anh", "nguyen*"):
                clause = _clause(INSTANCE_LEVEL["PatientName"], "PatientName", value, False)
                stmt = select(DicomStudy.id).where(clause)
                sql = str(stmt.compile(engine.sync_engine, compile_kwargs={
                    "literal_binds": True}))
                if conn.dialect.name == "sqlite":
                    plan = " ".join(str(r[-1]) for r in await conn.execute(
                        text("EXPLAIN QUERY PLAN " + sql)))
                else:
                    # Tables this small are scanned; forbid that to see the index is usable.
                    await conn.execute(text("SET enable_seqscan = off"))
                    plan = " ".join(r[0] for r in await conn.execute(text("EXPLAIN " + sql)))
                assert "ix_dicom_studies_patient_name_search" in plan, (value, plan)
    finally:
        await engine.dispose()


async def test_ingest_keeps_the_name_keys(world, studies):
    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine)() as session:
            keys = dict((await session.execute(select(
                DicomStudy.study_instance_uid, DicomStudy.patient_name_search))).all())
            a = await session.scalar(select(DicomStudy).where(
                DicomStudy.study_instance_uid == A.uid))
    finally:
        await engine.dispose()
    assert keys == {A.uid: "nguyen thi anh", B.uid: "dang van dong", C.uid: "nguyen van minh"}
    assert a is not None and a.referring_physician_search == "tran van duc"


async def test_a_vietnamese_name_pushed_by_c_store_comes_back_from_qido(client, world,
                                                                       tmp_path):
    """ISO_IR 192 (UTF-8) from a PACS's storescu to our SCP, then out of QIDO-RS as JSON,
    found by its plain letters, every diacritic kept."""
    path = tmp_path / "vn.dcm"
    path.write_bytes(instance(A, 1, 1))
    async with open_scp(world.settings.database_url, world.settings.data_dir) as scp:
        await storescu(scp, str(path))
    # DICOM JSON is always UTF-8: the name as written, whatever character set it came in.
    [study] = await get(client, world, "BM", "/studies", PatientName="nguyen thi anh")
    assert study["00100010"]["Value"] == [{"Alphabetic": "Nguyễn^Thị Ánh"}]
