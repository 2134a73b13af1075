"""The OpenAPI 3.1 document at /api/openapi.json: valid, covering every registered route,
true to what the API actually answers, and fuzzed for 5xx: schemathesis drives every
operation with valid and invalid input as an admin and must find no server error."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from openapi_spec_validator import validate
from sqlalchemy import select

from app import demo
from app.auth.tokens import issue_access
from app.config import Settings
from app.db.engine import create_engine, session_factory
from app.db.models import Hospital, User
from hoichan.server import create_app
from tests.api.scheduling_helpers import T0, booking
from tests.api.test_consents import SIGNED_BY_PATIENT
from tests.conftest import DEMO_PASSWORD, JWT_SECRET

# The document does not depend on the database; SQLite keeps those tests quick.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CHECKED_TAGS = {"system", "auth", "people", "scheduling", "record", "room", "audit",
                "consent"}


async def document(client) -> dict[str, Any]:
    r = await client.get("/api/openapi.json")
    assert r.status == 200 and r.content_type == "application/json"
    return await r.json()


@SQLITE
async def test_the_document_is_valid_openapi_3_1(client):
    doc = await document(client)
    assert doc["openapi"].startswith("3.1")
    validate(doc)


@SQLITE
async def test_every_registered_api_route_is_documented_and_nothing_else(client):
    doc = await document(client)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items()
                  for method in ops}
    registered = set()
    for route in client.app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith("/api/") or path == "/healthz":
            registered.add((path, route.method))
    assert len(registered) >= 25
    assert registered - documented == set()
    assert documented - registered == set()


@SQLITE
async def test_every_operation_documents_its_errors_with_the_error_shape(client):
    doc = await document(client)
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op.get("security"):
                assert "401" in op["responses"], (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= set(op["responses"]), (method, path)
            # Every route refuses query parameters it does not know, with or without a body.
            assert "422" in op["responses"], (method, path)
            if "{" in path:
                assert "404" in op["responses"], (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == error_ref, (method, path, status)


class Checker:
    """Makes real calls and checks each answer against the operation's documented
    responses: the status must be documented, and a JSON body must match its schema."""

    def __init__(self, client, world, doc: dict[str, Any]) -> None:
        self.client, self.world, self.doc = client, world, doc
        self.checked: set[tuple[str, str, int]] = set()

    async def __call__(self, method: str, template: str, status: int, who: str | None = None,
                       json: Any = None, data: bytes | None = None,
                       params: dict[str, str] | None = None, **ids: int) -> Any:
        url = template.format(**ids)
        headers = self.world.auth(who) if who else {}
        r = await self.client.request(method, url, json=json, data=data, params=params,
                                      headers=headers)
        text = (await r.read()).decode(errors="replace")  # a PDF is no text
        assert r.status == status, (method, url, r.status, text)
        responses = self.doc["paths"][template][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {template} answers {status} undocumented"
        content = responses[str(status)].get("content")
        self.checked.add((method, template, status))
        if status == 204:
            assert text == "" and content is None
            return None
        if "application/json" not in content:
            # A document (CSV, PDF): answered in the documented media type.
            assert r.content_type in content, (template, r.content_type, list(content))
            return None
        schema = content["application/json"]["schema"]
        body = await r.json()
        jsonschema.Draft202012Validator(
            {**schema, "components": self.doc["components"]},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        ).validate(body)
        return body


async def test_real_answers_match_their_documented_responses(client, world):
    check = Checker(client, world, await document(client))
    cid = world.consultation_id
    await check("GET", "/healthz", 200)
    await check("GET", "/api/openapi.json", 200)
    tokens = await check("POST", "/api/auth/login", 200, json={
        "email": "admin@demo.hoichan.vn", "password": DEMO_PASSWORD})
    await check("POST", "/api/auth/login", 401, json={"email": "admin@demo.hoichan.vn",
                                                       "password": "nope"})
    await check("POST", "/api/auth/login", 400, data=b"{not json")
    await check("POST", "/api/auth/login", 422, json={"email": "admin@demo.hoichan.vn"})
    tokens = await check("POST", "/api/auth/refresh", 200,
                         json={"refresh_token": tokens["refresh_token"]})
    await check("POST", "/api/auth/refresh", 401, json={"refresh_token": "x.y"})
    await check("POST", "/api/auth/logout", 422, "admin", json={"refresh_token": "a.b"})
    await check("POST", "/api/auth/logout", 204, "admin",
                json={"refresh_token": tokens["refresh_token"]})

    await check("GET", "/api/me", 200, "NDI")
    await check("GET", "/api/me", 401)
    await check("GET", "/api/me", 422, "NDI", params={"unknown": "1"})
    await check("GET", "/api/hospitals", 200, "GTI", params={"tier": "district"})
    await check("GET", "/api/hospitals/{hospital_id}", 200, "GTI", hospital_id=1)
    await check("GET", "/api/hospitals/{hospital_id}", 404, "GTI", hospital_id=999)
    await check("POST", "/api/hospitals", 201, "admin", json={
        "code": "YBI", "name": "BV Yên Bái", "tier": "provincial", "parent_id": 1})
    await check("POST", "/api/hospitals", 409, "admin", json={
        "code": "YBI", "name": "again", "tier": "provincial"})
    await check("POST", "/api/hospitals", 403, "coordinator", json={})
    users = await check("GET", "/api/users", 200, "coordinator", params={"role": "doctor"})
    await check("GET", "/api/users", 403, "NDI")
    await check("PATCH", "/api/me", 200, "NDI", json={"language": "en"})
    await check("PATCH", "/api/me", 422, "NDI", json={"language": "fr"})
    new = await check("POST", "/api/users", 201, "admin", json={
        "email": "moi@bm.vn", "name": "BS. Mới", "password": "long-enough-1",
        "roles": ["doctor"], "hospital_id": 1})
    await check("POST", "/api/users", 409, "admin", json={
        "email": "moi@bm.vn", "name": "BS. Mới", "password": "long-enough-1",
        "roles": ["doctor"], "hospital_id": 1})
    await check("GET", "/api/users/{user_id}", 200, "coordinator",
                user_id=users["items"][0]["id"])
    await check("PATCH", "/api/users/{user_id}", 200, "admin", json={"name": "BS. Mới 2"},
                user_id=new["id"])
    await check("POST", "/api/users/{user_id}/unlock", 204, "admin", user_id=new["id"])
    await check("POST", "/api/users/{user_id}/unlock", 403, "coordinator", user_id=new["id"])
    await check("POST", "/api/users/{user_id}/unlock", 404, "admin", user_id=999_999)

    c = await check("POST", "/api/consultations", 201, "coordinator", json=booking(
        world, T0 + timedelta(days=6), cases=[{"patient_id": "P-1", "patient_name": "A^B"}],
        invitations=[{"hospital_id": world.user("HLY").hospital_id,
                                   "role": "observer"}]))
    await check("POST", "/api/consultations", 409, "coordinator",
                json=booking(world, T0 + timedelta(days=6)))
    await check("POST", "/api/consultations", 422, "coordinator",
                json=booking(world) | {"end": "2000-01-01T00:00:00Z"})
    await check("POST", "/api/consultations", 413, "coordinator",
                json=booking(world) | {"description": "x" * (1024 * 1024 + 1)})
    await check("GET", "/api/consultations", 200, "coordinator", params={"status": "scheduled"})
    await check("GET", "/api/me/consultations", 200, "NDI")
    demo = await check("GET", "/api/consultations/{consultation_id}", 200, "NDI",
                       consultation_id=cid)
    await check("GET", "/api/consultations/{consultation_id}", 404, "NDI",
                consultation_id=c["id"])
    await check("PATCH", "/api/consultations/{consultation_id}", 200, "coordinator",
                json={"title": "Mới"}, consultation_id=c["id"])
    inv = await check("POST", "/api/consultations/{consultation_id}/invitations", 201,
                      "coordinator", json={"user_id": world.user("NDI").id,
                                           "role": "presenter"}, consultation_id=c["id"])
    await check("POST", "/api/consultations/{consultation_id}/invitations", 409,
                "coordinator", json={"user_id": world.user("NDI").id, "role": "presenter"},
                consultation_id=c["id"])
    await check("PATCH", "/api/consultations/{consultation_id}/invitations/{invitation_id}",
                200, "coordinator", json={"role": "participant"}, consultation_id=c["id"],
                invitation_id=inv["id"])
    await check("DELETE", "/api/consultations/{consultation_id}/invitations/{invitation_id}",
                204, "coordinator", consultation_id=c["id"], invitation_id=inv["id"])
    case = await check("POST", "/api/consultations/{consultation_id}/cases", 201,
                       "coordinator", json={"patient_id": "P-2", "patient_name": "C^D",
                                            "study_instance_uids": ["1.2.3"]},
                       consultation_id=c["id"])
    await check("DELETE", "/api/consultations/{consultation_id}/cases/{case_id}", 204,
                "coordinator", consultation_id=c["id"], case_id=case["id"])
    await check("GET", "/api/consultations/{consultation_id}/record", 404, "BM",
                consultation_id=cid)
    await check("PUT", "/api/consultations/{consultation_id}/record", 403, "NDI",
                json={"conclusion": "c", "treatment_plan": "t"}, consultation_id=cid)
    await check("PUT", "/api/consultations/{consultation_id}/record", 200, "BM",
                json={"conclusion": "c", "treatment_plan": "t"}, consultation_id=cid)
    await check("GET", "/api/consultations/{consultation_id}/record", 200, "GTI",
                consultation_id=cid)
    await check("POST", "/api/consultations/{consultation_id}/join-token", 200, "NDI",
                consultation_id=cid)
    await check("POST", "/api/consultations/{consultation_id}/join-token", 403,
                "coordinator", consultation_id=cid)
    await check("POST", "/api/consultations/{consultation_id}/join-token", 409, "BM",
                consultation_id=c["id"])
    consents = "/api/consultations/{consultation_id}/cases/{case_id}/consents"
    form = "/api/consultations/{consultation_id}/cases/{case_id}/consent-form"
    on_case = {"consultation_id": cid, "case_id": demo["cases"][0]["id"]}
    await check("GET", consents, 200, "NDI", **on_case)
    await check("GET", consents, 404, "NDI", consultation_id=cid, case_id=999_999)
    await check("POST", consents, 201, "NDI", json=SIGNED_BY_PATIENT, **on_case)
    await check("POST", consents, 403, "HYE", json=SIGNED_BY_PATIENT, **on_case)
    await check("POST", consents, 409, "NDI", json={
        **SIGNED_BY_PATIENT, "scope": "recording", "decision": "withdrawn"}, **on_case)
    await check("POST", consents, 422, "NDI", json={"scope": "recording"}, **on_case)
    await check("GET", form, 200, "NDI", params={"language": "en"}, **on_case)
    await check("GET", form, 404, "NDI", consultation_id=cid, case_id=999_999)
    await check("DELETE", "/api/consultations/{consultation_id}/cases/{case_id}", 409,
                "coordinator", **on_case)
    await check("POST", "/api/consultations/{consultation_id}/cancel", 200, "coordinator",
                consultation_id=c["id"])
    await check("POST", "/api/consultations/{consultation_id}/cancel", 409, "coordinator",
                consultation_id=c["id"])
    glass = {"reason": "Kiểm tra theo yêu cầu của bệnh viện"}
    await check("POST", "/api/consultations/{consultation_id}/break-glass", 201, "admin",
                json=glass, consultation_id=cid)
    await check("POST", "/api/consultations/{consultation_id}/break-glass", 403,
                "coordinator", json=glass, consultation_id=cid)
    await check("POST", "/api/consultations/{consultation_id}/break-glass", 404, "admin",
                json=glass, consultation_id=999_999)
    await check("POST", "/api/consultations/{consultation_id}/break-glass", 422, "admin",
                json={"reason": "x"}, consultation_id=cid)
    await check("POST", "/api/break-glass", 201, "admin", json=glass)
    await check("POST", "/api/break-glass", 403, "coordinator", json=glass)
    identity = "/api/consultations/{consultation_id}/observer-identity"
    await check("PUT", identity, 200, "BM", json={"identified": True}, consultation_id=cid)
    await check("PUT", identity, 403, "NDI", json={"identified": False}, consultation_id=cid)
    await check("PUT", identity, 422, "BM", json={"identified": "yes"}, consultation_id=cid)
    await check("GET", "/api/audit", 200, "admin", params={"action": "auth."})
    await check("GET", "/api/audit", 403, "coordinator")
    await check("GET", "/api/audit.csv", 200, "admin", params={"action": "auth."})
    await check("GET", "/api/audit.csv", 403, "coordinator")
    # Every documented operation of these parts of the API was called at least once (the
    # PACS operations need a PACS to answer and are not called here).
    operations = {(m.upper(), p) for p, ops in check.doc["paths"].items()
                  for m, op in ops.items() if set(op["tags"]) & CHECKED_TAGS}
    called = {(m, t) for m, t, _ in check.checked}
    assert len(operations) >= 25 and operations - called == set()


# ---- schema-driven fuzzing -----------------------------------------------------------

# An admin the fuzzer acts as, with an id generated values are unlikely to hit: a fuzzed
# PATCH /api/users/{id} of its own account would deactivate it and leave only 401s to test.
FUZZ_ADMIN_ID = 987_654
# Operations that reach out to a PACS answer 502 when it fails, as the fuzzed addresses do:
# that is their documented answer, not a server error. Any other 5xx fails the test.
# Cancelling runs early and would end the demo consultation (id 1) for every later
# operation on it, so it cancels a consultation of its own.
SCHEMATHESIS_CONFIG = """
[[operations]]
include-tag = "pacs"
checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", "502"]

[[operations]]
include-path = "/api/consultations/{{consultation_id}}/cancel"
parameters = {{ "path.consultation_id" = {cancel_id} }}

# Changes to a user are tried on a doctor: one deactivating the fuzzer's own admin would
# leave every later operation at the login check.
[[operations]]
include-path = "/api/users/{{user_id}}"
include-method = "PATCH"
parameters = {{ "path.user_id" = {user_id} }}
"""


def _serve(settings: Settings) -> Iterator[str]:
    """The app on a real socket of 127.0.0.1, in a thread with its own event loop."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(create_app(settings), access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["port"] = runner.addresses[0][1]
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="live-app", daemon=True)
    thread.start()
    assert started.wait(30), "the app did not start"
    try:
        yield f"http://127.0.0.1:{box['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


async def _seed(settings: Settings) -> None:
    """The demo world, and the fuzzer's admin."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            await demo.seed(session, DEMO_PASSWORD)
            hospital = await session.scalar(select(Hospital.id).order_by(Hospital.id))
            session.add(User(id=FUZZ_ADMIN_ID, email="fuzz.admin@demo.hoichan.vn",
                             name="Fuzz admin", hospital_id=hospital, roles=["admin"],
                             password_hash="!", active=True))
    finally:
        await engine.dispose()


def _call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, json.load(r)


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    """The app seeded with the demo world, served on a real socket for an outside client."""
    asyncio.run(_seed(settings))
    yield from _serve(settings)


def test_schema_driven_fuzz_finds_no_server_error(live_url, tmp_path):
    """schemathesis drives every operation of the live document with boundary values and
    generated valid and invalid input, as an admin; any 5xx fails the test."""
    token = issue_access(FUZZ_ADMIN_ID, ["admin"], JWT_SECRET, timedelta(hours=1))
    _, users = _call("GET", f"{live_url}/api/users?q=doctor.bm", token)
    [bm] = users["items"]
    status, spare = _call("POST", f"{live_url}/api/consultations", token, {
        "title": "Để hủy", "start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(),
        "host_hospital_id": bm["hospital"]["id"], "host_user_id": bm["id"]})
    assert status == 201
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG.format(cancel_id=spare["id"], user_id=bm["id"]))
    fuzz = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config),
         "--no-color", "run", f"{live_url}/api/openapi.json",
         "--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing",
         "--max-examples", "10", "--generation-deterministic", "--workers", "1",
         "--request-timeout", "10", "--header", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert fuzz.returncode == 0, fuzz.stdout[-8000:] + fuzz.stderr[-2000:]
    assert "Test cases:" in fuzz.stdout and "passed" in fuzz.stdout
    # The fuzzer's token stayed valid, so it tested more than the login check; the demo
    # consultation was not cancelled under the operations that need it scheduled.
    status, me = _call("GET", f"{live_url}/api/me", token)
    assert status == 200 and me["id"] == FUZZ_ADMIN_ID
    _, demo_consultation = _call("GET", f"{live_url}/api/consultations/1", token)
    assert demo_consultation["status"] != "cancelled"
