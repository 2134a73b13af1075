"""Bad input of every class gets a clear 4xx, changes nothing, and never a 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests.api.dbcheck import row_counts
from tests.api.test_scheduling import T0, booking, iso


async def assert_refused(client, world, method: str, path: str, *, status: int,
                         code: str | None = None, field: str | None = None,
                         who: str = "coordinator", **kw: Any) -> dict[str, Any]:
    before = await row_counts(world.settings)
    r = await client.request(method, path, headers=world.auth(who), **kw)
    body = await r.json()
    assert r.status == status, (path, kw, body)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    if code:
        assert body["error"]["code"] == code, body
    if field:
        assert body["error"].get("field") == field, body
    assert await row_counts(world.settings) == before
    return body


async def test_malformed_json(client, world):
    for raw in [b"{", b"", b"[]", b"null", b'{"title": }', b"\xff\xfe"]:
        body = await assert_refused(client, world, "POST", "/api/consultations", data=raw,
                                    status=422 if raw in (b"[]", b"null") else 400)
        assert body["error"]["code"] in ("invalid_json", "validation_error")


@pytest.mark.parametrize("change,field", [
    ({"host_user_id": "3"}, "host_user_id"),            # string for int
    ({"title": 42}, "title"),                           # int for string
    ({"host_hospital_id": 1.5}, "host_hospital_id"),
    ({"host_hospital_id": True}, "host_hospital_id"),   # bool is not an int here
    ({"invitations": {"user_id": 1}}, "invitations"),
    ({"surprise": 1}, "surprise"),                      # unknown field
    ({"title": "x" * 201}, "title"),                    # over the limit
    ({"title": "   "}, "title"),
    ({"description": "x" * 10_001}, "description"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"start": "yesterday"}, "start"),
    ({"host_user_id": 2**40}, "host_user_id"),
    ({"host_user_id": 0}, "host_user_id"),
])
async def test_wrong_fields_name_the_field(client, world, change, field):
    await assert_refused(client, world, "POST", "/api/consultations",
                         json={**booking(world), **change}, status=422, field=field)


async def test_window_errors(client, world):
    await assert_refused(client, world, "POST", "/api/consultations", status=422, field="end",
                         json=booking(world, hours=-1))
    await assert_refused(client, world, "POST", "/api/consultations", status=422, field="end",
                         json=booking(world, hours=25))
    await assert_refused(client, world, "POST", "/api/consultations", status=422, field="end",
                         json=booking(world, start=T0.replace(year=2020)))


async def test_unknown_ids(client, world):
    await assert_refused(client, world, "POST", "/api/consultations", status=422,
                         field="host_user_id", json=booking(world) | {"host_user_id": 99999})
    await assert_refused(client, world, "POST", "/api/consultations", status=422,
                         field="host_hospital_id",
                         json=booking(world) | {"host_hospital_id": 99999})
    await assert_refused(client, world, "POST", "/api/consultations", status=422,
                         field="invitations.0.hospital_id", json=booking(world) | {
                             "invitations": [{"hospital_id": 99999, "role": "observer"}]})
    for path in ["/api/consultations/99999", "/api/consultations/abc",
                 "/api/consultations/-1", f"/api/consultations/{2**63}",
                 "/api/users/99999", "/api/hospitals/0"]:
        await assert_refused(client, world, "GET", path, status=404, code="not_found")
    await assert_refused(client, world, "DELETE",
                         f"/api/consultations/{world.consultation_id}/invitations/99999",
                         status=404)


async def test_invitation_shape_errors(client, world):
    url = f"/api/consultations/{world.consultation_id}/invitations"
    for body in [{"role": "participant"},
                 {"user_id": 1, "hospital_id": 1, "role": "participant"},
                 {"user_id": world.user("TBI").id, "role": "king"}]:
        await assert_refused(client, world, "POST", url, json=body, status=422)


async def test_case_errors(client, world):
    url = f"/api/consultations/{world.consultation_id}/cases"
    good = {"patient_id": "P1", "patient_name": "A^B"}
    for change in [{"study_instance_uids": ["1.2.abc"]}, {"study_instance_uids": ["01.2"]},
                   {"study_instance_uids": ["1." + "2" * 70]},
                   {"study_instance_uids": ["1.2", "1.2"]}, {"patient_id": "a\\b"},
                   {"patient_sex": "X"}, {"patient_birth_date": "2999-01-01"},
                   {"patient_birth_date": "1990-13-01"}, {"patient_id": ""}]:
        await assert_refused(client, world, "POST", url, json=good | change, status=422)


async def test_query_errors(client, world):
    for params in [{"limit": "0"}, {"limit": "abc"}, {"status": "nope"}, {"from": "monday"},
                   {"from": "2031-01-01T00:00:00"}, {"unknown": "1"}, {"offset": "-1"}]:
        await assert_refused(client, world, "GET", "/api/consultations", params=params,
                             status=422)
    await assert_refused(client, world, "GET", "/api/me", params={"x": "1"}, status=422)


async def test_oversized_body_is_413(client, world):
    big = booking(world) | {"description": "x" * (1024 * 1024 + 10)}
    await assert_refused(client, world, "POST", "/api/consultations", json=big, status=413,
                         code="payload_too_large")


async def test_wrong_method_and_unknown_route_answer_json(client, world):
    await assert_refused(client, world, "PUT", "/api/consultations", json={}, status=405,
                         code="method_not_allowed")
    await assert_refused(client, world, "GET", "/api/nothing-here", status=404)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_text_postgres_cannot_store_is_refused_not_crashed(client, world):
    # PostgreSQL text cannot hold NUL; the API must refuse it rather than fail on insert.
    await assert_refused(client, world, "POST", "/api/consultations", status=422,
                         field="title", json=booking(world) | {"title": "a\x00b"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@hsettings(max_examples=40, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_random_consultation_bodies_never_5xx(client, world, data):
    body = booking(world)
    for key in data.draw(st.lists(st.sampled_from(sorted(body) + ["invitations", "cases",
                                                                 "extra"]), max_size=3)):
        body[key] = data.draw(json_values)
    before = await row_counts(world.settings)
    r = await client.post("/api/consultations", json=body, headers=world.auth("coordinator"))
    assert r.status < 500, await r.text()
    if r.status >= 400:
        assert "error" in await r.json()
        assert await row_counts(world.settings) == before
    else:
        await client.post(f"/api/consultations/{(await r.json())['id']}/cancel",
                          headers=world.auth("coordinator"))
