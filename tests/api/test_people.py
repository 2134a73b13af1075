"""The hospital network and its users: what admins manage and coordinators search."""

from __future__ import annotations

import asyncio

from tests.api.dbcheck import audit_events, error_of
from tests.conftest import DEMO_PASSWORD

NEW_USER = {"email": "Bs.Moi@BachMai.vn", "name": "BS. Mới", "password": "long-enough-1",
            "roles": ["doctor", "doctor"]}


async def test_the_network_lists_by_tier_and_supporting_hospital(client, world):
    r = await client.get("/api/hospitals", headers=world.auth("GTI"))
    hospitals = await r.json()
    assert len(hospitals) == 13  # the 1-4-4-2 network and two observing hospitals
    by_code = {h["code"]: h for h in hospitals}
    assert by_code["BM"]["tier"] == "central" and by_code["BM"]["parent_id"] is None
    assert by_code["GTI"]["parent_id"] == by_code["GTH"]["id"]
    r = await client.get("/api/hospitals", params={"tier": "provincial"},
                         headers=world.auth("GTI"))
    assert sorted(h["code"] for h in await r.json()) == ["HNA", "HYE", "NBI", "NDI", "TBI"]
    r = await client.get("/api/hospitals", params={"parent_id": str(by_code["NDI"]["id"])},
                         headers=world.auth("GTI"))
    assert sorted(h["code"] for h in await r.json()) == ["GTH", "HHA"]
    r = await client.get(f"/api/hospitals/{by_code['HLY']['id']}", headers=world.auth("GTI"))
    assert (await r.json())["name"] == "Trạm Y tế xã Hải Lý"


async def test_an_admin_adds_a_hospital_once(client, world):
    r = await client.post("/api/hospitals", json={
        "code": "YBI", "name": "BV Đa khoa tỉnh Yên Bái", "tier": "provincial",
        "parent_id": world.user("BM").hospital_id}, headers=world.auth("admin"))
    assert r.status == 201, await r.text()
    assert (await r.json())["parent_id"] == world.user("BM").hospital_id
    await error_of(await client.post("/api/hospitals", json={
        "code": "YBI", "name": "again", "tier": "district"}, headers=world.auth("admin")),
        409, field="code")
    [event] = await audit_events(world.settings, "hospital.create")
    assert event.actor_id == world.user("admin").id


async def test_two_admins_adding_the_same_hospital_at_once_get_one(client, world):
    answers = await asyncio.gather(*[client.post("/api/hospitals", json={
        "code": "LCA", "name": f"BV Lào Cai {n}", "tier": "provincial"},
        headers=world.auth("admin")) for n in range(2)])
    assert sorted(r.status for r in answers) == [201, 409], [await r.text() for r in answers]
    await error_of([r for r in answers if r.status == 409][0], 409, field="code")


async def test_two_admins_adding_the_same_user_at_once_get_one(client, world):
    answers = await asyncio.gather(*[client.post("/api/users", json=NEW_USER | {
        "hospital_id": world.user("BM").hospital_id}, headers=world.auth("admin"))
        for _ in range(2)])
    assert sorted(r.status for r in answers) == [201, 409], [await r.text() for r in answers]


async def test_an_admin_creates_a_user_who_can_then_log_in(client, world):
    r = await client.post("/api/users", json=NEW_USER | {
        "hospital_id": world.user("BM").hospital_id}, headers=world.auth("admin"))
    assert r.status == 201, await r.text()
    user = await r.json()
    assert user["email"] == "bs.moi@bachmai.vn"  # e-mails are kept in lower case
    assert user["roles"] == ["doctor"] and user["active"] is True
    assert user["hospital"]["code"] == "BM" and "password" not in str(user)
    r = await client.post("/api/auth/login", json={"email": "BS.MOI@bachmai.vn",
                                                   "password": "long-enough-1"})
    assert r.status == 200
    await error_of(await client.post("/api/users", json=NEW_USER | {
        "email": "bs.moi@bachmai.vn", "hospital_id": 1}, headers=world.auth("admin")),
        409, field="email")
    [event] = await audit_events(world.settings, "user.create")
    assert "long-enough-1" not in str(event.detail)


async def test_coordinators_find_users_to_invite(client, world):
    async def emails(**params) -> list[str]:
        r = await client.get("/api/users", params=params, headers=world.auth("coordinator"))
        assert r.status == 200, await r.text()
        page = await r.json()
        return [u["email"] for u in page["items"]]

    assert len(await emails()) == 15
    assert await emails(hospital_id=world.user("GTI").hospital_id) == [
        "doctor.gti@demo.hoichan.vn"]
    assert sorted(await emails(tier="district")) == [
        f"doctor.{c}@demo.hoichan.vn" for c in ("gth", "hha", "kba", "kxu", "tha")]
    assert await emails(role="coordinator") == ["coordinator@demo.hoichan.vn"]
    assert await emails(q="DOCTOR.KX") == ["doctor.kxu@demo.hoichan.vn"]
    assert await emails(q="ngô thị") == ["doctor.gti@demo.hoichan.vn"]  # by name
    # Without diacritics or case, each word starting a word of the name; đ is d.
    assert await emails(q="NGO THI") == ["doctor.gti@demo.hoichan.vn"]
    assert await emails(q="thi ngo") == ["doctor.gti@demo.hoichan.vn"]
    assert await emails(q="go thi") == []  # a word's start, not any part of it
    assert await emails(q="%") == [] and await emails(q="_") == []  # literal, not wildcards
    r = await client.get("/api/users", params={"role": "doctor", "limit": "3", "offset": "11"},
                         headers=world.auth("coordinator"))
    page = await r.json()
    assert page["total"] == 13 and len(page["items"]) == 2


async def test_hospitals_are_found_without_case_or_diacritics(client, world):
    async def codes(q: str) -> list[str]:
        r = await client.get("/api/hospitals", params={"q": q}, headers=world.auth("NDI"))
        assert r.status == 200, await r.text()
        return [h["code"] for h in await r.json()]

    assert await codes("bach mai") == ["BM"]
    assert await codes("BẠCH MAI") == ["BM"]
    assert await codes("bm") == ["BM"]  # the code
    assert await codes("%") == []
    hung_yen = await codes("hung yen")
    assert "HYE" in hung_yen and "BM" not in hung_yen


async def test_the_language_a_user_chooses_is_kept_with_the_account(client, world):
    doctor = world.auth("NDI")
    me = await (await client.get("/api/me", headers=doctor)).json()
    assert me["language"] is None  # the browser's language decides until then
    r = await client.patch("/api/me", json={"language": "en"}, headers=doctor)
    assert r.status == 200 and (await r.json())["language"] == "en"
    me = await (await client.get("/api/me", headers=doctor)).json()
    assert me["language"] == "en"
    for body in ({"language": "fr"}, {"language": None}, {}, {"language": "en", "name": "x"}):
        r = await client.patch("/api/me", json=body, headers=doctor)
        assert r.status == 422, (body, await r.text())
    me = await (await client.get("/api/me", headers=doctor)).json()
    assert me["language"] == "en" and me["name"] == world.user("NDI").name


async def test_an_admin_changes_name_roles_password_and_active_flag(client, world):
    uid = world.user("KBA").id
    r = await client.patch(f"/api/users/{uid}", json={
        "name": "BS. Đỗ Văn Khoa (PGĐ)", "roles": ["doctor", "coordinator"],
        "password": "a-new-password-1"}, headers=world.auth("admin"))
    assert r.status == 200, await r.text()
    changed = await r.json()
    assert changed["name"] == "BS. Đỗ Văn Khoa (PGĐ)"
    assert changed["roles"] == ["coordinator", "doctor"]
    # The new roles take effect on the next request, with the token already held.
    assert (await client.get("/api/users", headers=world.auth("KBA"))).status == 200
    old = await client.post("/api/auth/login", json={"email": "doctor.kba@demo.hoichan.vn",
                                                     "password": DEMO_PASSWORD})
    await error_of(old, 401)
    new = await client.post("/api/auth/login", json={"email": "doctor.kba@demo.hoichan.vn",
                                                     "password": "a-new-password-1"})
    assert new.status == 200
    [event] = await audit_events(world.settings, "user.update")
    assert event.detail["password"] == "changed"
    assert "a-new-password-1" not in str(event.detail)
    r = await client.patch(f"/api/users/{uid}", json={"active": False},
                           headers=world.auth("admin"))
    assert (await r.json())["active"] is False
    await error_of(await client.get("/api/me", headers=world.auth("KBA")), 401)
