"""Bad input of every class: a 4xx with {"error": {"code", "message", "field"?}}, the database
exactly as it was, never a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.api.dbcheck import db_state, error_of
from tests.api.scheduling_helpers import T0, booking, iso

CASE = {"patient_id": "HC-1", "patient_name": "NGUYEN^VAN^A"}


async def refused(client, world, method: str, path: str, status: int, *,
                  who: str = "coordinator", code: str | None = None,
                  field: str | None = None, **kw: Any) -> dict[str, Any]:
    before = await db_state(client)
    r = await client.request(method, path, headers=world.auth(who), **kw)
    err = await error_of(r, status, code=code, field=field)
    assert await db_state(client) == before, (method, path, kw)
    return err


async def test_malformed_json_is_400(client, world):
    for raw in [b"{", b"", b'{"title": }', b"\xff\xfe\x00", b"{'a': 1}", b'{"title": "a",}',
                b"[" * 5000, b'{"title": "\\ud800"', b"\x00"]:
        await refused(client, world, "POST", "/api/consultations", 400, code="invalid_json",
                      data=raw)
    await refused(client, world, "POST", "/api/auth/login", 400, code="invalid_json",
                  data=b'{"email": ')
    # Well-formed JSON that is not an object is a validation error.
    for raw in [b"[]", b"null", b'"a string"', b"42", b"NaN"]:
        await refused(client, world, "POST", "/api/consultations", 422, data=raw)


async def test_wrong_types_are_422_naming_the_field(client, world):
    for change, field in [
        ({"host_user_id": "3"}, "host_user_id"),              # a string for an int
        ({"host_user_id": 3.0}, "host_user_id"),
        ({"host_user_id": True}, "host_user_id"),             # a bool is no id
        ({"host_hospital_id": 1.5}, "host_hospital_id"),
        ({"title": 42}, "title"),                             # an int for a string
        ({"title": None}, "title"),
        ({"start": 1900000000}, "start"),                     # a timestamp for a time
        ({"start": "yesterday"}, "start"),
        ({"invitations": {"user_id": 1, "role": "observer"}}, "invitations"),
        ({"invitations": [{"user_id": "5", "role": "observer"}]}, "invitations.0.user_id"),
        ({"invitations": [{"user_id": 5, "role": "HOST"}]}, "invitations.0.role"),
        ({"cases": [CASE | {"study_instance_uids": "1.2.3"}]}, "cases.0.study_instance_uids"),
        ({"cases": [CASE | {"patient_birth_date": 19610314}]}, "cases.0.patient_birth_date"),
    ]:
        await refused(client, world, "POST", "/api/consultations", 422, field=field,
                      json=booking(world) | change)
    gti = world.user("GTI").id
    for active in ("true", "false", 0, 1):  # "true" is not true: bodies are strict
        await refused(client, world, "PATCH", f"/api/users/{gti}", 422, who="admin",
                      field="active", json={"active": active})
    await refused(client, world, "POST", "/api/hospitals", 422, who="admin", field="parent_id",
                  json={"code": "X1", "name": "X", "tier": "district", "parent_id": "1"})
    await refused(client, world, "POST", "/api/auth/login", 422, field="email",
                  json={"email": 7, "password": "x"})
    await refused(client, world, "POST", "/api/auth/refresh", 422, field="refresh_token",
                  json={"refresh_token": 12345})


async def test_unknown_fields_are_422(client, world):
    cid = world.consultation_id
    ndi = world.user("NDI").id
    for method, path, body, who, field in [
        ("POST", "/api/consultations", booking(world) | {"extra": 1}, "coordinator", "extra"),
        ("POST", "/api/consultations", booking(world) | {"invitations": [
            {"user_id": ndi, "role": "presenter", "note": "x"}]}, "coordinator",
         "invitations.0.note"),
        ("POST", "/api/consultations", booking(world) | {"cases": [CASE | {"modality": "CT"}]},
         "coordinator", "cases.0.modality"),
        ("PATCH", f"/api/consultations/{cid}", {"status": "ended"}, "coordinator", "status"),
        ("PATCH", f"/api/consultations/{cid}", {"host_user_id": 1}, "coordinator",
         "host_user_id"),
        ("PUT", f"/api/consultations/{cid}/record",
         {"conclusion": "c", "treatment_plan": "t", "author_id": 1}, "BM", "author_id"),
        ("PATCH", f"/api/users/{world.user('GTI').id}", {"email": "x@y.vn"}, "admin", "email"),
        ("POST", "/api/auth/login", {"email": "a@b.vn", "password": "x", "otp": 1}, "NDI",
         "otp"),
    ]:
        err = await refused(client, world, method, path, 422, who=who, field=field, json=body)
        assert err["message"] == "unknown field"


async def test_strings_and_lists_over_their_limits_are_422(client, world):
    for change, field in [
        ({"title": "x" * 201}, "title"), ({"title": "   "}, "title"), ({"title": ""}, "title"),
        ({"description": "x" * 10_001}, "description"),
        ({"timezone": "A" * 65}, "timezone"),
        ({"cases": [CASE | {"patient_id": "x" * 65}]}, "cases.0.patient_id"),
        ({"cases": [CASE | {"patient_name": "x" * 325}]}, "cases.0.patient_name"),
        ({"cases": [CASE | {"clinical_question": "x" * 10_001}]},
         "cases.0.clinical_question"),
        ({"cases": [CASE | {"study_instance_uids": ["1." * 32 + "1"]}]},
         "cases.0.study_instance_uids.0"),
        ({"cases": [CASE] * 21}, "cases"),
        ({"cases": [CASE | {"study_instance_uids": [f"1.2.{n}" for n in range(51)]}]},
         "cases.0.study_instance_uids"),
        ({"invitations": [{"hospital_id": 1, "role": "observer"}] * 201}, "invitations"),
    ]:
        await refused(client, world, "POST", "/api/consultations", 422, field=field,
                      json=booking(world) | change)
    user = {"email": "a@b.vn", "name": "x", "password": "long-enough-1", "roles": ["doctor"],
            "hospital_id": 1}
    for change, field in [({"name": "x" * 201}, "name"), ({"email": "a" * 250 + "@b.vn"},
                                                            "email"),
                          ({"password": "p" * 257}, "password"), ({"password": "short"},
                                                                   "password"),
                          ({"roles": []}, "roles"), ({"email": "not an email"}, "email")]:
        await refused(client, world, "POST", "/api/users", 422, who="admin", field=field,
                      json=user | change)
    for code in ("C" * 33, "bad code!", ""):
        await refused(client, world, "POST", "/api/hospitals", 422, who="admin", field="code",
                      json={"code": code, "name": "x", "tier": "district"})
    await refused(client, world, "GET", "/api/users", 422, who="admin", field="q",
                  params={"q": "x" * 101})
    await refused(client, world, "GET", "/api/audit", 422, who="admin", field="action",
                  params={"action": "a" * 65})


async def test_an_end_before_its_start_is_refused(client, world):
    start = T0
    for end in [start - timedelta(minutes=1), start, start + timedelta(hours=24, seconds=1)]:
        await refused(client, world, "POST", "/api/consultations", 422, field="end",
                      json=booking(world, start) | {"end": iso(end)})
    over_already = datetime.now(UTC) - timedelta(days=3)
    await refused(client, world, "POST", "/api/consultations", 422, field="end",
                  json=booking(world, over_already))
    await refused(client, world, "PATCH", f"/api/consultations/{world.consultation_id}", 422,
                  field="end", json={"start": iso(start),
                                     "end": iso(start - timedelta(hours=1))})


async def test_unknown_ids_in_the_path_are_404(client, world):
    cid = world.consultation_id
    for method, path, who, body in [
        ("GET", "/api/consultations/99999", "coordinator", None),
        ("PATCH", "/api/consultations/99999", "coordinator", {"title": "x"}),
        ("POST", "/api/consultations/99999/cancel", "coordinator", None),
        ("POST", "/api/consultations/99999/join-token", "NDI", None),
        ("PATCH", f"/api/consultations/{cid}/invitations/99999", "coordinator",
         {"role": "observer"}),
        ("DELETE", f"/api/consultations/{cid}/invitations/99999", "coordinator", None),
        ("DELETE", f"/api/consultations/{cid}/cases/99999", "coordinator", None),
        ("GET", "/api/users/99999", "coordinator", None),
        ("PATCH", "/api/users/99999", "admin", {"name": "x"}),
        ("GET", "/api/hospitals/99999", "NDI", None),
        ("GET", "/api/hospitals/0", "NDI", None),
        ("GET", "/api/nothing/here", "NDI", None),
    ]:
        await refused(client, world, method, path, 404, who=who, json=body)
    # An invitation of another consultation is not one of this consultation's.
    other = await (await client.post("/api/consultations", json=booking(world),
                                     headers=world.auth("coordinator"))).json()
    inv = other["invitations"][0]["id"]
    await refused(client, world, "DELETE", f"/api/consultations/{cid}/invitations/{inv}", 404)
    await refused(client, world, "PATCH", f"/api/consultations/{cid}/invitations/{inv}", 404,
                  json={"role": "observer"})


async def test_ids_in_the_path_that_are_not_ids_are_404(client, world):
    # "%EF%BC%91" is a fullwidth 1, "%D9%A1" an Arabic-Indic 1, "%C2%B2" a superscript 2:
    # digits to Python's str.isdigit(), but no id (and the first two must not alias id 1).
    for bad in ["abc", "-1", "1.5", "0x10", str(2**31), str(2**63), "%20%31", "1e3",
                "%EF%BC%91", "%D9%A1", "%C2%B2"]:
        for method, path in [("GET", f"/api/consultations/{bad}"),
                             ("GET", f"/api/users/{bad}"), ("GET", f"/api/hospitals/{bad}"),
                             ("DELETE", f"/api/consultations/{world.consultation_id}"
                                        f"/invitations/{bad}")]:
            await refused(client, world, method, path, 404)


async def test_unknown_ids_in_the_body_are_422_naming_the_field(client, world):
    for change, field in [
        ({"host_user_id": 99999}, "host_user_id"),
        ({"host_hospital_id": 99999}, "host_hospital_id"),
        ({"invitations": [{"user_id": 99999, "role": "observer"}]}, "invitations.0.user_id"),
        ({"invitations": [{"hospital_id": 99999, "role": "observer"}]},
         "invitations.0.hospital_id"),
        ({"host_user_id": 0}, "host_user_id"),
        ({"host_user_id": 2**31}, "host_user_id"),
        ({"host_user_id": 2**70}, "host_user_id"),
    ]:
        await refused(client, world, "POST", "/api/consultations", 422, field=field,
                      json=booking(world) | change)
    cid = world.consultation_id
    await refused(client, world, "PATCH", f"/api/consultations/{cid}", 422,
                  field="host_hospital_id", json={"host_hospital_id": 99999})
    await refused(client, world, "POST", f"/api/consultations/{cid}/invitations", 422,
                  field="body.user_id", json={"user_id": 99999, "role": "observer"})
    await refused(client, world, "POST", "/api/hospitals", 422, who="admin", field="parent_id",
                  json={"code": "X1", "name": "X", "tier": "district", "parent_id": 99999})
    await refused(client, world, "POST", "/api/users", 422, who="admin", field="hospital_id",
                  json={"email": "a@b.vn", "name": "x", "password": "long-enough-1",
                        "roles": ["doctor"], "hospital_id": 99999})
    # A deactivated user is as good as unknown for scheduling.
    r = await client.patch(f"/api/users/{world.user('GTI').id}", json={"active": False},
                           headers=world.auth("admin"))
    assert r.status == 200
    await refused(client, world, "POST", "/api/consultations", 422, field="host_user_id",
                  json=booking(world) | {"host_user_id": world.user("GTI").id})
    await refused(client, world, "POST", "/api/consultations", 422,
                  field="invitations.0.user_id", json=booking(world) | {
                      "invitations": [{"user_id": world.user("GTI").id, "role": "observer"}]})


async def test_invitation_shape_errors_on_the_invitations_route(client, world):
    url = f"/api/consultations/{world.consultation_id}/invitations"
    for body in [{"role": "participant"},
                 {"user_id": 1, "hospital_id": 1, "role": "participant"},
                 {"user_id": world.user("TBI").id, "role": "king"}]:
        await refused(client, world, "POST", url, 422, json=body)


async def test_inconsistent_invitations_are_422(client, world):
    ndi = world.user("NDI").id
    for invitations, field in [
        ([{"user_id": ndi, "role": "observer"}, {"user_id": ndi, "role": "presenter"}],
         "invitations.1"),
        ([{"user_id": world.user("BM").id, "role": "participant"}], "invitations.0"),
        ([{"user_id": ndi, "hospital_id": 1, "role": "observer"}], "invitations.0"),
        ([{"role": "observer"}], "invitations.0"),
        ([{"hospital_id": 2, "role": "host"}], "invitations.0"),
    ]:
        await refused(client, world, "POST", "/api/consultations", 422, field=field,
                      json=booking(world) | {"invitations": invitations})


async def test_a_body_over_one_mebibyte_is_413_json(client, world):
    big = booking(world) | {"description": "x" * (1024 * 1024 + 10)}
    await refused(client, world, "POST", "/api/consultations", 413, code="payload_too_large",
                  json=big)
    await refused(client, world, "POST", "/api/auth/login", 413, code="payload_too_large",
                  data=b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}')


async def test_unknown_query_keys_are_422(client, world):
    for path, who in [("/api/consultations", "coordinator"), ("/api/me", "NDI"),
                      ("/api/me/consultations", "NDI"), ("/api/audit", "admin"),
                      ("/api/users", "admin"), ("/api/hospitals", "NDI"),
                      (f"/api/consultations/{world.consultation_id}", "NDI")]:
        await refused(client, world, "GET", path, 422, who=who, field="sort",
                      params={"sort": "id"})
    # The Python attribute name of an aliased parameter is not a parameter either.
    await refused(client, world, "GET", "/api/consultations", 422, field="start_from",
                  params={"start_from": iso(T0)})
    for params in [{"limit": "0"}, {"limit": "501"}, {"limit": "abc"}, {"offset": "-1"},
                   {"status": "done"}, {"from": "monday"}, {"to": "2031-02-30T00:00:00Z"},
                   {"hospital_id": "x"}, {"hospital_id": "0"}, {"limit": "1.5"}]:
        await refused(client, world, "GET", "/api/consultations", 422, field=next(iter(params)),
                      params=params)


async def test_bad_time_zones_are_422(client, world):
    for zone in ["Mars/Olympus", "", "UTC+7", "../../etc/passwd", "asia/ho_chi_minh",
                 "Asia/Ho Chi Minh", "/etc/localtime", "Asia/"]:
        await refused(client, world, "POST", "/api/consultations", 422, field="timezone",
                      json=booking(world) | {"timezone": zone})
        await refused(client, world, "PATCH", f"/api/consultations/{world.consultation_id}",
                      422, field="timezone", json={"timezone": zone})


async def test_bad_study_instance_uids_are_422(client, world):
    url = f"/api/consultations/{world.consultation_id}/cases"
    for uid in ["1.2.abc", "01.2", "1..2", "1.2.", ".1.2", "1", "1.2 ", " 1.2", "1.2.3\n",
                "١.٢", "1,2", "1.2.3.4.5.6.7.8.9.10" * 4, ""]:
        await refused(client, world, "POST", url, 422, field="study_instance_uids.0",
                      json=CASE | {"study_instance_uids": [uid]})
    await refused(client, world, "POST", url, 422,
                  json=CASE | {"study_instance_uids": ["1.2.3", "1.2.3"]})
    for change in [{"patient_id": "a\\b"}, {"patient_id": "a\tb"}, {"patient_sex": "X"},
                   {"patient_birth_date": "2999-01-01"}, {"patient_birth_date": "1990-13-01"},
                   {"patient_name": ""}, {"patient_id": ""}]:
        await refused(client, world, "POST", url, 422, json=CASE | change)


async def test_times_beyond_the_calendar_once_in_utc_are_422(client, world):
    # Valid with their offset, but outside years 1-9999 once converted to UTC.
    for start, end in [("9999-12-31T20:00:00-05:00", "9999-12-31T21:00:00-05:00"),
                       ("9999-12-31T22:00:00-23:59", "9999-12-31T23:00:00-23:59")]:
        await refused(client, world, "POST", "/api/consultations", 422,
                      json=booking(world) | {"start": start, "end": end})
        await refused(client, world, "PATCH", f"/api/consultations/{world.consultation_id}",
                      422, json={"start": start, "end": end})
    for param, audit_param, value in [("from", "since", "0001-01-01T00:00:00+01:00"),
                                      ("to", "until", "9999-12-31T23:00:00-05:00")]:
        await refused(client, world, "GET", "/api/consultations", 422, field=param,
                      params={param: value})
        await refused(client, world, "GET", "/api/audit", 422, who="admin",
                      field=audit_param, params={audit_param: value})


async def test_nul_characters_are_refused_before_the_database(client, world):
    await refused(client, world, "POST", "/api/consultations", 422, field="title",
                  json=booking(world) | {"title": "a\x00b"})
    await refused(client, world, "POST", "/api/consultations", 422,
                  field="cases.0.clinical_question",
                  json=booking(world) | {"cases": [CASE | {"clinical_question": "\x00"}]})
    await refused(client, world, "GET", "/api/users", 422, who="admin", field="q",
                  params={"q": "a\x00"})


async def test_wrong_methods_answer_405_json(client, world):
    for method, path in [("PUT", "/api/consultations"), ("DELETE", "/api/me"),
                         ("POST", "/api/audit"), ("DELETE", "/healthz")]:
        await refused(client, world, method, path, 405, code="method_not_allowed", json={})


# ---- a property of the consultation create body ---------------------------------------

OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m)))
TIMES = st.one_of(
    # Near now, where bookings are valid, and anywhere in the calendar.
    st.integers(min_value=-3 * 24 * 60, max_value=30 * 24 * 60).map(
        lambda m: datetime.now(UTC).replace(second=0, microsecond=0)
        + timedelta(minutes=m)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.just(UTC)),
)
TEXT = st.text(max_size=40) | st.text(min_size=190, max_size=220) | st.sampled_from(
    ["", " ", "Hội chẩn", "x" * 200, "x" * 201, "\u200b", "<script>", "'; DROP TABLE users;--"])
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)
IDS = st.integers(min_value=-5, max_value=20) | st.integers(min_value=2**31 - 2, max_value=2**63)
UIDS = st.from_regex(r"\A[12](\.[0-9]{1,5}){1,6}\Z") | st.text(max_size=70)


FIELDS = ["times", "title", "description", "timezone", "host_user_id", "host_hospital_id",
          "invitations", "cases", "anything"]


@st.composite
def consultation_bodies(draw: st.DrawFn, world: Any) -> dict[str, Any]:
    """A good booking with a few of its parts replaced by random ones."""
    body = booking(world, T0 + timedelta(days=draw(st.integers(0, 40)),
                                         hours=draw(st.integers(0, 23))))
    change = draw(st.sets(st.sampled_from(FIELDS), max_size=3))
    if "times" in change:
        start = draw(TIMES)
        end = start + draw(st.timedeltas(min_value=timedelta(hours=-2),
                                         max_value=timedelta(hours=30)))
        try:
            body["start"] = start.astimezone(draw(OFFSETS)).isoformat()
            body["end"] = end.astimezone(draw(OFFSETS)).isoformat()
        except OverflowError:  # the calendar's edge in the chosen offset: keep the UTC text
            body["start"], body["end"] = start.isoformat(), str(end)
    if "title" in change:
        body["title"] = draw(TEXT)
    if "description" in change:
        body["description"] = draw(TEXT)
    if "timezone" in change:
        body["timezone"] = draw(st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Etc/GMT-7"])
                                | st.text(max_size=30))
    if "host_user_id" in change:
        body["host_user_id"] = draw(IDS)
    if "host_hospital_id" in change:
        body["host_hospital_id"] = draw(IDS)
    if "invitations" in change:
        body["invitations"] = draw(st.lists(st.fixed_dictionaries(
            {"role": st.sampled_from(["host", "presenter", "participant", "observer", "x"])},
            optional={"user_id": IDS, "hospital_id": IDS}), max_size=4))
    if "cases" in change:
        body["cases"] = draw(st.lists(st.fixed_dictionaries(
            {"patient_id": TEXT, "patient_name": TEXT},
            optional={"patient_sex": st.sampled_from(["M", "F", "O", "", "X"]),
                      "patient_birth_date": st.dates().map(str) | st.text(max_size=12),
                      "clinical_question": TEXT,
                      "study_instance_uids": st.lists(UIDS, max_size=3)}), max_size=2))
    if "anything" in change:
        for key in draw(st.lists(st.sampled_from(sorted(body) + ["extra"]), min_size=1,
                                 max_size=2)):
            body[key] = draw(JSON_VALUE)  # anything at all in a field or two
    return body


@hsettings(max_examples=60, deadline=None, derandomize=True, database=None,
           suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_random_consultation_bodies_are_refused_cleanly_or_stored_faithfully(
        client, world, data):
    body = data.draw(consultation_bodies(world))
    before = await db_state(client)
    r = await client.post("/api/consultations", data=json.dumps(body).encode(),
                          headers=world.auth("coordinator"))
    assert r.status < 500, await r.text()
    if r.status >= 400:
        payload = await r.json()
        assert set(payload) == {"error"} and payload["error"]["message"]
        assert await db_state(client) == before
        return
    assert r.status == 201
    stored = await r.json()
    assert datetime.fromisoformat(stored["start"]) == datetime.fromisoformat(body["start"])
    assert datetime.fromisoformat(stored["end"]) == datetime.fromisoformat(body["end"])
    assert stored["start"].endswith("Z") and stored["title"] == body["title"].strip()
    read = await (await client.get(f"/api/consultations/{stored['id']}",
                                   headers=world.auth("coordinator"))).json()
    assert {k: v for k, v in read.items() if k != "updated_at"} == {
        k: v for k, v in stored.items() if k != "updated_at"}
    # Free the host for the next example.
    await client.post(f"/api/consultations/{stored['id']}/cancel",
                      headers=world.auth("coordinator"))

