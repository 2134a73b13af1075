"""The OpenAPI document: valid, complete, true to the responses, and fuzzed for 5xx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate

from app.auth.tokens import issue_access
from tests.conftest import JWT_SECRET

VENV_BIN = Path(sys.executable).parent


async def test_document_is_valid_openapi(client):
    r = await client.get("/api/openapi.json")
    assert r.status == 200
    validate(await r.json())


async def test_every_registered_route_is_documented(client):
    doc = await (await client.get("/api/openapi.json")).json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and (path.startswith("/api") or path == "/healthz") and route.method not in (
                "HEAD", "OPTIONS"):
            registered.add((path, route.method))
    assert registered and registered <= documented, registered - documented
    assert documented <= registered, documented - registered


def _validator(doc: dict, path: str, method: str, status: int) -> jsonschema.Validator:
    schema = doc["paths"][path][method]["responses"][str(status)]["content"][
        "application/json"]["schema"]
    resolver_doc = {**schema, "components": doc["components"]}
    return jsonschema.Draft202012Validator(resolver_doc)


async def test_responses_match_their_declared_schemas(client, world):
    doc = await (await client.get("/api/openapi.json")).json()
    calls = [
        ("get", "/api/consultations/{consultation_id}",
         f"/api/consultations/{world.consultation_id}", "BM", 200),
        ("get", "/api/consultations", "/api/consultations", "coordinator", 200),
        ("get", "/api/me/consultations", "/api/me/consultations", "NDI", 200),
        ("get", "/api/users", "/api/users", "admin", 200),
        ("get", "/api/hospitals", "/api/hospitals", "GTI", 200),
        ("get", "/api/audit", "/api/audit", "admin", 200),
        ("post", "/api/consultations/{consultation_id}/join-token",
         f"/api/consultations/{world.consultation_id}/join-token", "NDI", 200),
        ("get", "/api/audit", "/api/audit", "NDI", 403),
        ("get", "/api/consultations/{consultation_id}", "/api/consultations/999", "BM", 404),
    ]
    for method, template, url, who, status in calls:
        r = await client.request(method, url, headers=world.auth(who))
        assert r.status == status, (url, await r.text())
        _validator(doc, template, method, status).validate(await r.json())
    r = await client.get("/healthz")
    _validator(doc, "/healthz", "get", 200).validate(await r.json())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_schema_driven_fuzz_finds_no_server_error(backend, tmp_path, request):
    """schemathesis drives every operation with generated valid and invalid input, as an
    admin, against a real server process; any 5xx fails the test."""
    env = {**os.environ, "HOICHAN_DATA_DIR": str(tmp_path), "HOICHAN_PORT": str(_free_port()),
           "HOICHAN_JWT_SECRET": JWT_SECRET, "HOICHAN_DEMO_PASSWORD": "fuzz-password-1"}
    if backend == "postgresql":
        from tests.conftest import _truncate
        import asyncio
        url = request.getfixturevalue("pg_migrated")
        asyncio.run(_truncate(url))
        env["HOICHAN_DATABASE_URL"] = url
    hoichan = str(VENV_BIN / "hoichan")
    subprocess.run([hoichan, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([hoichan, "seed-demo"], env=env, check=True, capture_output=True)
    log_path = tmp_path / "server.log"
    # A file, not a pipe: an unread pipe fills with access log lines and blocks the server.
    server = subprocess.Popen([hoichan, "serve"], env=env, stdout=log_path.open("w"),
                              stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{env['HOICHAN_PORT']}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", int(env["HOICHAN_PORT"])), 0.2):
                    break
            except OSError:
                time.sleep(0.1)
        token = issue_access(1, ["admin"], JWT_SECRET, timedelta(hours=1))
        fuzz = subprocess.run(
            [str(VENV_BIN / "schemathesis"), "run", f"{base}/api/openapi.json",
             "--checks", "not_a_server_error", "--max-examples", "10",
             "--generation-deterministic", "--workers", "1", "--max-time", "60",
             "--request-timeout", "10", "--no-color",
             "--header", f"Authorization: Bearer {token}"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert fuzz.returncode == 0, fuzz.stdout[-6000:] + fuzz.stderr[-2000:]
        assert "Test cases:" in fuzz.stdout and "passed" in fuzz.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
    log = log_path.read_text()
    # aiohttp logs malformed HTTP it answers 400 to with a traceback of its parser; what
    # must never appear is our own middleware's record of an unhandled exception.
    assert "unhandled error" not in log, log[log.index("unhandled error") - 200:][:4000]
