"""The minutes' PDF as a doctor downloads it: the Appendix I form in Vietnamese with the
room's attendees, a draft marked unsigned, a signed version carrying the hospital's PAdES
signature that pyHanko validates and that fails once a byte is changed."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.config import Settings
from app.minutes.signing import SigningError, verify_pdf
from tests.api.dbcheck import audit_events, error_of
from tests.api.minutes_helpers import FILLED, ok, put, room_presence, signed_by_both, url
from tests.conftest import make_settings
from tests.minutes.ca import HOSPITAL, Issued, issue


@pytest.fixture
def issued(tmp_path: Path) -> Issued:
    return issue(tmp_path)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, issued: Issued) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return make_settings(database_url, data_dir, signing_p12=issued.p12,
                         signing_p12_password=issued.password)


async def verified(pdf: bytes, issued: Issued):
    # pyHanko's validator runs its own event loop: off this one.
    return await asyncio.to_thread(verify_pdf, pdf, [issued.root])


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def download(client, world, who: str = "GTH", query: str = "") -> bytes:
    r = await client.get(url(world, f"/pdf{query}"), headers=world.auth(who))
    assert r.status == 200, await r.text()
    assert r.content_type == "application/pdf"
    assert "bien-ban-hoi-chan-" in r.headers["Content-Disposition"]
    return await r.read()


async def test_a_signed_version_downloads_signed_by_the_hospital(client, world, issued):
    await error_of(await client.get(url(world, "/pdf"), headers=world.auth("BM")), 404)
    await room_presence(world, [("room.join", "BM", "host", -30),
                                ("room.join", "GTH", "participant", -20)])
    await ok(await put(client, world, "BM", FILLED))
    draft = await download(client, world)
    with pytest.raises(SigningError, match="no signature"):
        await verified(draft, issued)
    assert "Chưa ký" in text_of(draft)

    await signed_by_both(client, world, started=True)
    signed = await download(client, world)
    words = text_of(signed)
    for expected in ("BIÊN BẢN HỘI CHẨN", FILLED["diagnosis_after"],
                     FILLED["questions"][1]["conclusion"], world.user("GTH").name,
                     world.user("NDI").name, "Bệnh viện Bạch Mai"):
        assert expected in words, expected
    check = await verified(signed, issued)
    assert check.ok and check.signer_subject.find(HOSPITAL) >= 0
    assert "chủ trì " + world.user("BM").name in (check.reason or "")

    # One byte changed in the rendered document (the signature is appended after it, so
    # this lies in the signed range): the signature no longer holds.
    at = len(draft) // 3
    tampered = signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1:]
    # So damaged it cannot even be checked (SigningError) is not valid either.
    with contextlib.suppress(SigningError):
        assert not (await verified(tampered, issued)).ok

    english = await download(client, world, query="?version=1&language=en")
    assert "MINUTES" in text_of(english).upper()
    await error_of(await client.get(url(world, "/pdf?version=7"), headers=world.auth("BM")),
                   404)
    pdfs = await audit_events(world.settings, "minutes.pdf")
    assert [e.detail["signed"] for e in pdfs] == [False, True, True]
