"""Answers that carry patient data are kept by no cache and shown in no frame: every API
and DICOMweb answer, its errors included; the browser app's page keeps its own policy."""

from __future__ import annotations

import pytest

from app.security_headers import DATA_HEADERS

ANSWERS = [
    ("/api/consultations", "BM", 200),
    ("/api/consultations", None, 401),
    ("/api/consultations/999999", "BM", 404),
    ("/dicomweb/studies", "BM", None),
    ("/dicomweb/studies/1.2.3/series", None, 401),
]


@pytest.mark.parametrize(("path", "who", "status"), ANSWERS)
async def test_data_answers_carry_the_headers(client, world, path, who, status):
    r = await client.get(path, headers=world.auth(who) if who else {})
    if status is not None:
        assert r.status == status, await r.text()
    assert {name: r.headers.get(name) for name in DATA_HEADERS} == DATA_HEADERS


async def test_the_page_keeps_its_own_policy(client):
    r = await client.get("/healthz")
    assert "no-store" not in r.headers.get("Cache-Control", "")
    page = await client.get("/")  # `make test` builds the browser app first
    assert page.status == 200, await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-cache"
